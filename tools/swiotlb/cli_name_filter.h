// The pattern language of `swiotlb bench --filter`: a small subset of
// regular expressions, matched in time linear in the name (a set of NFA
// states, no backtracking and no recursion), so no pattern can exhaust the
// stack or run for long.
//
// Accepted: literal characters, `.` (any character), `\` before a character
// to take it literally, the quantifiers `*`, `+` and `?` after one of those,
// `^` at the start and `$` at the end of an alternative, and `|` between
// alternatives. Groups `( )`, classes `[ ]` and counted repeats `{ }` are
// refused with an error that names the character. A match may start and end
// anywhere in the name unless anchored.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"

namespace swiotlb::cli {

// Longest pattern accepted.
inline constexpr std::size_t kMaxFilterLength = 1024;

class NameFilter {
 public:
  // Errors: Errc::invalid_argument naming the pattern (a prefix of it when
  // long) and the first character that is not supported.
  static Result<NameFilter> compile(std::string_view pattern);

  // True when the pattern matches somewhere in `name` (an empty pattern
  // matches every name). Thread-compatible; allocates a small state set.
  bool matches(std::string_view name) const;

 private:
  struct Atom {
    bool any = false;       // `.`
    char literal = 0;       // when !any
    bool repeat = false;    // `*` or `+` (the `+` adds a required copy first)
    bool optional = false;  // `*` or `?`
  };
  struct Alternative {
    std::vector<Atom> atoms;
    bool anchored_start = false;
    bool anchored_end = false;
  };

  static bool match_alternative(const Alternative& alt, std::string_view name);

  std::vector<Alternative> alternatives_;
};

}  // namespace swiotlb::cli
