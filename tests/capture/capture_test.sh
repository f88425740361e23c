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
#   duration       -d: stops by itself; the pool's state is read at the start
#   layouts        the pool state probe's offsets for 6.1, 6.6 and 6.12
#   boot-args      the boot command line's probes, parsed back
#   collect        a boot-time recording collected and converted
#   dynamic        a kernel whose pools grow: the pool probe, and the pool
#                  events it records
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
  env "$@" PATH="$work/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" SWIOTLB_CAPTURE_RELEASE=6.1.192 \
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
  # The pool's state at the start, once, before the first map.
  [[ $(grep -c '^# state area=0 index=' "$work/out.trace") == 1 ]] || fail "not one '# state' line for area 0"
  [[ $(grep -m 1 -E '^(# state area|map )' "$work/out.trace") == "# state area="* ]] || fail "the state comes after a map"
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

# -d: the recording ends by itself, no sooner than asked; the pool's state
# probe goes off after its first record.
case_duration() {
  local started ended maps_after bad
  rm -f "$work/out.trace" "$work/raw"
  started=${EPOCHREALTIME/[.,]/}
  PATH="$work/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" SWIOTLB_CAPTURE_RELEASE=6.6.60 \
    bash "$script" -d 2 -o "$work/out.trace" --raw "$work/raw" 2>"$work/stderr" || fail "status $?"
  ended=${EPOCHREALTIME/[.,]/}
  STATUS=0
  check_trace
  ((ended - started >= 2000000)) || fail "-d 2 ended after $((ended - started)) us"
  grep -q ': stlb_state:' "$work/raw" || fail "no state recorded"
  # The fake kernel writes a state record before each map while the probe is
  # on; maps after the last one show that the script turned it off.
  maps_after=$(awk '/: stlb_state:/ { n = 0 } /: stlb_map:/ { n++ } END { print n }' "$work/raw")
  ((maps_after >= 2)) || fail "the state probe stayed on ($maps_after maps after the last state record)"
  # Bad durations are refused before anything is set up.
  for bad in 1.5 -1 1234567890 x; do
    PATH="$work/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" SWIOTLB_CAPTURE_RELEASE=6.6.60 \
      bash "$script" -d "$bad" -o "$work/out.trace" 2>"$work/stderr" && fail "-d $bad accepted"
    grep -q -- "--duration takes whole seconds" "$work/stderr" || fail "-d $bad: $(cat "$work/stderr")"
  done
  check_clean
  return 0
}

# The offsets the state probe reads at, from the table, for each kernel
# layout (no BTF here).
case_layouts() {
  local release expect
  for release in 6.1.192 6.6.60 6.12.117; do
    case $release in
      6.1.*) expect="nareas=@io_tlb_default_mem+52:u32 a0_index=+8(@io_tlb_default_mem+64):u32 a0_used=+0(@io_tlb_default_mem+64):u64 a1_index=+24(@io_tlb_default_mem+64):u32" ;;
      *) expect="nareas=@io_tlb_default_mem+36:u32 total_used=@io_tlb_default_mem+88:u64 used_hiwater=@io_tlb_default_mem+96:u64 a0_index=+8(@io_tlb_default_mem+48):u32 a0_used=+0(@io_tlb_default_mem+48):u64 a1_index=+24(@io_tlb_default_mem+48):u32" ;;
    esac
    SWIOTLB_CAPTURE_RELEASE=$release SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" \
      bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run for $release"
    grep -q "^p:swiotlb_capture/stlb_state swiotlb_tbl_map_single $expect" "$work/plan" ||
      fail "state probe for $release: $(grep stlb_state "$work/plan")"
  done
  SWIOTLB_CAPTURE_RELEASE=6.3.1 SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" \
    bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run for 6.3.1"
  grep -q stlb_state "$work/plan" && fail "a state probe for a kernel not in the table"
  grep -q "not in the table" "$work/stderr" || fail "no warning for a kernel not in the table"
}

# boot-args prints the same probes the live capture adds (but the pool's
# state: at boot the pool is empty), in the kernel's boot syntax.
case_boot_args() {
  local args
  SWIOTLB_CAPTURE_RELEASE=6.6.60 SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" \
    bash "$script" --dry-run >"$work/plan" 2>/dev/null || fail "--dry-run"
  SWIOTLB_CAPTURE_RELEASE=6.6.60 SWIOTLB_CAPTURE_TRACEFS="$work/tracefs" \
    bash "$script" boot-args --buffer-kb 65536 >"$work/boot" 2>"$work/stderr" || fail "boot-args"
  [[ $(wc -l <"$work/boot") == 1 ]] || fail "boot-args printed more than one line"
  grep -q ' trace_buf_size=65536K trace_options=nooverwrite$' "$work/boot" || fail "no buffer size: $(cat "$work/boot")"
  args=$(sed -n 's/^kprobe_event="\([^"]*\)" .*/\1/p' "$work/boot")
  [[ -n $args ]] || fail "no kprobe_event=\"...\": $(cat "$work/boot")"
  [[ $args != *" "* ]] || fail "a space in kprobe_event"
  tr ';' '\n' <<<"$args" | tr ',' ' ' >"$work/boot-probes"
  grep -v '/stlb_state ' "$work/plan" | diff - "$work/boot-probes" >&2 || fail "boot probes differ from the live ones"
  grep -q 'stlb_map ' "$work/boot-probes" || fail "no map probe at boot"
}

# collect: what the boot-time probes recorded, from the top-level buffer.
case_collect() {
  local t=$work/tracefs
  mkdir -p "$t/events/swiotlb_capture" "$t/per_cpu/cpu0" "$t/per_cpu/cpu1"
  echo 1 >"$t/events/swiotlb_capture/enable"
  printf 'dropped events: 0\n' >"$t/per_cpu/cpu0/stats"
  printf 'entries: 3\ndropped events: 5\n' >"$t/per_cpu/cpu1/stats"
  # As the kernel lists boot-time probes (a kretprobe with its maxactive).
  printf '%s\n' 'p:swiotlb_capture/stlb_map swiotlb_tbl_map_single dev=+0(+0(%di)):string' \
    'r16:swiotlb_capture/stlb_map_ret swiotlb_tbl_map_single tlb=%ax:x64' \
    'p:swiotlb_capture/stlb_unmap swiotlb_tbl_unmap_single tlb=%si:x64' >"$t/kprobe_events"
  {
    printf '# tracer: nop\n#\n# entries-in-buffer/entries-written: 6/6   #P:2\n#\n'
    grep -v '^#' "$here/../data/capture-raw-6.1-x86_64.txt"
  } >"$t/trace"
  SWIOTLB_CAPTURE_RELEASE=6.1.192 SWIOTLB_CAPTURE_TRACEFS="$t" \
    bash "$script" collect -o "$work/out.trace" 2>"$work/stderr" || fail "collect: status $?"
  [[ $(<"$t/events/swiotlb_capture/enable") == 0 ]] || fail "the boot probes still enabled"
  STATUS=0
  grep -q '^# warning: the boot buffer filled: the kernel dropped 5 later events' "$work/out.trace" ||
    fail "no warning about dropped events"
  [[ $(grep -c "^map " "$work/out.trace") == 4 ]] || fail "not the 4 maps of the buffer"
  [[ -z $(probes_left "$work") ]] || fail "boot probes left: $(probes_left "$work")"
  # Without boot-time probes there is nothing to collect.
  rm -r "$t/events/swiotlb_capture"
  SWIOTLB_CAPTURE_TRACEFS="$t" bash "$script" collect -o "$work/none.trace" 2>"$work/stderr" &&
    fail "collect without boot probes succeeded"
  grep -q "no boot-time probes" "$work/stderr" || fail "no reason given"
}

# A kernel whose pools grow (swiotlb_dyn_alloc) and whose swiotlb_alloc_pool
# the compiler cloned: the clone gets the pool probe, the state is read at
# the dynamic layout's offsets, and the pools it records become pool events.
case_dynamic() {
  local t=$work/tracefs aff=$work/tracefs/available_filter_functions
  printf '%s\n' swiotlb_dyn_alloc swiotlb_alloc_pool.isra.0 'swiotlb_alloc_pool.part.0' >>"$aff"
  SWIOTLB_CAPTURE_RELEASE=6.12.117 SWIOTLB_CAPTURE_TRACEFS="$t" \
    bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run"
  # shellcheck disable=SC2016 # $retval is the kernel's, not the shell's
  grep -qxF 'r:swiotlb_capture/stlb_pool swiotlb_alloc_pool.isra.0 start=+0($retval):x64 nslabs=+24($retval):u64 nareas=+36($retval):u32' "$work/plan" ||
    fail "pool probe: $(grep stlb_pool "$work/plan")"
  grep -q 'total_used=@io_tlb_default_mem+192:u64 used_hiwater=@io_tlb_default_mem+200:u64' "$work/plan" ||
    fail "the state not at the dynamic layout's offsets"
  # A recording: the worker's pool and transient pools with their deletions.
  rm -f "$work/out.trace" "$work/raw"
  PATH="$work/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS="$t" SWIOTLB_CAPTURE_RELEASE=6.12.117 \
    bash "$script" -d 2 -o "$work/out.trace" --raw "$work/raw" 2>"$work/stderr" || fail "status $?"
  grep -q '^pool_add [0-9]* 1 grown1 grown 0x7f000000 2048 1$' "$work/out.trace" || fail "no grown pool"
  grep -q '^pool_add [0-9]* 0 transient1 transient 0x1400[0-9a-f]* 2 1$' "$work/out.trace" || fail "no transient pool"
  grep -q '^pool_del [0-9]* 0 transient1$' "$work/out.trace" || fail "no deletion of the transient pool"
  # Each transient pool_add is followed by the map it serves.
  awk '/^pool_add .* transient / { want = $6; next } want != "" { if ($1 != "map" || $11 != want) bad = 1; want = "" } END { exit bad }' \
    "$work/out.trace" || fail "a transient pool not followed by its map"
  check_clean
  # The function itself, when listed, is preferred to a clone.
  echo swiotlb_alloc_pool >>"$aff"
  SWIOTLB_CAPTURE_RELEASE=6.12.117 SWIOTLB_CAPTURE_TRACEFS="$t" \
    bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run"
  grep -q '^r:swiotlb_capture/stlb_pool swiotlb_alloc_pool start=' "$work/plan" || fail "the clone preferred"
  # A kernel that grows with nothing to probe says so; one that never grows
  # needs no probe and no warning.
  sed -i '/^swiotlb_alloc_pool/d' "$aff"
  SWIOTLB_CAPTURE_RELEASE=6.12.117 SWIOTLB_CAPTURE_TRACEFS="$t" \
    bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run"
  grep -q stlb_pool "$work/plan" && fail "a pool probe with nothing to probe"
  grep -q "no swiotlb_alloc_pool can be probed" "$work/stderr" || fail "no warning"
  sed -i '/^swiotlb_dyn_alloc/d' "$aff"
  SWIOTLB_CAPTURE_RELEASE=6.12.117 SWIOTLB_CAPTURE_TRACEFS="$t" \
    bash "$script" --dry-run >"$work/plan" 2>"$work/stderr" || fail "--dry-run"
  grep -q "swiotlb_alloc_pool" "$work/stderr" && fail "a warning for a kernel that never grows"
  return 0
}

rounds=${2:-1}
case ${1:-} in
  sigint) case_sigint "$rounds" ;;
  sigterm) case_sigterm "$rounds" ;;
  second-signal) case_second_signal ;;
  duration) case_duration ;;
  layouts) case_layouts ;;
  boot-args) case_boot_args ;;
  collect) case_collect ;;
  dynamic) case_dynamic ;;
  *)
    echo "usage: $0 sigint|sigterm|second-signal|duration|layouts|boot-args|collect|dynamic [ROUNDS]" >&2
    exit 2
    ;;
esac
echo "PASS: $1"
