// Finding pools by address, and the IoTlb-wide slot counts.
#include "io_tlb_internal.h"
#include "io_tlb_worker.h"

namespace swiotlb {

bool IoTlb::contains(PhysAddr addr) const {
  if (configured_holding(addr) != nullptr) {
    return true;
  }
  PoolTable::ReadGuard reading(dynamic_);
  return table_->find(addr) != nullptr;
}

int IoTlb::pool_of(PhysAddr addr) const {
  PoolTable::ReadGuard reading(dynamic_);
  const IoPool* pool = table_->find(addr);
  return pool != nullptr ? static_cast<int>(pool->tier) : -1;
}

std::uint64_t IoTlb::count_owned(std::uint32_t owner) const {
  PoolTable::ReadGuard reading(dynamic_);
  std::uint64_t count = 0;
  for (const IoPool* pool : table_->pools()) {
    count += pool->slots->count_owned(owner);
  }
  return count;
}

PoolInfo IoTlb::pool_info(std::uint32_t pool) const {
  const IoPool& p = *configured_[pool];
  return {p.name, p.start, p.end};
}

std::byte* IoTlb::bounce_pointer(PhysAddr addr) const {
  PoolTable::ReadGuard reading(dynamic_);
  const IoPool* pool = table_->find(addr);
  return pool != nullptr ? pool->data_at(addr) : nullptr;
}

Status IoTlb::release_adopted(PhysAddr tlb_addr) {
  {
    PoolTable::ReadGuard reading(dynamic_);
    IoPool* pool = table_->find(tlb_addr);
    if (pool == nullptr) {
      return make_error(Errc::not_mapped, "{:#x} is in no pool", tlb_addr.value());
    }
    // Rare (once per adopted mapping): a scan for the slots it holds.
    std::uint64_t nslots = 0;
    for (const MappingInfo& adopted : pool->slots->adopted_mappings()) {
      if (adopted.tlb_addr == tlb_addr) {
        nslots = adopted.nslots.value();
      }
    }
    if (Status released = pool->slots->release_adopted(tlb_addr); !released) {
      return released;
    }
    counters_->tiers[pool->tier].count_unmap(pool->kind == PoolKind::configured, nslots);
  }
  waits_.notify();
  return {};
}

void IoTlb::run_maintenance() {
  worker_->run_now();
}

std::uint64_t IoTlb::used(std::uint32_t pool) const {
  return pool < configured_.size() ? counters_->tiers[pool].used(*configured_[pool]) : 0;
}

std::uint64_t IoTlb::hiwater(std::uint32_t pool) const {
  return pool < configured_.size() ? counters_->tiers[pool].hiwater(*configured_[pool]) : 0;
}

void IoTlb::reset_hiwater() {
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    Counters::Tier& tier = counters_->tiers[i];
    configured_[i]->slots->reset_hiwater();
    tier.mark.store(tier.used(*configured_[i]), std::memory_order_relaxed);
  }
}

}  // namespace swiotlb
