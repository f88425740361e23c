#!/usr/bin/env bash
# Runs clang-tidy with the repository's .clang-tidy over the library (src/)
# and the command-line tool (tools/); headers under include/swiotlb/ are
# checked through HeaderFilterRegex. Configures a build directory for its
# compile_commands.json (default build/tidy; pass another as $1). Exits
# non-zero when clang-tidy reports any warning or error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-build/tidy}

cmake -S . -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Debug >/dev/null
out=$(mktemp)
trap 'rm -f "${out}"' EXIT
run-clang-tidy -p "${build}" -j "$(nproc)" -quiet "^${root}/(src|tools)/" 2>&1 | tee "${out}"
if sed 's/\x1b\[[0-9;]*m//g' "${out}" | grep -qE '(warning|error): '; then
  echo "clang-tidy: findings above" >&2
  exit 1
fi
echo "clang-tidy: clean"
