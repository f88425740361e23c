// Status codes, the per-thread last-error message and the version.
#include <string>

#include "capi_internal.h"

namespace swiotlb::capi {
namespace {

// One message per thread, as errno is one value per thread.
thread_local std::string last_error;

swiotlb_status status_of(Errc code) {
  switch (code) {
    case Errc::invalid_argument:
      return SWIOTLB_E_INVALID_ARGUMENT;
    case Errc::out_of_range:
      return SWIOTLB_E_OUT_OF_RANGE;
    case Errc::pool_full:
      return SWIOTLB_E_POOL_FULL;
    case Errc::unreachable:
      return SWIOTLB_E_UNREACHABLE;
    case Errc::not_mapped:
      return SWIOTLB_E_NOT_MAPPED;
    case Errc::mapping_mismatch:
      return SWIOTLB_E_MAPPING_MISMATCH;
    case Errc::busy:
      return SWIOTLB_E_BUSY;
    case Errc::search_would_spin:
      return SWIOTLB_E_SEARCH_WOULD_SPIN;
    case Errc::system:
      return SWIOTLB_E_SYSTEM;
    case Errc::parse:
      return SWIOTLB_E_PARSE;
    case Errc::timed_out:
      return SWIOTLB_E_TIMED_OUT;
    case Errc::limit_reached:
      return SWIOTLB_E_LIMIT_REACHED;
  }
  return SWIOTLB_E_SYSTEM;
}

}  // namespace

swiotlb_status fail(swiotlb_status status, std::string_view message) {
  try {
    last_error.assign(message);
  } catch (...) {
    last_error.clear();  // no room even for the message: the status stands alone
  }
  return status;
}

swiotlb_status fail(const Error& error) {
  return fail(status_of(error.code()), error.message());
}

swiotlb_status null_argument(std::string_view function, std::string_view argument) {
  std::string message(function);
  message += ": ";
  message += argument;
  message += " is NULL";
  return fail(SWIOTLB_E_INVALID_ARGUMENT, message);
}

bool direction_from_c(swiotlb_direction dir, Direction* out) {
  switch (dir) {
    case SWIOTLB_DMA_BIDIRECTIONAL:
      *out = Direction::bidirectional;
      return true;
    case SWIOTLB_DMA_TO_DEVICE:
      *out = Direction::to_device;
      return true;
    case SWIOTLB_DMA_FROM_DEVICE:
      *out = Direction::from_device;
      return true;
  }
  return false;
}

}  // namespace swiotlb::capi

extern "C" {

const char* swiotlb_last_error(void) {
  return swiotlb::capi::last_error.c_str();
}

const char* swiotlb_status_name(swiotlb_status status) {
  switch (status) {
    case SWIOTLB_OK:
      return "ok";
    case SWIOTLB_E_INVALID_ARGUMENT:
      return "invalid_argument";
    case SWIOTLB_E_OUT_OF_RANGE:
      return "out_of_range";
    case SWIOTLB_E_POOL_FULL:
      return "pool_full";
    case SWIOTLB_E_UNREACHABLE:
      return "unreachable";
    case SWIOTLB_E_NOT_MAPPED:
      return "not_mapped";
    case SWIOTLB_E_MAPPING_MISMATCH:
      return "mapping_mismatch";
    case SWIOTLB_E_BUSY:
      return "busy";
    case SWIOTLB_E_SEARCH_WOULD_SPIN:
      return "search_would_spin";
    case SWIOTLB_E_SYSTEM:
      return "system";
    case SWIOTLB_E_PARSE:
      return "parse";
    case SWIOTLB_E_TIMED_OUT:
      return "timed_out";
    case SWIOTLB_E_LIMIT_REACHED:
      return "limit_reached";
    case SWIOTLB_E_NO_MEMORY:
      return "no_memory";
    case SWIOTLB_E_BUFFER_TOO_SMALL:
      return "buffer_too_small";
  }
  return "unknown";
}

const char* swiotlb_version(void) {
  return SWIOTLB_VERSION_STRING;
}

}  // extern "C"
