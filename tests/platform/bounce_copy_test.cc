// bounce_copy(): the same bytes as memcpy for every distance between
// destination and source modulo 4 KiB and every size around the block
// loop's edges, and nothing written outside the destination.
#include "swiotlb/platform/bounce_copy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace swiotlb {
namespace {

TEST(BounceCopy, CopiesExactlyTheBytesAtEveryDistanceAndSize) {
  constexpr std::size_t kPage = 4096;
  std::vector<std::byte> src(3 * kPage);
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  }
  std::vector<std::byte> dst(4 * kPage + 256);
  const auto page_offset = [](const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) & (kPage - 1);
  };
  std::uint64_t checked = 0;
  for (const std::size_t bytes :
       {std::size_t{1}, std::size_t{63}, std::size_t{2047}, std::size_t{2048}, std::size_t{2049},
        std::size_t{4095}, std::size_t{8192} + 17}) {
    for (std::size_t distance = 0; distance < 130; ++distance) {
      const std::byte* from = src.data() + 5;
      // The destination `distance` bytes past the source, modulo a page.
      std::size_t at = (page_offset(from) + distance - page_offset(dst.data())) & (kPage - 1);
      at += kPage;  // room for a guard before it
      std::fill(dst.begin(), dst.end(), std::byte{0xee});
      bounce_copy(dst.data() + at, from, bytes);
      ASSERT_EQ(page_offset(dst.data() + at), (page_offset(from) + distance) & (kPage - 1));
      for (std::size_t i = 0; i < bytes; ++i) {
        ASSERT_EQ(dst[at + i], from[i]) << "size " << bytes << " distance " << distance;
      }
      EXPECT_EQ(dst[at - 1], std::byte{0xee});
      EXPECT_EQ(dst[at + bytes], std::byte{0xee});
      ++checked;
    }
  }
  EXPECT_EQ(checked, 7u * 130u);
}

}  // namespace
}  // namespace swiotlb
