// SVG charts as text (report_svg.h).
#include "report_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace swiotlb::cli {
namespace {

constexpr double kLeft = 72;
constexpr double kRight = 16;
constexpr double kTop = 28;
constexpr double kBottom = 46;
constexpr std::size_t kTargetTicks = 6;

// Tick spacing of 1, 2 or 5 times a power of ten giving about kTargetTicks.
double nice_step(double range) {
  if (range <= 0) {
    return 1;
  }
  const double raw = range / static_cast<double>(kTargetTicks);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0}) {
    if (raw <= m * power) {
      return m * power;
    }
  }
  return 10 * power;
}

// Calls tick(t) for each multiple t of `step` from `lo` to `hi`. The ticks
// are counted in integers: adding a step to a double could stop moving it
// (a step below the value's precision) and never reach `hi`.
template <class Tick>
void for_each_tick(double lo, double hi, double step, Tick&& tick) {
  const double first = std::ceil(lo / step);
  const double last = std::floor(hi / step + 1e-9);
  if (!std::isfinite(first) || !std::isfinite(last) || last < first) {
    return;
  }
  const auto count = static_cast<int>(std::min(last - first, 10.0 * kTargetTicks));
  for (int i = 0; i <= count; ++i) {
    tick((first + i) * step);
  }
}

std::string number(double v) {
  if (std::abs(v) >= 1e6 && std::fmod(v, 1e5) == 0) {
    return fmt::format("{:g}M", v / 1e6);
  }
  if (std::abs(v) >= 1e4 && std::fmod(v, 1e3) == 0) {
    return fmt::format("{:g}k", v / 1e3);
  }
  return fmt::format("{:g}", v);
}

struct Frame {
  double x0, x1, y0, y1;            // data ranges
  double left, right, top, bottom;  // pixels

  double px(double x) const { return left + (x - x0) / (x1 - x0) * (right - left); }
  double py(double y) const { return bottom - (y - y0) / (y1 - y0) * (bottom - top); }
};

void ranges(const LineChart& c, Frame& f) {
  double x0 = std::numeric_limits<double>::max();
  double x1 = std::numeric_limits<double>::lowest();
  double y1 = c.y_min;
  for (const ChartSeries& s : c.series) {
    for (const double x : s.x) {
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
    }
    for (const double y : s.y) {
      y1 = std::max(y1, y);
    }
  }
  for (const ChartRule& r : c.rules) {
    y1 = std::max(y1, r.y);
  }
  if (x0 > x1) {
    x0 = 0;
    x1 = 1;
  }
  if (x1 <= x0) {
    x1 = x0 + 1;
  }
  if (y1 <= c.y_min) {
    y1 = c.y_min + 1;
  }
  f.x0 = x0;
  f.x1 = x1;
  f.y0 = c.y_min;
  f.y1 = y1 * 1.05;
}

void axes(const LineChart& c, const Frame& f, std::string& out) {
  out += fmt::format(
      R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#fff" stroke="#888"/>)",
      f.left, f.top, f.right - f.left, f.bottom - f.top);
  const double xs = nice_step(f.x1 - f.x0);
  for_each_tick(f.x0, f.x1, xs, [&](double t) {
    const double x = f.px(t);
    out +=
        fmt::format(R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}" stroke="#eee"/>)"
                    R"(<text class="tick" x="{0:.1f}" y="{3:.1f}" text-anchor="middle">{4}</text>)",
                    x, f.top, f.bottom, f.bottom + 14, number(t));
  });
  const double ys = nice_step(f.y1 - f.y0);
  for_each_tick(f.y0, f.y1, ys, [&](double t) {
    const double y = f.py(t);
    out +=
        fmt::format(R"(<line x1="{0:.1f}" x2="{1:.1f}" y1="{2:.1f}" y2="{2:.1f}" stroke="#eee"/>)"
                    R"(<text class="tick" x="{3:.1f}" y="{4:.1f}" text-anchor="end">{5}</text>)",
                    f.left, f.right, y, f.left - 4, y + 4, number(t));
  });
  out += fmt::format(
      R"(<text class="axis-label" x="{:.1f}" y="{:.1f}" text-anchor="middle">{}</text>)",
      (f.left + f.right) / 2, f.bottom + 34, xml_escape(c.x_label));
  out +=
      fmt::format(R"svg(<text class="axis-label" transform="translate(14,{:.1f}) rotate(-90)" )svg"
                  R"(text-anchor="middle">{}</text>)",
                  (f.top + f.bottom) / 2, xml_escape(c.y_label));
}

void series_path(const ChartSeries& s, const Frame& f, std::string& out) {
  std::string points;
  points.reserve(s.x.size() * 16);
  double last_y = 0;
  for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (s.step && i != 0) {
      points += fmt::format("{:.1f},{:.1f} ", f.px(s.x[i]), f.py(last_y));
    }
    points += fmt::format("{:.1f},{:.1f} ", f.px(s.x[i]), f.py(s.y[i]));
    last_y = s.y[i];
  }
  out += fmt::format(R"(<polyline class="series" data-series="{}" data-points="{}" fill="none" )"
                     R"(stroke="{}" stroke-width="1.5"{} points="{}"/>)",
                     xml_escape(s.name), s.x.size(), s.color,
                     s.dashed ? R"( stroke-dasharray="5,3")" : "", points);
  if (s.dots) {
    out += fmt::format(R"(<g class="dots" data-series="{}">)", xml_escape(s.name));
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      out += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}"/>)", f.px(s.x[i]),
                         f.py(s.y[i]), s.color);
    }
    out += "</g>";
  }
}

void marks(const ChartMarks& m, const Frame& f, std::string& out) {
  out += fmt::format(R"(<g class="marks" data-series="{}" data-count="{}" stroke="{}">)",
                     xml_escape(m.name), m.x.size(), m.color);
  long last = std::numeric_limits<long>::min();
  for (const double x : m.x) {
    const long column = std::lround(f.px(x));
    if (column == last) {
      continue;  // one tick a pixel column
    }
    last = column;
    const double y0 = m.at_top ? f.top : f.bottom - 9;
    out +=
        fmt::format(R"(<line x1="{0}" x2="{0}" y1="{1:.1f}" y2="{2:.1f}"/>)", column, y0, y0 + 9);
  }
  out += "</g>";
}

void legend(const LineChart& c, const Frame& f, std::string& out) {
  double x = f.left;
  const auto item = [&](const std::string& name, const std::string& color, bool tick) {
    out += tick ? fmt::format(R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="8" y2="18" stroke="{1}"/>)",
                              x + 5, color)
                : fmt::format(R"(<rect x="{:.1f}" y="10" width="12" height="4" fill="{}"/>)", x,
                              color);
    out += fmt::format(R"(<text class="legend" x="{:.1f}" y="17">{}</text>)", x + 16,
                       xml_escape(name));
    x += 24 + 6.5 * static_cast<double>(name.size());
  };
  for (const ChartSeries& s : c.series) {
    item(s.name, s.color, false);
  }
  for (const ChartRule& r : c.rules) {
    item(r.name, r.color, false);
  }
  for (const ChartMarks& m : c.marks) {
    item(m.name, m.color, true);
  }
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string_view palette(std::size_t i) {
  static constexpr std::array<std::string_view, 10> kColors = {
      "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
      "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
  return kColors[i % kColors.size()];
}

std::string render_line_chart(const LineChart& c) {
  Frame f{};
  ranges(c, f);
  f.left = kLeft;
  f.right = c.width - kRight;
  f.top = kTop;
  f.bottom = c.height - kBottom;
  std::string out = fmt::format(
      R"(<svg class="chart" data-chart="{}" xmlns="http://www.w3.org/2000/svg" width="{}" )"
      R"(height="{}" viewBox="0 0 {} {}" role="img">)",
      xml_escape(c.id), c.width, c.height, c.width, c.height);
  axes(c, f, out);
  for (const ChartRule& r : c.rules) {
    out += fmt::format(
        R"(<line class="rule" data-series="{0}" x1="{1:.1f}" x2="{2:.1f}" y1="{3:.1f}" )"
        R"(y2="{3:.1f}" stroke="{4}" stroke-dasharray="2,3"/>)",
        xml_escape(r.name), f.left, f.right, f.py(r.y), r.color);
  }
  for (const ChartSeries& s : c.series) {
    series_path(s, f, out);
  }
  for (const ChartMarks& m : c.marks) {
    marks(m, f, out);
  }
  legend(c, f, out);
  out += "</svg>";
  return out;
}

std::string render_slot_map(const SlotMap& m) {
  const int columns = std::max(m.columns, 1);
  const auto rows = static_cast<int>((m.cell_class.size() + static_cast<std::size_t>(columns) - 1) /
                                     static_cast<std::size_t>(columns));
  const double cell = static_cast<double>(m.width - 2) / columns;
  const double row_height = std::max(cell, 2.0);
  const double legend_height = 22;
  const auto height = static_cast<int>(rows * row_height + legend_height + 4);
  std::string out = fmt::format(
      R"(<svg class="chart slot-map" data-chart="{}" data-slots="{}" )"
      R"(xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img">)",
      xml_escape(m.id), m.cell_class.size(), m.width, height, m.width, height);
  double lx = 1;
  for (std::size_t i = 0; i < m.colors.size() && i < m.names.size(); ++i) {
    out += fmt::format(R"(<rect x="{:.1f}" y="4" width="12" height="12" fill="{}" stroke="#888"/>)"
                       R"(<text class="legend" x="{:.1f}" y="14">{}</text>)",
                       lx, m.colors[i], lx + 16, xml_escape(m.names[i]));
    lx += 28 + 6.5 * static_cast<double>(m.names[i].size());
  }
  out += R"(<g class="cells">)";
  for (int r = 0; r < rows; ++r) {
    const auto base = static_cast<std::size_t>(r) * static_cast<std::size_t>(columns);
    std::size_t c = 0;
    while (base + c < m.cell_class.size() && c < static_cast<std::size_t>(columns)) {
      const std::uint16_t kind = m.cell_class[base + c];
      std::size_t end = c + 1;
      while (base + end < m.cell_class.size() && end < static_cast<std::size_t>(columns) &&
             m.cell_class[base + end] == kind) {
        ++end;
      }
      const std::string& color = kind < m.colors.size() ? m.colors[kind] : m.colors.front();
      out += fmt::format(
          R"(<rect x="{:.2f}" y="{:.2f}" width="{:.2f}" height="{:.2f}" fill="{}"/>)",
          1 + static_cast<double>(c) * cell, legend_height + r * row_height,
          static_cast<double>(end - c) * cell, row_height - (row_height > 3 ? 0.5 : 0), color);
      c = end;
    }
  }
  out += "</g></svg>";
  return out;
}

void min_max_envelope(const std::vector<std::uint32_t>& values, const std::vector<double>& xs,
                      std::size_t columns, std::vector<double>& out_x, std::vector<double>& out_y) {
  out_x.clear();
  out_y.clear();
  if (values.empty()) {
    return;
  }
  const auto x_of = [&](std::size_t i) { return xs.empty() ? static_cast<double>(i) : xs[i]; };
  columns = std::max<std::size_t>(columns, 1);
  if (values.size() <= columns * 2) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      out_x.push_back(x_of(i));
      out_y.push_back(values[i]);
    }
    return;
  }
  const double x0 = x_of(0);
  const double span = std::max(x_of(values.size() - 1) - x0, 1e-12);
  std::size_t i = 0;
  while (i < values.size()) {
    const auto column =
        static_cast<std::size_t>((x_of(i) - x0) / span * static_cast<double>(columns));
    std::size_t lo = i;
    std::size_t hi = i;
    std::size_t j = i;
    for (; j < values.size(); ++j) {
      const auto cj =
          static_cast<std::size_t>((x_of(j) - x0) / span * static_cast<double>(columns));
      if (cj != column) {
        break;
      }
      lo = values[j] < values[lo] ? j : lo;
      hi = values[j] > values[hi] ? j : hi;
    }
    for (const std::size_t k : {std::min(lo, hi), std::max(lo, hi)}) {
      out_x.push_back(x_of(k));
      out_y.push_back(values[k]);
    }
    i = j;
  }
}

}  // namespace swiotlb::cli
