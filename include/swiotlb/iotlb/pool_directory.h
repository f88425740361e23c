// The pool directory of a persistent IoTlb: where each of its pools beside
// the default one (the high pool, grown pools) lives, kept in the default
// pool's memory after its pool image, so that a later process that attaches
// to the default pool finds every other pool and attaches to it too.
//
// A persistent region is laid out as
//
//   slots of the default pool            nslabs * 2 KiB
//   the default pool's image             pool_image_bytes(nslabs)
//   the pool directory                   kPoolDirectoryBytes
//
// and each other pool is a range of the same file (slots, then its own
// image) that the directory names by its offset, size and address.
//
// The directory is a 64-byte header and kPoolDirectoryCapacity entries of
// 64 bytes. An entry is written with its state empty, its checksum last of
// its fields, and only then marked live, so that a process that dies while
// recording a pool leaves an entry a later attach ignores; a pool given
// back is marked empty before its memory goes. Fields have fixed widths, in
// the host's byte order (docs/persistent-pools.md has the tables).
//
// Thread safety: a PoolDirectory serializes its own writers; readers of
// live() see whole entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <type_traits>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/iotlb/backend.h"

namespace swiotlb {

// "SWTLBDIR" read as a little-endian 64-bit word.
inline constexpr std::uint64_t kPoolDirectoryMagic = 0x5249444c42545753;
inline constexpr std::uint32_t kPoolDirectoryVersion = 1;
inline constexpr std::uint64_t kPoolDirectoryBytes = 16384;
// The state word of an entry that names a pool ("LIVE" little-endian).
inline constexpr std::uint32_t kPoolEntryLive = 0x4556494c;

struct PoolDirectoryHeader {
  std::uint64_t magic = kPoolDirectoryMagic;
  std::uint32_t version = kPoolDirectoryVersion;
  std::uint32_t capacity = 0;  // entries after the header
  std::uint64_t checksum = 0;  // FNV-1a 64 over the header with this field 0
  std::uint8_t reserved[40] = {};
};

struct PoolDirectoryEntry {
  std::uint32_t state = 0;  // kPoolEntryLive, or 0 for an empty entry
  std::uint8_t kind = 0;    // PoolKind: configured (the high pool) or grown
  std::uint8_t reserved0[3] = {};
  std::uint32_t tier = 0;  // the configured pool it is or serves
  std::uint32_t nareas = 0;
  std::uint64_t nslabs = 0;
  std::uint64_t start = 0;  // address of slot 0, where it must be mapped again
  std::uint64_t token = 0;  // where the backend keeps it: the offset in the window's file
  std::uint64_t bytes = 0;  // its memory: the slots and its pool image
  // FNV-1a 64 over the entry with `state` and this field 0.
  std::uint64_t checksum = 0;
  std::uint8_t reserved[8] = {};
};

static_assert(std::is_trivially_copyable_v<PoolDirectoryHeader>);
static_assert(sizeof(PoolDirectoryHeader) == 64);
static_assert(std::is_trivially_copyable_v<PoolDirectoryEntry>);
static_assert(sizeof(PoolDirectoryEntry) == 64);
static_assert(offsetof(PoolDirectoryEntry, kind) == 4);
static_assert(offsetof(PoolDirectoryEntry, tier) == 8);
static_assert(offsetof(PoolDirectoryEntry, nareas) == 12);
static_assert(offsetof(PoolDirectoryEntry, nslabs) == 16);
static_assert(offsetof(PoolDirectoryEntry, start) == 24);
static_assert(offsetof(PoolDirectoryEntry, token) == 32);
static_assert(offsetof(PoolDirectoryEntry, bytes) == 40);
static_assert(offsetof(PoolDirectoryEntry, checksum) == 48);

inline constexpr std::uint32_t kPoolDirectoryCapacity = static_cast<std::uint32_t>(
    (kPoolDirectoryBytes - sizeof(PoolDirectoryHeader)) / sizeof(PoolDirectoryEntry));

// Bytes a persistent default pool of `nslabs` slots needs in its region:
// the slots, its image and the directory. A region to attach to (or a
// device file to hold one) must have at least this many.
SWIOTLB_API std::uint64_t persistent_region_bytes(std::uint64_t nslabs);

// A pool the directory names, with the entry that names it.
struct RecordedPool {
  std::uint32_t slot = 0;
  PoolKind kind = PoolKind::grown;
  std::uint32_t tier = 0;
  std::uint32_t nareas = 1;
  std::uint64_t nslabs = 0;
  PhysAddr start;
  std::uint64_t token = 0;
  std::uint64_t bytes = 0;
};

class PoolDirectory {
 public:
  // Writes an empty directory over `memory` (at least kPoolDirectoryBytes,
  // 64-byte aligned: Errc::invalid_argument otherwise). The memory must
  // outlive the directory.
  static Result<std::unique_ptr<PoolDirectory>> format(std::span<std::byte> memory);
  // Reads the directory an earlier holder left: Errc::parse for no magic,
  // another version or capacity, or a header that fails its checksum.
  static Result<std::unique_ptr<PoolDirectory>> open(std::span<std::byte> memory);

  // The live entries, in slot order (the order their pools were recorded
  // in, until a slot is reused). Errc::parse names a live entry whose
  // checksum or kind is wrong.
  Result<std::vector<RecordedPool>> pools() const;
  // Records a pool; its slot, or Errc::limit_reached when every entry is in
  // use. Only kinds configured and grown are recorded.
  Result<std::uint32_t> record(const RecordedPool& pool);
  // Marks an entry empty. REQUIRES: slot from record() or pools().
  void erase(std::uint32_t slot);

 private:
  explicit PoolDirectory(std::byte* base) : base_(base) {}
  PoolDirectoryEntry* entry(std::uint32_t slot) const;

  std::byte* const base_;
  std::mutex lock_;  // serializes record() and erase()
};

}  // namespace swiotlb
