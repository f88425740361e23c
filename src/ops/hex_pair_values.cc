// The table of hex digit pairs (hex_digit_values.h).
#include "hex_digit_values.h"

namespace swiotlb::ops {

const HexPairValues& hex_pair_values() {
  static const HexPairValues values = [] {
    HexPairValues pairs{};
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      const unsigned first = kHexValues[i & 0xff];
      const unsigned second = kHexValues[i >> 8];
      pairs[i] =
          first < 16 && second < 16 ? static_cast<std::uint16_t>(first << 4 | second) : kNotHexPair;
    }
    return pairs;
  }();
  return values;
}

}  // namespace swiotlb::ops
