// Low and high pools, restricted pools: a mapping goes to a pool the device
// reaches, checked by address.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {
namespace {

using testing::make_device;

constexpr std::uint64_t k4GiB = std::uint64_t{1} << 32;

std::unique_ptr<IoTlb> low_and_high(bool overflow = false) {
  IoTlbOptions options;
  options.nslabs = 128;
  options.high_nslabs = 256;
  options.force_bounce = true;
  options.high_overflows_to_low = overflow;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

bool low_placement_works(const IoTlb& tlb) {
  return tlb.end().value() <= k4GiB;
}

TEST(LowHighPools, EachDeviceGoesToThePoolItReaches) {
  auto tlb = low_and_high();
  if (!low_placement_works(*tlb) || tlb->pool_info(1).start.value() < k4GiB) {
    GTEST_SKIP() << "the low pool is not below 4 GiB or the high pool not above it here";
  }
  auto nic = make_device(tlb.get(), {.name = "nic32", .dma_mask = 0xffffffff});
  auto disk = make_device(tlb.get(), {.name = "disk64"});
  std::vector<std::byte> a(4096), b(4096);
  auto low = map_single(*nic, a.data(), a.size(), Direction::to_device);
  auto high = map_single(*disk, b.data(), b.size(), Direction::to_device);
  ASSERT_TRUE(low);
  ASSERT_TRUE(high);
  EXPECT_EQ(tlb->pool_of(PhysAddr(low->value())), 0);
  EXPECT_LT(low->value() + 4095, k4GiB);
  EXPECT_EQ(tlb->pool_of(PhysAddr(high->value())), 1);
  EXPECT_EQ(tlb->pool(0).used(), 2u);
  EXPECT_EQ(tlb->pool(1).used(), 2u);
  EXPECT_TRUE(unmap_single(*nic, *low, 4096, Direction::to_device));
  EXPECT_TRUE(unmap_single(*disk, *high, 4096, Direction::to_device));
}

TEST(LowHighPools, FullHighPoolDoesNotTakeTheLowPoolUnlessAllowed) {
  for (bool overflow : {false, true}) {
    auto tlb = low_and_high(overflow);
    if (!low_placement_works(*tlb)) {
      GTEST_SKIP() << "no low placement here";
    }
    auto disk = make_device(tlb.get(), {.name = "disk64"});
    std::vector<std::vector<std::byte>> buffers(3, std::vector<std::byte>(256 * 1024));
    auto first = map_single(*disk, buffers[0].data(), 256 * 1024, Direction::to_device);
    auto second = map_single(*disk, buffers[1].data(), 256 * 1024, Direction::to_device);
    ASSERT_TRUE(first);
    ASSERT_TRUE(second);  // the high pool is now full
    auto third =
        map_single(*disk, buffers[2].data(), 256 * 1024, Direction::to_device, Attr::no_warn);
    EXPECT_EQ(static_cast<bool>(third), overflow);
    if (third) {
      EXPECT_EQ(tlb->pool_of(PhysAddr(third->value())), 0);
      EXPECT_TRUE(unmap_single(*disk, *third, 256 * 1024, Direction::to_device));
    } else {
      EXPECT_EQ(third.error().code(), Errc::pool_full);
    }
    EXPECT_TRUE(unmap_single(*disk, *first, 256 * 1024, Direction::to_device));
    EXPECT_TRUE(unmap_single(*disk, *second, 256 * 1024, Direction::to_device));
  }
}

TEST(LowHighPools, ThirtyTwoBitDeviceWithOnlyAHighPoolGetsAClearError) {
  IoTlbOptions options;
  options.nslabs = 128;
  options.placement = RegionPlacement::anywhere;
  options.force_bounce = true;
  auto tlb = IoTlb::create(options);
  ASSERT_TRUE(tlb);
  if ((*tlb)->start().value() < k4GiB) {
    GTEST_SKIP() << "the system placed this pool low anyway";
  }
  auto nic = make_device(tlb->get(), {.name = "nic32", .dma_mask = 0xffffffff});
  std::vector<std::byte> a(64);
  auto dma = map_single(*nic, a.data(), a.size(), Direction::to_device);
  ASSERT_FALSE(dma);
  EXPECT_EQ(dma.error().code(), Errc::unreachable);
  EXPECT_NE(dma.error().message().find("nic32"), std::string::npos);
}

TEST(LowHighPools, StatisticsPerPool) {
  auto tlb = low_and_high();
  EXPECT_EQ(tlb->debugfs_text(),
            "io_tlb_nslabs: 128\nio_tlb_used: 0\nio_tlb_used_hiwater: 0\n"
            "io_tlb_nslabs_high: 256\nio_tlb_used_high: 0\nio_tlb_used_hiwater_high: 0\n");
  const nlohmann::json j = io_tlb_json(*tlb);
  ASSERT_EQ(j.at("pools").size(), 2u);
  EXPECT_EQ(j.at("pools")[0].at("name"), "low");
  EXPECT_EQ(j.at("pools")[1].at("name"), "high");
  EXPECT_EQ(j.at("pools")[1].at("nslabs"), 256);
  EXPECT_EQ(j.at("nslabs"), 128);
}

TEST(LowHighPools, ConfigWordAddsTheHighPool) {
  auto config = parse_swiotlb_config("swiotlb=1024,force swiotlb_high=3000,2", 1);
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_TRUE(config->high_nslabs.has_value());
  EXPECT_EQ(*config->high_nslabs, 4096u);  // 3072 rounded to a power of two
  EXPECT_EQ(config->high_nareas, 2u);
  auto options = IoTlbOptions::from_config(*config);
  ASSERT_TRUE(options);
  EXPECT_EQ(options->high_nslabs, 4096u);
  EXPECT_FALSE(parse_swiotlb_config("swiotlb_high=12x", 1));
}

TEST(RestrictedPool, BoundDeviceBouncesEverythingThereAndOthersNeverUseIt) {
  IoTlbOptions restricted_options;
  restricted_options.nslabs = 256;
  restricted_options.restricted = true;
  auto restricted = IoTlb::create(restricted_options);
  ASSERT_TRUE(restricted);
  EXPECT_TRUE((*restricted)->force_bounce());
  auto shared = testing::make_io_tlb(256, /*force=*/false);

  auto bound = make_device(restricted->get(), {.name = "secure"});
  auto other = make_device(shared.get(), {.name = "other"});
  std::vector<std::byte> a(4096, std::byte{9}), b(4096);
  auto bounced = map_single(*bound, a.data(), a.size(), Direction::to_device);
  ASSERT_TRUE(bounced);
  EXPECT_TRUE((*restricted)->contains(PhysAddr(bounced->value())))
      << "reachable, yet bounced: the pool is restricted";
  auto direct = map_single(*other, b.data(), b.size(), Direction::to_device);
  ASSERT_TRUE(direct);
  EXPECT_FALSE((*restricted)->contains(PhysAddr(direct->value())));
  auto coherent = alloc_coherent(*bound, 8192);
  ASSERT_TRUE(coherent);
  EXPECT_TRUE((*restricted)->contains(PhysAddr(coherent->dma_handle.value())));
  EXPECT_TRUE(free_coherent(*bound, *coherent));
  EXPECT_TRUE(unmap_single(*bound, *bounced, a.size(), Direction::to_device));
  EXPECT_TRUE(unmap_single(*other, *direct, b.size(), Direction::to_device));
  EXPECT_EQ(io_tlb_json(**restricted).at("restricted"), true);
}

}  // namespace
}  // namespace swiotlb
