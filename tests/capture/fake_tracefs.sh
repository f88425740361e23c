# shellcheck shell=bash
# A fake tracefs for testing swiotlb-capture without a kernel (sourced by the
# tests in this folder).
#
# make_fake_tracefs DIR builds DIR/tracefs with kprobe_events, error_log,
# available_filter_functions and instances/, and DIR/bin with the commands
# that stand in for the kernel's side of tracefs:
#   mkdir  of DIR/tracefs/instances/NAME makes what the kernel makes for an
#          instance (buffer_size_kb, tracing_on, events/.../enable and a FIFO
#          trace_pipe) and starts fake_kernel.sh, which writes events into
#          the FIFO while the instance's tracing_on and probe events are on
#          (the pool's state first, while its own enable is on);
#   rmdir  of an instance refuses while its events are enabled (as the kernel
#          does) and otherwise removes it;
#   awk    sleeps FAKE_SLOW_CONVERT seconds before a conversion when set, so
#          a test can signal the script while it converts.
# Run the script with PATH="DIR/bin:$PATH" SWIOTLB_CAPTURE_TRACEFS=DIR/tracefs.

make_fake_tracefs() {
  local dir=$1 here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  mkdir -p "$dir/tracefs/instances" "$dir/bin"
  : >"$dir/tracefs/kprobe_events"
  : >"$dir/tracefs/error_log"
  printf '%s\n' swiotlb_tbl_map_single swiotlb_tbl_unmap_single \
    swiotlb_sync_single_for_device swiotlb_sync_single_for_cpu 'nvme_setup_cmd [nvme]' \
    >"$dir/tracefs/available_filter_functions"

  local real_mkdir real_rmdir real_awk
  real_mkdir=$(command -v mkdir)
  real_rmdir=$(command -v rmdir)
  real_awk=$(command -v awk)
  cat >"$dir/bin/mkdir" <<SHIM
#!/usr/bin/env bash
case \$1 in
  "$dir/tracefs/instances/"*)
    "$real_mkdir" "\$1" || exit
    "$real_mkdir" -p "\$1/events/swiotlb_capture" "\$1/events/swiotlb/swiotlb_bounced"
    echo 1 >"\$1/tracing_on"
    echo 1408 >"\$1/buffer_size_kb"
    echo 0 >"\$1/events/swiotlb_capture/enable"
    "$real_mkdir" -p "\$1/events/swiotlb_capture/stlb_state"
    echo 1 >"\$1/events/swiotlb_capture/stlb_state/enable"
    echo 0 >"\$1/events/swiotlb/swiotlb_bounced/enable"
    mkfifo "\$1/trace_pipe"
    # Its own session: signals to the script's process group do not reach it.
    setsid bash "$here/fake_kernel.sh" "\$1" </dev/null >/dev/null 2>&1 &
    echo \$! >>"$dir/kernel.pids"
    ;;
  *) exec "$real_mkdir" "\$@" ;;
esac
SHIM
  cat >"$dir/bin/rmdir" <<SHIM
#!/usr/bin/env bash
case \$1 in
  "$dir/tracefs/instances/"*)
    if [[ \$(<"\$1/events/swiotlb_capture/enable") != 0 ]]; then
      echo "rmdir: failed to remove '\$1': Device or resource busy" >&2
      exit 1
    fi
    rm -rf "\$1"
    ;;
  *) exec "$real_rmdir" "\$@" ;;
esac
SHIM
  cat >"$dir/bin/awk" <<SHIM
#!/usr/bin/env bash
[[ -n \${FAKE_SLOW_CONVERT:-} ]] || exec "$real_awk" "\$@"
for a in "\$@"; do
  if [[ \$a == META=* && -n \${FAKE_SLOW_CONVERT:-} ]]; then sleep "\$FAKE_SLOW_CONVERT"; fi
done
exec "$real_awk" "\$@"
SHIM
  chmod +x "$dir/bin/mkdir" "$dir/bin/rmdir" "$dir/bin/awk"
}

# Ends the fake kernel writers DIR's instances started (by their ids).
stop_fake_kernels() {
  local pid
  [[ -e $1/kernel.pids ]] || return 0
  while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$1/kernel.pids"
}

# Probes added to DIR/tracefs/kprobe_events and not removed again, one a line.
probes_left() {
  awk '
    /^[pr]:/ { n = $1; sub(/^[pr]:/, "", n); live[n] = 1 }
    /^-:/ { n = $1; sub(/^-:/, "", n); delete live[n] }
    END { for (n in live) print n }
  ' "$1/tracefs/kprobe_events"
}
