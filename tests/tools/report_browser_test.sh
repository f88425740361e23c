#!/usr/bin/env bash
# `swiotlb report` checked in a real browser: renders the sample trace's
# report, loads it in headless Chromium, and checks the DOM Chromium built
# (every plot with its series, axis labels, the advice line, no script
# errors) and that the screenshot is not blank (pixel variance, computed by
# Chromium from the PNG itself, so nothing beyond the browser is needed).
#
# Usage: report_browser_test.sh SWIOTLB_BINARY SAMPLE_TRACE OUTPUT_DIR
# Leaves report.html, dom.html, report.png and console.log in OUTPUT_DIR.
# Exits 77 (skipped) when no chromium is installed.
set -euo pipefail

swiotlb=$1
sample=$2
out=$3
mkdir -p "$out"
trap 'rm -rf "$out/profile"' EXIT
out=$(cd "$out" && pwd)

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then
    browser=$b
    break
  fi
done
if [ -z "$browser" ]; then
  echo "SKIP: no chromium (scripts/install-deps.sh installs it)"
  exit 77
fi

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Headless Chromium, with a profile of its own so that runs do not meet.
headless() {
  "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$out/profile" --enable-logging=stderr --v=0 "$@"
}

"$swiotlb" report "$sample" -o "$out/report.html" --ram 16G >/dev/null

headless --virtual-time-budget=3000 --dump-dom "file://$out/report.html" \
  >"$out/dom.html" 2>"$out/console.log"
dom=$(cat "$out/dom.html")

# Script errors: the page's own counter, and Chromium's console log.
grep -q 'data-ready="1"' <<<"$dom" || fail "the page's load handler did not run"
grep -q 'data-js-errors="0"' <<<"$dom" || fail "script errors on the page"
if grep -Ei 'CONSOLE.*(error|uncaught)|Uncaught ' "$out/console.log"; then
  fail "console errors (see $out/console.log)"
fi

svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
[ "$svgs" -ge 4 ] || fail "only $svgs <svg> elements"

# The svg element of one chart, on one line.
chart() {
  tr '\n' ' ' <<<"$dom" | grep -o "<svg[^>]*data-chart=\"$1\".*" | sed 's|</svg>.*||'
}
count() {
  grep -o "$2" <<<"$1" | wc -l
}
expect_series() {  # CHART SERIES-COUNT
  local svg n
  svg=$(chart "$1")
  [ -n "$svg" ] || fail "no chart $1"
  n=$(count "$svg" '<polyline class="series"')
  [ "$n" -eq "$2" ] || fail "chart $1 has $n series, expected $2"
}
# Three policies, and the kernel's recorded occupancy over them.
expect_series occupancy 4
expect_series largest-free-run 3
expect_series free-runs 3
expect_series sizing-curve 3
expect_series dynamic-growth 1
for name in linux-6.1 linux fast; do
  grep -q "data-series=\"$name\" data-points=\"564\"" <<<"$(chart occupancy)" ||
    fail "occupancy has no full series for $name"
done
# The curve: a dot at every size replayed, a tick at each policy's answer.
curve=$(chart sizing-curve)
[ "$(count "$curve" '<circle')" -ge 30 ] || fail "sizing curve has too few points"
[ "$(count "$curve" 'class="marks"')" -eq 3 ] || fail "sizing curve lacks its answer ticks"
# Slot maps: a legend entry per device, cells for the 8192 slots.
for id in slot-map-device slot-map-size; do
  map=$(chart "$id")
  grep -q 'data-slots="8192"' <<<"$map" || fail "$id does not cover the pool"
  [ "$(count "$map" '<rect')" -ge 64 ] || fail "$id has too few cells"
done

for label in 'slots in use (2 KiB each)' 'event index (trace events)' \
  'largest free run (slots)' 'free runs (count)' 'pool size (slots of 2 KiB)' \
  'failed maps (count)' 'default + grown pool slots'; do
  grep -qF "class=\"axis-label\"" <<<"$dom" || fail "no axis labels"
  grep -qF ">$label</text>" <<<"$dom" || fail "no axis label '$label'"
done
[ "$(count "$dom" '<figcaption>')" -ge 7 ] || fail "plots without captions"

# The advice: the swiotlb= line with a 25% margin on a 128-slot answer.
grep -Eq 'class="swiotlb-line">swiotlb=[0-9]+,1</code>' <<<"$dom" || fail "no swiotlb= advice line"
grep -q '25% margin' <<<"$dom" || fail "the margin is not stated"
grep -q 'id="saved-coco-0"' <<<"$dom" || fail "no saving against the CoCo default"

# The screenshot, and its pixel variance measured by the browser from the PNG.
rm -f "$out/report.png"
headless --window-size=1100,1600 --screenshot="$out/report.png" "file://$out/report.html" \
  2>>"$out/console.log" >/dev/null
[ -s "$out/report.png" ] || fail "no screenshot"
{
  printf '<!DOCTYPE html><html><body><p id="v">pending</p><script>\n'
  printf 'var i=new Image();i.onload=function(){var c=document.createElement("canvas");'
  printf 'c.width=i.width;c.height=i.height;var x=c.getContext("2d");x.drawImage(i,0,0);'
  printf 'var d=x.getImageData(0,0,c.width,c.height).data,n=0,s=0,q=0;'
  printf 'for(var k=0;k<d.length;k+=4){var l=(d[k]+d[k+1]+d[k+2])/3;n++;s+=l;q+=l*l;}'
  printf 'var m=s/n;document.getElementById("v").textContent="variance="+Math.round(q/n-m*m)'
  printf '+" pixels="+n;};i.onerror=function(){document.getElementById("v").textContent="bad png";};\n'
  printf 'i.src="data:image/png;base64,'
  base64 -w0 "$out/report.png"
  printf '";</script></body></html>\n'
} >"$out/variance.html"
result=$(headless --virtual-time-budget=5000 --dump-dom "file://$out/variance.html" 2>/dev/null |
  grep -o 'variance=[0-9]* pixels=[0-9]*' || true)
[ -n "$result" ] || fail "could not measure the screenshot"
variance=${result#variance=}
variance=${variance%% *}
pixels=${result##*pixels=}
[ "$pixels" -eq $((1100 * 1600)) ] || fail "screenshot is $pixels pixels, not 1100x1600"
# A blank page has variance 0; text and plots on white give hundreds.
[ "$variance" -ge 100 ] || fail "screenshot looks blank (luminance variance $variance)"
echo "PASS: $svgs svg, screenshot variance $variance ($out/report.png)"
