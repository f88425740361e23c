#!/usr/bin/env bash
# Times `swiotlb report` on a synthetic 1 M-event trace and the page's load
# in headless Chromium, against a blank page's load in the same run (the
# browser's own start-up). A measurement, not a test: it prints numbers.
#
# Usage: scripts/report_bench.sh [BUILD_DIR] [EVENTS]   (default build/release, 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
events=${2:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seconds() {  # COMMAND...: its wall time in seconds, to the millisecond
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  printf '%d.%03d' $(((end - start) / 1000000000)) $((((end - start) / 1000000) % 1000))
}

"$build/swiotlb" workload --events "$events" -o "$work/w.trace"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), cores: $(nproc)"
echo "report of $events events: $(seconds "$build/swiotlb" report "$work/w.trace" -o "$work/r.html") s" \
  "($(($(stat -c %s "$work/r.html") / 1024)) KiB)"
browser() {
  chromium --headless --no-sandbox --disable-gpu --user-data-dir="$work/profile" --dump-dom "$1"
}
echo "headless blank page:   $(seconds browser 'data:text/html,<p>x</p>') s"
echo "headless report page:  $(seconds browser "file://$work/r.html") s"
