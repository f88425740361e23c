#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) in
# build/fuzz and runs each for SECONDS (default 30) from its seed corpus in
# fuzz/corpus/<target>/, with fuzz/corpus/<target>.dict when there is one.
# Fails on the first finding; the input that failed is left in
# build/fuzz/findings/ (add it to the regression tests, tests/tools/
# fuzz_regression_test.cc, and to the seed corpus).
#
#   scripts/fuzz.sh            # CI: about 30 s per target
#   scripts/fuzz.sh 1800       # a longer run
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
cxx=${SWIOTLB_FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}
build=build/fuzz
targets=(config trace_v1 iova_trace replay ops)

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" -DSWIOTLB_BUILD_FUZZ=ON -DSWIOTLB_SANITIZE=address,undefined \
  -DSWIOTLB_BUILD_TESTS=OFF -DSWIOTLB_BUILD_BENCH=OFF -DSWIOTLB_WERROR=OFF \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/findings"
status=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  dict=()
  if [ -f "fuzz/corpus/$t.dict" ]; then
    dict=("-dict=fuzz/corpus/$t.dict")
  fi
  log="$build/$t.log"
  echo "=== fuzz_$t for ${seconds}s"
  if ! "$build/fuzz/fuzz_$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/findings/$t-" "$work" "fuzz/corpus/$t" >"$log" 2>&1; then
    echo "fuzz_$t: a finding; see $log and $build/findings/"
    tail -n 40 "$log"
    status=1
    continue
  fi
  # The last status line holds the coverage; the final stats the speed.
  grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
  grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$log" || true
done
exit "$status"
