#!/usr/bin/env bash
# The kernel's side of a fake tracefs instance (see fake_tracefs.sh): while
# the instance exists and its tracing_on is 1, writes swiotlb map, map return
# and unmap events, as trace_pipe shows them, into the instance's trace_pipe
# FIFO, if the script enabled its probe events there. Ends when tracing_on
# goes to 0 (the real trace_pipe then ends once drained), the instance goes,
# its reader goes (SIGPIPE), or after a minute. With the script's pool probe
# (a kernel whose pools grow) it also makes a grown pool once and, every
# fifth round, a map that gets a transient pool and its unmap.
instance=$1
trap '' INT TERM
# Waits for the script's reader to open the other end.
exec 3>"$instance/trace_pipe" || exit 1
# The pool state probe, if the script added one (its probes are all added
# before tracing starts).
state_probe=0
grep -q '^p:swiotlb_capture/stlb_state ' "$instance/../../kprobe_events" && state_probe=1
pool_probe=0
grep -q '^r:swiotlb_capture/stlb_pool ' "$instance/../../kprobe_events" && pool_probe=1
n=0
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  on=$(cat "$instance/tracing_on" 2>/dev/null) || break
  [[ $on == 1 ]] || break
  if [[ $(cat "$instance/events/swiotlb_capture/enable" 2>/dev/null) == 1 ]]; then
    n=$((n + 1))
    orig=$(printf '0x1%08x' $((n * 4096)))
    tlb=$(printf '0x%x' $((0x79b31000 + (n % 64) * 4096)))
    t=$(printf '%d.%06d' $((300 + n / 1000)) $(((n % 1000) * 1000)))
    dev='dev="0000:00:05.0" mam=0xfff sbm=0xffffffff dmask=0xffffffffffffffff'
    if [[ $state_probe == 1 && $(cat "$instance/events/swiotlb_capture/stlb_state/enable" 2>/dev/null) == 1 ]]; then
      printf '%s\n' "             fio-2291    [000] .....   $t: stlb_state: (swiotlb_tbl_map_single+0x0/0x260) nareas=1 total_used=$((n % 64)) used_hiwater=64 a0_index=$((n % 64)) a0_used=$((n % 64))" >&3 || break
    fi
    printf '%s\n' \
      "             fio-2291    [000] .....   $t: stlb_map: (swiotlb_tbl_map_single+0x0/0x260) $dev orig=$orig msize=4096 asize=4096 align=0x0 dir=2 attrs=0x0" \
      "             fio-2291    [000] d..1.   $t: stlb_map_ret: (swiotlb_map+0x6b/0x1f0 <- swiotlb_tbl_map_single) tlb=$tlb" \
      "          <idle>-0       [000] d.h1.   $t: stlb_unmap: (swiotlb_tbl_unmap_single+0x0/0x70) $dev tlb=$tlb msize=4096 dir=2 attrs=0x20" >&3 || break
    if [[ $pool_probe == 1 && $n == 2 ]]; then
      printf '%s\n' "   kworker/1:1-95      [001] .....   $t: stlb_pool: (swiotlb_dyn_alloc+0x3c/0x90 <- swiotlb_alloc_pool.isra.0) start=0x7f000000 nslabs=2048 nareas=1" >&3 || break
    fi
    if [[ $pool_probe == 1 && $((n % 5)) == 0 ]]; then
      ttlb=$(printf '0x%x' $((0x140000000 + n * 8192)))
      printf '%s\n' \
        "             fio-2291    [000] .....   $t: stlb_map: (swiotlb_tbl_map_single+0x0/0x260) $dev orig=$orig msize=4096 asize=4096 align=0x0 dir=2 attrs=0x0" \
        "             fio-2291    [000] d..1.   $t: stlb_pool: (swiotlb_tbl_map_single+0x1c4/0x260 <- swiotlb_alloc_pool.isra.0) start=$ttlb nslabs=2 nareas=1" \
        "             fio-2291    [000] d..1.   $t: stlb_map_ret: (swiotlb_map+0x6b/0x1f0 <- swiotlb_tbl_map_single) tlb=$ttlb" \
        "          <idle>-0       [000] d.h1.   $t: stlb_unmap: (swiotlb_tbl_unmap_single+0x0/0x70) $dev tlb=$ttlb msize=4096 dir=2 attrs=0x20" >&3 || break
    fi
  fi
  sleep 0.02
done
exec 3>&-
