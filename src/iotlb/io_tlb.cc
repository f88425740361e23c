// IoTlb: slots from the pool, bytes through the region.
//
// The pool keeps the bookkeeping and its locks; this file adds the copies.
// A copy runs outside every lock: the mapping's slots belong to its owner
// from map until unmap, and unmap marks the mapping as going (under the
// area lock) before it copies, so no other call can free or reuse the slots
// while the bytes move.
#include "swiotlb/iotlb/io_tlb.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/platform/cpu.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

namespace {

// The kernel's default printk rate limit: 10 messages every 5 seconds.
constexpr std::chrono::milliseconds kWarnInterval{5000};
constexpr std::uint32_t kWarnBurst = 10;

}  // namespace

Result<IoTlbOptions> IoTlbOptions::from_config(const SwiotlbConfig& config) {
  if (config.force == ForceMode::noforce) {
    return make_error(Errc::invalid_argument,
                      "swiotlb=noforce disables bouncing: there is no pool to create");
  }
  IoTlbOptions options;
  options.nslabs = config.nslabs;
  options.nareas = config.nareas;
  options.force_bounce = config.force == ForceMode::force;
  options.high_nslabs = config.high_nslabs.value_or(0);
  options.high_nareas = config.high_nareas;
  if (config.addr) {
    RegionSpec spec;
    spec.fixed_address = PhysAddr(*config.addr);
    options.region = spec;
  }
  return options;
}

std::string_view to_string(PoolKind kind) {
  switch (kind) {
    case PoolKind::configured:
      return "configured";
    case PoolKind::grown:
      return "grown";
    case PoolKind::transient:
      return "transient";
  }
  return "unknown";
}

// What the IoTlb counts of its growth. Written by the worker and by callers
// that make transient pools; read by stats().
struct IoTlb::Counters {
  std::atomic<std::uint64_t> grow_events{0};
  std::atomic<std::uint64_t> grow_failures{0};
  std::atomic<std::uint64_t> limit_reached{0};
  std::atomic<std::uint64_t> shrunk_pools{0};
  std::atomic<std::uint64_t> transient_pools{0};
  std::atomic<std::uint64_t> transient_nslabs{0};
  std::atomic<std::uint64_t> transient_nslabs_total{0};
  std::atomic<std::uint64_t> transient_failures{0};
  std::atomic<std::uint64_t> serial{0};  // numbers the names of new pools
  std::atomic<std::uint32_t> injected_failures{0};
  std::atomic<bool> limit_logged{false};

  // Worker only (under its work lock): since when each grown pool has held
  // no mapping, and how many maps it had made then.
  struct Idle {
    std::uint64_t maps = 0;
    WaitQueue::Clock::time_point since;
  };
  std::map<const IoPool*, Idle> idle;
};

namespace {

std::unique_ptr<IoPool> io_pool(std::string name, std::uint32_t tier,
                                std::unique_ptr<Region> region, std::unique_ptr<SlotPool> slots) {
  auto pool = std::make_unique<IoPool>();
  pool->name = std::move(name);
  pool->kind = PoolKind::configured;
  pool->tier = tier;
  pool->start = slots->start();
  pool->end = slots->end();
  pool->region = std::move(region);
  pool->slots = std::move(slots);
  return pool;
}

// The image lies after the slots, on a page boundary.
std::span<std::byte> image_of(const Region& region, std::uint64_t nslabs) {
  return {region.data() + (nslabs << kSlotShift), pool_image_bytes(nslabs)};
}

}  // namespace

Result<std::unique_ptr<IoPool>> IoTlb::make_pool(std::string name, std::uint32_t tier,
                                                 std::uint64_t nslabs, std::uint32_t nareas,
                                                 RegionSpec spec,
                                                 const std::shared_ptr<const SlotPolicy>& policy) {
  if (Status valid = validate_geometry(nslabs, nareas); !valid) {
    return make_error(Errc::invalid_argument, "{} pool: {}", name, valid.error().message());
  }
  spec.bytes = nslabs << kSlotShift;
  auto region = Region::create(spec);
  if (!region) {
    return std::move(region).error();
  }
  auto slots = SlotPool::create({(*region)->start(), nslabs, nareas}, policy);
  if (!slots) {
    return std::move(slots).error();
  }
  return io_pool(std::move(name), tier, std::move(*region), std::move(*slots));
}

// The default pool: anonymous, in the region the options name, in that
// region with its image, or attached to an image already there.
Result<std::unique_ptr<IoPool>> IoTlb::make_default_pool(
    const IoTlbOptions& options, const std::shared_ptr<const SlotPolicy>& policy) {
  if (!options.persistent && !options.attach) {
    RegionSpec spec = options.region.value_or(RegionSpec{});
    if (!options.region) {
      spec.placement = options.placement;
    }
    return make_pool("low", 0, options.nslabs, options.nareas, spec, policy);
  }
  if (Status valid = validate_geometry(options.nslabs, options.nareas); !valid) {
    return make_error(Errc::invalid_argument, "low pool: {}", valid.error().message());
  }
  const std::uint64_t bytes = (options.nslabs << kSlotShift) + pool_image_bytes(options.nslabs);
  Result<std::unique_ptr<Region>> region = make_error(Errc::invalid_argument, "no region");
  if (options.attach) {
    AttachSpec spec = options.attach->region;
    if (spec.bytes == 0) {
      spec.bytes = bytes;
    }
    if (spec.bytes < bytes) {
      return make_error(Errc::invalid_argument,
                        "a pool of {} slots and its image need {} bytes; the region has {}",
                        options.nslabs, bytes, spec.bytes);
    }
    region = Region::attach(spec);
  } else {
    if (!options.region || options.region->kind == RegionKind::anonymous) {
      return make_error(Errc::invalid_argument,
                        "a persistent pool needs a memfd, file or hugetlbfs region: anonymous "
                        "memory ends with its process");
    }
    RegionSpec spec = *options.region;
    spec.bytes = bytes;
    region = Region::create(spec);
  }
  if (!region) {
    return std::move(region).error();
  }
  const PoolGeometry geometry{(*region)->start(), options.nslabs, options.nareas};
  const std::span<std::byte> image = image_of(**region, options.nslabs);
  Result<std::unique_ptr<SlotPool>> slots =
      options.attach ? SlotPool::attach(geometry, policy, image, options.attach->pool)
                     : SlotPool::create_in(geometry, policy, image);
  if (!slots) {
    return std::move(slots).error();
  }
  return io_pool("low", 0, std::move(*region), std::move(*slots));
}

Result<std::unique_ptr<IoTlb>> IoTlb::create(const IoTlbOptions& options) {
  auto policy = make_slot_policy(options.policy);
  if (!policy) {
    return std::move(policy).error();
  }
  if (options.restricted && (options.growth.enabled || options.transient)) {
    return make_error(Errc::invalid_argument,
                      "a restricted pool never grows and makes no transient pools");
  }
  if (options.growth.enabled) {
    if (Status valid = validate_geometry(options.growth.pool_nslabs, options.growth.pool_nareas);
        !valid) {
      return make_error(Errc::invalid_argument, "grown pools: {}", valid.error().message());
    }
    if (options.growth.watermark_percent == 0 || options.growth.watermark_percent > 100) {
      return make_error(Errc::invalid_argument, "growth watermark {}% is not in 1..100",
                        options.growth.watermark_percent);
    }
  }
  const std::uint32_t tiers = options.high_nslabs != 0 ? 2 : 1;
  auto table = std::make_unique<PoolTable>(tiers);
  std::vector<IoPool*> configured;
  auto low = make_default_pool(options, *policy);
  if (!low) {
    return std::move(low).error();
  }
  configured.push_back(low->get());
  if (Status added = table->insert(std::move(*low)); !added) {
    return added.error();
  }
  if (options.high_nslabs != 0) {
    auto high =
        make_pool("high", 1, options.high_nslabs, options.high_nareas, RegionSpec{}, *policy);
    if (!high) {
      return std::move(high).error();
    }
    configured.push_back(high->get());
    if (Status added = table->insert(std::move(*high)); !added) {
      return added.error();
    }
  }
  table->reclaim();  // the snapshots replaced while setting up
  return std::unique_ptr<IoTlb>(
      new IoTlb(std::move(table), std::move(configured), std::move(*policy), options));
}

namespace {

std::vector<RegionPlacement> placements_of(const IoTlbOptions& options) {
  std::vector<RegionPlacement> placements{options.region ? options.region->placement
                                                         : options.placement};
  if (options.high_nslabs != 0) {
    placements.push_back(RegionPlacement::anywhere);
  }
  return placements;
}

std::chrono::milliseconds shrink_tick(const IoTlbOptions& options) {
  if (!options.growth.enabled || options.growth.shrink_after.count() == 0) {
    return std::chrono::milliseconds{0};
  }
  return std::max(options.growth.shrink_after / 4, std::chrono::milliseconds{1});
}

}  // namespace

IoTlb::IoTlb(std::unique_ptr<PoolTable> table, std::vector<IoPool*> configured,
             std::shared_ptr<const SlotPolicy> policy, const IoTlbOptions& options)
    : table_(std::move(table)),
      configured_(std::move(configured)),
      policy_(std::move(policy)),
      force_bounce_(options.force_bounce || options.restricted),
      restricted_(options.restricted),
      high_overflows_to_low_(options.high_overflows_to_low),
      growth_(options.growth),
      transient_(options.transient),
      dynamic_(options.growth.enabled || options.transient),
      transient_max_nslabs_(options.transient_max_nslabs),
      wait_timeout_(options.wait_timeout),
      placements_(placements_of(options)),
      full_warnings_(kWarnInterval, kWarnBurst),
      counters_(std::make_unique<Counters>()),
      waits_([this] { worker_->wake(); }),
      worker_(std::make_unique<Worker>(*this, shrink_tick(options))) {}

IoTlb::~IoTlb() {
  waits_.cancel_all();
  worker_.reset();
}

bool IoTlb::contains(PhysAddr addr) const {
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
  return pool->region->data() + (addr - pool->region->start());
}

Status IoTlb::release_adopted(PhysAddr tlb_addr) {
  {
    PoolTable::ReadGuard reading(dynamic_);
    IoPool* pool = table_->find(tlb_addr);
    if (pool == nullptr) {
      return make_error(Errc::not_mapped, "{:#x} is in no pool", tlb_addr.value());
    }
    if (Status released = pool->slots->release_adopted(tlb_addr); !released) {
      return released;
    }
  }
  waits_.notify();
  return {};
}

void IoTlb::fail_next_region_allocations(std::uint32_t count) {
  counters_->injected_failures.store(count, std::memory_order_relaxed);
}

void IoTlb::run_maintenance() {
  worker_->run_now();
}

Result<std::unique_ptr<Region>> IoTlb::make_region(std::uint64_t bytes, std::uint32_t tier) {
  std::uint32_t left = counters_->injected_failures.load(std::memory_order_relaxed);
  while (left != 0) {
    if (counters_->injected_failures.compare_exchange_weak(left, left - 1,
                                                           std::memory_order_relaxed)) {
      return make_error(Errc::system, "mmap of {} bytes refused (injected failure)", bytes);
    }
  }
  return Region::anonymous(bytes, placements_[tier]);
}

std::optional<DmaAddr> IoTlb::dma_start_of(const IoPool& pool, const IoPool& first,
                                           const BounceRequest& request) const {
  if (&pool == &first && pool.kind == PoolKind::configured) {
    return request.pool_dma_start;  // the caller worked it out when it chose the pool
  }
  if (request.reach != nullptr) {
    return request.reach->pool_dma_start(pool.start, pool.bytes());
  }
  return DmaAddr(pool.start.value());
}

namespace {

SlotRequest slot_request(const BounceRequest& request) {
  SlotRequest slots;
  slots.orig = request.orig;
  slots.mapping_size = request.size;
  slots.alloc_align_mask = request.alloc_align_mask;
  slots.min_align_mask = request.min_align_mask;
  slots.seg_boundary_mask = request.seg_boundary_mask;
  slots.cpu = current_cpu();
  slots.dir = request.dir;
  slots.owner = request.owner;
  return slots;
}

// Fills a new mapping: from the original (whatever the direction: a device
// that writes only part of the buffer must leave the rest as the original
// had it), or with zeros for an allocation.
void fill(const IoPool& pool, PhysAddr tlb_addr, const BounceRequest& request, bool copy) {
  std::byte* bounce = pool.region->data() + (tlb_addr - pool.region->start());
  if (copy) {
    std::memcpy(bounce, request.orig.to_pointer(), request.size);
  } else {
    std::memset(bounce, 0, request.size);
  }
}

}  // namespace

Result<PhysAddr> IoTlb::try_map(const BounceRequest& request, bool copy) {
  const std::span<IoPool* const> order = table_->search_order(request.pool);
  SlotRequest slots = slot_request(request);
  std::optional<Error> first_error;
  for (IoPool* pool : order) {
    if (!pool->accepting.load(std::memory_order_relaxed)) {
      continue;
    }
    const std::optional<DmaAddr> dma_start = dma_start_of(*pool, *order.front(), request);
    if (!dma_start) {
      continue;  // a grown pool the device does not reach
    }
    slots.pool_dma_start = *dma_start;
    Result<SlotMapping> mapping = pool->slots->map(slots);
    if (mapping) {
      fill(*pool, mapping->tlb_addr, request, copy);
      after_map(*pool, order);
      return mapping->tlb_addr;
    }
    if (mapping.error().code() != Errc::pool_full) {
      return std::move(mapping).error();
    }
    if (!first_error) {
      first_error = std::move(mapping).error();
    }
  }
  if (growth_.enabled) {
    worker_->request_growth(request.pool);
  }
  if (!first_error) {
    return make_error(Errc::pool_full, "swiotlb: no pool of the {} pool takes mappings now",
                      configured_[request.pool]->name);
  }
  return std::move(*first_error);
}

void IoTlb::after_map(const IoPool& pool, std::span<IoPool* const> order) {
  // Only the newest pool is watched: the pools before it in the order are
  // searched first, so they are at least as full whenever it is.
  if (!growth_.enabled || &pool != order.back()) {
    return;
  }
  if (pool.slots->used() * 100 > pool.slots->slot_count() * growth_.watermark_percent) {
    worker_->request_growth(pool.tier);
  }
}

Result<PhysAddr> IoTlb::map(const BounceRequest& request) {
  return map_slots(request, true);
}

Result<PhysAddr> IoTlb::map_slots(const BounceRequest& request, bool copy) {
  if (request.pool >= configured_.size()) {
    return make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", request.pool,
                      configured_.size());
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
    if (!may_sleep) {
      // Transient memory is for the callers that cannot wait for room.
      if (transient_) {
        Result<PhysAddr> own = map_transient(request, copy);
        if (own) {
          return own;
        }
      }
      if (!request.attrs.has(Attr::no_warn)) {
        warn_full(request, mapped.error());
      }
      return mapped;
    }
  }
  return wait_for_room(request, copy);
}

std::optional<Result<PhysAddr>> IoTlb::try_for_waiter(const BounceRequest& request, bool copy) {
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
  if (request.pool < configured_.size() && !waits_.has_waiters()) {
    Result<PhysAddr> mapped = [&] {
      PoolTable::ReadGuard reading(dynamic_);
      return try_map(request, true);
    }();
    if (mapped || mapped.error().code() != Errc::pool_full) {
      done(std::move(mapped));
      return QueuedMap::done;
    }
  } else if (request.pool >= configured_.size()) {
    done(make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", request.pool,
                    configured_.size()));
    return QueuedMap::done;
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
      [this, pending, start] { pending->done(timeout_error(pending->request, start)); });
  return QueuedMap::queued;
}

Result<PhysAddr> IoTlb::map_transient(const BounceRequest& request, bool copy) {
  // Room for the data, the offset the device keeps from the original, and
  // an alignment the region's page alignment does not give by itself.
  const std::uint64_t kept = request.orig.value() & request.min_align_mask;
  const std::uint64_t slack = std::max<std::uint64_t>(request.alloc_align_mask, kSlotSize - 1);
  const std::uint64_t bytes = kernel_align(request.size + kept + slack + 1, kPageSize);
  const std::uint64_t nslabs = bytes >> kSlotShift;
  // The slots are reserved before the pool is made, so that callers making
  // transient pools at once cannot pass the bound together; a pool that is
  // not made gives its reservation back.
  std::uint64_t reserved = counters_->transient_nslabs.load(std::memory_order_relaxed);
  do {
    if (transient_max_nslabs_ != 0 && reserved + nslabs > transient_max_nslabs_) {
      counters_->transient_failures.fetch_add(1, std::memory_order_relaxed);
      return make_error(Errc::limit_reached, "transient pools would pass {} slots",
                        transient_max_nslabs_);
    }
  } while (!counters_->transient_nslabs.compare_exchange_weak(reserved, reserved + nslabs,
                                                              std::memory_order_relaxed));
  auto refused = [&] {
    counters_->transient_nslabs.fetch_sub(nslabs, std::memory_order_relaxed);
    counters_->transient_failures.fetch_add(1, std::memory_order_relaxed);
  };
  Result<std::unique_ptr<Region>> region = make_region(bytes, request.pool);
  if (!region) {
    refused();
    return std::move(region).error();
  }
  // The SlotPool spans whole segments; only the region's part is ever used,
  // since a transient pool is searched once, for the mapping it is made for.
  const std::uint64_t segment_slots = kernel_align(nslabs, kSegmentSlots);
  Result<std::unique_ptr<SlotPool>> slots =
      SlotPool::create({(*region)->start(), segment_slots, 1}, policy_);
  if (!slots) {
    refused();
    return std::move(slots).error();
  }
  auto pool = std::make_unique<IoPool>();
  pool->name = fmt::format("{}-transient-{}", configured_[request.pool]->name,
                           counters_->serial.fetch_add(1, std::memory_order_relaxed));
  pool->kind = PoolKind::transient;
  pool->tier = request.pool;
  pool->owner = request.owner;
  pool->start = (*region)->start();
  pool->end = (*region)->end();
  pool->region = std::move(*region);
  pool->slots = std::move(*slots);
  pool->accepting.store(false, std::memory_order_relaxed);

  SlotRequest slot_req = slot_request(request);
  const std::optional<DmaAddr> dma_start = request.reach != nullptr
                                               ? request.reach->pool_dma_start(pool->start, bytes)
                                               : std::optional<DmaAddr>(pool->start.value());
  if (!dma_start) {
    refused();
    return make_error(Errc::unreachable, "{}: a transient pool at {:#x} is out of its reach",
                      request.owner_name, pool->start.value());
  }
  slot_req.pool_dma_start = *dma_start;
  slot_req.cpu = 0;
  Result<SlotMapping> mapping = pool->slots->map(slot_req);
  if (!mapping || mapping->tlb_addr + request.size > pool->end) {
    refused();
    return make_error(Errc::pool_full, "{}: {} bytes do not fit a transient pool of {} bytes",
                      request.owner_name, request.size, bytes);
  }
  fill(*pool, mapping->tlb_addr, request, copy);
  if (Status added = table_->insert(std::move(pool)); !added) {
    refused();
    return added.error();
  }
  counters_->transient_pools.fetch_add(1, std::memory_order_relaxed);
  counters_->transient_nslabs_total.fetch_add(nslabs, std::memory_order_relaxed);
  worker_->wake();  // the replaced snapshot waits for reclaim
  return mapping->tlb_addr;
}

void IoTlb::warn_full(const BounceRequest& request, const Error& error) {
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
  finish_release(mapping.pool);
}

void IoTlb::finish_release(IoPool* pool) {
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

Status IoTlb::unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                    Attrs attrs) {
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

namespace {

std::byte* bounce_in(const IoPool& pool, PhysAddr addr) {
  return pool.region->data() + (addr - pool.region->start());
}

}  // namespace

void IoTlb::copy_to_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  const IoPool& pool = *mapping.pool;
  std::memcpy(bounce_in(pool, addr), pool.slots->orig_of(mapping.info, addr).to_pointer(), size);
}

void IoTlb::copy_from_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  const IoPool& pool = *mapping.pool;
  std::memcpy(pool.slots->orig_of(mapping.info, addr).to_pointer(), bounce_in(pool, addr), size);
}

Result<PhysAddr> IoTlb::alloc(std::uint32_t pool, std::uint64_t size, DmaAddr pool_dma_start,
                              std::uint32_t owner, const DmaReach* reach, bool more_pools) {
  if (pool >= configured_.size()) {
    return make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", pool,
                      configured_.size());
  }
  BounceRequest request;
  request.pool = pool;
  request.size = kernel_align(size, kPageSize);
  request.alloc_align_mask = policy_->coherent_align_mask(request.size);
  request.pool_dma_start = pool_dma_start;
  request.owner = owner;
  request.reach = reach;
  request.attrs = Attr::no_warn;  // the coherent allocator reports its own failure
  request.more_pools = more_pools;
  Result<PhysAddr> mapped = map_slots(request, false);
  if (mapped) {
    coherent_allocations_.fetch_add(1, std::memory_order_relaxed);
  }
  return mapped;
}

Status IoTlb::free(PhysAddr addr, std::uint64_t size, std::uint32_t owner) {
  const MappingClaim claim{kernel_align(size, kPageSize), Direction::bidirectional, owner};
  Result<BounceMapping> mapping = begin_unmap(addr, 0, claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  {
    PoolTable::ReadGuard reading(dynamic_);
    mapping->pool->slots->finish_unmap(mapping->info);
    finish_release(mapping->pool);
  }
  coherent_allocations_.fetch_sub(1, std::memory_order_relaxed);
  return {};
}

IoTlbStats IoTlb::stats() const {
  IoTlbStats s;
  for (const IoPool* p : configured_) {
    s.pools.push_back(p->slots->stats());
  }
  s.coherent_allocations = coherent_allocations_.load(std::memory_order_relaxed);
  {
    PoolTable::ReadGuard reading(dynamic_);
    for (const IoPool* p : table_->pools()) {
      if (p->kind == PoolKind::configured) {
        continue;
      }
      s.dynamic.push_back({p->name, p->kind, p->tier, p->owner, p->start.value(), p->end.value(),
                           p->nslabs(), p->slots->used()});
      if (p->kind == PoolKind::grown) {
        s.growth.grown_pools += 1;
        s.growth.grown_nslabs += p->nslabs();
      }
    }
  }
  const Counters& c = *counters_;
  s.growth.grow_events = c.grow_events.load(std::memory_order_relaxed);
  s.growth.grow_failures = c.grow_failures.load(std::memory_order_relaxed);
  s.growth.limit_reached = c.limit_reached.load(std::memory_order_relaxed);
  s.growth.shrunk_pools = c.shrunk_pools.load(std::memory_order_relaxed);
  s.growth.transient_pools = c.transient_pools.load(std::memory_order_relaxed);
  s.growth.transient_nslabs = c.transient_nslabs.load(std::memory_order_relaxed);
  s.growth.transient_nslabs_total = c.transient_nslabs_total.load(std::memory_order_relaxed);
  s.growth.transient_failures = c.transient_failures.load(std::memory_order_relaxed);
  s.waits = waits_.stats();
  return s;
}

std::string IoTlb::debugfs_text() const {
  const IoTlbStats s = stats();
  std::string text;
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    const SlotPool& p = *configured_[i]->slots;
    std::uint64_t nslabs = p.slot_count();
    std::uint64_t used = p.used();
    for (const DynamicPoolStats& d : s.dynamic) {
      if (d.tier == i) {
        nslabs += d.kind == PoolKind::grown ? d.nslabs : 0;
        used += d.used;
      }
    }
    const std::string suffix = i == 0 ? "" : "_" + configured_[i]->name;
    text += fmt::format("io_tlb_nslabs{0}: {1}\nio_tlb_used{0}: {2}\nio_tlb_used_hiwater{0}: {3}\n",
                        suffix, nslabs, used, p.hiwater());
  }
  if (growth_.enabled || transient_) {
    text += fmt::format("io_tlb_transient_nslabs: {}\n", s.growth.transient_nslabs);
  }
  return text;
}

namespace {

nlohmann::json pool_json(std::string_view name, const SlotPool& pool, const PoolStats& s) {
  nlohmann::json areas = nlohmann::json::array();
  for (const AreaStats& a : s.areas) {
    areas.push_back({{"used", a.used},
                     {"cursor", a.cursor},
                     {"maps", a.maps},
                     {"search_steps", a.search_steps}});
  }
  return {{"name", name},
          {"start", pool.start().value()},
          {"end", pool.end().value()},
          {"nslabs", s.nslabs},
          {"nareas", s.nareas},
          {"used", s.used},
          {"hiwater", s.hiwater},
          {"maps", s.maps},
          {"failures", s.failures},
          {"search_steps", s.search_steps},
          {"areas", areas}};
}

}  // namespace

nlohmann::json IoTlb::to_json() const {
  const IoTlbStats s = stats();
  nlohmann::json pools = nlohmann::json::array();
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    pools.push_back(pool_json(configured_[i]->name, *configured_[i]->slots, s.pools[i]));
  }
  // The default pool's figures at the top, as the kernel's debugfs has them.
  nlohmann::json out = pools[0];
  out.erase("name");
  out["policy"] = policy_->name();
  out["force"] = force_bounce_;
  out["restricted"] = restricted_;
  out["coherent_allocations"] = s.coherent_allocations;
  out["pools"] = pools;
  nlohmann::json dynamic = nlohmann::json::array();
  for (const DynamicPoolStats& d : s.dynamic) {
    dynamic.push_back({{"name", d.name},
                       {"kind", to_string(d.kind)},
                       {"serves", configured_[d.tier]->name},
                       {"start", d.start},
                       {"end", d.end},
                       {"nslabs", d.nslabs},
                       {"used", d.used}});
  }
  const GrowthStats& g = s.growth;
  out["growth"] = {{"enabled", growth_.enabled},
                   {"transient", transient_},
                   {"grown_pools", g.grown_pools},
                   {"grown_nslabs", g.grown_nslabs},
                   {"grow_events", g.grow_events},
                   {"grow_failures", g.grow_failures},
                   {"limit_reached", g.limit_reached},
                   {"shrunk_pools", g.shrunk_pools},
                   {"transient_pools", g.transient_pools},
                   {"transient_nslabs", g.transient_nslabs},
                   {"transient_nslabs_total", g.transient_nslabs_total},
                   {"transient_failures", g.transient_failures},
                   {"pools", dynamic}};
  out["waits"] = {{"waits", s.waits.waits},
                  {"wait_ns", s.waits.wait_ns},
                  {"timeouts", s.waits.timeouts},
                  {"queued", s.waits.queued},
                  {"waiting_now", s.waits.waiting_now}};
  return out;
}

std::string IoTlb::boot_line() const {
  std::string lines;
  for (const IoPool* p : configured_) {
    // The kernel prints its pool's end, one past the last byte.
    lines +=
        fmt::format("{}software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB){}",
                    lines.empty() ? "" : "\n", p->start.value(), p->end.value(), p->bytes() >> 20,
                    configured_.size() > 1 ? fmt::format(" {} pool", p->name) : std::string());
  }
  return lines;
}

// Growth and shrink: the worker's side.

std::uint64_t IoTlb::total_nslabs() const {
  PoolTable::ReadGuard reading(dynamic_);
  std::uint64_t total = 0;
  for (const IoPool* p : table_->pools()) {
    total += p->kind != PoolKind::transient ? p->nslabs() : 0;
  }
  return total;
}

void IoTlb::grow(std::uint32_t tier) {
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
  Result<std::unique_ptr<Region>> region = make_region(growth_.pool_nslabs << kSlotShift, tier);
  if (!region) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    log_warning(fmt::format("could not grow the {} pool: {}", configured_[tier]->name,
                            region.error().message()));
    return;
  }
  Result<std::unique_ptr<SlotPool>> slots =
      SlotPool::create({(*region)->start(), growth_.pool_nslabs, growth_.pool_nareas}, policy_);
  if (!slots) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    log_warning(fmt::format("could not grow the {} pool: {}", configured_[tier]->name,
                            slots.error().message()));
    return;
  }
  auto pool = std::make_unique<IoPool>();
  pool->name = fmt::format("{}-grown-{}", configured_[tier]->name,
                           counters_->serial.fetch_add(1, std::memory_order_relaxed));
  pool->kind = PoolKind::grown;
  pool->tier = tier;
  pool->start = (*slots)->start();
  pool->end = (*slots)->end();
  pool->region = std::move(*region);
  pool->slots = std::move(*slots);
  if (Status added = table_->insert(std::move(pool)); !added) {
    counters_->grow_failures.fetch_add(1, std::memory_order_relaxed);
    log_warning(fmt::format("could not grow: {}", added.error().message()));
    return;
  }
  counters_->grow_events.fetch_add(1, std::memory_order_relaxed);
  waits_.notify();
}

void IoTlb::shrink_idle() {
  const WaitQueue::Clock::time_point now = WaitQueue::Clock::now();
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
    if (p->slots->used() != 0) {
      p->accepting.store(true, std::memory_order_relaxed);
      continue;
    }
    table_->retire(p);
    counters_->shrunk_pools.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace swiotlb
