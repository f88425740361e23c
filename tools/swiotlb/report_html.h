// The page of `swiotlb report`: one self-contained HTML file (styles,
// script and SVG plots inline; nothing is fetched when it is viewed).
//
// Each trace gets an advice box (id "advice-<n>", the `swiotlb=` line in an
// element of class "swiotlb-line"), plots of occupancy, fragmentation,
// the slot map at the peak, the sizing curve and dynamic growth (each a
// <figure> with an <h3> title, axis labels with units and a one-sentence
// <figcaption>), and tables of devices and sizes. An inline script counts
// script errors into the <html> element's data-js-errors attribute and sets
// data-ready once the page has loaded, for headless checks.
#pragma once

#include <string>
#include <vector>

#include "report_data.h"

namespace swiotlb::cli {

struct PageOptions {
  std::uint32_t margin_percent = 25;
  std::optional<std::uint64_t> ram_bytes;
  std::string command_line;  // how the page was made, shown at its foot
};

std::string render_report_page(const std::vector<TraceReport>& reports, const PageOptions& options);

}  // namespace swiotlb::cli
