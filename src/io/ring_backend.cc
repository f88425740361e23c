// RingBackend: pools registered with a ring before they take mappings.
#include "swiotlb/io/ring_backend.h"

#include <utility>
#include <vector>

#include "swiotlb/core/check.h"

namespace swiotlb::io {

namespace {

std::shared_ptr<IoTlbBackend> checked_inner(std::shared_ptr<IoTlbBackend> inner) {
  SWIOTLB_CHECK(inner != nullptr, "a ring backend wraps a real backend");
  return inner;
}

}  // namespace

RingBackend::RingBackend(std::shared_ptr<IoTlbBackend> inner)
    : WrappingBackend(checked_inner(std::move(inner))) {}

Status RingBackend::announce(const PoolMemory& memory, const PoolMemoryRequest& request) {
  if (Status inner = WrappingBackend::announce(memory, request); !inner) {
    return inner;
  }
  std::lock_guard guard(lock_);
  if (registrar_ != nullptr) {
    if (Status added = registrar_->add_pool(memory.start, memory.bytes); !added) {
      return make_error(added.error().code(), "pool {}: {}", request.name, added.error().message());
    }
  }
  live_[memory.start.value()] = memory.bytes;
  return {};
}

void RingBackend::release(PoolMemory memory) noexcept {
  {
    std::lock_guard guard(lock_);
    if (live_.erase(memory.start.value()) != 0 && registrar_ != nullptr) {
      registrar_->remove_pool(memory.start);
    }
  }
  WrappingBackend::release(std::move(memory));
}

Status RingBackend::attach(PoolRegistrar* registrar) {
  std::lock_guard guard(lock_);
  if (registrar_ != nullptr) {
    return make_error(Errc::invalid_argument,
                      "a ring backend serves one io device at a time; one is attached");
  }
  std::vector<PhysAddr> added;
  for (const auto& [start, bytes] : live_) {
    if (Status ok = registrar->add_pool(PhysAddr(start), bytes); !ok) {
      for (PhysAddr a : added) {
        registrar->remove_pool(a);
      }
      return ok;
    }
    added.push_back(PhysAddr(start));
  }
  registrar_ = registrar;
  return {};
}

void RingBackend::detach(PoolRegistrar* registrar) {
  std::lock_guard guard(lock_);
  if (registrar_ == registrar) {
    registrar_ = nullptr;
  }
}

std::size_t RingBackend::live_pools() const {
  std::lock_guard guard(lock_);
  return live_.size();
}

}  // namespace swiotlb::io
