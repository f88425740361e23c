// IoTlb: slots from the pool, bytes through the region.
//
// The pool keeps the bookkeeping and its locks; this file adds the copies.
// A copy runs outside every lock: the mapping's slots belong to its owner
// from map until unmap, and unmap marks the mapping as going (under the
// area lock) before it copies, so no other call can free or reuse the slots
// while the bytes move.
#include "swiotlb/iotlb/io_tlb.h"

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "swiotlb/core/constants.h"
#include "swiotlb/platform/cpu.h"

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

Result<IoTlb::Pool> IoTlb::make_pool(std::string name, std::uint64_t nslabs, std::uint32_t nareas,
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
  return Pool{std::move(name), std::move(*region), std::move(*slots)};
}

Result<std::unique_ptr<IoTlb>> IoTlb::create(const IoTlbOptions& options) {
  auto policy = make_slot_policy(options.policy);
  if (!policy) {
    return std::move(policy).error();
  }
  std::vector<Pool> pools;
  RegionSpec low_spec = options.region.value_or(RegionSpec{});
  if (!options.region) {
    low_spec.placement = options.placement;
  }
  auto low = make_pool("low", options.nslabs, options.nareas, low_spec, *policy);
  if (!low) {
    return std::move(low).error();
  }
  pools.push_back(std::move(*low));
  if (options.high_nslabs != 0) {
    auto high = make_pool("high", options.high_nslabs, options.high_nareas, RegionSpec{}, *policy);
    if (!high) {
      return std::move(high).error();
    }
    pools.push_back(std::move(*high));
  }
  return std::unique_ptr<IoTlb>(new IoTlb(std::move(pools), options));
}

IoTlb::IoTlb(std::vector<Pool> pools, const IoTlbOptions& options)
    : pools_(std::move(pools)),
      force_bounce_(options.force_bounce || options.restricted),
      restricted_(options.restricted),
      high_overflows_to_low_(options.high_overflows_to_low),
      full_warnings_(kWarnInterval, kWarnBurst) {}

IoTlb::~IoTlb() = default;

int IoTlb::pool_of(PhysAddr addr) const {
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    if (pools_[i].slots->contains(addr)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

PoolInfo IoTlb::pool_info(std::uint32_t pool) const {
  const Pool& p = pools_[pool];
  return {p.name, p.slots->start(), p.slots->end()};
}

std::byte* IoTlb::bounce_pointer_in(std::uint32_t pool, PhysAddr addr) const {
  const Region& region = *pools_[pool].region;
  return region.data() + (addr - region.start());
}

std::byte* IoTlb::bounce_pointer(PhysAddr addr) const {
  return bounce_pointer_in(static_cast<std::uint32_t>(pool_of(addr)), addr);
}

Result<PhysAddr> IoTlb::map(const BounceRequest& request) {
  SlotRequest slots;
  slots.orig = request.orig;
  slots.mapping_size = request.size;
  slots.alloc_align_mask = request.alloc_align_mask;
  slots.min_align_mask = request.min_align_mask;
  slots.seg_boundary_mask = request.seg_boundary_mask;
  slots.pool_dma_start = request.pool_dma_start;
  slots.cpu = current_cpu();
  slots.dir = request.dir;
  slots.owner = request.owner;
  if (request.pool >= pools_.size()) {
    return make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", request.pool,
                      pools_.size());
  }
  Result<SlotMapping> mapping = pools_[request.pool].slots->map(slots);
  if (!mapping) {
    if (mapping.error().code() == Errc::pool_full && !request.attrs.has(Attr::no_warn)) {
      warn_full(request, mapping.error());
    }
    return std::move(mapping).error();
  }
  // Whatever the direction: a device that writes only part of the buffer
  // must leave the rest as the original had it.
  std::memcpy(bounce_pointer_in(request.pool, mapping->tlb_addr), request.orig.to_pointer(),
              request.size);
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
                          pools_.size() > 1
                              ? fmt::format(" in the {} pool", pools_[request.pool].name)
                              : std::string()));
}

Result<BounceMapping> IoTlb::begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                         const MappingClaim& claim) {
  const int pool = pool_of(tlb_addr);
  if (pool < 0) {
    return make_error(Errc::not_mapped, "{:#x} is in no pool", tlb_addr.value());
  }
  Result<MappingInfo> info =
      pools_[static_cast<std::size_t>(pool)].slots->begin_unmap(tlb_addr, min_align_mask, &claim);
  if (!info) {
    return std::move(info).error();
  }
  return BounceMapping{*info, static_cast<std::uint32_t>(pool)};
}

void IoTlb::finish_unmap(const BounceMapping& mapping, Attrs attrs) {
  if (!attrs.has(Attr::skip_cpu_sync) && copies_from_device(mapping.info.dir)) {
    copy_from_bounce(mapping, mapping.info.tlb_addr, mapping.info.mapping_size);
  }
  pools_[mapping.pool].slots->finish_unmap(mapping.info);
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
  const int pool = pool_of(addr);
  if (pool < 0) {
    return make_error(Errc::not_mapped, "{:#x} is in no pool", addr.value());
  }
  Result<MappingInfo> info = pools_[static_cast<std::size_t>(pool)].slots->find_mapping(addr, size);
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
  return BounceMapping{*info, static_cast<std::uint32_t>(pool)};
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
  const SlotPool& pool = *pools_[mapping.pool].slots;
  std::memcpy(bounce_pointer_in(mapping.pool, addr), pool.orig_of(mapping.info, addr).to_pointer(),
              size);
}

void IoTlb::copy_from_bounce(const BounceMapping& mapping, PhysAddr addr, std::uint64_t size) {
  const SlotPool& pool = *pools_[mapping.pool].slots;
  std::memcpy(pool.orig_of(mapping.info, addr).to_pointer(), bounce_pointer_in(mapping.pool, addr),
              size);
}

Result<PhysAddr> IoTlb::alloc(std::uint32_t pool, std::uint64_t size, DmaAddr pool_dma_start,
                              std::uint32_t owner) {
  if (pool >= pools_.size()) {
    return make_error(Errc::invalid_argument, "pool {} does not exist ({} pools)", pool,
                      pools_.size());
  }
  SlotPool& slots_pool = *pools_[pool].slots;
  SlotRequest slots;
  slots.mapping_size = kernel_align(size, kPageSize);
  slots.alloc_align_mask = slots_pool.policy().coherent_align_mask(slots.mapping_size);
  slots.pool_dma_start = pool_dma_start;
  slots.cpu = current_cpu();
  slots.owner = owner;
  Result<SlotMapping> mapping = slots_pool.map(slots);
  if (!mapping) {
    return std::move(mapping).error();
  }
  std::memset(bounce_pointer_in(pool, mapping->tlb_addr), 0, slots.mapping_size);
  coherent_allocations_.fetch_add(1, std::memory_order_relaxed);
  return mapping->tlb_addr;
}

Status IoTlb::free(PhysAddr addr, std::uint64_t size, std::uint32_t owner) {
  const MappingClaim claim{kernel_align(size, kPageSize), Direction::bidirectional, owner};
  Result<BounceMapping> mapping = begin_unmap(addr, 0, claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  pools_[mapping->pool].slots->finish_unmap(mapping->info);
  coherent_allocations_.fetch_sub(1, std::memory_order_relaxed);
  return {};
}

IoTlbStats IoTlb::stats() const {
  IoTlbStats s;
  for (const Pool& p : pools_) {
    s.pools.push_back(p.slots->stats());
  }
  s.coherent_allocations = coherent_allocations_.load(std::memory_order_relaxed);
  return s;
}

std::string IoTlb::debugfs_text() const {
  std::string text;
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    const SlotPool& p = *pools_[i].slots;
    const std::string suffix = i == 0 ? "" : "_" + pools_[i].name;
    text += fmt::format("io_tlb_nslabs{0}: {1}\nio_tlb_used{0}: {2}\nio_tlb_used_hiwater{0}: {3}\n",
                        suffix, p.slot_count(), p.used(), p.hiwater());
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
  for (std::size_t i = 0; i < pools_.size(); ++i) {
    pools.push_back(pool_json(pools_[i].name, *pools_[i].slots, s.pools[i]));
  }
  // The default pool's figures at the top, as the kernel's debugfs has them.
  nlohmann::json out = pools[0];
  out.erase("name");
  out["policy"] = pools_[0].slots->policy().name();
  out["force"] = force_bounce_;
  out["restricted"] = restricted_;
  out["coherent_allocations"] = s.coherent_allocations;
  out["pools"] = pools;
  return out;
}

std::string IoTlb::boot_line() const {
  std::string lines;
  for (const Pool& p : pools_) {
    // The kernel prints its pool's end, one past the last byte.
    lines += fmt::format("{}software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB){}",
                         lines.empty() ? "" : "\n", p.slots->start().value(),
                         p.slots->end().value(), (p.slots->end() - p.slots->start()) >> 20,
                         pools_.size() > 1 ? fmt::format(" {} pool", p.name) : std::string());
  }
  return lines;
}

}  // namespace swiotlb
