// Many threads mapping, syncing and unmapping through the DMA API while the
// IoTlb under them grows, gives grown pools back and makes and frees
// transient pools: every byte each mapping carries is checked, in the
// bounce memory (through the device address) and in the original buffer.
// Run under ThreadSanitizer and AddressSanitizer in CI.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using namespace std::chrono_literals;
using testing::device_view;
using testing::make_device;
using testing::pattern;

constexpr std::size_t kMinSize = 512;
constexpr std::size_t kMaxSize = 64 * 1024;
constexpr std::size_t kMaxLive = 6;  // mappings a thread holds at once
constexpr int kOpsInAll = 2400;      // split over the threads
constexpr int kSteps = 8;            // with the invariants checked after each

// A small configured pool that grows in small pools, gives them back after
// a few idle milliseconds, and makes transient pools for the callers that
// cannot wait. Sleeping callers get a deadline far beyond any honest wait.
std::unique_ptr<IoTlb> make_growing_io_tlb() {
  IoTlbOptions options;
  options.nslabs = 128;
  options.force_bounce = true;
  options.growth = {.enabled = true,
                    .pool_nslabs = 128,
                    .watermark_percent = 75,
                    .shrink_after = std::chrono::milliseconds(3)};
  options.transient = true;
  options.wait_timeout = 20s;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

// What the threads found wrong, with the first message.
class Problems {
 public:
  void add(std::string what) {
    std::lock_guard lock(mu_);
    if (count_++ == 0) {
      first_ = std::move(what);
    }
  }
  std::uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string first() const {
    std::lock_guard lock(mu_);
    return first_;
  }

 private:
  mutable std::mutex mu_;
  std::uint64_t count_ = 0;
  std::string first_;
};

// One live mapping of a thread.
struct Live {
  std::vector<std::byte> buffer;  // the driver's buffer
  std::vector<std::byte> answer;  // what the device wrote, once it has
  DmaAddr dma;
  Direction dir = Direction::bidirectional;
  unsigned seed = 0;
};

class StressThread {
 public:
  StressThread(Device& dev, unsigned id, int ops, bool sleepers, Problems& problems)
      : dev_(dev), id_(id), ops_(ops), sleepers_(sleepers), problems_(problems), rng_(id) {}

  // `ops` operations, leaving mappings live for the next step.
  void step(int ops) {
    for (int op = 0; op < ops; ++op) {
      const unsigned pick = rng_() % 8;
      if (live_.empty() || (live_.size() < kMaxLive && pick < 3)) {
        map_one();
      } else {
        const std::size_t which = rng_() % live_.size();
        if (pick < 5) {
          sync_one(live_[which]);
        } else {
          unmap_one(which);
        }
      }
    }
  }
  void finish() {
    while (!live_.empty()) {
      unmap_one(live_.size() - 1);
    }
  }
  int ops() const { return ops_; }

 private:
  void bad(const std::string& what, const Live& m) { problems_.add(fmt_problem(what, m)); }
  std::string fmt_problem(const std::string& what, const Live& m) const {
    return "thread " + std::to_string(id_) + ", mapping " + std::to_string(m.seed) + " (" +
           std::to_string(m.buffer.size()) + " bytes, " + std::string(to_string(m.dir)) +
           "): " + what;
  }

  void map_one() {
    Live m;
    const std::size_t size = kMinSize + rng_() % (kMaxSize - kMinSize + 1);
    m.dir = static_cast<Direction>(rng_() % 3);
    m.seed = id_ * 100000 + serial_++;
    m.buffer = pattern(size, m.seed);
    const bool sleep = sleepers_ && rng_() % 2 == 0;
    const Attrs attrs = sleep ? Attrs(Attr::may_sleep) : Attrs(Attr::no_warn);
    Result<DmaAddr> dma = map_single(dev_, m.buffer.data(), size, m.dir, attrs);
    if (!dma) {
      // Transient pools serve the callers that cannot wait; growth and
      // unmaps make room for those that can, long before their deadline.
      bad("map failed: " + dma.error().message(), m);
      return;
    }
    m.dma = *dma;
    // Whatever the direction, the bounce buffer starts as the original.
    if (!testing::same_bytes(device_view(m.dma), m.buffer.data(), size)) {
      bad("the device does not see the original after map", m);
    }
    live_.push_back(std::move(m));
  }

  // A random range inside the mapping.
  std::pair<std::size_t, std::size_t> range(std::size_t size) {
    const std::size_t offset = rng_() % size;
    const std::size_t length = 1 + rng_() % (size - offset);
    return {offset, length};
  }

  void sync_one(Live& m) {
    const std::size_t size = m.buffer.size();
    const auto [offset, length] = range(size);
    const DmaAddr at(m.dma.value() + offset);
    if (copies_from_device(m.dir)) {
      if (m.answer.empty()) {
        device_writes(m);
      }
      if (!sync_single_for_cpu(dev_, at, length, m.dir)) {
        bad("sync_single_for_cpu failed", m);
        return;
      }
      if (!testing::same_bytes(m.buffer.data() + offset, m.answer.data() + offset, length)) {
        bad("sync for the CPU did not bring the device's bytes", m);
      }
      if (m.dir == Direction::bidirectional) {
        // The CPU answers back in the same range, for the device.
        const std::vector<std::byte> next = pattern(length, m.seed + 7);
        std::memcpy(m.buffer.data() + offset, next.data(), length);
        std::memcpy(m.answer.data() + offset, next.data(), length);
        if (!sync_single_for_device(dev_, at, length, m.dir)) {
          bad("sync_single_for_device failed", m);
          return;
        }
        if (!testing::same_bytes(device_view(at), next.data(), length)) {
          bad("sync for the device did not bring the CPU's bytes", m);
        }
      }
      return;
    }
    // to_device: the CPU writes more of the buffer and hands it over.
    const std::vector<std::byte> next = pattern(length, m.seed + 3);
    std::memcpy(m.buffer.data() + offset, next.data(), length);
    if (!sync_single_for_device(dev_, at, length, m.dir)) {
      bad("sync_single_for_device failed", m);
      return;
    }
    if (!testing::same_bytes(device_view(m.dma), m.buffer.data(), size)) {
      bad("the device does not see the buffer after sync for the device", m);
    }
  }

  // The device writes the whole mapping, through its device address.
  void device_writes(Live& m) {
    m.answer = pattern(m.buffer.size(), m.seed + 11);
    std::memcpy(device_view(m.dma), m.answer.data(), m.answer.size());
  }

  void unmap_one(std::size_t which) {
    Live m = std::move(live_[which]);
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(which));
    std::vector<std::byte> expect;
    if (copies_from_device(m.dir)) {
      if (m.answer.empty()) {
        device_writes(m);
      }
      expect = m.answer;
    } else {
      // A device that scribbles on a to_device mapping changes nothing.
      expect = m.buffer;
      std::memset(device_view(m.dma), 0x5c, m.buffer.size());
    }
    if (!unmap_single(dev_, m.dma, m.buffer.size(), m.dir)) {
      bad("unmap failed", m);
      return;
    }
    if (m.buffer != expect) {
      bad("the original does not hold what it should after unmap", m);
    }
  }

  Device& dev_;
  const unsigned id_;
  const int ops_;
  const bool sleepers_;
  Problems& problems_;
  std::mt19937 rng_;
  unsigned serial_ = 0;
  std::vector<Live> live_;
};

struct StressCase {
  int threads;
  bool sleepers;  // half the maps pass Attr::may_sleep
};

std::string case_name(const ::testing::TestParamInfo<StressCase>& info) {
  return std::to_string(info.param.threads) + "Threads" +
         (info.param.sleepers ? "HalfMaySleep" : "NoneSleep");
}

class DmaGrowthStress : public ::testing::TestWithParam<StressCase> {};
INSTANTIATE_TEST_SUITE_P(Threads, DmaGrowthStress,
                         ::testing::Values(StressCase{2, false}, StressCase{4, false},
                                           StressCase{8, false}, StressCase{2, true},
                                           StressCase{4, true}, StressCase{8, true}),
                         case_name);

TEST_P(DmaGrowthStress, EveryByteArrivesWhilePoolsComeAndGo) {
  const StressCase c = GetParam();
  auto io_tlb = make_growing_io_tlb();
  ASSERT_TRUE(io_tlb);
  std::vector<std::unique_ptr<Device>> devices;
  for (int t = 0; t < c.threads; ++t) {
    devices.push_back(make_device(io_tlb.get(), {.name = "stress" + std::to_string(t)}));
    ASSERT_TRUE(devices.back());
  }
  Problems problems;
  std::vector<StressThread> workers;
  workers.reserve(static_cast<std::size_t>(c.threads));
  for (int t = 0; t < c.threads; ++t) {
    workers.emplace_back(*devices[static_cast<std::size_t>(t)], static_cast<unsigned>(t + 1),
                         kOpsInAll / c.threads, c.sleepers, problems);
  }
  // In steps; between two, with every thread stopped (the worker may still
  // grow and shrink), the IoTlb's invariants must hold.
  for (int step = 0; step <= kSteps; ++step) {
    std::vector<std::thread> threads;
    for (auto& w : workers) {
      threads.emplace_back([&w, step] {
        if (step < kSteps) {
          w.step(w.ops() / kSteps);
        } else {
          w.finish();
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    const Status invariants = io_tlb->check_invariants();
    EXPECT_TRUE(invariants) << "after step " << step << ": " << invariants.error().message();
  }
  EXPECT_EQ(problems.count(), 0u) << problems.first();

  IoTlbStats s = io_tlb->stats();
  for (const PoolStats& p : s.pools) {
    EXPECT_EQ(p.used, 0u);
  }
  for (const DynamicPoolStats& d : s.dynamic) {
    EXPECT_EQ(d.used, 0u) << d.name;
    EXPECT_EQ(d.kind, PoolKind::grown) << d.name;  // transient pools went with their mapping
  }
  EXPECT_EQ(s.growth.transient_pools, 0u);
  EXPECT_EQ(s.growth.transient_nslabs, 0u);
  EXPECT_EQ(s.waits.waiting_now, 0u);
  EXPECT_EQ(s.waits.timeouts, 0u);
  EXPECT_TRUE(io_tlb->pool().check_invariants());
  EXPECT_TRUE(io_tlb->check_invariants());
  for (auto& d : devices) {
    EXPECT_TRUE(d->close());
  }
  ::testing::Test::RecordProperty("grow_events", std::to_string(s.growth.grow_events));
  ::testing::Test::RecordProperty("shrunk_during_run", std::to_string(s.growth.shrunk_pools));
  ::testing::Test::RecordProperty("transient_nslabs_total",
                                  std::to_string(s.growth.transient_nslabs_total));
  ::testing::Test::RecordProperty("waits", std::to_string(s.waits.waits));

  // Idle now: every grown pool goes back.
  const auto limit = std::chrono::steady_clock::now() + 30s;
  while (io_tlb->stats().growth.grown_pools != 0 && std::chrono::steady_clock::now() < limit) {
    io_tlb->run_maintenance();
    std::this_thread::sleep_for(1ms);
  }
  s = io_tlb->stats();
  EXPECT_EQ(s.growth.grown_pools, 0u);
  EXPECT_EQ(s.growth.shrunk_pools, s.growth.grow_events);
  EXPECT_TRUE(s.dynamic.empty());
}

// A device that reaches a high and a low pool, with the high pool allowed
// to overflow into the low one: a full high pool sends its maps to the low
// pool, before any waiting or transient pool.
std::unique_ptr<IoTlb> overflowing_io_tlb() {
  IoTlbOptions options;
  options.nslabs = 128;
  options.high_nslabs = 256;
  options.force_bounce = true;
  options.high_overflows_to_low = true;
  options.transient = true;
  options.wait_timeout = 2s;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

TEST(DmaGrowthPools, AFullHighPoolOverflowsBeforeATransientPoolOrAWait) {
  auto io_tlb = overflowing_io_tlb();
  ASSERT_TRUE(io_tlb);
  auto disk = make_device(io_tlb.get(), {.name = "disk64"});
  ASSERT_TRUE(disk);
  ASSERT_EQ(disk->streaming_pools().size(), 2u);
  ASSERT_EQ(disk->streaming_pools()[0].pool, 1u);  // the high pool first
  std::vector<std::vector<std::byte>> fillers(2, std::vector<std::byte>(kSegmentSlots * kSlotSize));
  std::vector<DmaAddr> held;
  for (auto& f : fillers) {
    auto dma = map_single(*disk, f.data(), f.size(), Direction::to_device);
    ASSERT_TRUE(dma);
    ASSERT_EQ(io_tlb->pool_of(PhysAddr(dma->value())), 1);
    held.push_back(*dma);
  }
  // The high pool is full. A map that cannot sleep goes to the low pool...
  const std::vector<std::byte> a = pattern(4096, 1);
  auto low = map_single(*disk, a.data(), a.size(), Direction::to_device);
  ASSERT_TRUE(low) << low.error().message();
  EXPECT_TRUE(io_tlb->pool(0).contains(PhysAddr(low->value())));
  EXPECT_TRUE(testing::same_bytes(device_view(*low), a.data(), a.size()));
  // ...and so does one that may sleep, without waiting.
  const std::vector<std::byte> b = pattern(4096, 2);
  auto sleeper = map_single(*disk, b.data(), b.size(), Direction::to_device, Attr::may_sleep);
  ASSERT_TRUE(sleeper) << sleeper.error().message();
  EXPECT_TRUE(io_tlb->pool(0).contains(PhysAddr(sleeper->value())));
  IoTlbStats s = io_tlb->stats();
  EXPECT_EQ(s.growth.transient_nslabs_total, 0u);
  EXPECT_EQ(s.waits.waits, 0u);

  // With both full, the one that cannot sleep gets a transient pool.
  std::vector<std::byte> slot(kSlotSize);
  std::vector<DmaAddr> slots;
  while (io_tlb->pool(0).used() < io_tlb->pool(0).slot_count() && slots.size() < 128) {
    auto one = map_single(*disk, slot.data(), slot.size(), Direction::to_device);
    ASSERT_TRUE(one) << one.error().message();
    ASSERT_TRUE(io_tlb->pool(0).contains(PhysAddr(one->value())));
    slots.push_back(*one);
  }
  const std::vector<std::byte> c = pattern(4096, 3);
  auto transient = map_single(*disk, c.data(), c.size(), Direction::to_device);
  ASSERT_TRUE(transient) << transient.error().message();
  EXPECT_EQ(io_tlb->stats().growth.transient_pools, 1u);
  EXPECT_TRUE(testing::same_bytes(device_view(*transient), c.data(), c.size()));

  EXPECT_TRUE(unmap_single(*disk, *transient, c.size(), Direction::to_device));
  for (DmaAddr one : slots) {
    EXPECT_TRUE(unmap_single(*disk, one, slot.size(), Direction::to_device));
  }
  EXPECT_TRUE(unmap_single(*disk, *sleeper, b.size(), Direction::to_device));
  EXPECT_TRUE(unmap_single(*disk, *low, a.size(), Direction::to_device));
  for (std::size_t i = 0; i < held.size(); ++i) {
    EXPECT_TRUE(unmap_single(*disk, held[i], fillers[i].size(), Direction::to_device));
  }
  s = io_tlb->stats();
  EXPECT_EQ(s.growth.transient_pools, 0u);
  EXPECT_EQ(s.pools[0].used, 0u);
  EXPECT_EQ(s.pools[1].used, 0u);
  EXPECT_TRUE(disk->close());
}

TEST(DmaGrowthPools, ACoherentBufferOverflowsBeforeATransientPool) {
  auto io_tlb = overflowing_io_tlb();
  ASSERT_TRUE(io_tlb);
  // Coherent memory comes from the pools only for a device that cannot
  // reach normal memory: this one sees the two pools and nothing else.
  std::vector<DmaRange> seen;
  for (std::uint32_t i = 0; i < io_tlb->pool_count(); ++i) {
    const PoolInfo info = io_tlb->pool_info(i);
    seen.push_back({info.start.value(), info.start.value(), info.end - info.start});
  }
  auto pools_only = DmaRangeMap::create(std::move(seen));
  ASSERT_TRUE(pools_only) << pools_only.error().message();
  auto disk = make_device(io_tlb.get(), {.name = "disk64", .dma_ranges = *pools_only});
  ASSERT_TRUE(disk);
  ASSERT_EQ(disk->coherent_pools().size(), 2u);
  // Page-sized buffers fill the high pool.
  std::vector<CoherentBuffer> high;
  while (io_tlb->pool(1).used() < io_tlb->pool(1).slot_count() && high.size() < 256) {
    auto buffer = alloc_coherent(*disk, 4096);
    ASSERT_TRUE(buffer) << buffer.error().message();
    ASSERT_EQ(io_tlb->pool_of(PhysAddr::from_pointer(buffer->cpu_addr)), 1);
    high.push_back(*buffer);
  }
  auto low = alloc_coherent(*disk, 4096);
  ASSERT_TRUE(low) << low.error().message();
  EXPECT_TRUE(io_tlb->pool(0).contains(PhysAddr::from_pointer(low->cpu_addr)));
  EXPECT_EQ(io_tlb->stats().growth.transient_nslabs_total, 0u);
  EXPECT_TRUE(free_coherent(*disk, *low));
  for (const CoherentBuffer& b : high) {
    EXPECT_TRUE(free_coherent(*disk, b));
  }
  EXPECT_TRUE(disk->close());
}

}  // namespace
}  // namespace swiotlb
