// Device: configuration checks, reachability and teardown.
#include "swiotlb/dma/device.h"

#include <fmt/format.h>

#include <algorithm>

#include "dma_bounce.h"
#include "swiotlb/core/log.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

namespace {

std::atomic<std::uint32_t> next_device_id{1};

// The kernel's min_not_zero().
std::uint64_t min_not_zero(std::uint64_t a, std::uint64_t b) {
  if (a == 0) {
    return b;
  }
  return b == 0 ? a : std::min(a, b);
}

}  // namespace

Result<std::unique_ptr<Device>> Device::create(DeviceConfig config, IoTlb* io_tlb) {
  if (config.dma_mask == 0 || config.coherent_dma_mask == 0) {
    return make_error(Errc::invalid_argument, "device {}: a DMA mask of 0 reaches nothing",
                      config.name);
  }
  const std::uint64_t boundary = config.seg_boundary_mask;
  if ((boundary & (boundary + 1)) != 0) {
    return make_error(Errc::invalid_argument,
                      "device {}: segment boundary mask {:#x} is not of the form 2^n - 1",
                      config.name, boundary);
  }
  if (config.windows && !config.dma_ranges.is_identity()) {
    return make_error(Errc::invalid_argument,
                      "device {}: has both dma ranges and a window table; the table is its "
                      "whole reach",
                      config.name);
  }
  if (config.max_segment_size == 0) {
    return make_error(Errc::invalid_argument, "device {}: max_segment_size of 0", config.name);
  }
  const std::uint32_t id = next_device_id.fetch_add(1, std::memory_order_relaxed);
  return std::unique_ptr<Device>(new Device(std::move(config), io_tlb, id));
}

Device::Device(DeviceConfig config, IoTlb* io_tlb, std::uint32_t id)
    : config_(std::move(config)),
      io_tlb_(io_tlb),
      id_(id),
      streaming_reach_(*this, dma_limit()),
      coherent_reach_(*this, coherent_limit()),
      debug_(dma_debug_enabled(config_.debug)) {
  streaming_pools_ = choose_pools(dma_limit());
  coherent_pools_ = choose_pools(coherent_limit());
  one_pool_ = sees_one_pool_directly();
  if (one_pool_) {
    const PoolInfo pool = io_tlb_->pool_info(streaming_pools_[0].pool);
    one_pool_start_ = pool.start;
    one_pool_end_ = pool.end;
    BounceRequest request = bounce_request(*this, PhysAddr(), 0, Direction::to_device);
    request.pool = streaming_pools_[0].pool;
    request.pool_dma_start = streaming_pools_[0].dma_start;
    has_route_ = io_tlb_->streaming_route(request, route_);
  }
}

bool Device::sees_one_pool_directly() const {
  if (io_tlb_ == nullptr || !io_tlb_->force_bounce() || streaming_pools_.size() != 1 ||
      config_.iommu || config_.translator || config_.windows || !config_.dma_ranges.is_identity()) {
    return false;
  }
  const PoolInfo pool = io_tlb_->pool_info(streaming_pools_[0].pool);
  const std::uint64_t bytes = pool.end - pool.start;
  return streaming_pools_[0].dma_start.value() == pool.start.value() &&
         dma_capable(DmaAddr(pool.start.value()), bytes);
}

std::vector<PoolChoice> Device::choose_pools(std::uint64_t limit) const {
  std::vector<PoolChoice> order;
  if (io_tlb_ == nullptr) {
    return order;
  }
  // Highest pool first: a device that reaches the high pool leaves the low
  // one to the devices that reach nothing else.
  for (std::uint32_t i = io_tlb_->pool_count(); i-- > 0;) {
    const PoolInfo info = io_tlb_->pool_info(i);
    const std::uint64_t bytes = info.end - info.start;
    const DmaAddr first = phys_to_dma(info.start, bytes);
    if (first.value() == kInvalidAddress || first.value() + (bytes - 1) > limit) {
      continue;
    }
    if (!order.empty() && !io_tlb_->high_overflows_to_low()) {
      break;
    }
    order.push_back({i, first});
  }
  return order;
}

std::optional<DmaAddr> Device::Reach::pool_dma_start(PhysAddr start, std::uint64_t bytes) const {
  const DmaAddr first = device_.phys_to_dma(start, bytes);
  if (first.value() == kInvalidAddress || first.value() + (bytes - 1) > limit_) {
    return std::nullopt;
  }
  return first;
}

DmaAddr Device::phys_to_dma(PhysAddr addr, std::uint64_t size) const {
  std::uint64_t machine = addr.value();
  if (config_.translator) {
    machine = config_.translator->range_to_machine(addr, size);
    if (machine == kInvalidAddress) {
      return DmaAddr(kInvalidAddress);
    }
  }
  if (config_.windows) {
    return config_.windows->to_dma(PhysAddr(machine), size);
  }
  return config_.dma_ranges.to_dma(PhysAddr(machine), size);
}

PhysAddr Device::dma_to_phys(DmaAddr addr, std::uint64_t size) const {
  const PhysAddr machine = config_.windows ? config_.windows->to_phys(addr, size)
                                           : config_.dma_ranges.to_phys(addr, size);
  if (!config_.translator || machine.value() == kInvalidAddress) {
    return machine;
  }
  return config_.translator->to_pseudo(machine.value());
}

bool Device::dma_supported(std::uint64_t mask) const {
  if (io_tlb_ == nullptr) {
    return true;
  }
  for (std::uint32_t i = 0; i < io_tlb_->pool_count(); ++i) {
    const PoolInfo info = io_tlb_->pool_info(i);
    const std::uint64_t bytes = info.end - info.start;
    const DmaAddr first = phys_to_dma(info.start, bytes);
    if (first.value() != kInvalidAddress && first.value() + (bytes - 1) <= mask) {
      return true;
    }
  }
  return false;
}

Device::~Device() {
  const std::uint64_t live = debug_.live_direct() + debug_.live_coherent() + live_bounced();
  if (live != 0) {
    log_warning(fmt::format("device {} torn down with {} live mappings", config_.name, live));
  }
}

std::uint64_t Device::live_bounced() const {
  return io_tlb_ != nullptr ? io_tlb_->count_owned(id_) : 0;
}

Status Device::close() {
  const std::uint64_t direct = debug_.live_direct();
  const std::uint64_t coherent = debug_.live_coherent();
  const std::uint64_t bounced = live_bounced();
  if (direct + coherent + bounced != 0) {
    return debug_.record(make_error(
        Errc::busy,
        "device {} torn down with {} live mappings ({} direct, {} coherent in normal memory, {} "
        "bounced)",
        config_.name, direct + coherent + bounced, direct, coherent, bounced));
  }
  return {};
}

std::uint64_t Device::dma_limit() const {
  return min_not_zero(config_.dma_mask, config_.bus_dma_limit);
}

std::uint64_t Device::coherent_limit() const {
  return min_not_zero(config_.coherent_dma_mask, config_.bus_dma_limit);
}

bool Device::dma_capable(DmaAddr addr, std::uint64_t size) const {
  if (addr.value() == kInvalidAddress || size == 0) {
    return false;
  }
  const std::uint64_t last = addr.value() + (size - 1);
  return last >= addr.value() && last <= dma_limit();
}

void Device::cache_sync(CacheOp op, PhysAddr addr, std::uint64_t size, Direction dir) {
  if (config_.coherent) {
    return;
  }
  cache_syncs_.fetch_add(1, std::memory_order_relaxed);
  if (!config_.cache_hook) {
    return;
  }
  if (config_.translator) {
    if (config_.cache_hook_foreign_only && !config_.translator->foreign(addr, size)) {
      return;
    }
    addr = PhysAddr(config_.translator->to_machine(addr));
  }
  config_.cache_hook(op, addr, size, dir);
}

DeviceStats Device::stats() const {
  DeviceStats s;
  s.debug_errors = debug_.errors();
  s.map_failures = map_failures_.load(std::memory_order_relaxed);
  s.cache_syncs = cache_syncs_.load(std::memory_order_relaxed);
  s.live_direct = debug_.live_direct();
  s.live_coherent = debug_.live_coherent();
  s.live_bounced = live_bounced();
  return s;
}

}  // namespace swiotlb
