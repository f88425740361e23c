// BlockPattern: what every block of the file should hold, so that reads
// can be checked.
//
// Each block (a unit of the file's direct I/O block size) written carries a
// pattern made of its file offset and a sequence number: the block's
// header holds a magic word, the offset and the sequence; every other word
// is a function of offset, position and sequence, so a block read from the
// wrong place, a stale block and a torn block all fail the check. The
// pattern remembers the sequence each block was last written with; a block
// whose last write failed is marked unknown and is not checked (nor
// counted as verified) until a later write gives it a known content again.
//
// Thread safety: none; one I/O runner uses it at a time. Callers keep
// overlapping I/Os out of flight together (a read racing a write of the
// same block has no defined result).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace swiotlb::io {

class BlockPattern {
 public:
  // The pattern of a file of `file_size` bytes in blocks of `block` bytes
  // (a power of two, at least 64); every block starts at sequence 0, the
  // content fill_initial gives.
  BlockPattern(std::uint64_t file_size, std::uint32_t block);

  std::uint32_t block() const { return block_; }
  std::uint64_t file_size() const { return file_size_; }

  // The content the file starts with (sequence 0) for [offset, +buf.size()).
  void fill_initial(std::span<std::byte> buf, std::uint64_t offset) const;
  // Fills `buf` for a write at `offset`, each block with its next
  // sequence, and records that sequence as the block's expected content.
  void fill_for_write(std::span<std::byte> buf, std::uint64_t offset);
  // A write of [offset, +length) failed: those blocks' content is unknown.
  void write_failed(std::uint64_t offset, std::uint64_t length);

  struct Check {
    std::uint64_t good = 0;     // blocks that held what they should
    std::uint64_t bad = 0;      // blocks that did not
    std::uint64_t unknown = 0;  // blocks not checked (their last write failed)
  };
  // Checks what a read of `offset` returned; the first bad block's
  // description goes to *first_error when that is empty.
  Check check(std::span<const std::byte> buf, std::uint64_t offset, std::string* first_error) const;

 private:
  static constexpr std::uint32_t kUnknown = ~std::uint32_t{0};
  void fill_block(std::byte* block, std::uint64_t offset, std::uint32_t seq) const;

  std::uint64_t file_size_;
  std::uint32_t block_;
  std::vector<std::uint32_t> seq_;  // per block
};

}  // namespace swiotlb::io
