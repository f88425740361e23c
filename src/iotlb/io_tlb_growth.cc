// Growth and shrink, run by the worker (or by run_maintenance()): pools
// added when a configured pool runs short, halving down to one segment when
// the backend cannot give a full pool, and grown pools given back when idle.
// Also the caller's own additions and removals (add_pool, remove_pool).
#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/pool_directory.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

std::uint64_t IoTlb::total_nslabs() const {
  PoolTable::ReadGuard reading(dynamic_);
  std::uint64_t total = 0;
  for (const IoPool* p : table_->pools()) {
    total += p->kind == PoolKind::configured || p->kind == PoolKind::grown ? p->nslabs() : 0;
  }
  return total;
}

Result<std::unique_ptr<IoPool>> IoTlb::make_dynamic_pool(PoolKind kind, std::uint32_t tier,
                                                         std::uint64_t bytes, std::uint64_t nslabs,
                                                         std::uint32_t nareas,
                                                         std::uint32_t owner) {
  auto pool = std::make_unique<IoPool>();
  pool->name = fmt::format("{}-{}-{}", configured_[tier]->name, to_string(kind),
                           counters_->serial.fetch_add(1, std::memory_order_relaxed));
  pool->kind = kind;
  pool->tier = tier;
  pool->owner = owner;
  // A grown pool of a persistent IoTlb keeps its image after its slots,
  // and is recorded in the directory before it is searched.
  const bool persists = directory_ != nullptr && kind == PoolKind::grown;
  const std::uint64_t slot_bytes = nslabs << kSlotShift;
  const std::uint64_t image_bytes = persists ? pool_image_bytes(nslabs) : 0;
  const PoolMemoryRequest request{bytes + image_bytes, kind, tier, pool->name};
  Result<PoolMemory> memory = backend_->allocate(request);
  if (!memory) {
    return std::move(memory).error();
  }
  pool->start = memory->start;
  pool->end = memory->start + bytes;
  pool->memory = std::move(*memory);
  pool->backend = backend_;
  const PoolGeometry geometry{pool->start, nslabs, nareas};
  Result<std::unique_ptr<SlotPool>> slots = make_error(Errc::invalid_argument, "no memory");
  if (!persists) {
    slots = SlotPool::create(geometry, policy_);
  } else if (pool->memory.data != nullptr && pool->memory.bytes >= slot_bytes + image_bytes) {
    slots = SlotPool::create_in(geometry, policy_, {pool->memory.data + slot_bytes, image_bytes});
  } else {
    slots = make_error(Errc::invalid_argument, "{}: a persistent pool needs {} bytes of memory",
                       pool->name, slot_bytes + image_bytes);
  }
  if (!slots) {
    return std::move(slots).error();  // `pool` gives the memory back
  }
  pool->slots = std::move(*slots);
  if (Status announced = backend_->announce(pool->memory, request); !announced) {
    return announced.error();
  }
  if (persists) {
    Result<std::uint32_t> slot = directory_->record({.kind = kind,
                                                     .tier = tier,
                                                     .nareas = nareas,
                                                     .nslabs = nslabs,
                                                     .start = pool->start,
                                                     .token = pool->memory.token,
                                                     .bytes = pool->memory.bytes});
    if (!slot) {
      return std::move(slot).error();
    }
    pool->directory_slot = *slot;
  }
  return pool;
}

void IoTlb::grow(std::uint32_t tier) {
  // Runs parked in the pools' run caches are free slots: give them back
  // first, and wake the waiting maps, which may find room there.
  bool drained = false;
  {
    PoolTable::ReadGuard reading(dynamic_);
    for (IoPool* p : table_->search_order(tier)) {
      if (p->slots->cached() != 0) {
        p->slots->drain_cache();
        drained = true;
      }
    }
  }
  if (drained) {
    waits_.notify();
  }
  std::uint64_t configured_nslabs = 0;
  for (const IoPool* p : configured_) {
    configured_nslabs += p->nslabs();
  }
  const std::uint64_t max = growth_.max_nslabs != 0 ? growth_.max_nslabs : 16 * configured_nslabs;
  if (total_nslabs() + growth_.pool_nslabs > max) {
    counters_->limit_reached.fetch_add(1, std::memory_order_relaxed);
    if (!counters_->limit_logged.exchange(true, std::memory_order_relaxed)) {
      log_warning(fmt::format("pools stop growing at the maximum of {} slots ({} MiB)", max,
                              (max << kSlotShift) >> 20));
    }
    return;
  }
  // The kernel's swiotlb_alloc_pool: a full pool if the memory is there,
  // else half, down to one segment; areas cut to the slots (at least a
  // segment each).
  std::uint64_t nslabs = growth_.pool_nslabs;
  Result<std::unique_ptr<IoPool>> pool = make_error(Errc::system, "no memory asked for");
  for (;;) {
    // As many of the configured areas as leave each one whole segments.
    auto nareas = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(growth_.pool_nareas, std::bit_floor(nslabs / kSegmentSlots)));
    while ((nslabs / kSegmentSlots) % nareas != 0) {
      nareas /= 2;
    }
    pool = make_dynamic_pool(PoolKind::grown, tier, nslabs << kSlotShift, nslabs, nareas, 0);
    if (pool || nslabs <= kSegmentSlots) {
      break;
    }
    nslabs = kernel_align(nslabs / 2, kSegmentSlots);
  }
  if (!pool) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    log_warning(fmt::format("could not grow the {} pool: {}", configured_[tier]->name,
                            pool.error().message()));
    return;
  }
  if (nslabs < growth_.pool_nslabs) {
    counters_->grown_smaller.fetch_add(1, std::memory_order_relaxed);
  }
  const std::optional<std::uint32_t> recorded = (*pool)->directory_slot;
  if (Status added = table_->insert(std::move(*pool)); !added) {
    if (recorded) {
      directory_->erase(*recorded);
    }
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    log_warning(fmt::format("could not grow: {}", added.error().message()));
    return;
  }
  counters_->grow_events.fetch_add(1, std::memory_order_relaxed);
  waits_.notify();
}

Result<PhysAddr> IoTlb::add_pool(std::uint32_t tier, std::uint64_t nslabs, std::uint32_t nareas) {
  if (!grows()) {
    return make_error(Errc::invalid_argument,
                      "a pool of {} slots added to an IoTlb that does not grow", nslabs);
  }
  if (tier >= configured_.size()) {
    return make_error(Errc::invalid_argument, "a pool added for pool {}, but there are {}", tier,
                      configured_.size());
  }
  if (Status valid = validate_geometry(nslabs, nareas); !valid) {
    return make_error(Errc::invalid_argument, "an added pool: {}", valid.error().message());
  }
  Result<std::unique_ptr<IoPool>> pool =
      make_dynamic_pool(PoolKind::grown, tier, nslabs << kSlotShift, nslabs, nareas, 0);
  if (!pool) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    return std::move(pool).error();
  }
  const PhysAddr start = (*pool)->start;
  if (Status added = table_->insert(std::move(*pool)); !added) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    return added.error();
  }
  counters_->grow_events.fetch_add(1, std::memory_order_relaxed);
  waits_.notify();
  return start;
}

Status IoTlb::remove_pool(PhysAddr start) {
  if (!grows() || grows_by_itself()) {
    // A worker that shrinks would race this removal for the same pool.
    return make_error(Errc::invalid_argument,
                      "pool at {:#x}: pools are removed by the caller only when it alone adds "
                      "them (growth by_caller)",
                      start.value());
  }
  IoPool* found = nullptr;
  {
    PoolTable::ReadGuard reading(dynamic_);
    IoPool* p = table_->find(start);
    if (p != nullptr && p->kind == PoolKind::grown && p->start == start) {
      found = p;
    }
  }
  if (found == nullptr) {
    return make_error(Errc::not_mapped, "no grown pool starts at {:#x}", start.value());
  }
  // As shrink_idle: stop new mappings, wait out the maps that may have
  // missed the stop, then judge. Only the caller removes pools, so `found`
  // is still in the table.
  found->accepting.store(false, std::memory_order_relaxed);
  PoolTable::wait_for_readers();
  if (const std::uint64_t used = found->slots->used(); used != 0) {
    found->accepting.store(true, std::memory_order_relaxed);
    return make_error(Errc::busy, "the pool at {:#x} still holds {} slots of mappings",
                      start.value(), used);
  }
  table_->retire(found);
  counters_->shrunk_pools.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void IoTlb::shrink_idle() {
  const IoTlbBackend::Clock::time_point now = backend_->now();
  std::vector<IoPool*> idle;
  {
    PoolTable::ReadGuard reading(dynamic_);
    for (IoPool* p : table_->pools()) {
      if (p->kind != PoolKind::grown) {
        continue;
      }
      const PoolStats s = p->slots->stats();
      auto [seen, first] = counters_->idle.try_emplace(p, Counters::Idle{s.maps, now});
      if (s.used != 0 || s.maps != seen->second.maps) {
        seen->second = {s.maps, now};  // busy since the last look: idle from now at best
        continue;
      }
      if (!first && now - seen->second.since >= growth_.shrink_after) {
        idle.push_back(p);
      }
    }
  }
  if (idle.empty()) {
    return;
  }
  // Stop new mappings, then wait until every map that may have missed the
  // stop has finished: a pool still empty after that stays empty.
  for (IoPool* p : idle) {
    p->accepting.store(false, std::memory_order_relaxed);
  }
  PoolTable::wait_for_readers();
  for (IoPool* p : idle) {
    counters_->idle.erase(p);
    p->slots->drain_cache();  // no slot of a pool given back stays in a cache
    if (p->slots->used() != 0) {
      p->accepting.store(true, std::memory_order_relaxed);
      continue;
    }
    if (p->directory_slot) {
      directory_->erase(*p->directory_slot);  // before its memory can go
    }
    table_->retire(p);
    counters_->shrunk_pools.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace swiotlb
