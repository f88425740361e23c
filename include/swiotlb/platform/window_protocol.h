// The shared-window exchange between a host and a device process
// (docs/shared-window.md): the message layout, its kinds and statuses, and
// the byte pattern both sides derive from a seed to check every byte.
//
// Messages are six 64-bit words in the machine's byte order (both ends run
// on one machine); word 0 is the kind, and every message from the host gets
// one reply. The hello brings window 0; add and remove window messages
// bring and take back further windows (shared_window.h has both ends).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace swiotlb::window {

using Message = std::array<std::uint64_t, 6>;

inline constexpr std::uint64_t kHello = 1;  // version, window bytes, DMA base (+ the memfd)
inline constexpr std::uint64_t kTransfer =
    2;  // direction, DMA address, size, check seed, fill seed
inline constexpr std::uint64_t kBye = 3;
inline constexpr std::uint64_t kReply = 4;  // status, bytes checked, bytes wrong, bytes written
// A further window (a pool grown later): window number, bytes, DMA base (+
// the memfd). The reply's word 4 is the bytes mapped.
inline constexpr std::uint64_t kAddWindow = 5;
inline constexpr std::uint64_t kRemoveWindow = 6;  // window number
inline constexpr std::uint64_t kProtocolVersion = 1;

// Reply statuses.
inline constexpr std::uint64_t kOk = 0;
inline constexpr std::uint64_t kOutsideWindow = 1;
inline constexpr std::uint64_t kMalformed = 2;
inline constexpr std::uint64_t kNoWindow = 3;
inline constexpr std::uint64_t kNoSuchWindow = 4;  // a remove of a window never added

// Where the device sees the window: an address of its own, which says
// nothing about where the host keeps the pool.
inline constexpr std::uint64_t kDmaBase = 0x10000000;

// The pattern a seed names: byte i is byte (i % 8), least significant
// first, of mix(seed + (i / 8) * kGolden).
inline constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15;

constexpr std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

inline void fill_pattern(std::span<std::byte> out, std::uint64_t seed) {
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    word = (i & 7) == 0 ? mix(seed + (i >> 3) * kGolden) : word >> 8;
    out[i] = static_cast<std::byte>(word);
  }
}

// Bytes of `in` that differ from the pattern of `seed`.
inline std::uint64_t pattern_mismatches(std::span<const std::byte> in, std::uint64_t seed) {
  std::uint64_t bad = 0;
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    word = (i & 7) == 0 ? mix(seed + (i >> 3) * kGolden) : word >> 8;
    bad += in[i] != static_cast<std::byte>(word) ? 1u : 0u;
  }
  return bad;
}

}  // namespace swiotlb::window
