// The `swiotlb=` parser. It follows the kernel's grammar and rounding step
// for step, so a command line gives the pool the kernel would build, but it
// refuses input the kernel would silently misread, and it reports as
// warnings the adjustments the kernel makes without a word.
//
// Parsing runs in two passes: the first reads every `swiotlb=` word into a
// WordRequest (only syntax is checked there), the second merges the requests
// in order and applies the kernel's rounding once, at the end.
#include "swiotlb/core/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <limits>

#include "high_pool_config.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

// Ours, not the kernel's: an area count far beyond any machine's CPU count
// is a typo, and bounding it keeps 128 * nareas well inside 64 bits.
constexpr std::uint64_t kMaxAreaCount = std::uint64_t{1} << 20;

constexpr std::string_view kParamName = "swiotlb";
constexpr std::string_view kHighParamName = "swiotlb_high";
constexpr std::string_view kAddrPrefix = "addr=";
constexpr std::string_view kGrammar = "<nslabs>[,<nareas>][,force|noforce][,addr=<phys>]";

// Errors and warnings quote at most a prefix of a token (high_pool_config.h).
std::string quoted(std::string_view text) {
  return quoted_token(text);
}

// What one `swiotlb=` word asked for; what it leaves unset keeps the value an
// earlier word gave.
struct WordRequest {
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint64_t> nareas;
  std::optional<ForceMode> force;
  std::optional<std::uint64_t> addr;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool starts_with_digit(std::string_view s) {
  return !s.empty() && s[0] >= '0' && s[0] <= '9';
}

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// The value of `c` as a digit, or a value >= 16 when it is not one.
unsigned digit_value(char c) {
  if (c >= '0' && c <= '9') {
    return static_cast<unsigned>(c - '0');
  }
  if (c >= 'a' && c <= 'f') {
    return static_cast<unsigned>(c - 'a' + 10);
  }
  if (c >= 'A' && c <= 'F') {
    return static_cast<unsigned>(c - 'A' + 10);
  }
  return 16;
}

// The kernel's area adjustment: no areas means one, others go up to a power
// of two so that an area index is a mask of the CPU number.
// A count taken from the CPUs is capped at kMaxAreaCount (nareas itself is
// refused above it), so the result always fits 32 bits.
std::uint32_t adjust_nareas(std::uint64_t nareas) {
  return nareas == 0
             ? 1u
             : static_cast<std::uint32_t>(std::min(round_up_power_of_two(nareas), kMaxAreaCount));
}

// Splits `value` at commas. Every piece, even an empty one, is a view into
// `value`, so its position in the original text can still be computed.
std::vector<std::string_view> split_fields(std::string_view value) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) {
      fields.push_back(value.substr(start));
      return fields;
    }
    fields.push_back(value.substr(start, comma - start));
    start = comma + 1;
  }
}

// Splits a command line into words the way the kernel does: white space
// separates words except inside double quotes.
std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) {
      ++i;
    }
    const std::size_t start = i;
    bool in_quote = false;
    while (i < text.size() && (in_quote || !is_space(text[i]))) {
      in_quote = text[i] == '"' ? !in_quote : in_quote;
      ++i;
    }
    if (i > start) {
      words.push_back(text.substr(start, i - start));
    }
  }
  return words;
}

// A command-line word split into its name and value, quotes removed as the
// kernel removes them (around the whole word, or around the value).
struct Param {
  std::string_view name;
  std::optional<std::string_view> value;
};

Param split_param(std::string_view word) {
  const bool quoted = !word.empty() && word.front() == '"';
  if (quoted) {
    word.remove_prefix(1);
  }
  const std::size_t equals = word.find('=');
  if (equals == std::string_view::npos) {
    if (quoted && !word.empty() && word.back() == '"') {
      word.remove_suffix(1);
    }
    return {word, std::nullopt};
  }
  std::string_view value = word.substr(equals + 1);
  const bool value_quoted = !value.empty() && value.front() == '"';
  if (value_quoted) {
    value.remove_prefix(1);
  }
  if ((quoted || value_quoted) && !value.empty() && value.back() == '"') {
    value.remove_suffix(1);
  }
  return {word.substr(0, equals), value};
}

std::string_view strip_quotes(std::string_view word) {
  if (word.size() >= 2 && word.front() == '"' && word.back() == '"') {
    return word.substr(1, word.size() - 2);
  }
  return word;
}

bool is_param_name(std::string_view name) {
  if (name.empty() || starts_with_digit(name)) {
    return false;
  }
  for (const char c : name) {
    const bool ok = digit_value(c) < 10 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Whether a lone word is a kernel parameter rather than a bare swiotlb value.
// `addr=` belongs to the value grammar, so it is never taken for a name.
bool is_kernel_param(std::string_view word) {
  const Param param = split_param(word);
  if (param.name == kParamName || param.name == "--") {
    return true;
  }
  return param.value.has_value() && param.name != "addr" && is_param_name(param.name);
}

// Why a digit that looks fine was refused, when the radix is the surprise.
std::string_view radix_hint(unsigned base, char c) {
  if (base != 8) {
    return "";
  }
  if (c == 'x' || c == 'X') {
    return " (0x must be followed by a hex digit)";
  }
  return digit_value(c) < 10 ? " (a leading 0 means octal)" : "";
}

// Reads the text into WordRequests, checking syntax only.
class RequestReader {
 public:
  explicit RequestReader(std::string_view text) : text_(text) {}

  Status read_command_line();
  Status read_value(std::string_view value);

  const std::vector<WordRequest>& requests() const { return requests_; }
  const std::vector<HighPoolWord>& high_words() const { return high_words_; }
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  std::size_t column(std::string_view token) const {
    return static_cast<std::size_t>(token.data() - text_.data()) + 1;
  }
  Result<std::uint64_t> read_number(std::string_view token, std::string_view what) const;
  Status read_numbers(const std::vector<std::string_view>& fields, std::size_t& i,
                      WordRequest& request) const;
  Status read_words(const std::vector<std::string_view>& fields, std::size_t& i,
                    WordRequest& request) const;
  Error reject_field(std::string_view value, std::string_view field,
                     const WordRequest& request) const;

  std::string_view text_;
  std::vector<WordRequest> requests_;
  std::vector<HighPoolWord> high_words_;
  std::vector<std::string> warnings_;
};

// Reads a number with the radix rules of the kernel's simple_strtoul(s, &e, 0)
// ("0x" then a hex digit: hex; a leading 0: octal; else decimal), but
// insists that the whole token is the number and that it fits 64 bits.
Result<std::uint64_t> RequestReader::read_number(std::string_view token,
                                                 std::string_view what) const {
  unsigned base = 10;
  std::string_view digits = token;
  if (token.size() >= 3 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X') &&
      is_hex_digit(token[2])) {
    base = 16;
    digits.remove_prefix(2);
  } else if (token[0] == '0') {
    base = 8;
  }
  std::uint64_t value = 0;
  for (const char c : digits) {
    const unsigned digit = digit_value(c);
    if (digit >= base) {
      const std::string_view hint = radix_hint(base, c);
      return make_error(Errc::parse,
                        "{} '{}' at column {} is not a number: '{}' is not a base-{} digit{}", what,
                        quoted(token), column(token), c, base, hint);
    }
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / base) {
      return make_error(Errc::parse, "{} '{}' at column {} does not fit in 64 bits", what,
                        quoted(token), column(token));
    }
    value = value * base + digit;
  }
  return value;
}

// The leading numbers: nslabs, then nareas. A value may skip nslabs with a
// leading comma (",4"), the kernel's only way to give nareas alone.
Status RequestReader::read_numbers(const std::vector<std::string_view>& fields, std::size_t& i,
                                   WordRequest& request) const {
  if (starts_with_digit(fields[i])) {
    auto nslabs = read_number(fields[i], "nslabs");
    if (!nslabs) {
      return nslabs.error();
    }
    if (*nslabs > kMaxSlotCount) {
      return make_error(Errc::parse,
                        "nslabs '{}' at column {} is too large: at most {} slots (4 TiB)",
                        quoted(fields[i]), column(fields[i]), kMaxSlotCount);
    }
    request.nslabs = *nslabs;
    ++i;
  } else if (fields[i].empty() && fields.size() > 1 && starts_with_digit(fields[1])) {
    ++i;
  }
  if (i < fields.size() && starts_with_digit(fields[i])) {
    auto nareas = read_number(fields[i], "nareas");
    if (!nareas) {
      return nareas.error();
    }
    if (*nareas > kMaxAreaCount) {
      return make_error(Errc::parse, "nareas '{}' at column {} is too large: at most {} areas",
                        quoted(fields[i]), column(fields[i]), kMaxAreaCount);
    }
    request.nareas = *nareas;
    ++i;
  }
  return Status::ok();
}

// The words after the numbers: at most one of force/noforce, then addr=.
Status RequestReader::read_words(const std::vector<std::string_view>& fields, std::size_t& i,
                                 WordRequest& request) const {
  if (i < fields.size() && (fields[i] == "force" || fields[i] == "noforce")) {
    request.force = fields[i] == "force" ? ForceMode::force : ForceMode::noforce;
    ++i;
  }
  if (i < fields.size() && fields[i].substr(0, kAddrPrefix.size()) == kAddrPrefix) {
    const std::string_view text = fields[i].substr(kAddrPrefix.size());
    if (!starts_with_digit(text)) {
      return make_error(Errc::parse,
                        "'{}' at column {} needs a number after addr=", quoted(fields[i]),
                        column(fields[i]));
    }
    auto addr = read_number(text, "addr");
    if (!addr) {
      return addr.error();
    }
    if (*addr % kPageSize != 0) {
      return make_error(Errc::parse, "'{}' at column {} is not page-aligned ({} bytes)",
                        quoted(fields[i]), column(fields[i]), kPageSize);
    }
    request.addr = *addr;
    ++i;
  }
  return Status::ok();
}

// Says why `field` cannot stand where it does.
Error RequestReader::reject_field(std::string_view value, std::string_view field,
                                  const WordRequest& request) const {
  const std::size_t at = column(field);
  if (field.empty()) {
    return make_error(Errc::parse, "empty field at column {} in '{}' (expected {})", at,
                      quoted(value), kGrammar);
  }
  if (field == "force" || field == "noforce") {
    if (request.force && !request.addr) {
      const bool same = (field == "force") == (*request.force == ForceMode::force);
      return make_error(Errc::parse, "{} word '{}' at column {} in '{}'",
                        same ? "repeated" : "conflicting", quoted(field), at, quoted(value));
    }
  }
  if (field.substr(0, kAddrPrefix.size()) == kAddrPrefix && request.addr) {
    return make_error(Errc::parse, "repeated word '{}' at column {} in '{}'", quoted(field), at,
                      quoted(value));
  }
  if (starts_with_digit(field) || field == "force" || field == "noforce") {
    return make_error(Errc::parse, "'{}' at column {} is out of place in '{}' (expected {})",
                      quoted(field), at, quoted(value), kGrammar);
  }
  return make_error(
      Errc::parse,
      "unknown word '{}' at column {} in '{}' (expected force, noforce or addr=<phys>)",
      quoted(field), at, quoted(value));
}

Status RequestReader::read_value(std::string_view value) {
  if (value.empty()) {
    return make_error(Errc::parse, "empty value at column {} (expected swiotlb={})", column(value),
                      kGrammar);
  }
  const std::vector<std::string_view> fields = split_fields(value);
  WordRequest request;
  std::size_t i = 0;
  if (Status s = read_numbers(fields, i, request); !s) {
    return s;
  }
  if (Status s = read_words(fields, i, request); !s) {
    return s;
  }
  if (i < fields.size()) {
    return reject_field(value, fields[i], request);
  }
  requests_.push_back(request);
  return Status::ok();
}

// Reads every `swiotlb=` word in order. Other words are other parameters;
// "--" ends the kernel's part of the line (what follows goes to init).
Status RequestReader::read_command_line() {
  for (const std::string_view word : split_words(text_)) {
    const Param param = split_param(word);
    if (param.name == "--" && !param.value) {
      break;
    }
    if (param.name == kHighParamName) {
      if (!param.value) {
        return make_error(
            Errc::parse,
            "'{}' at column {} has no value (expected swiotlb_high=<nslabs>[,<nareas>])",
            quoted(word), column(word));
      }
      high_words_.push_back({word, *param.value, column(word)});
      continue;
    }
    if (param.name != kParamName) {
      continue;
    }
    if (!param.value) {
      return make_error(Errc::parse, "'{}' at column {} has no value (expected swiotlb={})",
                        quoted(word), column(word), kGrammar);
    }
    if (!requests_.empty()) {
      warnings_.push_back(
          fmt::format("'{}' at column {} repeats swiotlb=: what it sets replaces the earlier value",
                      quoted(word), column(word)));
    }
    if (Status s = read_value(*param.value); !s) {
      return s;
    }
  }
  return Status::ok();
}

// The requests merged in order, remembering which word set the size and
// which the areas, because the kernel rounds at the moment it reads nareas.
struct Merged {
  WordRequest last;
  std::optional<std::size_t> nslabs_word;
  std::optional<std::size_t> nareas_word;
  bool saw_force = false;
  bool saw_noforce = false;
};

Merged merge(const std::vector<WordRequest>& requests) {
  Merged merged;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const WordRequest& r = requests[i];
    if (r.nslabs) {
      merged.last.nslabs = r.nslabs;
      merged.nslabs_word = i;
    }
    if (r.nareas) {
      merged.last.nareas = r.nareas;
      merged.nareas_word = i;
    }
    if (r.addr) {
      merged.last.addr = r.addr;
    }
    merged.saw_force = merged.saw_force || r.force == ForceMode::force;
    merged.saw_noforce = merged.saw_noforce || r.force == ForceMode::noforce;
  }
  return merged;
}

// The kernel keeps force and noforce as two separate flags that are only ever
// set, and noforce wins; so once noforce is seen it stays, whatever follows.
void apply_force(const Merged& merged, SwiotlbConfig& config) {
  if (merged.saw_noforce) {
    config.force = ForceMode::noforce;
    config.warnings.push_back(
        "noforce: the kernel turns the software IO TLB off and frees its pool; nslabs and "
        "nareas describe the pool it would otherwise have had");
    if (merged.saw_force) {
      config.warnings.push_back(
          "both force and noforce were given (in different swiotlb= words): the kernel keeps "
          "both flags and noforce wins, whatever the order");
    }
  } else if (merged.saw_force) {
    config.force = ForceMode::force;
  }
}

void round_nslabs(SwiotlbConfig& config, std::uint64_t nslabs, bool nareas_from_cpus) {
  const std::string what = config.requested_nslabs ? "nslabs" : "the default nslabs";
  const std::string areas = fmt::format("{} area{}{}", config.nareas, config.nareas == 1 ? "" : "s",
                                        nareas_from_cpus ? " (one per CPU)" : "");
  const std::uint64_t floor = std::uint64_t{kSegmentSlots} * config.nareas;
  if (nslabs < floor) {
    config.warnings.push_back(fmt::format(
        "{} raised from {} to {} so that each of the {} holds at least one full {}-slot segment",
        what, nslabs, floor, areas, kSegmentSlots));
    nslabs = floor;
  } else if (!is_power_of_two(nslabs)) {
    const std::uint64_t rounded = round_up_power_of_two(nslabs);
    config.warnings.push_back(fmt::format(
        "{} rounded up from {} to {}, a power of two, so that the {} are all the same size", what,
        nslabs, rounded, areas));
    nslabs = rounded;
  }
  config.nslabs = nslabs;
}

// The kernel's rounding: nslabs to whole segments, nareas to a power of two
// (from the CPU count when not given), then nslabs to a power of two that
// gives every area at least one segment.
void apply_geometry(SwiotlbConfig& config, unsigned cpu_count) {
  std::uint64_t nslabs = kDefaultSlotCount;
  if (config.requested_nslabs) {
    nslabs = kernel_align(*config.requested_nslabs, kSegmentSlots);
    if (nslabs != *config.requested_nslabs) {
      config.warnings.push_back(
          fmt::format("nslabs rounded up from {} to {}: the pool is made of whole {}-slot segments",
                      *config.requested_nslabs, nslabs, kSegmentSlots));
    }
  }
  config.nareas = adjust_nareas(config.requested_nareas.value_or(cpu_count));
  if (config.requested_nareas && config.nareas != *config.requested_nareas) {
    config.warnings.push_back(fmt::format(
        "nareas rounded up from {} to {}: {}", *config.requested_nareas, config.nareas,
        *config.requested_nareas == 0 ? "0 means a single area" : "areas come in powers of two"));
  }
  round_nslabs(config, nslabs, !config.requested_nareas);
}

// With several swiotlb= words the kernel rounds nslabs only while reading
// nareas; a size given by a later word than the areas is then never rounded.
// We round it anyway (an uneven pool is the bug the rounding exists to
// prevent) and say where the kernel would differ.
void note_kernel_difference(const Merged& merged, SwiotlbConfig& config) {
  if (!merged.nareas_word || !merged.nslabs_word || *merged.nslabs_word <= *merged.nareas_word) {
    return;
  }
  const std::uint64_t kernel_nslabs = kernel_align(*config.requested_nslabs, kSegmentSlots);
  if (kernel_nslabs != config.nslabs) {
    config.warnings.push_back(fmt::format(
        "the kernel would keep {} slots here: it rounds nslabs only when it reads nareas, and "
        "nareas came from an earlier swiotlb= word; using {}",
        kernel_nslabs, config.nslabs));
  }
}

Result<SwiotlbConfig> resolve(RequestReader& reader, unsigned cpu_count) {
  const Merged merged = merge(reader.requests());
  SwiotlbConfig config;
  config.warnings = std::move(reader.warnings());
  config.requested_nslabs = merged.last.nslabs;
  config.requested_nareas = merged.last.nareas;
  config.addr = merged.last.addr;
  apply_geometry(config, cpu_count);
  note_kernel_difference(merged, config);
  apply_force(merged, config);
  if (config.addr &&
      *config.addr > std::numeric_limits<std::uint64_t>::max() - (config.bytes() - 1)) {
    return make_error(Errc::parse,
                      "addr={:#x} with a pool of {} bytes runs past the end of the 64-bit "
                      "address space",
                      *config.addr, config.bytes());
  }
  return config;
}

}  // namespace

std::string_view to_string(ForceMode mode) {
  switch (mode) {
    case ForceMode::automatic:
      return "auto";
    case ForceMode::force:
      return "force";
    case ForceMode::noforce:
      return "noforce";
  }
  return "unknown";
}

SwiotlbConfig default_swiotlb_config(unsigned cpu_count) {
  SwiotlbConfig config;
  apply_geometry(config, cpu_count);
  return config;
}

Result<SwiotlbConfig> parse_swiotlb_config(std::string_view text, unsigned cpu_count) {
  RequestReader reader(text);
  const std::vector<std::string_view> words = split_words(text);
  Status status;
  if (words.size() == 1 && !is_kernel_param(words[0])) {
    status = reader.read_value(strip_quotes(words[0]));
  } else {
    status = reader.read_command_line();
  }
  if (!status) {
    return status.error();
  }
  Result<SwiotlbConfig> config = resolve(reader, cpu_count);
  if (config) {
    if (Status high = apply_high_pool(reader.high_words(), *config); !high) {
      return high.error();
    }
  }
  return config;
}

Status validate_geometry(std::uint64_t nslabs, std::uint32_t nareas) {
  if (nslabs == 0 || nslabs % kSegmentSlots != 0 || nslabs > kMaxSlotCount) {
    return make_error(Errc::invalid_argument,
                      "nslabs {} must be a non-zero multiple of {} and at most {}", nslabs,
                      kSegmentSlots, kMaxSlotCount);
  }
  if (!is_power_of_two(nareas)) {
    return make_error(Errc::invalid_argument, "nareas {} must be a power of two (1, 2, 4, ...)",
                      nareas);
  }
  if (nslabs % nareas != 0 || nslabs / nareas < kSegmentSlots) {
    return make_error(Errc::invalid_argument,
                      "nslabs {} cannot be split into {} areas of at least {} slots each", nslabs,
                      nareas, kSegmentSlots);
  }
  return Status::ok();
}

}  // namespace swiotlb
