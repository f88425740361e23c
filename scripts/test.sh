#!/usr/bin/env bash
# Builds and runs the tests three ways: every test in a Release build and in
# an AddressSanitizer + UndefinedBehaviorSanitizer build, and the layers that
# run threads (pool, iotlb, dma, iova, io) under ThreadSanitizer. The sanitizer
# builds also evaluate the internal checks (SWIOTLB_CHECK, on with
# SWIOTLB_SANITIZE). Then builds the libFuzzer targets with clang and runs
# each for SWIOTLB_FUZZ_SECONDS (default 30), failing on any finding
# (scripts/fuzz.sh). Installs the build's packages first if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)

echo "=== shellcheck"
shellcheck -x tools/capture/swiotlb-capture tests/capture/*.sh

# run_variant NAME "TARGETS" "LABEL-REGEX" "EXCLUDED-LABEL-REGEX" CMAKE-ARGS...
run_variant() {
  local name=$1 targets=$2 labels=$3 excluded=$4
  shift 4
  echo "=== ${name} build"
  cmake -S . -B "build/${name}" -G Ninja "$@" >/dev/null
  # shellcheck disable=SC2086
  cmake --build "build/${name}" -j "${jobs}" ${targets:+--target ${targets}}
  echo "=== ${name} tests"
  ctest --test-dir "build/${name}" --output-on-failure -j "${jobs}" ${labels:+-L "${labels}"} \
    ${excluded:+-LE "${excluded}"}
}

run_variant release "" "" "" -DCMAKE_BUILD_TYPE=Release
# Programs built against the installed library (static from the Release
# tree, then a shared build of the library alone).
scripts/test-install.sh build/release
# The capture tests are shell scripts on a fake tracefs: Release runs them.
run_variant asan "" "" "^capture$" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSWIOTLB_SANITIZE=address,undefined -DSWIOTLB_BUILD_BENCH=OFF
run_variant tsan "test_pool test_iotlb test_dma test_iova test_io" "^(pool|iotlb|dma|iova|io)$" "" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWIOTLB_SANITIZE=thread -DSWIOTLB_BUILD_BENCH=OFF

echo "=== fuzz"
scripts/fuzz.sh "${SWIOTLB_FUZZ_SECONDS:-30}"
