// The value of each character as a hex digit, for the trace reader's general
// path and its fast path alike. Private to the ops layer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace swiotlb::ops {

// Hex digit values, either case; 16 for characters that are not hex digits
// (so that `value < 16` tests and converts at once).
constexpr std::array<std::uint8_t, 256> make_hex_values() {
  std::array<std::uint8_t, 256> values{};
  for (auto& v : values) {
    v = 16;
  }
  for (std::size_t c = 0; c < 10; ++c) {
    values['0' + c] = static_cast<std::uint8_t>(c);
  }
  for (std::size_t c = 0; c < 6; ++c) {
    values['a' + c] = static_cast<std::uint8_t>(10 + c);
    values['A' + c] = static_cast<std::uint8_t>(10 + c);
  }
  return values;
}
inline constexpr std::array<std::uint8_t, 256> kHexValues = make_hex_values();

// Two hex digits at a time, for the addresses of the reader's fast path: the
// entry at `c0 | c1 << 8` is the value of the digits c0 c1, or kNotHexPair
// (above any pair's value) when either is not a hex digit. 128 KiB, built on
// the first call (which is thread-safe), not at every program's start.
using HexPairValues = std::array<std::uint16_t, 65536>;
inline constexpr std::uint16_t kNotHexPair = 0x100;
const HexPairValues& hex_pair_values();

}  // namespace swiotlb::ops
