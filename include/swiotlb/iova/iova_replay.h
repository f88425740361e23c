// Replays an IOVA trace (iova_trace.h) through kernel-exact IovaDomains, one
// per "# domain" line, and reports how often our allocator chose the pfn the
// kernel chose.
//
// Each reserve goes to reserve_iova, each alloc to alloc_iova_fast with the
// trace's CPU, size, limit and flush flag, each free to free_iova_fast. When
// our pfn differs from the kernel's, the replay goes on: later frees of the
// kernel's pfn are translated to ours, so one disagreement does not turn
// every later line into an error. An alloc the kernel failed but we did not
// is kept live until the end; a free of an IOVA we failed to allocate is
// skipped.
//
// A trace that contradicts itself (a free of a pfn the trace never
// allocated, a reserve outside its domain, a CPU beyond the domain's) is an
// error naming the line.
//
// Synchronization: replay runs on the calling thread, on domains of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/iova/iova_trace.h"

namespace swiotlb::iova {

struct IovaReplayOptions {
  // CPUs per domain; by default the highest CPU in the trace plus one.
  std::optional<unsigned> cpus;
};

struct IovaMismatch {
  std::size_t line = 0;
  std::optional<std::uint64_t> expected;  // the kernel's pfn, nothing for "fail"
  std::optional<std::uint64_t> got;       // ours
};

struct IovaReplayDomainReport {
  std::uint32_t id = 0;
  std::uint64_t granule = 0;
  std::uint64_t start_pfn = 0;
  std::uint64_t reserves = 0;
  std::uint64_t allocs = 0;
  std::uint64_t alloc_failures = 0;  // ours
  std::uint64_t frees = 0;
  std::uint64_t frees_skipped = 0;  // of IOVAs we had failed to allocate
  std::uint64_t matched = 0;
  std::uint64_t compared = 0;
  std::uint64_t peak_live = 0;  // IOVAs handed out at once, at most
  std::uint64_t live_at_end = 0;
  std::uint64_t cached_at_end = 0;  // pfns parked in magazines at the end
};

struct IovaReplayReport {
  unsigned cpus = 0;
  std::uint64_t reserves = 0;
  std::uint64_t allocs = 0;
  std::uint64_t frees = 0;
  std::uint64_t matched = 0;
  std::uint64_t compared = 0;
  std::optional<IovaMismatch> first_mismatch;
  std::vector<IovaReplayDomainReport> domains;

  bool agrees() const { return matched == compared; }
};

// Fails (invalid_argument) when options.cpus does not cover the trace's
// CPUs or a domain's geometry is refused by IovaDomain::create; fails
// (parse) naming the line when the trace contradicts itself.
Result<IovaReplayReport> replay_iova_trace(const IovaTrace& trace,
                                           const IovaReplayOptions& options = {});

// {"allocs", "frees", "reserves", "cpus",
//  "agreement": {"matched", "compared", "first_mismatch_line"
//                (null when all agree), "first_mismatch": {...} or null},
//  "domains": [{"id", "granule", "start_pfn", "peak_live", ...}]}
nlohmann::json to_json(const IovaReplayReport& report);
// A few lines for people.
std::string format_replay_report(const IovaReplayReport& report);

}  // namespace swiotlb::iova
