// Split mappings: a range larger than a bounce buffer mapped as a list of
// pieces, each within the device's limits, all or nothing.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;
using testing::pattern;
using testing::same_bytes;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kKiB = 1024;

// A buffer of `size` bytes that starts `offset` bytes past a page boundary,
// filled with a pattern, so that tests know where the cuts should fall.
class PlacedBuffer {
 public:
  PlacedBuffer(std::uint64_t size, std::uint64_t offset, unsigned seed)
      : storage_(std::make_unique<std::byte[]>(size + offset + kPageSize)), size_(size) {
    const auto base = reinterpret_cast<std::uintptr_t>(storage_.get());
    const std::uintptr_t page = (base + kPageSize - 1) & ~std::uintptr_t{kPageSize - 1};
    data_ = reinterpret_cast<std::byte*>(page + offset);
    const std::vector<std::byte> bytes = pattern(size, seed);
    std::memcpy(data_, bytes.data(), size);
  }
  std::byte* data() const { return data_; }
  std::uint64_t size() const { return size_; }
  PhysAddr phys() const { return PhysAddr::from_pointer(data_); }

 private:
  std::unique_ptr<std::byte[]> storage_;
  std::byte* data_ = nullptr;
  std::uint64_t size_ = 0;
};

// The pieces cover [phys, phys + size) in order, each with dma_length ==
// length, none longer than `limit`.
void expect_covers(const std::vector<ScatterEntry>& pieces, PhysAddr phys, std::uint64_t size,
                   std::uint64_t limit) {
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "piece " << i);
    EXPECT_EQ(pieces[i].phys.value(), phys.value() + offset);
    EXPECT_EQ(pieces[i].dma_length, pieces[i].length);
    EXPECT_GT(pieces[i].length, 0u);
    EXPECT_LE(pieces[i].length, limit);
    offset += pieces[i].length;
  }
  EXPECT_EQ(offset, size);
}

// What the device sees through the pieces, concatenated.
std::vector<std::byte> device_bytes(const std::vector<ScatterEntry>& pieces) {
  std::vector<std::byte> seen;
  for (const ScatterEntry& piece : pieces) {
    const std::byte* view = device_view(piece.dma_address);
    seen.insert(seen.end(), view, view + piece.dma_length);
  }
  return seen;
}

TEST(DmaSplit, ToDeviceMegabyteBouncesInSegmentSizedPiecesInOrder) {
  auto io_tlb = make_io_tlb(1024);  // 2 MiB, forced
  ASSERT_TRUE(io_tlb);
  // A segment limit above 256 KiB, so that the bounce limit is what cuts.
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  const std::uint64_t limit = max_mapping_size(*dev);
  ASSERT_EQ(limit, kSegmentBytes);
  PlacedBuffer buffer(kMiB, 0, 1);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  ASSERT_EQ(pieces->size(), 4u);
  expect_covers(*pieces, buffer.phys(), buffer.size(), limit);
  for (const ScatterEntry& piece : *pieces) {
    EXPECT_TRUE(io_tlb->contains(PhysAddr(piece.dma_address.value())));
  }
  const std::vector<std::byte> seen = device_bytes(*pieces);
  EXPECT_TRUE(same_bytes(seen.data(), buffer.data(), buffer.size()));
  EXPECT_EQ(io_tlb->pool().used(), nr_slots(kMiB));
  EXPECT_EQ(dev->stats().live_bounced, 4u);
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(dev->close());
}

TEST(DmaSplit, UnalignedStartCutsAtPageBoundaries) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB + 300, 0x300, 2);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  expect_covers(*pieces, buffer.phys(), buffer.size(), max_mapping_size(*dev));
  // The first piece runs to a page boundary; the others start on one.
  ASSERT_EQ(pieces->size(), 5u);
  EXPECT_EQ(pieces->front().length, kSegmentBytes - 0x300);
  for (std::size_t i = 1; i < pieces->size(); ++i) {
    EXPECT_EQ((*pieces)[i].phys.value() % kPageSize, 0u) << "piece " << i;
  }
  const std::vector<std::byte> seen = device_bytes(*pieces);
  EXPECT_TRUE(same_bytes(seen.data(), buffer.data(), buffer.size()));
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSplit, FromDeviceWritesBackEveryByteAtUnmap) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB, 0x40, 3);
  const std::vector<std::byte> before(buffer.data(), buffer.data() + buffer.size());
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::from_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  ASSERT_GT(pieces->size(), 1u);
  // The device writes the whole range through its pieces.
  const std::vector<std::byte> written = pattern(kMiB, 4);
  std::uint64_t offset = 0;
  for (const ScatterEntry& piece : *pieces) {
    std::memcpy(device_view(piece.dma_address), written.data() + offset, piece.dma_length);
    offset += piece.dma_length;
  }
  EXPECT_TRUE(same_bytes(buffer.data(), before.data(), buffer.size())) << "no copy before unmap";
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::from_device));
  EXPECT_TRUE(same_bytes(buffer.data(), written.data(), buffer.size()));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(dev->close());
}

TEST(DmaSplit, SyncsCoverEveryPiece) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB, 0, 5);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(pieces) << pieces.error().message();
  for (const ScatterEntry& piece : *pieces) {
    std::memset(device_view(piece.dma_address), 0x5a, piece.dma_length);
  }
  ASSERT_TRUE(sync_split_for_cpu(*dev, *pieces, Direction::bidirectional));
  const std::vector<std::byte> all_5a(kMiB, std::byte{0x5a});
  EXPECT_TRUE(same_bytes(buffer.data(), all_5a.data(), kMiB));
  std::memset(buffer.data(), 0xa5, kMiB);
  ASSERT_TRUE(sync_split_for_device(*dev, *pieces, Direction::bidirectional));
  const std::vector<std::byte> seen = device_bytes(*pieces);
  const std::vector<std::byte> all_a5(kMiB, std::byte{0xa5});
  EXPECT_TRUE(same_bytes(seen.data(), all_a5.data(), kMiB));
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::bidirectional, Attr::skip_cpu_sync));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSplit, MinAlignMaskKeepsThePageOffsetInEveryPiece) {
  auto io_tlb = make_io_tlb(1024);
  auto nvme = make_device(io_tlb.get(),
                          {.name = "nvme", .min_align_mask = 0xfff, .max_segment_size = 4 * kMiB});
  const std::uint64_t limit = max_mapping_size(*nvme);
  ASSERT_EQ(limit, kSegmentBytes - kPageSize);
  for (const std::uint64_t offset : {0x0ull, 0x200ull, 0x800ull, 0xe00ull}) {
    SCOPED_TRACE(::testing::Message() << "page offset " << offset);
    PlacedBuffer buffer(kMiB, offset, 6);
    auto pieces = map_split(*nvme, buffer.phys(), buffer.size(), Direction::to_device);
    ASSERT_TRUE(pieces) << pieces.error().message();
    expect_covers(*pieces, buffer.phys(), buffer.size(), limit);
    for (std::size_t i = 0; i < pieces->size(); ++i) {
      const ScatterEntry& piece = (*pieces)[i];
      EXPECT_EQ(piece.dma_address.value() & 0xfff, piece.phys.value() & 0xfff) << "piece " << i;
      if (i > 0) {
        EXPECT_EQ(piece.phys.value() & 0xfff, 0u) << "piece " << i << " starts on a page";
      }
      if (i + 1 < pieces->size()) {
        EXPECT_EQ((piece.phys.value() + piece.length) & 0xfff, 0u)
            << "piece " << i << " ends on a page";
      }
    }
    EXPECT_EQ(pieces->front().dma_address.value() & 0xfff, offset);
    const std::vector<std::byte> seen = device_bytes(*pieces);
    EXPECT_TRUE(same_bytes(seen.data(), buffer.data(), buffer.size()));
    ASSERT_TRUE(unmap_split(*nvme, *pieces, Direction::to_device));
    EXPECT_EQ(io_tlb->pool().used(), 0u);
  }
}

TEST(DmaSplit, WideMinAlignMaskCutsAtItsGranule) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(),
                         {.name = "dev", .min_align_mask = 0x3fff, .max_segment_size = 4 * kMiB});
  const std::uint64_t limit = max_mapping_size(*dev);
  ASSERT_EQ(limit, kSegmentBytes - 0x4000);
  PlacedBuffer buffer(kMiB, 0x1200, 7);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  expect_covers(*pieces, buffer.phys(), buffer.size(), limit);
  for (std::size_t i = 0; i < pieces->size(); ++i) {
    const ScatterEntry& piece = (*pieces)[i];
    EXPECT_EQ(piece.dma_address.value() & 0x3fff, piece.phys.value() & 0x3fff) << "piece " << i;
    if (i + 1 < pieces->size()) {
      EXPECT_EQ((piece.phys.value() + piece.length) & 0x3fff, 0u) << "piece " << i;
    }
  }
  const std::vector<std::byte> seen = device_bytes(*pieces);
  EXPECT_TRUE(same_bytes(seen.data(), buffer.data(), buffer.size()));
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSplit, MaxSegmentSizeBelowTheBounceLimitIsHonoured) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "nic"});  // the default 64 KiB
  PlacedBuffer buffer(kMiB, 0, 8);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  EXPECT_EQ(pieces->size(), 16u);
  expect_covers(*pieces, buffer.phys(), buffer.size(), 64 * kKiB);
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));

  // A limit that is not a multiple of the page: the cuts stay on pages.
  auto odd = make_device(io_tlb.get(), {.name = "odd", .max_segment_size = 0xffff});
  auto odd_pieces = map_split(*odd, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(odd_pieces) << odd_pieces.error().message();
  expect_covers(*odd_pieces, buffer.phys(), buffer.size(), 0xffff);
  for (std::size_t i = 0; i + 1 < odd_pieces->size(); ++i) {
    EXPECT_EQ((*odd_pieces)[i].length, 60 * kKiB) << "piece " << i;
  }
  const std::vector<std::byte> seen = device_bytes(*odd_pieces);
  EXPECT_TRUE(same_bytes(seen.data(), buffer.data(), buffer.size()));
  ASSERT_TRUE(unmap_split(*odd, *odd_pieces, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSplit, APieceThatFailsUndoesTheOthersAndIsNamed) {
  auto io_tlb = make_io_tlb(256);  // 512 KiB: two segments
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB, 0, 9);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device, Attr::no_warn);
  ASSERT_FALSE(pieces);
  EXPECT_EQ(pieces.error().code(), Errc::pool_full);
  const std::string& message = pieces.error().message();
  EXPECT_NE(message.find("piece 2 (offset 524288, 262144 bytes)"), std::string::npos) << message;
  EXPECT_EQ(io_tlb->pool().used(), 0u) << "the two pieces mapped first are unmapped again";
  EXPECT_EQ(dev->stats().live_bounced, 0u);
  EXPECT_EQ(dev->stats().map_failures, 1u);
  EXPECT_TRUE(dev->close());
}

TEST(DmaSplit, NonBouncingDeviceGetsDirectSegments) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  PlacedBuffer buffer(kMiB, 0x100, 10);

  auto wide = make_device(io_tlb.get(), {.name = "wide", .max_segment_size = 0xffffffff});
  auto whole = map_split(*wide, buffer.phys(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(whole) << whole.error().message();
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ(whole->front().dma_address.value(), buffer.phys().value());
  EXPECT_EQ(whole->front().dma_length, kMiB);
  EXPECT_EQ(wide->stats().live_direct, 1u);
  ASSERT_TRUE(unmap_split(*wide, *whole, Direction::bidirectional));
  EXPECT_TRUE(wide->close());

  auto nic = make_device(io_tlb.get(), {.name = "nic"});  // 64 KiB segments
  auto pieces = map_split(*nic, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  expect_covers(*pieces, buffer.phys(), buffer.size(), 64 * kKiB);
  for (const ScatterEntry& piece : *pieces) {
    EXPECT_EQ(piece.dma_address.value(), piece.phys.value());
  }
  EXPECT_EQ(nic->stats().live_direct, pieces->size());
  ASSERT_TRUE(unmap_split(*nic, *pieces, Direction::to_device));
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(nic->close());

  // A device with no pool at all maps the same way.
  auto bare = make_device(nullptr, {.name = "bare", .max_segment_size = 0xffffffff});
  auto bare_pieces = map_split(*bare, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(bare_pieces) << bare_pieces.error().message();
  EXPECT_EQ(bare_pieces->size(), 1u);
  ASSERT_TRUE(unmap_split(*bare, *bare_pieces, Direction::to_device));
}

TEST(DmaSplit, DirectPiecesAreCutAtTheSegmentBoundary) {
  auto io_tlb = make_io_tlb(1024, /*force=*/false);
  auto dev = make_device(
      io_tlb.get(), {.name = "dev", .max_segment_size = 0xffffffff, .seg_boundary_mask = 0xffff});
  PlacedBuffer buffer(kMiB, 0x800, 11);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  expect_covers(*pieces, buffer.phys(), buffer.size(), 64 * kKiB);
  for (const ScatterEntry& piece : *pieces) {
    const std::uint64_t first = piece.dma_address.value();
    const std::uint64_t last = first + piece.dma_length - 1;
    EXPECT_EQ(first >> 16, last >> 16) << std::hex << first << " " << last;
  }
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));
  EXPECT_TRUE(dev->close());
}

TEST(DmaSplit, EveryPieceGetsCacheMaintenance) {
  auto io_tlb = make_io_tlb(1024);
  std::vector<CacheOp> ops;
  DeviceConfig config{.name = "arm-dev", .max_segment_size = 4 * kMiB, .coherent = false};
  config.cache_hook = [&](CacheOp op, PhysAddr, std::uint64_t, Direction) { ops.push_back(op); };
  auto dev = make_device(io_tlb.get(), config);
  PlacedBuffer buffer(kMiB, 0, 12);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::bidirectional);
  ASSERT_TRUE(pieces) << pieces.error().message();
  EXPECT_EQ(ops, std::vector<CacheOp>(pieces->size(), CacheOp::for_device));
  ops.clear();
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::bidirectional));
  EXPECT_EQ(ops, std::vector<CacheOp>(pieces->size(), CacheOp::for_cpu));
}

TEST(DmaSplit, DebugChecksApplyToEveryPiece) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB, 0, 13);
  auto pieces = map_split(*dev, buffer.phys(), buffer.size(), Direction::to_device);
  ASSERT_TRUE(pieces) << pieces.error().message();
  const std::uint64_t errors = dev->stats().debug_errors;
  Status wrong = unmap_split(*dev, *pieces, Direction::from_device);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(dev->stats().debug_errors, errors + pieces->size());
  EXPECT_EQ(io_tlb->pool().used(), nr_slots(kMiB)) << "a refused unmap changes nothing";
  ASSERT_TRUE(unmap_split(*dev, *pieces, Direction::to_device));
  EXPECT_FALSE(unmap_split(*dev, *pieces, Direction::to_device)) << "double unmap";
  EXPECT_EQ(io_tlb->pool().used(), 0u);
}

TEST(DmaSplit, ZeroSizeAndNoDirectionAreRefused) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get());
  PlacedBuffer buffer(4096, 0, 14);
  auto empty = map_split(*dev, buffer.phys(), 0, Direction::to_device);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), Errc::invalid_argument);
  auto aimless = map_split(*dev, buffer.phys(), buffer.size(), Direction::none);
  ASSERT_FALSE(aimless);
  EXPECT_EQ(aimless.error().code(), Errc::invalid_argument);
  auto wrapping = map_split(*dev, PhysAddr(~std::uint64_t{0} - 100), 4096, Direction::to_device);
  ASSERT_FALSE(wrapping);
  EXPECT_EQ(wrapping.error().code(), Errc::invalid_argument);
  EXPECT_EQ(dev->stats().debug_errors, 3u);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  EXPECT_TRUE(dev->close());
}

TEST(DmaSplit, PlainMapStillRefusesMoreThanMaxMappingSize) {
  auto io_tlb = make_io_tlb(1024);
  auto dev = make_device(io_tlb.get(), {.name = "disk", .max_segment_size = 4 * kMiB});
  PlacedBuffer buffer(kMiB, 0, 15);
  auto too_big = map_page(*dev, buffer.phys(), max_mapping_size(*dev) + kSlotSize,
                          Direction::to_device, Attr::no_warn);
  EXPECT_FALSE(too_big) << "a single mapping never splits by itself";
  auto megabyte = map_page(*dev, buffer.phys(), kMiB, Direction::to_device, Attr::no_warn);
  EXPECT_FALSE(megabyte);
  EXPECT_EQ(io_tlb->pool().used(), 0u);
  auto fits = map_page(*dev, buffer.phys(), max_mapping_size(*dev), Direction::to_device);
  ASSERT_TRUE(fits) << fits.error().message();
  ASSERT_TRUE(unmap_page(*dev, *fits, max_mapping_size(*dev), Direction::to_device));
  EXPECT_TRUE(dev->close());
}

}  // namespace
}  // namespace swiotlb
