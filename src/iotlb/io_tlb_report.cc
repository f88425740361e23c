// What an IoTlb reports: its statistics, the kernel's debugfs files and its
// boot line.
#include <fmt/format.h>

#include "io_tlb_internal.h"

namespace swiotlb {

IoTlbStats IoTlb::stats() const {
  IoTlbStats s;
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    const IoPool& p = *configured_[i];
    s.pools.push_back(p.slots->stats());
    const Counters::Tier& tier = counters_->tiers[i];
    s.served.push_back({.nslabs = p.nslabs(),
                        .used = tier.used.load(std::memory_order_relaxed),
                        .hiwater = tier.hiwater.load(std::memory_order_relaxed),
                        .refused = tier.refused.load(std::memory_order_relaxed),
                        .fall_throughs = tier.fall_throughs.load(std::memory_order_relaxed)});
  }
  s.coherent_allocations = coherent_allocations_.load(std::memory_order_relaxed);
  {
    PoolTable::ReadGuard reading(dynamic_);
    for (const IoPool* p : table_->pools()) {
      if (p->kind == PoolKind::configured) {
        continue;
      }
      s.dynamic.push_back({p->name, p->kind, p->tier, p->owner, p->start.value(), p->end.value(),
                           p->nslabs(), p->slots->used()});
      if (p->kind == PoolKind::grown) {
        s.growth.grown_pools += 1;
        s.growth.grown_nslabs += p->nslabs();
        s.served[p->tier].nslabs += p->nslabs();
      }
    }
  }
  const Counters& c = *counters_;
  s.growth.grow_events = c.grow_events.load(std::memory_order_relaxed);
  s.growth.grow_failures = c.grow_failures.load(std::memory_order_relaxed);
  s.growth.grown_smaller = c.grown_smaller.load(std::memory_order_relaxed);
  s.growth.limit_reached = c.limit_reached.load(std::memory_order_relaxed);
  s.growth.shrunk_pools = c.shrunk_pools.load(std::memory_order_relaxed);
  s.growth.transient_pools = c.transient_pools.load(std::memory_order_relaxed);
  s.growth.transient_nslabs = c.transient_nslabs.load(std::memory_order_relaxed);
  s.growth.transient_nslabs_total = c.transient_nslabs_total.load(std::memory_order_relaxed);
  s.growth.transient_failures = c.transient_failures.load(std::memory_order_relaxed);
  s.waits = waits_.stats();
  return s;
}

std::string IoTlb::debugfs_text() const {
  const IoTlbStats s = stats();
  std::string text;
  for (std::size_t i = 0; i < configured_.size(); ++i) {
    const ServedStats& served = s.served[i];
    const std::string suffix = i == 0 ? "" : "_" + configured_[i]->name;
    text += fmt::format("io_tlb_nslabs{0}: {1}\nio_tlb_used{0}: {2}\nio_tlb_used_hiwater{0}: {3}\n",
                        suffix, served.nslabs, served.used, served.hiwater);
  }
  if (growth_.enabled || transient_) {
    text += fmt::format("io_tlb_transient_nslabs: {}\n", s.growth.transient_nslabs);
  }
  return text;
}

std::string IoTlb::boot_line() const {
  if (configured_.empty()) {
    return "software IO TLB: disabled (swiotlb=noforce)";
  }
  std::string lines;
  for (const IoPool* p : configured_) {
    // The kernel prints its pool's end, one past the last byte.
    lines +=
        fmt::format("{}software IO TLB: mapped [mem {:#018x}-{:#018x}] ({}MB){}",
                    lines.empty() ? "" : "\n", p->start.value(), p->end.value(), p->bytes() >> 20,
                    configured_.size() > 1 ? fmt::format(" {} pool", p->name) : std::string());
  }
  return lines;
}

}  // namespace swiotlb
