// Many threads mapping and unmapping random sizes on one pool, for the
// `fast` and `linux` policies, with fewer, as many and more threads than
// areas (so that areas are shared and full areas send requests on to the
// next). Every slot has an owner word that a thread claims with an atomic
// exchange right after its map returns and gives back right before its
// unmap: finding it already claimed means two live mappings overlap. At the
// end the pool's invariants (the fast index, the run cache and the
// high-water gates included) must hold, its used count must match the mappings still live,
// and its high-water mark must be at least that. Meant to be run under
// ThreadSanitizer as well (-DSWIOTLB_SANITIZE=thread).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x40000000;
constexpr std::uint64_t kSlots = 4096;
constexpr int kOpsPerThread = 20000;
constexpr std::size_t kMaxLivePerThread = 24;

struct Live {
  PhysAddr tlb;
  std::uint64_t min_align = 0;
  std::uint64_t first = 0;
  std::uint64_t nslots = 0;
};

struct Shared {
  SlotPool* pool = nullptr;
  std::unique_ptr<std::atomic<std::uint32_t>[]> owner { new std::atomic<std::uint32_t>[ kSlots ] };
  std::atomic<std::uint64_t> overlaps{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> maps{0};
  std::atomic<std::uint64_t> full{0};
  std::atomic<unsigned> waiting{0};  // threads not yet started: all start at once
};

class Worker {
 public:
  Worker(Shared& shared, std::uint32_t id, unsigned seed)
      : shared_(shared), id_(id), random_(seed) {}

  void run() {
    shared_.waiting.fetch_sub(1);
    while (shared_.waiting.load() != 0) {
      std::this_thread::yield();
    }
    for (int op = 0; op < kOpsPerThread; ++op) {
      if (live_.empty() || (live_.size() < kMaxLivePerThread && coin(60))) {
        map_one();
      } else {
        unmap_at(pick(live_.size()));
      }
    }
  }

  // Leaves `keep` mappings live, for the final checks.
  void unmap_all_but(std::size_t keep) {
    while (live_.size() > keep) {
      unmap_at(live_.size() - 1);
    }
  }
  const std::vector<Live>& live() const { return live_; }

 private:
  bool coin(unsigned percent) { return pick(100) < percent; }
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random_);
  }

  SlotRequest request() {
    static constexpr std::uint64_t kMinAlign[] = {0, 0, 0, 0xfff, 0x3fff};
    SlotRequest r;
    r.orig = PhysAddr(0x100000000ull + pick(std::size_t{1} << 24) * 64);
    // Half of them of two common sizes, which the `fast` run cache serves
    // from the runs other maps just gave back.
    static constexpr std::uint64_t kCommon[] = {512, 4096};
    r.mapping_size = coin(50)   ? kCommon[pick(2)]
                     : coin(90) ? 1 + pick(64 * 1024)
                                : 1 + pick(kSegmentBytes - 16 * 1024);
    r.min_align_mask = kMinAlign[pick(std::size(kMinAlign))];
    r.alloc_align_mask = coin(10) ? kPageSize - 1 : 0;
    r.pool_dma_start = DmaAddr(kStart);
    r.cpu = id_;
    r.owner = id_;
    return r;
  }

  void map_one() {
    const SlotRequest r = request();
    Result<SlotMapping> m = shared_.pool->map(r);
    if (!m) {
      (m.error().code() == Errc::pool_full ? shared_.full : shared_.errors).fetch_add(1);
      return;
    }
    shared_.maps.fetch_add(1, std::memory_order_relaxed);
    const Live run{m->tlb_addr, r.min_align_mask, m->index.value(), m->nslots.value()};
    for (std::uint64_t i = run.first; i < run.first + run.nslots; ++i) {
      if (shared_.owner[i].exchange(id_ + 1) != 0) {
        shared_.overlaps.fetch_add(1);
      }
    }
    live_.push_back(run);
  }

  void unmap_at(std::size_t at) {
    const Live run = live_[at];
    live_[at] = live_.back();
    live_.pop_back();
    // Given back before the pool can hand the slots to another thread.
    for (std::uint64_t i = run.first; i < run.first + run.nslots; ++i) {
      shared_.owner[i].store(0);
    }
    Result<MappingInfo> info = shared_.pool->unmap(run.tlb, run.min_align);
    if (!info || info->index.value() != run.first || info->nslots.value() != run.nslots) {
      shared_.errors.fetch_add(1);
    }
  }

  Shared& shared_;
  std::uint32_t id_;
  std::mt19937_64 random_;
  std::vector<Live> live_;
};

using Params = std::tuple<std::string, unsigned, std::uint32_t>;  // policy, threads, areas

class SlotPoolConcurrency : public ::testing::TestWithParam<Params> {};

INSTANTIATE_TEST_SUITE_P(Threads, SlotPoolConcurrency,
                         ::testing::Combine(::testing::Values("fast", "linux"),
                                            ::testing::Values(2u, 4u, 8u),
                                            ::testing::Values(1u, 2u, 8u)),
                         [](const ::testing::TestParamInfo<Params>& param_info) {
                           std::string policy = std::get<0>(param_info.param);
                           std::replace(policy.begin(), policy.end(), '-', '_');
                           return policy + "_" + std::to_string(std::get<1>(param_info.param)) +
                                  "threads_" + std::to_string(std::get<2>(param_info.param)) +
                                  "areas";
                         });

TEST_P(SlotPoolConcurrency, LiveMappingsNeverOverlap) {
  const auto& [policy_name, threads, areas] = GetParam();
  auto policy = make_slot_policy(policy_name);
  ASSERT_TRUE(policy);
  auto pool = SlotPool::create({PhysAddr(kStart), kSlots, areas}, *policy);
  ASSERT_TRUE(pool) << pool.error().message();
  Shared shared;
  shared.pool = pool->get();
  for (std::uint64_t i = 0; i < kSlots; ++i) {
    shared.owner[i].store(0);
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<Worker>(shared, t, 1234 + t));
  }
  shared.waiting.store(threads);
  std::vector<std::thread> running;
  for (auto& w : workers) {
    running.emplace_back([&w] { w->run(); });
  }
  for (auto& t : running) {
    t.join();
  }

  EXPECT_EQ(shared.overlaps.load(), 0u);
  EXPECT_EQ(shared.errors.load(), 0u);
  EXPECT_GT(shared.maps.load(), threads * static_cast<std::uint64_t>(kOpsPerThread) / 4);

  // Quiescent now: the live mappings are disjoint, their slots are what the
  // pool counts as used, and every invariant holds.
  std::vector<Live> all;
  for (auto& w : workers) {
    w->unmap_all_but(kMaxLivePerThread / 2);
    all.insert(all.end(), w->live().begin(), w->live().end());
  }
  std::sort(all.begin(), all.end(), [](const Live& a, const Live& b) { return a.first < b.first; });
  std::uint64_t slots = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    slots += all[i].nslots;
    if (i > 0) {
      EXPECT_LE(all[i - 1].first + all[i - 1].nslots, all[i].first);
    }
  }
  EXPECT_EQ((*pool)->used(), slots);
  EXPECT_GE((*pool)->hiwater(), slots);
  const Status ok = (*pool)->check_invariants();
  EXPECT_TRUE(ok) << ok.error().message();
  for (auto& w : workers) {
    w->unmap_all_but(0);
  }
  EXPECT_EQ((*pool)->used(), 0u);
  // Runs parked in a run cache still hold their slots until it is drained.
  (*pool)->drain_cache();
  EXPECT_EQ((*pool)->cached(), 0u);
  EXPECT_EQ((*pool)->largest_free_run(), kSegmentSlots);
  const Status empty = (*pool)->check_invariants();
  EXPECT_TRUE(empty) << empty.error().message();
}

}  // namespace
}  // namespace swiotlb
