// bounce_copy() and each of its copy paths: the same bytes as memcpy for
// every distance between destination and source modulo 4 KiB and every
// size around the loops' edges, nothing written outside the destination;
// and the rule that picks the path.
#include "swiotlb/platform/bounce_copy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace swiotlb {
namespace {

constexpr std::size_t kPage = 4096;

std::uintptr_t page_offset(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) & (kPage - 1);
}

using Copy = std::function<void(void*, const void*, std::size_t)>;

// Copies each size at each destination distance 0..129 past the source
// (modulo a page), from a source 5 bytes into a page and from one 21 bytes
// into it (so that the destination's and the source's alignment to 32
// bytes differ in more than one way), and checks every byte and a guard
// byte on either side.
void expect_exact_copies(const Copy& copy, std::span<const std::size_t> sizes) {
  std::size_t largest = 0;
  for (const std::size_t bytes : sizes) {
    largest = std::max(largest, bytes);
  }
  std::vector<std::byte> src(largest + 2 * kPage);
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  }
  std::vector<std::byte> dst(largest + 3 * kPage);
  for (const std::size_t start : {std::size_t{5}, std::size_t{21}}) {
    const std::byte* from = src.data() + start;
    for (const std::size_t bytes : sizes) {
      for (std::size_t distance = 0; distance < 130; ++distance) {
        std::size_t at = (page_offset(from) + distance - page_offset(dst.data())) & (kPage - 1);
        at += kPage;  // room for a guard before it
        std::fill(dst.begin(), dst.end(), std::byte{0xee});
        copy(dst.data() + at, from, bytes);
        ASSERT_EQ(page_offset(dst.data() + at), (page_offset(from) + distance) & (kPage - 1));
        const std::byte* differs = std::mismatch(from, from + bytes, dst.data() + at).first;
        ASSERT_EQ(differs, from + bytes) << "size " << bytes << " distance " << distance
                                         << " first wrong byte " << (differs - from);
        ASSERT_EQ(dst[at - 1], std::byte{0xee}) << "size " << bytes << " distance " << distance;
        ASSERT_EQ(dst[at + bytes], std::byte{0xee}) << "size " << bytes << " distance " << distance;
      }
    }
  }
}

constexpr std::array<std::size_t, 20> kEdgeSizes = {1,    31,   32,   63,   64,   65,       95,
                                                    96,   127,  128,  129,  159,  160,      2047,
                                                    2048, 2049, 4095, 4096, 4097, 8192 + 17};

TEST(BounceCopy, CopiesExactlyTheBytesAtEveryDistanceAndSize) {
  expect_exact_copies([](void* d, const void* s, std::size_t n) { bounce_copy(d, s, n); },
                      kEdgeSizes);
}

TEST(BounceCopy, TheBlockLoopCopiesExactly) {
  expect_exact_copies(
      [](void* d, const void* s, std::size_t n) { copy_by(CopyPath::blocks16, d, s, n); },
      kEdgeSizes);
}

TEST(BounceCopy, TheVectorLoopCopiesExactly) {
  if (!vector_copy_available()) {
    GTEST_SKIP() << "no AVX2 on this processor";
  }
  expect_exact_copies(
      [](void* d, const void* s, std::size_t n) { copy_by(CopyPath::vectors32, d, s, n); },
      kEdgeSizes);
}

TEST(BounceCopy, PathRule) {
  std::vector<std::byte> buffer(kVectorCopyMaxBytes + 4 * kPage);
  std::byte* src = buffer.data();
  src += (kPage - page_offset(src)) & (kPage - 1);  // page-aligned
  std::byte* same_offset = src + kPage;             // distance 0
  std::byte* near = src + kPage + 16;               // 16 bytes past: near-alias
  std::byte* far = src + kPage + 64;                // 64 bytes past: not near-alias
  const CopyPath large = vector_copy_available() ? CopyPath::vectors32 : CopyPath::memcpy;
  const CopyPath large_alias = vector_copy_available() ? CopyPath::vectors32 : CopyPath::blocks16;

  // Below the string-move threshold: memcpy, whatever the distance.
  EXPECT_EQ(bounce_copy_path(near, src, kStringMoveMinBytes - 1), CopyPath::memcpy);
  EXPECT_EQ(bounce_copy_path(same_offset, src, 512), CopyPath::memcpy);
  // From the threshold up to a segment.
  EXPECT_EQ(bounce_copy_path(same_offset, src, kStringMoveMinBytes), large);
  EXPECT_EQ(bounce_copy_path(far, src, kPage), large);
  EXPECT_EQ(bounce_copy_path(near, src, kPage), large_alias);
  EXPECT_EQ(bounce_copy_path(same_offset, src, kVectorCopyMaxBytes), large);
  // Above a segment: memcpy unless near-alias.
  EXPECT_EQ(bounce_copy_path(same_offset, src, kVectorCopyMaxBytes + 1), CopyPath::memcpy);
  EXPECT_EQ(bounce_copy_path(far, src, kVectorCopyMaxBytes + 1), CopyPath::memcpy);
  EXPECT_EQ(bounce_copy_path(near, src, kVectorCopyMaxBytes + 1), large_alias);
  // 63 bytes past is still near-alias; 4 KiB less 16 bytes (a source 16
  // bytes into a page, copied to an aligned slot) is not.
  EXPECT_EQ(bounce_copy_path(src + kPage + 63, src, kVectorCopyMaxBytes + 1), large_alias);
  EXPECT_EQ(bounce_copy_path(src + kPage, src + 16, kVectorCopyMaxBytes + 1), CopyPath::memcpy);
}

TEST(BounceCopy, LargeCopiesAcrossTheSegmentEdgeAreExact) {
  expect_exact_copies([](void* d, const void* s, std::size_t n) { bounce_copy(d, s, n); },
                      std::array{kVectorCopyMaxBytes - 1, kVectorCopyMaxBytes + 33});
}

}  // namespace
}  // namespace swiotlb
