// The backend seam: grown and transient pools in the configured window's
// kind of memory, the IoTlb-wide counters (high-water mark over every
// pool, refused maps apart from fall-throughs), and the simulation backend.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../platform/platform_test_support.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"

namespace swiotlb {
namespace {

constexpr std::uint32_t kOwner = 3;
constexpr std::uint64_t kSegment = kSegmentSlots * kSlotSize;

BounceRequest request(const IoTlb& tlb, const void* orig, std::uint64_t size) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = Direction::bidirectional;
  r.attrs = Attr::no_warn;
  r.owner = kOwner;
  r.owner_name = "test";
  return r;
}

Status unmap(IoTlb& tlb, PhysAddr addr, std::uint64_t size) {
  return tlb.unmap(addr, 0, {size, Direction::bidirectional, kOwner}, {});
}

IoTlbOptions growing(std::uint64_t nslabs) {
  IoTlbOptions options;
  options.nslabs = nslabs;
  options.growth = {.enabled = true, .pool_nslabs = 128, .watermark_percent = 100};
  return options;
}

// Maps whole segments until `count` are held, running maintenance after
// each refused one so that the pool it asked for is there for the next.
std::vector<PhysAddr> fill_growing(IoTlb& tlb, const std::vector<std::byte>& source,
                                   std::uint64_t count) {
  std::vector<PhysAddr> held;
  for (int tries = 0; held.size() < count && tries < 1000; ++tries) {
    auto mapped = tlb.map(request(tlb, source.data(), kSegment));
    if (mapped) {
      held.push_back(*mapped);
    } else {
      EXPECT_EQ(mapped.error().code(), Errc::pool_full);
      tlb.run_maintenance();
    }
  }
  EXPECT_EQ(held.size(), count);
  return held;
}

TEST(IoTlbCounters, TheHighWaterMarkCoversGrownPools) {
  auto made = IoTlb::create(growing(128));
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  std::vector<std::byte> source(kSegment, std::byte{0x11});
  std::vector<PhysAddr> held = fill_growing(tlb, source, 10);  // 1280 slots in use
  EXPECT_EQ(tlb.used(), 1280u);
  EXPECT_EQ(tlb.hiwater(), 1280u);
  const std::string text = tlb.debugfs_text();
  EXPECT_NE(text.find("io_tlb_nslabs: 1280\n"), std::string::npos) << text;
  EXPECT_NE(text.find("io_tlb_used: 1280\n"), std::string::npos) << text;
  EXPECT_NE(text.find("io_tlb_used_hiwater: 1280\n"), std::string::npos) << text;
  const nlohmann::json json = io_tlb_json(tlb);
  EXPECT_GE(json.at("hiwater").get<std::uint64_t>(), 1280u);
  EXPECT_EQ(json.at("used"), 1280);
  EXPECT_EQ(json.at("own").at("nslabs"), 128);
  EXPECT_TRUE(tlb.check_invariants());

  for (PhysAddr addr : held) {
    EXPECT_TRUE(unmap(tlb, addr, kSegment));
  }
  EXPECT_EQ(tlb.used(), 0u);
  EXPECT_EQ(tlb.hiwater(), 1280u);
  tlb.reset_hiwater();
  EXPECT_EQ(tlb.hiwater(), 0u);
  EXPECT_NE(tlb.debugfs_text().find("io_tlb_used_hiwater: 0\n"), std::string::npos);
  EXPECT_TRUE(tlb.check_invariants());
}

TEST(IoTlbCounters, FailuresCountRefusedMapsAndFallThroughsTheirOwn) {
  auto made = IoTlb::create(growing(128));
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  std::vector<std::byte> source(kSegment);
  auto first = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(first);
  auto refused = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_FALSE(refused);
  tlb.run_maintenance();  // grows one pool
  auto second = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(second) << second.error().message();  // falls through to the grown pool
  const IoTlbStats s = tlb.stats();
  ASSERT_EQ(s.served.size(), 1u);
  EXPECT_EQ(s.served[0].refused, 1u);
  EXPECT_EQ(s.served[0].fall_throughs, 1u);
  const nlohmann::json json = io_tlb_json(tlb);
  EXPECT_EQ(json.at("failures"), 1);
  EXPECT_EQ(json.at("fall_throughs"), 1);
  // The configured pool's own search failed twice: counted apart.
  EXPECT_EQ(json.at("own").at("searches_failed"), 2);
  EXPECT_TRUE(unmap(tlb, *first, kSegment));
  EXPECT_TRUE(unmap(tlb, *second, kSegment));
}

// What /proc/self/maps names the mapping that holds `addr` by ("" for
// anonymous memory, "?" when no mapping holds it).
std::string mapping_name(PhysAddr addr) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) != 2 || addr.value() < lo ||
        addr.value() >= hi) {
      continue;
    }
    std::istringstream fields(line);
    std::string range, perms, offset, dev, inode, name;
    fields >> range >> perms >> offset >> dev >> inode;
    std::getline(fields >> std::ws, name);
    return name;
  }
  return "?";
}

// A window of each kind grows in that kind, and its bytes work: the
// configured pool fills, the next map gets a transient pool (a caller that
// cannot wait), the growth it asked for comes, and the map after uses it.
void grows_in_kind(const RegionSpec& window, const std::string& expected_name) {
  IoTlbOptions options = growing(128);
  options.transient = true;
  options.region = window;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  ASSERT_NE(tlb.region(), nullptr);
  std::vector<std::byte> source(kSegment);
  for (std::size_t i = 0; i < source.size(); ++i) {
    source[i] = static_cast<std::byte>(i * 7);
  }
  auto first = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(first) << first.error().message();
  auto own = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_EQ(tlb.stats().growth.transient_pools, 1u);
  tlb.run_maintenance();
  EXPECT_EQ(tlb.stats().growth.grow_events, 1u);
  auto grown = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(grown) << grown.error().message();
  EXPECT_EQ(tlb.stats().growth.transient_pools, 1u);
  for (PhysAddr addr : {*first, *own, *grown}) {
    EXPECT_EQ(std::memcmp(tlb.bounce_pointer(addr), source.data(), kSegment), 0);
    EXPECT_NE(mapping_name(addr).find(expected_name), std::string::npos)
        << mapping_name(addr) << " holds " << addr.value();
    if (expected_name.empty()) {
      EXPECT_EQ(mapping_name(addr), "");
    }
  }
  EXPECT_TRUE(tlb.check_invariants());
  for (PhysAddr addr : {*first, *own, *grown}) {
    EXPECT_TRUE(unmap(tlb, addr, kSegment));
  }
  EXPECT_TRUE(tlb.check_invariants());
}

TEST(IoTlbBackend, AMemfdWindowGrowsInMemfds) {
  grows_in_kind({.kind = RegionKind::memfd}, "/memfd:");
}

TEST(IoTlbBackend, AFileWindowGrowsInItsFile) {
  test::TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("window");
  grows_in_kind({.kind = RegionKind::file, .path = path, .create = true}, path);
  // The window, the grown pool and the transient pool all lie in the file.
  EXPECT_GE(std::filesystem::file_size(path), 3 * kSegment);
}

TEST(IoTlbBackend, AFixedAddressWindowGrowsAnywhere) {
  std::optional<PhysAddr> at = test::free_address(kSegment);
  ASSERT_TRUE(at);
  grows_in_kind({.fixed_address = *at}, "");
}

TEST(IoTlbBackend, SimulationPoolsHaveAddressesAndNoMemory) {
  auto backend = std::make_shared<SimulationBackend>(std::uint64_t{1} << 40);
  IoTlbOptions options = growing(128);
  options.growth.pool_nslabs = 1 << 17;  // 256 MiB pools, at no cost
  options.growth.max_nslabs = std::uint64_t{1} << 22;
  options.backend = backend;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made) << made.error().message();
  IoTlb& tlb = **made;
  EXPECT_EQ(tlb.start().value(), std::uint64_t{1} << 40);
  EXPECT_EQ(tlb.region(), nullptr);
  EXPECT_EQ(tlb.backend().maintenance(), Maintenance::caller_driven);
  std::vector<std::byte> source(kSegment);
  auto first = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(first);
  EXPECT_EQ(tlb.bounce_pointer(*first), nullptr);  // nothing behind it: no copy
  EXPECT_FALSE(tlb.map(request(tlb, source.data(), kSegment)));
  // Nobody grows until the caller runs the maintenance.
  EXPECT_EQ(tlb.stats().growth.grow_events, 0u);
  tlb.run_maintenance();
  EXPECT_EQ(tlb.stats().growth.grow_events, 1u);
  auto grown = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(grown);
  EXPECT_EQ(grown->value() % (std::uint64_t{1} << 28), 0u);  // aligned as the page allocator does
  EXPECT_TRUE(tlb.contains(*grown));
  EXPECT_TRUE(tlb.check_invariants());
  EXPECT_TRUE(unmap(tlb, *first, kSegment));
  EXPECT_TRUE(unmap(tlb, *grown, kSegment));
}

TEST(IoTlbBackend, TheSimulationClockTimesTheShrink) {
  auto backend = std::make_shared<SimulationBackend>(std::uint64_t{1} << 40);
  IoTlbOptions options = growing(128);
  options.growth.shrink_after = std::chrono::milliseconds{10};
  options.backend = backend;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made);
  IoTlb& tlb = **made;
  std::vector<std::byte> source(kSegment);
  auto first = tlb.map(request(tlb, source.data(), kSegment));
  ASSERT_TRUE(first);
  EXPECT_FALSE(tlb.map(request(tlb, source.data(), kSegment)));
  tlb.run_maintenance();
  ASSERT_EQ(tlb.stats().growth.grown_pools, 1u);
  tlb.run_maintenance();  // first look at the idle pool: idle from now
  backend->advance(9);
  tlb.run_maintenance();
  EXPECT_EQ(tlb.stats().growth.grown_pools, 1u);
  backend->advance(1);
  tlb.run_maintenance();
  EXPECT_EQ(tlb.stats().growth.grown_pools, 0u);
  EXPECT_EQ(tlb.stats().growth.shrunk_pools, 1u);
  EXPECT_TRUE(unmap(tlb, *first, kSegment));
}

TEST(IoTlbBackend, NoAddressInAnyPoolHasNoBouncePointer) {
  IoTlbOptions options;
  options.nslabs = 128;
  auto made = IoTlb::create(options);
  ASSERT_TRUE(made);
  EXPECT_EQ((*made)->bounce_pointer((*made)->end()), nullptr);
  EXPECT_EQ((*made)->bounce_pointer(PhysAddr(8)), nullptr);
  EXPECT_NE((*made)->bounce_pointer((*made)->start()), nullptr);
}

}  // namespace
}  // namespace swiotlb
