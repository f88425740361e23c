// IoTlb growth: pools added when a search fails or the newest pool passes
// its watermark, the max_nslabs bound, fault injection, shrink of idle
// grown pools, transient pools, callers that wait (Attr::may_sleep) and
// queued maps, and lookup by address over many pools.
//
// The worker thread runs by itself; the tests call run_maintenance() to
// reach a known state and assert only what holds whichever of the two did
// the work. Threads are ordered by polling the statistics, never by sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "failing_backend.h"
#include "support/eventually.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {
namespace {

using namespace std::chrono_literals;
using Clock = WaitQueue::Clock;

constexpr std::uint32_t kOwner = 7;
constexpr std::uint64_t kSegment = kSegmentSlots * kSlotSize;  // 256 KiB: one whole segment

using testing::eventually;

std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> bytes(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
  }
  return bytes;
}

// Growth on, with the watermark out of the way (a pool is never more than
// 100% full) so that only a failed search asks for a pool.
IoTlbOptions growing(std::uint64_t nslabs = 1024) {
  IoTlbOptions options;
  options.nslabs = nslabs;
  options.growth = {.enabled = true, .pool_nslabs = 1024, .watermark_percent = 100};
  return options;
}

std::unique_ptr<IoTlb> make(const IoTlbOptions& options) {
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

BounceRequest request(const IoTlb& tlb, const void* orig, std::uint64_t size,
                      Direction dir = Direction::bidirectional, Attrs attrs = Attr::no_warn) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = dir;
  r.attrs = attrs;
  r.owner = kOwner;
  r.owner_name = "test";
  return r;
}

Status unmap(IoTlb& tlb, PhysAddr addr, std::uint64_t size,
             Direction dir = Direction::bidirectional) {
  return tlb.unmap(addr, 0, {size, dir, kOwner}, {});
}

// Whole-segment mappings that fill pools, and a small buffer for the maps
// that follow.
class Filler {
 public:
  explicit Filler(IoTlb& tlb) : tlb_(tlb), source_(kSegment) {}
  Filler(const Filler&) = delete;
  Filler& operator=(const Filler&) = delete;
  ~Filler() { release_all(); }

  // Maps `count` whole segments; each must succeed.
  void fill(std::uint64_t count) {
    for (std::uint64_t i = 0; i < count; ++i) {
      auto mapped = tlb_.map(request(tlb_, source_.data(), kSegment, Direction::to_device));
      ASSERT_TRUE(mapped) << mapped.error().message();
      held_.push_back(*mapped);
    }
  }
  // Fills every slot of a pool of `nslabs` slots.
  void fill_pool(std::uint64_t nslabs) { fill(nslabs / kSegmentSlots); }

  // Gives back the oldest segment still held.
  void release_one() {
    ASSERT_FALSE(held_.empty());
    EXPECT_TRUE(unmap(tlb_, held_.front(), kSegment, Direction::to_device));
    held_.erase(held_.begin());
  }
  void release_all() {
    while (!held_.empty()) {
      release_one();
    }
  }
  const std::vector<PhysAddr>& held() const { return held_; }

 private:
  IoTlb& tlb_;
  std::vector<std::byte> source_;
  std::vector<PhysAddr> held_;
};

// Captures the library's warnings for as long as it lives. The sink is set
// before and cleared after the IoTlb whose worker may log.
class LogCapture {
 public:
  LogCapture() {
    set_log_sink([this](std::string_view message) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(message);
    });
  }
  ~LogCapture() { set_log_sink(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::size_t count(std::string_view needle) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) {
      return l.find(needle) != std::string::npos;
    }));
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

std::string nslabs_line(std::uint64_t nslabs) {
  return "io_tlb_nslabs: " + std::to_string(nslabs) + "\n";
}

IoTlbOptions with_transient() {
  IoTlbOptions options;
  options.nslabs = 1024;
  options.transient = true;
  return options;
}

// ---- Growth ----------------------------------------------------------------

TEST(IoTlbGrowth, OffAFullPoolFailsAndNothingGrows) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  auto failed = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::pool_full);
  tlb->run_maintenance();
  const IoTlbStats s = tlb->stats();
  EXPECT_TRUE(s.dynamic.empty());
  EXPECT_EQ(s.growth.grow_events, 0u);
  EXPECT_EQ(s.growth.grown_pools, 0u);
  EXPECT_EQ(s.growth.transient_nslabs_total, 0u);
  EXPECT_EQ(tlb->debugfs_text().find("io_tlb_transient_nslabs"), std::string::npos);
}

TEST(IoTlbGrowth, AFailedSearchGrowsAPoolThatTheNextMapUses) {
  auto tlb = make(growing());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  EXPECT_EQ(tlb->stats().growth.grow_events, 0u);  // the watermark asks for nothing

  const std::vector<std::byte> original = pattern(5000, 1);
  std::vector<std::byte> buffer = original;
  auto failed = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::pool_full);

  tlb->run_maintenance();
  IoTlbStats s = tlb->stats();
  ASSERT_EQ(s.dynamic.size(), 1u);
  EXPECT_EQ(s.dynamic[0].kind, PoolKind::grown);
  EXPECT_EQ(s.dynamic[0].tier, 0u);
  EXPECT_EQ(s.dynamic[0].nslabs, 1024u);
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.grown_pools, 1u);
  EXPECT_EQ(s.growth.grown_nslabs, 1024u);
  EXPECT_EQ(s.growth.grow_failures, 0u);
  const std::string debugfs = tlb->debugfs_text();
  EXPECT_NE(debugfs.find(nslabs_line(2048)), std::string::npos) << debugfs;
  EXPECT_NE(debugfs.find("io_tlb_used: 1024\n"), std::string::npos) << debugfs;
  EXPECT_NE(debugfs.find("io_tlb_transient_nslabs: 0\n"), std::string::npos) << debugfs;

  auto mapped = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(tlb->contains(*mapped));
  EXPECT_EQ(tlb->pool_of(*mapped), 0);
  EXPECT_GE(mapped->value(), s.dynamic[0].start);
  EXPECT_LT(mapped->value() + buffer.size(), s.dynamic[0].end + 1);
  EXPECT_FALSE(tlb->pool().contains(*mapped));
  EXPECT_EQ(tlb->stats().dynamic[0].used, 3u);

  // Map filled the bounce buffer; the device answers; unmap copies back.
  std::byte* bounce = tlb->bounce_pointer(*mapped);
  EXPECT_EQ(std::memcmp(bounce, original.data(), original.size()), 0);
  const std::vector<std::byte> answer = pattern(buffer.size(), 2);
  std::memcpy(bounce, answer.data(), answer.size());
  ASSERT_TRUE(unmap(*tlb, *mapped, buffer.size()));
  EXPECT_EQ(buffer, answer);
  EXPECT_EQ(tlb->stats().dynamic[0].used, 0u);

  // to_device: filled at map, nothing copied back.
  auto out = tlb->map(request(*tlb, buffer.data(), buffer.size(), Direction::to_device));
  ASSERT_TRUE(out);
  EXPECT_EQ(tlb->pool_of(*out), 0);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*out), answer.data(), answer.size()), 0);
  std::memset(tlb->bounce_pointer(*out), 0x5a, buffer.size());
  ASSERT_TRUE(unmap(*tlb, *out, buffer.size(), Direction::to_device));
  EXPECT_EQ(buffer, answer);
  EXPECT_EQ(tlb->stats().growth.grow_events, 1u);
}

TEST(IoTlbGrowth, PassingTheWatermarkGrowsWithoutAFailure) {
  IoTlbOptions options = growing();
  options.growth.watermark_percent = 50;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill(4);  // 512 of 1024 slots: at the watermark, not past it
  tlb->run_maintenance();
  EXPECT_EQ(tlb->stats().growth.grow_events, 0u);
  filler.fill(1);  // 640: past it
  tlb->run_maintenance();
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.grown_pools, 1u);
  EXPECT_EQ(s.pools[0].failures, 0u);
  // The grown pool is now the newest: filling the configured pool further
  // asks for nothing more.
  filler.fill(3);
  tlb->run_maintenance();
  EXPECT_EQ(tlb->stats().growth.grow_events, 1u);
  EXPECT_EQ(tlb->stats().pools[0].failures, 0u);
}

TEST(IoTlbGrowth, StopsAtMaxNslabsAndSaysSoOnce) {
  LogCapture log;
  IoTlbOptions options = growing();
  options.growth.max_nslabs = 2048;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  std::vector<std::byte> buffer(4096);
  filler.fill_pool(1024);
  EXPECT_FALSE(tlb->map(request(*tlb, buffer.data(), buffer.size())));
  tlb->run_maintenance();
  ASSERT_EQ(tlb->stats().growth.grow_events, 1u);
  filler.fill_pool(1024);  // the grown pool too

  for (int i = 0; i < 3; ++i) {
    auto failed = tlb->map(request(*tlb, buffer.data(), buffer.size()));
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code(), Errc::pool_full);
    tlb->run_maintenance();
  }
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.grown_pools, 1u);
  EXPECT_EQ(s.growth.limit_reached, 3u);
  EXPECT_EQ(log.count("stop growing at the maximum of 2048 slots"), 1u);
  EXPECT_NE(tlb->debugfs_text().find(nslabs_line(2048)), std::string::npos);
}

TEST(IoTlbGrowth, DefaultMaxIsSixteenTimesTheConfiguredSlots) {
  LogCapture log;
  IoTlbOptions options = growing(128);
  options.growth.pool_nslabs = 1024;  // 128 + 1024: fits; 128 + 2 * 1024 > 2048: does not
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  std::vector<std::byte> buffer(4096);
  filler.fill_pool(128);
  EXPECT_FALSE(tlb->map(request(*tlb, buffer.data(), buffer.size())));
  tlb->run_maintenance();
  filler.fill_pool(1024);
  EXPECT_FALSE(tlb->map(request(*tlb, buffer.data(), buffer.size())));
  tlb->run_maintenance();
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.limit_reached, 1u);
  EXPECT_EQ(log.count("stop growing at the maximum of 2048 slots"), 1u);
}

TEST(IoTlbGrowth, AnInjectedFailureIsCountedAndGrowthWorksAfterIt) {
  LogCapture log;
  IoTlbOptions options = growing();
  auto backend = std::make_shared<testing::FailingBackend>();
  options.backend = backend;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  // 1024 slots, then 512, 256 and 128: every size down to one segment.
  backend->fail_next(4);
  std::vector<std::byte> buffer(4096);
  auto failed = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::pool_full);
  tlb->run_maintenance();
  IoTlbStats s = tlb->stats();
  EXPECT_EQ(backend->refusals(), 4u);
  EXPECT_EQ(s.growth.grow_failures, 1u);
  EXPECT_EQ(s.growth.grow_events, 0u);
  EXPECT_TRUE(s.dynamic.empty());
  EXPECT_EQ(log.count("could not grow the low pool"), 1u);

  // Still a clean pool_full, and it asks again; this time the pool comes.
  failed = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::pool_full);
  tlb->run_maintenance();
  s = tlb->stats();
  EXPECT_EQ(s.growth.grow_failures, 1u);
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.grown_smaller, 0u);
  auto mapped = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_FALSE(tlb->pool().contains(*mapped));
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size()));
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbGrowth, WithoutMemoryForAFullPoolItGrowsByHalvesDownToOneSegment) {
  IoTlbOptions options = growing();
  options.growth.pool_nareas = 4;  // 256 slots each at full size
  auto backend = std::make_shared<testing::FailingBackend>();
  backend->refuse_above(256 * kSlotSize);
  options.backend = backend;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  ASSERT_FALSE(tlb->map(request(*tlb, buffer.data(), buffer.size())));
  tlb->run_maintenance();
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(backend->refusals(), 2u);  // 1024 and 512 slots
  EXPECT_EQ(s.growth.grow_events, 1u);
  EXPECT_EQ(s.growth.grown_smaller, 1u);
  ASSERT_EQ(s.dynamic.size(), 1u);
  EXPECT_EQ(s.dynamic[0].nslabs, 256u);
  auto mapped = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size()));
  // Two areas of 128 slots: the areas are cut to whole segments.
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbGrowth, EveryPoolIsAnnouncedToTheBackendBeforeItIsUsed) {
  IoTlbOptions options = with_transient();
  options.growth = growing().growth;
  auto backend = std::make_shared<testing::FailingBackend>();
  options.backend = backend;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  EXPECT_EQ(backend->announcements(), 1u);  // the configured pool
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  auto own = tlb->map(request(*tlb, buffer.data(), buffer.size()));  // a transient pool
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_GE(backend->announcements(), 2u);  // the worker may have grown already
  tlb->run_maintenance();                   // the growth the full search asked for
  EXPECT_EQ(backend->announcements(), 3u);
  EXPECT_TRUE(unmap(*tlb, *own, buffer.size()));
}

TEST(IoTlbGrowth, GrowsForTheHighPoolWhenItIsTheOneFull) {
  IoTlbOptions options = growing();
  options.high_nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  std::vector<std::byte> source(kSegment);
  std::vector<PhysAddr> held;
  BounceRequest high = request(*tlb, source.data(), kSegment, Direction::to_device);
  high.pool = 1;
  high.pool_dma_start = DmaAddr(tlb->pool_info(1).start.value());
  for (int i = 0; i < 8; ++i) {
    auto mapped = tlb->map(high);
    ASSERT_TRUE(mapped);
    held.push_back(*mapped);
  }
  EXPECT_FALSE(tlb->map(high));
  tlb->run_maintenance();
  const IoTlbStats s = tlb->stats();
  ASSERT_EQ(s.dynamic.size(), 1u);
  EXPECT_EQ(s.dynamic[0].tier, 1u);
  auto mapped = tlb->map(high);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(tlb->pool_of(*mapped), 1);
  EXPECT_NE(tlb->debugfs_text().find("io_tlb_nslabs_high: 2048\n"), std::string::npos);
  held.push_back(*mapped);
  for (PhysAddr a : held) {
    EXPECT_TRUE(unmap(*tlb, a, kSegment, Direction::to_device));
  }
}

// ---- Shrink -------------------------------------------------------------------

IoTlbOptions shrinking() {
  IoTlbOptions options = growing();
  options.growth.shrink_after = 20ms;
  return options;
}

// Maps into a grown pool, growing one as often as it takes: a pool grown
// for a map may be given back before the map comes, if the test thread is
// descheduled for longer than shrink_after.
Result<PhysAddr> map_growing(IoTlb& tlb, const BounceRequest& r) {
  Result<PhysAddr> mapped = tlb.map(r);
  for (int i = 0; i < 100 && !mapped; ++i) {
    tlb.run_maintenance();
    mapped = tlb.map(r);
  }
  return mapped;
}

TEST(IoTlbShrink, AnIdleGrownPoolIsGivenBack) {
  auto tlb = make(shrinking());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  auto mapped = map_growing(*tlb, request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped) << mapped.error().message();
  ASSERT_EQ(tlb->stats().growth.grown_pools, 1u);
  const std::uint64_t grown_start = tlb->stats().dynamic.at(0).start;
  ASSERT_TRUE(unmap(*tlb, *mapped, buffer.size()));

  ASSERT_TRUE(eventually([&] {
    tlb->run_maintenance();
    return tlb->stats().growth.grown_pools == 0;
  }));
  const IoTlbStats s = tlb->stats();
  EXPECT_TRUE(s.dynamic.empty());
  EXPECT_GE(s.growth.grow_events, 1u);  // 1 unless a pool went before the map came
  EXPECT_EQ(s.growth.shrunk_pools, s.growth.grow_events);
  EXPECT_FALSE(tlb->contains(*mapped));
  EXPECT_FALSE(tlb->contains(PhysAddr(grown_start)));
  EXPECT_EQ(tlb->pool_of(*mapped), -1);
  EXPECT_NE(tlb->debugfs_text().find(nslabs_line(1024)), std::string::npos);
  // The configured pool is never given back.
  EXPECT_TRUE(tlb->contains(tlb->start()));

  // It grows again when it must.
  auto again = map_growing(*tlb, request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_GT(tlb->stats().growth.grow_events, s.growth.grow_events);
  EXPECT_TRUE(unmap(*tlb, *again, buffer.size()));
}

TEST(IoTlbShrink, APoolWithALiveMappingIsKept) {
  auto tlb = make(shrinking());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer = pattern(4096, 3);
  auto mapped = map_growing(*tlb, request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped);
  ASSERT_FALSE(tlb->pool().contains(*mapped));
  const std::uint64_t shrunk_before = tlb->stats().growth.shrunk_pools;

  // Many times shrink_after, with the worker and run_maintenance() looking.
  const auto until = Clock::now() + 300ms;
  while (Clock::now() < until) {
    tlb->run_maintenance();
    std::this_thread::sleep_for(1ms);
  }
  IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.shrunk_pools, shrunk_before);
  ASSERT_EQ(s.dynamic.size(), 1u);
  EXPECT_EQ(s.dynamic[0].used, 2u);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*mapped), buffer.data(), buffer.size()), 0);
  ASSERT_TRUE(tlb->sync_for_cpu(*mapped, buffer.size(), Direction::bidirectional, kOwner));

  // Once the mapping is gone, so is the pool.
  ASSERT_TRUE(unmap(*tlb, *mapped, buffer.size()));
  ASSERT_TRUE(eventually([&] {
    tlb->run_maintenance();
    return tlb->stats().growth.shrunk_pools == shrunk_before + 1;
  }));
  EXPECT_TRUE(tlb->stats().dynamic.empty());
}

TEST(IoTlbShrink, NeverWithoutShrinkAfter) {
  auto tlb = make(growing());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  EXPECT_FALSE(tlb->map(request(*tlb, buffer.data(), buffer.size())));
  tlb->run_maintenance();
  const auto until = Clock::now() + 100ms;
  while (Clock::now() < until) {
    tlb->run_maintenance();
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(tlb->stats().growth.grown_pools, 1u);
  EXPECT_EQ(tlb->stats().growth.shrunk_pools, 0u);
}

// ---- Transient pools ----------------------------------------------------------

TEST(IoTlbTransient, AFullPoolGivesANonSleepingCallerAPoolOfItsOwn) {
  auto tlb = make(with_transient());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);

  const std::vector<std::byte> original = pattern(5000, 4);
  std::vector<std::byte> buffer = original;
  auto mapped = tlb->map(request(*tlb, buffer.data(), buffer.size()));
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(tlb->contains(*mapped));
  EXPECT_TRUE(tlb->contains(PhysAddr(mapped->value() + buffer.size() - 1)));
  EXPECT_EQ(tlb->pool_of(*mapped), 0);
  EXPECT_FALSE(tlb->pool().contains(*mapped));

  IoTlbStats s = tlb->stats();
  ASSERT_EQ(s.dynamic.size(), 1u);
  EXPECT_EQ(s.dynamic[0].kind, PoolKind::transient);
  EXPECT_EQ(s.dynamic[0].owner, kOwner);
  EXPECT_EQ(s.dynamic[0].tier, 0u);
  EXPECT_EQ(s.dynamic[0].used, 3u);
  EXPECT_GE(s.dynamic[0].nslabs * kSlotSize, buffer.size());
  EXPECT_EQ(s.growth.transient_pools, 1u);
  EXPECT_GT(s.growth.transient_nslabs, 0u);
  EXPECT_EQ(s.growth.transient_nslabs, s.dynamic[0].nslabs);
  EXPECT_EQ(s.growth.transient_nslabs_total, s.growth.transient_nslabs);
  EXPECT_EQ(s.growth.grown_pools, 0u);
  const std::uint64_t nslabs = s.growth.transient_nslabs;
  EXPECT_NE(tlb->debugfs_text().find("io_tlb_transient_nslabs: " + std::to_string(nslabs)),
            std::string::npos);
  EXPECT_EQ(tlb->count_owned(kOwner), 9u);  // eight fillers and this one

  // Filled at map; the device answers and syncs work on it.
  std::byte* bounce = tlb->bounce_pointer(*mapped);
  EXPECT_EQ(std::memcmp(bounce, original.data(), original.size()), 0);
  const std::vector<std::byte> answer = pattern(buffer.size(), 5);
  std::memcpy(bounce, answer.data(), answer.size());
  ASSERT_TRUE(
      tlb->sync_for_cpu(PhysAddr(mapped->value() + 100), 1000, Direction::bidirectional, kOwner));
  EXPECT_EQ(std::memcmp(buffer.data() + 100, answer.data() + 100, 1000), 0);
  EXPECT_EQ(buffer[0], original[0]);
  buffer[10] = std::byte{0xee};
  ASSERT_TRUE(tlb->sync_for_device(*mapped, 100, Direction::bidirectional, kOwner));
  EXPECT_EQ(bounce[10], std::byte{0xee});
  EXPECT_EQ(bounce[100], answer[100]);  // only the range synced
  EXPECT_FALSE(tlb->sync_for_cpu(*mapped, buffer.size() + 1, Direction::bidirectional, kOwner));
  std::memcpy(bounce, answer.data(), answer.size());  // the device's last word

  ASSERT_TRUE(unmap(*tlb, *mapped, buffer.size()));
  EXPECT_EQ(buffer, answer);
  s = tlb->stats();
  EXPECT_TRUE(s.dynamic.empty());
  EXPECT_EQ(s.growth.transient_pools, 0u);
  EXPECT_EQ(s.growth.transient_nslabs, 0u);
  EXPECT_EQ(s.growth.transient_nslabs_total, nslabs);
  EXPECT_FALSE(tlb->contains(*mapped));
  EXPECT_EQ(tlb->pool_of(*mapped), -1);
  EXPECT_FALSE(unmap(*tlb, *mapped, buffer.size()));  // a second unmap finds nothing
  tlb->run_maintenance();                             // frees it after the grace period
  EXPECT_EQ(tlb->count_owned(kOwner), 8u);
}

TEST(IoTlbTransient, KeepsTheOffsetTheDeviceNeeds) {
  auto tlb = make(with_transient());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> storage(16384);
  std::byte* orig = storage.data() + 0x123;
  BounceRequest r = request(*tlb, orig, 6000, Direction::to_device);
  r.min_align_mask = 0xfff;
  auto mapped = tlb->map(r);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(mapped->value() & 0xfff, PhysAddr::from_pointer(orig).value() & 0xfff);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*mapped), orig, 6000), 0);
  EXPECT_TRUE(tlb->contains(PhysAddr(mapped->value() + 5999)));
  EXPECT_TRUE(tlb->unmap(*mapped, 0xfff, {6000, Direction::to_device, kOwner}, {}));
  EXPECT_EQ(tlb->stats().growth.transient_nslabs, 0u);
}

// Room for an alignment stops at a segment: the 6.1 search, which never
// tests the address of the pool's first slot, maps a 2^35 - 1 mask in a
// pool of a few hundred KiB, not in one of 32 GiB.
TEST(IoTlbTransient, AHugeAlignmentMaskGetsRoomForASegmentAtMost) {
  IoTlbOptions options = with_transient();
  options.policy = "linux-6.1";
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer = pattern(4096, 3);
  BounceRequest r = request(*tlb, buffer.data(), buffer.size(), Direction::to_device);
  r.alloc_align_mask = (std::uint64_t{1} << 35) - 1;
  auto mapped = tlb->map(r);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*mapped), buffer.data(), buffer.size()), 0);
  const std::uint64_t nslabs = tlb->stats().growth.transient_nslabs;
  EXPECT_GT(nslabs, 0u);
  EXPECT_LE(nslabs, 2 * kSegmentSlots);
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size(), Direction::to_device));
  EXPECT_EQ(tlb->stats().growth.transient_nslabs, 0u);
}

TEST(IoTlbTransient, TransientMaxNslabsRefusesBeyondIt) {
  IoTlbOptions options = with_transient();
  options.transient_max_nslabs = 4;  // one mapping of up to 6 KiB
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> a(4096);
  std::vector<std::byte> b(4096);
  auto first = tlb->map(request(*tlb, a.data(), a.size()));
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(tlb->stats().growth.transient_nslabs, 4u);
  auto second = tlb->map(request(*tlb, b.data(), b.size()));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::pool_full);
  IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.transient_failures, 1u);
  EXPECT_EQ(s.growth.transient_pools, 1u);
  ASSERT_TRUE(unmap(*tlb, *first, a.size()));
  // Room again once the first is gone.
  auto third = tlb->map(request(*tlb, b.data(), b.size()));
  ASSERT_TRUE(third) << third.error().message();
  EXPECT_TRUE(unmap(*tlb, *third, b.size()));
  s = tlb->stats();
  EXPECT_EQ(s.growth.transient_nslabs, 0u);
  EXPECT_EQ(s.growth.transient_nslabs_total, 8u);
}

TEST(IoTlbTransient, TransientMaxNslabsHoldsWhenManyAskAtOnce) {
  IoTlbOptions options = with_transient();
  options.transient_max_nslabs = 4;  // room for one transient pool of 4 slots
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  constexpr int kThreads = 8;
  std::vector<std::vector<std::byte>> buffers(kThreads, std::vector<std::byte>(4096));
  std::vector<std::optional<Result<PhysAddr>>> results(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto i = static_cast<std::size_t>(t);
      ready.fetch_add(1);
      while (ready.load() < kThreads) {
        std::this_thread::yield();
      }
      results[i].emplace(tlb->map(request(*tlb, buffers[i].data(), buffers[i].size())));
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  int mapped = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (*results[i]) {
      ++mapped;
      EXPECT_TRUE(unmap(*tlb, **results[i], buffers[i].size()));
    } else {
      EXPECT_EQ(results[i]->error().code(), Errc::pool_full);
    }
  }
  EXPECT_LE(mapped, 1);
  EXPECT_GE(mapped, 1);  // the bound refuses only those beyond it
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.transient_nslabs, 0u);
  EXPECT_EQ(s.growth.transient_nslabs_total, 4u * static_cast<std::uint64_t>(mapped));
  EXPECT_EQ(s.growth.transient_failures, static_cast<std::uint64_t>(kThreads - mapped));
}

TEST(IoTlbTransient, ARestrictedPoolWithGrowthOrTransientIsRefused) {
  IoTlbOptions options;
  options.nslabs = 1024;
  options.restricted = true;
  options.transient = true;
  EXPECT_FALSE(IoTlb::create(options));
  options.transient = false;
  options.growth.enabled = true;
  auto refused = IoTlb::create(options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::invalid_argument);
  options.growth.enabled = false;
  EXPECT_TRUE(IoTlb::create(options));
}

TEST(IoTlbTransient, AnInjectedFailureGivesACleanPoolFullAndTheWarning) {
  LogCapture log;
  IoTlbOptions options = with_transient();
  auto backend = std::make_shared<testing::FailingBackend>();
  options.backend = backend;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  backend->fail_next(1);
  std::vector<std::byte> buffer(4096);
  auto failed = tlb->map(request(*tlb, buffer.data(), buffer.size(), Direction::to_device, {}));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::pool_full);
  EXPECT_EQ(log.count("swiotlb buffer is full"), 1u);
  IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.transient_failures, 1u);
  EXPECT_EQ(s.growth.transient_pools, 0u);
  EXPECT_EQ(s.growth.transient_nslabs_total, 0u);
  EXPECT_TRUE(s.dynamic.empty());
  // The injection is used up: the next one gets its pool.
  auto mapped = tlb->map(request(*tlb, buffer.data(), buffer.size(), Direction::to_device, {}));
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size(), Direction::to_device));
}

TEST(IoTlbTransient, ACoherentAllocationMayGetOneToo) {
  auto tlb = make(with_transient());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  auto buffer =
      tlb->alloc({.size = 3000, .pool_dma_start = DmaAddr(tlb->start().value()), .owner = kOwner});
  ASSERT_TRUE(buffer) << buffer.error().message();
  EXPECT_EQ(tlb->stats().growth.transient_pools, 1u);
  EXPECT_EQ(tlb->bounce_pointer(*buffer)[2999], std::byte{0});
  EXPECT_TRUE(tlb->free(*buffer, 3000, kOwner));
  EXPECT_EQ(tlb->stats().growth.transient_pools, 0u);
  EXPECT_EQ(tlb->stats().coherent_allocations, 0u);
}

// ---- Waiting (Attr::may_sleep) -------------------------------------------------

// A map that may sleep, on its own thread.
class SleepingMap {
 public:
  SleepingMap(IoTlb& tlb, const void* orig, std::uint64_t size, Clock::time_point deadline)
      : thread_([this, &tlb, orig, size, deadline] {
          BounceRequest r = request(tlb, orig, size, Direction::to_device, Attr::may_sleep);
          r.deadline = deadline;
          Result<PhysAddr> mapped = tlb.map(r);
          std::lock_guard lock(mu_);
          result_.emplace(std::move(mapped));
        }) {}
  ~SleepingMap() { join(); }
  SleepingMap(const SleepingMap&) = delete;
  SleepingMap& operator=(const SleepingMap&) = delete;

  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  const Result<PhysAddr>& result() {
    join();
    return *result_;
  }
  bool finished() const {
    std::lock_guard lock(mu_);
    return result_.has_value();
  }

 private:
  mutable std::mutex mu_;
  std::optional<Result<PhysAddr>> result_;
  std::thread thread_;
};

// Starts a sleeping map and returns once it waits (the queue then holds
// `waiting` entries).
std::unique_ptr<SleepingMap> start_waiting(IoTlb& tlb, const void* orig, std::uint64_t size,
                                           std::uint64_t waiting,
                                           Clock::time_point deadline = Clock::now() + 30s) {
  auto m = std::make_unique<SleepingMap>(tlb, orig, size, deadline);
  EXPECT_TRUE(eventually([&] { return tlb.stats().waits.waiting_now == waiting; }));
  return m;
}

TEST(IoTlbWait, AWaiterGetsTheRoomAnUnmapMakes) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  const std::vector<std::byte> buffer = pattern(8192, 6);
  auto waiter = start_waiting(*tlb, buffer.data(), buffer.size(), 1);
  EXPECT_FALSE(waiter->finished());  // no room yet: nothing can serve it
  filler.release_one();
  const Result<PhysAddr>& mapped = waiter->result();
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*mapped), buffer.data(), buffer.size()), 0);
  const WaitStats w = tlb->stats().waits;
  EXPECT_EQ(w.waits, 1u);
  EXPECT_EQ(w.timeouts, 0u);
  EXPECT_EQ(w.waiting_now, 0u);
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size(), Direction::to_device));
}

TEST(IoTlbWait, WaitersAreServedInArrivalOrder) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  // The first wants a whole segment, the second one slot: a segment that
  // comes free goes whole to the first, never a slot of it to the second.
  std::vector<std::byte> big(kSegment);
  std::vector<std::byte> small(512);
  auto first = start_waiting(*tlb, big.data(), big.size(), 1);
  auto second = start_waiting(*tlb, small.data(), small.size(), 2);

  // A segment comes free: the head (first) takes it...
  filler.release_one();
  const Result<PhysAddr>& got_first = first->result();
  ASSERT_TRUE(got_first) << got_first.error().message();
  // ...and the second, now the head, still finds no room.
  EXPECT_EQ(tlb->stats().waits.waiting_now, 1u);
  EXPECT_FALSE(second->finished());
  filler.release_one();
  const Result<PhysAddr>& got_second = second->result();
  ASSERT_TRUE(got_second) << got_second.error().message();
  EXPECT_TRUE(unmap(*tlb, *got_first, big.size(), Direction::to_device));
  EXPECT_TRUE(unmap(*tlb, *got_second, small.size(), Direction::to_device));
  EXPECT_EQ(tlb->stats().waits.timeouts, 0u);
}

// Maps single slots from `source` until a segment's worth is held (with
// seven whole segments held as well, a 1024-slot pool is then full).
std::vector<PhysAddr> map_a_segment_of_slots(IoTlb& tlb, const std::vector<std::byte>& source) {
  std::vector<PhysAddr> slots;
  for (std::uint64_t i = 0; i < kSegmentSlots; ++i) {
    auto mapped = tlb.map(request(tlb, source.data(), kSlotSize, Direction::to_device));
    EXPECT_TRUE(mapped) << mapped.error().message();
    if (mapped) {
      slots.push_back(*mapped);
    }
  }
  return slots;
}

TEST(IoTlbWait, ALargeHeadKeepsASmallerWaiterBehindIt) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  // Seven segments and a segment of single-slot mappings fill the pool.
  Filler filler(*tlb);
  filler.fill(7);
  std::vector<std::byte> slot_source(kSlotSize);
  std::vector<PhysAddr> slots = map_a_segment_of_slots(*tlb, slot_source);
  ASSERT_EQ(slots.size(), kSegmentSlots);
  std::vector<std::byte> big(kSegment);
  std::vector<std::byte> small(512);
  auto first = start_waiting(*tlb, big.data(), big.size(), 1);
  auto second = start_waiting(*tlb, small.data(), small.size(), 2);
  // One slot free: room for the second, not for the head, so the second
  // leaves it alone. A caller that cannot sleep does not queue: it finds
  // the slot still free.
  ASSERT_TRUE(unmap(*tlb, slots.back(), kSlotSize, Direction::to_device));
  auto probe = tlb->map(request(*tlb, slot_source.data(), kSlotSize, Direction::to_device));
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe, slots.back());
  EXPECT_FALSE(second->finished());
  slots.back() = *probe;
  // A whole segment free: the head gets all of it...
  filler.release_one();
  const Result<PhysAddr>& got_first = first->result();
  ASSERT_TRUE(got_first);
  EXPECT_FALSE(second->finished());
  // ...and a slot free serves the second.
  ASSERT_TRUE(unmap(*tlb, slots.back(), kSlotSize, Direction::to_device));
  slots.pop_back();
  const Result<PhysAddr>& got_second = second->result();
  ASSERT_TRUE(got_second);
  EXPECT_TRUE(unmap(*tlb, *got_first, big.size(), Direction::to_device));
  EXPECT_TRUE(unmap(*tlb, *got_second, small.size(), Direction::to_device));
  for (PhysAddr a : slots) {
    EXPECT_TRUE(unmap(*tlb, a, kSlotSize, Direction::to_device));
  }
}

// Under the `fast` policy a freed run waits in the run cache, where a map
// may take it without a search (IoTlb's hit path). A caller that may sleep
// still queues behind the waiters there before it, as it does when the run
// went back to the pool; a caller that cannot sleep takes the run at once.
TEST(IoTlbWait, ACallerThatMaySleepQueuesEvenWhenTheRunCacheHoldsARun) {
  IoTlbOptions options;
  options.nslabs = 1024;
  options.policy = "fast";
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill(7);
  std::vector<std::byte> slot_source(kSlotSize);
  std::vector<PhysAddr> slots = map_a_segment_of_slots(*tlb, slot_source);
  ASSERT_EQ(slots.size(), kSegmentSlots);
  std::vector<std::byte> big(kSegment);
  auto head = start_waiting(*tlb, big.data(), big.size(), 1);
  ASSERT_TRUE(unmap(*tlb, slots.back(), kSlotSize, Direction::to_device));
  ASSERT_EQ(tlb->pool().stats().cached, 1u);  // the freed slot sits in the run cache
  auto sleeper = start_waiting(*tlb, slot_source.data(), kSlotSize, 2);
  EXPECT_FALSE(sleeper->finished());
  EXPECT_EQ(tlb->pool().stats().cached, 1u);
  auto probe = tlb->map(request(*tlb, slot_source.data(), kSlotSize, Direction::to_device));
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe, slots.back());
  EXPECT_EQ(tlb->pool().stats().cache_hits, 1u);
  slots.back() = *probe;
  // A segment free serves the head, then a slot free serves the sleeper.
  filler.release_one();
  ASSERT_TRUE(head->result());
  ASSERT_TRUE(unmap(*tlb, slots.back(), kSlotSize, Direction::to_device));
  slots.pop_back();
  const Result<PhysAddr>& got = sleeper->result();
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_TRUE(unmap(*tlb, *head->result(), big.size(), Direction::to_device));
  EXPECT_TRUE(unmap(*tlb, *got, kSlotSize, Direction::to_device));
  for (PhysAddr a : slots) {
    EXPECT_TRUE(unmap(*tlb, a, kSlotSize, Direction::to_device));
  }
  EXPECT_TRUE(tlb->check_invariants());
}

TEST(IoTlbWait, ADeadlineThatPassesGivesTimedOut) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  BounceRequest r =
      request(*tlb, buffer.data(), buffer.size(), Direction::to_device, Attr::may_sleep);
  r.deadline = Clock::now() - 1s;  // already past
  auto past = tlb->map(r);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code(), Errc::timed_out);
  EXPECT_NE(past.error().message().find("test"), std::string::npos);
  r.deadline = Clock::now() + 20ms;
  auto shortly = tlb->map(r);
  ASSERT_FALSE(shortly);
  EXPECT_EQ(shortly.error().code(), Errc::timed_out);
  const WaitStats w = tlb->stats().waits;
  EXPECT_EQ(w.waits, 2u);
  EXPECT_EQ(w.timeouts, 2u);
  EXPECT_EQ(w.waiting_now, 0u);
}

TEST(IoTlbWait, TheDefaultDeadlineIsWaitTimeout) {
  IoTlbOptions options;
  options.nslabs = 1024;
  options.wait_timeout = 10ms;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  auto failed =
      tlb->map(request(*tlb, buffer.data(), buffer.size(), Direction::to_device, Attr::may_sleep));
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::timed_out);
  EXPECT_EQ(tlb->stats().waits.timeouts, 1u);
}

TEST(IoTlbWait, ASleepingCallerNeverGetsATransientPool) {
  auto tlb = make(with_transient());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  BounceRequest r =
      request(*tlb, buffer.data(), buffer.size(), Direction::to_device, Attr::may_sleep);
  r.deadline = Clock::now() + 20ms;
  auto failed = tlb->map(r);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), Errc::timed_out);
  const IoTlbStats s = tlb->stats();
  EXPECT_EQ(s.growth.transient_nslabs_total, 0u);
  EXPECT_EQ(s.growth.transient_failures, 0u);
  EXPECT_TRUE(s.dynamic.empty());
}

TEST(IoTlbWait, GrowthWakesAWaiter) {
  auto tlb = make(growing());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  const std::vector<std::byte> buffer = pattern(8192, 8);
  BounceRequest r =
      request(*tlb, buffer.data(), buffer.size(), Direction::to_device, Attr::may_sleep);
  r.deadline = Clock::now() + 30s;
  // The failed search asks the worker for a pool; the pool it adds wakes us.
  auto mapped = tlb->map(r);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_FALSE(tlb->pool().contains(*mapped));
  EXPECT_EQ(tlb->pool_of(*mapped), 0);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(*mapped), buffer.data(), buffer.size()), 0);
  const IoTlbStats s = tlb->stats();
  // A retry that fails while the first pool is being added asks again, so
  // a second pool may come too; at least one must have.
  EXPECT_GE(s.growth.grow_events, 1u);
  EXPECT_EQ(s.waits.timeouts, 0u);
  EXPECT_TRUE(unmap(*tlb, *mapped, buffer.size(), Direction::to_device));
}

// ---- Queued maps -------------------------------------------------------------

// What a queued map's completion got, and on which thread.
struct Completion {
  std::mutex mu;
  std::optional<Result<PhysAddr>> result;
  std::thread::id thread;

  std::function<void(Result<PhysAddr>)> callback() {
    return [this](Result<PhysAddr> r) {
      std::lock_guard lock(mu);
      EXPECT_FALSE(result.has_value()) << "a completion ran twice";
      result.emplace(std::move(r));
      thread = std::this_thread::get_id();
    };
  }
  bool ran() {
    std::lock_guard lock(mu);
    return result.has_value();
  }
};

TEST(IoTlbQueued, WithRoomTheCompletionRunsAtOnceOnTheCaller) {
  auto tlb = make(growing());
  ASSERT_TRUE(tlb);
  std::vector<std::byte> buffer = pattern(4096, 9);
  Completion c;
  EXPECT_EQ(tlb->map_queued(request(*tlb, buffer.data(), buffer.size()), c.callback()),
            QueuedMap::done);
  ASSERT_TRUE(c.ran());
  EXPECT_EQ(c.thread, std::this_thread::get_id());
  ASSERT_TRUE(*c.result);
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(**c.result), buffer.data(), buffer.size()), 0);
  EXPECT_TRUE(unmap(*tlb, **c.result, buffer.size()));
  EXPECT_EQ(tlb->stats().waits.queued, 0u);

  // A request no pool can serve is answered at once too.
  Completion bad;
  BounceRequest r = request(*tlb, buffer.data(), buffer.size());
  r.pool = 5;
  EXPECT_EQ(tlb->map_queued(r, bad.callback()), QueuedMap::done);
  ASSERT_TRUE(bad.ran());
  ASSERT_FALSE(*bad.result);
  EXPECT_EQ(bad.result->error().code(), Errc::invalid_argument);
}

TEST(IoTlbQueued, OnAFullPoolTheCompletionRunsOnTheWorkerAfterAnUnmap) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  const std::vector<std::byte> buffer = pattern(4096, 10);
  Completion c;
  BounceRequest r = request(*tlb, buffer.data(), buffer.size(), Direction::to_device);
  r.deadline = Clock::now() + 30s;
  std::string name = "queued-device";
  r.owner_name = name;
  EXPECT_EQ(tlb->map_queued(r, c.callback()), QueuedMap::queued);
  name = "overwritten";   // the request keeps its own copy of the name
  EXPECT_FALSE(c.ran());  // no room: nothing can complete it
  EXPECT_EQ(tlb->stats().waits.waiting_now, 1u);
  EXPECT_EQ(tlb->stats().waits.queued, 1u);

  filler.release_one();
  ASSERT_TRUE(eventually([&] { return c.ran(); }));
  EXPECT_NE(c.thread, std::this_thread::get_id());
  ASSERT_TRUE(*c.result) << c.result->error().message();
  EXPECT_EQ(std::memcmp(tlb->bounce_pointer(**c.result), buffer.data(), buffer.size()), 0);
  EXPECT_EQ(tlb->stats().waits.waiting_now, 0u);
  EXPECT_EQ(tlb->stats().waits.timeouts, 0u);
  EXPECT_TRUE(unmap(*tlb, **c.result, buffer.size(), Direction::to_device));
}

TEST(IoTlbQueued, TheCompletionGetsTimedOutAfterTheDeadline) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  Completion c;
  BounceRequest r = request(*tlb, buffer.data(), buffer.size(), Direction::to_device);
  r.deadline = Clock::now() + 20ms;
  std::string name = "late-device";
  r.owner_name = name;
  EXPECT_EQ(tlb->map_queued(r, c.callback()), QueuedMap::queued);
  name.assign(name.size(), 'x');
  ASSERT_TRUE(eventually([&] { return c.ran(); }));
  EXPECT_NE(c.thread, std::this_thread::get_id());
  ASSERT_FALSE(*c.result);
  EXPECT_EQ(c.result->error().code(), Errc::timed_out);
  EXPECT_NE(c.result->error().message().find("late-device"), std::string::npos);
  const WaitStats w = tlb->stats().waits;
  EXPECT_EQ(w.timeouts, 1u);
  EXPECT_EQ(w.queued, 1u);
  EXPECT_EQ(w.waiting_now, 0u);
}

TEST(IoTlbQueued, GrowthServesAQueuedRequest) {
  auto tlb = make(growing());
  ASSERT_TRUE(tlb);
  Filler filler(*tlb);
  filler.fill_pool(1024);
  std::vector<std::byte> buffer(4096);
  Completion c;
  BounceRequest r = request(*tlb, buffer.data(), buffer.size());
  r.deadline = Clock::now() + 30s;
  EXPECT_EQ(tlb->map_queued(r, c.callback()), QueuedMap::queued);
  ASSERT_TRUE(eventually([&] { return c.ran(); }));
  ASSERT_TRUE(*c.result) << c.result->error().message();
  EXPECT_FALSE(tlb->pool().contains(**c.result));
  EXPECT_TRUE(unmap(*tlb, **c.result, buffer.size()));
}

TEST(IoTlbQueued, DestroyingTheIoTlbEndsAQueuedRequestWithAnError) {
  IoTlbOptions options;
  options.nslabs = 1024;
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  // Fill the pool for good: these mappings go with the IoTlb.
  std::vector<std::byte> source(kSegment);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(tlb->map(request(*tlb, source.data(), kSegment, Direction::to_device)));
  }
  std::vector<std::byte> buffer(4096);
  Completion c;
  BounceRequest r = request(*tlb, buffer.data(), buffer.size());
  r.deadline = Clock::now() + 30s;
  EXPECT_EQ(tlb->map_queued(r, c.callback()), QueuedMap::queued);
  EXPECT_FALSE(c.ran());
  tlb.reset();
  ASSERT_TRUE(c.ran());
  EXPECT_EQ(c.thread, std::this_thread::get_id());
  ASSERT_FALSE(*c.result);
  EXPECT_EQ(c.result->error().code(), Errc::timed_out);
}

// ---- Lookup by address --------------------------------------------------------

TEST(IoTlbLookup, FindsEveryByteOfSixteenPoolsAndNothingBeyond) {
  LogCapture log;
  IoTlbOptions options = growing(128);
  options.growth.pool_nslabs = 128;  // 16 pools of 128 slots reach the default max
  auto tlb = make(options);
  ASSERT_TRUE(tlb);
  std::vector<std::byte> source(kSegment);
  std::vector<PhysAddr> held;
  for (int i = 0; i < 64 && tlb->stats().growth.grown_pools < 15; ++i) {
    auto mapped = tlb->map(request(*tlb, source.data(), kSegment, Direction::to_device));
    if (mapped) {
      held.push_back(*mapped);
    } else {
      tlb->run_maintenance();
    }
  }
  const IoTlbStats s = tlb->stats();
  ASSERT_EQ(s.growth.grown_pools, 15u);
  struct Range {
    std::uint64_t start;
    std::uint64_t end;
  };
  std::vector<Range> ranges{{tlb->start().value(), tlb->end().value()}};
  for (const DynamicPoolStats& d : s.dynamic) {
    ranges.push_back({d.start, d.end});
  }
  ASSERT_EQ(ranges.size(), 16u);
  auto inside_any = [&](std::uint64_t addr) {
    return std::any_of(ranges.begin(), ranges.end(),
                       [&](const Range& r) { return addr >= r.start && addr < r.end; });
  };
  for (const Range& r : ranges) {
    EXPECT_TRUE(tlb->contains(PhysAddr(r.start)));
    EXPECT_TRUE(tlb->contains(PhysAddr(r.end - 1)));
    EXPECT_TRUE(tlb->contains(PhysAddr(r.start + (r.end - r.start) / 2)));
    EXPECT_EQ(tlb->pool_of(PhysAddr(r.start)), 0);
    EXPECT_EQ(tlb->pool_of(PhysAddr(r.end - 1)), 0);
    // Just past either end: in no pool, unless a neighbour starts there.
    EXPECT_EQ(tlb->contains(PhysAddr(r.end)), inside_any(r.end));
    EXPECT_EQ(tlb->contains(PhysAddr(r.start - 1)), inside_any(r.start - 1));
  }
  EXPECT_FALSE(tlb->contains(PhysAddr(0)));
  EXPECT_EQ(tlb->pool_of(PhysAddr(0)), -1);
  // The newest pool takes one more segment; the next growth would pass 16
  // times the configured slots.
  auto last = tlb->map(request(*tlb, source.data(), kSegment, Direction::to_device));
  ASSERT_TRUE(last);
  held.push_back(*last);
  EXPECT_FALSE(tlb->map(request(*tlb, source.data(), kSegment, Direction::to_device)));
  tlb->run_maintenance();
  EXPECT_EQ(tlb->stats().growth.limit_reached, 1u);
  EXPECT_EQ(log.count("stop growing at the maximum of 2048 slots"), 1u);
  for (PhysAddr a : held) {
    EXPECT_TRUE(unmap(*tlb, a, kSegment, Direction::to_device));
  }
  EXPECT_EQ(tlb->count_owned(kOwner), 0u);
}

}  // namespace
}  // namespace swiotlb
