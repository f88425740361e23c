// bounce_copy(): the copy between a mapped buffer and its bounce slot.
//
// Why not memcpy alone: glibc copies blocks above about 2 KiB with
// `rep movsb` on processors that have fast string moves (ERMS/FSRM), and
// on AMD processors that instruction runs 30 to 50 times slower when the
// destination lies 1 to 15 bytes past the source modulo 4 KiB (measured
// on this project's AMD EPYC machine with glibc 2.36: 128 KiB in 74 to
// 110 us instead of 2.3 us, cache hot). Each store then shares its page
// offset with a load that comes right after it (4K aliasing), and the
// string move waits on every one. A bounce slot is page-aligned for a
// mapping of a page or more and a heap buffer often starts 8 or 16 bytes
// into a page, so the copy back of a read (slot to buffer) hits exactly
// that case. Such copies go through a plain 64-byte block loop instead,
// which the compiler turns into vector moves and which does not stall;
// every other copy is memcpy. docs/io.md has the numbers.
//
// Thread safety: none needed (a copy of caller-owned memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace swiotlb {

// Copies at or above this size may be string moves (glibc's smallest
// threshold, with FSRM, is 2112 bytes).
inline constexpr std::size_t kStringMoveMinBytes = 2048;

// The copy for a destination a few bytes past the source modulo 4 KiB.
void copy_near_alias(std::byte* dst, const std::byte* src, std::size_t bytes);

// memcpy(dst, src, bytes), for ranges that do not overlap, without the
// string-move stall described above.
inline void bounce_copy(void* dst, const void* src, std::size_t bytes) {
  const std::uintptr_t distance =
      (reinterpret_cast<std::uintptr_t>(dst) - reinterpret_cast<std::uintptr_t>(src)) & 4095;
  if (bytes < kStringMoveMinBytes || distance == 0 || distance >= 64) [[likely]] {
    std::memcpy(dst, src, bytes);
    return;
  }
  copy_near_alias(static_cast<std::byte*>(dst), static_cast<const std::byte*>(src), bytes);
}

}  // namespace swiotlb
