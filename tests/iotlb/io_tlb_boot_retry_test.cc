// The boot-time fallback: a configured pool the system has no memory for
// is tried again at half the slots, areas cut to keep a segment each, down
// to 1 MiB, each step logged and the settled size reported, as the
// kernel's swiotlb_init_remap does at boot.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "../platform/platform_test_support.h"
#include "failing_backend.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

std::size_t count_with(const std::vector<std::string>& messages, const std::string& part) {
  return static_cast<std::size_t>(
      std::count_if(messages.begin(), messages.end(),
                    [&](const auto& m) { return m.find(part) != std::string::npos; }));
}

IoTlbOptions refusing_above(std::uint64_t bytes, std::shared_ptr<testing::FailingBackend>& out) {
  out = std::make_shared<testing::FailingBackend>();
  out->refuse_configured_above(bytes);
  IoTlbOptions options;
  options.nslabs = 2048;  // 4 MiB
  options.nareas = 16;
  options.backend = out;
  return options;
}

TEST(BootRetry, ThePoolIsHalvedWithFewerAreasUntilItFits) {
  std::shared_ptr<testing::FailingBackend> backend;
  const IoTlbOptions options = refusing_above(kMiB, backend);
  test::LogCapture log;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  const SlotPool& pool = (*made)->pool();
  EXPECT_EQ(pool.slot_count(), kMinBootSlots);  // 4 MiB -> 2 MiB -> 1 MiB
  EXPECT_EQ(pool.area_count(), 4u);             // a segment per area at least
  EXPECT_EQ((*made)->end() - (*made)->start(), kMiB);
  EXPECT_EQ(backend->refusals(), 2u);
  EXPECT_EQ(count_with(log.messages(), "lowering to 2 MB"), 1u);
  EXPECT_EQ(count_with(log.messages(), "lowering to 1 MB"), 1u);
  EXPECT_EQ(count_with(log.messages(),
                       "low pool size adjusted from 2048 to 512 slots (1 MB), 16 "
                       "to 4 areas"),
            1u)
      << (log.messages().empty() ? "" : log.messages().back());
  EXPECT_TRUE((*made)->check_invariants());
}

TEST(BootRetry, ItStopsAtOneMegabyte) {
  std::shared_ptr<testing::FailingBackend> backend;
  const IoTlbOptions options = refusing_above(kMiB / 2, backend);
  test::LogCapture log;
  auto made = IoTlb::create(options);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), Errc::system);
  EXPECT_NE(made.error().message().find("even at 512 slots (1 MB)"), std::string::npos)
      << made.error().message();
  EXPECT_EQ(backend->refusals(), 3u);  // 4, 2 and 1 MiB
}

TEST(BootRetry, MemoryOfAGivenSizeIsNotLowered) {
  std::shared_ptr<testing::FailingBackend> backend;
  IoTlbOptions options = refusing_above(kMiB, backend);
  options.region = RegionSpec{.kind = RegionKind::file, .path = "/nonexistent/pool"};
  auto made = IoTlb::create(options);
  ASSERT_FALSE(made);
  EXPECT_EQ(backend->refusals(), 1u);
}

TEST(BootRetry, TheHighPoolIsLoweredToo) {
  std::shared_ptr<testing::FailingBackend> backend;
  IoTlbOptions options = refusing_above(kMiB, backend);
  options.nslabs = kMinBootSlots;
  options.nareas = 1;
  options.high_nslabs = 2048;
  options.high_nareas = 2;
  test::LogCapture log;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  EXPECT_EQ((*made)->pool(0).slot_count(), kMinBootSlots);
  EXPECT_EQ((*made)->pool(1).slot_count(), kMinBootSlots);
  EXPECT_EQ((*made)->pool(1).area_count(), 2u);
  EXPECT_EQ(count_with(log.messages(), "high pool size adjusted from 2048 to 512 slots"), 1u);
}

}  // namespace
}  // namespace swiotlb
