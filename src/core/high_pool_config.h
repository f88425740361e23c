// The `swiotlb_high=` parameter (internal to core/config.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/config.h"

namespace swiotlb {

// One `swiotlb_high=` word of the kernel's part of a command line (the
// words before `--`), as config.cc split it.
struct HighPoolWord {
  std::string_view word;   // the whole word, for messages
  std::string_view value;  // what follows '=', quotes removed
  std::size_t column = 0;  // 1-based column of the word in the text
};

// `text`, or its first 64 bytes and a note of its length: how an error or a
// warning of the parser quotes a token, so that a 10 MB word stays readable.
std::string quoted_token(std::string_view text);

// Applies the words in order to config: each sets nslabs and, when given,
// nareas, replacing what an earlier word set (with a warning, as a repeated
// `swiotlb=` has); the result is rounded as `swiotlb=` rounds, with the
// same warnings. Errors: Errc::parse naming the word and its column.
Status apply_high_pool(const std::vector<HighPoolWord>& words, SwiotlbConfig& config);

}  // namespace swiotlb
