// What each fuzz target checks, shared by the libFuzzer drivers in fuzz/
// and by the regression test that runs every corpus file through the same
// checks in the normal test suite (tests/tools/bad_input_fuzz_corpus_test.cc).
// Each function takes the raw input and returns an empty string when all
// held, or what broke.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "swiotlb/core/config.h"
#include "swiotlb/iova/iova_replay.h"
#include "swiotlb/iova/iova_trace.h"
#include "swiotlb/sim/dynamic_replay.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace_parser.h"

namespace swiotlb::fuzz {

// The `swiotlb=` parser (and `swiotlb_high=`); the first byte picks a CPU
// count up to 2^24, so that the cap on areas taken from CPUs is reached.
// Every configuration accepted must be one a pool can be built from.
inline std::string check_config(std::string_view input) {
  if (input.empty()) {
    return {};
  }
  const unsigned cpus = 1u << (static_cast<unsigned char>(input[0]) % 25);
  Result<SwiotlbConfig> config = parse_swiotlb_config(input.substr(1), cpus);
  if (!config) {
    return {};
  }
  if (!validate_geometry(config->nslabs, config->nareas)) {
    return "accepted a geometry no pool can have";
  }
  if (config->high_nslabs && !validate_geometry(*config->high_nslabs, config->high_nareas)) {
    return "accepted a high pool geometry no pool can have";
  }
  if (config->addr && *config->addr > ~std::uint64_t{0} - (config->bytes() - 1)) {
    return "accepted a pool whose end wraps";
  }
  return {};
}

// The trace v1 parser, strict and skipping bad lines: every event parsed
// names a declared device.
inline std::string check_trace_v1(std::string_view input) {
  for (const bool skip_bad : {false, true}) {
    sim::ParseOptions options;
    options.skip_bad = skip_bad;
    Result<sim::Trace> trace = sim::parse_trace(input, options);
    if (!trace) {
      continue;
    }
    for (const sim::TraceEvent& e : trace->events) {
      if (e.device >= trace->devices.size()) {
        return "an event names a device that was not declared";
      }
    }
  }
  return {};
}

// The IOVA trace parser: what it accepts is written back and read again
// (the two must agree) and, when small, replayed on kernel-exact domains.
inline std::string check_iova_trace(std::string_view input) {
  Result<iova::IovaTrace> trace = iova::parse_iova_trace(input);
  if (!trace) {
    return {};
  }
  Result<iova::IovaTrace> again = iova::parse_iova_trace(iova::format_iova_trace(*trace));
  if (!again) {
    return "the writer wrote what the parser refuses: " + again.error().message();
  }
  // Line numbers differ (the writer drops comments); all else must agree.
  if (again->ops.size() != trace->ops.size() || again->domains.size() != trace->domains.size()) {
    return "the trace read back has a different number of ops or domains";
  }
  for (std::size_t i = 0; i < trace->ops.size(); ++i) {
    iova::IovaTraceOp read_back = again->ops[i];
    read_back.line = trace->ops[i].line;
    if (read_back != trace->ops[i]) {
      return "op " + std::to_string(i) + " read back differs from the op written";
    }
  }
  if (trace->ops.size() <= 4096 && trace->domains.size() <= 16) {
    (void)iova::replay_iova_trace(*trace, {});
  }
  return {};
}

// A parsed trace replayed through every policy, plain and dynamic. The pool
// is the trace's when it is small, else a default one of 1024 slots.
inline std::string check_replay(std::string_view input) {
  constexpr std::uint64_t kMaxSlots = std::uint64_t{1} << 16;
  constexpr std::size_t kMaxEvents = 4096;
  sim::ParseOptions parse;
  parse.skip_bad = true;
  Result<sim::Trace> trace = sim::parse_trace(input, parse);
  if (!trace || trace->events.size() > kMaxEvents) {
    return {};
  }
  std::optional<std::uint64_t> nslabs;
  std::optional<std::uint32_t> nareas;
  if (!trace->pool || trace->pool->nslabs > kMaxSlots) {
    nslabs = 1024;
    nareas = 1;
  }
  for (const char* policy : {"linux", "linux-6.1", "fast"}) {
    sim::ReplayOptions options;
    options.policy = policy;
    options.nslabs = nslabs;
    options.nareas = nareas;
    Result<sim::ReplayReport> report = sim::replay_trace(*trace, options);
    if (report && report->maps > trace->events.size()) {
      return std::string(policy) + ": more maps replayed than events read";
    }
    sim::DynamicReplayOptions dynamic;
    dynamic.policy = policy;
    dynamic.nslabs = nslabs;
    dynamic.nareas = nareas;
    dynamic.max_nslabs = 4 * kMaxSlots;
    (void)sim::replay_dynamic(*trace, dynamic);
  }
  return {};
}

}  // namespace swiotlb::fuzz
