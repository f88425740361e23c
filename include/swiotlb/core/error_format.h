// make_error(): an Error with a fmt-style message, for the library's own
// sources, its tests and the command. Not part of the installed interface:
// error.h includes it only when SWIOTLB_INTERNAL_FORMAT is defined, as the
// build does for those (the swiotlb_internal target).
#pragma once

#include <fmt/format.h>

#include <utility>

#include "swiotlb/core/error.h"

namespace swiotlb {

template <class... Args>
Error make_error(Errc code, fmt::format_string<Args...> format, Args&&... args) {
  return Error(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace swiotlb
