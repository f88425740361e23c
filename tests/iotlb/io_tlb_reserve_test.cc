// The reserve for callers that cannot sleep: taken when every pool is full,
// before a transient pool; never by a caller that may sleep; refused, or a
// transient pool, once it is full too; visible in the statistics and JSON.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kOwner = 9;
constexpr std::uint64_t kHalfSegment = 64 * kSlotSize;  // 128 KiB

IoTlbOptions with_reserve(std::uint64_t reserve_nslabs = kSegmentSlots) {
  IoTlbOptions options;
  options.nslabs = kSegmentSlots;  // one segment: two half-segment maps fill it
  options.reserve_nslabs = reserve_nslabs;
  return options;
}

BounceRequest request(const IoTlb& tlb, const std::vector<std::byte>& data, Attrs attrs = {}) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(data.data());
  r.size = data.size();
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = Direction::to_device;
  r.owner = kOwner;
  r.attrs = attrs | Attr::no_warn;
  return r;
}

Status unmap(IoTlb& tlb, PhysAddr addr, std::uint64_t size) {
  return tlb.unmap(addr, 0, {size, Direction::to_device, kOwner}, {});
}

// Fills the default pool; returns its mappings.
std::vector<PhysAddr> fill(IoTlb& tlb, const std::vector<std::byte>& half) {
  std::vector<PhysAddr> held;
  for (int i = 0; i < 2; ++i) {
    auto mapped = tlb.map(request(tlb, half));
    EXPECT_TRUE(mapped) << mapped.error().message();
    if (mapped) {
      held.push_back(*mapped);
    }
  }
  return held;
}

TEST(Reserve, ACallerThatCannotSleepGetsRoomWhenThePoolsAreFull) {
  auto made = IoTlb::create(with_reserve());
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  const std::vector<std::byte> half(kHalfSegment, std::byte{1});
  const std::vector<PhysAddr> held = fill(tlb, half);
  ASSERT_EQ(held.size(), 2u);

  std::vector<std::byte> data(4096, std::byte{0x77});
  auto kept = tlb.map(request(tlb, data));
  ASSERT_TRUE(kept) << kept.error().message();
  EXPECT_FALSE(*kept >= tlb.start() && *kept < tlb.end());  // not in the default pool
  EXPECT_EQ(tlb.pool_of(*kept), 0);
  EXPECT_EQ(*tlb.bounce_pointer(*kept), std::byte{0x77});
  EXPECT_EQ(tlb.used(0), kSegmentSlots + 2);

  const IoTlbStats stats = tlb.stats();
  EXPECT_EQ(stats.reserve.nslabs, kSegmentSlots);
  EXPECT_EQ(stats.reserve.used, 2u);
  EXPECT_EQ(stats.reserve.maps, 1u);
  EXPECT_EQ(stats.reserve.exhausted, 0u);
  EXPECT_TRUE(stats.dynamic.empty());  // the reserve is not a grown or transient pool
  const nlohmann::json json = io_tlb_json(tlb);
  EXPECT_EQ(json["reserve"]["nslabs"], kSegmentSlots);
  EXPECT_EQ(json["reserve"]["used"], 2u);
  EXPECT_EQ(json["reserve"]["maps"], 1u);
  EXPECT_TRUE(tlb.check_invariants());

  // Room in the default pool again: maps go there, not to the reserve.
  ASSERT_TRUE(unmap(tlb, held[0], half.size()));
  auto back = tlb.map(request(tlb, data));
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back >= tlb.start() && *back < tlb.end());
  EXPECT_EQ(tlb.stats().reserve.maps, 1u);
  ASSERT_TRUE(unmap(tlb, *kept, data.size()));
  ASSERT_TRUE(unmap(tlb, *back, data.size()));
  ASSERT_TRUE(unmap(tlb, held[1], half.size()));
  EXPECT_EQ(tlb.used(0), 0u);
  EXPECT_EQ(tlb.stats().reserve.used, 0u);
  EXPECT_TRUE(tlb.check_invariants());
}

TEST(Reserve, WhenItIsFullTooTheMapIsRefused) {
  auto made = IoTlb::create(with_reserve());
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  const std::vector<std::byte> half(kHalfSegment);
  const std::vector<PhysAddr> held = fill(tlb, half);
  const std::vector<PhysAddr> in_reserve = fill(tlb, half);  // the reserve takes both
  ASSERT_EQ(in_reserve.size(), 2u);
  EXPECT_EQ(tlb.stats().reserve.used, kSegmentSlots);
  auto refused = tlb.map(request(tlb, half));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::pool_full);
  EXPECT_EQ(tlb.stats().reserve.exhausted, 1u);
  EXPECT_EQ(tlb.stats().served[0].refused, 1u);
  EXPECT_EQ(io_tlb_json(tlb)["reserve"]["exhausted"], 1u);
}

TEST(Reserve, WhenItIsFullATransientPoolFollows) {
  IoTlbOptions options = with_reserve();
  options.transient = true;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  const std::vector<std::byte> half(kHalfSegment);
  fill(tlb, half);
  fill(tlb, half);  // into the reserve, with no transient pool made
  EXPECT_EQ(tlb.growth_stats().transient_pools_total, 0u);
  EXPECT_EQ(tlb.stats().reserve.maps, 2u);
  auto own = tlb.map(request(tlb, half));
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_EQ(tlb.growth_stats().transient_pools_total, 1u);
  EXPECT_EQ(tlb.stats().reserve.exhausted, 1u);
  ASSERT_TRUE(unmap(tlb, *own, half.size()));
}

TEST(Reserve, ACallerThatMaySleepWaitsInsteadOfTakingIt) {
  auto made = IoTlb::create(with_reserve());
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  const std::vector<std::byte> half(kHalfSegment);
  fill(tlb, half);
  BounceRequest r = request(tlb, half, Attr::may_sleep);
  r.deadline = WaitQueue::Clock::now() + 20ms;
  auto waited = tlb.map(r);
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code(), Errc::timed_out);
  EXPECT_EQ(tlb.stats().reserve.maps, 0u);
  EXPECT_EQ(tlb.stats().reserve.used, 0u);
}

TEST(Reserve, OnlyWhereItCanServe) {
  IoTlbOptions restricted = with_reserve();
  restricted.restricted = true;
  EXPECT_FALSE(IoTlb::create(restricted));
  auto odd = IoTlb::create(with_reserve(100));
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().message().find("reserve"), std::string::npos) << odd.error().message();
  auto none = IoTlb::create(with_reserve(0));
  ASSERT_TRUE(none);
  EXPECT_EQ((*none)->stats().reserve.nslabs, 0u);
}

}  // namespace
}  // namespace swiotlb
