#!/usr/bin/env bash
# Builds and runs every test twice: a Release build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build. Installs the build's
# packages first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
run_variant() {
  local name=$1
  shift
  echo "=== ${name} build"
  cmake -S . -B "build/${name}" -G Ninja "$@" >/dev/null
  cmake --build "build/${name}" -j "${jobs}"
  echo "=== ${name} tests"
  ctest --test-dir "build/${name}" --output-on-failure -j "${jobs}"
}

run_variant release -DCMAKE_BUILD_TYPE=Release
run_variant asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWIOTLB_SANITIZE=address,undefined \
  -DSWIOTLB_BUILD_BENCH=OFF
