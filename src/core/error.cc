// Names for error codes and directions, used in messages and JSON.
#include "swiotlb/core/error.h"

#include <array>
#include <cstring>

#include "swiotlb/core/direction.h"

namespace swiotlb {

namespace {

// strerror_r comes in two forms: the GNU one returns the text (which may not
// be in the buffer), the XSI one returns 0 and fills the buffer.
[[maybe_unused]] const char* strerror_r_text(const char* text, const char* /*buffer*/) {
  return text;
}
[[maybe_unused]] const char* strerror_r_text(int rc, const char* buffer) {
  return rc == 0 ? buffer : nullptr;
}

}  // namespace

std::string errno_text(int err) {
  std::array<char, 256> buffer{};
  const char* text = strerror_r_text(strerror_r(err, buffer.data(), buffer.size()), buffer.data());
  if (text == nullptr) {
    return fmt::format("unknown error {}", err);
  }
  return text;
}

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::out_of_range:
      return "out_of_range";
    case Errc::pool_full:
      return "pool_full";
    case Errc::unreachable:
      return "unreachable";
    case Errc::not_mapped:
      return "not_mapped";
    case Errc::mapping_mismatch:
      return "mapping_mismatch";
    case Errc::busy:
      return "busy";
    case Errc::search_would_spin:
      return "search_would_spin";
    case Errc::system:
      return "system";
    case Errc::parse:
      return "parse";
    case Errc::timed_out:
      return "timed_out";
    case Errc::limit_reached:
      return "limit_reached";
  }
  return "unknown";
}

std::string_view to_string(Direction dir) {
  switch (dir) {
    case Direction::bidirectional:
      return "bidirectional";
    case Direction::to_device:
      return "to_device";
    case Direction::from_device:
      return "from_device";
    case Direction::none:
      return "none";
  }
  return "unknown";
}

std::optional<Direction> direction_from_number(std::uint64_t n) {
  if (n > 3) {
    return std::nullopt;
  }
  return static_cast<Direction>(n);
}

}  // namespace swiotlb
