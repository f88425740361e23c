// Making an IoTlb: its configured pools, each in memory from the backend and
// announced to it before the pool can be searched.
#include <fmt/format.h>

#include <algorithm>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {

namespace {

// The kernel's default printk rate limit: 10 messages every 5 seconds.
constexpr std::chrono::milliseconds kWarnInterval{5000};
constexpr std::uint32_t kWarnBurst = 10;

std::chrono::milliseconds shrink_tick(const IoTlbOptions& options) {
  if (!options.growth.enabled || options.growth.by_caller ||
      options.growth.shrink_after.count() == 0) {
    return std::chrono::milliseconds{0};
  }
  return std::max(options.growth.shrink_after / 4, std::chrono::milliseconds{1});
}

std::shared_ptr<IoTlbBackend> backend_for(const IoTlbOptions& options) {
  if (options.backend != nullptr) {
    return options.backend;
  }
  RegionBackendOptions region;
  region.region = options.region;
  region.placement = options.placement;
  if (options.attach) {
    region.attach = options.attach->region;
  }
  return make_region_backend(region);
}

}  // namespace

// Builds the configured pools of an IoTlb.
class IoTlbBuilder {
 public:
  IoTlbBuilder(const IoTlbOptions& options, std::shared_ptr<const SlotPolicy> policy,
               std::shared_ptr<IoTlbBackend> backend)
      : options_(options), policy_(std::move(policy)), backend_(std::move(backend)) {}

  // The default pool: plain, with its image (persistent), or attached to
  // an image already in the memory.
  Result<std::unique_ptr<IoPool>> default_pool() {
    const bool image = options_.persistent || options_.attach;
    if (Status valid = validate_geometry(options_.nslabs, options_.nareas); !valid) {
      return make_error(Errc::invalid_argument, "low pool: {}", valid.error().message());
    }
    if (options_.persistent && !options_.attach &&
        (!options_.region || options_.region->kind == RegionKind::anonymous)) {
      return make_error(Errc::invalid_argument,
                        "a persistent pool needs a memfd, file or hugetlbfs region: anonymous "
                        "memory ends with its process");
    }
    const std::uint64_t slot_bytes = options_.nslabs << kSlotShift;
    const std::uint64_t bytes = slot_bytes + (image ? pool_image_bytes(options_.nslabs) : 0);
    const PoolMemoryRequest request{bytes, PoolKind::configured, 0, "low"};
    Result<PoolMemory> memory = backend_->allocate(request);
    if (!memory) {
      return std::move(memory).error();
    }
    auto pool = shell("low", 0, std::move(*memory), request);
    const PoolGeometry geometry{pool->memory.start, options_.nslabs, options_.nareas};
    Result<std::unique_ptr<SlotPool>> slots = make_error(Errc::invalid_argument, "no pool");
    if (!image) {
      slots = SlotPool::create(geometry, policy_);
    } else if (pool->memory.data == nullptr || pool->memory.bytes < bytes) {
      return make_error(Errc::invalid_argument,
                        "a pool of {} slots and its image need {} bytes of memory; the backend "
                        "gave {}{}",
                        options_.nslabs, bytes, pool->memory.bytes,
                        pool->memory.data == nullptr ? " with nothing behind them" : "");
    } else {
      const std::span<std::byte> in{pool->memory.data + slot_bytes,
                                    pool_image_bytes(options_.nslabs)};
      slots = options_.attach ? SlotPool::attach(geometry, policy_, in, options_.attach->pool)
                              : SlotPool::create_in(geometry, policy_, in);
    }
    return finish(std::move(pool), std::move(slots), request);
  }

  Result<std::unique_ptr<IoPool>> high_pool() {
    if (Status valid = validate_geometry(options_.high_nslabs, options_.high_nareas); !valid) {
      return make_error(Errc::invalid_argument, "high pool: {}", valid.error().message());
    }
    const PoolMemoryRequest request{options_.high_nslabs << kSlotShift, PoolKind::configured, 1,
                                    "high"};
    Result<PoolMemory> memory = backend_->allocate(request);
    if (!memory) {
      return std::move(memory).error();
    }
    auto pool = shell("high", 1, std::move(*memory), request);
    auto slots =
        SlotPool::create({pool->memory.start, options_.high_nslabs, options_.high_nareas}, policy_);
    return finish(std::move(pool), std::move(slots), request);
  }

 private:
  std::unique_ptr<IoPool> shell(std::string name, std::uint32_t tier, PoolMemory memory,
                                const PoolMemoryRequest& request) {
    auto pool = std::make_unique<IoPool>();
    pool->name = std::move(name);
    pool->kind = PoolKind::configured;
    pool->tier = tier;
    pool->start = memory.start;
    pool->end = memory.start + (request.bytes & ~(kSlotSize - 1));
    pool->memory = std::move(memory);
    pool->backend = backend_;
    return pool;
  }

  Result<std::unique_ptr<IoPool>> finish(std::unique_ptr<IoPool> pool,
                                         Result<std::unique_ptr<SlotPool>> slots,
                                         const PoolMemoryRequest& request) {
    if (!slots) {
      return std::move(slots).error();
    }
    pool->slots = std::move(*slots);
    pool->end = pool->slots->end();
    if (Status announced = backend_->announce(pool->memory, request); !announced) {
      return announced.error();
    }
    return pool;
  }

  const IoTlbOptions& options_;
  std::shared_ptr<const SlotPolicy> policy_;
  std::shared_ptr<IoTlbBackend> backend_;
};

Result<std::unique_ptr<IoTlb>> IoTlb::create(const IoTlbOptions& options) {
  auto policy = make_slot_policy(options.policy);
  if (!policy) {
    return std::move(policy).error();
  }
  if (options.restricted && (options.growth.enabled || options.transient)) {
    return make_error(Errc::invalid_argument,
                      "a restricted pool never grows and makes no transient pools");
  }
  if (options.growth.enabled && !options.growth.by_caller) {
    if (Status valid = validate_geometry(options.growth.pool_nslabs, options.growth.pool_nareas);
        !valid) {
      return make_error(Errc::invalid_argument, "grown pools: {}", valid.error().message());
    }
    if (options.growth.watermark_percent == 0 || options.growth.watermark_percent > 100) {
      return make_error(Errc::invalid_argument, "growth watermark {}% is not in 1..100",
                        options.growth.watermark_percent);
    }
  }
  if (options.disabled && (options.restricted || options.persistent || options.attach)) {
    return make_error(Errc::invalid_argument,
                      "swiotlb=noforce makes no pool: it cannot be restricted or persistent");
  }
  std::shared_ptr<IoTlbBackend> backend = backend_for(options);
  const std::uint32_t tiers = options.disabled ? 0 : (options.high_nslabs != 0 ? 2 : 1);
  auto table = std::make_unique<PoolTable>(std::max<std::uint32_t>(tiers, 1));
  std::vector<IoPool*> configured;
  if (!options.disabled) {
    IoTlbBuilder builder(options, *policy, backend);
    auto low = builder.default_pool();
    if (!low) {
      return std::move(low).error();
    }
    configured.push_back(low->get());
    if (Status added = table->insert(std::move(*low)); !added) {
      return added.error();
    }
    if (options.high_nslabs != 0) {
      auto high = builder.high_pool();
      if (!high) {
        return std::move(high).error();
      }
      configured.push_back(high->get());
      if (Status added = table->insert(std::move(*high)); !added) {
        return added.error();
      }
    }
  }
  table->reclaim();  // the snapshots replaced while setting up
  return std::unique_ptr<IoTlb>(new IoTlb(std::move(table), std::move(configured),
                                          std::move(*policy), std::move(backend), options));
}

IoTlb::IoTlb(std::unique_ptr<PoolTable> table, std::vector<IoPool*> configured,
             std::shared_ptr<const SlotPolicy> policy, std::shared_ptr<IoTlbBackend> backend,
             const IoTlbOptions& options)
    : backend_(std::move(backend)),
      table_(std::move(table)),
      configured_(std::move(configured)),
      policy_(std::move(policy)),
      force_bounce_(!options.disabled && (options.force_bounce || options.restricted)),
      restricted_(options.restricted),
      high_overflows_to_low_(options.high_overflows_to_low),
      growth_(options.growth),
      search_order_(options.search_order),
      transient_(options.transient && !options.disabled),
      dynamic_((options.growth.enabled || options.transient) && !options.disabled),
      transient_max_nslabs_(options.transient_max_nslabs),
      transient_size_(options.transient_size),
      wait_timeout_(options.wait_timeout),
      full_warnings_(kWarnInterval, kWarnBurst),
      counters_(std::make_unique<Counters>(configured_.size())),
      waits_([this] { worker_->wake(); }),
      worker_(std::make_unique<Worker>(*this, shrink_tick(options),
                                       backend_->maintenance() == Maintenance::worker_thread)) {
  // Slots in use from the start: mappings adopted from an earlier holder.
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    counters_->tiers[i].add_used(configured_[i]->slots->used());
  }
}

IoTlb::~IoTlb() {
  waits_.cancel_all();
  worker_.reset();
}

}  // namespace swiotlb
