// The fast path of the trace reader: an event line exactly as the trace
// writer (trace_writer.h) and the capture tools write it. Private to the ops
// layer.
//
// Such a line has its fields in a known order, one space apart, each number
// in the base the writer gives its field (decimal for times, cpus, sizes and
// directions; hex after a lower-case `0x` for addresses, masks and
// attributes), and a '\n' right after its last field. Knowing that, the
// reader need not classify characters through a table, keep a field count or
// carry an error per field: it reads each field where it must be, finds the
// end of the device id and of a decimal number eight bytes at a time
// (swar_bytes.h), and reads the one-digit fields most lines hold in two
// compares. Anything else (a tab, two spaces, a comment, `0X`, a number in
// the other base, a long number, an unknown device, any value the general
// path would reject) makes it decline: the general path then reads the line
// from its start and gives the event or the error. So on every line it
// accepts, the fast path gives exactly the event the general path would; it
// never makes an error.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

#include "hex_digit_values.h"
#include "swar_bytes.h"
#include "swiotlb/ops/trace.h"

namespace swiotlb::ops {

// How far past the start of a line read_canonical_event_line may read: it
// declines a number of more than 15 digits and a device id of more than 64
// bytes as soon as it meets one, so its word loads and its look-aheads stay
// well inside this many bytes (about 300 at most). The caller gives it a
// line only where this many bytes follow in its buffer.
inline constexpr std::size_t kCanonicalLineReach = 512;

namespace canonical {

// The first `n` bytes of `text`, as a little-endian word.
constexpr std::uint64_t prefix_word(std::string_view text, std::size_t n) {
  std::uint64_t word = 0;
  for (std::size_t i = 0; i < n; ++i) {
    word |= std::uint64_t{static_cast<unsigned char>(text[i])} << (8 * i);
  }
  return word;
}

constexpr std::uint64_t kMapWord = prefix_word("map ", 4);
constexpr std::uint64_t kUnmapWord = prefix_word("unmap ", 6);
constexpr std::uint64_t kSyncCpuWord = prefix_word("sync_cpu", 8);
constexpr std::uint64_t kSyncDevWord = prefix_word("sync_dev", 8);

// A device id longer than this is left to the general path.
constexpr unsigned kMaxIdWords = 8;

constexpr std::uint64_t kPowersOf10[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

// Every reader below takes the position of its field and returns the
// position after the character that ends it, or nullptr when the field is
// not in the canonical form. They are forced inline: called once per field,
// they would otherwise pass the position through memory.
#define SWIOTLB_CANONICAL_READER [[gnu::always_inline]] inline

// Reads the op and the space after it.
SWIOTLB_CANONICAL_READER const char* read_op(const char* p, TraceOp& op) {
  const std::uint64_t word = swar::load8(p);
  if ((word & 0xffffffff) == kMapWord) {
    op = TraceOp::map;
    return p + 4;
  }
  if ((word & 0xffffffffffff) == kUnmapWord) {
    op = TraceOp::unmap;
    return p + 6;
  }
  if ((word == kSyncCpuWord || word == kSyncDevWord) && p[8] == ' ') {
    op = word == kSyncCpuWord ? TraceOp::sync_cpu : TraceOp::sync_dev;
    return p + 9;
  }
  return nullptr;
}

// Reads hex digits followed by `end`, two at a time through the pair table
// (hex_digit_values.h): an address of 9 or 10 digits takes five steps, where
// a step per digit took ten, and word-wide range tests for digits and
// letters more instructions still. At most eight steps: a longer run
// declines like any number of more than 15 digits, and the reads stay
// inside the line's reach.
SWIOTLB_CANONICAL_READER const char* read_hex_digits(const char* p, std::uint64_t& out, char end,
                                                     const HexPairValues& pairs) {
  std::uint64_t value = 0;
  const char* q = p;
  for (const char* const last = p + 16; q < last; q += 2) {
    const unsigned pair =
        pairs[static_cast<unsigned char>(q[0]) | static_cast<unsigned char>(q[1]) << 8];
    if (pair == kNotHexPair) {
      break;
    }
    value = (value << 8) | pair;
  }
  if (const unsigned d = kHexValues[static_cast<unsigned char>(*q)]; d < 16) {
    value = (value << 4) | d;
    ++q;
  }
  if (q == p || q - p > 15 || *q != end) {
    return nullptr;
  }
  out = value;
  return q + 1;
}

// Reads decimal digits followed by `end`, eight at a time (swar_bytes.h):
// the digits' count comes from one word, their value from three multiplies,
// where a loop took seven instructions and a branch per digit.
SWIOTLB_CANONICAL_READER const char* read_decimal_digits(const char* p, std::uint64_t& out,
                                                         char end) {
  const std::uint64_t head = swar::load8(p) - swar::kOnes * '0';
  const std::uint64_t head_ends = swar::first_non_digit(head);
  if (head_ends != 0) {
    const unsigned n = swar::first_flagged(head_ends);
    if (n == 0 || p[n] != end) {
      return nullptr;
    }
    out = swar::decimal_value(head, n);
    return p + n + 1;
  }
  // Eight digits or more: up to seven more from the next word.
  const std::uint64_t tail = swar::load8(p + 8) - swar::kOnes * '0';
  const unsigned n = swar::first_flagged(swar::first_non_digit(tail));
  if (n == 8 || p[8 + n] != end) {
    return nullptr;  // 16 digits or more: the general path judges overflow
  }
  const std::uint64_t high = swar::decimal_value(head, 8);
  // A time in nanoseconds has 9 to 11 digits through most traces: its one
  // to three last digits take a multiply-add each, cheaper than the word's
  // three multiplies and shift.
  std::uint64_t low = 0;
  if (n <= 3) {
    for (unsigned i = 0; i < n; ++i) {
      low = low * 10 + ((tail >> (8 * i)) & 0xff);
    }
  } else {
    low = swar::decimal_value(tail, n);
  }
  out = high * kPowersOf10[n] + low;
  return p + 9 + n;
}

// The form of a field as the writer writes it: the base, and whether it is
// mostly one digit (a cpu, a direction, `0x0`), which two compares take
// before any other reading. A field in the other base makes the line
// decline, so that each field's reader holds one conversion, not two.
enum class Form : std::uint8_t { decimal, small_decimal, hex, small_hex };

template <Form F>
SWIOTLB_CANONICAL_READER const char* read_number(const char* p, std::uint64_t& out, char end,
                                                 [[maybe_unused]] const HexPairValues& pairs) {
  if constexpr (F == Form::decimal || F == Form::small_decimal) {
    const auto first = static_cast<unsigned>(static_cast<unsigned char>(p[0]) - '0');
    if (F == Form::small_decimal && first < 10 && p[1] == end) {
      out = first;
      return p + 2;
    }
    return read_decimal_digits(p, out, end);
  } else {
    if (p[0] != '0' || p[1] != 'x') {
      return nullptr;
    }
    const auto first = static_cast<unsigned>(static_cast<unsigned char>(p[2]) - '0');
    if (F == Form::small_hex && first < 10 && p[3] == end) {
      out = first;
      return p + 4;
    }
    return read_hex_digits(p + 2, out, end, pairs);
  }
}

// As read_number, for a field that may be `-` (not recorded): then `out`
// keeps its value and `recorded` is false.
template <Form F>
SWIOTLB_CANONICAL_READER const char* read_optional(const char* p, std::uint64_t& out, char end,
                                                   bool& recorded, const HexPairValues& pairs) {
  recorded = !(p[0] == '-' && p[1] == end);
  return recorded ? read_number<F>(p, out, end, pairs) : p + 2;
}

template <Form F>
SWIOTLB_CANONICAL_READER const char* read_optional_u32(const char* p, std::uint32_t& out, char end,
                                                       bool& recorded, const HexPairValues& pairs) {
  std::uint64_t value = 0;
  p = read_optional<F>(p, value, end, recorded, pairs);
  if (p == nullptr || value > std::numeric_limits<std::uint32_t>::max()) {
    return nullptr;
  }
  out = static_cast<std::uint32_t>(value);
  return p;
}

SWIOTLB_CANONICAL_READER const char* read_dir(const char* p, Direction& out, char end,
                                              const HexPairValues& pairs) {
  std::uint64_t value = 0;
  p = read_number<Form::small_decimal>(p, value, end, pairs);
  if (p == nullptr || value > static_cast<std::uint64_t>(Direction::from_device)) {
    return nullptr;
  }
  out = static_cast<Direction>(value);
  return p;
}

// Reads the device id, up to the space after it. What ends a field in the
// general path is a blank, '\n' or '#': blanks and '\n' end it here too
// (other control characters as well, making the line decline), but a '#'
// stays in the id, for `intern` to refuse (read_canonical_event_line).
SWIOTLB_CANONICAL_READER const char* read_device_id(const char* p, std::string_view& id) {
  const char* start = p;
  for (unsigned i = 0; i < kMaxIdWords; ++i, p += 8) {
    const std::uint64_t word = swar::load8(p);
    const std::uint64_t ends = swar::first_byte_below(word, 0x21);
    if (ends != 0) {
      p += swar::first_flagged(ends);
      if (p == start || *p != ' ') {
        return nullptr;
      }
      id = std::string_view(start, static_cast<std::size_t>(p - start));
      return p + 1;
    }
  }
  return nullptr;
}

// Reads alloc_size at `p`, after the size read from `size_at`. Most maps
// allocate what they map: the field is then the size's digits and space
// again, byte for byte, and takes the size's value without a conversion.
SWIOTLB_CANONICAL_READER const char* read_alloc_size(const char* p, const char* size_at,
                                                     TraceEvent& e, const HexPairValues& pairs) {
  const auto size_bytes = static_cast<unsigned>(p - size_at);  // its digits and a space
  bool was = true;
  if (size_bytes <= 8 && ((swar::load8(p) ^ swar::load8(size_at)) << (64 - 8 * size_bytes)) == 0) {
    e.alloc_size = e.size;
    p += size_bytes;
  } else if (!(p = read_optional<Form::decimal>(p, e.alloc_size, ' ', was, pairs))) {
    return nullptr;
  }
  e.recorded |= was ? recorded::kAllocSize : 0;
  return p;
}

// The fields after a size as most writers' lines hold them: no alignment
// mask, a direction, no attributes (`0x0 D 0x0 ` in a map, `D 0x0\n` in an
// unmap). Both are read in a compare or two of words; the field readers
// take any other form.
constexpr std::uint64_t kMapTailWord = prefix_word("0x0 0 0x", 8) & ~(std::uint64_t{0xff} << 32);
constexpr std::uint64_t kUnmapTailWord = prefix_word("0 0x0\n", 6) & ~std::uint64_t{0xff};

// A direction's digit, 0-2, less '0'; above 2 when it is not one.
SWIOTLB_CANONICAL_READER unsigned dir_digit(std::uint64_t byte) {
  return static_cast<unsigned>(byte) - unsigned{'0'};
}

// Reads `0x0 D 0x0 ` at `p` (mask, direction, attributes), or returns
// nullptr for the field readers to take the fields.
SWIOTLB_CANONICAL_READER const char* read_plain_map_tail(const char* p, TraceEvent& e) {
  const std::uint64_t word = swar::load8(p);
  const unsigned dir = dir_digit((word >> 32) & 0xff);
  if ((word & ~(std::uint64_t{0xff} << 32)) != kMapTailWord || dir > 2 || p[8] != '0' ||
      p[9] != ' ') {
    return nullptr;
  }
  e.alloc_align_mask = 0;
  e.dir = static_cast<Direction>(dir);
  e.attrs = 0;
  return p + 10;
}

// Reads `D 0x0\n` at `p` (direction, attributes), or returns nullptr.
SWIOTLB_CANONICAL_READER const char* read_plain_unmap_tail(const char* p, TraceEvent& e) {
  const std::uint64_t word = swar::load8(p);
  const unsigned dir = dir_digit(word & 0xff);
  if ((word & 0xffffffffffff & ~std::uint64_t{0xff}) != kUnmapTailWord || dir > 2) {
    return nullptr;
  }
  e.dir = static_cast<Direction>(dir);
  e.attrs = 0;
  return p + 6;
}

SWIOTLB_CANONICAL_READER const char* read_map_fields(const char* p, TraceEvent& e,
                                                     const HexPairValues& pairs) {
  bool was = false;
  if (!(p = read_number<Form::hex>(p, e.orig, ' ', pairs))) {
    return nullptr;
  }
  const char* size_at = p;
  if (!(p = read_number<Form::decimal>(p, e.size, ' ', pairs)) ||
      !(p = read_alloc_size(p, size_at, e, pairs))) {
    return nullptr;
  }
  if (const char* after = read_plain_map_tail(p, e)) {
    p = after;
  } else if (!(p = read_optional<Form::small_hex>(p, e.alloc_align_mask, ' ', was, pairs)) ||
             (e.alloc_align_mask & (e.alloc_align_mask + 1)) != 0 ||
             !(p = read_dir(p, e.dir, ' ', pairs)) ||
             !(p = read_optional_u32<Form::small_hex>(p, e.attrs, ' ', was, pairs))) {
    return nullptr;
  }
  if (!(p = read_optional<Form::hex>(p, e.tlb, '\n', was, pairs))) {
    return nullptr;
  }
  e.recorded |= was ? recorded::kTlb : 0;
  return p;
}

SWIOTLB_CANONICAL_READER const char* read_unmap_fields(const char* p, TraceEvent& e,
                                                       const HexPairValues& pairs) {
  bool was = false;
  if (!(p = read_number<Form::hex>(p, e.tlb, ' ', pairs)) ||
      !(p = read_optional<Form::decimal>(p, e.size, ' ', was, pairs))) {
    return nullptr;
  }
  e.recorded |= was ? recorded::kSize : 0;
  if (const char* after = read_plain_unmap_tail(p, e)) {
    return after;
  }
  if (!(p = read_dir(p, e.dir, ' ', pairs))) {
    return nullptr;
  }
  return read_optional_u32<Form::small_hex>(p, e.attrs, '\n', was, pairs);
}

SWIOTLB_CANONICAL_READER const char* read_sync_fields(const char* p, TraceEvent& e,
                                                      const HexPairValues& pairs) {
  if (!(p = read_number<Form::hex>(p, e.tlb, ' ', pairs)) ||
      !(p = read_number<Form::decimal>(p, e.size, ' ', pairs))) {
    return nullptr;
  }
  return read_dir(p, e.dir, '\n', pairs);
}

#undef SWIOTLB_CANONICAL_READER

}  // namespace canonical

// Reads the event line at `p` (its first field) into `e` (fresh but for
// `line`) if the line is in the canonical form; `intern` turns a device id
// into its index as for the general path (false: unknown), and must refuse
// an id that holds a '#' (the general path ends the field there); `pairs` is
// hex_pair_values(), fetched once by the caller. Returns the start of the
// next line, or nullptr when the general path must read this one (`e` is
// then partly written). REQUIRES: kCanonicalLineReach bytes at `p`.
template <class Intern>
const char* read_canonical_event_line(const char* p, TraceEvent& e, Intern&& intern,
                                      const HexPairValues& pairs) {
  using namespace canonical;
  bool was = false;
  if (!(p = read_op(p, e.op)) || !(p = read_optional<Form::decimal>(p, e.t_ns, ' ', was, pairs))) {
    return nullptr;
  }
  e.recorded |= was ? recorded::kTime : 0;
  if (!(p = read_optional_u32<Form::small_decimal>(p, e.cpu, ' ', was, pairs))) {
    return nullptr;
  }
  e.recorded |= was ? recorded::kCpu : 0;
  std::string_view id;
  if (!(p = read_device_id(p, id)) || !intern(id, e.device)) {
    return nullptr;
  }
  switch (e.op) {
    case TraceOp::map:
      return read_map_fields(p, e, pairs);
    case TraceOp::unmap:
      return read_unmap_fields(p, e, pairs);
    case TraceOp::sync_cpu:
    case TraceOp::sync_dev:
      break;
  }
  return read_sync_fields(p, e, pairs);
}

}  // namespace swiotlb::ops
