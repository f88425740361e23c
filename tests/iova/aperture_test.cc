// Apertures, inbound-window holes, reserved regions and valid ranges,
// including the iproc example from the thread that added
// iova_reserve_pci_windows.
#include "swiotlb/iova/aperture.h"

#include <gtest/gtest.h>

#include "swiotlb/iova/device_domain.h"
#include "swiotlb/iova/reserved_regions.h"
#include "swiotlb/iova/reserved_regions_json.h"

namespace swiotlb::iova {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

// iproc: dma-ranges 2-4 GiB, 32-64 GiB, 512-768 GiB.
const std::vector<DmaWindow> kIproc = {
    {2 * kGiB, 4 * kGiB - 1}, {32 * kGiB, 64 * kGiB - 1}, {512 * kGiB, 768 * kGiB - 1}};

TEST(ApertureTest, DmaLimit) {
  EXPECT_EQ(*device_dma_limit(32, 0), 0xffffffffu);
  EXPECT_EQ(*device_dma_limit(64, 0), ~std::uint64_t{0});
  EXPECT_EQ(*device_dma_limit(48, 0xfffffffff), 0xfffffffffu);  // the bus is tighter
  EXPECT_EQ(*device_dma_limit(32, 0xfffffffff), 0xffffffffu);   // the mask is tighter
  EXPECT_FALSE(device_dma_limit(0, 0));
  EXPECT_FALSE(device_dma_limit(65, 0));
}

TEST(ApertureTest, ParsesWindows) {
  Result<std::vector<DmaWindow>> w =
      parse_dma_windows("0x80000000-0xffffffff,0x800000000-0xfffffffff,0x8000000000-0xbfffffffff");
  ASSERT_TRUE(w) << w.error().message();
  EXPECT_EQ(*w, kIproc);
  EXPECT_EQ(parse_dma_windows("16-31")->front(), (DmaWindow{16, 31}));
  EXPECT_TRUE(parse_dma_windows("")->empty());
  for (const char* bad : {"0x10", "0x20-0x10", "0xg-0x10", "1-2,,3-4", "0-0x10000000000000000"}) {
    Result<std::vector<DmaWindow>> r = parse_dma_windows(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), Errc::parse);
  }
  EXPECT_EQ(format_dma_window(kIproc[0]), "0x0000000080000000-0x00000000ffffffff");
}

TEST(ApertureTest, OverlappingInboundWindowsAreAnErrorWithTheNumbers) {
  Result<std::vector<DmaWindow>> r =
      sort_inbound_windows({{0x100000000, 0x1ffffffff}, {0x80000000, 0x100000000}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_NE(r.error().message().find("[0x80000000, 0x100000000] and [0x100000000, 0x1ffffffff]"),
            std::string::npos)
      << r.error().message();
  // Unsorted but disjoint is fine: sorted as the kernel's list_sort does.
  Result<std::vector<DmaWindow>> ok = sort_inbound_windows({kIproc[2], kIproc[0], kIproc[1]});
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, kIproc);
}

// What the kernel passes to reserve_iova: each hole ends at the next
// window's first address inclusive, and the last runs to 2^64 - 1.
TEST(ApertureTest, KernelReservesForIproc) {
  const std::vector<IovaRange> got = kernel_pci_window_reserves({}, kIproc, 12);
  const std::vector<IovaRange> want = {
      {0x0, 0x80000}, {0x100000, 0x800000}, {0x1000000, 0x8000000}, {0xc000000, 0xfffffffffffff}};
  EXPECT_EQ(got, want);
}

TEST(ApertureTest, KernelReservesEdgeCases) {
  // A window at 0 leaves no hole below it; adjacent windows leave none
  // between them; outbound windows come first.
  const std::vector<IovaRange> got = kernel_pci_window_reserves(
      {{0xe0000000, 0xefffffff}}, {{0, 0x7fffffff}, {0x80000000, 0xffffffff}}, 12);
  const std::vector<IovaRange> want = {{0xe0000, 0xeffff}, {0x100000, 0xfffffffffffff}};
  EXPECT_EQ(got, want);
  // A window reaching the top of the address space: nothing above it.
  EXPECT_EQ(kernel_pci_window_reserves({}, {{0x1000, ~std::uint64_t{0}}}, 12),
            (std::vector<IovaRange>{{0, 1}}));
  EXPECT_TRUE(kernel_pci_window_reserves({}, {}, 12).empty());
}

TEST(ApertureTest, UserHolesForIproc) {
  const std::uint64_t top = (std::uint64_t{1} << 48) - 1;
  const std::vector<ReservedRegion> want = {{0, 2 * kGiB - 1, ReservedType::reserved},
                                            {4 * kGiB, 32 * kGiB - 1, ReservedType::reserved},
                                            {64 * kGiB, 512 * kGiB - 1, ReservedType::reserved},
                                            {768 * kGiB, top, ReservedType::reserved}};
  EXPECT_EQ(inbound_window_holes(kIproc, top), want);
  // A 36-bit device sees only the first two windows.
  const std::vector<ReservedRegion> narrow = inbound_window_holes(kIproc, 64 * kGiB - 1);
  ASSERT_EQ(narrow.size(), 2u);
  EXPECT_EQ(narrow.back().end, 32 * kGiB - 1);
  EXPECT_EQ(inbound_window_holes(kIproc, kGiB - 1),
            (std::vector<ReservedRegion>{{0, kGiB - 1, ReservedType::reserved}}));
}

TEST(ReservedRegionsTest, SysfsFormatForIproc) {
  DeviceIovaSpec spec;
  spec.mask_bits = 48;
  spec.inbound = kIproc;
  spec.regions = {{kX86MsiWindow.start, kX86MsiWindow.end, ReservedType::msi}};
  Result<std::vector<ReservedRegion>> regions = device_reserved_regions(spec);
  ASSERT_TRUE(regions) << regions.error().message();
  EXPECT_EQ(format_reserved_regions(*regions),
            "0x0000000000000000 0x000000007fffffff reserved\n"
            "0x00000000fee00000 0x00000000feefffff msi\n"
            "0x0000000100000000 0x00000007ffffffff reserved\n"
            "0x0000001000000000 0x0000007fffffffff reserved\n"
            "0x000000c000000000 0x0000ffffffffffff reserved\n");
  Result<std::vector<DmaWindow>> valid = device_valid_ranges(spec);
  ASSERT_TRUE(valid);
  const std::vector<DmaWindow> want = {{0x80000000, 0xfedfffff},
                                       {0xfef00000, 0xffffffff},
                                       {0x800000000, 0xfffffffff},
                                       {0x8000000000, 0xbfffffffff}};
  EXPECT_EQ(*valid, want);
  const nlohmann::json json = reserved_regions_json(*regions);
  EXPECT_EQ(json[1]["type"], "msi");
  EXPECT_EQ(json[1]["start"], "0x00000000fee00000");
  EXPECT_EQ(dma_windows_json(*valid)[3]["end"], "0x000000bfffffffff");
}

TEST(ReservedRegionsTest, MergesLikeTheKernel) {
  const std::vector<ReservedRegion> merged = merge_reserved_regions({
      {0x3000, 0x3fff, ReservedType::reserved},
      {0x1000, 0x1fff, ReservedType::reserved},
      {0x2000, 0x2fff, ReservedType::reserved},  // touches both: one region
      {0x1000, 0x1fff, ReservedType::direct},    // same start, lower type first
      {0x8000, 0x8fff, ReservedType::msi},
      {0x8800, 0x9fff, ReservedType::msi},
      {0x8000, 0x8fff, ReservedType::sw_msi},  // its own type, printed "msi"
  });
  const std::vector<ReservedRegion> want = {{0x1000, 0x1fff, ReservedType::direct},
                                            {0x1000, 0x3fff, ReservedType::reserved},
                                            {0x8000, 0x9fff, ReservedType::msi},
                                            {0x8000, 0x8fff, ReservedType::sw_msi}};
  EXPECT_EQ(merged, want);
  EXPECT_EQ(to_string(ReservedType::sw_msi), "msi");
  EXPECT_EQ(to_string(ReservedType::direct_relaxable), "direct-relaxable");
}

TEST(ReservedRegionsTest, ParseRoundTrip) {
  const std::string text =
      "0x0000000000000000 0x0000000000ffffff direct-relaxable\n"
      "0x00000000fee00000 0x00000000feefffff msi\n";
  Result<std::vector<ReservedRegion>> regions = parse_reserved_regions(text);
  ASSERT_TRUE(regions) << regions.error().message();
  EXPECT_EQ(format_reserved_regions(*regions), text);
  Result<std::vector<ReservedRegion>> bad =
      parse_reserved_regions("0x0 0x10 reserved\n0x0 0x10 odd\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("line 2: bad type"), std::string::npos)
      << bad.error().message();
  EXPECT_FALSE(parse_reserved_regions("0x20 0x10 reserved\n"));
  EXPECT_FALSE(parse_reserved_regions("0x0 reserved\n"));
}

// VFIO keeps direct-relaxable regions mappable (the ISA floppy range here).
TEST(ReservedRegionsTest, ValidRangesSkipDirectRelaxable) {
  const std::vector<ReservedRegion> regions = {{0, 0xffffff, ReservedType::direct_relaxable},
                                               {0xfee00000, 0xfeefffff, ReservedType::msi},
                                               {0x1000, 0x1fff, ReservedType::direct}};
  const std::vector<DmaWindow> want = {{0, 0xfff}, {0x2000, 0xfedfffff}, {0xfef00000, 0xffffffff}};
  EXPECT_EQ(valid_iova_ranges({0, 0xffffffff}, regions), want);
  EXPECT_TRUE(valid_iova_ranges({0x1000, 0x1fff}, regions).empty());
}

TEST(DeviceDomainTest, ReservesAsTheKernelDoes) {
  DeviceIovaSpec spec;
  spec.mask_bits = 48;
  spec.inbound = kIproc;
  spec.outbound = {{0x40000000, 0x4fffffff}};
  spec.regions = {{kX86MsiWindow.start, kX86MsiWindow.end, ReservedType::msi},
                  {0x8000000, 0x80fffff, ReservedType::sw_msi}};  // not reserved: ours to map
  Result<std::unique_ptr<DeviceIovaDomain>> dev = DeviceIovaDomain::create(spec);
  ASSERT_TRUE(dev) << dev.error().message();
  const std::vector<IovaNode> want = {
      // The outbound window, stretched down to 0 by the hole below 2 GiB,
      // and the rest of that hole as a node of its own.
      {{0x0, 0x4ffff}, IovaKind::reserved},
      {{0x50000, 0x80000}, IovaKind::reserved},
      {{0xfee00, 0xfeeff}, IovaKind::reserved},
      {{0x100000, 0x800000}, IovaKind::reserved},
      {{0x1000000, 0x8000000}, IovaKind::reserved},
      {{0xc000000, 0xfffffffffffff}, IovaKind::reserved}};
  EXPECT_EQ((*dev)->domain().tree().nodes(), want);
  EXPECT_EQ((*dev)->domain().start_pfn(), 1u);
  EXPECT_EQ((*dev)->limit_pfn(), 0xfffffffffu);
}

TEST(DeviceDomainTest, PciDevicesTryBelowFourGigabytesFirst) {
  DeviceIovaSpec spec;
  spec.mask_bits = 48;
  spec.inbound = kIproc;
  spec.regions = {{kX86MsiWindow.start, kX86MsiWindow.end, ReservedType::msi}};
  auto dev = DeviceIovaDomain::create(spec).value();
  Result<DmaAddr> a = dev->alloc(0, 4096);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->value(), 0xfffff000u);
  Result<DmaAddr> b = dev->alloc(0, 5000);  // two granules, aligned to two
  ASSERT_TRUE(b);
  EXPECT_EQ(b->value(), 0xffffc000u);
  EXPECT_TRUE(dev->free(0, *b, 5000));
  EXPECT_TRUE(dev->free(0, *a + 0x10, 100));  // an offset inside the granule
  EXPECT_FALSE(dev->free(0, *a, 4096));
  EXPECT_FALSE(dev->alloc(0, 0));

  spec.is_pci = false;  // no SAC, and no bridge windows
  auto plat = DeviceIovaDomain::create(spec).value();
  EXPECT_EQ(plat->alloc(0, 4096)->value(), 0xfffffffff000u);
}

TEST(DeviceDomainTest, BadSpecsAreErrors) {
  DeviceIovaSpec spec;
  spec.inbound = {{0x1000, 0x2fff}, {0x2000, 0x3fff}};
  Result<std::unique_ptr<DeviceIovaDomain>> overlap = DeviceIovaDomain::create(spec);
  ASSERT_FALSE(overlap);
  EXPECT_NE(overlap.error().message().find("overlap"), std::string::npos);
  EXPECT_FALSE(device_reserved_regions(spec));
  spec.inbound.clear();
  spec.granule = 3000;
  EXPECT_FALSE(DeviceIovaDomain::create(spec));
  spec.granule = 4096;
  spec.mask_bits = 0;
  EXPECT_FALSE(DeviceIovaDomain::create(spec));
  spec.mask_bits = 64;
  spec.cpu_count = 0;
  EXPECT_FALSE(DeviceIovaDomain::create(spec));
}

}  // namespace
}  // namespace swiotlb::iova
