// What the C API's handles are, and the wrapper every C entry point runs its
// body in: C++ errors and exceptions become a swiotlb_status plus the
// calling thread's last-error message.
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "swiotlb.h"
#include "swiotlb/core/error.h"
#include "swiotlb/dma/device.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iova/iova_domain.h"

struct swiotlb_tlb {
  std::unique_ptr<swiotlb::IoTlb> tlb;
  std::atomic<std::uint64_t> devices{0};  // live swiotlb_device handles made on it
};

struct swiotlb_device {
  std::unique_ptr<swiotlb::Device> device;
  swiotlb_tlb* tlb = nullptr;
};

struct swiotlb_iova_domain {
  std::unique_ptr<swiotlb::iova::IovaDomain> domain;
};

namespace swiotlb::capi {

// Records `message` as this thread's last error and returns `status`.
swiotlb_status fail(swiotlb_status status, std::string_view message);
// The same for an Error of the C++ API.
swiotlb_status fail(const Error& error);

// A NULL argument the call needs: INVALID_ARGUMENT naming it.
swiotlb_status null_argument(std::string_view function, std::string_view argument);

// Runs `body` (which returns a swiotlb_status), turning any exception into
// a status: no exception crosses the C API.
template <class Body>
swiotlb_status guarded(std::string_view function, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SWIOTLB_E_NO_MEMORY, std::string(function) + ": out of memory");
  } catch (const std::exception& e) {
    return fail(SWIOTLB_E_SYSTEM, std::string(function) + ": " + e.what());
  } catch (...) {
    return fail(SWIOTLB_E_SYSTEM, std::string(function) + ": an unknown exception");
  }
}

// Validates a direction from C: any value outside the enum is refused.
bool direction_from_c(swiotlb_direction dir, Direction* out);

}  // namespace swiotlb::capi
