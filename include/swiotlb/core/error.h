// Errors are values. Every public operation that can fail returns a
// Result<T> (a T or an Error) or a Status (nothing or an Error); none throws
// across the public API. An Error's message is written for the person who
// has to act on it: what was asked, what limit stood in the way, the numbers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "swiotlb/core/check.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

enum class Errc {
  invalid_argument,   // malformed or out-of-range input
  out_of_range,       // an address or size beyond what the object covers
  pool_full,          // no run of free slots fits the request
  unreachable,        // the device cannot reach the memory
  not_mapped,         // unmap or sync of an address that holds no mapping
  mapping_mismatch,   // unmap or sync whose size or direction differs from the map
  busy,               // the object still has live mappings
  search_would_spin,  // the modelled kernel search would never terminate
  system,             // the operating system refused (errno in the message)
  parse,              // a file or command line that does not parse
  timed_out,          // a wait for room ended at its deadline
  limit_reached,      // growth would pass the configured maximum
};

SWIOTLB_API std::string_view to_string(Errc code);

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Errc code_;
  std::string message_;
};

// The system's text for an errno value (what strerror gives), safe to call
// from any thread.
SWIOTLB_API std::string errno_text(int err);

// A value or an Error, in the manner of std::expected (which this C++20 code
// base cannot use yet).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  // REQUIRES: has_value().
  T& value() & {
    SWIOTLB_CHECK(has_value(), "value() of a Result that holds an error");
    return std::get<0>(state_);
  }
  const T& value() const& {
    SWIOTLB_CHECK(has_value(), "value() of a Result that holds an error");
    return std::get<0>(state_);
  }
  T&& value() && {
    SWIOTLB_CHECK(has_value(), "value() of a Result that holds an error");
    return std::get<0>(std::move(state_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !has_value().
  const Error& error() const& {
    SWIOTLB_CHECK(!has_value(), "error() of a Result that holds a value");
    return std::get<1>(state_);
  }
  Error&& error() && {
    SWIOTLB_CHECK(!has_value(), "error() of a Result that holds a value");
    return std::get<1>(std::move(state_));
  }

 private:
  std::variant<T, Error> state_;
};

// Success, or an Error. A success holds no Error at all (one flag to set
// and test): every layer of a map and unmap returns one.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT

  static Status ok() { return {}; }

  bool has_value() const { return !error_.has_value(); }
  explicit operator bool() const { return !error_.has_value(); }

  // REQUIRES: !has_value().
  const Error& error() const& {
    SWIOTLB_CHECK(error_.has_value(), "error() of a Status that succeeded");
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

}  // namespace swiotlb

// The library's own sources build messages with fmt (make_error); a program
// that uses the library sees neither fmt nor the helper.
#ifdef SWIOTLB_INTERNAL_FORMAT
#include "swiotlb/core/error_format.h"
#endif
