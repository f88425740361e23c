// SWIOTLB_CHECK: an internal invariant, checked where checks are enabled.
//
// A check states something the code relies on and that no input can make
// false (an input that can is an Error, never a check). Checks are on in
// Debug builds and in the sanitizer builds that CI runs, and off in Release,
// where they cost nothing: the condition is not evaluated. A build turns
// them on or off with the CMake option SWIOTLB_CHECKS, which defines
// SWIOTLB_ENABLE_CHECKS.
//
// A failed check prints the condition, the reason and where it is, and
// aborts: the state it guarded can no longer be trusted.
//
// Thread safety: a check may fail on any thread; the report is one write.
#pragma once

namespace swiotlb::detail {

[[noreturn]] void check_failed(const char* condition, const char* reason, const char* file,
                               int line) noexcept;

}  // namespace swiotlb::detail

#if defined(SWIOTLB_ENABLE_CHECKS)
#define SWIOTLB_CHECK(condition, reason) \
  ((condition) ? static_cast<void>(0)    \
               : ::swiotlb::detail::check_failed(#condition, reason, __FILE__, __LINE__))
#define SWIOTLB_CHECKS_ENABLED 1
#else
// Not evaluated, but still compiled, so that a check cannot rot.
#define SWIOTLB_CHECK(condition, reason) static_cast<void>(sizeof((condition) ? 1 : 0))
#define SWIOTLB_CHECKS_ENABLED 0
#endif
