// The map path: a search over the pools that serve a configured pool, in
// the order the options choose; then a transient pool, a wait for room, or
// a refusal.
//
// The pool keeps the bookkeeping and its locks; this file adds the copies.
// A copy runs outside every lock: the mapping's slots belong to its owner
// from map until unmap, and unmap marks the mapping as going (under the
// area lock) before it copies, so no other call can free or reuse the slots
// while the bytes move.
#include <fmt/format.h>

#include <algorithm>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "streaming_hit.h"
#include "swiotlb/platform/cpu.h"

namespace swiotlb {

namespace {

// A field loaded on its own, which the compiler may not merge with its
// neighbour's into one 16-byte vector load. The caller has usually just
// stored the request's fields one by one, and a load that spans two of
// those stores cannot take its bytes from the store buffer: it waits for
// both to reach the cache, which cost a map from the run cache about a
// tenth of its time.
std::uint64_t load_alone(const std::uint64_t& field) {
  std::uint64_t value = field;
  asm("" : "+r"(value));  // the value must pass through a register of its own
  return value;
}

}  // namespace

SlotRequest slot_request(const BounceRequest& request) {
  SlotRequest slots;
  slots.orig = PhysAddr(load_alone(request.orig.value()));
  slots.mapping_size = load_alone(request.size);
  slots.alloc_size = load_alone(request.alloc_size);
  slots.alloc_align_mask = load_alone(request.alloc_align_mask);
  slots.min_align_mask = load_alone(request.min_align_mask);
  slots.seg_boundary_mask = load_alone(request.seg_boundary_mask);
  slots.cpu = request.cpu.value_or(current_cpu());
  slots.dir = request.dir;
  slots.owner = request.owner;
  return slots;
}

std::optional<DmaAddr> IoTlb::dma_start_of(const IoPool& pool, const BounceRequest& request) const {
  if (request.reach != nullptr) {
    return request.reach->pool_dma_start(pool.start, pool.bytes());
  }
  return DmaAddr(pool.start.value());
}

// The common case first, in plain steps: the configured pool, which heads
// the oldest-first order, takes the mapping. Everything else (a full
// configured pool, an observer, the kernel's order) is search_pools().
Result<PhysAddr> IoTlb::try_map(const BounceRequest& request, bool copy) {
  IoPool& configured = *configured_[request.pool];
  const std::span<IoPool* const> order = table_->search_order(request.pool);
  if (search_order_ != PoolSearchOrder::oldest_first || request.observer != nullptr ||
      order.empty() || order.front() != &configured || configured.kind != PoolKind::configured ||
      !configured.accepting.load(std::memory_order_relaxed)) [[unlikely]] {
    return search_pools(request, copy, std::nullopt);
  }
  SlotRequest slots = slot_request(request);
  slots.pool_dma_start = request.pool_dma_start;  // worked out when the pool was chosen
  Result<SlotMapping> mapping = configured.slots->map(slots);
  if (!mapping) [[unlikely]] {
    if (mapping.error().code() != Errc::pool_full) {
      return std::move(mapping).error();
    }
    return search_pools(request, copy, std::move(mapping).error());
  }
  fill_mapping(configured, mapping->tlb_addr, request, copy);
  counters_->tiers[request.pool].count_map(configured, true, mapping->nslots.value());
  after_map(configured, order);
  return mapping->tlb_addr;
}

Result<PhysAddr> IoTlb::search_pools(const BounceRequest& request, bool copy,
                                     std::optional<Error> configured_full) {
  const std::span<IoPool* const> order = table_->search_order(request.pool);
  const IoPool& configured = *configured_[request.pool];
  SlotRequest slots = slot_request(request);
  const unsigned cpu = slots.cpu;
  // try_map found the configured pool, the first of `order`, full.
  const std::size_t skip = configured_full ? 1 : 0;
  std::optional<Error> first_error = std::move(configured_full);
  std::optional<Error> stop_error;
  PhysAddr mapped;
  bool missed = skip != 0;
  // One pool (one area of it when `area` is given): true when the search
  // ends there, with `mapped` or `stop_error` set.
  auto attempt = [&](IoPool& pool, std::optional<std::uint32_t> area) -> bool {
    if (!pool.accepting.load(std::memory_order_relaxed)) {
      return false;
    }
    if (&pool == &configured && pool.kind == PoolKind::configured) {
      slots.pool_dma_start = request.pool_dma_start;  // worked out when the pool was chosen
    } else if (const std::optional<DmaAddr> dma_start = dma_start_of(pool, request)) {
      slots.pool_dma_start = *dma_start;
    } else {
      return false;  // a grown pool the device does not reach
    }
    slots.one_area = area.has_value();
    slots.cpu = area.value_or(cpu);
    Result<SlotMapping> mapping = pool.slots->map(slots);
    if (request.observer != nullptr) {
      request.observer->searched(pool.start, pool.kind, area.value_or(mapping ? mapping->area : 0),
                                 mapping.has_value());
    }
    if (mapping) {
      mapped = mapping->tlb_addr;
      fill_mapping(pool, mapped, request, copy);
      counters_->tiers[request.pool].count_map(configured, pool.kind == PoolKind::configured,
                                               mapping->nslots.value());
      if (missed) {
        counters_->tiers[request.pool].fall_throughs.fetch_add(1, std::memory_order_relaxed);
      }
      after_map(pool, order);
      return true;
    }
    if (mapping.error().code() != Errc::pool_full) {
      stop_error = std::move(mapping).error();
      return true;
    }
    missed = true;
    if (!first_error) {
      first_error = std::move(mapping).error();
    }
    return false;
  };
  // The search's answer once `attempt` has ended it.
  auto outcome = [&]() -> Result<PhysAddr> {
    if (stop_error) {
      return std::move(*stop_error);
    }
    return mapped;
  };
  if (search_order_ == PoolSearchOrder::oldest_first && request.observer == nullptr) {
    for (IoPool* pool : order.subspan(skip)) {
      if (attempt(*pool, std::nullopt)) {
        return outcome();
      }
    }
  } else if (search_order_ == PoolSearchOrder::oldest_first) {
    // The same search, one area at a time, so that the observer sees each.
    for (IoPool* pool : order) {
      const std::uint32_t nareas = pool->slots->area_count();
      for (std::uint32_t i = 0; i < nareas; ++i) {
        if (attempt(*pool, (cpu + i) & (nareas - 1))) {
          return outcome();
        }
      }
    }
  } else {
    // The kernel's swiotlb_find_slots: area offset outside, pools newest
    // first inside, so that one area of every pool is tried before the
    // next area of any.
    std::uint32_t max_areas = 1;
    for (const IoPool* pool : order) {
      max_areas = std::max(max_areas, pool->slots->area_count());
    }
    for (std::uint32_t i = 0; i < max_areas; ++i) {
      for (auto it = order.rbegin(); it != order.rend(); ++it) {
        const std::uint32_t nareas = (*it)->slots->area_count();
        if (i >= nareas) {
          continue;
        }
        if (attempt(**it, (cpu + i) & (nareas - 1))) {
          return outcome();
        }
      }
    }
  }
  if (grows_by_itself() && fits_a_segment(request)) {
    worker_->request_growth(request.pool);
  }
  if (!first_error) {
    return make_error(Errc::pool_full, "swiotlb: no pool of the {} pool takes mappings now",
                      configured.name);
  }
  return std::move(*first_error);
}

void IoTlb::after_map(const IoPool& pool, std::span<IoPool* const> order) {
  // Only the newest pool is watched: in either order, the pools before it
  // fill first over time, so they are at least as full whenever it is.
  if (!grows_by_itself() || &pool != order.back()) {
    return;
  }
  if (pool.slots->used() * 100 > pool.slots->slot_count() * growth_.watermark_percent) {
    worker_->request_growth(pool.tier);
  }
}

Result<PhysAddr> IoTlb::map(const BounceRequest& request) {
  return map_slots(request, true);
}

namespace {

Error no_such_pool(std::uint32_t pool, std::size_t count) {
  if (count == 0) {
    return make_error(Errc::unreachable,
                      "swiotlb=noforce: this IoTlb never bounces and has no pool to map into");
  }
  return make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", pool, count);
}

}  // namespace

// try_map's conditions for trying the configured pool first, and
// map_slots' for trying at all (a caller that may sleep queues behind
// those already waiting): the pool when they hold, null otherwise.
[[gnu::always_inline]] inline IoPool* IoTlb::cached_pool(std::uint32_t pool, Attrs attrs) {
  if (pool >= configured_.size() || search_order_ != PoolSearchOrder::oldest_first ||
      (attrs.has(Attr::may_sleep) && waits_.has_waiters())) {
    return nullptr;
  }
  IoPool& configured = *configured_[pool];
  if (configured.kind != PoolKind::configured ||
      !configured.accepting.load(std::memory_order_relaxed)) {
    return nullptr;
  }
  return &configured;
}

bool IoTlb::map_cached(const BounceRequest& request, bool copy, PhysAddr& tlb) {
  IoPool* configured = cached_pool(request.pool, request.attrs);
  if (configured == nullptr || request.observer != nullptr) {
    return false;
  }
  SlotRequest slots = slot_request(request);
  slots.pool_dma_start = request.pool_dma_start;  // worked out when the pool was chosen
  SlotMapping mapping;
  if (!configured->slots->map_cached(slots, mapping)) {
    return false;
  }
  StreamingHit::finish_map(*this, *configured, request.pool, {mapping.tlb_addr, mapping.nslots},
                           request.orig, request.size, copy);
  tlb = mapping.tlb_addr;
  return true;
}

// cached_pool's conditions that never change are settled here, once.
bool IoTlb::streaming_route(const BounceRequest& request, BounceRoute& route) const {
  if (request.pool >= configured_.size() || search_order_ != PoolSearchOrder::oldest_first) {
    return false;
  }
  IoPool* configured = configured_[request.pool];
  SlotRequest slots = slot_request(request);
  slots.pool_dma_start = request.pool_dma_start;
  if (configured->kind != PoolKind::configured ||
      !configured->slots->streaming_route(slots, route.slots)) {
    return false;
  }
  route.configured = configured;
  route.slots_pool = configured->slots.get();
  route.pool = request.pool;
  return true;
}

bool IoTlb::map_streaming(const BounceRoute& route, PhysAddr orig, std::uint64_t size,
                          Direction dir, Attrs attrs, PhysAddr& tlb) {
  return StreamingHit::map(*this, route, orig, size, dir, attrs, tlb);
}

Result<PhysAddr> IoTlb::map_slots(const BounceRequest& request, bool copy) {
  if (PhysAddr tlb; map_cached(request, copy, tlb)) {
    return tlb;
  }
  if (request.pool >= configured_.size()) {
    return no_such_pool(request.pool, configured_.size());
  }
  if (request.more_pools) {
    // The caller tries its next pool when this one is full.
    PoolTable::ReadGuard reading(dynamic_);
    return try_map(request, copy);
  }
  const bool may_sleep = request.attrs.has(Attr::may_sleep);
  // A caller that may sleep queues behind those already waiting, so that
  // the first to wait is the first served.
  if (!may_sleep || !waits_.has_waiters()) {
    Result<PhysAddr> mapped = [&] {
      PoolTable::ReadGuard reading(dynamic_);
      return try_map(request, copy);
    }();
    if (mapped || mapped.error().code() != Errc::pool_full) {
      return mapped;
    }
    if (!fits_a_segment(request)) {
      refused(request, mapped.error());
      return mapped;  // no pool of any size holds it: nothing to wait for
    }
    if (!may_sleep) {
      // The reserve, then transient memory, are for the callers that cannot
      // wait for room.
      if (reserve_ != nullptr && request.pool == 0) {
        Result<PhysAddr> kept = map_reserve(request, copy);
        if (kept) {
          return kept;
        }
      }
      if (transient_) {
        Result<PhysAddr> own = map_transient(request, copy);
        if (own) {
          return own;
        }
      }
      refused(request, mapped.error());
      return mapped;
    }
  }
  Result<PhysAddr> waited = wait_for_room(request, copy);
  if (!waited && waited.error().code() == Errc::timed_out) {
    counters_->tiers[request.pool].refused.fetch_add(1, std::memory_order_relaxed);
  }
  return waited;
}

std::optional<Result<PhysAddr>> IoTlb::try_for_waiter(const BounceRequest& request, bool copy) {
  // Before looking: unmap_cached counts the waiters under these locks
  // instead of notifying after a fence (WaitQueue's Ordering).
  for (const IoPool* configured : configured_) {
    configured->slots->pass_cache_locks();
  }
  PoolTable::ReadGuard reading(dynamic_);
  Result<PhysAddr> mapped = try_map(request, copy);
  if (!mapped && mapped.error().code() == Errc::pool_full) {
    return std::nullopt;  // still no room: keep waiting
  }
  return mapped;
}

Error IoTlb::timeout_error(const BounceRequest& request, WaitQueue::Clock::time_point start) const {
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(WaitQueue::Clock::now() - start);
  return make_error(
      Errc::timed_out, "{}: no room for {} bytes in the {} pool within {} ms of waiting",
      request.owner_name, request.size, configured_[request.pool]->name, waited.count());
}

Result<PhysAddr> IoTlb::wait_for_room(const BounceRequest& request, bool copy) {
  const WaitQueue::Clock::time_point start = WaitQueue::Clock::now();
  const WaitQueue::Clock::time_point deadline = request.deadline.value_or(start + wait_timeout_);
  std::optional<Result<PhysAddr>> outcome;
  const bool served = waits_.wait(deadline, [&] {
    outcome = try_for_waiter(request, copy);
    return outcome.has_value();
  });
  if (served) {
    return std::move(*outcome);
  }
  return timeout_error(request, start);
}

QueuedMap IoTlb::map_queued(const BounceRequest& request,
                            std::function<void(Result<PhysAddr>)> done) {
  if (request.pool >= configured_.size()) {
    done(no_such_pool(request.pool, configured_.size()));
    return QueuedMap::done;
  }
  if (!waits_.has_waiters()) {
    Result<PhysAddr> mapped = [&] {
      PoolTable::ReadGuard reading(dynamic_);
      return try_map(request, true);
    }();
    if (mapped || mapped.error().code() != Errc::pool_full) {
      done(std::move(mapped));
      return QueuedMap::done;
    }
  }
  // The request outlives the caller's copy: keep the name it points at.
  struct Pending {
    BounceRequest request;
    std::string owner_name;
    std::function<void(Result<PhysAddr>)> done;
  };
  auto pending =
      std::make_shared<Pending>(Pending{request, std::string(request.owner_name), std::move(done)});
  pending->request.owner_name = pending->owner_name;
  const WaitQueue::Clock::time_point start = WaitQueue::Clock::now();
  const WaitQueue::Clock::time_point deadline = request.deadline.value_or(start + wait_timeout_);
  waits_.enqueue(
      deadline,
      [this, pending] {
        std::optional<Result<PhysAddr>> outcome = try_for_waiter(pending->request, true);
        if (!outcome) {
          return false;
        }
        pending->done(std::move(*outcome));  // outside the read section
        return true;
      },
      [this, pending, start] {
        counters_->tiers[pending->request.pool].refused.fetch_add(1, std::memory_order_relaxed);
        pending->done(timeout_error(pending->request, start));
      });
  return QueuedMap::queued;
}

bool IoTlb::fits_a_segment(const BounceRequest& request) const {
  Result<SearchPlan> plan = policy_->plan(slot_request(request));
  return plan && plan->nslots <= kSegmentSlots;
}

void IoTlb::refused(const BounceRequest& request, const Error& error) {
  counters_->tiers[request.pool].refused.fetch_add(1, std::memory_order_relaxed);
  if (request.attrs.has(Attr::no_warn)) {
    return;
  }
  std::uint64_t suppressed = 0;
  if (!full_warnings_.allow(&suppressed)) {
    return;
  }
  if (suppressed != 0) {
    log_warning(fmt::format("{} warnings about a full pool suppressed", suppressed));
  }
  log_warning(fmt::format("{}: {}{}", request.owner_name, error.message(),
                          configured_.size() > 1
                              ? fmt::format(" in the {} pool", configured_[request.pool]->name)
                              : std::string()));
}

}  // namespace swiotlb
