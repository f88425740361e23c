// SVG charts for `swiotlb report`, written as text: line and step charts
// with axes, ticks, a legend and event marks, and a slot map.
//
// Drawing is downsampled, numbers never are: a series of a million points
// is drawn as the minimum and maximum of each pixel column (so every peak
// and trough stays visible), and marks closer than a pixel are drawn once.
// The data the page states in words and tables comes from the replays, not
// from these drawings.
//
// Every chart is one <svg> with class "chart" and data-chart=<id>; each
// series is a <polyline class="series"> with data-series=<name> and
// data-points=<its points before downsampling>; each mark group a
// <g class="marks"> with data-series and data-count. Axis labels are <text
// class="axis-label">. The browser test reads these.
//
// Not thread-safe in any interesting way: plain functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swiotlb::cli {

// Escapes text for XML and HTML (&, <, >, ", ').
std::string xml_escape(std::string_view text);

// A colour for the i-th series or device.
std::string_view palette(std::size_t i);

struct ChartSeries {
  std::string name;
  std::string color;
  std::vector<double> x;  // ascending
  std::vector<double> y;
  bool step = false;  // hold each value until the next x
  bool dots = false;  // a circle at each point (short series)
  bool dashed = false;
};

// Vertical ticks at positions on the x axis (failed maps, events).
struct ChartMarks {
  std::string name;
  std::string color;
  std::vector<double> x;
  bool at_top = false;  // a short tick at the top instead of the bottom
};

// A horizontal reference line (a pool size).
struct ChartRule {
  std::string name;
  std::string color;
  double y = 0;
};

struct LineChart {
  std::string id;
  std::string x_label;  // with the unit: "event index", "time (s)", "pool size (slots)"
  std::string y_label;
  std::vector<ChartSeries> series;
  std::vector<ChartMarks> marks;
  std::vector<ChartRule> rules;
  double y_min = 0;  // the y axis starts here; its top follows the data and rules
  int width = 960;
  int height = 280;
};

std::string render_line_chart(const LineChart& chart);

// One cell per slot, `columns` cells a row; `cell_class[i]` is the category
// of slot i (0: free), drawn in `colors[cell_class[i]]`. Runs of one
// category in a row are one rectangle, so the element count follows the
// pool's fragmentation, not its size.
struct SlotMap {
  std::string id;
  std::vector<std::uint16_t> cell_class;
  std::vector<std::string> colors;  // [0] is the free colour
  std::vector<std::string> names;   // legend, parallel to colors
  int columns = 128;
  int width = 960;
};

std::string render_slot_map(const SlotMap& map);

// Downsampling for drawing: values[i] at x = xs[i] (or i when xs is
// empty), reduced to the min and max of each of `columns` equal x spans,
// as a polyline's points in data units.
void min_max_envelope(const std::vector<std::uint32_t>& values, const std::vector<double>& xs,
                      std::size_t columns, std::vector<double>& out_x, std::vector<double>& out_y);

}  // namespace swiotlb::cli
