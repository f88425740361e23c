// Making an IoTlb: its configured pools, each in memory from the backend and
// announced to it before the pool can be searched.
#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "io_tlb_internal.h"
#include "io_tlb_worker.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/pool_directory.h"
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
  region.persistent = options.persistent || options.attach;
  if (options.attach) {
    region.attach = options.attach->region;
    if (!region.region && !options.attach->region.path.empty()) {
      // The attached file is the window: the other pools are in it.
      region.region = RegionSpec{.kind = RegionKind::file,
                                 .path = options.attach->region.path,
                                 .offset = options.attach->region.offset};
    }
  }
  return make_region_backend(region);
}

bool file_window(const IoTlbOptions& options) {
  return options.region &&
         (options.region->kind == RegionKind::file ||
          options.region->kind == RegionKind::hugetlbfs) &&
         !options.region->path.empty();
}

Status check_persistence(const IoTlbOptions& options) {
  if (!options.persistent && !options.attach) {
    return {};
  }
  if (options.transient) {
    return make_error(Errc::invalid_argument,
                      "a persistent IoTlb makes no transient pools: a later holder could not "
                      "find their mappings again");
  }
  if (!options.attach && options.backend == nullptr &&
      (options.high_nslabs != 0 || options.growth.enabled) && !file_window(options)) {
    return make_error(Errc::invalid_argument,
                      "a persistent IoTlb with a high pool or growth needs a file or hugetlbfs "
                      "window named by its path: its other pools live in that file");
  }
  return {};
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
    // Lowered only without an image: the image's size follows the slots.
    std::uint64_t nslabs = options_.nslabs;
    std::uint32_t nareas = options_.nareas;
    const std::uint64_t slot_bytes = nslabs << kSlotShift;
    const std::uint64_t bytes = image ? persistent_region_bytes(nslabs) : slot_bytes;
    PoolMemoryRequest request{bytes, PoolKind::configured, 0, "low"};
    Result<PoolMemory> memory = allocate_lowering(request, !image, nslabs, nareas);
    if (!memory) {
      return std::move(memory).error();
    }
    auto pool = shell("low", 0, std::move(*memory), request);
    const PoolGeometry geometry{pool->memory.start, nslabs, nareas};
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
      const std::uint64_t image_bytes = pool_image_bytes(options_.nslabs);
      const std::span<std::byte> in{pool->memory.data + slot_bytes, image_bytes};
      const std::span<std::byte> listed{pool->memory.data + slot_bytes + image_bytes,
                                        kPoolDirectoryBytes};
      slots = options_.attach ? SlotPool::attach(geometry, policy_, in, options_.attach->pool)
                              : SlotPool::create_in(geometry, policy_, in);
      // The pool's own header is checked first: its errors say more.
      if (slots) {
        Result<std::unique_ptr<PoolDirectory>> directory =
            options_.attach ? PoolDirectory::open(listed) : PoolDirectory::format(listed);
        if (!directory) {
          return std::move(directory).error();
        }
        directory_ = std::move(*directory);
      }
    }
    return finish(std::move(pool), std::move(slots), request);
  }

  // A pool the directory names, mapped again at its address and attached
  // (its mappings adopted or dropped as the options say).
  Result<std::unique_ptr<IoPool>> reattached(const RecordedPool& recorded,
                                             const std::string& tier_name) {
    const std::string name = recorded.kind == PoolKind::configured
                                 ? tier_name
                                 : fmt::format("{}-grown-{}", tier_name, grown_serial_++);
    const PoolMemoryRequest request{recorded.bytes, recorded.kind, recorded.tier, name};
    if (Status valid = validate_geometry(recorded.nslabs, recorded.nareas); !valid) {
      return make_error(Errc::parse, "pool directory entry {}: {}", recorded.slot,
                        valid.error().message());
    }
    const std::uint64_t slot_bytes = recorded.nslabs << kSlotShift;
    const std::uint64_t image_bytes = pool_image_bytes(recorded.nslabs);
    if (recorded.bytes < slot_bytes + image_bytes) {
      return make_error(Errc::parse,
                        "pool directory entry {}: {} bytes cannot hold {} slots and their image",
                        recorded.slot, recorded.bytes, recorded.nslabs);
    }
    Result<PoolMemory> memory = backend_->reattach(request, recorded.start, recorded.token);
    if (!memory) {
      return std::move(memory).error();
    }
    auto pool = shell(name, recorded.tier, std::move(*memory), request);
    pool->kind = recorded.kind;
    pool->directory_slot = recorded.slot;
    if (pool->memory.data == nullptr || pool->memory.bytes < slot_bytes + image_bytes) {
      return make_error(Errc::invalid_argument, "the {} pool came back with {} bytes, not {}", name,
                        pool->memory.bytes, slot_bytes + image_bytes);
    }
    auto slots =
        SlotPool::attach({pool->memory.start, recorded.nslabs, recorded.nareas}, policy_,
                         {pool->memory.data + slot_bytes, image_bytes}, options_.attach->pool);
    if (!slots) {
      return make_error(slots.error().code(), "the {} pool: {}", name, slots.error().message());
    }
    return finish(std::move(pool), std::move(slots), request);
  }

  PoolDirectory* directory() const { return directory_.get(); }
  std::unique_ptr<PoolDirectory> take_directory() { return std::move(directory_); }
  std::uint64_t grown_serial() const { return grown_serial_; }

  Result<std::unique_ptr<IoPool>> high_pool() {
    if (Status valid = validate_geometry(options_.high_nslabs, options_.high_nareas); !valid) {
      return make_error(Errc::invalid_argument, "high pool: {}", valid.error().message());
    }
    std::uint64_t nslabs = options_.high_nslabs;
    std::uint32_t nareas = options_.high_nareas;
    const std::uint64_t slot_bytes = nslabs << kSlotShift;
    const std::uint64_t image_bytes = directory_ != nullptr ? pool_image_bytes(nslabs) : 0;
    PoolMemoryRequest request{slot_bytes + image_bytes, PoolKind::configured, 1, "high"};
    Result<PoolMemory> memory = allocate_lowering(request, directory_ == nullptr, nslabs, nareas);
    if (!memory) {
      return std::move(memory).error();
    }
    auto pool = shell("high", 1, std::move(*memory), request);
    const PoolGeometry geometry{pool->memory.start, nslabs, nareas};
    if (directory_ == nullptr) {
      return finish(std::move(pool), SlotPool::create(geometry, policy_), request);
    }
    if (pool->memory.data == nullptr || pool->memory.bytes < request.bytes) {
      return make_error(Errc::invalid_argument,
                        "the persistent high pool needs {} bytes of memory; the backend gave {}",
                        request.bytes, pool->memory.bytes);
    }
    auto slots =
        SlotPool::create_in(geometry, policy_, {pool->memory.data + slot_bytes, image_bytes});
    auto made = finish(std::move(pool), std::move(slots), request);
    if (!made) {
      return made;
    }
    Result<std::uint32_t> slot = directory_->record({.kind = PoolKind::configured,
                                                     .tier = 1,
                                                     .nareas = nareas,
                                                     .nslabs = nslabs,
                                                     .start = (*made)->memory.start,
                                                     .token = (*made)->memory.token,
                                                     .bytes = (*made)->memory.bytes});
    if (!slot) {
      return std::move(slot).error();
    }
    (*made)->directory_slot = *slot;
    return made;
  }

 private:
  // Memory for a configured pool. When the system has not that much and
  // the pool may be smaller (`may_lower`: no image sized for it, memory
  // the system hands out rather than a file or device range of a given
  // size), tries half as many slots in whole segments, with areas cut so
  // that each keeps a segment, until it gets memory or the pool is down to
  // kMinBootSlots: the kernel's boot-time fallback (swiotlb_init_remap).
  // Each step is logged, and the size it settled on. `nslabs`, `nareas`
  // and `request.bytes` end as the pool got them.
  Result<PoolMemory> allocate_lowering(PoolMemoryRequest& request, bool may_lower,
                                       std::uint64_t& nslabs, std::uint32_t& nareas) {
    may_lower =
        may_lower && (!options_.region || ((options_.region->kind == RegionKind::anonymous ||
                                            options_.region->kind == RegionKind::memfd) &&
                                           !options_.region->fixed_address));
    const std::uint64_t asked = nslabs;
    const std::uint32_t asked_areas = nareas;
    for (;;) {
      Result<PoolMemory> memory = backend_->allocate(request);
      if (memory) {
        if (nslabs != asked) {
          log_warning(fmt::format(
              "software IO TLB: {} pool size adjusted from {} to {} slots ({} MB), {} to {} "
              "areas",
              request.name, asked, nslabs, (nslabs << kSlotShift) >> 20, asked_areas, nareas));
        }
        return memory;
      }
      if (!may_lower || memory.error().code() != Errc::system) {
        return memory;
      }
      if (nslabs <= kMinBootSlots) {
        return make_error(Errc::system,
                          "software IO TLB: no memory for the {} pool, even at {} slots ({} MB), "
                          "the least it is lowered to (asked for {} slots): {}",
                          request.name, nslabs, (nslabs << kSlotShift) >> 20, asked,
                          memory.error().message());
      }
      const std::uint64_t fewer = kernel_align(nslabs / 2, kSegmentSlots);
      const auto areas = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(nareas, std::bit_floor(fewer / kSegmentSlots)));
      log_warning(fmt::format(
          "software IO TLB: cannot allocate {} MB for the {} pool ({}); lowering to {} MB",
          (nslabs << kSlotShift) >> 20, request.name, memory.error().message(),
          (fewer << kSlotShift) >> 20));
      nslabs = fewer;
      nareas = areas;
      request.bytes = fewer << kSlotShift;
    }
  }

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
  std::unique_ptr<PoolDirectory> directory_;  // persistent: in the default pool's memory
  std::uint64_t grown_serial_ = 0;            // names of grown pools attached again
};

namespace {

// The pools an attached directory names, attached again: the high pool
// into `configured`, grown pools into the table. Every one or nothing: a
// pool left out would have its live mappings handed out again.
Status attach_recorded(IoTlbBuilder& builder, const IoTlbOptions& options, PoolTable& table,
                       std::vector<IoPool*>& configured) {
  Result<std::vector<RecordedPool>> recorded = builder.directory()->pools();
  if (!recorded) {
    return recorded.error();
  }
  const std::uint32_t tiers = options.high_nslabs != 0 ? 2 : 1;
  const auto high = std::find_if(recorded->begin(), recorded->end(), [](const RecordedPool& r) {
    return r.kind == PoolKind::configured;
  });
  if (high == recorded->end() && options.high_nslabs != 0) {
    return make_error(Errc::invalid_argument,
                      "the options ask for a high pool of {} slots; the attached image has none",
                      options.high_nslabs);
  }
  if (high != recorded->end() && (high->tier != 1 || high->nslabs != options.high_nslabs ||
                                  high->nareas != options.high_nareas)) {
    return make_error(Errc::invalid_argument,
                      "the attached image has a high pool of {} slots in {} areas; the options "
                      "ask for {} in {}",
                      high->nslabs, high->nareas, options.high_nslabs, options.high_nareas);
  }
  if (high != recorded->end()) {
    auto pool = builder.reattached(*high, "high");
    if (!pool) {
      return pool.error();
    }
    configured.push_back(pool->get());
    if (Status added = table.insert(std::move(*pool)); !added) {
      return added;
    }
  }
  for (const RecordedPool& r : *recorded) {
    if (r.kind != PoolKind::grown) {
      continue;
    }
    if (r.tier >= tiers) {
      return make_error(Errc::parse, "pool directory entry {} serves pool {}, of {}", r.slot,
                        r.tier, tiers);
    }
    auto pool = builder.reattached(r, configured[r.tier]->name);
    if (!pool) {
      return pool.error();
    }
    if (Status added = table.insert(std::move(*pool)); !added) {
      return added;
    }
  }
  return {};
}

}  // namespace

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
  if (Status persists = check_persistence(options); !persists) {
    return persists.error();
  }
  if (options.reserve_nslabs != 0) {
    if (options.restricted || options.disabled || options.persistent || options.attach) {
      return make_error(Errc::invalid_argument,
                        "a reserve of {} slots is not for a restricted, persistent or "
                        "swiotlb=noforce IoTlb",
                        options.reserve_nslabs);
    }
    if (Status valid = validate_geometry(options.reserve_nslabs, 1); !valid) {
      return make_error(Errc::invalid_argument, "reserve: {}", valid.error().message());
    }
  }
  std::shared_ptr<IoTlbBackend> backend = backend_for(options);
  const std::uint32_t tiers = options.disabled ? 0 : (options.high_nslabs != 0 ? 2 : 1);
  auto table = std::make_unique<PoolTable>(std::max<std::uint32_t>(tiers, 1));
  std::vector<IoPool*> configured;
  IoTlbBuilder builder(options, *policy, backend);
  if (!options.disabled) {
    auto low = builder.default_pool();
    if (!low) {
      return std::move(low).error();
    }
    configured.push_back(low->get());
    if (Status added = table->insert(std::move(*low)); !added) {
      return added.error();
    }
    if (options.attach) {
      if (Status attached = attach_recorded(builder, options, *table, configured); !attached) {
        return attached.error();
      }
    } else if (options.high_nslabs != 0) {
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
  const std::uint64_t grown_serial = builder.grown_serial();
  auto tlb = std::unique_ptr<IoTlb>(new IoTlb(std::move(table), std::move(configured),
                                              std::move(*policy), std::move(backend), options));
  tlb->directory_ = builder.take_directory();
  tlb->counters_->serial.store(grown_serial, std::memory_order_relaxed);
  if (options.reserve_nslabs != 0) {
    if (Status made = tlb->make_reserve(options.reserve_nslabs); !made) {
      return made.error();
    }
  }
  return tlb;
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
  // Slots in use from the start: mappings adopted from an earlier holder,
  // in configured pools and in grown pools attached again.
  PoolTable::ReadGuard reading;
  for (const IoPool* p : table_->pools()) {
    if (p->kind != PoolKind::configured) {
      counters_->tiers[p->tier].count_map(*configured_[p->tier], false, p->slots->used());
    }
  }
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    counters_->tiers[i].raise_mark(counters_->tiers[i].used(*configured_[i]));
  }
}

IoTlb::~IoTlb() {
  waits_.cancel_all();
  worker_.reset();
}

}  // namespace swiotlb
