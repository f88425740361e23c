#include "cli_name_filter.h"

#include "cli_limits.h"

namespace swiotlb::cli {
namespace {

Error unsupported(std::string_view pattern, std::size_t at, std::string_view why) {
  return make_error(Errc::invalid_argument,
                    "--filter '{}': '{}' at column {} is not supported ({}); the filter takes "
                    "literals, '.', '\\', '*', '+', '?', '^', '$' and '|'",
                    quote_prefix(pattern), pattern[at], at + 1, why);
}

}  // namespace

Result<NameFilter> NameFilter::compile(std::string_view pattern) {
  if (pattern.size() > kMaxFilterLength) {
    return make_error(Errc::invalid_argument, "--filter '{}' is {} characters long: at most {}",
                      quote_prefix(pattern), pattern.size(), kMaxFilterLength);
  }
  NameFilter filter;
  if (pattern.empty()) {
    return filter;
  }
  filter.alternatives_.emplace_back();
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    Alternative& alt = filter.alternatives_.back();
    const char c = pattern[i];
    switch (c) {
      case '|':
        filter.alternatives_.emplace_back();
        continue;
      case '^':
        if (!alt.atoms.empty() || alt.anchored_start) {
          return unsupported(pattern, i, "'^' only at the start of an alternative");
        }
        alt.anchored_start = true;
        continue;
      case '$':
        if (i + 1 < pattern.size() && pattern[i + 1] != '|') {
          return unsupported(pattern, i, "'$' only at the end of an alternative");
        }
        alt.anchored_end = true;
        continue;
      case '*':
      case '+':
      case '?': {
        if (alt.atoms.empty() || alt.atoms.back().repeat || alt.atoms.back().optional) {
          return unsupported(pattern, i, "a quantifier needs a character before it");
        }
        Atom& last = alt.atoms.back();
        if (c == '+') {
          Atom more = last;
          more.repeat = true;
          more.optional = true;
          alt.atoms.push_back(more);
        } else {
          last.repeat = c == '*';
          last.optional = true;
        }
        continue;
      }
      case '(':
      case ')':
        return unsupported(pattern, i, "no groups; use '|' between whole alternatives");
      case '[':
      case ']':
        return unsupported(pattern, i, "no character classes");
      case '{':
      case '}':
        return unsupported(pattern, i, "no counted repeats");
      case '\\':
        if (i + 1 == pattern.size()) {
          return unsupported(pattern, i, "'\\' needs a character after it");
        }
        ++i;
        alt.atoms.push_back(Atom{.literal = pattern[i]});
        continue;
      case '.':
        alt.atoms.push_back(Atom{.any = true});
        continue;
      default:
        alt.atoms.push_back(Atom{.literal = c});
        continue;
    }
  }
  return filter;
}

// An NFA over the atoms: state i means "atoms before i matched". The set is
// a bitmap of size atoms+1, advanced once per character.
bool NameFilter::match_alternative(const Alternative& alt, std::string_view name) {
  const std::size_t n = alt.atoms.size();
  std::vector<char> states(n + 1, 0);
  std::vector<char> next(n + 1, 0);
  const auto close = [&](std::vector<char>& set) {
    for (std::size_t i = 0; i < n; ++i) {
      if (set[i] != 0 && alt.atoms[i].optional) {
        set[i + 1] = 1;
      }
    }
  };
  const auto accepting = [&](const std::vector<char>& set, bool at_end) {
    return set[n] != 0 && (!alt.anchored_end || at_end);
  };
  states[0] = 1;
  close(states);
  if (accepting(states, name.empty())) {
    return true;
  }
  for (std::size_t pos = 0; pos < name.size(); ++pos) {
    std::fill(next.begin(), next.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const Atom& atom = alt.atoms[i];
      if (states[i] == 0 || (!atom.any && atom.literal != name[pos])) {
        continue;
      }
      next[i + 1] = 1;
      if (atom.repeat) {
        next[i] = 1;
      }
    }
    if (!alt.anchored_start) {
      next[0] = 1;  // a match may start at the next character
    }
    close(next);
    states.swap(next);
    if (accepting(states, pos + 1 == name.size())) {
      return true;
    }
  }
  return false;
}

bool NameFilter::matches(std::string_view name) const {
  if (alternatives_.empty()) {
    return true;
  }
  for (const Alternative& alt : alternatives_) {
    if (match_alternative(alt, name)) {
      return true;
    }
  }
  return false;
}

}  // namespace swiotlb::cli
