// IOVA trace format v1: a line-at-a-time parser that names the line and the
// field of the first error, and the matching writer. Pure functions.
#include "swiotlb/iova/iova_trace.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <fstream>
#include <system_error>

#include "swiotlb/iova/dma_window.h"

namespace swiotlb::iova {
namespace {

constexpr std::string_view kVersionLine = "# swiotlb-iova-trace v1";
constexpr std::size_t kQuotedBytes = 64;

// `text`, or its first kQuotedBytes and a note of its length.
std::string quoted(std::string_view text) {
  if (text.size() <= kQuotedBytes) {
    return std::string(text);
  }
  return fmt::format("{}... ({} bytes in all)", text.substr(0, kQuotedBytes), text.size());
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t pos = 0;
  while (true) {
    const std::size_t start = line.find_first_not_of(" \t\r", pos);
    if (start == std::string_view::npos) {
      return fields;
    }
    const std::size_t end = std::min(line.find_first_of(" \t\r", start), line.size());
    fields.push_back(line.substr(start, end - start));
    pos = end;
  }
}

// Parses the fields of one line, remembering the line for error messages.
class LineParser {
 public:
  LineParser(std::size_t line, std::vector<std::string_view> fields)
      : line_(line), fields_(std::move(fields)) {}

  Status expect_count(std::size_t count, std::string_view usage) const {
    if (fields_.size() != count) {
      return make_error(Errc::parse, "line {}: {} takes {} fields ({}), found {}", line_,
                        quoted(fields_[0]), count - 1, usage, fields_.size() - 1);
    }
    return Status::ok();
  }

  Result<std::uint64_t> number(std::size_t index, std::string_view field) const {
    Result<std::uint64_t> value = parse_dma_number(fields_[index], field);
    if (!value) {
      return make_error(Errc::parse, "line {}: {} '{}' is not a number", line_, field,
                        quoted(fields_[index]));
    }
    return value;
  }

  Result<std::uint32_t> small(std::size_t index, std::string_view field) const {
    Result<std::uint64_t> value = number(index, field);
    if (value && *value > 0xffffffffu) {
      return make_error(Errc::parse, "line {}: {} {} is too large", line_, field, *value);
    }
    if (!value) {
      return std::move(value).error();
    }
    return static_cast<std::uint32_t>(*value);
  }

  // A CPU id: it sizes per-CPU caches, so it is bounded.
  Result<std::uint32_t> cpu(std::size_t index) const {
    Result<std::uint32_t> value = small(index, "cpu");
    if (value && *value >= kMaxIovaTraceCpus) {
      return make_error(Errc::parse, "line {}: cpu {} is not below the limit of {} CPUs", line_,
                        *value, kMaxIovaTraceCpus);
    }
    return value;
  }

  std::string_view field(std::size_t index) const { return fields_[index]; }
  std::size_t line() const { return line_; }

 private:
  std::size_t line_;
  std::vector<std::string_view> fields_;
};

// Unwraps a Result into `out` or returns its error from the caller.
#define SWIOTLB_TRY_ASSIGN(out, expr)    \
  do {                                   \
    auto result_ = (expr);               \
    if (!result_) {                      \
      return std::move(result_).error(); \
    }                                    \
    (out) = *result_;                    \
  } while (false)

Result<IovaTraceDomain> parse_domain(const LineParser& p) {
  // "# domain <id> granule=<bytes> start_pfn=<hex>"
  if (Status st = p.expect_count(5, "# domain <id> granule=<bytes> start_pfn=<pfn>"); !st) {
    return st.error();
  }
  IovaTraceDomain domain;
  domain.line = p.line();
  SWIOTLB_TRY_ASSIGN(domain.id, p.small(2, "domain id"));
  const auto value_of = [&](std::size_t index, std::string_view key) -> Result<std::uint64_t> {
    const std::string_view text = p.field(index);
    if (text.substr(0, key.size()) != key || text.size() <= key.size() || text[key.size()] != '=') {
      return make_error(Errc::parse, "line {}: expected {}=<value>, found '{}'", p.line(), key,
                        quoted(text));
    }
    Result<std::uint64_t> value = parse_dma_number(text.substr(key.size() + 1), key);
    if (!value) {
      return make_error(Errc::parse, "line {}: {} '{}' is not a number", p.line(), key,
                        quoted(text.substr(key.size() + 1)));
    }
    return value;
  };
  SWIOTLB_TRY_ASSIGN(domain.granule, value_of(3, "granule"));
  SWIOTLB_TRY_ASSIGN(domain.start_pfn, value_of(4, "start_pfn"));
  if (!std::has_single_bit(domain.granule)) {
    return make_error(Errc::parse, "line {}: granule {} is not a power of two", p.line(),
                      domain.granule);
  }
  return domain;
}

Result<IovaTraceOp> parse_reserve(const LineParser& p) {
  if (Status st = p.expect_count(4, "<dom> <pfn_lo> <pfn_hi>"); !st) {
    return st.error();
  }
  IovaTraceOp op;
  op.kind = IovaOpKind::reserve;
  SWIOTLB_TRY_ASSIGN(op.domain, p.small(1, "domain"));
  SWIOTLB_TRY_ASSIGN(op.pfn, p.number(2, "pfn_lo"));
  SWIOTLB_TRY_ASSIGN(op.pfn_hi, p.number(3, "pfn_hi"));
  if (op.pfn > op.pfn_hi) {
    return make_error(Errc::parse, "line {}: pfn_lo {:#x} is above pfn_hi {:#x}", p.line(), op.pfn,
                      op.pfn_hi);
  }
  return op;
}

Result<IovaTraceOp> parse_alloc(const LineParser& p) {
  if (Status st = p.expect_count(7, "<cpu> <dom> <size> <limit_pfn> <flush> <pfn|fail>"); !st) {
    return st.error();
  }
  IovaTraceOp op;
  op.kind = IovaOpKind::alloc;
  SWIOTLB_TRY_ASSIGN(op.cpu, p.cpu(1));
  SWIOTLB_TRY_ASSIGN(op.domain, p.small(2, "domain"));
  SWIOTLB_TRY_ASSIGN(op.size, p.number(3, "size"));
  SWIOTLB_TRY_ASSIGN(op.limit_pfn, p.number(4, "limit_pfn"));
  if (p.field(5) != "0" && p.field(5) != "1") {
    return make_error(Errc::parse, "line {}: flush '{}' is not 0 or 1", p.line(),
                      quoted(p.field(5)));
  }
  op.flush = p.field(5) == "1";
  if (p.field(6) != "fail") {
    SWIOTLB_TRY_ASSIGN(op.result, p.number(6, "result pfn"));
  }
  return op;
}

Result<IovaTraceOp> parse_free(const LineParser& p) {
  if (Status st = p.expect_count(5, "<cpu> <dom> <pfn> <size>"); !st) {
    return st.error();
  }
  IovaTraceOp op;
  op.kind = IovaOpKind::free;
  SWIOTLB_TRY_ASSIGN(op.cpu, p.cpu(1));
  SWIOTLB_TRY_ASSIGN(op.domain, p.small(2, "domain"));
  SWIOTLB_TRY_ASSIGN(op.pfn, p.number(3, "pfn"));
  SWIOTLB_TRY_ASSIGN(op.size, p.number(4, "size"));
  return op;
}

#undef SWIOTLB_TRY_ASSIGN

Result<IovaTraceOp> parse_op(const LineParser& p) {
  const std::string_view verb = p.field(0);
  Result<IovaTraceOp> op =
      verb == "reserve" ? parse_reserve(p)
      : verb == "alloc" ? parse_alloc(p)
      : verb == "free"  ? parse_free(p)
                        : Result<IovaTraceOp>(make_error(Errc::parse, "line {}: unknown op '{}'",
                                                         p.line(), quoted(verb)));
  if (op) {
    op->line = p.line();
  }
  return op;
}

// Adds one non-blank line to `trace`.
Status parse_line(std::size_t line_no, std::string_view line, IovaTrace& trace) {
  std::vector<std::string_view> fields = split_fields(line);
  if (fields.empty()) {
    return Status::ok();
  }
  if (fields[0][0] == '#') {
    if (fields.size() < 2 || fields[0] != "#" || fields[1] != "domain") {
      return Status::ok();  // a comment
    }
    Result<IovaTraceDomain> domain = parse_domain(LineParser(line_no, std::move(fields)));
    if (!domain) {
      return domain.error();
    }
    if (const IovaTraceDomain* seen = trace.find_domain(domain->id)) {
      return make_error(Errc::parse, "line {}: domain {} was already declared on line {}", line_no,
                        domain->id, seen->line);
    }
    trace.domains.push_back(*domain);
    return Status::ok();
  }
  Result<IovaTraceOp> op = parse_op(LineParser(line_no, std::move(fields)));
  if (!op) {
    return op.error();
  }
  if (trace.find_domain(op->domain) == nullptr) {
    return make_error(Errc::parse, "line {}: domain {} is used before any '# domain' line", line_no,
                      op->domain);
  }
  trace.ops.push_back(*op);
  return Status::ok();
}

}  // namespace

std::optional<std::uint32_t> IovaTrace::max_cpu() const {
  std::optional<std::uint32_t> max;
  for (const IovaTraceOp& op : ops) {
    if (op.kind != IovaOpKind::reserve) {
      max = std::max(max.value_or(0), op.cpu);
    }
  }
  return max;
}

const IovaTraceDomain* IovaTrace::find_domain(std::uint32_t id) const {
  const auto it = std::find_if(domains.begin(), domains.end(),
                               [id](const IovaTraceDomain& d) { return d.id == id; });
  return it == domains.end() ? nullptr : &*it;
}

Result<IovaTrace> parse_iova_trace(std::string_view text) {
  IovaTrace trace;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.size() > kMaxIovaTraceLineBytes) {
      return make_error(Errc::parse,
                        "line {}: the line is {} bytes long, more than the limit of {}", line_no,
                        line.size(), kMaxIovaTraceLineBytes);
    }
    if (line.find('\r') != std::string_view::npos) {
      return make_error(Errc::parse,
                        "line {}: a carriage return inside the line: lines must end with LF or "
                        "CRLF, not CR alone",
                        line_no);
    }
    if (line_no == 1) {
      if (line != kVersionLine) {
        return make_error(Errc::parse, "line 1: version: expected '{}', found '{}'", kVersionLine,
                          quoted(line));
      }
      continue;
    }
    if (Status st = parse_line(line_no, line, trace); !st) {
      return st.error();
    }
  }
  if (line_no == 0) {
    return make_error(Errc::parse, "line 1: version: the trace is empty");
  }
  return trace;
}

Result<IovaTrace> read_iova_trace(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (std::filesystem::is_directory(status)) {
    return make_error(Errc::invalid_argument, "{} is a directory, not an IOVA trace",
                      path.string());
  }
  if (std::filesystem::is_character_file(status) || std::filesystem::is_block_file(status)) {
    return make_error(Errc::invalid_argument,
                      "{} is a device, not an IOVA trace (give a regular file or a pipe)",
                      path.string());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    return make_error(Errc::system, "cannot open IOVA trace {}: {}", path.string(),
                      std::generic_category().message(err));
  }
  // Read in blocks, up to the limit, so that an endless stream is refused.
  std::string text;
  std::array<char, 1 << 16> block{};
  while (in) {
    in.read(block.data(), block.size());
    text.append(block.data(), static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxIovaTraceStreamBytes) {
      return make_error(Errc::invalid_argument,
                        "{} gave more than {} bytes: an IOVA trace is read up to that limit",
                        path.string(), kMaxIovaTraceStreamBytes);
    }
  }
  if (in.bad()) {
    return make_error(Errc::system, "cannot read IOVA trace {}", path.string());
  }
  Result<IovaTrace> trace = parse_iova_trace(text);
  if (!trace) {
    return make_error(Errc::parse, "{}: {}", path.string(), trace.error().message());
  }
  return trace;
}

std::string format_iova_trace(const IovaTrace& trace) {
  std::string out = std::string(kVersionLine) + "\n";
  for (const IovaTraceDomain& d : trace.domains) {
    out += fmt::format("# domain {} granule={} start_pfn={:#x}\n", d.id, d.granule, d.start_pfn);
  }
  for (const IovaTraceOp& op : trace.ops) {
    switch (op.kind) {
      case IovaOpKind::reserve:
        out += fmt::format("reserve {} {:#x} {:#x}\n", op.domain, op.pfn, op.pfn_hi);
        break;
      case IovaOpKind::alloc:
        out += fmt::format("alloc {} {} {} {:#x} {} {}\n", op.cpu, op.domain, op.size, op.limit_pfn,
                           op.flush ? 1 : 0,
                           op.result ? fmt::format("{:#x}", *op.result) : std::string("fail"));
        break;
      case IovaOpKind::free:
        out += fmt::format("free {} {} {:#x} {}\n", op.cpu, op.domain, op.pfn, op.size);
        break;
    }
  }
  return out;
}

}  // namespace swiotlb::iova
