// Word-at-a-time byte search: eight characters tested for a set of bytes
// with a few integer operations instead of a loop over characters (SWAR,
// "SIMD within a register"). Private to the ops layer.
//
// The caller guarantees that the eight bytes a load reads are inside its
// buffer, even where the text it wants ends earlier. Little-endian hosts
// only (kAvailable): the first byte in memory must be the lowest in a word.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace swiotlb::ops::swar {

inline constexpr bool kAvailable = std::endian::native == std::endian::little;

inline constexpr std::uint64_t kOnes = 0x0101010101010101;
inline constexpr std::uint64_t kHighBits = 0x8080808080808080;

inline std::uint64_t load8(const char* p) {
  std::uint64_t word = 0;
  std::memcpy(&word, p, sizeof word);
  return word;
}

// The high bit of the first byte of `word` below `limit`. Bytes after it may
// be flagged wrongly (a borrow runs on from a flagged byte), never bytes
// before it: only the lowest flag counts. REQUIRES: limit <= 128.
constexpr std::uint64_t first_byte_below(std::uint64_t word, unsigned limit) {
  return (word - kOnes * limit) & ~word & kHighBits;
}

// As first_byte_below, for the first byte equal to `c`.
constexpr std::uint64_t first_byte_equal(std::uint64_t word, unsigned char c) {
  return first_byte_below(word ^ (kOnes * c), 1);
}

// The index (0-7) of the byte whose flag is the lowest set in `flags`; 8
// when none is set.
constexpr unsigned first_flagged(std::uint64_t flags) {
  return static_cast<unsigned>(std::countr_zero(flags)) / 8;
}

// Given `digits`, a word less '0' in every byte, the flag of its first byte
// that is not a decimal digit (0-9 now). As in first_byte_below, bytes after
// it may be flagged wrongly, never bytes before it: a borrow or a carry runs
// only from a byte that is not a digit to the bytes after it.
constexpr std::uint64_t first_non_digit(std::uint64_t digits) {
  return (digits | (digits + kOnes * (0x80 - 10))) & kHighBits;
}

// The value of the first `n` digits of `digits` (a word less '0' in every
// byte), the first the most significant; bytes after them may hold anything.
// Three multiplies join neighbours, two digits into a byte, two of those
// into 16 bits, two of those into 32, where a loop takes a multiply per
// digit. REQUIRES: 1 <= n <= 8 and the first n bytes 0-9.
constexpr std::uint64_t decimal_value(std::uint64_t digits, unsigned n) {
  // The n digits to the top of the word: the bytes after them drop out, and
  // zeros, leading, fill in below.
  std::uint64_t v = digits << (64 - 8 * n);
  v = ((v * (10 * 256 + 1)) >> 8) & 0x00ff00ff00ff00ff;
  v = ((v * (100 * 65536 + 1)) >> 16) & 0x0000ffff0000ffff;
  return (v * ((std::uint64_t{10000} << 32) + 1)) >> 32;
}

}  // namespace swiotlb::ops::swar
