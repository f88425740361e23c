// XenExchangeBackend: each pool exchanged below its devices' limit before
// it takes mappings, and its frames handed back when it goes.
#include "swiotlb/dma/xen_exchange_backend.h"

#include <fmt/format.h>

#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"

namespace swiotlb {

namespace {

// The whole pages a pool's memory covers.
std::uint64_t pool_pages_bytes(const PoolMemory& memory) {
  return (memory.bytes + kPageSize - 1) & ~(kPageSize - 1);
}

}  // namespace

Result<std::shared_ptr<XenExchangeBackend>> XenExchangeBackend::create(
    XenExchangeBackendOptions options) {
  if (options.inner == nullptr || options.hypervisor == nullptr) {
    return make_error(Errc::invalid_argument,
                      "a Xen exchange backend needs a backend to wrap and a hypervisor to "
                      "exchange frames with");
  }
  if (options.max_pools == 0 || options.limit == 0 || options.high_limit == 0) {
    return make_error(Errc::invalid_argument,
                      "a Xen exchange backend with room for {} pools (at least 1) and limits "
                      "{:#x} and {:#x} (not 0)",
                      options.max_pools, options.limit, options.high_limit);
  }
  return std::shared_ptr<XenExchangeBackend>(new XenExchangeBackend(std::move(options)));
}

XenExchangeBackend::XenExchangeBackend(XenExchangeBackendOptions options)
    : WrappingBackend(options.inner),
      options_(std::move(options)),
      translator_(std::make_shared<ExchangedTranslator>(options_.base, options_.max_pools)) {}

Status XenExchangeBackend::announce(const PoolMemory& memory, const PoolMemoryRequest& request) {
  if (Status inner = WrappingBackend::announce(memory, request); !inner) {
    return inner;
  }
  Status fixed = fix_up(memory, request);
  if (!fixed) {
    std::lock_guard guard(lock_);
    ++stats_.failed;
  }
  return fixed;
}

Status XenExchangeBackend::fix_up(const PoolMemory& memory, const PoolMemoryRequest& request) {
  const std::uint64_t bytes = pool_pages_bytes(memory);
  const std::uint64_t limit = request.tier == 0 ? options_.limit : options_.high_limit;
  // A pool whose pages already lie in one run below the limit is left as
  // it is, as xen_swiotlb_fixup leaves one.
  const std::uint64_t machine = translator_->range_to_machine(memory.start, bytes);
  if (machine != kInvalidAddress && machine + (bytes - 1) >= machine &&
      machine + (bytes - 1) <= limit) {
    std::lock_guard guard(lock_);
    ++stats_.reachable;
    return {};
  }
  const std::uint64_t frames = bytes >> kPageShift;
  Result<std::uint64_t> first_mfn =
      options_.hypervisor->exchange(frames, limit, kSegmentBytes >> kPageShift);
  if (!first_mfn) {
    return make_error(first_mfn.error().code(),
                      "pool {} ({} frames at {:#x}): Xen's exchange for machine frames below "
                      "{:#x} failed: {}",
                      request.name, frames, memory.start.value(), limit,
                      first_mfn.error().message());
  }
  if (Status added = translator_->add_run(memory.start, bytes, *first_mfn); !added) {
    // Of no use to the guest: the hypervisor has them back.
    (void)options_.hypervisor->give_back(*first_mfn, frames);
    return make_error(added.error().code(), "pool {}: the frames Xen's exchange gave: {}",
                      request.name, added.error().message());
  }
  std::lock_guard guard(lock_);
  ++stats_.exchanged;
  stats_.live_frames += frames;
  return {};
}

void XenExchangeBackend::release(PoolMemory memory) noexcept {
  // No reader reaches the pool any more (the IoTlb's protocol): its pages
  // go back to their own frames, its frames to the hypervisor. Only an
  // error's or a warning's text can fail here (no memory for it); a release
  // cannot fail, so that case loses the warning, not the process.
  try {
    if (Result<ExchangedRun> run = translator_->remove_run(memory.start)) {
      const std::uint64_t frames = run->bytes >> kPageShift;
      Status back = options_.hypervisor->give_back(run->first_mfn, frames);
      {
        std::lock_guard guard(lock_);
        ++stats_.given_back;
        stats_.live_frames -= frames;
      }
      if (!back) {
        log_warning(fmt::format("Xen exchange: frames of the pool at {:#x} not handed back: {}",
                                memory.start.value(), back.error().message()));
      }
    }
  } catch (...) {
  }
  WrappingBackend::release(std::move(memory));
}

XenExchangeStats XenExchangeBackend::stats() const {
  std::lock_guard guard(lock_);
  return stats_;
}

}  // namespace swiotlb
