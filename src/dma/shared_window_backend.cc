// SharedWindowBackend: pools handed to a device process as memfd windows
// before they take mappings, and taken back after.
#include "swiotlb/dma/shared_window_backend.h"

#include <fmt/format.h>

#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"

namespace swiotlb {

Result<std::shared_ptr<SharedWindowBackend>> SharedWindowBackend::create(
    SharedWindowBackendOptions options) {
  if (options.inner == nullptr || options.channel == nullptr) {
    return make_error(Errc::invalid_argument,
                      "a shared-window backend needs the real backend to wrap and a channel to "
                      "the device process");
  }
  if (options.dma_base % kPageSize != 0 || options.max_windows == 0) {
    return make_error(Errc::invalid_argument,
                      "a shared-window backend with DMA base {:#x} (must be page-aligned) and "
                      "room for {} windows (at least 1)",
                      options.dma_base, options.max_windows);
  }
  return std::shared_ptr<SharedWindowBackend>(new SharedWindowBackend(std::move(options)));
}

SharedWindowBackend::SharedWindowBackend(SharedWindowBackendOptions options)
    : WrappingBackend(options.inner),
      options_(std::move(options)),
      table_(std::make_shared<WindowTable>(options_.max_windows)),
      next_dma_(options_.dma_base) {}

Status SharedWindowBackend::announce(const PoolMemory& memory, const PoolMemoryRequest& request) {
  Status published = publish(memory, request);
  std::lock_guard guard(lock_);
  ++(published ? stats_.announced : stats_.refused);
  stats_.live += published ? 1U : 0U;
  return published;
}

Status SharedWindowBackend::publish(const PoolMemory& memory, const PoolMemoryRequest& request) {
  if (Status inner = WrappingBackend::announce(memory, request); !inner) {
    return inner;
  }
  if (memory.region == nullptr || memory.region->kind() != RegionKind::memfd ||
      memory.region->fd() < 0) {
    return make_error(Errc::invalid_argument,
                      "pool {}: its memory is not a memfd, so the device process cannot be given "
                      "it (a shared window's pools are memfds; a high pool is not)",
                      request.name);
  }
  const std::uint64_t bytes = memory.region->size();
  std::uint64_t dma = 0;
  std::uint32_t number = 0;
  {
    // The address range and number are taken now and never reused, also
    // when the announcement fails below.
    std::lock_guard guard(lock_);
    dma = next_dma_;
    number = next_number_++;
    next_dma_ += (bytes + kPageSize - 1) / kPageSize * kPageSize + kPageSize;
  }
  const window::Message message =
      number == 0 ? window::Message{window::kHello, window::kProtocolVersion, bytes, dma, 0, 0}
                  : window::Message{window::kAddWindow, number, bytes, dma, 0, 0};
  Result<window::Message> answer = options_.channel->exchange(message, memory.region->fd());
  if (!answer) {
    return make_error(answer.error().code(),
                      "pool {}: handing its window to the device process: {}", request.name,
                      answer.error().message());
  }
  if ((*answer)[1] != window::kOk) {
    return make_error(Errc::system,
                      "pool {}: the device process refused window {} ({} bytes at DMA {:#x}), "
                      "status {}",
                      request.name, number, bytes, dma, (*answer)[1]);
  }
  if (Status added = table_->add({memory.start.value(), dma, bytes, number}); !added) {
    // The device process maps it, but the host will never hand out an
    // address in it; take it back there.
    (void)options_.channel->exchange({window::kRemoveWindow, number, 0, 0, 0, 0});
    return make_error(added.error().code(), "pool {}: {}", request.name, added.error().message());
  }
  std::lock_guard guard(lock_);
  number_[memory.start.value()] = number;
  return {};
}

void SharedWindowBackend::release(PoolMemory memory) noexcept {
  std::optional<std::uint32_t> number;
  {
    std::lock_guard guard(lock_);
    if (auto it = number_.find(memory.start.value()); it != number_.end()) {
      number = it->second;
      number_.erase(it);
    }
  }
  if (number) {
    (void)table_->remove(*number);
    // Window 0 stays until goodbye; after it the device process is gone
    // with all its mappings.
    if (*number != 0 && !options_.channel->closed()) {
      Result<window::Message> answer =
          options_.channel->exchange({window::kRemoveWindow, *number, 0, 0, 0, 0});
      if (!answer || (*answer)[1] != window::kOk) {
        log_warning(fmt::format(
            "shared window {}: the device process was not told to unmap it: {}", *number,
            answer ? fmt::format("status {}", (*answer)[1]) : answer.error().message()));
      }
    }
  }
  WrappingBackend::release(std::move(memory));
  if (number) {
    // Counted once the window is gone on both sides.
    std::lock_guard guard(lock_);
    ++stats_.released;
    --stats_.live;
  }
}

SharedWindowStats SharedWindowBackend::stats() const {
  std::lock_guard guard(lock_);
  return stats_;
}

}  // namespace swiotlb
