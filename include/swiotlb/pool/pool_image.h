// The pool image: a SlotPool's metadata laid out in memory the caller
// provides, so that it outlives the process and another process can attach
// to it (a crash kernel taking over from the kernel that died, a restarted
// VMM taking over its device's pool).
//
// The image is a header followed by the pool's two per-slot arrays, each
// starting on a 64-byte line:
//
//   offset 0              PoolImageHeader (128 bytes)
//   list_offset  (128)    std::uint16_t[slot_count]  free-run counters
//   slots_offset          SlotRecord[slot_count]     the other slot fields
//   ... zero up to image_bytes, a multiple of 4096
//
// Every field has a fixed width and the host's byte order (little-endian on
// the machines this library runs on); an image is read back only on the
// machine that wrote it. The header carries a checksum, the geometry and the
// policy the arrays were written for and the pid of the process that holds
// the pool; the arrays carry none, since a live pool rewrites them on every
// map, and SlotPool::attach checks them slot by slot instead.
//
// docs/persistent-pools.md describes the fields, attach's two modes and
// what it refuses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "swiotlb/core/address.h"
#include "swiotlb/core/direction.h"

namespace swiotlb {

// "SWIOTLB\0" read as a little-endian 64-bit word.
inline constexpr std::uint64_t kPoolImageMagic = 0x00424c544f495753;
inline constexpr std::uint32_t kPoolImageVersion = 1;
// The alignment of the image and of each part in it: a cache line, so that
// the arrays share no line with the header.
inline constexpr std::uint64_t kPoolImageAlign = 64;
// An image's size is a multiple of this, so that it ends on a page.
inline constexpr std::uint64_t kPoolImageGranule = 4096;
inline constexpr std::size_t kPolicyNameBytes = 32;

// The owner a mapping gets when a pool is attached with AttachMode::adopt:
// the mapping was made by an earlier holder of the pool, whose buffers this
// process cannot reach.
inline constexpr std::uint32_t kAdoptedOwner = 0xffffffff;

struct PoolImageHeader {
  std::uint64_t magic = kPoolImageMagic;
  std::uint32_t version = kPoolImageVersion;
  std::uint32_t header_bytes = 0;  // sizeof(PoolImageHeader)
  // FNV-1a 64 over the header's 128 bytes with this field 0
  // (pool_image_checksum).
  std::uint64_t checksum = 0;
  std::uint64_t pool_start = 0;  // address of slot 0
  std::uint64_t slot_count = 0;
  std::uint32_t area_count = 0;
  // The process that formatted or last attached the pool and holds it now;
  // 0 once it let go (SlotPool's destructor) or never held by anyone.
  std::int32_t owner_pid = 0;
  std::uint64_t list_offset = 0;        // from the image's start
  std::uint64_t slots_offset = 0;       // from the image's start
  std::uint64_t image_bytes = 0;        // pool_image_bytes(slot_count)
  std::uint32_t slot_record_bytes = 0;  // sizeof(SlotRecord)
  std::uint32_t reserved0 = 0;
  char policy[kPolicyNameBytes] = {};  // the slot policy's name, NUL-padded
  std::uint8_t reserved[16] = {};
};

static_assert(std::is_trivially_copyable_v<PoolImageHeader>);
static_assert(std::is_standard_layout_v<PoolImageHeader>);
static_assert(sizeof(PoolImageHeader) == 128);
static_assert(offsetof(PoolImageHeader, magic) == 0);
static_assert(offsetof(PoolImageHeader, version) == 8);
static_assert(offsetof(PoolImageHeader, header_bytes) == 12);
static_assert(offsetof(PoolImageHeader, checksum) == 16);
static_assert(offsetof(PoolImageHeader, pool_start) == 24);
static_assert(offsetof(PoolImageHeader, slot_count) == 32);
static_assert(offsetof(PoolImageHeader, area_count) == 40);
static_assert(offsetof(PoolImageHeader, owner_pid) == 44);
static_assert(offsetof(PoolImageHeader, list_offset) == 48);
static_assert(offsetof(PoolImageHeader, slots_offset) == 56);
static_assert(offsetof(PoolImageHeader, image_bytes) == 64);
static_assert(offsetof(PoolImageHeader, slot_record_bytes) == 72);
static_assert(offsetof(PoolImageHeader, policy) == 80);
static_assert(offsetof(PoolImageHeader, reserved) == 112);

// What a slot is part of.
enum class SlotRole : std::uint8_t {
  free = 0,
  pad = 1,   // reserved ahead of a mapping's data, for its alignment
  data = 2,  // holds a mapping's bytes
};

// The state of a mapping, kept on its first data slot.
enum class MappingState : std::uint8_t {
  none = 0,   // not the first data slot of a mapping
  live = 1,   // handed out, not yet given back
  going = 2,  // being unmapped: its data is on its way out
  // Taken over from an earlier holder of the pool: its slots stay reserved
  // until SlotPool::release_adopted, and it is never a copy source or target.
  adopted = 3,
  // Unmapped, its run parked in a magazine of the pool's run cache
  // (src/pool/run_cache.h) until a map of the same length takes it again.
  // Never in an image: pools over an image keep no run cache.
  cached = 4,
};

// One slot's fields beside its free-run counter. orig_addr and alloc_size
// are the kernel's per-slot fields; the rest describe the mapping on its
// first data slot, for the checks of unmap and sync.
struct SlotRecord {
  std::uint64_t orig_addr = kInvalidAddress;
  std::uint32_t alloc_size = 0;    // bytes from this slot to the reservation's end
  std::uint32_t mapping_size = 0;  // first data slot: bytes mapped
  std::uint32_t owner = 0;         // first data slot: who mapped it
  std::uint16_t tlb_offset = 0;    // first data slot: offset of the data in it
  std::uint8_t pad_slots = 0;      // first data slot: pad slots before it
  std::uint8_t part = 0;           // data slot: its position in the mapping
  SlotRole role = SlotRole::free;
  MappingState state = MappingState::none;
  Direction dir = Direction::none;
  std::uint8_t reserved[5] = {};
};

static_assert(std::is_trivially_copyable_v<SlotRecord>);
static_assert(std::is_standard_layout_v<SlotRecord>);
static_assert(sizeof(SlotRecord) == 32);
static_assert(offsetof(SlotRecord, orig_addr) == 0);
static_assert(offsetof(SlotRecord, alloc_size) == 8);
static_assert(offsetof(SlotRecord, mapping_size) == 12);
static_assert(offsetof(SlotRecord, owner) == 16);
static_assert(offsetof(SlotRecord, tlb_offset) == 20);
static_assert(offsetof(SlotRecord, pad_slots) == 22);
static_assert(offsetof(SlotRecord, part) == 23);
static_assert(offsetof(SlotRecord, role) == 24);
static_assert(offsetof(SlotRecord, state) == 25);
static_assert(offsetof(SlotRecord, dir) == 26);

// Where the parts of the image of a pool of `slot_count` slots lie.
struct PoolImageLayout {
  std::uint64_t list_offset = 0;
  std::uint64_t slots_offset = 0;
  std::uint64_t bytes = 0;  // the whole image
};

constexpr std::uint64_t pool_image_align_up(std::uint64_t x, std::uint64_t a) {
  return (x + a - 1) / a * a;
}

// REQUIRES: slot_count <= kMaxSlotCount (core/constants.h).
constexpr PoolImageLayout pool_image_layout(std::uint64_t slot_count) {
  PoolImageLayout layout;
  layout.list_offset = pool_image_align_up(sizeof(PoolImageHeader), kPoolImageAlign);
  layout.slots_offset =
      layout.list_offset + pool_image_align_up(slot_count * sizeof(std::uint16_t), kPoolImageAlign);
  layout.bytes =
      pool_image_align_up(layout.slots_offset + slot_count * sizeof(SlotRecord), kPoolImageGranule);
  return layout;
}

// Bytes of metadata a pool of `slot_count` slots needs in its image.
constexpr std::uint64_t pool_image_bytes(std::uint64_t slot_count) {
  return pool_image_layout(slot_count).bytes;
}

// FNV-1a 64 over the header's bytes, with its checksum field taken as 0.
std::uint64_t pool_image_checksum(const PoolImageHeader& header);

}  // namespace swiotlb
