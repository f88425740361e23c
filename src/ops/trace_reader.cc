// TraceReader: header lines through small helpers (they are few), event
// lines through one fused, table-driven scan (they are millions).
#include "swiotlb/ops/trace_reader.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <span>

#include "canonical_event_line.h"
#include "hex_digit_values.h"

namespace swiotlb::ops {
namespace {

constexpr std::string_view kMagic = "swiotlb-trace";

// The longest line read (a real event line is under 200 bytes): a longer one
// is an error, and errors quote at most kQuotedBytes of any field.
constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;
constexpr std::size_t kQuotedBytes = 64;

// `text`, or its first kQuotedBytes and a note of its length.
std::string quoted(std::string_view text) {
  if (text.size() <= kQuotedBytes) {
    return std::string(text);
  }
  return fmt::format("{}... ({} bytes in all)", text.substr(0, kQuotedBytes), text.size());
}

// A line that holds a carriage return anywhere but at its end: the file
// ends its lines with CR alone, which this reader does not take for a line
// end (LF and CRLF are read).
bool has_inner_cr(std::string_view line) {
  const std::size_t cr = line.find('\r');
  return cr != std::string_view::npos && cr + 1 < line.size();
}

Error line_error(std::uint32_t line, std::string_view text) {
  if (has_inner_cr(text)) {
    return make_error(Errc::parse,
                      "line {}: a carriage return inside the line: lines must end with LF or "
                      "CRLF, not CR alone",
                      line);
  }
  return make_error(Errc::parse, "line {}: the line is {} bytes long, more than the limit of {}",
                    line, text.size(), kMaxLineBytes);
}

bool line_is_bad(std::string_view text) {
  return text.size() > kMaxLineBytes || has_inner_cr(text);
}
constexpr std::string_view kVersion = "v1";

// Field names in file order, for messages.
constexpr std::array<std::string_view, 11> kMapFields = {
    "op",  "t_ns",  "cpu", "dev", "orig", "mapping_size", "alloc_size", "alloc_align_mask",
    "dir", "attrs", "tlb"};
constexpr std::array<std::string_view, 8> kUnmapFields = {"op",  "t_ns",         "cpu", "dev",
                                                          "tlb", "mapping_size", "dir", "attrs"};
constexpr std::array<std::string_view, 7> kSyncFields = {"op",  "t_ns", "cpu", "dev",
                                                         "tlb", "size", "dir"};

constexpr std::string_view kPoolAdd = "pool_add";
constexpr std::string_view kPoolDel = "pool_del";
constexpr std::array<std::string_view, 8> kPoolAddFields = {"op",   "t_ns",  "cpu",    "name",
                                                            "kind", "start", "nslabs", "nareas"};
constexpr std::array<std::string_view, 4> kPoolDelFields = {"op", "t_ns", "cpu", "name"};

// Character classes: a field is a run of kWord; kStop ends the fields of a
// line ('\n', or '#' which starts a comment).
enum CharClass : std::uint8_t { kWord = 0, kBlank = 1, kStop = 2 };

constexpr std::array<std::uint8_t, 256> make_classes() {
  std::array<std::uint8_t, 256> classes{};
  classes[' '] = kBlank;
  classes['\t'] = kBlank;
  classes['\r'] = kBlank;
  classes['\n'] = kStop;
  classes['#'] = kStop;
  return classes;
}
constexpr std::array<std::uint8_t, 256> kClasses = make_classes();

std::uint8_t class_of(const char* p) {
  return kClasses[static_cast<unsigned char>(*p)];
}

// Whether the line at `p` (blanks skipped) starts with a pool event's op.
// Compares one character at a time, so that a line shorter than `word`
// stops at its '\n' and nothing past it is read.
bool starts_with_word(const char* p, std::string_view word) {
  for (const char c : word) {
    if (*p++ != c) {
      return false;
    }
  }
  return kClasses[static_cast<unsigned char>(*p)] != kWord;
}

bool is_pool_op(const char* p) {
  return p[0] == 'p' && (starts_with_word(p, kPoolAdd) || starts_with_word(p, kPoolDel));
}

bool is_blank(char c) {
  return kClasses[static_cast<unsigned char>(c)] == kBlank;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_blank(text[i])) {
      ++i;
    }
    const std::size_t start = i;
    while (i < text.size() && !is_blank(text[i])) {
      ++i;
    }
    if (i > start) {
      words.push_back(text.substr(start, i - start));
    }
  }
  return words;
}

enum class NumberParse : std::uint8_t { ok, dash, bad, overflow };

// Exact conversion of a whole string, for header values and for the rare
// long field whose overflow the fast path does not judge.
NumberParse parse_number_slow(std::string_view s, std::uint64_t& out) {
  if (s == "-") {
    return NumberParse::dash;
  }
  const bool hex = s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const std::string_view digits = hex ? s.substr(2) : s;
  if (digits.empty()) {
    return NumberParse::bad;
  }
  const std::uint64_t base = hex ? 16 : 10;
  std::uint64_t value = 0;
  for (char c : digits) {
    const std::uint64_t d = kHexValues[static_cast<unsigned char>(c)];
    if (d >= base) {
      return NumberParse::bad;
    }
    if (value > (std::numeric_limits<std::uint64_t>::max() - d) / base) {
      return NumberParse::overflow;
    }
    value = value * base + d;
  }
  out = value;
  return NumberParse::ok;
}

// What went wrong on an event line, and in which field (0-based).
enum class Problem : std::uint8_t {
  bad_number,
  too_large,
  not_recorded,
  missing,
  extra,
  unknown_op,
  unknown_device,
  bad_dir,
  bad_mask,
};

struct LineError {
  Problem problem;
  std::size_t field;
};

using MaybeError = std::optional<LineError>;

MaybeError number_error(NumberParse parsed, std::size_t field) {
  switch (parsed) {
    case NumberParse::ok:
      return std::nullopt;
    case NumberParse::dash:
      return LineError{Problem::not_recorded, field};
    case NumberParse::overflow:
      return LineError{Problem::too_large, field};
    case NumberParse::bad:
      break;
  }
  return LineError{Problem::bad_number, field};
}

// A cursor over the fields of one event line. The line ends with a kStop
// character, so no loop here needs a bounds check.
class EventFields {
 public:
  explicit EventFields(const char* p) : p_(p) {}

  const char* position() const { return p_; }

  // Moves to the next field; false when the line has no more.
  bool next() {
    while (class_of(p_) == kBlank) {
      ++p_;
    }
    return class_of(p_) != kStop;
  }

  std::string_view word() {
    const char* start = p_;
    while (class_of(p_) == kWord) {
      ++p_;
    }
    return {start, static_cast<std::size_t>(p_ - start)};
  }

  NumberParse number(std::uint64_t& out) {
    const char* start = p_;
    if (p_[0] == '-' && class_of(p_ + 1) != kWord) {
      ++p_;
      return NumberParse::dash;
    }
    const bool hex = p_[0] == '0' && (p_[1] | 0x20) == 'x';
    p_ += hex ? 2 : 0;
    const char* digits = p_;
    std::uint64_t value = 0;
    if (hex) {
      for (unsigned d; (d = kHexValues[static_cast<unsigned char>(*p_)]) < 16; ++p_) {
        value = (value << 4) | d;
      }
    } else {
      for (unsigned d; (d = static_cast<unsigned char>(*p_) - unsigned{'0'}) < 10; ++p_) {
        value = value * 10 + d;
      }
    }
    const auto length = static_cast<std::size_t>(p_ - digits);
    if (class_of(p_) != kWord && length != 0 && length < (hex ? 16u : 20u)) {
      out = value;
      return NumberParse::ok;
    }
    // Not a number, or long enough that it may overflow: judge it exactly.
    word();
    return parse_number_slow({start, static_cast<std::size_t>(p_ - start)}, out);
  }

  // Reads field `i` as a number. An optional field may be `-`: then `out`
  // keeps its default and `was_recorded` is false.
  MaybeError take(std::size_t i, std::uint64_t& out, bool optional, bool& was_recorded) {
    if (!next()) {
      return LineError{Problem::missing, i};
    }
    const NumberParse parsed = number(out);
    was_recorded = parsed == NumberParse::ok;
    if (parsed == NumberParse::dash && optional) {
      return std::nullopt;
    }
    return number_error(parsed, i);
  }

  MaybeError required(std::size_t i, std::uint64_t& out) {
    bool was = false;
    return take(i, out, false, was);
  }

  MaybeError optional_u32(std::size_t i, std::uint32_t& out, bool& was_recorded) {
    std::uint64_t value = 0;
    if (MaybeError error = take(i, value, true, was_recorded)) {
      return error;
    }
    if (value > std::numeric_limits<std::uint32_t>::max()) {
      return LineError{Problem::too_large, i};
    }
    out = static_cast<std::uint32_t>(value);
    return std::nullopt;
  }

  MaybeError dir(std::size_t i, Direction& out) {
    std::uint64_t value = 0;
    if (MaybeError error = required(i, value)) {
      return error;
    }
    // DMA_NONE (3) is never a mapping's direction: the kernel BUGs on it.
    if (value > static_cast<std::uint64_t>(Direction::from_device)) {
      return LineError{Problem::bad_dir, i};
    }
    out = static_cast<Direction>(value);
    return std::nullopt;
  }

 private:
  const char* p_;
};

// The op-specific fields, after op, t_ns, cpu and dev.
MaybeError read_map(EventFields& f, TraceEvent& e) {
  bool was = false;
  if (MaybeError err = f.required(4, e.orig)) {
    return err;
  }
  if (MaybeError err = f.required(5, e.size)) {
    return err;
  }
  if (MaybeError err = f.take(6, e.alloc_size, true, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kAllocSize : 0;
  if (MaybeError err = f.take(7, e.alloc_align_mask, true, was)) {
    return err;
  }
  // The kernel's masks are 2^n - 1 (a page or IOMMU granule less one).
  // Another value is no alignment at all, and a replay that took it for
  // one could plan a pool of gigabytes for a transient mapping.
  if ((e.alloc_align_mask & (e.alloc_align_mask + 1)) != 0) {
    return LineError{Problem::bad_mask, 7};
  }
  if (MaybeError err = f.dir(8, e.dir)) {
    return err;
  }
  if (MaybeError err = f.optional_u32(9, e.attrs, was)) {
    return err;
  }
  if (MaybeError err = f.take(10, e.tlb, true, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kTlb : 0;
  return std::nullopt;
}

MaybeError read_unmap(EventFields& f, TraceEvent& e) {
  bool was = false;
  if (MaybeError err = f.required(4, e.tlb)) {
    return err;
  }
  if (MaybeError err = f.take(5, e.size, true, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kSize : 0;
  if (MaybeError err = f.dir(6, e.dir)) {
    return err;
  }
  return f.optional_u32(7, e.attrs, was);
}

MaybeError read_sync(EventFields& f, TraceEvent& e) {
  if (MaybeError err = f.required(4, e.tlb)) {
    return err;
  }
  if (MaybeError err = f.required(5, e.size)) {
    return err;
  }
  return f.dir(6, e.dir);
}

std::optional<TraceOp> op_of(std::string_view word) {
  if (word == "map") {
    return TraceOp::map;
  }
  if (word == "unmap") {
    return TraceOp::unmap;
  }
  if (word == "sync_cpu") {
    return TraceOp::sync_cpu;
  }
  if (word == "sync_dev") {
    return TraceOp::sync_dev;
  }
  return std::nullopt;
}

std::span<const std::string_view> field_names(std::optional<TraceOp> op) {
  if (op == TraceOp::unmap) {
    return kUnmapFields;
  }
  if (op == TraceOp::sync_cpu || op == TraceOp::sync_dev) {
    return kSyncFields;
  }
  return kMapFields;
}

std::size_t field_count(TraceOp op) {
  return field_names(op).size();
}

// The fields of a line that failed, split again for the message.
std::vector<std::string_view> line_fields(std::string_view line) {
  const std::size_t hash = line.find('#');
  return split_words(line.substr(0, hash));
}

[[gnu::cold]] Error describe(const LineError& error, std::uint32_t line, std::string_view text) {
  const std::vector<std::string_view> f = line_fields(text);
  const std::string op_word = quoted(f.empty() ? std::string_view{} : f[0]);
  const std::span<const std::string_view> names = field_names(op_of(op_word));
  const std::string_view name = error.field < names.size() ? names[error.field] : "?";
  const std::string value = quoted(error.field < f.size() ? f[error.field] : "");
  switch (error.problem) {
    case Problem::bad_number:
      return make_error(Errc::parse, "line {}: field '{}': '{}' is not a number", line, name,
                        value);
    case Problem::too_large:
      return make_error(Errc::parse, "line {}: field '{}': {} is too large for the field", line,
                        name, value);
    case Problem::not_recorded:
      return make_error(Errc::parse, "line {}: field '{}' must be recorded ('-' is not allowed)",
                        line, name);
    case Problem::missing:
      return make_error(Errc::parse, "line {}: field '{}' is missing (a {} line has {} fields)",
                        line, name, op_word, names.size());
    case Problem::extra:
      return make_error(Errc::parse, "line {}: extra field {} '{}' (a {} line has {} fields)", line,
                        error.field + 1, value, op_word, names.size());
    case Problem::unknown_op:
      return make_error(Errc::parse,
                        "line {}: field 'op': unknown op '{}' (known: map, unmap, sync_cpu, "
                        "sync_dev)",
                        line, value);
    case Problem::unknown_device:
      return make_error(Errc::parse,
                        "line {}: field 'dev': unknown device '{}' (declare it with a '# device' "
                        "line before its first event)",
                        line, value);
    case Problem::bad_mask:
      return make_error(Errc::parse, "line {}: field '{}': '{}' is not a mask of the form 2^n - 1",
                        line, name, value);
    case Problem::bad_dir:
      return make_error(Errc::parse,
                        "line {}: field '{}': {} is not a direction (0 bidirectional, 1 to_device, "
                        "2 from_device)",
                        line, name, value);
  }
  return make_error(Errc::parse, "line {}: does not parse", line);
}

// Reads one event line; `intern` turns a device id into its index.
template <class Intern>
MaybeError parse_event(EventFields& f, TraceEvent& e, Intern&& intern) {
  f.next();
  const std::optional<TraceOp> op = op_of(f.word());
  if (!op) {
    return LineError{Problem::unknown_op, 0};
  }
  e.op = *op;
  bool was = false;
  if (MaybeError err = f.take(1, e.t_ns, true, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kTime : 0;
  if (MaybeError err = f.optional_u32(2, e.cpu, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kCpu : 0;
  if (!f.next()) {
    return LineError{Problem::missing, 3};
  }
  if (!intern(f.word(), e.device)) {
    return LineError{Problem::unknown_device, 3};
  }
  MaybeError err = e.op == TraceOp::map     ? read_map(f, e)
                   : e.op == TraceOp::unmap ? read_unmap(f, e)
                                            : read_sync(f, e);
  if (!err && f.next()) {
    err = LineError{Problem::extra, field_count(e.op)};
  }
  return err;
}

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

std::optional<KeyValue> split_key_value(std::string_view word) {
  const std::size_t equals = word.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return std::nullopt;
  }
  return KeyValue{word.substr(0, equals), word.substr(equals + 1)};
}

}  // namespace

TraceReader::TraceReader(std::string_view text, const ParseOptions& options)
    : text_(text), options_(options), total_bytes_(text.size()) {
  // Everything up to the last newline is read in place; the rest, if any,
  // from a copy that ends with one.
  std::size_t in_place = text.size();
  while (in_place > 0 && text[in_place - 1] != '\n') {
    --in_place;
  }
  cursor_ = text.data();
  end_ = text.data() + in_place;
  tail_ = std::string(text.substr(in_place));
  tail_done_ = tail_.empty();
  if (!tail_done_) {
    tail_ += '\n';
  }
}

std::size_t TraceReader::bytes_read() const {
  const bool in_tail = !tail_.empty() && tail_done_;
  return in_tail
             ? text_.size() - (tail_.size() - 1) + static_cast<std::size_t>(cursor_ - tail_.data())
             : static_cast<std::size_t>(cursor_ - text_.data());
}

void TraceReader::next_segment() {
  if (cursor_ == end_ && !tail_done_) {
    cursor_ = tail_.data();
    end_ = tail_.data() + tail_.size();
    tail_done_ = true;
  }
}

// The rest of the current line, without its newline; the cursor moves past it.
std::string_view TraceReader::rest_of_line() {
  const auto* newline = static_cast<const char*>(
      std::memchr(cursor_, '\n', static_cast<std::size_t>(end_ - cursor_)));
  const std::string_view line(cursor_, static_cast<std::size_t>(newline - cursor_));
  cursor_ = newline + 1;
  return line;
}

Status TraceReader::read_header() {
  for (;;) {
    next_segment();
    if (cursor_ == end_) {
      break;
    }
    const char* start = cursor_;
    while (is_blank(*cursor_)) {
      ++cursor_;
    }
    if (*cursor_ != '\n' && *cursor_ != '#') {
      cursor_ = start;  // the first event: read_events takes it from here
      break;
    }
    ++line_;
    const std::string_view text = rest_of_line();
    if (line_is_bad(text)) {
      return line_error(line_, text);
    }
    if (!text.empty() && text[0] == '#') {
      if (Status ok = header_line(trim(text.substr(1)), false); !ok) {
        return ok;
      }
    }
  }
  if (!seen_magic_) {
    if (cursor_ != end_) {
      return make_error(Errc::parse, "line {}: an event before the '# {} {}' line", line_ + 1,
                        kMagic, kVersion);
    }
    return make_error(Errc::parse, "not a trace: no '# {} {}' line", kMagic, kVersion);
  }
  return {};
}

Result<bool> TraceReader::read_events(std::vector<TraceEvent>& out, std::size_t limit) {
  while (out.size() < limit) {
    canonical_lines(out, limit);
    if (out.size() == limit) {
      break;
    }
    next_segment();
    if (cursor_ == end_) {
      return false;
    }
    ++line_;
    const char* start = cursor_;
    while (is_blank(*cursor_)) {
      ++cursor_;
    }
    // canonical_lines() stopped at this line: the fast path may still take
    // it after its leading blanks, never as it stands.
    if (cursor_ != start && canonical_line(out)) {
      continue;
    }
    if (*cursor_ == '\n') {
      ++cursor_;
      continue;
    }
    if (*cursor_ == '#') {
      const std::size_t devices = trace_.devices.size();
      const std::string_view text = rest_of_line();
      if (line_is_bad(text)) {
        return line_error(line_, text);
      }
      if (Status ok = header_line(trim(text.substr(1)), true); !ok) {
        return ok.error();
      }
      if (trace_.devices.size() != devices) {
        return true;  // let the consumer learn of the device first
      }
      continue;
    }
    if (is_pool_op(cursor_)) {
      if (Status ok = pool_event_line(); !ok) {
        return ok.error();
      }
      return true;  // let the consumer learn of the pool event first
    }
    if (Status ok = event_line(start, out); !ok) {
      return ok.error();
    }
  }
  return true;
}

// A pool event line (never skipped: a replay that missed one would put
// every later map in the wrong pools).
Status TraceReader::pool_event_line() {
  const std::string_view text = rest_of_line();
  if (line_is_bad(text)) {
    return line_error(line_, text);
  }
  const std::vector<std::string_view> words = line_fields(text);
  const bool add = words[0] == kPoolAdd;
  const std::span<const std::string_view> names =
      add ? std::span<const std::string_view>(kPoolAddFields)
          : std::span<const std::string_view>(kPoolDelFields);
  auto missing_or_extra = [&]() -> Status {
    if (words.size() < names.size()) {
      return make_error(Errc::parse, "line {}: field '{}' is missing (a {} line has {} fields)",
                        line_, names[words.size()], words[0], names.size());
    }
    return make_error(Errc::parse, "line {}: extra field {} '{}' (a {} line has {} fields)", line_,
                      names.size() + 1, quoted(words[names.size()]), words[0], names.size());
  };
  if (words.size() != names.size()) {
    return missing_or_extra();
  }
  TracePoolEvent event;
  event.op = add ? TracePoolOp::add : TracePoolOp::del;
  event.line = line_;
  event.before_event = events_read_;
  std::uint64_t value = 0;
  switch (parse_number_slow(words[1], value)) {
    case NumberParse::ok:
      event.t_ns = value;
      break;
    case NumberParse::dash:
      break;
    default:
      return make_error(Errc::parse, "line {}: field 't_ns': '{}' is not a number", line_,
                        quoted(words[1]));
  }
  switch (parse_number_slow(words[2], value)) {
    case NumberParse::ok:
      if (value > std::numeric_limits<std::uint32_t>::max()) {
        return make_error(Errc::parse, "line {}: field 'cpu': {} is too large for the field", line_,
                          quoted(words[2]));
      }
      event.cpu = static_cast<std::uint32_t>(value);
      break;
    case NumberParse::dash:
      break;
    default:
      return make_error(Errc::parse, "line {}: field 'cpu': '{}' is not a number", line_,
                        quoted(words[2]));
  }
  event.name = std::string(words[3]);
  const bool is_default = trace_.pool && trace_.pool->name == event.name;
  if (add) {
    if (is_default || live_pools_.count(event.name) != 0) {
      return make_error(Errc::parse,
                        "line {}: field 'name': pool '{}' is already there (delete it first)",
                        line_, quoted(event.name));
    }
    if (Status ok = pool_add_fields(words, event); !ok) {
      return ok;
    }
    live_pools_.insert(event.name);
  } else {
    if (is_default) {
      return make_error(Errc::parse,
                        "line {}: field 'name': '{}' is the default pool, never deleted", line_,
                        quoted(event.name));
    }
    const auto live = live_pools_.find(event.name);
    if (live == live_pools_.end()) {
      return make_error(Errc::parse,
                        "line {}: field 'name': no pool '{}' to delete (no pool_add named it, or "
                        "it was deleted already)",
                        line_, quoted(event.name));
    }
    live_pools_.erase(live);
  }
  trace_.pool_events.push_back(std::move(event));
  return {};
}

Status TraceReader::pool_add_fields(const std::vector<std::string_view>& words,
                                    TracePoolEvent& event) {
  if (words[4] == "grown") {
    event.kind = TracePoolKind::grown;
  } else if (words[4] == "transient") {
    event.kind = TracePoolKind::transient;
  } else {
    return make_error(Errc::parse,
                      "line {}: field 'kind': '{}' is not a pool kind (grown, transient)", line_,
                      quoted(words[4]));
  }
  std::uint64_t nareas = 0;
  for (std::size_t i = 5; i < 8; ++i) {
    std::uint64_t& out = i == 5 ? event.start : i == 6 ? event.nslabs : nareas;
    const NumberParse parsed = parse_number_slow(words[i], out);
    if (parsed == NumberParse::dash) {
      return make_error(Errc::parse, "line {}: field '{}' must be recorded ('-' is not allowed)",
                        line_, kPoolAddFields[i]);
    }
    if (parsed != NumberParse::ok) {
      return make_error(Errc::parse, "line {}: field '{}': '{}' is not a number", line_,
                        kPoolAddFields[i], quoted(words[i]));
    }
  }
  if (event.nslabs == 0) {
    return make_error(Errc::parse, "line {}: field 'nslabs': a pool of 0 slots", line_);
  }
  if (nareas == 0 || nareas > std::numeric_limits<std::uint32_t>::max() ||
      !std::has_single_bit(nareas)) {
    return make_error(Errc::parse, "line {}: field 'nareas': {} is not a power of two", line_,
                      nareas);
  }
  if (event.kind == TracePoolKind::transient && nareas != 1) {
    return make_error(Errc::parse, "line {}: field 'nareas': a transient pool has 1 area, not {}",
                      line_, nareas);
  }
  if (event.start + (event.nslabs << 11) < event.start ||
      event.nslabs > (~std::uint64_t{0} >> 11)) {
    return make_error(Errc::parse,
                      "line {}: field 'nslabs': {} slots at {:#x} pass the end of memory", line_,
                      event.nslabs, event.start);
  }
  event.nareas = static_cast<std::uint32_t>(nareas);
  return {};
}

// Appends the event on the line at the cursor if the line is in the
// writer's form (canonical_event_line.h) and far enough from the end of the
// buffer for the fast path's reads; false, with the cursor and `out`
// unchanged, otherwise.
bool TraceReader::canonical_line(std::vector<TraceEvent>& out) {
  if (!swar::kAvailable || static_cast<std::size_t>(end_ - cursor_) < kCanonicalLineReach) {
    return false;
  }
  TraceEvent& e = out.emplace_back();
  e.line = line_;
  const char* next = read_canonical_event_line(
      cursor_, e,
      [this](std::string_view id, std::uint16_t& index) {
        return short_ids_.find(id, index) ||
               (id.find('#') == std::string_view::npos && intern_device(id, index));
      },
      hex_pair_values());
  if (next == nullptr) {
    out.pop_back();
    return false;
  }
  cursor_ = next;
  ++events_read_;
  return true;
}

// Reads line after line through the fast path, up to `limit` events in
// `out`, and stops at the first line it declines (or too near the end of the
// buffer), the cursor at that line's start and line_ the line before it.
// Each event is parsed where it is kept: an event built aside and then
// copied in was read back through 16-byte loads over the narrower stores
// that had just written it, which the CPU cannot forward, and those stalls
// cost as much as the copy.
void TraceReader::canonical_lines(std::vector<TraceEvent>& out, std::size_t limit) {
  if (!swar::kAvailable || out.size() >= limit) {
    return;
  }
  // Kept in locals through the loop: members, written through `this`, would
  // go to memory on every line.
  const char* p = cursor_;
  std::uint32_t line = line_;
  std::size_t room = limit - out.size();
  // The short ids first, inline; every id through the map when not there.
  // The fast path leaves a '#' in an id (the general path ends the field
  // there): the short ids hold no such id, and the map is not asked.
  const auto find = [this](std::string_view id, std::uint16_t& index) {
    return short_ids_.find(id, index) ||
           (id.find('#') == std::string_view::npos && intern_device(id, index));
  };
  const HexPairValues& pairs = hex_pair_values();
  while (room != 0 && static_cast<std::size_t>(end_ - p) >= kCanonicalLineReach) {
    TraceEvent& e = out.emplace_back();
    e.line = line + 1;
    const char* next = read_canonical_event_line(p, e, find, pairs);
    if (next == nullptr) {
      out.pop_back();
      break;
    }
    p = next;
    ++line;
    --room;
  }
  events_read_ += line - line_;
  cursor_ = p;
  line_ = line;
}

Status TraceReader::event_line(const char* start, std::vector<TraceEvent>& out) {
  EventFields f(cursor_);
  TraceEvent e;
  e.line = line_;
  const MaybeError error = parse_event(
      f, e, [this](std::string_view id, std::uint16_t& index) { return intern_device(id, index); });
  if (!error) {
    cursor_ = f.position();
    rest_of_line();  // a newline, or a comment and a newline
    if (static_cast<std::size_t>(cursor_ - start) > kMaxLineBytes) {
      return line_error(line_, std::string_view(start, static_cast<std::size_t>(cursor_ - start)));
    }
    out.push_back(e);
    ++events_read_;
    return {};
  }
  cursor_ = start;
  const std::string_view text = rest_of_line();
  if (line_is_bad(text)) {
    return line_error(line_, text);
  }
  Error described = describe(*error, line_, text);
  if (!options_.skip_bad) {
    return described;
  }
  ++trace_.bad_line_count;
  if (trace_.bad_lines.size() < options_.bad_lines_kept) {
    trace_.bad_lines.push_back({line_, described.message()});
  }
  return {};
}

bool TraceReader::intern_device(std::string_view id, std::uint16_t& out) {
  if (last_device_ < trace_.devices.size() && trace_.devices[last_device_].id == id) {
    out = last_device_;
    return true;
  }
  const auto found = device_ids_.find(id);
  if (found == device_ids_.end()) {
    return false;
  }
  last_device_ = found->second;
  out = found->second;
  return true;
}

Status TraceReader::header_line(std::string_view text, bool after_events) {
  const std::vector<std::string_view> words = split_words(text);
  const std::string_view keyword = words.empty() ? std::string_view{} : words[0];
  if (!seen_magic_) {
    return magic(words);
  }
  if (keyword == kMagic) {
    return make_error(Errc::parse, "line {}: a second '# {}' line", line_, kMagic);
  }
  if (after_events && (keyword == "kernel" || keyword == "pool")) {
    return make_error(Errc::parse, "line {}: '# {}' must come before the first event", line_,
                      keyword);
  }
  if (keyword == "kernel") {
    trace_.kernel = std::string(trim(text.substr(keyword.size())));
    return {};
  }
  if (keyword == "pool") {
    return pool(words);
  }
  if (keyword == "device") {
    return device(text, words);
  }
  if (keyword == "state") {
    return state(words);
  }
  trace_.comments.push_back({line_, std::string(text)});
  return {};
}

Status TraceReader::magic(const std::vector<std::string_view>& words) {
  if (words.size() < 2 || words[0] != kMagic) {
    return make_error(Errc::parse, "line {}: not a trace: the first line must be '# {} {}'", line_,
                      kMagic, kVersion);
  }
  if (words[1] != kVersion) {
    return make_error(Errc::parse, "line {}: trace format '{}' is not supported (only {})", line_,
                      quoted(words[1]), kVersion);
  }
  seen_magic_ = true;
  return {};
}

Status TraceReader::header_number(std::string_view what, std::string_view value,
                                  std::uint64_t& out) const {
  if (parse_number_slow(value, out) != NumberParse::ok) {
    return make_error(Errc::parse, "line {}: field '{}': '{}' is not a number", line_, what,
                      quoted(value));
  }
  return {};
}

Status TraceReader::pool(const std::vector<std::string_view>& words) {
  if (trace_.pool) {
    return make_error(Errc::parse, "line {}: a second '# pool' line (v1 traces hold one pool)",
                      line_);
  }
  if (words.size() < 2 || split_key_value(words[1])) {
    return make_error(Errc::parse, "line {}: field 'name' is missing in '# pool'", line_);
  }
  TracePool pool{std::string(words[1]), 0, 0, 1, line_};
  std::optional<std::uint64_t> start;
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint64_t> nareas;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const std::optional<KeyValue> kv = split_key_value(words[i]);
    if (!kv) {
      return make_error(Errc::parse, "line {}: '{}' in '# pool' is not key=value", line_,
                        quoted(words[i]));
    }
    std::optional<std::uint64_t>* slot = kv->key == "start"    ? &start
                                         : kv->key == "nslabs" ? &nslabs
                                         : kv->key == "nareas" ? &nareas
                                                               : nullptr;
    if (slot == nullptr) {
      continue;  // a key from a later version: ignored
    }
    std::uint64_t value = 0;
    if (Status ok = header_number(kv->key, kv->value, value); !ok) {
      return ok;
    }
    *slot = value;
  }
  if (!start || !nslabs || !nareas) {
    return make_error(Errc::parse, "line {}: field '{}' is missing in '# pool'", line_,
                      !start    ? "start"
                      : !nslabs ? "nslabs"
                                : "nareas");
  }
  if (*nareas == 0 || *nareas > std::numeric_limits<std::uint32_t>::max()) {
    return make_error(Errc::parse, "line {}: field 'nareas': {} is out of range", line_, *nareas);
  }
  pool.start = *start;
  pool.nslabs = *nslabs;
  pool.nareas = static_cast<std::uint32_t>(*nareas);
  trace_.pool = std::move(pool);
  return {};
}

Status TraceReader::device_key(TraceDevice& device, std::string_view key,
                               std::string_view value) const {
  std::uint64_t number = 0;
  if (key != "min_align_mask" && key != "seg_boundary_mask" && key != "dma_mask") {
    return {};  // a key from a later version: ignored
  }
  if (Status ok = header_number(key, value, number); !ok) {
    return ok;
  }
  if (key == "min_align_mask") {
    device.min_align_mask = number;
  } else if (key == "seg_boundary_mask") {
    device.seg_boundary_mask = number;
  } else {
    device.dma_mask = number;
  }
  return {};
}

Status TraceReader::device(std::string_view text, const std::vector<std::string_view>& words) {
  if (words.size() < 2 || split_key_value(words[1])) {
    return make_error(Errc::parse, "line {}: field 'id' is missing in '# device'", line_);
  }
  if (device_ids_.count(words[1]) != 0) {
    return make_error(Errc::parse, "line {}: device '{}' is declared twice", line_,
                      quoted(words[1]));
  }
  if (trace_.devices.size() > std::numeric_limits<std::uint16_t>::max()) {
    return make_error(Errc::parse, "line {}: more than {} devices", line_,
                      std::numeric_limits<std::uint16_t>::max() + 1);
  }
  TraceDevice device;
  device.id = std::string(words[1]);
  device.line = line_;
  bool has_min_align = false;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const std::optional<KeyValue> kv = split_key_value(words[i]);
    if (!kv) {
      return make_error(Errc::parse, "line {}: '{}' in '# device' is not key=value", line_,
                        quoted(words[i]));
    }
    if (kv->key == "name") {
      // The name is free text: it runs to the end of the line.
      const auto at = static_cast<std::size_t>(kv->value.data() - text.data());
      device.name = std::string(trim(text.substr(at)));
      break;
    }
    if (Status ok = device_key(device, kv->key, kv->value); !ok) {
      return ok;
    }
    has_min_align = has_min_align || kv->key == "min_align_mask";
  }
  if (!has_min_align) {
    return make_error(Errc::parse, "line {}: field 'min_align_mask' is missing in '# device'",
                      line_);
  }
  const auto index = static_cast<std::uint16_t>(trace_.devices.size());
  device_ids_.emplace(device.id, index);
  if (device.id.find('#') == std::string::npos) {
    short_ids_.add(device.id, index);  // the fast path reads no event naming it
  }
  trace_.devices.push_back(std::move(device));
  return {};
}

Status TraceReader::state(const std::vector<std::string_view>& words) {
  TraceState state;
  state.line = line_;
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::optional<KeyValue> kv = split_key_value(words[i]);
    if (!kv) {
      return make_error(Errc::parse, "line {}: '{}' in '# state' is not key=value", line_,
                        words[i]);
    }
    std::optional<std::uint64_t>* slot = kv->key == "index"          ? &state.index
                                         : kv->key == "used"         ? &state.used
                                         : kv->key == "total_used"   ? &state.total_used
                                         : kv->key == "used_hiwater" ? &state.used_hiwater
                                                                     : nullptr;
    std::uint64_t value = 0;
    if (kv->key != "area" && slot == nullptr) {
      continue;  // a key from a later version: ignored
    }
    if (Status ok = header_number(kv->key, kv->value, value); !ok) {
      return ok;
    }
    if (slot != nullptr) {
      *slot = value;
    } else if (value > std::numeric_limits<std::uint32_t>::max()) {
      return make_error(Errc::parse, "line {}: field 'area': {} is out of range", line_, value);
    } else {
      state.area = static_cast<std::uint32_t>(value);
    }
  }
  if (state.area && (state.total_used || state.used_hiwater)) {
    return make_error(Errc::parse,
                      "line {}: '# state' gives an area and the pool's counters (one or the other)",
                      line_);
  }
  if (!state.area && (state.index || state.used)) {
    return make_error(Errc::parse,
                      "line {}: field 'area' is missing in '# state' (index and "
                      "used are an area's)",
                      line_);
  }
  trace_.states.push_back(state);
  return {};
}

}  // namespace swiotlb::ops
