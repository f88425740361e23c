#include "cli_limits.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace swiotlb::cli {

int exit_code_for(const Error& error) {
  return error.code() == Errc::system ? kExitSystemError : kExitBadInput;
}

int report_error(const Error& error) {
  fmt::print(stderr, "swiotlb: error: {}\n", error.message());
  return exit_code_for(error);
}

std::string quote_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) {
    return std::string(text);
  }
  return fmt::format("{}... ({} bytes in all)", text.substr(0, max), text.size());
}

Result<std::uint64_t> parse_count(std::string_view text, std::uint64_t max) {
  std::string_view digits = text;
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    digits.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  const char* end = digits.data() + digits.size();
  const auto [stop, ec] = std::from_chars(digits.data(), end, value, base);
  if (text.empty() || text[0] == '-' || text[0] == '+') {
    return make_error(Errc::invalid_argument, "'{}' is not a whole number of 0 or more",
                      quote_prefix(text));
  }
  if (ec == std::errc::result_out_of_range) {
    return make_error(Errc::invalid_argument, "'{}' does not fit in 64 bits (at most {})",
                      quote_prefix(text), max);
  }
  if (digits.empty() || ec != std::errc() || stop != end) {
    return make_error(Errc::invalid_argument, "'{}' is not a whole number", quote_prefix(text));
  }
  if (value > max) {
    return make_error(Errc::invalid_argument, "{} is above the limit of {}", value, max);
  }
  return value;
}

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        Result<std::uint64_t> value = parse_count(text, max);
        if (!value) {
          return value.error().message();
        }
        if (*value < min) {
          return fmt::format("{} is below the minimum of {}", *value, min);
        }
        return {};
      },
      fmt::format("UINT:{}..{}", min, max));
}

CLI::Validator seconds(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double value = 0;
        const char* end = text.data() + text.size();
        const auto [stop, ec] = std::from_chars(text.data(), end, value);
        if (text.empty() || ec != std::errc() || stop != end) {
          return fmt::format("'{}' is not a number of seconds", quote_prefix(text));
        }
        if (!std::isfinite(value) || value < 0 || (value == 0 && !zero_allowed)) {
          return fmt::format("'{}' is not a {} number of seconds", quote_prefix(text),
                             zero_allowed ? "finite, non-negative" : "finite, positive");
        }
        if (value > kMaxSeconds) {
          return fmt::format("{} seconds is above the limit of {} (one day)", value, kMaxSeconds);
        }
        return {};
      },
      zero_allowed ? "SECONDS>=0" : "SECONDS>0");
}

}  // namespace swiotlb::cli
