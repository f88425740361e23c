// Quantities on the command line and in printed advice: byte counts with
// binary units, percentages, MiB. Shared by `size` and `report`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace swiotlb::cli {

// The largest --margin accepted, in percent.
inline constexpr std::uint32_t kMaxMarginPercent = 1000;

// "17179869184", "16G", "16GiB", "512M" (binary units); nullopt for
// anything else or a count that does not fit 64 bits.
std::optional<std::uint64_t> parse_bytes(std::string text);

// "25" or "25%", from 0 to kMaxMarginPercent; nullopt otherwise.
std::optional<std::uint32_t> parse_percent(std::string text);

// "16 MiB", "7.8 MiB"; with a leading "-" for a negative amount.
std::string mib(std::uint64_t bytes);
std::string signed_mib(std::int64_t bytes);

}  // namespace swiotlb::cli
