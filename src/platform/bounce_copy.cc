// The block loop for copies whose destination sits just past the source
// modulo 4 KiB (bounce_copy.h says why).
#include "swiotlb/platform/bounce_copy.h"

namespace swiotlb {

void copy_near_alias(std::byte* dst, const std::byte* src, std::size_t bytes) {
  // Fixed-size copies compile to vector loads and stores, never to a
  // string move or a library call.
  constexpr std::size_t kBlock = 64;
  for (; bytes >= kBlock; bytes -= kBlock, dst += kBlock, src += kBlock) {
    __builtin_memcpy(dst, src, kBlock);
  }
  std::memcpy(dst, src, bytes);
}

}  // namespace swiotlb
