// bounce_copy(): the copy between a mapped buffer and its bounce slot.
//
// Why not memcpy alone: glibc copies blocks above about 2 KiB with
// `rep movsb` on processors that have fast string moves (ERMS/FSRM), and on
// AMD processors (Zen 3 and 4) that instruction costs a bounce twice:
//
//  - It runs 30 to 50 times slower when the destination lies 1 to 15 bytes
//    past the source modulo 4 KiB (measured on this project's AMD EPYC
//    machine with glibc 2.36: 128 KiB in 74 to 110 us instead of 2.3 us,
//    cache hot). Each store then shares its page offset with a load that
//    comes right after it (4K aliasing), and the string move waits on every
//    one. A bounce slot is page-aligned for a mapping of a page or more and
//    a heap buffer often starts 8 or 16 bytes into a page, so the copy back
//    of a read (slot to buffer) hits exactly that case.
//  - Where it does not stall, it is still slower than a loop of 32-byte
//    vector moves up to about 16 KiB (4 KiB cache hot: 42 ns against 35),
//    and it starts more slowly inside a map, where the moves around it
//    cannot overlap it. glibc 2.39 stopped using it on these processors for
//    that reason; the C library of Debian 12 (2.36) still does.
//
// So a copy of 2 KiB or more goes out of line (copy_large), to a loop of
// 32-byte vector moves with aligned stores where the processor has AVX2, or
// else, at a near-alias distance, to a loop of 16-byte moves; every other
// copy is memcpy. docs/io.md has the numbers.
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

// Above this size (a swiotlb segment, the largest bounce a pool makes) a
// copy that is not near-alias stays memcpy, which may use non-temporal
// stores for copies too large to keep in cache.
inline constexpr std::size_t kVectorCopyMaxBytes = std::size_t{256} << 10;

// The ways copy_large can copy.
enum class CopyPath : std::uint8_t {
  memcpy,     // the C library's
  blocks16,   // 16-byte moves (the x86-64 baseline); for near-alias copies
  vectors32,  // 32-byte AVX2 moves, stores aligned; where the CPU has AVX2
};

// Whether this processor runs CopyPath::vectors32 (decided once; cheap).
bool vector_copy_available();

// The path bounce_copy() takes for these arguments: memcpy below
// kStringMoveMinBytes; vectors32 where available for copies up to
// kVectorCopyMaxBytes or near-alias (destination 1 to 63 bytes past the
// source modulo 4 KiB); otherwise blocks16 when near-alias, else memcpy.
CopyPath bounce_copy_path(const void* dst, const void* src, std::size_t bytes);

// Copies `bytes` (non-overlapping ranges) by `path`. CopyPath::vectors32 on
// a processor without AVX2 is a caller's error; it copies by blocks16
// instead of faulting.
void copy_by(CopyPath path, void* dst, const void* src, std::size_t bytes);

// The out-of-line half of bounce_copy(): a copy of kStringMoveMinBytes or
// more by bounce_copy_path's choice.
void copy_large(void* dst, const void* src, std::size_t bytes);

// memcpy(dst, src, bytes) for ranges that do not overlap, by the path
// bounce_copy_path() names: never a string move where one would stall or
// lose to vector moves.
inline void bounce_copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes < kStringMoveMinBytes) [[likely]] {
    std::memcpy(dst, src, bytes);
    return;
  }
  copy_large(dst, src, bytes);
}

}  // namespace swiotlb
