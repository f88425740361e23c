// IOVA traces, format v1: what a kernel's IOVA allocator was asked and what
// it answered, domain by domain, recorded with kprobes on reserve_iova,
// alloc_iova_fast and free_iova_fast.
//
//   # swiotlb-iova-trace v1
//   # domain <id> granule=<bytes> start_pfn=<hex>
//   reserve <dom> <pfn_lo> <pfn_hi>                       (inclusive)
//   alloc <cpu> <dom> <size_pages> <limit_pfn> <flush 0|1> <pfn|fail>
//   free <cpu> <dom> <pfn> <size_pages>
//
// The first line must be the version line. Other lines starting with '#'
// are comments, except "# domain", which declares a domain before its first
// use. Blank lines are skipped. Numbers are decimal or 0x-prefixed hex
// (pfns are written in hex by convention). A malformed line is an error
// naming its line number and the field at fault. Lines end with LF or CRLF
// (CR alone is refused); limits: a line is at most kMaxIovaTraceLineBytes, a
// CPU id below kMaxIovaTraceCpus, and a file that is not a regular one at
// most kMaxIovaTraceStreamBytes; errors quote at most 64 bytes of a field.
//
// Plain values; no synchronization needed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "swiotlb/core/error.h"

namespace swiotlb::iova {

inline constexpr std::size_t kMaxIovaTraceLineBytes = std::size_t{1} << 20;
// CPU ids size the replay's per-CPU caches; Linux's largest NR_CPUS is 8192.
inline constexpr std::uint32_t kMaxIovaTraceCpus = 8192;
inline constexpr std::size_t kMaxIovaTraceStreamBytes = std::size_t{1} << 30;

struct IovaTraceDomain {
  std::uint32_t id = 0;
  std::uint64_t granule = 0;
  std::uint64_t start_pfn = 0;
  std::size_t line = 0;  // where it was declared
  bool operator==(const IovaTraceDomain&) const = default;
};

enum class IovaOpKind : std::uint8_t { reserve, alloc, free };

// One call. Fields a kind does not use stay 0.
struct IovaTraceOp {
  IovaOpKind kind = IovaOpKind::alloc;
  std::size_t line = 0;
  std::uint32_t cpu = 0;  // alloc, free
  std::uint32_t domain = 0;
  std::uint64_t pfn = 0;                // reserve: pfn_lo; free: the pfn freed
  std::uint64_t pfn_hi = 0;             // reserve
  std::uint64_t size = 0;               // alloc, free: granules as the caller asked
  std::uint64_t limit_pfn = 0;          // alloc: inclusive
  bool flush = false;                   // alloc: flush_rcache
  std::optional<std::uint64_t> result;  // alloc: the kernel's pfn, or nothing for "fail"
  bool operator==(const IovaTraceOp&) const = default;
};

struct IovaTrace {
  std::vector<IovaTraceDomain> domains;  // in declaration order
  std::vector<IovaTraceOp> ops;          // in trace order
  // The highest CPU any op names, or nothing when no op names one.
  std::optional<std::uint32_t> max_cpu() const;
  const IovaTraceDomain* find_domain(std::uint32_t id) const;
};

// Fails (parse) with "line N: <field> ..." for: a missing or wrong version
// line, an unknown op, a wrong field count, a number that does not parse, a
// flush other than 0/1, an op on an undeclared domain, a domain declared
// twice, or a granule that is not a power of two.
Result<IovaTrace> parse_iova_trace(std::string_view text);
// Reads and parses a file. Fails (system) when it cannot be read, and
// (invalid_argument) for a directory, a device, or a stream longer than
// kMaxIovaTraceStreamBytes.
Result<IovaTrace> read_iova_trace(const std::filesystem::path& path);

// Writes a trace back in format v1 (pfns and limits in hex).
std::string format_iova_trace(const IovaTrace& trace);

}  // namespace swiotlb::iova
