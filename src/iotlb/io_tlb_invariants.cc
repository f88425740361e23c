// IoTlb::check_invariants(): what the IoTlb relies on across its pools.
#include <fmt/format.h>

#include <algorithm>

#include "io_tlb_internal.h"

namespace swiotlb {

namespace {

Error broken(std::string what) {
  return make_error(Errc::out_of_range, "IoTlb invariant: {}", what);
}

// The pools a map searches one after another: the configured ones and
// those grown for them (transient pools and the reserve are asked apart).
bool searched_in_turn(const IoPool& pool) {
  return pool.kind == PoolKind::configured || pool.kind == PoolKind::grown;
}

}  // namespace

Status IoTlb::check_invariants() const {
  PoolTable::ReadGuard reading(dynamic_);
  // One snapshot of the table: the maintenance may publish another between
  // two reads, so read until the pools are the same before and after the
  // search orders (a snapshot is never published twice, and none that this
  // section saw is freed while it lasts).
  std::span<IoPool* const> pools;
  std::vector<std::span<IoPool* const>> orders(configured_.size());
  for (;;) {
    pools = table_->pools();
    for (std::uint32_t tier = 0; tier < configured_.size(); ++tier) {
      orders[tier] = table_->search_order(tier);
    }
    if (table_->pools().data() == pools.data()) {
      break;
    }
  }
  std::vector<std::uint64_t> used(configured_.size(), 0);
  for (std::size_t i = 0; i < pools.size(); ++i) {
    const IoPool& p = *pools[i];
    if (p.start >= p.end || p.slots == nullptr) {
      return broken(fmt::format("pool {} is empty or has no slots", p.name));
    }
    if (i > 0 && pools[i - 1]->end > p.start) {
      return broken(fmt::format("pools {} and {} overlap or are out of address order",
                                pools[i - 1]->name, p.name));
    }
    if (p.tier >= configured_.size()) {
      return broken(fmt::format("pool {} serves pool {}, which does not exist", p.name, p.tier));
    }
    if (p.start < p.slots->start() || p.end > p.slots->end()) {
      return broken(fmt::format("pool {} reaches beyond its slots", p.name));
    }
    if (p.memory.data != nullptr && p.memory.start + p.memory.bytes < p.end) {
      return broken(fmt::format("pool {} reaches beyond its memory", p.name));
    }
    if (Status ok = p.slots->check_invariants(); !ok) {
      return broken(fmt::format("pool {}: {}", p.name, ok.error().message()));
    }
    if (p.kind == PoolKind::transient &&
        (p.accepting.load(std::memory_order_relaxed) || p.slots->used() == 0)) {
      return broken(fmt::format("transient pool {} takes mappings or holds none", p.name));
    }
    used[p.tier] += p.slots->used();
  }
  for (std::uint32_t tier = 0; tier < configured_.size(); ++tier) {
    if (std::find(pools.begin(), pools.end(), configured_[tier]) == pools.end()) {
      return broken(fmt::format("configured pool {} is not in the table", tier));
    }
    const std::span<IoPool* const> order = orders[tier];
    if (order.empty() || order.front() != configured_[tier]) {
      return broken(fmt::format("the search order of pool {} does not start with it", tier));
    }
    std::size_t expected = 0;
    for (const IoPool* p : pools) {
      expected += p->tier == tier && searched_in_turn(*p) ? 1u : 0u;
    }
    if (order.size() != expected) {
      return broken(fmt::format("the search order of pool {} lists {} pools, the table {}", tier,
                                order.size(), expected));
    }
    for (const IoPool* p : order) {
      if (p->tier != tier || !searched_in_turn(*p) ||
          std::find(pools.begin(), pools.end(), p) == pools.end()) {
        return broken(
            fmt::format("the search order of pool {} lists {}, which is not one of its "
                        "pools in the table",
                        tier, p->name));
      }
    }
    const Counters::Tier& counted = counters_->tiers[tier];
    const std::uint64_t in_use = counted.used(*configured_[tier]);
    if (in_use != used[tier]) {
      return broken(fmt::format("pool {} counts {} slots in use, its pools hold {}", tier, in_use,
                                used[tier]));
    }
    if (counted.hiwater(*configured_[tier]) < in_use) {
      return broken(fmt::format("pool {}'s high-water mark is below the slots in use", tier));
    }
  }
  const WaitStats waits = waits_.stats();
  if ((waits.waiting_now != 0) != waits_.has_waiters()) {
    return broken(fmt::format("{} waiters counted, but the queue says it has {}", waits.waiting_now,
                              waits_.has_waiters() ? "some" : "none"));
  }
  return {};
}

}  // namespace swiotlb
