// The copy loops bounce_copy() uses for copies of 2 KiB or more, and the
// rule that picks one (bounce_copy.h says why memcpy is not always it).
#include "swiotlb/platform/bounce_copy.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace swiotlb {
namespace {

// A destination this many bytes or fewer past the source (modulo 4 KiB,
// not 0) makes string moves stall.
constexpr std::uintptr_t kNearAliasBytes = 63;
constexpr std::uintptr_t kAliasPeriod = 4096;

bool near_alias(const void* dst, const void* src) {
  const std::uintptr_t distance =
      (reinterpret_cast<std::uintptr_t>(dst) - reinterpret_cast<std::uintptr_t>(src)) &
      (kAliasPeriod - 1);
  return distance != 0 && distance <= kNearAliasBytes;
}

// Fixed-size copies compile to 16-byte vector loads and stores, never to a
// string move or a library call.
void copy_blocks16(std::byte* dst, const std::byte* src, std::size_t bytes) {
  constexpr std::size_t kBlock = 64;
  for (; bytes >= kBlock; bytes -= kBlock, dst += kBlock, src += kBlock) {
    __builtin_memcpy(dst, src, kBlock);
  }
  std::memcpy(dst, src, bytes);
}

#if defined(__x86_64__)
// 32-byte moves, four to a round. The first and last 32 bytes are loaded
// before anything is stored and stored unaligned; in between, stores are
// aligned (a store that splits a cache line costs two), loads are not.
__attribute__((target("avx2"))) void copy_vectors32(std::byte* dst, const std::byte* src,
                                                    std::size_t bytes) {
  constexpr std::size_t kVector = 32;
  if (bytes < 2 * kVector) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const __m256i head = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  const __m256i tail = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + bytes - kVector));
  std::byte* const end = dst + bytes;
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), head);
  // Past the head, to the next 32-byte boundary of the destination (1 to
  // 32 bytes on): at least 32 bytes remain.
  const std::size_t skip = kVector - (reinterpret_cast<std::uintptr_t>(dst) & (kVector - 1));
  dst += skip;
  src += skip;
  bytes -= skip;
  for (; bytes >= 4 * kVector; bytes -= 4 * kVector, dst += 4 * kVector, src += 4 * kVector) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + kVector));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * kVector));
    const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 3 * kVector));
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst), a);
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst + kVector), b);
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 2 * kVector), c);
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 3 * kVector), d);
  }
  for (; bytes > kVector; bytes -= kVector, dst += kVector, src += kVector) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(dst),
                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)));
  }
  // The last 1 to 32 bytes, as the tail (which may store some again).
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(end - kVector), tail);
}
#endif

// Copies by a path this processor can take (bounce_copy_path's answers are).
void copy_along(CopyPath path, std::byte* dst, const std::byte* src, std::size_t bytes) {
  switch (path) {
    case CopyPath::memcpy:
      std::memcpy(dst, src, bytes);
      return;
    case CopyPath::vectors32:
#if defined(__x86_64__)
      copy_vectors32(dst, src, bytes);
      return;
#else
      [[fallthrough]];  // never chosen without AVX2
#endif
    case CopyPath::blocks16:
      break;
  }
  copy_blocks16(dst, src, bytes);
}

}  // namespace

bool vector_copy_available() {
#if defined(__x86_64__)
  // libgcc's check also asks the OS whether it saves the 256-bit registers.
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return available;
#else
  return false;
#endif
}

CopyPath bounce_copy_path(const void* dst, const void* src, std::size_t bytes) {
  if (bytes < kStringMoveMinBytes) {
    return CopyPath::memcpy;
  }
  const bool alias = near_alias(dst, src);
  if (vector_copy_available() && (bytes <= kVectorCopyMaxBytes || alias)) {
    return CopyPath::vectors32;
  }
  return alias ? CopyPath::blocks16 : CopyPath::memcpy;
}

void copy_by(CopyPath path, void* dst, const void* src, std::size_t bytes) {
  if (path == CopyPath::vectors32 && !vector_copy_available()) {
    path = CopyPath::blocks16;
  }
  copy_along(path, static_cast<std::byte*>(dst), static_cast<const std::byte*>(src), bytes);
}

void copy_large(void* dst, const void* src, std::size_t bytes) {
  copy_along(bounce_copy_path(dst, src, bytes), static_cast<std::byte*>(dst),
             static_cast<const std::byte*>(src), bytes);
}

}  // namespace swiotlb
