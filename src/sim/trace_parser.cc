// The trace v1 parser.
//
// One pass over the buffer. Each line is found with memchr and split in
// place into string_views; numbers are converted by hand (decimal or 0x-hex,
// `-` for "not recorded"); device ids are interned, with the last device
// looked up first since events of one device come in runs. Nothing on the
// path of a well-formed event line allocates: the events vector is sized up
// front from the line count. Messages are built only for lines that fail.
#include "swiotlb/sim/trace_parser.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <span>
#include <unordered_map>

#include "mapped_file.h"

namespace swiotlb::sim {
namespace {

constexpr std::string_view kMagic = "swiotlb-trace";
constexpr std::string_view kVersion = "v1";

// Field names in file order, for messages. The longest op has 11 fields.
constexpr std::array<std::string_view, 11> kMapFields = {
    "op", "t_ns", "cpu", "dev", "orig", "mapping_size", "alloc_size", "alloc_align_mask",
    "dir", "attrs", "tlb"};
constexpr std::array<std::string_view, 8> kUnmapFields = {"op",  "t_ns",         "cpu", "dev",
                                                          "tlb", "mapping_size", "dir", "attrs"};
constexpr std::array<std::string_view, 7> kSyncFields = {"op",  "t_ns", "cpu", "dev",
                                                         "tlb", "size", "dir"};
constexpr std::size_t kMaxFields = kMapFields.size();

// One field more than any op has, so that an extra field is seen.
using Fields = std::array<std::string_view, kMaxFields + 1>;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits `line` at blanks, up to a `#`. Returns how many fields it found,
// at most fields.size().
std::size_t split_fields(std::string_view line, Fields& fields) {
  std::size_t n = 0;
  std::size_t i = 0;
  const std::size_t end = line.size();
  while (n < fields.size()) {
    while (i < end && is_blank(line[i])) {
      ++i;
    }
    if (i == end || line[i] == '#') {
      break;
    }
    const std::size_t start = i;
    while (i < end && !is_blank(line[i]) && line[i] != '#') {
      ++i;
    }
    fields[n++] = line.substr(start, i - start);
  }
  return n;
}

enum class NumberParse : std::uint8_t { ok, dash, bad, overflow };

unsigned hex_digit(char c) {
  if (c >= '0' && c <= '9') {
    return static_cast<unsigned>(c - '0');
  }
  const char lower = static_cast<char>(c | 0x20);
  if (lower >= 'a' && lower <= 'f') {
    return static_cast<unsigned>(lower - 'a' + 10);
  }
  return 16;
}

NumberParse parse_hex(std::string_view digits, std::uint64_t& out) {
  if (digits.empty()) {
    return NumberParse::bad;
  }
  std::uint64_t value = 0;
  std::size_t significant = 0;
  for (char c : digits) {
    const unsigned d = hex_digit(c);
    if (d >= 16) {
      return NumberParse::bad;
    }
    significant += (significant != 0 || d != 0) ? 1 : 0;
    value = (value << 4) | d;
  }
  if (significant > 16) {
    return NumberParse::overflow;
  }
  out = value;
  return NumberParse::ok;
}

NumberParse parse_decimal(std::string_view digits, std::uint64_t& out) {
  if (digits.empty()) {
    return NumberParse::bad;
  }
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (char c : digits) {
    const auto d = static_cast<unsigned>(c - '0');
    if (d > 9) {
      return NumberParse::bad;
    }
    if (value > (kMax - d) / 10) {
      return NumberParse::overflow;
    }
    value = value * 10 + d;
  }
  out = value;
  return NumberParse::ok;
}

NumberParse parse_number(std::string_view s, std::uint64_t& out) {
  if (s.size() == 1 && s[0] == '-') {
    return NumberParse::dash;
  }
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    return parse_hex(s.substr(2), out);
  }
  return parse_decimal(s, out);
}

// What went wrong on an event line, and in which field.
enum class Problem : std::uint8_t {
  bad_number,
  too_large,
  not_recorded,
  missing,
  extra,
  unknown_op,
  unknown_device,
  bad_dir,
};

struct LineError {
  Problem problem;
  std::size_t field;
};

using MaybeError = std::optional<LineError>;

// Readers of one field. A required field refuses `-`; an optional one leaves
// `out` at its default and reports whether it was recorded.
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

MaybeError read_required(const Fields& f, std::size_t i, std::uint64_t& out) {
  return number_error(parse_number(f[i], out), i);
}

MaybeError read_optional(const Fields& f, std::size_t i, std::uint64_t& out, bool& was_recorded) {
  const NumberParse parsed = parse_number(f[i], out);
  was_recorded = parsed != NumberParse::dash;
  return parsed == NumberParse::dash ? std::nullopt : number_error(parsed, i);
}

MaybeError read_optional_u32(const Fields& f, std::size_t i, std::uint32_t& out,
                             bool& was_recorded) {
  std::uint64_t value = 0;
  if (MaybeError error = read_optional(f, i, value, was_recorded)) {
    return error;
  }
  if (value > std::numeric_limits<std::uint32_t>::max()) {
    return LineError{Problem::too_large, i};
  }
  out = static_cast<std::uint32_t>(value);
  return std::nullopt;
}

MaybeError read_dir(const Fields& f, std::size_t i, Direction& out) {
  std::uint64_t value = 0;
  if (MaybeError error = read_required(f, i, value)) {
    return error;
  }
  // DMA_NONE (3) is never a mapping's direction: the kernel BUGs on it.
  if (value > static_cast<std::uint64_t>(Direction::from_device)) {
    return LineError{Problem::bad_dir, i};
  }
  out = static_cast<Direction>(value);
  return std::nullopt;
}

// The op-specific fields, after op, t_ns, cpu and dev.
MaybeError read_map(const Fields& f, TraceEvent& e) {
  bool was = false;
  if (MaybeError err = read_required(f, 4, e.orig)) {
    return err;
  }
  if (MaybeError err = read_required(f, 5, e.size)) {
    return err;
  }
  if (MaybeError err = read_optional(f, 6, e.alloc_size, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kAllocSize : 0;
  if (MaybeError err = read_optional(f, 7, e.alloc_align_mask, was)) {
    return err;
  }
  if (MaybeError err = read_dir(f, 8, e.dir)) {
    return err;
  }
  if (MaybeError err = read_optional_u32(f, 9, e.attrs, was)) {
    return err;
  }
  if (MaybeError err = read_optional(f, 10, e.tlb, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kTlb : 0;
  return std::nullopt;
}

MaybeError read_unmap(const Fields& f, TraceEvent& e) {
  bool was = false;
  if (MaybeError err = read_required(f, 4, e.tlb)) {
    return err;
  }
  if (MaybeError err = read_optional(f, 5, e.size, was)) {
    return err;
  }
  e.recorded |= was ? recorded::kSize : 0;
  if (MaybeError err = read_dir(f, 6, e.dir)) {
    return err;
  }
  return read_optional_u32(f, 7, e.attrs, was);
}

MaybeError read_sync(const Fields& f, TraceEvent& e) {
  if (MaybeError err = read_required(f, 4, e.tlb)) {
    return err;
  }
  if (MaybeError err = read_required(f, 5, e.size)) {
    return err;
  }
  return read_dir(f, 6, e.dir);
}

struct OpShape {
  TraceOp op;
  std::span<const std::string_view> names;
};

std::optional<OpShape> op_shape(std::string_view word) {
  if (word == "map") {
    return OpShape{TraceOp::map, kMapFields};
  }
  if (word == "unmap") {
    return OpShape{TraceOp::unmap, kUnmapFields};
  }
  if (word == "sync_cpu") {
    return OpShape{TraceOp::sync_cpu, kSyncFields};
  }
  if (word == "sync_dev") {
    return OpShape{TraceOp::sync_dev, kSyncFields};
  }
  return std::nullopt;
}

[[gnu::cold]] Error describe(const LineError& error, std::uint32_t line, const Fields& f,
                             std::span<const std::string_view> names) {
  const std::string_view name = error.field < names.size() ? names[error.field] : "?";
  const std::string_view text = error.field < f.size() ? f[error.field] : "";
  switch (error.problem) {
    case Problem::bad_number:
      return make_error(Errc::parse, "line {}: field '{}': '{}' is not a number", line, name, text);
    case Problem::too_large:
      return make_error(Errc::parse, "line {}: field '{}': {} is too large for the field", line,
                        name, text);
    case Problem::not_recorded:
      return make_error(Errc::parse, "line {}: field '{}' must be recorded ('-' is not allowed)",
                        line, name);
    case Problem::missing:
      return make_error(Errc::parse, "line {}: field '{}' is missing (a {} line has {} fields)",
                        line, name, f[0], names.size());
    case Problem::extra:
      return make_error(Errc::parse, "line {}: extra field {} '{}' (a {} line has {} fields)",
                        line, error.field + 1, text, f[0], names.size());
    case Problem::unknown_op:
      return make_error(Errc::parse,
                        "line {}: field 'op': unknown op '{}' (known: map, unmap, sync_cpu, "
                        "sync_dev)",
                        line, text);
    case Problem::unknown_device:
      return make_error(Errc::parse,
                        "line {}: field 'dev': unknown device '{}' (declare it with a '# device' "
                        "line before its first event)",
                        line, text);
    case Problem::bad_dir:
      return make_error(Errc::parse,
                        "line {}: field '{}': {} is not a direction (0 bidirectional, 1 to_device, "
                        "2 from_device)",
                        line, name, text);
  }
  return make_error(Errc::parse, "line {}: does not parse", line);
}

// Transparent hashing, so that a string_view finds a std::string key.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// `key=value` words of a header line.
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

// Splits a header line's words (no '#' handling: the whole line is a comment).
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

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& options) : text_(text), options_(options) {}

  Result<Trace> run();

 private:
  Status line(std::string_view text);
  Status header(std::string_view text);
  Status magic(const std::vector<std::string_view>& words);
  Status pool(const std::vector<std::string_view>& words);
  Status device(std::string_view text, const std::vector<std::string_view>& words);
  Status device_key(TraceDevice& device, const KeyValue& kv);
  Status event(std::string_view text);
  MaybeError intern_device(std::string_view id, std::uint16_t& out);
  Status header_number(std::string_view what, std::string_view value, std::uint64_t& out) const;

  std::string_view text_;
  const ParseOptions& options_;
  Trace trace_;
  std::uint32_t line_ = 0;
  bool seen_magic_ = false;
  std::unordered_map<std::string, std::uint16_t, StringHash, std::equal_to<>> device_ids_;
  std::uint16_t last_device_ = 0;
};

Result<Trace> Parser::run() {
  const std::size_t lines = static_cast<std::size_t>(std::count(text_.begin(), text_.end(), '\n'));
  trace_.events.reserve(lines + 1);
  std::size_t pos = 0;
  while (pos < text_.size()) {
    const void* newline = std::memchr(text_.data() + pos, '\n', text_.size() - pos);
    const std::size_t end =
        newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - text_.data())
                : text_.size();
    ++line_;
    if (Status ok = line(text_.substr(pos, end - pos)); !ok) {
      return ok.error();
    }
    pos = end + 1;
  }
  if (!seen_magic_) {
    return make_error(Errc::parse, "not a trace: no '# {} {}' line", kMagic, kVersion);
  }
  trace_.events.shrink_to_fit();
  return std::move(trace_);
}

Status Parser::line(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_blank(text[i])) {
    ++i;
  }
  if (i == text.size()) {
    return {};
  }
  if (text[i] == '#') {
    return header(trim(text.substr(i + 1)));
  }
  if (!seen_magic_) {
    return make_error(Errc::parse, "line {}: an event before the '# {} {}' line", line_, kMagic,
                      kVersion);
  }
  return event(text);
}

Status Parser::header(std::string_view text) {
  const std::vector<std::string_view> words = split_words(text);
  const std::string_view keyword = words.empty() ? std::string_view{} : words[0];
  if (!seen_magic_) {
    return magic(words);
  }
  if (keyword == kMagic) {
    return make_error(Errc::parse, "line {}: a second '# {}' line", line_, kMagic);
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
  trace_.comments.push_back({line_, std::string(text)});
  return {};
}

Status Parser::magic(const std::vector<std::string_view>& words) {
  if (words.size() < 2 || words[0] != kMagic) {
    return make_error(Errc::parse, "line {}: not a trace: the first line must be '# {} {}'", line_,
                      kMagic, kVersion);
  }
  if (words[1] != kVersion) {
    return make_error(Errc::parse, "line {}: trace format '{}' is not supported (only {})", line_,
                      words[1], kVersion);
  }
  seen_magic_ = true;
  return {};
}

Status Parser::header_number(std::string_view what, std::string_view value,
                             std::uint64_t& out) const {
  if (parse_number(value, out) != NumberParse::ok) {
    return make_error(Errc::parse, "line {}: field '{}': '{}' is not a number", line_, what, value);
  }
  return {};
}

Status Parser::pool(const std::vector<std::string_view>& words) {
  if (trace_.pool) {
    return make_error(Errc::parse, "line {}: a second '# pool' line (v1 traces hold one pool)",
                      line_);
  }
  if (words.size() < 2 || split_key_value(words[1])) {
    return make_error(Errc::parse, "line {}: field 'name' is missing in '# pool'", line_);
  }
  TracePool pool{std::string(words[1]), 0, 0, 1, line_};
  bool has_start = false;
  bool has_nslabs = false;
  bool has_nareas = false;
  for (std::size_t i = 2; i < words.size(); ++i) {
    const std::optional<KeyValue> kv = split_key_value(words[i]);
    if (!kv) {
      return make_error(Errc::parse, "line {}: '{}' in '# pool' is not key=value", line_,
                        words[i]);
    }
    std::uint64_t value = 0;
    if (kv->key == "start" || kv->key == "nslabs" || kv->key == "nareas") {
      if (Status ok = header_number(kv->key, kv->value, value); !ok) {
        return ok;
      }
    }
    if (kv->key == "start") {
      pool.start = value;
      has_start = true;
    } else if (kv->key == "nslabs") {
      pool.nslabs = value;
      has_nslabs = true;
    } else if (kv->key == "nareas") {
      if (value == 0 || value > std::numeric_limits<std::uint32_t>::max()) {
        return make_error(Errc::parse, "line {}: field 'nareas': {} is out of range", line_,
                          kv->value);
      }
      pool.nareas = static_cast<std::uint32_t>(value);
      has_nareas = true;
    }
  }
  if (!has_start || !has_nslabs || !has_nareas) {
    return make_error(Errc::parse, "line {}: field '{}' is missing in '# pool'", line_,
                      !has_start ? "start" : !has_nslabs ? "nslabs" : "nareas");
  }
  trace_.pool = std::move(pool);
  return {};
}

Status Parser::device_key(TraceDevice& device, const KeyValue& kv) {
  std::uint64_t value = 0;
  if (kv.key != "min_align_mask" && kv.key != "seg_boundary_mask" && kv.key != "dma_mask") {
    return {};  // a key from a later version: ignored
  }
  if (Status ok = header_number(kv.key, kv.value, value); !ok) {
    return ok;
  }
  if (kv.key == "min_align_mask") {
    device.min_align_mask = value;
  } else if (kv.key == "seg_boundary_mask") {
    device.seg_boundary_mask = value;
  } else {
    device.dma_mask = value;
  }
  return {};
}

Status Parser::device(std::string_view text, const std::vector<std::string_view>& words) {
  if (words.size() < 2 || split_key_value(words[1])) {
    return make_error(Errc::parse, "line {}: field 'id' is missing in '# device'", line_);
  }
  if (device_ids_.count(words[1]) != 0) {
    return make_error(Errc::parse, "line {}: device '{}' is declared twice", line_, words[1]);
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
                        words[i]);
    }
    if (kv->key == "name") {
      // The name is free text: it runs to the end of the line.
      const std::size_t at = static_cast<std::size_t>(kv->value.data() - text.data());
      device.name = std::string(trim(text.substr(at)));
      break;
    }
    if (Status ok = device_key(device, *kv); !ok) {
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
  trace_.devices.push_back(std::move(device));
  return {};
}

MaybeError Parser::intern_device(std::string_view id, std::uint16_t& out) {
  if (last_device_ < trace_.devices.size() && trace_.devices[last_device_].id == id) {
    out = last_device_;
    return std::nullopt;
  }
  const auto found = device_ids_.find(id);
  if (found == device_ids_.end()) {
    return LineError{Problem::unknown_device, 3};
  }
  last_device_ = found->second;
  out = found->second;
  return std::nullopt;
}

Status Parser::event(std::string_view text) {
  Fields f;
  const std::size_t n = split_fields(text, f);
  if (n == 0) {
    return {};  // only a trailing comment
  }
  const std::optional<OpShape> shape = op_shape(f[0]);
  MaybeError error;
  TraceEvent e;
  e.line = line_;
  if (!shape) {
    error = LineError{Problem::unknown_op, 0};
  } else if (n != shape->names.size()) {
    // Name the first field missing, or the first one too many.
    const std::size_t expected = shape->names.size();
    error = n < expected ? LineError{Problem::missing, n} : LineError{Problem::extra, expected};
  } else {
    e.op = shape->op;
    bool was = false;
    error = read_optional(f, 1, e.t_ns, was);
    e.recorded |= was ? recorded::kTime : 0;
    if (!error) {
      error = read_optional_u32(f, 2, e.cpu, was);
      e.recorded |= was ? recorded::kCpu : 0;
    }
    if (!error) {
      error = intern_device(f[3], e.device);
    }
    if (!error) {
      error = e.op == TraceOp::map     ? read_map(f, e)
              : e.op == TraceOp::unmap ? read_unmap(f, e)
                                       : read_sync(f, e);
    }
  }
  if (!error) {
    trace_.events.push_back(e);
    return {};
  }
  Error described = describe(*error, line_, f, shape ? shape->names : kMapFields);
  if (!options_.skip_bad) {
    return described;
  }
  ++trace_.bad_line_count;
  if (trace_.bad_lines.size() < options_.bad_lines_kept) {
    trace_.bad_lines.push_back({line_, described.message()});
  }
  return {};
}

}  // namespace

Result<Trace> parse_trace(std::string_view text, const ParseOptions& options) {
  return Parser(text, options).run();
}

Result<Trace> load_trace(const std::string& path, const ParseOptions& options) {
  Result<std::unique_ptr<MappedFile>> file = MappedFile::open(path);
  if (!file) {
    return std::move(file).error();
  }
  Result<Trace> trace = parse_trace((*file)->text(), options);
  if (!trace) {
    return make_error(trace.error().code(), "{}: {}", path, trace.error().message());
  }
  return trace;
}

}  // namespace swiotlb::sim
