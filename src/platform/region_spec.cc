// The swiotlb_devmem= word: a device-memory region as text.
#include "swiotlb/platform/region_spec.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace swiotlb {

namespace {

constexpr std::string_view kWord = "swiotlb_devmem=";

// The kernel's memparse: a number in C notation with an optional K, M or G
// suffix; the whole text must be used.
Result<std::uint64_t> parse_size(std::string_view key, std::string_view text) {
  int base = 10;
  std::string_view digits = text;
  if (digits.starts_with("0x") || digits.starts_with("0X")) {
    base = 16;
    digits.remove_prefix(2);
  }
  unsigned shift = 0;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      default:
        break;
    }
  }
  if (shift != 0) {
    digits.remove_suffix(1);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size()) {
    return make_error(Errc::parse, "swiotlb_devmem: {}={} is not a number", key, text);
  }
  if (shift != 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return make_error(Errc::parse, "swiotlb_devmem: {}={} is beyond 64 bits", key, text);
  }
  return value << shift;
}

}  // namespace

Result<RegionSpec> parse_device_memory(std::string_view text) {
  if (text.starts_with(kWord)) {
    text.remove_prefix(kWord.size());
  }
  RegionSpec spec;
  spec.kind = RegionKind::device;
  bool first = true;
  bool have_offset = false;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (first) {
      if (item.empty() || item.find('=') != std::string_view::npos) {
        return make_error(
            Errc::parse, "swiotlb_devmem: the device file's path comes first (given \"{}\")", item);
      }
      spec.path = std::string(item);
      first = false;
    } else {
      const std::size_t eq = item.find('=');
      const std::string_view key = item.substr(0, eq);
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
      if (key != "offset" && key != "dma_base") {
        return make_error(Errc::parse,
                          "swiotlb_devmem: unknown setting \"{}\" (known: offset=, dma_base=)",
                          item);
      }
      const bool again = key == "offset" ? have_offset : spec.dma_base.has_value();
      if (again) {
        return make_error(Errc::parse, "swiotlb_devmem: {}= is given twice", key);
      }
      Result<std::uint64_t> number = parse_size(key, value);
      if (!number) {
        return std::move(number).error();
      }
      if (key == "offset") {
        spec.offset = *number;
        have_offset = true;
      } else {
        spec.dma_base = DmaAddr(*number);
      }
    }
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
  }
  return spec;
}

}  // namespace swiotlb
