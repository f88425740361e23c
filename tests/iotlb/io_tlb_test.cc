// IoTlb: creation from a parsed swiotlb=, where the pool lives, and the
// statistics in the kernel's debugfs layout and as JSON.
#include "swiotlb/iotlb/io_tlb.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {
namespace {

std::unique_ptr<IoTlb> make(std::uint64_t nslabs, std::uint32_t nareas) {
  IoTlbOptions options;
  options.nslabs = nslabs;
  options.nareas = nareas;
  auto made = IoTlb::create(options);
  EXPECT_TRUE(made) << made.error().message();
  return made ? std::move(*made) : nullptr;
}

BounceRequest request(const void* orig, std::uint64_t size, const IoTlb& tlb) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = Direction::to_device;
  r.owner = 7;
  return r;
}

TEST(IoTlb, FromConfigCarriesGeometryAndForce) {
  auto config = parse_swiotlb_config("swiotlb=2048,2,force", 1);
  ASSERT_TRUE(config);
  auto options = IoTlbOptions::from_config(*config);
  ASSERT_TRUE(options);
  EXPECT_EQ(options->nslabs, 2048u);
  EXPECT_EQ(options->nareas, 2u);
  EXPECT_TRUE(options->force_bounce);
}

TEST(IoTlb, NoforceGivesAnIoTlbThatNeverBounces) {
  auto noforce = parse_swiotlb_config("swiotlb=noforce", 1);
  ASSERT_TRUE(noforce);
  auto options = IoTlbOptions::from_config(*noforce);
  ASSERT_TRUE(options);
  EXPECT_TRUE(options->disabled);
  auto made = IoTlb::create(*options);
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  EXPECT_FALSE(tlb.enabled());
  EXPECT_FALSE(tlb.force_bounce());
  EXPECT_EQ(tlb.pool_count(), 0u);
  std::vector<std::byte> buffer(100);
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(buffer.data());
  r.size = buffer.size();
  auto mapped = tlb.map(r);
  ASSERT_FALSE(mapped);
  EXPECT_EQ(mapped.error().code(), Errc::unreachable);
  EXPECT_NE(mapped.error().message().find("noforce"), std::string::npos);
  EXPECT_FALSE(tlb.alloc({.size = 4096}));
  EXPECT_FALSE(tlb.contains(PhysAddr::from_pointer(buffer.data())));
  EXPECT_EQ(tlb.bounce_pointer(PhysAddr::from_pointer(buffer.data())), nullptr);
  EXPECT_EQ(tlb.debugfs_text(), "");
  EXPECT_EQ(io_tlb_json(tlb).at("enabled"), false);
  EXPECT_TRUE(tlb.check_invariants());
}

TEST(IoTlb, ImpossibleGeometryIsRefused) {
  IoTlbOptions options;
  options.nslabs = 1000;  // not whole segments
  EXPECT_FALSE(IoTlb::create(options));
  options.nslabs = 256;
  options.nareas = 4;  // 64 slots per area: less than a segment
  EXPECT_FALSE(IoTlb::create(options));
  options.nareas = 1;
  options.policy = "nonesuch";
  auto made = IoTlb::create(options);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("nonesuch"), std::string::npos);
}

TEST(IoTlb, DefaultPoolLivesLowAndIsZeroed) {
  auto tlb = make(1024, 1);
  EXPECT_EQ(tlb->start().value() % kPageSize, 0u);
  const std::byte* first = tlb->bounce_pointer(tlb->start());
  EXPECT_EQ(first[0], std::byte{0});
  EXPECT_EQ(first[1024 * kSlotSize - 1], std::byte{0});
  if (tlb->end().value() > (std::uint64_t{1} << 32)) {
    GTEST_SKIP() << "low placement is not available here (ThreadSanitizer)";
  }
}

TEST(IoTlb, StatisticsInTheKernelsDebugfsLayout) {
  auto tlb = make(1024, 2);
  std::vector<std::byte> buffer(5000, std::byte{1});
  auto tlb_addr = tlb->map(request(buffer.data(), buffer.size(), *tlb));
  ASSERT_TRUE(tlb_addr);
  EXPECT_EQ(tlb->debugfs_text(), "io_tlb_nslabs: 1024\nio_tlb_used: 3\nio_tlb_used_hiwater: 3\n");
  ASSERT_TRUE(tlb->unmap(*tlb_addr, 0, {5000, Direction::to_device, 7}, {}));
  EXPECT_EQ(tlb->debugfs_text(), "io_tlb_nslabs: 1024\nio_tlb_used: 0\nio_tlb_used_hiwater: 3\n");
  tlb->reset_hiwater();
  EXPECT_EQ(tlb->debugfs_text(), "io_tlb_nslabs: 1024\nio_tlb_used: 0\nio_tlb_used_hiwater: 0\n");
}

TEST(IoTlb, StatisticsAsJson) {
  auto tlb = make(1024, 2);
  std::vector<std::byte> buffer(300);
  auto tlb_addr = tlb->map(request(buffer.data(), buffer.size(), *tlb));
  ASSERT_TRUE(tlb_addr);
  const nlohmann::json j = io_tlb_json(*tlb);
  EXPECT_EQ(j.at("nslabs"), 1024);
  EXPECT_EQ(j.at("nareas"), 2);
  EXPECT_EQ(j.at("used"), 1);
  EXPECT_EQ(j.at("hiwater"), 1);
  EXPECT_EQ(j.at("failures"), 0);
  EXPECT_EQ(j.at("maps"), 1);
  EXPECT_EQ(j.at("policy"), "fast");  // the library's default
  ASSERT_EQ(j.at("areas").size(), 2u);
  EXPECT_EQ(j.at("areas")[0].at("used").get<int>() + j.at("areas")[1].at("used").get<int>(), 1);
  EXPECT_EQ(j.at("end").get<std::uint64_t>() - j.at("start").get<std::uint64_t>(), 1024 * 2048u);
  ASSERT_TRUE(tlb->unmap(*tlb_addr, 0, {300, Direction::to_device, 7}, {}));
}

TEST(IoTlb, BootLineAsTheKernelPrintsIt) {
  auto tlb = make(32768, 1);
  const std::string expected =
      fmt::format("software IO TLB: mapped [mem {:#018x}-{:#018x}] (64MB)", tlb->start().value(),
                  tlb->start().value() + (std::uint64_t{64} << 20));
  EXPECT_EQ(tlb->boot_line(), expected);
}

TEST(IoTlb, UnmapClaimMustMatchTheMap) {
  auto tlb = make(1024, 1);
  std::vector<std::byte> buffer(100);
  auto tlb_addr = tlb->map(request(buffer.data(), buffer.size(), *tlb));
  ASSERT_TRUE(tlb_addr);
  Status wrong_owner = tlb->unmap(*tlb_addr, 0, {100, Direction::to_device, 8}, {});
  ASSERT_FALSE(wrong_owner);
  EXPECT_EQ(wrong_owner.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(tlb->pool().used(), 1u);
  EXPECT_TRUE(tlb->unmap(*tlb_addr, 0, {100, Direction::to_device, 7}, {}));
}

}  // namespace
}  // namespace swiotlb
