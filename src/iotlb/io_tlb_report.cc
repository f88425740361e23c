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
                        .used = tier.used(p),
                        .hiwater = tier.hiwater(p),
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
      if (p->kind == PoolKind::reserve) {
        const PoolStats own = p->slots->stats();
        s.reserve.nslabs = p->nslabs();
        s.reserve.used = own.used;
        s.reserve.hiwater = own.hiwater;
        continue;
      }
      const PoolStats own = p->slots->stats();
      s.dynamic.push_back({.name = p->name,
                           .kind = p->kind,
                           .tier = p->tier,
                           .owner = p->owner,
                           .start = p->start.value(),
                           .end = p->end.value(),
                           .nslabs = p->nslabs(),
                           .used = own.used,
                           .nareas = own.nareas,
                           .maps = own.maps,
                           .hiwater = own.hiwater});
      if (p->kind == PoolKind::grown) {
        s.growth.grown_pools += 1;
        s.growth.grown_nslabs += p->nslabs();
        s.served[p->tier].nslabs += p->nslabs();
      }
    }
  }
  const GrowthStats counted = growth_stats();
  s.growth.grow_events = counted.grow_events;
  s.growth.grow_failures = counted.grow_failures;
  s.growth.grown_smaller = counted.grown_smaller;
  s.growth.limit_reached = counted.limit_reached;
  s.growth.shrunk_pools = counted.shrunk_pools;
  s.growth.transient_pools = counted.transient_pools;
  s.growth.transient_pools_total = counted.transient_pools_total;
  s.growth.transient_nslabs = counted.transient_nslabs;
  s.growth.transient_nslabs_total = counted.transient_nslabs_total;
  s.growth.transient_failures = counted.transient_failures;
  s.reserve.maps = counters_->reserve_maps.load(std::memory_order_relaxed);
  s.reserve.exhausted = counters_->reserve_exhausted.load(std::memory_order_relaxed);
  s.waits = waits_.stats();
  return s;
}

GrowthStats IoTlb::growth_stats() const {
  const Counters& c = *counters_;
  GrowthStats g;
  g.grow_events = c.grow_events.load(std::memory_order_relaxed);
  g.grow_failures = c.grow_failures.load(std::memory_order_relaxed);
  g.grown_smaller = c.grown_smaller.load(std::memory_order_relaxed);
  g.limit_reached = c.limit_reached.load(std::memory_order_relaxed);
  g.shrunk_pools = c.shrunk_pools.load(std::memory_order_relaxed);
  g.transient_pools = c.transient_pools.load(std::memory_order_relaxed);
  g.transient_pools_total = c.transient_pools_total.load(std::memory_order_relaxed);
  g.transient_nslabs = c.transient_nslabs.load(std::memory_order_relaxed);
  g.transient_nslabs_total = c.transient_nslabs_total.load(std::memory_order_relaxed);
  g.transient_failures = c.transient_failures.load(std::memory_order_relaxed);
  return g;
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
