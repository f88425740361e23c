// The verification pattern: offset- and sequence-stamped blocks.
#include "swiotlb/io/block_pattern.h"

#include <fmt/format.h>

#include <cstring>

#include "swiotlb/core/check.h"

namespace swiotlb::io {

namespace {

constexpr std::uint64_t kMagic = 0x5357494f544c4249;  // "SWIOTLBI"
constexpr std::uint64_t kMix = 0x9E3779B97F4A7C15;

std::uint64_t word_at(std::uint64_t offset, std::uint64_t index, std::uint32_t seq) {
  return ((offset + index * 8) * kMix) ^ (std::uint64_t{seq} << 32 | seq) ^ index;
}

}  // namespace

BlockPattern::BlockPattern(std::uint64_t file_size, std::uint32_t block)
    : file_size_(file_size), block_(block), seq_(file_size / block, 0) {
  SWIOTLB_CHECK(block >= 64 && (block & (block - 1)) == 0, "a block is a power of two >= 64");
}

void BlockPattern::fill_block(std::byte* block, std::uint64_t offset, std::uint32_t seq) const {
  const std::uint64_t words = block_ / 8;
  std::uint64_t header[3] = {kMagic, offset, seq};
  std::memcpy(block, header, sizeof header);
  for (std::uint64_t i = 3; i < words; ++i) {
    const std::uint64_t w = word_at(offset, i, seq);
    std::memcpy(block + i * 8, &w, 8);
  }
}

void BlockPattern::fill_initial(std::span<std::byte> buf, std::uint64_t offset) const {
  for (std::uint64_t at = 0; at + block_ <= buf.size(); at += block_) {
    fill_block(buf.data() + at, offset + at, 0);
  }
}

void BlockPattern::fill_for_write(std::span<std::byte> buf, std::uint64_t offset) {
  for (std::uint64_t at = 0; at + block_ <= buf.size(); at += block_) {
    std::uint32_t& seq = seq_[(offset + at) / block_];
    seq = seq == kUnknown || seq + 1 == kUnknown ? 1 : seq + 1;
    fill_block(buf.data() + at, offset + at, seq);
  }
}

void BlockPattern::write_failed(std::uint64_t offset, std::uint64_t length) {
  for (std::uint64_t at = 0; at + block_ <= length; at += block_) {
    seq_[(offset + at) / block_] = kUnknown;
  }
}

BlockPattern::Check BlockPattern::check(std::span<const std::byte> buf, std::uint64_t offset,
                                        std::string* first_error) const {
  Check result;
  const std::uint64_t words = block_ / 8;
  for (std::uint64_t at = 0; at + block_ <= buf.size(); at += block_) {
    const std::uint64_t block_offset = offset + at;
    const std::uint32_t seq = seq_[block_offset / block_];
    if (seq == kUnknown) {
      ++result.unknown;
      continue;
    }
    const std::byte* b = buf.data() + at;
    std::uint64_t header[3];
    std::memcpy(header, b, sizeof header);
    bool good = header[0] == kMagic && header[1] == block_offset && header[2] == seq;
    std::uint64_t bad_word = 0;
    for (std::uint64_t i = 3; good && i < words; ++i) {
      std::uint64_t w = 0;
      std::memcpy(&w, b + i * 8, 8);
      if (w != word_at(block_offset, i, seq)) {
        good = false;
        bad_word = i;
      }
    }
    if (good) {
      ++result.good;
      continue;
    }
    ++result.bad;
    if (first_error != nullptr && first_error->empty()) {
      *first_error =
          header[0] != kMagic
              ? fmt::format("block at offset {}: no pattern header (expected sequence {})",
                            block_offset, seq)
          : header[1] != block_offset || header[2] != seq
              ? fmt::format(
                    "block at offset {}: holds the block of offset {} sequence {}, "
                    "expected sequence {}",
                    block_offset, header[1], header[2], seq)
              : fmt::format("block at offset {}: sequence {} header, but byte {} differs",
                            block_offset, seq, bad_word * 8);
    }
  }
  return result;
}

}  // namespace swiotlb::io
