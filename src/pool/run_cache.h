// RunCache: one area's magazines of recently freed slot runs (private to the
// pool layer; used by SlotPool for a policy whose caches_runs() is true).
//
// The kernel's IOVA rcache, applied to bounce slots. An unmap that would
// give a run of at most kMaxCachedSlots slots back to its area puts it here
// instead, still taken as far as the free-run counters and the policy's
// index know; the next map of the same number of slots in that area takes
// the run its thread freed last (its cache lines are still warm) without a
// search and without the area lock. Per run length (a size class: exactly
// n slots) two magazines, `loaded` and `previous`, each a LIFO of up to
// kMagazineRuns runs; when both are full, the previous one goes to the
// area's depot (up to kDepotMagazines magazines of any class), and when the
// depot is full its oldest magazine goes back to the area, run by run.
//
// No slot is lost to a cache: the runs here are still the area's, and
// SlotPool drains them into the area (drain()) when a search of the area
// fails, and when IoTlb grows or shrinks. The cache also stops taking runs
// once it holds `budget` slots, so that a pool's free space is never mostly
// parked here.
//
// A run handed out again must satisfy the new request's rules (alignment,
// kept min_align_mask bits, segment boundary): take() asks the caller's
// `fits` about each candidate and skips runs that do not fit; they stay
// for a later request or the next drain. A run never crosses a segment (it
// was one mapping), so the segment rule holds by construction.
//
// Synchronization: every member is guarded by `lock`, a spin lock
// (core/spin_lock.h) held for a few dozen instructions. Lock order: the area's lock, then this one.
// cached_slots() may be read without it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>

#include "swiotlb/core/spin_lock.h"

namespace swiotlb {

// Runs longer than this (64 KiB) always go back to their area.
inline constexpr std::uint32_t kMaxCachedSlots = 32;
inline constexpr std::uint32_t kMagazineRuns = 8;
inline constexpr std::uint32_t kDepotMagazines = 4;

// Up to kMagazineRuns runs of `nslots` slots each, newest last.
struct Magazine {
  std::uint32_t nslots = 0;
  std::uint32_t count = 0;
  std::array<std::uint32_t, kMagazineRuns> first{};  // pool-global first slots

  bool full() const { return count == kMagazineRuns; }
  bool empty() const { return count == 0; }
};

class alignas(64) RunCache {
 public:
  // A cache that holds at most `budget` slots at once.
  explicit RunCache(std::uint64_t budget);

  // REQUIRES (for every method below): `lock` held.

  // What take() returns when no run fits (no run starts at slot 2^32 - 1:
  // a pool has fewer slots).
  static constexpr std::uint32_t kNone = 0xffffffff;

  // The first slot of the newest cached run of `nslots` slots for which
  // fits(first) holds, removed from the cache; kNone when there is none.
  // (A plain value, not an optional: the caller reads it at once, and a
  // flag byte read back with the value stalls the load.) REQUIRES: nslots
  // in [1, kMaxCachedSlots].
  template <class Fits>
  std::uint32_t take(std::uint32_t nslots, Fits&& fits);
  // take()'s common case alone: the newest run of the class's loaded
  // magazine, when fits(it); kNone, changing nothing, otherwise (take()
  // looks further). For a caller that keeps the slow case out of line.
  template <class Fits>
  std::uint32_t take_newest(std::uint32_t nslots, Fits&& fits);

  // Caches the run [first, first + nslots). False, changing nothing, when
  // it would pass the budget or the depot has no room for a full magazine:
  // the caller then holds the area's lock and calls spill().
  // The common case inline: room in the budget and in the class's loaded
  // magazine; the rest (magazine swaps, the depot) is put_slow.
  [[gnu::always_inline]] bool put(std::uint32_t first, std::uint32_t nslots) {
    Magazine& loaded = classes_[nslots - 1].loaded;
    if (cached_slots() + nslots > budget_ || loaded.full()) [[unlikely]] {
      return put_slow(first, nslots);
    }
    loaded.first[loaded.count++] = first;
    add_cached(nslots);
    return true;
  }

  // Makes room by giving the oldest depot magazine back through
  // release(first, nslots), then caches the run if it now fits; otherwise
  // gives the run back too. REQUIRES: the area's lock held as well.
  template <class Release>
  void spill(std::uint32_t first, std::uint32_t nslots, Release&& release);

  // Gives every cached run back through release(first, nslots).
  // REQUIRES: the area's lock held as well.
  template <class Release>
  void drain(Release&& release);

  // Slots in cached runs now. Written under `lock`; readable without it.
  std::uint64_t cached_slots() const { return cached_.load(std::memory_order_relaxed); }
  // Maps served from the cache since the pool was made.
  std::uint64_t hits() const { return hits_; }

  mutable SpinLock lock;

 private:
  // One size class: runs of exactly class_index + 1 slots.
  struct SizeClass {
    Magazine loaded;
    Magazine previous;
  };

  bool put_slow(std::uint32_t first, std::uint32_t nslots);
  template <class Fits>
  [[gnu::noinline]] std::uint32_t take_slow(std::uint32_t nslots, Fits& fits);
  template <class Fits>
  static std::uint32_t take_from(Magazine& magazine, Fits& fits);
  std::optional<std::size_t> depot_index(std::uint32_t nslots) const;
  // Inline always: the compiler otherwise calls them out of line from
  // put() and take(), which are half of a hit.
  [[gnu::always_inline]] void add_cached(std::uint32_t nslots) {
    cached_.store(cached_.load(std::memory_order_relaxed) + nslots, std::memory_order_relaxed);
  }
  [[gnu::always_inline]] void sub_cached(std::uint32_t nslots) {
    cached_.store(cached_.load(std::memory_order_relaxed) - nslots, std::memory_order_relaxed);
  }
  template <class Release>
  void release_magazine(Magazine& magazine, Release& release);

  const std::uint64_t budget_;
  std::atomic<std::uint64_t> cached_{0};
  std::uint64_t hits_ = 0;
  std::array<SizeClass, kMaxCachedSlots> classes_{};
  std::array<Magazine, kDepotMagazines> depot_{};  // oldest first
  std::uint32_t depot_count_ = 0;
};

template <class Fits>
std::uint32_t RunCache::take_from(Magazine& magazine, Fits& fits) {
  for (std::uint32_t i = magazine.count; i-- > 0;) {
    const std::uint32_t first = magazine.first[i];
    if (fits(first)) {
      for (std::uint32_t k = i + 1; k < magazine.count; ++k) {
        magazine.first[k - 1] = magazine.first[k];
      }
      --magazine.count;
      return first;
    }
  }
  return kNone;
}

template <class Fits>
std::uint32_t RunCache::take_newest(std::uint32_t nslots, Fits&& fits) {
  Magazine& loaded = classes_[nslots - 1].loaded;
  if (loaded.count != 0) [[likely]] {
    const std::uint32_t newest = loaded.first[loaded.count - 1];
    if (fits(newest)) [[likely]] {
      --loaded.count;
      sub_cached(nslots);
      ++hits_;
      return newest;
    }
  }
  return kNone;
}

// The common case first: the newest run of the loaded magazine fits.
template <class Fits>
std::uint32_t RunCache::take(std::uint32_t nslots, Fits&& fits) {
  const std::uint32_t newest = take_newest(nslots, fits);
  return newest != kNone ? newest : take_slow(nslots, fits);
}

template <class Fits>
std::uint32_t RunCache::take_slow(std::uint32_t nslots, Fits& fits) {
  SizeClass& size_class = classes_[nslots - 1];
  std::uint32_t run = take_from(size_class.loaded, fits);
  if (run == kNone && !size_class.previous.empty()) {
    std::swap(size_class.loaded, size_class.previous);
    run = take_from(size_class.loaded, fits);
  }
  if (run == kNone) {
    // A full magazine of this class from the depot takes the place of the
    // loaded one, which takes its place in the depot (unless empty).
    if (const std::optional<std::size_t> d = depot_index(nslots)) {
      std::swap(size_class.loaded, depot_[*d]);
      if (depot_[*d].empty()) {
        for (std::size_t k = *d + 1; k < depot_count_; ++k) {
          depot_[k - 1] = depot_[k];
        }
        --depot_count_;
      }
      run = take_from(size_class.loaded, fits);
    }
  }
  if (run != kNone) {
    sub_cached(nslots);
    ++hits_;
  }
  return run;
}

template <class Release>
void RunCache::release_magazine(Magazine& magazine, Release& release) {
  for (std::uint32_t i = 0; i < magazine.count; ++i) {
    release(magazine.first[i], magazine.nslots);
  }
  sub_cached(magazine.count * magazine.nslots);
  magazine.count = 0;
}

template <class Release>
void RunCache::spill(std::uint32_t first, std::uint32_t nslots, Release&& release) {
  if (depot_count_ != 0) {
    release_magazine(depot_[0], release);
    for (std::size_t k = 1; k < depot_count_; ++k) {
      depot_[k - 1] = depot_[k];
    }
    --depot_count_;
  }
  if (!put(first, nslots)) {
    release(first, nslots);
  }
}

template <class Release>
void RunCache::drain(Release&& release) {
  for (SizeClass& size_class : classes_) {
    release_magazine(size_class.loaded, release);
    release_magazine(size_class.previous, release);
  }
  for (std::size_t k = 0; k < depot_count_; ++k) {
    release_magazine(depot_[k], release);
  }
  depot_count_ = 0;
}

}  // namespace swiotlb
