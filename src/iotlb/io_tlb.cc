// IoTlb: slots from the pool, bytes through the region.
//
// The pool keeps the bookkeeping and its locks; this file adds the copies.
// A copy runs outside every lock: the mapping's slots belong to its owner
// from map until unmap, and unmap marks the mapping as going (under the
// area lock) before it copies, so no other call can free or reuse the slots
// while the bytes move.
#include "swiotlb/iotlb/io_tlb.h"

#include <cstring>

#include <fmt/format.h>
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
  return options;
}

Result<std::unique_ptr<IoTlb>> IoTlb::create(const IoTlbOptions& options) {
  if (Status valid = validate_geometry(options.nslabs, options.nareas); !valid) {
    return valid.error();
  }
  auto policy = make_slot_policy(options.policy);
  if (!policy) {
    return std::move(policy).error();
  }
  auto region = Region::anonymous(options.nslabs << kSlotShift, options.placement);
  if (!region) {
    return std::move(region).error();
  }
  auto pool = SlotPool::create({(*region)->start(), options.nslabs, options.nareas}, *policy);
  if (!pool) {
    return std::move(pool).error();
  }
  return std::unique_ptr<IoTlb>(
      new IoTlb(std::move(*region), std::move(*pool), options.force_bounce));
}

IoTlb::IoTlb(std::unique_ptr<Region> region, std::unique_ptr<SlotPool> pool, bool force_bounce)
    : region_(std::move(region)),
      pool_(std::move(pool)),
      force_bounce_(force_bounce),
      full_warnings_(kWarnInterval, kWarnBurst) {}

IoTlb::~IoTlb() = default;

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
  Result<SlotMapping> mapping = pool_->map(slots);
  if (!mapping) {
    if (mapping.error().code() == Errc::pool_full && !request.attrs.has(Attr::no_warn)) {
      warn_full(request, mapping.error());
    }
    return std::move(mapping).error();
  }
  // Whatever the direction: a device that writes only part of the buffer
  // must leave the rest as the original had it.
  std::memcpy(bounce_pointer(mapping->tlb_addr), request.orig.to_pointer(), request.size);
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
  log_warning(fmt::format("{}: {}", request.owner_name, error.message()));
}

Result<MappingInfo> IoTlb::begin_unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask,
                                       const MappingClaim& claim) {
  return pool_->begin_unmap(tlb_addr, min_align_mask, &claim);
}

void IoTlb::finish_unmap(const MappingInfo& mapping, Attrs attrs) {
  if (!attrs.has(Attr::skip_cpu_sync) && copies_from_device(mapping.dir)) {
    copy_from_bounce(mapping, mapping.tlb_addr, mapping.mapping_size);
  }
  pool_->finish_unmap(mapping);
}

Status IoTlb::unmap(PhysAddr tlb_addr, std::uint64_t min_align_mask, const MappingClaim& claim,
                    Attrs attrs) {
  Result<MappingInfo> mapping = begin_unmap(tlb_addr, min_align_mask, claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  finish_unmap(*mapping, attrs);
  return {};
}

Result<MappingInfo> IoTlb::find_for_sync(PhysAddr addr, std::uint64_t size, Direction dir,
                                         std::uint32_t owner) const {
  Result<MappingInfo> mapping = pool_->find_mapping(addr, size);
  if (!mapping) {
    return mapping;
  }
  if (mapping->owner != owner) {
    return make_error(Errc::mapping_mismatch, "sync of {:#x} by owner {}, but owner {} mapped it",
                      addr.value(), owner, mapping->owner);
  }
  if (mapping->dir != dir || dir == Direction::none) {
    return make_error(Errc::mapping_mismatch, "sync of {:#x} {}, but it was mapped {}",
                      addr.value(), to_string(dir), to_string(mapping->dir));
  }
  return mapping;
}

Status IoTlb::sync_for_cpu(PhysAddr addr, std::uint64_t size, Direction dir,
                           std::uint32_t owner) {
  Result<MappingInfo> mapping = find_for_sync(addr, size, dir, owner);
  if (!mapping) {
    return std::move(mapping).error();
  }
  copy_for_cpu(*mapping, addr, size);
  return {};
}

Status IoTlb::sync_for_device(PhysAddr addr, std::uint64_t size, Direction dir,
                              std::uint32_t owner) {
  Result<MappingInfo> mapping = find_for_sync(addr, size, dir, owner);
  if (!mapping) {
    return std::move(mapping).error();
  }
  copy_for_device(*mapping, addr, size);
  return {};
}

void IoTlb::copy_for_cpu(const MappingInfo& mapping, PhysAddr addr, std::uint64_t size) {
  if (copies_from_device(mapping.dir)) {
    copy_from_bounce(mapping, addr, size);
  }
}

void IoTlb::copy_for_device(const MappingInfo& mapping, PhysAddr addr, std::uint64_t size) {
  if (copies_to_device(mapping.dir)) {
    copy_to_bounce(mapping, addr, size);
  }
}

void IoTlb::copy_to_bounce(const MappingInfo& mapping, PhysAddr addr, std::uint64_t size) {
  std::memcpy(bounce_pointer(addr), pool_->orig_of(mapping, addr).to_pointer(), size);
}

void IoTlb::copy_from_bounce(const MappingInfo& mapping, PhysAddr addr, std::uint64_t size) {
  std::memcpy(pool_->orig_of(mapping, addr).to_pointer(), bounce_pointer(addr), size);
}

Result<PhysAddr> IoTlb::alloc(std::uint64_t size, DmaAddr pool_dma_start, std::uint32_t owner) {
  SlotRequest slots;
  slots.mapping_size = kernel_align(size, kPageSize);
  slots.alloc_align_mask = pool_->policy().coherent_align_mask(slots.mapping_size);
  slots.pool_dma_start = pool_dma_start;
  slots.cpu = current_cpu();
  slots.owner = owner;
  Result<SlotMapping> mapping = pool_->map(slots);
  if (!mapping) {
    return std::move(mapping).error();
  }
  std::memset(bounce_pointer(mapping->tlb_addr), 0, slots.mapping_size);
  coherent_allocations_.fetch_add(1, std::memory_order_relaxed);
  return mapping->tlb_addr;
}

Status IoTlb::free(PhysAddr addr, std::uint64_t size, std::uint32_t owner) {
  const MappingClaim claim{kernel_align(size, kPageSize), Direction::bidirectional, owner};
  Result<MappingInfo> mapping = pool_->begin_unmap(addr, 0, &claim);
  if (!mapping) {
    return std::move(mapping).error();
  }
  pool_->finish_unmap(*mapping);
  coherent_allocations_.fetch_sub(1, std::memory_order_relaxed);
  return {};
}

IoTlbStats IoTlb::stats() const {
  IoTlbStats s;
  s.pool = pool_->stats();
  s.coherent_allocations = coherent_allocations_.load(std::memory_order_relaxed);
  return s;
}

std::string IoTlb::debugfs_text() const {
  return fmt::format("io_tlb_nslabs: {}\nio_tlb_used: {}\nio_tlb_used_hiwater: {}\n",
                     pool_->slot_count(), pool_->used(), pool_->hiwater());
}

nlohmann::json IoTlb::to_json() const {
  const IoTlbStats s = stats();
  nlohmann::json areas = nlohmann::json::array();
  for (const AreaStats& a : s.pool.areas) {
    areas.push_back({{"used", a.used}, {"cursor", a.cursor}, {"maps", a.maps},
                     {"search_steps", a.search_steps}});
  }
  return {{"policy", pool_->policy().name()},
          {"start", start().value()},
          {"end", end().value()},
          {"force", force_bounce_},
          {"nslabs", s.pool.nslabs},
          {"nareas", s.pool.nareas},
          {"used", s.pool.used},
          {"hiwater", s.pool.hiwater},
          {"maps", s.pool.maps},
          {"failures", s.pool.failures},
          {"search_steps", s.pool.search_steps},
          {"coherent_allocations", s.coherent_allocations},
          {"areas", areas}};
}

std::string IoTlb::boot_line() const {
  // The kernel prints its pool's end, one past the last byte.
  return fmt::format("software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB)", start().value(),
                     end().value(), (end() - start()) >> 20);
}

}  // namespace swiotlb
