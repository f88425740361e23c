// `swiotlb_high=<nslabs>[,<nareas>]`: a second pool above 4 GiB, for devices
// that can reach it, so the default (low) pool stays free for those that
// cannot. The kernel has no such parameter (its `swiotlb=` second number is
// nareas), so it is a word of its own, rounded as `swiotlb=` is.
#include "high_pool_config.h"

#include <fmt/format.h>

#include <charconv>

#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

constexpr std::string_view kPrefix = "swiotlb_high=";
constexpr std::uint64_t kMaxAreas = std::uint64_t{1} << 20;

Result<std::uint64_t> read_number(std::string_view token, std::string_view what) {
  int base = 10;
  std::string_view digits = token;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return make_error(Errc::parse, "swiotlb_high= {} '{}' is not a number that fits 64 bits", what,
                      token);
  }
  return value;
}

Status apply_word(std::string_view value, SwiotlbConfig& config) {
  const std::size_t comma = value.find(',');
  const std::string_view slabs_text = value.substr(0, comma);
  Result<std::uint64_t> slabs = read_number(slabs_text, "nslabs");
  if (!slabs) {
    return std::move(slabs).error();
  }
  std::uint64_t areas = 1;
  if (comma != std::string_view::npos) {
    Result<std::uint64_t> n = read_number(value.substr(comma + 1), "nareas");
    if (!n) {
      return std::move(n).error();
    }
    areas = *n == 0 ? 1 : *n;
  }
  if (areas > kMaxAreas || *slabs > kMaxSlotCount) {
    return make_error(Errc::parse, "swiotlb_high={} asks for more than {} slots or {} areas", value,
                      kMaxSlotCount, kMaxAreas);
  }
  areas = round_up_power_of_two(areas);
  std::uint64_t nslabs = std::max(kernel_align(*slabs, kSegmentSlots), kSegmentSlots * areas);
  nslabs = round_up_power_of_two(nslabs);
  if (nslabs != *slabs) {
    config.warnings.push_back(fmt::format(
        "swiotlb_high nslabs rounded up from {} to {}, as swiotlb= rounds", *slabs, nslabs));
  }
  config.high_nslabs = nslabs;
  config.high_nareas = static_cast<std::uint32_t>(areas);
  return {};
}

}  // namespace

Status apply_high_pool(std::string_view text, SwiotlbConfig& config) {
  std::size_t at = 0;
  while ((at = text.find(kPrefix, at)) != std::string_view::npos) {
    const bool word_start = at == 0 || text[at - 1] == ' ' || text[at - 1] == '\t';
    const std::size_t end = text.find_first_of(" \t\n", at);
    const std::string_view value = text.substr(
        at + kPrefix.size(), end == std::string_view::npos ? end : end - at - kPrefix.size());
    at += kPrefix.size();
    if (!word_start) {
      continue;
    }
    if (Status ok = apply_word(value, config); !ok) {
      return ok;
    }
  }
  return {};
}

}  // namespace swiotlb
