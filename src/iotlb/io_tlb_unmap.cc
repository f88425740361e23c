// The way back: unmap (checked, then copied back and freed), sync in either
// direction, and the end of a transient pool with its one mapping.

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "streaming_hit.h"
#include "swiotlb/platform/bounce_copy.h"

namespace swiotlb {

Result<BounceMapping> IoTlb::begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                         const MappingClaim& claim) {
  PoolTable::ReadGuard reading(dynamic_);
  IoPool* pool = table_->find(tlb_addr);
  if (pool == nullptr) {
    return make_error(Errc::not_mapped, "{:#x} is in no pool", tlb_addr.value());
  }
  Result<MappingInfo> info = pool->slots->begin_unmap(tlb_addr, min_align_mask, &claim);
  if (!info) {
    return std::move(info).error();
  }
  return BounceMapping{*info, pool};
}

void IoTlb::finish_unmap(const BounceMapping& mapping, Attrs attrs) {
  // Inside a critical section: once the slots are free, a grown pool may be
  // given back, and this call still looks at it.
  PoolTable::ReadGuard reading(dynamic_);
  if (!attrs.has(Attr::skip_cpu_sync) && copies_from_device(mapping.info.dir)) {
    copy_from_bounce(mapping, mapping.info.tlb_addr, mapping.info.mapping_size);
  }
  mapping.pool->slots->finish_unmap(mapping.info);
  finish_release(mapping.pool, mapping.info.nslots.value());
}

void IoTlb::finish_release(IoPool* pool, std::uint64_t nslots) {
  counters_->tiers[pool->tier].count_unmap(pool->kind == PoolKind::configured, nslots);
  if (pool->kind != PoolKind::transient) {
    waits_.notify();
    return;
  }
  // Its one mapping is gone: so is the pool, once its readers are.
  counters_->transient_pools.fetch_sub(1, std::memory_order_relaxed);
  counters_->transient_nslabs.fetch_sub(pool->nslabs(), std::memory_order_relaxed);
  table_->retire(pool);
  worker_->wake();
}

bool IoTlb::unmap_cached(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                         Attrs attrs) {
  IoPool* pool = configured_holding(tlb_addr);
  if (pool == nullptr) {
    return false;
  }
  if (attrs.has(Attr::skip_cpu_sync) || !copies_from_device(claim.dir)) {
    SlotCount nslots;
    std::uint64_t waiting = 0;
    if (!pool->slots->unmap_cached(tlb_addr, min_align_mask, claim, nslots, &waits_.waiter_count(),
                                   &waiting)) {
      return false;
    }
    StreamingHit::release_parked(*this, *pool, nslots.value(), waiting);
    return true;
  }
  // finish_unmap's steps, without its read section: a configured pool is
  // never given back.
  BounceMapping mapping{MappingInfo{}, pool};
  if (!pool->slots->begin_unmap_cached(tlb_addr, min_align_mask, claim, mapping.info)) {
    return false;
  }
  copy_from_bounce(mapping, mapping.info.tlb_addr, mapping.info.mapping_size);
  pool->slots->finish_unmap(mapping.info);
  finish_release(pool, mapping.info.nslots.value());
  return true;
}

bool IoTlb::unmap_streaming(const BounceRoute& route, PhysAddr tlb_addr, std::uint64_t size,
                            Direction dir, Attrs attrs) {
  return StreamingHit::unmap(*this, route, tlb_addr, size, dir, attrs);
}

Status IoTlb::unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                    Attrs attrs) {
  if (attrs.has(Attr::skip_cpu_sync) || !copies_from_device(claim.dir)) {
    // Nothing to copy back (the claim's direction is checked against the
    // mapping's): check and free in one call to the pool.
    auto release = [&](IoPool& pool) -> Status {
      Result<MappingInfo> info = pool.slots->unmap(tlb_addr, min_align_mask, &claim);
      if (!info) {
        return std::move(info).error();
      }
      finish_release(&pool, info->nslots.value());
      return {};
    };
    if (IoPool* configured = configured_holding(tlb_addr); configured != nullptr) {
      return release(*configured);  // never given back: no read section
    }
    PoolTable::ReadGuard reading(dynamic_);
    IoPool* pool = table_->find(tlb_addr);
    if (pool == nullptr) {
      return make_error(Errc::not_mapped, "{:#x} is in no pool", tlb_addr.value());
    }
    return release(*pool);
  }
  Result<BounceMapping> mapping = begin_unmap(tlb_addr, min_align_mask, claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  finish_unmap(*mapping, attrs);
  return {};
}

Result<BounceMapping> IoTlb::find_for_sync(PhysAddr addr, std::uint64_t size, Direction dir,
                                           std::uint32_t owner) const {
  PoolTable::ReadGuard reading(dynamic_);
  IoPool* pool = table_->find(addr);
  if (pool == nullptr) {
    return make_error(Errc::not_mapped, "{:#x} is in no pool", addr.value());
  }
  Result<MappingInfo> info = pool->slots->find_mapping(addr, size);
  if (!info) {
    return std::move(info).error();
  }
  if (info->owner != owner) {
    return make_error(Errc::mapping_mismatch, "sync of {:#x} by owner {}, but owner {} mapped it",
                      addr.value(), owner, info->owner);
  }
  if (info->dir != dir || dir == Direction::none) {
    return make_error(Errc::mapping_mismatch, "sync of {:#x} {}, but it was mapped {}",
                      addr.value(), to_string(dir), to_string(info->dir));
  }
  return BounceMapping{*info, pool};
}

Status IoTlb::sync_for_cpu(PhysAddr addr, std::uint64_t size, Direction dir, std::uint32_t owner) {
  Result<BounceMapping> mapping = find_for_sync(addr, size, dir, owner);
  if (!mapping) {
    return std::move(mapping).error();
  }
  copy_for_cpu(*mapping, addr, size);
  return {};
}

Status IoTlb::sync_for_device(PhysAddr addr, std::uint64_t size, Direction dir,
                              std::uint32_t owner) {
  Result<BounceMapping> mapping = find_for_sync(addr, size, dir, owner);
  if (!mapping) {
    return std::move(mapping).error();
  }
  copy_for_device(*mapping, addr, size);
  return {};
}

void IoTlb::copy_for_cpu(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  if (copies_from_device(mapping.info.dir)) {
    copy_from_bounce(mapping, addr, size);
  }
}

void IoTlb::copy_for_device(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  if (copies_to_device(mapping.info.dir)) {
    copy_to_bounce(mapping, addr, size);
  }
}

void IoTlb::copy_to_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  const IoPool& pool = *mapping.pool;
  if (std::byte* bounce = pool.data_at(addr); bounce != nullptr) {
    bounce_copy(bounce, pool.slots->orig_of(mapping.info, addr).to_pointer(), size);
  }
}

void IoTlb::copy_from_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  const IoPool& pool = *mapping.pool;
  if (const std::byte* bounce = pool.data_at(addr); bounce != nullptr) {
    bounce_copy(pool.slots->orig_of(mapping.info, addr).to_pointer(), bounce, size);
  }
}

}  // namespace swiotlb
