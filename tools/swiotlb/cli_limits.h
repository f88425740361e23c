// What every `swiotlb` subcommand shares when it reads its command line: the
// exit codes, the limits on numbers given as options, and how an input is
// quoted in an error. docs/limits.md lists the limits.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "swiotlb/core/error.h"

namespace swiotlb::cli {

// The exit codes of every subcommand (README.md, "Exit codes").
inline constexpr int kExitOk = 0;           // the job ran and found nothing wrong
inline constexpr int kExitFound = 1;        // the job ran and found a problem
inline constexpr int kExitBadInput = 2;     // bad input or usage
inline constexpr int kExitSystemError = 3;  // out of memory, I/O, the system refused

// The exit code for an error a command could not get past: a system error
// is 3, anything else is the input's fault (2).
int exit_code_for(const Error& error);

// Prints "swiotlb: error: <message>" to stderr and returns exit_code_for().
int report_error(const Error& error);

// The most CPUs (and so per-CPU caches and areas chosen by CPU count) an
// option may ask for; Linux's own largest NR_CPUS is 8192.
inline constexpr std::uint64_t kMaxCpus = 8192;

// The most events `workload` generates in one run: the trace is built in
// memory before it is written (tens of bytes an event), so the count is
// bounded to keep that under a gigabyte.
inline constexpr std::uint64_t kMaxWorkloadEvents = 10'000'000;

// The most transfers `demo` runs.
inline constexpr std::uint64_t kMaxDemoTransfers = std::uint64_t{1} << 32;

// The longest time, in seconds, an option may give (one day).
inline constexpr double kMaxSeconds = 86400;

// How much of an input an error quotes: a longer text is cut and "..."
// appended, so that a 10 MB field does not become a 10 MB message.
inline constexpr std::size_t kQuotedPrefix = 64;
std::string quote_prefix(std::string_view text, std::size_t max = kQuotedPrefix);

// Parses a whole number the way options are written: decimal, or hex after
// 0x; no sign, no space, nothing after the digits, and at most `max`.
// Errors name the text (a prefix when long) and the limit.
Result<std::uint64_t> parse_count(std::string_view text, std::uint64_t max);

// CLI11 validators that run on an option's text before it is converted, so
// that "-1" is refused instead of wrapping to 2^64 - 1.
//   whole_number(min, max): parse_count, then at least `min`.
//   seconds(zero_allowed): a finite decimal number of seconds, > 0 (or >= 0
//     when zero is allowed), at most kMaxSeconds; NaN and infinities refused.
CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);
CLI::Validator seconds(bool zero_allowed);

}  // namespace swiotlb::cli
