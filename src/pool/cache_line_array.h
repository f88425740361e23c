// CacheLineArray: a fixed-size heap array that starts on a cache line and
// fills whole lines (private to the pool layer).
//
// The `fast` policy keeps a few small arrays per area, written on every map
// and unmap by the thread that holds the area's lock. Allocated one after
// another by malloc, the arrays of two areas could share a cache line, and
// two threads working in their own areas would then take the line from each
// other on every operation. Whole, aligned lines rule that out.
//
// Not synchronized: its owner guards it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace swiotlb::fast {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
class CacheLineArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  CacheLineArray() = default;
  CacheLineArray(std::size_t size, const T& value)
      : data_(static_cast<T*>(::operator new[](bytes_for(size), std::align_val_t{kCacheLine}))),
        size_(size) {
    std::uninitialized_fill_n(data_, bytes_for(size) / sizeof(T), value);
  }
  CacheLineArray(CacheLineArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  CacheLineArray& operator=(CacheLineArray&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  CacheLineArray(const CacheLineArray&) = delete;
  CacheLineArray& operator=(const CacheLineArray&) = delete;
  ~CacheLineArray() {
    if (data_ != nullptr) {
      ::operator delete[](data_, std::align_val_t{kCacheLine});
    }
  }

  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  std::size_t size() const { return size_; }

 private:
  static std::size_t bytes_for(std::size_t size) {
    static_assert(kCacheLine % sizeof(T) == 0);
    return std::max<std::size_t>(1, (size * sizeof(T) + kCacheLine - 1) / kCacheLine) * kCacheLine;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace swiotlb::fast
