#!/usr/bin/env bash
# Installs the build's packages if missing, builds in Release and runs the
# demo: a mixed workload through a default pool, every byte checked.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)" --target swiotlb_cli
build/release/swiotlb demo "$@"
