// `swiotlb_high=<nslabs>[,<nareas>]`: a second pool above 4 GiB, for devices
// that can reach it, so the default (low) pool stays free for those that
// cannot. The kernel has no such parameter (its `swiotlb=` second number is
// nareas), so it is a word of its own, read, rounded and warned about as
// `swiotlb=` is.
#include "high_pool_config.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

constexpr std::uint64_t kMaxAreas = std::uint64_t{1} << 20;
constexpr std::string_view kGrammar = "swiotlb_high=<nslabs>[,<nareas>]";

Result<std::uint64_t> read_number(const HighPoolWord& word, std::string_view token,
                                  std::string_view what) {
  int base = 10;
  std::string_view digits = token;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return make_error(Errc::parse,
                      "swiotlb_high= {} '{}' in '{}' at column {} is not a number that fits 64 "
                      "bits (expected {})",
                      what, quoted_token(token), quoted_token(word.word), word.column, kGrammar);
  }
  return value;
}

struct HighRequest {
  std::uint64_t nslabs = 0;
  std::optional<std::uint64_t> nareas;
};

Result<HighRequest> read_word(const HighPoolWord& word) {
  const std::size_t comma = word.value.find(',');
  HighRequest request;
  Result<std::uint64_t> slabs = read_number(word, word.value.substr(0, comma), "nslabs");
  if (!slabs) {
    return std::move(slabs).error();
  }
  request.nslabs = *slabs;
  if (comma != std::string_view::npos) {
    Result<std::uint64_t> areas = read_number(word, word.value.substr(comma + 1), "nareas");
    if (!areas) {
      return std::move(areas).error();
    }
    request.nareas = *areas;
  }
  if (request.nslabs > kMaxSlotCount) {
    return make_error(Errc::parse,
                      "swiotlb_high= nslabs {} in '{}' at column {} is too large: at most {} "
                      "slots (4 TiB)",
                      request.nslabs, quoted_token(word.word), word.column, kMaxSlotCount);
  }
  if (request.nareas && *request.nareas > kMaxAreas) {
    return make_error(Errc::parse,
                      "swiotlb_high= nareas {} in '{}' at column {} is too large: at most {} areas",
                      *request.nareas, quoted_token(word.word), word.column, kMaxAreas);
  }
  return request;
}

// The rounding of `swiotlb=` (config.cc), step for step, with its warnings.
void round_high(std::uint64_t requested_nslabs, std::optional<std::uint64_t> requested_nareas,
                SwiotlbConfig& config) {
  const std::uint64_t nslabs = kernel_align(requested_nslabs, kSegmentSlots);
  if (nslabs != requested_nslabs) {
    config.warnings.push_back(fmt::format(
        "swiotlb_high nslabs rounded up from {} to {}: the pool is made of whole {}-slot segments",
        requested_nslabs, nslabs, kSegmentSlots));
  }
  const std::uint64_t asked_areas = requested_nareas.value_or(1);
  const std::uint64_t areas = asked_areas == 0 ? 1 : round_up_power_of_two(asked_areas);
  if (requested_nareas && areas != *requested_nareas) {
    config.warnings.push_back(fmt::format(
        "swiotlb_high nareas rounded up from {} to {}: {}", *requested_nareas, areas,
        *requested_nareas == 0 ? "0 means a single area" : "areas come in powers of two"));
  }
  const std::uint64_t floor = std::uint64_t{kSegmentSlots} * areas;
  std::uint64_t rounded = nslabs;
  if (nslabs < floor) {
    config.warnings.push_back(fmt::format(
        "swiotlb_high nslabs raised from {} to {} so that each of the {} area{} holds at least "
        "one full {}-slot segment",
        nslabs, floor, areas, areas == 1 ? "" : "s", kSegmentSlots));
    rounded = floor;
  } else if (!is_power_of_two(nslabs)) {
    rounded = round_up_power_of_two(nslabs);
    config.warnings.push_back(fmt::format(
        "swiotlb_high nslabs rounded up from {} to {}, a power of two, so that the {} area{} are "
        "all the same size",
        nslabs, rounded, areas, areas == 1 ? "" : "s"));
  }
  config.high_nslabs = rounded;
  config.high_nareas = static_cast<std::uint32_t>(areas);
}

}  // namespace

std::string quoted_token(std::string_view text) {
  constexpr std::size_t kQuotedBytes = 64;
  if (text.size() <= kQuotedBytes) {
    return std::string(text);
  }
  return fmt::format("{}... ({} bytes in all)", text.substr(0, kQuotedBytes), text.size());
}

Status apply_high_pool(const std::vector<HighPoolWord>& words, SwiotlbConfig& config) {
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint64_t> nareas;
  for (const HighPoolWord& word : words) {
    Result<HighRequest> request = read_word(word);
    if (!request) {
      return std::move(request).error();
    }
    if (nslabs) {
      config.warnings.push_back(fmt::format(
          "'{}' at column {} repeats swiotlb_high=: what it sets replaces the earlier value",
          quoted_token(word.word), word.column));
    }
    nslabs = request->nslabs;
    if (request->nareas) {
      nareas = request->nareas;
    }
  }
  if (nslabs) {
    round_high(*nslabs, nareas, config);
  }
  return {};
}

}  // namespace swiotlb
