// PoolTable: snapshots published with release/acquire, freed after an RCU
// grace period (see the ordering argument in pool_table.h).
#include "swiotlb/iotlb/pool_table.h"

#include <pthread.h>
#include <urcu/urcu-bp.h>

#include <algorithm>
#include <mutex>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace swiotlb {

namespace {

// ThreadSanitizer cannot see liburcu's own synchronization (it is not built
// with instrumentation), so it would take the free after a grace period for
// a race with the readers it waited for. Each reader releases this token as
// it leaves its critical section and reclaim() acquires it after the grace
// period: exactly the happens-before edge the grace period guarantees.
[[maybe_unused]] char grace_token;

void reader_leaves() {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(&grace_token);
#endif
}

void grace_period_ended() {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(&grace_token);
#endif
}

// liburcu-bp keeps a registry of reader threads behind a lock; a fork while
// another thread holds it would leave the child unable to read. These are
// the library's documented fork hooks.
void install_fork_hooks() {
  static std::once_flag once;
  std::call_once(once, [] {
    pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent, urcu_bp_after_fork_child);
  });
}

}  // namespace

void PoolTable::ReadGuard::enter() {
  urcu_bp_read_lock();
}

void PoolTable::ReadGuard::leave() {
  reader_leaves();
  urcu_bp_read_unlock();
}

struct PoolTable::Snapshot {
  std::vector<IoPool*> by_address;
  // The pools' starts and ends in address order, apart from the pools, so
  // that a search reads two dense arrays instead of one pool per step.
  std::vector<std::uint64_t> starts;
  std::vector<std::uint64_t> ends;
  std::vector<std::vector<IoPool*>> by_tier;

  void index() {
    starts.clear();
    ends.clear();
    for (const IoPool* p : by_address) {
      starts.push_back(p->start.value());
      ends.push_back(p->end.value());
    }
  }
};

struct PoolTable::Retired {
  std::unique_ptr<const Snapshot> snapshot;
  std::unique_ptr<IoPool> pool;
};

PoolTable::PoolTable(std::uint32_t tiers) : tiers_(tiers) {
  install_fork_hooks();
  auto empty = std::make_unique<Snapshot>();
  empty->by_tier.resize(tiers);
  current_.store(empty.release(), std::memory_order_release);
}

PoolTable::~PoolTable() {
  wait_for_readers();
  delete current_.load(std::memory_order_relaxed);
}

IoPool* PoolTable::find(PhysAddr addr) const {
  const Snapshot* snapshot = current_.load(std::memory_order_acquire);
  const std::uint64_t* starts = snapshot->starts.data();
  std::size_t n = snapshot->starts.size();
  if (n == 0 || addr.value() < starts[0]) {
    return nullptr;
  }
  // The last pool that starts at or below addr, by halving without
  // branches on the data (the halves are chosen with a conditional move).
  std::size_t base = 0;
  while (n > 1) {
    const std::size_t half = n / 2;
    base = starts[base + half] <= addr.value() ? base + half : base;
    n -= half;
  }
  return addr.value() < snapshot->ends[base] ? snapshot->by_address[base] : nullptr;
}

std::span<IoPool* const> PoolTable::search_order(std::uint32_t tier) const {
  const Snapshot* snapshot = current_.load(std::memory_order_acquire);
  if (tier >= snapshot->by_tier.size()) {
    return {};
  }
  return snapshot->by_tier[tier];
}

std::span<IoPool* const> PoolTable::pools() const {
  return current_.load(std::memory_order_acquire)->by_address;
}

void PoolTable::publish(std::unique_ptr<Snapshot> next) {
  const Snapshot* previous = current_.exchange(next.release(), std::memory_order_acq_rel);
  retired_.push_back({std::unique_ptr<const Snapshot>(previous), nullptr});
  has_retired_.store(true, std::memory_order_relaxed);
}

Status PoolTable::insert(std::unique_ptr<IoPool> pool) {
  std::lock_guard lock(write_lock_);
  const Snapshot& now = *current_.load(std::memory_order_relaxed);
  for (const IoPool* p : now.by_address) {
    if (pool->start < p->end && p->start < pool->end) {
      return make_error(Errc::invalid_argument,
                        "pool {} [{:#x}, {:#x}) overlaps pool {} [{:#x}, {:#x})", pool->name,
                        pool->start.value(), pool->end.value(), p->name, p->start.value(),
                        p->end.value());
    }
  }
  if (pool->tier >= tiers_) {
    return make_error(Errc::invalid_argument, "pool {} serves pool {}, but there are {}",
                      pool->name, pool->tier, tiers_);
  }
  auto next = std::make_unique<Snapshot>(now);
  IoPool* added = pool.get();
  next->by_address.insert(
      std::upper_bound(next->by_address.begin(), next->by_address.end(), added,
                       [](const IoPool* a, const IoPool* b) { return a->start < b->start; }),
      added);
  next->index();
  if (added->kind == PoolKind::configured || added->kind == PoolKind::grown) {
    next->by_tier[added->tier].push_back(added);
  }
  owned_.push_back(std::move(pool));
  publish(std::move(next));
  return {};
}

void PoolTable::retire(IoPool* pool) {
  std::lock_guard lock(write_lock_);
  const Snapshot& now = *current_.load(std::memory_order_relaxed);
  auto next = std::make_unique<Snapshot>(now);
  std::erase(next->by_address, pool);
  next->index();
  for (std::vector<IoPool*>& order : next->by_tier) {
    std::erase(order, pool);
  }
  auto owned = std::find_if(owned_.begin(), owned_.end(),
                            [pool](const std::unique_ptr<IoPool>& p) { return p.get() == pool; });
  std::unique_ptr<IoPool> taken = std::move(*owned);
  owned_.erase(owned);
  publish(std::move(next));
  retired_.back().pool = std::move(taken);
}

void PoolTable::wait_for_readers() {
  urcu_bp_synchronize_rcu();
  grace_period_ended();
}

bool PoolTable::has_retired() const {
  return has_retired_.load(std::memory_order_relaxed);
}

void PoolTable::reclaim() {
  std::vector<Retired> batch;
  {
    std::lock_guard lock(write_lock_);
    batch.swap(retired_);
    has_retired_.store(false, std::memory_order_relaxed);
  }
  if (batch.empty()) {
    return;
  }
  wait_for_readers();
  batch.clear();
}

}  // namespace swiotlb
