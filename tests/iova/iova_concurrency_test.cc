// Many threads on one IovaDomain: per-CPU magazines, shared CPUs, the tree
// path, flushes and finds, all at once. Every pfn handed out is claimed in a
// shared map of atomics, so a pfn handed to two owners at the same time is
// caught the moment it happens; at the end the domain's invariants must
// hold. Meant to run under ThreadSanitizer as well.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kLimit = 0xfffff;
constexpr std::uint64_t kFirstFree = 0xf8000;  // below is reserved: a small space fills up

class Ownership {
 public:
  Ownership() : owner_(std::make_unique<std::atomic<std::uint8_t>[]>(kLimit + 1)) {}

  bool claim(std::uint64_t pfn, std::uint64_t size) {
    bool ok = true;
    for (std::uint64_t p = pfn; p < pfn + size; ++p) {
      ok &= owner_[p].exchange(1, std::memory_order_relaxed) == 0;
    }
    return ok;
  }
  bool release(std::uint64_t pfn, std::uint64_t size) {
    bool ok = true;
    for (std::uint64_t p = pfn; p < pfn + size; ++p) {
      ok &= owner_[p].exchange(0, std::memory_order_relaxed) == 1;
    }
    return ok;
  }

 private:
  std::unique_ptr<std::atomic<std::uint8_t>[]> owner_;
};

struct Held {
  std::uint64_t pfn;
  std::uint64_t size;  // what the tree holds
  std::uint64_t asked;
  bool fast;
};

void worker(IovaDomain& domain, Ownership& owners, unsigned cpu, unsigned seed,
            std::atomic<int>& errors) {
  std::mt19937_64 rng(seed);
  std::vector<Held> held;
  for (int step = 0; step < 20000; ++step) {
    const std::uint64_t r = rng();
    if (!held.empty() && (r % 100 < 45 || held.size() > 400)) {
      const std::size_t i = (r >> 8) % held.size();
      const Held h = held[i];
      held[i] = held.back();
      held.pop_back();
      errors += owners.release(h.pfn, h.size) ? 0 : 1;
      const Status st = h.fast ? domain.free_fast(cpu, h.pfn, h.asked) : domain.free(h.pfn);
      errors += st ? 0 : 1;
      continue;
    }
    if (r % 100 < 50) {
      const std::uint64_t asked = (r >> 16) % 40 + 1;
      Result<std::uint64_t> pfn = domain.alloc_fast(cpu, asked, kLimit, (r >> 24) % 2 == 0);
      if (pfn) {
        const std::uint64_t size = fast_alloc_size(asked);
        errors += owners.claim(*pfn, size) ? 0 : 1;
        held.push_back({*pfn, size, asked, true});
      }
    } else if (r % 100 < 52) {
      const std::uint64_t size = (r >> 16) % 70 + 1;
      Result<IovaRange> range = domain.alloc(size, kLimit, (r >> 24) % 2 == 0);
      if (range) {
        errors += owners.claim(range->pfn_lo, size) ? 0 : 1;
        held.push_back({range->pfn_lo, size, size, false});
      }
    } else if (r % 1000 == 999) {
      domain.flush_rcaches();
    } else {
      (void)domain.find(kFirstFree + (r >> 12) % (kLimit - kFirstFree));
    }
  }
  for (const Held& h : held) {
    errors += owners.release(h.pfn, h.size) ? 0 : 1;
    errors += domain.free_fast(cpu, h.pfn, h.asked) ? 0 : 1;
  }
}

void run(unsigned threads, unsigned cpus) {
  auto domain = IovaDomain::create(4096, 1, cpus).value();
  ASSERT_TRUE(domain->reserve(1, kFirstFree - 1));
  Ownership owners;
  std::atomic<int> errors{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back(worker, std::ref(*domain), std::ref(owners), t % cpus, 1000 + t,
                      std::ref(errors));
  }
  for (std::thread& t : pool) {
    t.join();
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(domain->live_count(), 0u);
  const Status st = domain->check_invariants();
  EXPECT_TRUE(st) << st.error().message();
  domain->flush_rcaches();
  EXPECT_EQ(domain->tree().nodes().size(), 1u);  // only the reserve is left
}

TEST(IovaConcurrencyTest, OneThreadPerCpu) {
  run(4, 4);
}

TEST(IovaConcurrencyTest, ThreadsShareCpus) {
  run(4, 2);
}

}  // namespace
}  // namespace swiotlb::iova
