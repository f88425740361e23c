#!/usr/bin/env bash
# swiotlb-capture end to end on a fake tracefs (fake_tracefs.sh): no kernel,
# no root. Each case starts the script, waits until events flow into its raw
# capture, signals it while it sleeps in its recording loop, and checks that
# it wrote the trace, removed its probes and instance, and exited 0.
#
# Usage: capture_test.sh CASE [ROUNDS]
#   sigint         Ctrl-C: SIGINT to the script's whole process group
#   sigterm        SIGTERM, alternately to the script alone and to its group
#   second-signal  a second SIGINT while converting keeps the raw capture
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
script=$here/../../tools/capture/swiotlb-capture
# shellcheck source=tests/capture/fake_tracefs.sh
source "$here/fake_tracefs.sh"

work=$(mktemp -d)
trap 'stop_fake_kernels "$work"; rm -rf "$work"' EXIT
make_fake_tracefs "$work"

fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/stderr "$work"/out.trace; do
    [[ -e $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

# wait_for FILE PATTERN: until grep finds PATTERN in FILE (at most 20 s).
wait_for() {
  local i
  for ((i = 0; i < 1000; i++)); do
    grep -q -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.02
  done
  fail "no '$2' in $1 after 20 s"
}

# Job control: each job gets a process group of its own, as in an interactive
# shell, and does not start with SIGINT ignored (as a plain '&' job would).
set -m

# start [ENV...]: runs the script as a job with ENV added; sets PID, which is
# also its process group. Returns once it records and events have reached its
# raw capture.
start() {
  rm -f "$work/out.trace" "$work/raw" "$work/stderr"
  env "$@" PATH="$work/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" \
    bash "$script" -o "$work/out.trace" --raw "$work/raw" 2>"$work/stderr" &
  PID=$!
  wait_for "$work/stderr" "recording; press Ctrl-C"
  wait_for "$work/raw" "stlb_map_ret"
}

# finish: waits for the script; sets STATUS.
finish() {
  STATUS=0
  wait "$PID" || STATUS=$?
}

check_clean() {
  local left
  left=$(probes_left "$work")
  [[ -z $left ]] || fail "probes left in kprobe_events: $left"
  [[ -z $(ls -A "$work/tracefs/instances") ]] || fail "instance left: $(ls "$work/tracefs/instances")"
}

check_trace() {
  ((STATUS == 0)) || fail "exit status $STATUS, not 0"
  [[ -s $work/out.trace ]] || fail "no trace written"
  [[ $(head -n 1 "$work/out.trace") == "# swiotlb-trace v1" ]] || fail "not a trace v1"
  grep -q '^# device 0000:00:05.0 min_align_mask=0xfff' "$work/out.trace" || fail "no # device line"
  grep -q '^map ' "$work/out.trace" || fail "no map in the trace"
  [[ ! -e $work/out.trace.partial ]] || fail "partial output left"
  check_clean
}

# A random pause of up to 0.2 s, so that the signal lands at different points
# of the one-second naps.
jitter() { sleep "0.$((RANDOM % 2))$((RANDOM % 10))"; }

case_sigint() {
  local i
  for ((i = 1; i <= $1; i++)); do
    start
    jitter
    kill -INT -- "-$PID"
    finish
    check_trace
  done
}

case_sigterm() {
  local i
  for ((i = 1; i <= $1; i++)); do
    start
    jitter
    if ((i % 2)); then kill -TERM "$PID"; else kill -TERM -- "-$PID"; fi
    finish
    check_trace
  done
}

case_second_signal() {
  start FAKE_SLOW_CONVERT=30
  kill -INT -- "-$PID"
  wait_for "$work/stderr" "stopping"
  # The fake awk sleeps before converting; the second Ctrl-C lands there.
  sleep 0.3
  kill -INT -- "-$PID"
  finish
  ((STATUS == 130)) || fail "exit status $STATUS after a second signal, not 130"
  [[ ! -e $work/out.trace ]] || fail "a trace written although conversion was interrupted"
  [[ ! -e $work/out.trace.partial ]] || fail "partial output left"
  grep -q -- "--convert $work/raw -o $work/out.trace" "$work/stderr" || fail "no advice on converting"
  check_clean
  # The kept raw capture converts, and says which devices it saw.
  bash "$script" --convert "$work/raw" -o "$work/out.trace" || fail "--convert of the kept capture"
  STATUS=0
  check_trace
}

rounds=${2:-1}
case ${1:-} in
  sigint) case_sigint "$rounds" ;;
  sigterm) case_sigterm "$rounds" ;;
  second-signal) case_second_signal ;;
  *)
    echo "usage: $0 sigint|sigterm|second-signal [ROUNDS]" >&2
    exit 2
    ;;
esac
echo "PASS: $1"
