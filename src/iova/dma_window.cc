// Parsing and printing of DMA windows; pure functions.
#include "swiotlb/iova/dma_window.h"

#include <charconv>

namespace swiotlb::iova {

Result<std::uint64_t> parse_dma_number(std::string_view text, std::string_view what) {
  int base = 10;
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  std::uint64_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value, base);
  if (digits.empty() || ec == std::errc::result_out_of_range) {
    return make_error(Errc::parse, "{} '{}' is not a 64-bit number", what, text);
  }
  if (ec != std::errc() || ptr != end) {
    return make_error(Errc::parse, "{} '{}' is not a number (decimal or 0x-hex)", what, text);
  }
  return value;
}

Result<std::vector<DmaWindow>> parse_dma_windows(std::string_view text) {
  std::vector<DmaWindow> windows;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      return make_error(Errc::parse, "DMA window '{}' is not START-END", item);
    }
    Result<std::uint64_t> start = parse_dma_number(item.substr(0, dash), "window start");
    if (!start) {
      return std::move(start).error();
    }
    Result<std::uint64_t> end = parse_dma_number(item.substr(dash + 1), "window end");
    if (!end) {
      return std::move(end).error();
    }
    if (*start > *end) {
      return make_error(Errc::parse, "DMA window '{}' starts above its end", item);
    }
    windows.push_back({*start, *end});
  }
  return windows;
}

std::string format_dma_window(const DmaWindow& window) {
  return fmt::format("{:#018x}-{:#018x}", window.start, window.end);
}

}  // namespace swiotlb::iova
