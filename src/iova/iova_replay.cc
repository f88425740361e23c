// Trace replay through kernel-exact domains: one IovaDomain per declared
// domain, driven on the calling thread in trace order, each trace line
// applied as its op (ops/op.h) with the kernel's pfns translated to ours.
#include "swiotlb/iova/iova_replay.h"

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "swiotlb/iova/apply_op.h"
#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::iova {
namespace {

struct DomainReplay {
  std::unique_ptr<IovaDomain> domain;
  // The kernel's live pfns -> ours (nothing where we failed that alloc).
  std::unordered_map<std::uint64_t, std::optional<std::uint64_t>> live;
  IovaReplayDomainReport report;
};

class Replayer {
 public:
  explicit Replayer(unsigned cpus) { report_.cpus = cpus; }

  Status add_domain(const IovaTraceDomain& decl) {
    Result<std::unique_ptr<IovaDomain>> domain =
        IovaDomain::create(decl.granule, decl.start_pfn, report_.cpus);
    if (!domain) {
      return make_error(Errc::invalid_argument, "line {}: domain {}: {}", decl.line, decl.id,
                        domain.error().message());
    }
    DomainReplay& d = domains_[decl.id];
    d.domain = std::move(*domain);
    d.report.id = decl.id;
    d.report.granule = decl.granule;
    d.report.start_pfn = decl.start_pfn;
    order_.push_back(decl.id);
    return Status::ok();
  }

  Status run(const IovaTraceOp& op) {
    DomainReplay& d = domains_.at(op.domain);
    switch (op.kind) {
      case IovaOpKind::reserve:
        return reserve(d, op);
      case IovaOpKind::alloc:
        return alloc(d, op);
      case IovaOpKind::free:
        return free(d, op);
    }
    return Status::ok();
  }

  IovaReplayReport finish() {
    for (const std::uint32_t id : order_) {
      DomainReplay& d = domains_.at(id);
      d.report.live_at_end = d.domain->live_count();
      d.report.cached_at_end = d.domain->rcache().cached_pfn_count();
      report_.domains.push_back(d.report);
    }
    return std::move(report_);
  }

 private:
  Status reserve(DomainReplay& d, const IovaTraceOp& op) {
    if (ops::Applied r = ops::apply(ops::op_from_iova(op), *d.domain); !r) {
      return make_error(Errc::parse, "line {}: {}", op.line, r.error().message());
    }
    ++d.report.reserves;
    ++report_.reserves;
    return Status::ok();
  }

  Status alloc(DomainReplay& d, const IovaTraceOp& op) {
    if (op.result && d.live.contains(*op.result)) {
      return make_error(Errc::parse, "line {}: the trace hands out pfn {:#x} while it is live",
                        op.line, *op.result);
    }
    ops::Applied ours = ops::apply(ops::op_from_iova(op), *d.domain);
    if (!ours && ours.error().code() != Errc::pool_full) {
      return make_error(Errc::parse, "line {}: {}", op.line, ours.error().message());
    }
    const std::optional<std::uint64_t> got =
        ours ? std::optional<std::uint64_t>(*ours) : std::nullopt;
    ++d.report.allocs;
    ++report_.allocs;
    if (!got) {
      ++d.report.alloc_failures;
    }
    d.report.peak_live = std::max(d.report.peak_live, d.domain->live_count());
    compare(d, op, got);
    if (op.result) {
      d.live.emplace(*op.result, got);
    }
    return Status::ok();
  }

  void compare(DomainReplay& d, const IovaTraceOp& op, std::optional<std::uint64_t> got) {
    ++d.report.compared;
    ++report_.compared;
    if (got == op.result) {
      ++d.report.matched;
      ++report_.matched;
    } else if (!report_.first_mismatch) {
      report_.first_mismatch = IovaMismatch{op.line, op.result, got};
    }
  }

  Status free(DomainReplay& d, const IovaTraceOp& op) {
    const auto it = d.live.find(op.pfn);
    if (it == d.live.end()) {
      return make_error(Errc::parse,
                        "line {}: free of pfn {:#x} ({} granule(s)) in domain {}, which the trace "
                        "has not allocated",
                        op.line, op.pfn, op.size, op.domain);
    }
    const std::optional<std::uint64_t> ours = it->second;
    d.live.erase(it);
    ++d.report.frees;
    ++report_.frees;
    if (!ours) {
      ++d.report.frees_skipped;
      return Status::ok();
    }
    if (ops::Applied st = ops::apply(ops::IovaFree{op.cpu, *ours, op.size}, *d.domain); !st) {
      return make_error(Errc::parse, "line {}: {}", op.line, st.error().message());
    }
    return Status::ok();
  }

  IovaReplayReport report_;
  std::unordered_map<std::uint32_t, DomainReplay> domains_;
  std::vector<std::uint32_t> order_;
};

Result<unsigned> replay_cpus(const IovaTrace& trace, const IovaReplayOptions& options) {
  const std::optional<std::uint32_t> max_cpu = trace.max_cpu();
  const unsigned needed = max_cpu ? *max_cpu + 1 : 1;
  if (!options.cpus) {
    return needed;
  }
  if (*options.cpus < needed) {
    return make_error(Errc::invalid_argument, "the trace uses CPU {} but the replay has {} CPU(s)",
                      *max_cpu, *options.cpus);
  }
  return *options.cpus;
}

nlohmann::json pfn_json(std::optional<std::uint64_t> pfn) {
  return pfn ? nlohmann::json(fmt::format("{:#x}", *pfn)) : nlohmann::json("fail");
}

}  // namespace

Result<IovaReplayReport> replay_iova_trace(const IovaTrace& trace,
                                           const IovaReplayOptions& options) {
  Result<unsigned> cpus = replay_cpus(trace, options);
  if (!cpus) {
    return std::move(cpus).error();
  }
  Replayer replayer(*cpus);
  for (const IovaTraceDomain& decl : trace.domains) {
    if (Status st = replayer.add_domain(decl); !st) {
      return st.error();
    }
  }
  for (const IovaTraceOp& op : trace.ops) {
    if (Status st = replayer.run(op); !st) {
      return st.error();
    }
  }
  return replayer.finish();
}

nlohmann::json to_json(const IovaReplayReport& report) {
  nlohmann::json agreement = {{"matched", report.matched}, {"compared", report.compared}};
  agreement["first_mismatch_line"] = nullptr;
  agreement["first_mismatch"] = nullptr;
  if (const auto& m = report.first_mismatch) {
    agreement["first_mismatch_line"] = m->line;
    agreement["first_mismatch"] = {
        {"line", m->line}, {"expected", pfn_json(m->expected)}, {"got", pfn_json(m->got)}};
  }
  nlohmann::json domains = nlohmann::json::array();
  for (const IovaReplayDomainReport& d : report.domains) {
    domains.push_back({{"id", d.id},
                       {"granule", d.granule},
                       {"start_pfn", fmt::format("{:#x}", d.start_pfn)},
                       {"reserves", d.reserves},
                       {"allocs", d.allocs},
                       {"alloc_failures", d.alloc_failures},
                       {"frees", d.frees},
                       {"frees_skipped", d.frees_skipped},
                       {"matched", d.matched},
                       {"compared", d.compared},
                       {"peak_live", d.peak_live},
                       {"live_at_end", d.live_at_end},
                       {"cached_at_end", d.cached_at_end}});
  }
  return {{"allocs", report.allocs}, {"frees", report.frees},  {"reserves", report.reserves},
          {"cpus", report.cpus},     {"agreement", agreement}, {"domains", domains}};
}

std::string format_replay_report(const IovaReplayReport& report) {
  std::string out = fmt::format("allocs {}  frees {}  reserves {}  cpus {}\n", report.allocs,
                                report.frees, report.reserves, report.cpus);
  out += fmt::format("agreement {}/{}", report.matched, report.compared);
  if (const auto& m = report.first_mismatch) {
    const auto pfn = [](std::optional<std::uint64_t> p) {
      return p ? fmt::format("{:#x}", *p) : std::string("fail");
    };
    out += fmt::format("  first mismatch on line {}: kernel {}, ours {}", m->line, pfn(m->expected),
                       pfn(m->got));
  }
  out += "\n";
  for (const IovaReplayDomainReport& d : report.domains) {
    out += fmt::format(
        "domain {}: granule {} start_pfn {:#x}: {} reserves, {} allocs ({} failed), {} frees, "
        "agreement {}/{}, peak live {}, live at end {}, cached at end {}\n",
        d.id, d.granule, d.start_pfn, d.reserves, d.allocs, d.alloc_failures, d.frees, d.matched,
        d.compared, d.peak_live, d.live_at_end, d.cached_at_end);
  }
  return out;
}

}  // namespace swiotlb::iova
