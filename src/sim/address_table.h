// AddressTable: a hash map from a 64-bit address to a small value, for
// replay's "kernel address -> our mapping" bookkeeping. Private to the sim
// layer.
//
// Open addressing with linear probing and backward-shift deletion, so there
// are no tombstones and lookups stay short however many maps and unmaps pass
// through. Every key is allowed (0 and all ones included): occupancy is kept
// beside the key. The table allocates only when it grows past half full, so a
// replay that sizes it for its pool never allocates per event.
//
// Not thread-safe: one replay owns one table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace swiotlb::sim {

template <class Value>
class AddressTable {
 public:
  // Room for `expected` entries before the first growth.
  explicit AddressTable(std::size_t expected) { rebuild(capacity_for(expected)); }

  static constexpr std::size_t kNone = ~std::size_t{0};

  // The position of `key` in the table, or kNone. A position stays valid
  // until the next insert or erase.
  std::size_t find(std::uint64_t key) const {
    for (std::size_t i = home(key);; i = next(i)) {
      const Entry& e = entries_[i];
      if (!e.used) {
        return kNone;
      }
      if (e.key == key) {
        return i;
      }
    }
  }

  // A hint that `key` is looked up soon: starts loading the line where its
  // probe begins, so that the lookup does not wait for memory. The table
  // outgrows the caches with the live set, and its keys are random.
  void prefetch(std::uint64_t key) const { __builtin_prefetch(&entries_[home(key)]); }

  // REQUIRES: `position` came from find() and is not kNone.
  Value& at(std::size_t position) { return entries_[position].value; }
  const Value& at(std::size_t position) const { return entries_[position].value; }

  // Where `key` is, or else the free position where insert() would put
  // it: one probe for "is it there?" and "where does it go?". Valid until
  // the next insert or erase.
  std::size_t find_or_free(std::uint64_t key) const {
    std::size_t i = home(key);
    while (entries_[i].used && entries_[i].key != key) {
      i = next(i);
    }
    return i;
  }

  // Whether a position from find_or_free holds its key.
  bool holds(std::size_t position) const { return entries_[position].used; }

  // Stores `value` under `key` at `position`, from find_or_free(key) with
  // no insert or erase since: replaces the value held there, or inserts.
  void put(std::size_t position, std::uint64_t key, const Value& value) {
    Entry& e = entries_[position];
    if (e.used) {
      e.value = value;
    } else if ((size_ + 1) * 2 > entries_.size()) {
      insert(key, value);  // grows the table, which moves every position
    } else {
      e = Entry{key, value, true};
      ++size_;
    }
  }

  // Stores `value` under `key`. REQUIRES: find(key) == kNone.
  void insert(std::uint64_t key, const Value& value) {
    if ((size_ + 1) * 2 > entries_.size()) {
      rebuild(entries_.size() * 2);
    }
    std::size_t i = home(key);
    while (entries_[i].used) {
      i = next(i);
    }
    entries_[i] = Entry{key, value, true};
    ++size_;
  }

  // Removes the entry at `position`. REQUIRES: as for at().
  void erase(std::size_t position) {
    std::size_t hole = position;
    // Pull later entries of the probe chain back into the hole, so that no
    // lookup ever stops early at it.
    for (std::size_t i = next(hole);; i = next(i)) {
      Entry& e = entries_[i];
      if (!e.used) {
        break;
      }
      const std::size_t want = home(e.key);
      if (distance(want, i) >= distance(hole, i)) {
        entries_[hole] = e;
        hole = i;
      }
    }
    entries_[hole].used = false;
    --size_;
  }

  std::size_t size() const { return size_; }

 private:
  struct Entry {
    std::uint64_t key = 0;
    Value value{};
    bool used = false;
  };

  static std::size_t capacity_for(std::size_t expected) {
    std::size_t capacity = 16;
    while (capacity < expected * 2) {
      capacity *= 2;
    }
    return capacity;
  }

  // Fibonacci hashing: bounce and buffer addresses share their low bits, so
  // the high bits of the product are the ones worth keeping.
  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (entries_.size() - 1); }
  std::size_t distance(std::size_t from, std::size_t to) const {
    return (to - from) & (entries_.size() - 1);
  }

  void rebuild(std::size_t capacity) {
    std::vector<Entry> old = std::exchange(entries_, std::vector<Entry>(capacity));
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) {
      --shift_;
    }
    size_ = 0;
    for (const Entry& e : old) {
      if (e.used) {
        insert(e.key, e.value);
      }
    }
  }

  std::vector<Entry> entries_;
  unsigned shift_ = 60;
  std::size_t size_ = 0;
};

}  // namespace swiotlb::sim
