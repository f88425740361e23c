// `swiotlb io`: O_DIRECT I/O through an io_uring whose registered buffers
// are the IoTlb's windows (a small fio for the bounce path), with the same
// I/O run in the same process on the same file three more ways: direct
// from registered memory (no bounce), pread/pwrite with O_DIRECT from
// buffers aligned by hand, and buffered pread/pwrite. docs/io.md has the
// model.
//
// Exit status: 0 when every run finished with no verify error and no slot
// left in use; 1 when an I/O failed, a block read back wrong, or a slot was
// left in use; 2 for bad options or a file that cannot be used; 130 when
// cancelled by SIGINT.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "swiotlb/io/block_pattern.h"
#include "swiotlb/io/io_device.h"
#include "swiotlb/io/io_file.h"
#include "swiotlb/io/io_job.h"
#include "swiotlb/io/ring_backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int /*signal*/) {
  g_interrupted.store(true);
}

struct IoCliOptions {
  std::string file;
  std::string dir = "/var/tmp";
  std::string size = "64M";
  std::string bs = "4k";
  std::uint32_t qd = 32;
  std::string rw = "randrw";
  std::uint32_t read_percent = 50;
  double runtime = 0;
  std::uint64_t ios = 0;
  std::string buffers = "unaligned";
  std::uint64_t pool_slots = 32768;
  bool verify = false;
  bool json = false;
  bool allow_buffered = false;
  bool no_baselines = false;
  std::uint32_t rounds = 4;
};

struct NamedRun {
  std::string name;
  io::JobResult result;
  std::uint32_t queue_depth = 0;
};

nlohmann::json measures_json(const io::JobResult& r, std::uint32_t queue_depth) {
  const io::JobMeasures& m = r.measures;
  return {
      {"ios", m.ios},
      {"reads", m.reads},
      {"writes", m.writes},
      {"queue_depth", queue_depth},
      {"seconds", m.seconds},
      {"iops", m.iops()},
      {"mib_per_s", m.mib_per_s()},
      {"latency_us",
       {{"p50", static_cast<double>(m.latency.percentile(0.50)) / 1e3},
        {"p99", static_cast<double>(m.latency.percentile(0.99)) / 1e3},
        {"p999", static_cast<double>(m.latency.percentile(0.999)) / 1e3}}},
      {"bounced_share", m.bounced_share()},
      {"cpu_ns_per_io", m.cpu_ns_per_io()},
      {"verify_errors", r.verify_errors},
      {"verified_blocks", r.verified_blocks},
      {"error", r.error ? nlohmann::json(r.error->message()) : nlohmann::json(nullptr)},
  };
}

std::string measures_row(const NamedRun& run) {
  const io::JobMeasures& m = run.result.measures;
  return fmt::format(
      "{:<15} {:>3} {:>10.0f} {:>9.1f} {:>8.1f} {:>8.1f} {:>9.1f} {:>7.0f}% {:>9.0f}", run.name,
      run.queue_depth, m.iops(), m.mib_per_s(),
      static_cast<double>(m.latency.percentile(0.50)) / 1e3,
      static_cast<double>(m.latency.percentile(0.99)) / 1e3,
      static_cast<double>(m.latency.percentile(0.999)) / 1e3, m.bounced_share() * 100,
      m.cpu_ns_per_io());
}

double ratio(const io::JobResult& ours, const io::JobResult& base) {
  const double b = base.measures.mib_per_s();
  return b > 0 ? ours.measures.mib_per_s() / b : 0;
}

// A progress line on standard error when it is a terminal.
std::function<void(std::uint64_t, double)> progress_line(const std::string& name, bool quiet) {
  if (quiet || ::isatty(STDERR_FILENO) == 0) {
    return {};
  }
  return [name](std::uint64_t ios, double seconds) {
    (void)std::fprintf(stderr, "\r%-15s %10llu I/Os %8.1f s %10.0f IOPS ", name.c_str(),
                       static_cast<unsigned long long>(ios), seconds,  // NOLINT(google-runtime-int)
                       seconds > 0 ? static_cast<double>(ios) / seconds : 0.0);
    (void)std::fflush(stderr);
  };
}

void clear_progress(bool quiet) {
  if (!quiet && ::isatty(STDERR_FILENO) != 0) {
    (void)std::fprintf(stderr, "\r%70s\r", "");
  }
}

int fail(int code, const std::string& message) {
  (void)std::fprintf(stderr, "swiotlb io: %s\n", message.c_str());
  return code;
}

int run_io(const IoCliOptions& o) {
  Result<std::uint64_t> size = io::parse_size(o.size);
  if (!size) {
    return fail(2, size.error().message());
  }
  Result<std::vector<io::BlockSizeShare>> bs = io::parse_block_sizes(o.bs);
  if (!bs) {
    return fail(2, bs.error().message());
  }
  Result<io::RwMode> rw = io::parse_rw_mode(o.rw);
  if (!rw) {
    return fail(2, rw.error().message());
  }
  Result<io::BufferSource> buffers = io::parse_buffer_source(o.buffers);
  if (!buffers) {
    return fail(2, buffers.error().message());
  }
  io::IoFileOptions fo;
  fo.path = o.file;
  fo.temp_dir = o.dir;
  fo.size = *size;
  fo.allow_buffered = o.allow_buffered;
  Result<io::IoFile> file = io::IoFile::open(fo);
  if (!file) {
    return fail(2, file.error().message());
  }
  // Every pool the IoTlb has, and any it makes later, is registered with
  // the ring before it takes a mapping (ring_backend.h).
  auto ring = std::make_shared<io::RingBackend>(make_region_backend({}));
  IoTlbOptions to;
  to.nslabs = o.pool_slots;
  to.backend = ring;
  Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(to);
  if (!tlb) {
    return fail(2, tlb.error().message());
  }
  std::uint64_t max_bs = 0;
  for (const io::BlockSizeShare& s : *bs) {
    max_bs = std::max(max_bs, s.bytes);
  }
  io::IoDeviceOptions dopt;
  dopt.max_in_flight = o.qd;
  dopt.direct_bytes = o.qd * io::round_up_to_blocks(max_bs, 4096);
  dopt.pools = ring;
  Result<std::unique_ptr<io::IoDevice>> dev = io::IoDevice::create(file->fd(), tlb->get(), dopt);
  if (!dev) {
    return fail(2, dev.error().message());
  }
  io::IoDevice& device = **dev;

  io::JobSpec spec;
  spec.file_size = *size / device.block_size() * device.block_size();
  spec.block_sizes = *bs;
  spec.queue_depth = o.qd;
  spec.rw = *rw;
  spec.read_percent = o.read_percent;
  spec.ios = o.ios;
  spec.runtime = std::chrono::nanoseconds(static_cast<std::int64_t>(o.runtime * 1e9));
  spec.cancel = &g_interrupted;

  io::BlockPattern pattern(spec.file_size, device.block_size());
  if (o.verify) {
    spec.verify = &pattern;
  }
  struct sigaction action {};
  action.sa_handler = on_sigint;  // no SA_RESTART: a blocked wait returns
  sigemptyset(&action.sa_mask);
  struct sigaction previous {};
  ::sigaction(SIGINT, &action, &previous);

  // Every block starts with a known pattern, so that reads hit the disk
  // and can be checked.
  if (Status ok = io::prepare_file(file->fd(), pattern); !ok) {
    ::sigaction(SIGINT, &previous, nullptr);
    return fail(1, ok.error().message());
  }

  std::vector<NamedRun> runs;
  std::optional<Error> failure;
  io::JobSpec slice = spec;
  // Runs `body` under `name`, adding its result to the run of that name.
  const auto run = [&](const std::string& name, std::uint32_t queue_depth, auto&& body) {
    if (g_interrupted.load() || failure) {
      return;
    }
    spec.progress = progress_line(name, o.json);
    slice.progress = spec.progress;
    Result<io::JobResult> r = body();
    clear_progress(o.json);
    if (!r) {
      failure = r.error();
      return;
    }
    if (r->error) {
      failure = make_error(r->error->code(), "{}: {}", name, r->error->message());
    }
    for (NamedRun& existing : runs) {
      if (existing.name == name) {
        io::merge_into(existing.result, *r);
        return;
      }
    }
    runs.push_back({name, std::move(*r), queue_depth});
  };
  // The bounce run and the direct baseline alternate in slices, so that a
  // change in the machine's load during the run weighs on both alike.
  const std::uint32_t rounds = o.no_baselines ? 1 : o.rounds;
  if (spec.ios == 0 && spec.runtime.count() == 0) {
    std::uint64_t mean = 0;
    for (const io::BlockSizeShare& s : spec.block_sizes) {
      mean += s.bytes * s.percent;
    }
    slice.ios = std::max<std::uint64_t>(spec.file_size / std::max<std::uint64_t>(mean / 100, 1), 1);
  }
  slice.ios = (slice.ios + rounds - 1) / rounds;
  slice.runtime = spec.runtime / rounds;
  for (std::uint32_t round = 0; round < rounds; ++round) {
    slice.seed = round + 1;
    slice.buffers = *buffers;
    run("bounce", o.qd, [&] { return io::run_ring_job(device, slice); });
    if (!o.no_baselines) {
      slice.buffers = io::BufferSource::registered;
      run("direct", o.qd, [&] { return io::run_ring_job(device, slice); });
    }
  }
  std::optional<std::uint64_t> cached_after_ring;
  if (Result<std::uint64_t> c = file->cached_bytes(spec.file_size)) {
    cached_after_ring = *c;
  }
  if (!o.no_baselines) {
    run("pread_odirect", 1,
        [&] { return io::run_sync_job(file->fd(), device.block_size(), spec); });
    run("buffered", 1, [&] {
      Result<io::JobResult> r = io::run_sync_job(file->buffered_fd(), device.block_size(), spec);
      ::fsync(file->buffered_fd());
      return r;
    });
  }
  const bool interrupted = g_interrupted.load();
  ::sigaction(SIGINT, &previous, nullptr);

  // The final pass reads every block back (skipped when interrupted).
  std::optional<io::BlockPattern::Check> final_check;
  std::string first_error;
  if (o.verify && !interrupted) {
    Result<io::BlockPattern::Check> c = io::verify_file(file->fd(), pattern, &first_error);
    if (!c) {
      failure = c.error();
    } else {
      final_check = *c;
    }
  }
  std::uint64_t verify_errors = final_check ? final_check->bad : 0;
  for (const NamedRun& r : runs) {
    verify_errors += r.result.verify_errors;
    if (first_error.empty()) {
      first_error = r.result.first_verify_error;
    }
  }
  const IoTlbStats tlb_stats = (*tlb)->stats();
  std::uint64_t pool_used = 0;
  for (const PoolStats& p : tlb_stats.pools) {
    pool_used += p.used;
  }
  const NamedRun* ours = runs.empty() ? nullptr : &runs[0];
  const auto find = [&](const std::string& name) -> const NamedRun* {
    for (const NamedRun& r : runs) {
      if (r.name == name) {
        return &r;
      }
    }
    return nullptr;
  };
  const io::IoDeviceStats dstats = device.stats();

  if (o.json) {
    nlohmann::json j;
    j["file"] = {{"path", file->path()},
                 {"temporary", file->temporary()},
                 {"bytes", spec.file_size},
                 {"o_direct", file->direct()},
                 {"block_size", device.block_size()},
                 {"alignment_source", std::string(device.alignment().source)},
                 {"cached_bytes_after_ring",
                  cached_after_ring ? nlohmann::json(*cached_after_ring) : nlohmann::json()},
                 {"page_cache_bypassed", file->direct() && cached_after_ring.value_or(1) == 0}};
    j["job"] = {{"rw", o.rw},           {"bs", o.bs},         {"qd", o.qd},
                {"buffers", o.buffers}, {"verify", o.verify}, {"read_percent", o.read_percent}};
    if (ours != nullptr) {
      j.update(measures_json(ours->result, ours->queue_depth));
      j["pool_waits"] = ours->result.pool_waits;
    }
    j["verify_errors"] = verify_errors;
    j["final_pass"] = final_check ? nlohmann::json{{"good", final_check->good},
                                                   {"bad", final_check->bad},
                                                   {"unknown", final_check->unknown}}
                                  : nlohmann::json();
    j["pool_used_after"] = pool_used;
    j["pool"] = io_tlb_json(**tlb);
    j["device"] = {{"eagain_retries", dstats.eagain_retries},
                   {"short_resumes", dstats.short_resumes},
                   {"ring_full", dstats.ring_full},
                   {"failed", dstats.failed}};
    nlohmann::json baselines = nlohmann::json::object();
    for (const char* name : {"direct", "pread_odirect", "buffered"}) {
      if (const NamedRun* r = find(name)) {
        baselines[name] = measures_json(r->result, r->queue_depth);
      }
    }
    j["baselines"] = baselines;
    if (const NamedRun* d = find("direct"); d != nullptr && ours != nullptr) {
      j["ratio_to_direct"] = ratio(ours->result, d->result);
    }
    if (const NamedRun* p = find("pread_odirect"); p != nullptr && ours != nullptr) {
      j["ratio_to_pread_odirect"] = ratio(ours->result, p->result);
    }
    j["cancelled"] = interrupted;
    j["error"] = failure ? nlohmann::json(failure->message()) : nlohmann::json();
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf(
        "swiotlb io: %s%s, %llu MiB, %s, %u-byte blocks (%.*s)\n", file->path().c_str(),
        file->temporary() ? " (temporary)" : "",
        static_cast<unsigned long long>(spec.file_size >> 20),  // NOLINT(google-runtime-int)
        file->direct() ? "O_DIRECT" : "buffered (O_DIRECT refused)", device.block_size(),
        static_cast<int>(device.alignment().source.size()), device.alignment().source.data());
    std::printf("job: %s, bs %s, qd %u, buffers %s%s\n", o.rw.c_str(), o.bs.c_str(), o.qd,
                o.buffers.c_str(), o.verify ? ", verify" : "");
    std::printf("%-15s %3s %10s %9s %8s %8s %9s %8s %9s\n", "run", "qd", "IOPS", "MiB/s", "p50 us",
                "p99 us", "p99.9 us", "bounced", "cpu ns/io");
    for (const NamedRun& r : runs) {
      std::printf("%s\n", measures_row(r).c_str());
    }
    if (const NamedRun* d = find("direct"); d != nullptr && ours != nullptr) {
      std::printf("ratio to direct: %.3f", ratio(ours->result, d->result));
      if (const NamedRun* p = find("pread_odirect")) {
        std::printf(", to pread_odirect: %.3f", ratio(ours->result, p->result));
      }
      std::printf("\n");
    }
    if (cached_after_ring) {
      std::printf(
          "page cache after the ring runs: %llu bytes of the file cached%s\n",
          static_cast<unsigned long long>(*cached_after_ring),  // NOLINT(google-runtime-int)
          *cached_after_ring == 0 ? " (bypassed)" : "");
    }
    if (o.verify) {
      std::printf("verify: %llu errors", static_cast<unsigned long long>(verify_errors));  // NOLINT
      if (final_check) {
        std::printf("; final pass: %llu blocks good, %llu unknown (last write failed)",
                    static_cast<unsigned long long>(final_check->good),      // NOLINT
                    static_cast<unsigned long long>(final_check->unknown));  // NOLINT
      }
      std::printf("%s%s\n", first_error.empty() ? "" : "; first: ", first_error.c_str());
    }
    const PoolStats& p0 = tlb_stats.pools.at(0);
    std::printf(
        "pool: %llu slots, used after %llu, high water %llu, maps %llu, full %llu; waits for "
        "slots %llu\n",
        static_cast<unsigned long long>(p0.nslabs),  // NOLINT(google-runtime-int)
        static_cast<unsigned long long>(pool_used), static_cast<unsigned long long>(p0.hiwater),
        static_cast<unsigned long long>(p0.maps),      // NOLINT(google-runtime-int)
        static_cast<unsigned long long>(p0.failures),  // NOLINT(google-runtime-int)
        static_cast<unsigned long long>(ours != nullptr ? ours->result.pool_waits : 0));  // NOLINT
    std::printf("ring: %llu -EAGAIN retries, %llu short transfers resumed, queue full %llu times\n",
                static_cast<unsigned long long>(dstats.eagain_retries),  // NOLINT
                static_cast<unsigned long long>(dstats.short_resumes),   // NOLINT
                static_cast<unsigned long long>(dstats.ring_full));      // NOLINT
  }
  if (interrupted) {
    std::uint64_t done = 0;
    for (const NamedRun& r : runs) {
      done += r.result.measures.ios;
    }
    fail(0, fmt::format("interrupted after {} I/Os: the I/Os in flight were waited for and every "
                        "bounce slot released (pool used {})",
                        done, pool_used));
    return 130;
  }
  if (failure) {
    return fail(1, failure->message());
  }
  if (verify_errors != 0) {
    return fail(1, fmt::format("{} blocks read back wrong; first: {}", verify_errors, first_error));
  }
  if (pool_used != 0) {
    return fail(1, fmt::format("{} bounce slots still in use after the run", pool_used));
  }
  return 0;
}

}  // namespace

void add_io_command(CLI::App& app, int* exit_code) {
  auto options = std::make_shared<IoCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "io", "O_DIRECT I/O through io_uring fixed buffers, bounced by the IoTlb (docs/io.md)");
  cmd->add_option(
      "--file", options->file,
      "file or block device; its first --size bytes are overwritten (default: a temporary file)");
  cmd->add_option("--dir", options->dir, "where the temporary file goes")->capture_default_str();
  cmd->add_option("--size", options->size, "bytes of the file to use (4k, 256M, 1G)")
      ->capture_default_str();
  cmd->add_option("--bs", options->bs, "block size, or a mix: 4k/70:128k/30")
      ->capture_default_str();
  cmd->add_option("--qd", options->qd, "I/Os in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--rw", options->rw, "read, write, randread, randwrite or randrw")
      ->capture_default_str();
  cmd->add_option("--rwmixread", options->read_percent, "percent of reads for randrw")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  cmd->add_option("--runtime", options->runtime, "seconds per run (0: by --ios)");
  cmd->add_option("--ios", options->ios, "I/Os per run (0 with no --runtime: one pass)");
  cmd->add_option("--buffers", options->buffers,
                  "where the application's buffers are: unaligned, aligned, mixed")
      ->capture_default_str();
  cmd->add_option("--pool-slots", options->pool_slots, "slots of the bounce pool (2 KiB each)")
      ->capture_default_str();
  cmd->add_flag("--verify", options->verify, "check every block read; read the whole file back");
  cmd->add_flag("--json", options->json, "print JSON");
  cmd->add_flag("--allow-buffered", options->allow_buffered,
                "go on with buffered I/O where O_DIRECT is refused");
  cmd->add_flag("--no-baselines", options->no_baselines, "run only the bounce path");
  cmd->add_option("--rounds", options->rounds,
                  "slices in which the bounce run and the direct baseline alternate")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->callback([options, exit_code] { *exit_code = run_io(*options); });
}

}  // namespace swiotlb::cli
