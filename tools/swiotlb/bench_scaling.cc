// run_scaling_bench(): the cases of bench_scaling.h, timed.
#include "bench_scaling.h"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "bench_cases.h"
#include "bench_clock.h"
#include "bench_search.h"
#include "cli_name_filter.h"

namespace swiotlb::bench {
namespace {

constexpr std::uint64_t kBytes = 4096;
constexpr unsigned kThreads = 2;
constexpr std::uint64_t kFirstIterations = 1000;

// `iterations` operations on thread t; fails at the first that does.
using ThreadLoop = std::function<Status(unsigned t, std::uint64_t iterations)>;

// Pins the calling thread to the t-th CPU it may run on, when there are
// more than t of them; otherwise leaves it to the scheduler.
void pin_to_cpu(unsigned t) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
    return;
  }
  unsigned seen = 0;
  for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed) && seen++ == t) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      (void)pthread_setaffinity_np(pthread_self(), sizeof(one), &one);  // a hint only
      return;
    }
  }
}

// A loop that uses nothing but registers: what two threads can do at once
// on this machine when they share nothing. The results are written once
// per thread, each to a cache line of its own.
struct alignas(64) Sink {
  std::uint64_t value = 0;
};

ThreadLoop compute_loop(const std::shared_ptr<std::array<Sink, kThreads>>& sinks) {
  return [sinks](unsigned t, std::uint64_t iterations) -> Status {
    std::uint64_t x = t + 1;
    for (std::uint64_t i = 0; i < iterations; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      x ^= x >> 29;
    }
    (*sinks)[t].value = x;
    return {};
  };
}

Result<Elapsed> time_threads(const ThreadLoop& loop, unsigned threads, std::uint64_t iterations) {
  std::vector<Status> status(threads);
  const Elapsed took =
      run_released(threads, pin_to_cpu, [&](unsigned t) { status[t] = loop(t, iterations); });
  for (const Status& s : status) {
    if (!s) {
      return s.error();
    }
  }
  return took;
}

// The iteration count that makes one thread's pass last min_seconds of CPU
// time. CPU time, not wall time: on a busy machine a released thread may
// wait longer for a CPU than a short pass runs, and a count calibrated on
// that wait would time the scheduler instead of the loop.
Result<std::uint64_t> calibrate(const ThreadLoop& loop, double min_seconds) {
  std::uint64_t iterations = kFirstIterations;
  for (;;) {
    Result<Elapsed> pass = time_threads(loop, 1, iterations);
    if (!pass) {
      return std::move(pass).error();
    }
    if (pass->cpu >= min_seconds) {
      return iterations;
    }
    iterations = next_iterations(iterations, pass->cpu, min_seconds);
  }
}

// The slot search alone: SlotPool map+unmap on an empty two-area pool.
Result<ThreadLoop> search_loop() {
  Result<std::unique_ptr<SearchFixture>> made = SearchFixture::create("fast", kThreads, 0);
  if (!made) {
    return std::move(made).error();
  }
  std::shared_ptr<SearchFixture> fixture = std::move(*made);
  return ThreadLoop([fixture](unsigned t, std::uint64_t iterations) -> Status {
    for (std::uint64_t i = 0; i < iterations; ++i) {
      Result<bool> found = fixture->map_unmap(kBytes, t);
      if (!found) {
        return std::move(found).error();
      }
      if (!*found) {
        return make_error(Errc::pool_full, "an empty pool found no run of {} bytes", kBytes);
      }
    }
    return {};
  });
}

// The whole DMA path on one IoTlb, a device and a source per thread.
class CopyFixture {
 public:
  static Result<std::shared_ptr<CopyFixture>> create() {
    Result<IoTlbOptions> options = IoTlbOptions::from_config(default_swiotlb_config(cpu_count()));
    if (!options) {
      return std::move(options).error();
    }
    options->force_bounce = true;
    options->policy = "fast";
    Result<std::unique_ptr<IoTlb>> io_tlb = IoTlb::create(*options);
    if (!io_tlb) {
      return std::move(io_tlb).error();
    }
    auto fixture = std::shared_ptr<CopyFixture>(new CopyFixture(std::move(*io_tlb)));
    for (unsigned t = 0; t < kThreads; ++t) {
      DeviceConfig config;
      config.name = fmt::format("bench{}", t);
      config.debug = DmaDebugMode::off;
      Result<std::unique_ptr<Device>> device =
          Device::create(std::move(config), fixture->io_tlb_.get());
      if (!device) {
        return std::move(device).error();
      }
      fixture->devices_.push_back(std::move(*device));
      fixture->sources_.push_back(std::make_unique<TouchedBuffer>(kBytes));
      if (!fixture->sources_.back()->valid()) {
        return make_error(Errc::system, "cannot allocate a buffer of {} bytes", kBytes);
      }
    }
    return fixture;
  }
  ~CopyFixture() {
    devices_.clear();  // before the IoTlb they bounce through
  }
  CopyFixture(const CopyFixture&) = delete;
  CopyFixture& operator=(const CopyFixture&) = delete;

  Status map_unmap(unsigned t) {
    Result<DmaAddr> dma =
        map_single(*devices_[t], sources_[t]->data(), kBytes, Direction::to_device);
    if (!dma) {
      return std::move(dma).error();
    }
    return unmap_single(*devices_[t], *dma, kBytes, Direction::to_device);
  }

 private:
  explicit CopyFixture(std::unique_ptr<IoTlb> io_tlb) : io_tlb_(std::move(io_tlb)) {}

  std::unique_ptr<IoTlb> io_tlb_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::unique_ptr<TouchedBuffer>> sources_;
};

Result<ThreadLoop> copy_loop() {
  Result<std::shared_ptr<CopyFixture>> fixture = CopyFixture::create();
  if (!fixture) {
    return std::move(fixture).error();
  }
  return ThreadLoop([fixture = *fixture](unsigned t, std::uint64_t iterations) -> Status {
    for (std::uint64_t i = 0; i < iterations; ++i) {
      if (Status ok = fixture->map_unmap(t); !ok) {
        return ok;
      }
    }
    return {};
  });
}

struct Case {
  std::string name;
  bool copy = false;
  std::function<Result<ThreadLoop>()> prepare;
};

std::vector<Case> all_cases() {
  return {{fmt::format("scaling/fast/{}/t{}", kBytes, kThreads), false, search_loop},
          {fmt::format("scaling_copy/fast/{}/t{}", kBytes, kThreads), true, copy_loop}};
}

Result<ScalingBenchResult> time_case(const Case& c, const ScalingBenchOptions& options) {
  Result<ThreadLoop> op = c.prepare();
  if (!op) {
    return std::move(op).error();
  }
  const ThreadLoop compute = compute_loop(std::make_shared<std::array<Sink, kThreads>>());
  Result<std::uint64_t> op_iterations = calibrate(*op, options.min_seconds);
  if (!op_iterations) {
    return std::move(op_iterations).error();
  }
  Result<std::uint64_t> compute_iterations = calibrate(compute, options.min_seconds);
  if (!compute_iterations) {
    return std::move(compute_iterations).error();
  }
  const auto ops = static_cast<double>(*op_iterations);
  std::vector<double> one_ns, one_cpu_ns, two_ns, two_cpu_ns, speedup, ceiling;
  for (std::uint32_t round = 0; round < options.rounds; ++round) {
    Result<Elapsed> one = time_threads(*op, 1, *op_iterations);
    Result<Elapsed> two = one ? time_threads(*op, kThreads, *op_iterations) : one;
    Result<Elapsed> compute_one = time_threads(compute, 1, *compute_iterations);
    Result<Elapsed> compute_two = time_threads(compute, kThreads, *compute_iterations);
    for (Result<Elapsed>* pass : {&one, &two, &compute_one, &compute_two}) {
      if (!*pass) {
        return std::move(*pass).error();
      }
    }
    one_ns.push_back(one->wall * 1e9 / ops);
    one_cpu_ns.push_back(one->cpu * 1e9 / ops);
    two_ns.push_back(two->wall * 1e9 / (ops * kThreads));
    two_cpu_ns.push_back(two->cpu * 1e9 / (ops * kThreads));
    speedup.push_back(kThreads * one->wall / two->wall);
    ceiling.push_back(kThreads * compute_one->wall / compute_two->wall);
  }
  ScalingBenchResult row;
  row.name = c.name;
  row.policy = "fast";
  row.bytes = kBytes;
  row.threads = kThreads;
  row.copy = c.copy;
  row.ns_per_op = median(two_ns);
  row.cpu_ns_per_op = median(two_cpu_ns);
  row.baseline_ns_per_op = median(one_ns);
  row.baseline_cpu_ns_per_op = median(one_cpu_ns);
  row.speedup = median(speedup);
  row.ceiling_speedup = median(ceiling);
  row.efficiency = row.ceiling_speedup > 0 ? row.speedup / row.ceiling_speedup : 0;
  return row;
}

}  // namespace

std::vector<std::string> scaling_bench_names() {
  std::vector<std::string> names;
  for (const Case& c : all_cases()) {
    names.push_back(c.name);
  }
  return names;
}

Result<std::vector<ScalingBenchResult>> run_scaling_bench(
    const ScalingBenchOptions& options,
    const std::function<void(const ScalingBenchResult&)>& on_row) {
  if (options.rounds == 0 || !(options.min_seconds > 0)) {
    return make_error(Errc::invalid_argument,
                      "scaling bench: needs at least one round of some time");
  }
  Result<cli::NameFilter> pattern = cli::NameFilter::compile(options.filter);
  if (!pattern) {
    return std::move(pattern).error();
  }
  std::vector<ScalingBenchResult> rows;
  for (const Case& c : all_cases()) {
    if (!pattern->matches(c.name)) {
      continue;
    }
    Result<ScalingBenchResult> row = time_case(c, options);
    if (!row) {
      return make_error(row.error().code(), "case {}: {}", c.name, row.error().message());
    }
    if (on_row) {
      on_row(*row);
    }
    rows.push_back(std::move(*row));
  }
  if (rows.empty()) {
    return make_error(Errc::invalid_argument, "filter '{}' matches no scaling case",
                      options.filter);
  }
  return rows;
}

}  // namespace swiotlb::bench
