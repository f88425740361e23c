// The report page (report_html.h).
#include "report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "report_svg.h"
#include "report_units.h"

namespace swiotlb::cli {
namespace {

// Drawn columns of a full-width chart: more would not show.
constexpr std::size_t kChartColumns = 900;
constexpr std::string_view kFreeColor = "#e8e8e8";

constexpr std::string_view kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 4px}
figure{margin:8px 0 18px}figcaption{color:#555;font-size:13px;margin-top:2px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}
.advice{border:2px solid #2ca02c;background:#f3fbf3;padding:10px 14px;border-radius:6px}
.swiotlb-line{font:bold 17px ui-monospace,monospace;background:#fff;padding:2px 6px;border:1px solid #9c9}
svg.chart{max-width:100%;height:auto}svg .tick,svg .legend{font-size:11px;fill:#444}svg .axis-label{font-size:12px;fill:#222}
.foot{color:#777;font-size:12px;margin-top:30px}
)";

constexpr std::string_view kScript = R"(
(function(){var h=document.documentElement;h.setAttribute('data-js-errors','0');
window.addEventListener('error',function(){h.setAttribute('data-js-errors',String(Number(h.getAttribute('data-js-errors'))+1));});
window.addEventListener('load',function(){var n=document.querySelectorAll('svg.chart').length;
var c=document.getElementById('plot-count');if(c){c.textContent=n+' plots';}h.setAttribute('data-ready','1');});})();
)";

std::string figure(const std::string& title, const std::string& svg, const std::string& caption) {
  return fmt::format("<figure><h3>{}</h3>{}<figcaption>{}</figcaption></figure>\n",
                     xml_escape(title), svg, xml_escape(caption));
}

// The x of event i: seconds when the trace has times, else the index.
double event_x(const TraceReport& r, std::uint64_t i) {
  return r.seconds.empty() ? static_cast<double>(i) : r.seconds[i];
}

std::string x_label(const TraceReport& r) {
  return r.seconds.empty() ? "event index (trace events)" : "time since the first event (s)";
}

std::vector<double> xs_of(const TraceReport& r, const std::vector<std::uint64_t>& events) {
  std::vector<double> out;
  out.reserve(events.size());
  for (const std::uint64_t e : events) {
    out.push_back(event_x(r, e));
  }
  return out;
}

std::string device_name(const sim::TraceDevice& d) {
  return d.name.empty() ? d.id : d.id + " " + d.name;
}

// The series of the trace's own kernel's policy, else the first.
const sim::ReplaySeries& main_series(const TraceReport& r) {
  const std::string_view own = sim::default_policy_for(r.trace);
  for (const sim::ReplaySeries& s : r.series) {
    if (s.policy == own) {
      return s;
    }
  }
  return r.series.front();
}

// "16 GiB" for whole GiB, else MiB.
std::string ram_text(std::uint64_t bytes) {
  return bytes % (std::uint64_t{1} << 30) == 0 ? fmt::format("{} GiB", bytes >> 30) : mib(bytes);
}

std::string advice(const TraceReport& r, std::size_t n, const PageOptions& o) {
  const sim::PolicySize& best = r.sizing.recommended();
  std::string out = fmt::format(R"(<div class="advice" id="advice-{}"><h3>Advice</h3>)", n);
  if (!best.found) {
    out += fmt::format(
        "<p>No pool up to {} slots serves every map of this trace under {} "
        "({} map(s) larger than one segment).</p></div>\n",
        sim::kMaxSizingSlots, xml_escape(best.policy), best.unservable_maps);
    return out;
  }
  out += fmt::format(R"(<p>Boot with <code class="swiotlb-line">{}</code></p>)",
                     xml_escape(best.swiotlb_param()));
  out += fmt::format(
      "<p>Under <b>{}</b> (the policy of the trace's kernel) at {} area(s), the smallest pool with "
      "no failed map is <b>{} slots</b> ({}); the line adds a <b>{}% margin</b> ({} slots, "
      "--margin {}%). A kernel with areas (6.0 and later) rounds it up to {} slots ({}) when it "
      "boots.</p>",
      xml_escape(best.policy), best.nareas, best.nslabs, mib(best.bytes()), o.margin_percent,
      best.advised_nslabs, o.margin_percent, best.boot_nslabs, mib(best.boot_bytes()));
  const std::uint64_t exact_boot = sim::kernel_pool_slots(best.nslabs, best.nareas);
  if (exact_boot < best.boot_nslabs) {
    out += fmt::format(
        "<p>The margin crosses a power of two: without it such a kernel boots {} slots ({}), "
        "which still serves every map of this trace, with {} slots to spare.</p>",
        exact_boot, mib(exact_boot << 11), exact_boot - best.nslabs);
  }
  out += r.flags.empty()
             ? std::string(
                   "<p>The trace records no <code>swiotlb=</code> flags; give "
                   "<code>--cmdline</code> to keep a <code>force</code>.</p>")
             : fmt::format("<p>Flags kept from the recorded command line: <code>{}</code>.</p>",
                           xml_escape(r.flags));
  const auto saved = [&](std::uint64_t theirs) {
    return signed_mib(static_cast<std::int64_t>(theirs) -
                      static_cast<std::int64_t>(best.boot_bytes()));
  };
  out += fmt::format(
      R"(<p id="saved-default-{}">Memory saved against the kernel default ({}): <b>{}</b>.</p>)", n,
      mib(r.sizing.default_bytes), saved(r.sizing.default_bytes));
  if (r.sizing.coco_default_bytes && o.ram_bytes) {
    out += fmt::format(
        R"(<p id="saved-coco-{}">Memory saved against a confidential (SEV/TDX) guest's default )"
        "for {} of RAM (6% of RAM, at least 64 MiB, at most 1 GiB, rounded as the kernel "
        "does: {}): <b>{}</b>.</p>",
        n, ram_text(*o.ram_bytes), mib(*r.sizing.coco_default_bytes),
        saved(*r.sizing.coco_default_bytes));
  } else {
    out +=
        "<p>Give <code>--ram</code> to compare with a confidential (SEV/TDX) guest's default, "
        "6% of RAM capped at 1 GiB.</p>";
  }
  out += "</div>\n";
  return out;
}

std::string occupancy(const TraceReport& r) {
  LineChart c;
  c.id = "occupancy";
  c.x_label = x_label(r);
  c.y_label = "slots in use (2 KiB each)";
  for (std::size_t i = 0; i < r.series.size(); ++i) {
    const sim::ReplaySeries& s = r.series[i];
    ChartSeries line{s.policy, std::string(palette(i)), {}, {}};
    min_max_envelope(s.used, r.seconds, kChartColumns, line.x, line.y);
    c.series.push_back(std::move(line));
    if (!s.failed_events.empty()) {
      c.marks.push_back(
          {"failed maps (" + s.policy + ")", std::string(palette(i)), xs_of(r, s.failed_events)});
    }
  }
  const sim::ReplaySeries& own = main_series(r);
  if (!own.kernel_used.empty()) {
    ChartSeries kernel{"kernel (recorded)", "#000", {}, {}};
    kernel.dashed = true;
    min_max_envelope(own.kernel_used, r.seconds, kChartColumns, kernel.x, kernel.y);
    c.series.push_back(std::move(kernel));
  }
  if (!own.kernel_failed_events.empty()) {
    c.marks.push_back({"maps the kernel failed", "#000", xs_of(r, own.kernel_failed_events), true});
  }
  c.rules.push_back(
      {fmt::format("pool ({} slots)", own.nslabs), "#888", static_cast<double>(own.nslabs)});
  return figure("Occupancy over time", render_line_chart(c),
                fmt::format("Slots in use after each event when the trace replays through a "
                            "{}-slot pool under each policy (the dashed line is the kernel's own "
                            "occupancy rebuilt from the addresses it recorded, ticks at the "
                            "bottom are maps the pool failed); lines are drawn as each pixel "
                            "column's minimum and maximum, so no peak is lost.",
                            own.nslabs));
}

std::string fragmentation(const TraceReport& r, bool largest) {
  LineChart c;
  c.id = largest ? "largest-free-run" : "free-runs";
  c.x_label = x_label(r);
  c.y_label = largest ? "largest free run (slots)" : "free runs (count)";
  for (std::size_t i = 0; i < r.series.size(); ++i) {
    ChartSeries line{r.series[i].policy, std::string(palette(i)), {}, {}};
    for (const sim::FragmentationSample& f : r.series[i].fragmentation) {
      line.x.push_back(event_x(r, f.event));
      line.y.push_back(static_cast<double>(largest ? f.largest_free_run : f.free_runs));
    }
    c.series.push_back(std::move(line));
  }
  if (largest) {
    c.rules.push_back({"one segment (128 slots)", "#888", 128});
    return figure(
        "Fragmentation: largest free run", render_line_chart(c),
        "The longest stretch of free slots in the pool, measured at about a thousand evenly "
        "spaced events: when it falls below a map's slot count (at most one 128-slot segment) "
        "that map can fail although slots are free.");
  }
  return figure("Fragmentation: number of free runs", render_line_chart(c),
                "How many separate stretches the free slots are cut into, measured at about a "
                "thousand evenly spaced events: the higher, the more the free space is "
                "scattered between live mappings.");
}

std::string slot_maps(const TraceReport& r) {
  const sim::ReplaySeries& s = main_series(r);
  const int columns =
      static_cast<int>(std::uint64_t{128} * std::max<std::uint64_t>(1, (s.nslabs + 16383) / 16384));
  SlotMap by_device;
  by_device.id = "slot-map-device";
  by_device.columns = columns;
  by_device.cell_class = s.owner_at_peak;
  by_device.colors.emplace_back(kFreeColor);
  by_device.names.emplace_back("free");
  for (std::size_t d = 0; d < r.trace.devices.size(); ++d) {
    by_device.colors.emplace_back(palette(d));
    by_device.names.push_back(device_name(r.trace.devices[d]));
  }
  std::string out = figure(
      fmt::format("Slot map at the peak, by device ({} slots in use, {})", s.peak_slots, s.policy),
      render_slot_map(by_device),
      fmt::format("Each cell is one 2 KiB slot of the {}-slot pool, {} to a row, at the event "
                  "where occupancy peaked (event {}), coloured by the device whose mapping held "
                  "it; grey cells are free.",
                  s.nslabs, columns, s.peak_event));
  static constexpr std::array<std::uint32_t, 5> kLimits = {4096, 16384, 65536, 131072, 262144};
  SlotMap by_size;
  by_size.id = "slot-map-size";
  by_size.columns = columns;
  by_size.colors = {std::string(kFreeColor), "#c6dbef", "#6baed6", "#2171b5", "#08519c", "#08306b"};
  by_size.names = {"free", "<= 4 KiB", "<= 16 KiB", "<= 64 KiB", "<= 128 KiB", "<= 256 KiB"};
  by_size.cell_class.reserve(s.map_size_at_peak.size());
  for (const std::uint32_t bytes : s.map_size_at_peak) {
    std::uint16_t kind = 0;
    if (bytes != 0) {
      kind = static_cast<std::uint16_t>(kLimits.size());
      for (std::size_t k = 0; k < kLimits.size(); ++k) {
        if (bytes <= kLimits[k]) {
          kind = static_cast<std::uint16_t>(k + 1);
          break;
        }
      }
    }
    by_size.cell_class.push_back(kind);
  }
  out += figure("Slot map at the peak, by mapping size", render_slot_map(by_size),
                "The same slots coloured by the size of the mapping that held each one, darker "
                "for larger mappings: large mappings need long free runs, small ones scattered "
                "between them cut those runs up.");
  return out;
}

std::string device_table(const TraceReport& r) {
  std::string out = R"(<h3>Per device</h3><table class="devices"><tr><th class="l">device</th>)"
                    "<th>maps</th><th>bytes mapped</th>";
  for (const sim::ReplaySeries& s : r.series) {
    out += fmt::format("<th>peak slots ({0})</th><th>failures ({0})</th>", xml_escape(s.policy));
  }
  out += "</tr>";
  for (std::size_t d = 0; d < r.trace.devices.size(); ++d) {
    const sim::DeviceSeriesTotals& first = r.series.front().devices[d];
    out += fmt::format(R"(<tr><td class="l">{}</td><td>{}</td><td>{}</td>)",
                       xml_escape(device_name(r.trace.devices[d])), first.maps, mib(first.bytes));
    for (const sim::ReplaySeries& s : r.series) {
      out += fmt::format("<td>{}</td><td>{}</td>", s.devices[d].peak_slots, s.devices[d].failures);
    }
    out += "</tr>";
  }
  out += fmt::format(
      "</table><p>Maps and bytes are the trace's; peak slots and failures are from the replay "
      "through the trace's {}-slot pool.</p>\n",
      r.series.front().nslabs);
  return out;
}

std::string below_text(const TraceReport& r, const sim::PolicySize& s) {
  if (s.below_nslabs == 0) {
    return "none smaller";
  }
  std::string text = fmt::format("{} slots fail", s.below_nslabs);
  if (s.first_failure_below) {
    const auto at = std::lower_bound(
        r.trace.events.begin(), r.trace.events.end(), s.first_failure_below->line,
        [](const sim::TraceEvent& e, std::uint32_t line) { return e.line < line; });
    text += fmt::format(" at line {} ({} bytes", s.first_failure_below->line,
                        s.first_failure_below->size);
    if (at != r.trace.events.end() && at->line == s.first_failure_below->line) {
      text += ", " + device_name(r.trace.devices[at->device]);
    }
    text += ")";
  }
  return text;
}

std::string sizing(const TraceReport& r) {
  std::string out;
  if (!r.curves.empty()) {
    LineChart c;
    c.id = "sizing-curve";
    c.x_label = "pool size (slots of 2 KiB)";
    c.y_label = "failed maps (count)";
    for (std::size_t i = 0; i < r.curves.size(); ++i) {
      ChartSeries line{r.curves[i].policy, std::string(palette(i)), {}, {}};
      line.dots = true;
      for (const sim::CurvePoint& p : r.curves[i].points) {
        line.x.push_back(static_cast<double>(p.nslabs));
        line.y.push_back(static_cast<double>(p.failures));
      }
      c.series.push_back(std::move(line));
      for (const sim::PolicySize& s : r.sizing.sizes) {
        if (s.policy == r.curves[i].policy && s.nareas == r.curve_nareas && s.found) {
          c.marks.push_back({"smallest with none (" + s.policy + ")",
                             std::string(palette(i)),
                             {static_cast<double>(s.nslabs)},
                             true});
        }
      }
    }
    const std::uint64_t step =
        r.curves.front().points.size() > 1
            ? r.curves.front().points[1].nslabs - r.curves.front().points[0].nslabs
            : 128;
    out += figure("Sizing curve", render_line_chart(c),
                  fmt::format("Failed maps over a whole replay at each pool size from {} to {} "
                              "slots in {}-slot steps at {} area(s); ticks at the top mark each "
                              "policy's smallest size with no failure, found to 128 slots.",
                              r.curves.front().points.front().nslabs,
                              r.curves.front().points.back().nslabs, step, r.curve_nareas));
  }
  out +=
      R"(<h3>Smallest pool per policy and area count</h3><table class="sizes"><tr>)"
      R"(<th class="l">policy</th><th>areas</th><th>peak demand</th><th>smallest (slots)</th>)"
      R"(<th>MiB</th><th class="l">one step below</th><th class="l">advice</th><th>boots as</th></tr>)";
  for (const sim::PolicySize& s : r.sizing.sizes) {
    if (!s.found) {
      out += fmt::format(
          R"(<tr><td class="l">{}</td><td>{}</td><td>{}</td><td colspan="5" class="l">none up )"
          "to {} slots ({} map(s) larger than a segment)</td></tr>",
          xml_escape(s.policy), s.nareas, s.peak_demand_slots, sim::kMaxSizingSlots,
          s.unservable_maps);
      continue;
    }
    out +=
        fmt::format(R"(<tr><td class="l">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>)"
                    R"(<td class="l">{}</td><td class="l"><code>{}</code></td><td>{}</td></tr>)",
                    xml_escape(s.policy), s.nareas, s.peak_demand_slots, s.nslabs, mib(s.bytes()),
                    xml_escape(below_text(r, s)), xml_escape(s.swiotlb_param()), s.boot_nslabs);
  }
  out += "</table>\n";
  return out;
}

std::string dynamic(const TraceReport& r) {
  std::string out = "<h2>Dynamic growth</h2>";
  if (!r.dynamic) {
    return out + fmt::format("<p>Not replayed: {}.</p>", xml_escape(r.dynamic_unavailable));
  }
  const DynamicTimeline& d = *r.dynamic;
  const sim::DynamicReplayReport& rep = d.report;
  LineChart c;
  c.id = "dynamic-growth";
  c.x_label = "event index (trace events)";
  c.y_label = "default + grown pool slots";
  ChartSeries pools{"pool slots", std::string(palette(2)), d.pool_event, d.pool_slots};
  pools.step = true;
  c.series.push_back(std::move(pools));
  if (!d.transient_events.empty()) {
    c.marks.push_back({"transient pool made", std::string(palette(1)), d.transient_events});
  }
  out += figure("Dynamic growth timeline", render_line_chart(c),
                fmt::format("Slots of the default and grown pools as a kernel with "
                            "swiotlb=dynamic ({} policy, pools searched newest first) grows from "
                            "a {}-slot default pool in {}-slot steps; ticks mark maps that found "
                            "no room and got a transient pool of their own.",
                            rep.policy, rep.nslabs, rep.grow_nslabs));
  out +=
      fmt::format(R"(<table class="dynamic"><tr><th class="l">pools grown</th><td>{}</td></tr>)"
                  R"(<tr><th class="l">default + grown slots at the peak</th><td>{} ({})</td></tr>)"
                  R"(<tr><th class="l">transient pools made</th><td>{}</td></tr>)"
                  R"(<tr><th class="l">transient slots at the peak</th><td>{}</td></tr>)"
                  R"(<tr><th class="l">memory at the peak (all pools)</th><td>{}</td></tr>)"
                  R"(<tr><th class="l">maps that failed</th><td>{}</td></tr>)"
                  R"(<tr><th class="l">growth model floor (sizing)</th><td>{}</td></tr></table>)",
                  rep.pools_grown, rep.total_slots_peak, mib(rep.total_slots_peak << 11),
                  rep.transient_pools, rep.transient_slots_peak, mib(rep.peak_bytes),
                  rep.failures + rep.would_spin, mib(r.sizing.dynamic_peak_bytes));
  return out;
}

std::string trace_section(const TraceReport& r, std::size_t n, const PageOptions& o) {
  const sim::Trace& t = r.trace;
  std::uint64_t maps = 0;
  for (const sim::TraceEvent& e : t.events) {
    maps += e.op == sim::TraceOp::map ? 1 : 0;
  }
  std::string out =
      fmt::format(R"(<section class="trace" id="trace-{}"><h2>{}</h2>)", n, xml_escape(r.path));
  out += fmt::format("<p>Kernel {}; {} events, {} maps, {} device(s); ",
                     t.kernel.empty() ? "not recorded" : xml_escape(t.kernel), t.events.size(),
                     maps, t.devices.size());
  out += t.pool ? fmt::format("recorded pool {} slots ({}) in {} area(s).</p>", t.pool->nslabs,
                              mib(t.pool->nslabs << 11), t.pool->nareas)
                : std::string("no pool recorded.</p>");
  out += advice(r, n, o);
  out += "<h2>Occupancy</h2>" + occupancy(r);
  out += "<h2>Fragmentation</h2>" + fragmentation(r, true) + fragmentation(r, false);
  out += "<h2>The pool at its peak</h2>" + slot_maps(r) + device_table(r);
  out += "<h2>Sizing</h2>" + sizing(r);
  out += dynamic(r);
  out += "</section>\n";
  return out;
}

}  // namespace

std::string render_report_page(const std::vector<TraceReport>& reports,
                               const PageOptions& options) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  out += "<title>swiotlb report</title><style>";
  out += kStyle;
  out += "</style><script>";
  out += kScript;
  out += "</script></head><body><h1>swiotlb report</h1>\n";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    out += trace_section(reports[i], i, options);
  }
  out += fmt::format(
      R"(<p class="foot">Made by <code>{}</code>; <span id="plot-count"></span>. Pool sizes )"
      "are in slots of 2 KiB; MiB are 2^20 bytes.</p></body></html>\n",
      xml_escape(options.command_line));
  return out;
}

}  // namespace swiotlb::cli
