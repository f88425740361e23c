// `swiotlb bench`: times the cases of bench_cases.h, each against its
// baseline measured in the same run, and prints one row per case as a
// table, or all of them as a JSON list for scripts. Rows are printed as
// their cases finish, since a full run takes seconds.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "bench_cases.h"
#include "commands.h"

namespace swiotlb::cli {
namespace {

struct BenchOptions {
  bool json = false;
  std::string filter;
  double min_time = 0.05;
};

std::string case_names(const std::vector<bench::BenchCase>& cases) {
  std::string names;
  for (const bench::BenchCase& c : cases) {
    names += (names.empty() ? "" : ", ") + c.name;
  }
  return names;
}

// The cases whose names the filter matches anywhere (an empty filter
// matches all). An invalid expression, or one that matches nothing, is an
// error naming what there is to match.
Result<std::vector<bench::BenchCase>> select_cases(const std::string& filter) {
  std::vector<bench::BenchCase> all = bench::bench_cases();
  std::regex pattern;
  try {
    pattern = std::regex(filter, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return make_error(Errc::invalid_argument, "--filter '{}' is not a valid regular expression: {}",
                      filter, e.what());
  }
  std::vector<bench::BenchCase> chosen;
  std::copy_if(all.begin(), all.end(), std::back_inserter(chosen),
               [&](const bench::BenchCase& c) { return std::regex_search(c.name, pattern); });
  if (chosen.empty()) {
    return make_error(Errc::invalid_argument, "--filter '{}' matches no case (cases: {})", filter,
                      case_names(all));
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
  out["baseline_ns_per_op"] = r.baseline_ns_per_op;
  out["ratio"] = r.ratio();
  out["copy"] = r.copy;
  return out;
}

// The text table's layout: the name and policy columns as wide as the
// longest among the chosen cases, numbers right-aligned.
struct Table {
  std::size_t name_width = 4;
  std::size_t policy_width = 6;

  explicit Table(const std::vector<bench::BenchCase>& cases) {
    for (const bench::BenchCase& c : cases) {
      name_width = std::max(name_width, c.name.size());
      policy_width = std::max(policy_width, c.policy.size());
    }
  }
  void print_header() const {
    fmt::print("{:<{}}  {:>8}  {:>7}  {:<{}}  {:>11}  {:>14}  {:>6}  {}\n", "name", name_width,
               "bytes", "threads", "policy", policy_width, "ns/op", "baseline ns/op", "ratio",
               "copy");
  }
  void print_row(const bench::CaseResult& r) const {
    fmt::print("{:<{}}  {:>8}  {:>7}  {:<{}}  {:>11.1f}  {:>14.1f}  {:>6.3f}  {}\n", r.name,
               name_width, r.bytes, r.threads, r.policy, policy_width, r.ns_per_op,
               r.baseline_ns_per_op, r.ratio(), r.copy ? "yes" : "no");
    std::fflush(stdout);
  }
};

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

int run_bench(const BenchOptions& options) {
  Result<std::vector<bench::BenchCase>> cases = select_cases(options.filter);
  if (!cases) {
    fmt::print(stderr, "swiotlb: error: {}\n", cases.error().message());
    return 2;
  }
  bench::TimingOptions timing;
  timing.min_seconds = options.min_time;
  const Table table(*cases);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (!options.json) {
    table.print_header();
  }
  Status ran = run_cases(*cases, timing, [&](const bench::CaseResult& r) {
    if (options.json) {
      out.push_back(to_json(r));
    } else {
      table.print_row(r);
    }
  });
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
      "bench", "Time map+unmap with its bounce copy against a plain memcpy of the same bytes");
  bench->add_flag("--json", options->json, "Print a JSON list instead of a table");
  bench->add_option("--filter", options->filter,
                    "Run only the cases whose name this regular expression matches");
  bench
      ->add_option("--min-time", options->min_time,
                   "Seconds that one round of one case (and of its baseline) lasts at least")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->callback([options, exit_code] { *exit_code = run_bench(*options); });
}

}  // namespace swiotlb::cli
