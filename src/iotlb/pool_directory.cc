// The pool directory: entries written whole before they are marked live,
// and marked empty before anything else about them changes.
#include "swiotlb/iotlb/pool_directory.h"

#include <atomic>
#include <cstring>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

namespace {

std::uint64_t fnv1a(const void* data, std::size_t bytes) {
  std::uint64_t hash = 0xcbf29ce484222325;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) {
    hash = (hash ^ p[i]) * 0x100000001b3;
  }
  return hash;
}

std::uint64_t header_checksum(PoolDirectoryHeader header) {
  header.checksum = 0;
  return fnv1a(&header, sizeof header);
}

std::uint64_t entry_checksum(PoolDirectoryEntry entry) {
  entry.state = 0;
  entry.checksum = 0;
  return fnv1a(&entry, sizeof entry);
}

Status check_memory(std::span<std::byte> memory) {
  if (memory.size() < kPoolDirectoryBytes ||
      reinterpret_cast<std::uintptr_t>(memory.data()) % kPoolImageAlign != 0) {
    return make_error(Errc::invalid_argument,
                      "a pool directory needs {} bytes aligned to {}; given {} at {}",
                      kPoolDirectoryBytes, kPoolImageAlign, memory.size(),
                      static_cast<const void*>(memory.data()));
  }
  return {};
}

}  // namespace

std::uint64_t persistent_region_bytes(std::uint64_t nslabs) {
  return (nslabs << kSlotShift) + pool_image_bytes(nslabs) + kPoolDirectoryBytes;
}

PoolDirectoryEntry* PoolDirectory::entry(std::uint32_t slot) const {
  return reinterpret_cast<PoolDirectoryEntry*>(base_ + sizeof(PoolDirectoryHeader)) + slot;
}

Result<std::unique_ptr<PoolDirectory>> PoolDirectory::format(std::span<std::byte> memory) {
  if (Status ok = check_memory(memory); !ok) {
    return ok.error();
  }
  std::memset(memory.data(), 0, kPoolDirectoryBytes);
  PoolDirectoryHeader header;
  header.capacity = kPoolDirectoryCapacity;
  header.checksum = header_checksum(header);
  std::memcpy(memory.data(), &header, sizeof header);
  return std::unique_ptr<PoolDirectory>(new PoolDirectory(memory.data()));
}

Result<std::unique_ptr<PoolDirectory>> PoolDirectory::open(std::span<std::byte> memory) {
  if (Status ok = check_memory(memory); !ok) {
    return ok.error();
  }
  PoolDirectoryHeader header;
  std::memcpy(&header, memory.data(), sizeof header);
  const void* at = memory.data();
  if (header.magic != kPoolDirectoryMagic) {
    return make_error(Errc::parse, "no pool directory at {}: the image predates it or is not one",
                      at);
  }
  if (header.version != kPoolDirectoryVersion || header.capacity != kPoolDirectoryCapacity) {
    return make_error(Errc::parse,
                      "pool directory at {} has version {} and {} entries; {} and {} "
                      "expected",
                      at, header.version, header.capacity, kPoolDirectoryVersion,
                      kPoolDirectoryCapacity);
  }
  if (header.checksum != header_checksum(header)) {
    return make_error(Errc::parse, "pool directory at {} is corrupt (header checksum)", at);
  }
  return std::unique_ptr<PoolDirectory>(new PoolDirectory(memory.data()));
}

Result<std::vector<RecordedPool>> PoolDirectory::pools() const {
  std::vector<RecordedPool> live;
  for (std::uint32_t slot = 0; slot < kPoolDirectoryCapacity; ++slot) {
    PoolDirectoryEntry* e = entry(slot);
    if (std::atomic_ref<std::uint32_t>(e->state).load(std::memory_order_acquire) !=
        kPoolEntryLive) {
      continue;  // empty, or cut short before it was marked live
    }
    PoolDirectoryEntry copy;
    std::memcpy(&copy, e, sizeof copy);
    if (copy.checksum != entry_checksum(copy)) {
      return make_error(Errc::parse, "pool directory entry {} is corrupt (checksum)", slot);
    }
    const auto kind = static_cast<PoolKind>(copy.kind);
    if (kind != PoolKind::configured && kind != PoolKind::grown) {
      return make_error(Errc::parse, "pool directory entry {} names a pool of kind {}", slot,
                        copy.kind);
    }
    live.push_back({.slot = slot,
                    .kind = kind,
                    .tier = copy.tier,
                    .nareas = copy.nareas,
                    .nslabs = copy.nslabs,
                    .start = PhysAddr(copy.start),
                    .token = copy.token,
                    .bytes = copy.bytes});
  }
  return live;
}

Result<std::uint32_t> PoolDirectory::record(const RecordedPool& pool) {
  std::lock_guard guard(lock_);
  for (std::uint32_t slot = 0; slot < kPoolDirectoryCapacity; ++slot) {
    PoolDirectoryEntry* e = entry(slot);
    if (std::atomic_ref<std::uint32_t>(e->state).load(std::memory_order_relaxed) != 0) {
      continue;
    }
    PoolDirectoryEntry fresh;
    fresh.kind = static_cast<std::uint8_t>(pool.kind);
    fresh.tier = pool.tier;
    fresh.nareas = pool.nareas;
    fresh.nslabs = pool.nslabs;
    fresh.start = pool.start.value();
    fresh.token = pool.token;
    fresh.bytes = pool.bytes;
    fresh.checksum = entry_checksum(fresh);
    std::memcpy(e, &fresh, sizeof fresh);
    std::atomic_ref<std::uint32_t>(e->state).store(kPoolEntryLive, std::memory_order_release);
    return slot;
  }
  return make_error(Errc::limit_reached,
                    "the pool directory holds {} pools at most, and every entry is in use",
                    kPoolDirectoryCapacity);
}

void PoolDirectory::erase(std::uint32_t slot) {
  std::lock_guard guard(lock_);
  PoolDirectoryEntry* e = entry(slot);
  std::atomic_ref<std::uint32_t>(e->state).store(0, std::memory_order_release);
  std::memset(reinterpret_cast<std::byte*>(e) + sizeof(std::uint32_t), 0,
              sizeof(PoolDirectoryEntry) - sizeof(std::uint32_t));
}

}  // namespace swiotlb
