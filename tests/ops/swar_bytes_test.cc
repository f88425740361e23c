// The word-wide digit helpers of the reader's fast path
// (src/ops/swar_bytes.h), against a loop over the characters.
#include "../../src/ops/swar_bytes.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace swiotlb::ops {
namespace {

// Eight bytes, `digits` first, then `stop`, then whatever `fill` holds.
std::array<char, 8> word_bytes(const std::string& digits, char stop, std::uint64_t fill) {
  std::array<char, 8> bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(fill >> (8 * i));
  }
  for (std::size_t i = 0; i < digits.size() && i < bytes.size(); ++i) {
    bytes[i] = digits[i];
  }
  if (digits.size() < bytes.size()) {
    bytes[digits.size()] = stop;
  }
  return bytes;
}

std::uint64_t less_zeros(const std::array<char, 8>& bytes) {
  return swar::load8(bytes.data()) - swar::kOnes * '0';
}

// Every byte value, after every count of digits, with random bytes after it:
// the first non-digit is found where it is, and the digits before it give
// their value.
TEST(SwarBytes, FindsTheFirstNonDigitAndTheValueBeforeIt) {
  if (!swar::kAvailable) {
    GTEST_SKIP() << "a big-endian host: the fast path is off";
  }
  std::mt19937_64 random(7);
  for (std::size_t count = 0; count < 8; ++count) {
    for (int stop = 0; stop < 256; ++stop) {
      const auto c = static_cast<char>(stop);
      if (c >= '0' && c <= '9') {
        continue;
      }
      for (int trial = 0; trial < 4; ++trial) {
        std::string digits;
        std::uint64_t expected = 0;
        for (std::size_t i = 0; i < count; ++i) {
          const auto d = static_cast<unsigned>(random() % 10);
          digits += static_cast<char>('0' + d);
          expected = expected * 10 + d;
        }
        const std::uint64_t word = less_zeros(word_bytes(digits, c, random()));
        const std::uint64_t flags = swar::first_non_digit(word);
        ASSERT_EQ(swar::first_flagged(flags), count) << digits << " then byte " << stop;
        if (count != 0) {
          EXPECT_EQ(swar::decimal_value(word, static_cast<unsigned>(count)), expected) << digits;
        }
      }
    }
  }
}

TEST(SwarBytes, ReadsEightDigits) {
  if (!swar::kAvailable) {
    GTEST_SKIP() << "a big-endian host: the fast path is off";
  }
  for (const char* digits : {"00000000", "99999999", "12345678", "00000001", "10000000"}) {
    const std::uint64_t word = less_zeros(word_bytes(digits, ' ', 0));
    EXPECT_EQ(swar::first_non_digit(word), 0u) << digits;
    EXPECT_EQ(swar::decimal_value(word, 8), std::stoull(digits)) << digits;
  }
}

}  // namespace
}  // namespace swiotlb::ops
