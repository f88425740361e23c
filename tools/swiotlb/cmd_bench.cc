// `swiotlb bench`: times the cases of bench_cases.h, the slot-search cases
// of bench_search.h, the lookup-by-address cases of bench_lookup.h and the
// scaling cases of bench_scaling.h, each against its baseline measured in
// the same run, and prints one row per case as a table (the search, lookup
// and scaling cases in tables of their own), or all of them as a JSON list
// for scripts. Every row has the wall time and the CPU time per operation
// (bench_clock.h). Rows are printed as their cases finish, since a full run
// takes a while.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_cases.h"
#include "bench_lookup.h"
#include "bench_scaling.h"
#include "bench_search.h"
#include "cli_limits.h"
#include "cli_name_filter.h"
#include "commands.h"
#include "replay_bench.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/workload.h"

namespace swiotlb::cli {
namespace {

constexpr std::string_view kReplayCase = "replay/mixed/1000000";

struct BenchOptions {
  bool json = false;
  std::string filter;
  double min_time = 0.05;
  std::uint32_t rounds = 5;
};

// A list in brace notation: {a,b,c}.
template <class Values>
std::string braces(const Values& values) {
  std::string list;
  for (const auto& v : values) {
    list += fmt::format("{}{}", list.empty() ? "" : ",", v);
  }
  return "{" + list + "}";
}

// The slot-search cases, written as one name in brace notation (they are
// the product of a few lists, too many to name one by one).
std::string search_case_pattern() {
  return fmt::format("search/{}/{}/occ{}/t{}", braces(bench::kSearchPolicies),
                     braces(bench::kSearchSizes), braces(bench::kSearchOccupancies),
                     braces(bench::search_thread_counts()));
}

// The lookup cases, likewise.
std::string lookup_case_pattern() {
  std::vector<std::string_view> schemes;
  schemes.reserve(bench::kLookupSchemes.size());
  for (bench::LookupScheme scheme : bench::kLookupSchemes) {
    schemes.push_back(bench::lookup_scheme_name(scheme));
  }
  return fmt::format("lookup/{}/{}/t{}", braces(schemes), braces(bench::kLookupPoolCounts),
                     braces(bench::kLookupThreads));
}

std::string case_names(const std::vector<bench::BenchCase>& cases) {
  std::string names;
  for (const bench::BenchCase& c : cases) {
    names += (names.empty() ? "" : ", ") + c.name;
  }
  for (const std::string& name : bench::scaling_bench_names()) {
    names += ", " + name;
  }
  return names + ", " + search_case_pattern() + ", " + lookup_case_pattern() + ", " +
         std::string(kReplayCase);
}

// What --filter chose, from the same expression matched anywhere in every
// name (an empty filter matches all).
struct Selection {
  std::vector<bench::BenchCase> cases;
  bool search = false;   // some slot-search case
  bool lookup = false;   // some lookup case
  bool scaling = false;  // some scaling case
  bool replay = false;
};

// An invalid expression, or one that matches nothing, is an error naming
// what there is to match.
Result<Selection> select_cases(const std::string& filter) {
  Result<NameFilter> pattern = NameFilter::compile(filter);
  if (!pattern) {
    return std::move(pattern).error();
  }
  auto matches = [&](const std::string& name) { return pattern->matches(name); };
  std::vector<bench::BenchCase> all = bench::bench_cases();
  Selection chosen;
  std::copy_if(all.begin(), all.end(), std::back_inserter(chosen.cases),
               [&](const bench::BenchCase& c) { return matches(c.name); });
  const std::vector<std::string> search = bench::search_bench_names();
  chosen.search = std::any_of(search.begin(), search.end(), matches);
  const std::vector<std::string> lookup = bench::lookup_bench_names();
  chosen.lookup = std::any_of(lookup.begin(), lookup.end(), matches);
  const std::vector<std::string> scaling = bench::scaling_bench_names();
  chosen.scaling = std::any_of(scaling.begin(), scaling.end(), matches);
  chosen.replay = matches(std::string(kReplayCase));
  if (chosen.cases.empty() && !chosen.search && !chosen.lookup && !chosen.scaling &&
      !chosen.replay) {
    return make_error(Errc::invalid_argument, "--filter '{}' matches no case (cases: {})",
                      quote_prefix(filter), case_names(all));
  }
  return chosen;
}

// Keys in the order a reader scans them: what was measured, then the numbers.
nlohmann::ordered_json to_json(const bench::CaseResult& r) {
  nlohmann::ordered_json out;
  out["name"] = r.name;
  out["bytes"] = r.bytes;
  out["threads"] = r.threads;
  out["policy"] = r.policy;
  out["ns_per_op"] = r.ns_per_op;
  out["cpu_ns_per_op"] = r.cpu_ns_per_op;
  out["baseline"] = r.baseline;
  out["baseline_ns_per_op"] = r.baseline_ns_per_op;
  out["baseline_cpu_ns_per_op"] = r.baseline_cpu_ns_per_op;
  out["ratio"] = r.ratio();
  out["cpu_ratio"] = r.cpu_ratio();
  out["copy"] = r.copy;
  return out;
}

// The text table's layout: the name and policy columns as wide as the
// longest among the chosen cases, numbers right-aligned.
struct Table {
  std::size_t name_width = 4;
  std::size_t policy_width = 6;
  std::size_t baseline_width = 8;

  explicit Table(const std::vector<bench::BenchCase>& cases) {
    for (const bench::BenchCase& c : cases) {
      name_width = std::max(name_width, c.name.size());
      policy_width = std::max(policy_width, c.policy.size());
      baseline_width = std::max(baseline_width, c.baseline.size());
    }
  }
  void print_header() const {
    fmt::print(
        "{:<{}}  {:>8}  {:>7}  {:<{}}  {:>9}  {:>9}  {:<{}}  {:>14}  {:>12}  {:>6}  {:>9}  {}\n",
        "name", name_width, "bytes", "threads", "policy", policy_width, "ns/op", "cpu ns/op",
        "baseline", baseline_width, "baseline ns/op", "baseline cpu", "ratio", "cpu ratio", "copy");
  }
  void print_row(const bench::CaseResult& r) const {
    fmt::print(
        "{:<{}}  {:>8}  {:>7}  {:<{}}  {:>9.1f}  {:>9.1f}  {:<{}}  {:>14.1f}  {:>12.1f}  {:>6.3f}  "
        "{:>9.3f}  {}\n",
        r.name, name_width, r.bytes, r.threads, r.policy, policy_width, r.ns_per_op,
        r.cpu_ns_per_op, r.baseline, baseline_width, r.baseline_ns_per_op, r.baseline_cpu_ns_per_op,
        r.ratio(), r.cpu_ratio(), r.copy ? "yes" : "no");
    (void)std::fflush(stdout);  // progress as it comes; a failed flush loses nothing
  }
};

// A slot-search row: what a copy case's row has, and what was measured of
// the pool. The baseline is the `linux` policy, not a memcpy: nothing is
// copied, and the point is how far a search policy is from the kernel's.
nlohmann::ordered_json to_json(const bench::SearchBenchResult& r) {
  nlohmann::ordered_json out;
  out["name"] = r.name;
  out["bytes"] = r.bytes;
  out["threads"] = r.threads;
  out["policy"] = r.policy;
  out["occupancy"] = r.occupancy;
  out["found"] = r.found;
  out["ns_per_op"] = r.ns_per_op;
  out["cpu_ns_per_op"] = r.cpu_ns_per_op;
  out["baseline"] = "linux";
  out["baseline_ns_per_op"] = r.baseline_ns_per_op;
  out["baseline_cpu_ns_per_op"] = r.baseline_cpu_ns_per_op;
  out["ratio"] = r.ratio;
  out["cpu_ratio"] = r.cpu_ratio;
  out["copy"] = false;
  return out;
}

// The slot-search table: its own, since its rows carry the occupancy and
// the share of maps that found a run, and their baseline is another policy.
struct SearchTable {
  std::size_t name_width = 4;
  std::size_t policy_width = 6;

  SearchTable() {
    for (const std::string& name : bench::search_bench_names()) {
      name_width = std::max(name_width, name.size());
    }
    for (std::string_view policy : bench::kSearchPolicies) {
      policy_width = std::max(policy_width, policy.size());
    }
  }
  void print_header() const {
    fmt::print("{:<{}}  {:>8}  {:>7}  {:<{}}  {:>6}  {:>6}  {:>11}  {:>11}  {:>11}  {:>6}  {}\n",
               "name", name_width, "bytes", "threads", "policy", policy_width, "occ%", "found%",
               "ns/op", "cpu ns/op", "linux ns/op", "ratio", "copy");
  }
  void print_row(const bench::SearchBenchResult& r) const {
    fmt::print(
        "{:<{}}  {:>8}  {:>7}  {:<{}}  {:>6.1f}  {:>6.1f}  {:>11.1f}  {:>11.1f}  {:>11.1f}  "
        "{:>6.3f}  {}\n",
        r.name, name_width, r.bytes, r.threads, r.policy, policy_width, 100 * r.occupancy,
        100 * r.found, r.ns_per_op, r.cpu_ns_per_op, r.baseline_ns_per_op, r.ratio, "no");
    (void)std::fflush(stdout);  // progress as it comes; a failed flush loses nothing
  }
};

// A lookup row: how many pools, and the two baselines of bench_lookup.h:
// `linear` (the kernel's list walk, same critical section) is the baseline
// and `ratio`; `rwlock` (the walk under a reader lock) has a ratio of its own.
nlohmann::ordered_json to_json(const bench::LookupBenchResult& r) {
  nlohmann::ordered_json out;
  out["name"] = r.name;
  out["pools"] = r.pools;
  out["threads"] = r.threads;
  out["scheme"] = r.scheme;
  out["misses"] = r.misses;
  out["ns_per_op"] = r.ns_per_op;
  out["cpu_ns_per_op"] = r.cpu_ns_per_op;
  out["baseline"] = "linear";
  out["baseline_ns_per_op"] = r.baseline_ns_per_op;
  out["ratio"] = r.ratio;
  out["rwlock_ns_per_op"] = r.rwlock_ns_per_op;
  out["rwlock_ratio"] = r.rwlock_ratio;
  out["copy"] = false;
  return out;
}

// The lookup table: its own, since its rows have pools instead of bytes and
// two baselines.
struct LookupTable {
  std::size_t name_width = 4;

  LookupTable() {
    for (const std::string& name : bench::lookup_bench_names()) {
      name_width = std::max(name_width, name.size());
    }
  }
  void print_header() const {
    fmt::print("{:<{}}  {:>5}  {:>7}  {:<6}  {:>7}  {:>8}  {:>9}  {:>12}  {:>6}  {:>12}  {:>6}\n",
               "name", name_width, "pools", "threads", "scheme", "misses%", "ns/op", "cpu ns/op",
               "linear ns/op", "ratio", "rwlock ns/op", "ratio");
  }
  void print_row(const bench::LookupBenchResult& r) const {
    fmt::print(
        "{:<{}}  {:>5}  {:>7}  {:<6}  {:>7.1f}  {:>8.1f}  {:>9.1f}  {:>12.1f}  {:>6.3f}  {:>12.1f} "
        " "
        "{:>6.3f}\n",
        r.name, name_width, r.pools, r.threads, r.scheme, 100 * r.misses, r.ns_per_op,
        r.cpu_ns_per_op, r.baseline_ns_per_op, r.ratio, r.rwlock_ns_per_op, r.rwlock_ratio);
    (void)std::fflush(stdout);  // progress as it comes; a failed flush loses nothing
  }
};

// A scaling row: 2 threads against 1 (the baseline), with the ceiling a
// pure compute loop reaches in the same run.
nlohmann::ordered_json to_json(const bench::ScalingBenchResult& r) {
  nlohmann::ordered_json out;
  out["name"] = r.name;
  out["bytes"] = r.bytes;
  out["threads"] = r.threads;
  out["policy"] = r.policy;
  out["ns_per_op"] = r.ns_per_op;
  out["cpu_ns_per_op"] = r.cpu_ns_per_op;
  out["baseline"] = "1 thread";
  out["baseline_ns_per_op"] = r.baseline_ns_per_op;
  out["baseline_cpu_ns_per_op"] = r.baseline_cpu_ns_per_op;
  out["ratio"] = r.baseline_ns_per_op > 0 ? r.ns_per_op / r.baseline_ns_per_op : 0;
  out["speedup"] = r.speedup;
  // CPU time per operation on 2 threads over that on 1: 1 when the threads
  // do not slow each other down, whatever else the machine is running.
  out["cpu_ratio"] = r.baseline_cpu_ns_per_op > 0 ? r.cpu_ns_per_op / r.baseline_cpu_ns_per_op : 0;
  out["ceiling_speedup"] = r.ceiling_speedup;
  out["efficiency"] = r.efficiency;
  out["copy"] = r.copy;
  return out;
}

void print_scaling_header() {
  fmt::print("{:<26}  {:>8}  {:>7}  {:>11}  {:>11}  {:>11}  {:>7}  {:>7}  {:>10}  {}\n", "name",
             "bytes", "threads", "ns/op", "cpu ns/op", "t1 ns/op", "speedup", "ceiling",
             "efficiency", "copy");
}

void print_scaling_row(const bench::ScalingBenchResult& r) {
  fmt::print(
      "{:<26}  {:>8}  {:>7}  {:>11.1f}  {:>11.1f}  {:>11.1f}  {:>7.2f}  {:>7.2f}  {:>10.3f}  {}\n",
      r.name, r.bytes, r.threads, r.ns_per_op, r.cpu_ns_per_op, r.baseline_ns_per_op, r.speedup,
      r.ceiling_speedup, r.efficiency, r.copy ? "yes" : "no");
  (void)std::fflush(stdout);  // progress as it comes; a failed flush loses nothing
}

// Times the cases in order and hands each result on as it comes; stops at
// the first case that fails.
Status run_cases(const std::vector<bench::BenchCase>& cases, const bench::TimingOptions& timing,
                 const std::function<void(const bench::CaseResult&)>& done) {
  for (const bench::BenchCase& c : cases) {
    Result<bench::CaseResult> result = bench::run_case(c, timing);
    if (!result) {
      return result.error();
    }
    done(*result);
  }
  return {};
}

// Parse + replay of a 1 M-event synthetic trace, against replaying the same
// trace already parsed (its baseline, timed round for round with it), so
// the ratio is what reading the text costs on top.
Result<nlohmann::ordered_json> replay_speed_row(std::uint32_t rounds) {
  constexpr std::uint64_t kEvents = 1000000;
  Result<sim::ReplaySpeed> speed = sim::measure_replay_speed(kEvents, 1, rounds);
  if (!speed) {
    return speed.error();
  }
  const double events = static_cast<double>(speed->events);
  const auto per_event = [events](double seconds) {
    return events > 0 ? seconds * 1e9 / events : 0;
  };
  const double ns_per_event = per_event(speed->seconds);
  const double cpu_ns_per_event = per_event(speed->cpu_seconds);
  const double baseline = per_event(speed->baseline_seconds);
  const double baseline_cpu = per_event(speed->baseline_cpu_seconds);
  nlohmann::ordered_json row;
  row["name"] = kReplayCase;
  row["bytes"] = speed->bytes;
  row["threads"] = 2;  // a parser thread runs ahead of the replay
  row["policy"] = "linux";
  row["rounds"] = speed->rounds;
  row["ns_per_op"] = ns_per_event;
  row["cpu_ns_per_op"] = cpu_ns_per_event;
  row["baseline"] = "replay of the parsed trace";
  row["baseline_ns_per_op"] = baseline;
  row["baseline_cpu_ns_per_op"] = baseline_cpu;
  row["ratio"] = baseline > 0 ? ns_per_event / baseline : 0;
  row["cpu_ratio"] = baseline_cpu > 0 ? cpu_ns_per_event / baseline_cpu : 0;
  row["copy"] = false;
  row["events_per_s"] = speed->events_per_second();
  row["events_per_cpu_s"] = speed->events_per_cpu_second();
  return row;
}

void print_replay_row(const nlohmann::ordered_json& row) {
  fmt::print(
      "{}: {:.0f} ns/event end to end ({:.0f} CPU ns), {:.0f} ns/event replay alone ({:.0f} CPU "
      "ns), {:.2f} M events/s, {:.2f} M events per CPU second (median of {} rounds)\n",
      row["name"].get<std::string>(), row["ns_per_op"].get<double>(),
      row["cpu_ns_per_op"].get<double>(), row["baseline_ns_per_op"].get<double>(),
      row["baseline_cpu_ns_per_op"].get<double>(), row["events_per_s"].get<double>() / 1e6,
      row["events_per_cpu_s"].get<double>() / 1e6, row["rounds"].get<std::uint32_t>());
}

int run_bench(const BenchOptions& options) {
  Result<Selection> chosen = select_cases(options.filter);
  if (!chosen) {
    fmt::print(stderr, "swiotlb: error: {}\n", chosen.error().message());
    return 2;
  }
  const std::vector<bench::BenchCase>& selected = chosen->cases;
  bench::TimingOptions timing;
  timing.min_seconds = options.min_time;
  timing.rounds = options.rounds;
  const Table table(selected);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (!options.json && !selected.empty()) {
    table.print_header();
  }
  Status ran = run_cases(selected, timing, [&](const bench::CaseResult& r) {
    if (options.json) {
      out.push_back(to_json(r));
    } else {
      table.print_row(r);
    }
  });
  if (ran && chosen->search) {
    bench::SearchBenchOptions search;
    search.min_seconds = options.min_time;
    search.rounds = timing.rounds;
    search.filter = options.filter;
    const SearchTable search_table;
    if (!options.json) {
      fmt::print("{}", selected.empty() ? "" : "\n");
      search_table.print_header();
    }
    Result<std::vector<bench::SearchBenchResult>> rows =
        bench::run_search_bench(search, [&](const bench::SearchBenchResult& r) {
          if (options.json) {
            out.push_back(to_json(r));
          } else {
            search_table.print_row(r);
          }
        });
    if (!rows) {
      ran = rows.error();
    }
  }
  if (ran && chosen->lookup) {
    bench::LookupBenchOptions lookup;
    lookup.min_seconds = options.min_time;
    lookup.rounds = timing.rounds;
    lookup.filter = options.filter;
    const LookupTable lookup_table;
    if (!options.json) {
      fmt::print("{}", selected.empty() && !chosen->search ? "" : "\n");
      lookup_table.print_header();
    }
    Result<std::vector<bench::LookupBenchResult>> rows =
        bench::run_lookup_bench(lookup, [&](const bench::LookupBenchResult& r) {
          if (options.json) {
            out.push_back(to_json(r));
          } else {
            lookup_table.print_row(r);
          }
        });
    if (!rows) {
      ran = rows.error();
    }
  }
  if (ran && chosen->scaling) {
    bench::ScalingBenchOptions scaling;
    scaling.min_seconds = options.min_time;
    scaling.rounds = timing.rounds;
    scaling.filter = options.filter;
    if (!options.json) {
      fmt::print("{}", selected.empty() && !chosen->search && !chosen->lookup ? "" : "\n");
      print_scaling_header();
    }
    Result<std::vector<bench::ScalingBenchResult>> rows =
        bench::run_scaling_bench(scaling, [&](const bench::ScalingBenchResult& r) {
          if (options.json) {
            out.push_back(to_json(r));
          } else {
            print_scaling_row(r);
          }
        });
    if (!rows) {
      ran = rows.error();
    }
  }
  if (ran && chosen->replay) {
    Result<nlohmann::ordered_json> row = replay_speed_row(timing.rounds);
    if (!row) {
      ran = row.error();
    } else if (options.json) {
      out.push_back(*row);
    } else {
      print_replay_row(*row);
    }
  }
  if (!ran) {
    fmt::print(stderr, "swiotlb: error: {}\n", ran.error().message());
    return 1;
  }
  if (options.json) {
    fmt::print("{}\n", out.dump(2));
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  // Owned by the callback, which CLI11 keeps alive as long as the app.
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Time map+unmap (with its bounce copy, and its slot search alone), pool lookup by address, "
      "2-thread scaling, IOVA allocation and trace replay, each against a baseline timed in the "
      "same run (wall and CPU time per operation)");
  bench->add_flag("--json", options->json, "Print a JSON list instead of a table");
  bench->add_option("--filter", options->filter,
                    "Run only the cases whose name this pattern matches: literals, . * + ? ^ $ "
                    "and | (no groups)");
  bench
      ->add_option("--min-time", options->min_time,
                   "Seconds that one round of one case (and of its baseline) lasts at least")
      ->check(seconds(false))
      ->capture_default_str();
  bench
      ->add_option("--rounds", options->rounds,
                   "Rounds of each case and its baseline, timed in turn; the median round of "
                   "each is reported")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench->callback([options, exit_code] { *exit_code = run_bench(*options); });
}

}  // namespace swiotlb::cli
