// A backend for tests: the real one, with refusals on demand for the pools
// that come after creation (grown and transient), and for the configured
// pools above a size, as a system out of memory would refuse them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "swiotlb/iotlb/backend.h"

namespace swiotlb::testing {

class FailingBackend final : public IoTlbBackend {
 public:
  explicit FailingBackend(std::shared_ptr<IoTlbBackend> real = make_region_backend({}))
      : real_(std::move(real)) {}

  // The next `count` allocations for grown or transient pools fail.
  void fail_next(std::uint32_t count) { fail_next_.store(count); }
  // Allocations for grown or transient pools above `bytes` fail.
  void refuse_above(std::uint64_t bytes) { refuse_above_.store(bytes); }
  // Allocations for the configured pools above `bytes` fail.
  void refuse_configured_above(std::uint64_t bytes) { refuse_configured_above_.store(bytes); }

  std::uint64_t refusals() const { return refusals_.load(); }
  std::uint64_t announcements() const { return announcements_.load(); }

  Result<PoolMemory> allocate(const PoolMemoryRequest& request) override {
    if (request.kind != PoolKind::configured) {
      std::uint32_t left = fail_next_.load();
      while (left != 0 && !fail_next_.compare_exchange_weak(left, left - 1)) {
      }
      if (left != 0 || request.bytes > refuse_above_.load()) {
        refusals_.fetch_add(1);
        return make_error(Errc::system, "mmap of {} bytes refused (injected failure)",
                          request.bytes);
      }
    } else if (request.bytes > refuse_configured_above_.load()) {
      refusals_.fetch_add(1);
      return make_error(Errc::system, "mmap of {} bytes refused (injected failure)", request.bytes);
    }
    return real_->allocate(request);
  }
  Status announce(const PoolMemory& memory, const PoolMemoryRequest& request) override {
    announcements_.fetch_add(1);
    return real_->announce(memory, request);
  }
  void release(PoolMemory memory) noexcept override { real_->release(std::move(memory)); }
  Clock::time_point now() const override { return real_->now(); }
  Maintenance maintenance() const override { return real_->maintenance(); }

 private:
  std::shared_ptr<IoTlbBackend> real_;
  std::atomic<std::uint32_t> fail_next_{0};
  std::atomic<std::uint64_t> refuse_above_{~std::uint64_t{0}};
  std::atomic<std::uint64_t> refuse_configured_above_{~std::uint64_t{0}};
  std::atomic<std::uint64_t> refusals_{0};
  std::atomic<std::uint64_t> announcements_{0};
};

}  // namespace swiotlb::testing
