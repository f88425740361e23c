// OpPicker: the next I/O of a run (kind, offset, length) from its spec.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

#include "swiotlb/io/io_device.h"
#include "swiotlb/io/io_job.h"

namespace swiotlb::io {

struct Pick {
  IoKind kind = IoKind::read;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

class OpPicker {
 public:
  explicit OpPicker(const JobSpec& spec)
      : spec_(spec), state_(spec.seed * 0x9E3779B97F4A7C15 + 1) {}

  bool random() const {
    return spec_.rw == RwMode::randread || spec_.rw == RwMode::randwrite ||
           spec_.rw == RwMode::randrw;
  }

  Pick next() {
    Pick p;
    p.length = pick_length();
    switch (spec_.rw) {
      case RwMode::read:
      case RwMode::randread:
        p.kind = IoKind::read;
        break;
      case RwMode::write:
      case RwMode::randwrite:
        p.kind = IoKind::write;
        break;
      case RwMode::randrw:
        p.kind = below(100) < spec_.read_percent ? IoKind::read : IoKind::write;
        break;
    }
    if (random()) {
      // Aligned to the largest power of two in the length, as fio aligns
      // random offsets to the block size.
      const std::uint64_t align = std::max<std::uint64_t>(std::bit_floor(p.length), 1);
      p.offset = below((spec_.file_size - p.length) / align + 1) * align;
    } else {
      if (position_ + p.length > spec_.file_size) {
        position_ = 0;
      }
      p.offset = position_;
      position_ += p.length;
    }
    return p;
  }

 private:
  std::uint64_t pick_length() {
    if (spec_.block_sizes.size() == 1) {
      return spec_.block_sizes[0].bytes;
    }
    std::uint64_t roll = below(100);
    for (const BlockSizeShare& s : spec_.block_sizes) {
      if (roll < s.percent) {
        return s.bytes;
      }
      roll -= s.percent;
    }
    return spec_.block_sizes.back().bytes;
  }
  // xorshift64*: fast, and reproducible from the seed.
  std::uint64_t below(std::uint64_t n) {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return n == 0 ? 0 : ((state_ * 0x2545F4914F6CDD1D) >> 11) % n;
  }

  const JobSpec& spec_;
  std::uint64_t state_;
  std::uint64_t position_ = 0;
};

}  // namespace swiotlb::io
