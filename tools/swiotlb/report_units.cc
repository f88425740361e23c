// Parsing and printing of byte counts and percentages (report_units.h).
#include "report_units.h"

#include <fmt/format.h>

#include <cctype>
#include <limits>

#include "cli_limits.h"

namespace swiotlb::cli {

// "17179869184", "16G", "16GiB", "512M": binary units.
std::optional<std::uint64_t> parse_bytes(std::string text) {
  for (const char* suffix : {"iB", "B"}) {
    const std::string s(suffix);
    if (text.size() > s.size() && text.compare(text.size() - s.size(), s.size(), s) == 0) {
      text.resize(text.size() - s.size());
      break;
    }
  }
  unsigned shift = 0;
  if (!text.empty()) {
    const std::string units = "KMGT";
    const std::size_t unit = units.find(static_cast<char>(std::toupper(text.back())));
    if (unit != std::string::npos) {
      shift = 10 * static_cast<unsigned>(unit + 1);
      text.pop_back();
    }
  }
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  // parse_count refuses a number past 64 bits instead of throwing.
  Result<std::uint64_t> parsed = parse_count(text, std::numeric_limits<std::uint64_t>::max());
  if (!parsed) {
    return std::nullopt;
  }
  const std::uint64_t value = *parsed;
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return std::nullopt;
  }
  return value << shift;
}

std::optional<std::uint32_t> parse_percent(std::string text) {
  if (!text.empty() && text.back() == '%') {
    text.pop_back();
  }
  if (text.empty() || text.size() > 4 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  const auto value = static_cast<std::uint32_t>(std::stoul(text));
  return value <= kMaxMarginPercent ? std::optional<std::uint32_t>(value) : std::nullopt;
}

std::string mib(std::uint64_t bytes) {
  return bytes % (1 << 20) == 0 ? fmt::format("{} MiB", bytes >> 20)
                                : fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string signed_mib(std::int64_t bytes) {
  return bytes < 0 ? "-" + mib(static_cast<std::uint64_t>(-bytes))
                   : mib(static_cast<std::uint64_t>(bytes));
}

}  // namespace swiotlb::cli
