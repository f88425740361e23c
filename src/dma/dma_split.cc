// Split mappings: one CPU range larger than a bounce buffer can be, mapped
// as a list of pieces that each fit the device's limits.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <utility>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb {

namespace {

// The coarsest alignment worth cutting at: the device's min_align_mask
// granule, and at least a page, so that every piece but the first starts and
// every piece but the last ends where a page-granular device may start and
// end a segment.
std::uint64_t cut_granule(const Device& dev) {
  const std::uint64_t bits = dev.config().min_align_mask | (kPageSize - 1);
  const auto width = std::bit_width(bits);  // int or the operand type, by library version
  return width < 64 ? std::uint64_t{1} << width : kPageSize;
}

// Where the piece that starts at `start` ends, in a range that ends at `end`,
// for pieces of at most `limit` bytes: the furthest multiple of `granule`,
// else of a page, that the limit reaches; the limit itself when neither
// leaves the piece a byte.
std::uint64_t cut(std::uint64_t start, std::uint64_t end, std::uint64_t limit,
                  std::uint64_t granule) {
  if (end - start <= limit) {
    return end;
  }
  const std::uint64_t furthest = start + limit;  // below end, so no overflow
  for (const std::uint64_t align : {granule, kPageSize}) {
    const std::uint64_t aligned = furthest & ~(align - 1);
    if (aligned > start) {
      return aligned;
    }
  }
  return furthest;
}

// Whether map_page would map [phys, phys + size) directly: the decision of
// dma-direct (see map_page), for sizing the piece before it is mapped. Behind
// an IOMMU the domain chooses the addresses, so nothing is known beforehand.
bool maps_directly(const Device& dev, PhysAddr phys, std::uint64_t size) {
  if (dev.config().iommu) {
    return false;
  }
  const IoTlb* io_tlb = dev.io_tlb();
  if (io_tlb != nullptr && io_tlb->force_bounce()) {
    return false;
  }
  return dev.dma_capable(dev.phys_to_dma(phys, size), size);
}

// The largest bounce buffer the device can get: what max_mapping_size()
// says for a device that bounces. Needed on its own because a device that
// is neither addressing limited nor forced still bounces a buffer its dma
// ranges or frame translator leave out of reach, and max_mapping_size()
// calls such a device unbounded, as the kernel does.
std::uint64_t bounce_limit(const Device& dev) {
  const std::uint64_t min_align = dev.config().min_align_mask;
  const std::uint64_t skipped = min_align != 0 ? kernel_align(min_align, kSlotSize) : 0;
  return skipped < kSegmentBytes ? kSegmentBytes - skipped : 0;
}

// A direct piece is where the device sees its CPU range, so it is cut where
// its device addresses would cross the segment boundary (a bounced piece's
// slots never cross it: the slot search sees to that).
std::uint64_t trim_to_boundary(const Device& dev, std::uint64_t start, std::uint64_t length) {
  const std::uint64_t mask = dev.config().seg_boundary_mask;
  const std::uint64_t first = dev.phys_to_dma(PhysAddr(start), length).value();
  const std::uint64_t room = mask - (first & mask);  // bytes after `first` in its segment
  return length - 1 > room ? room + 1 : length;
}

// The length of the piece that starts at `start`.
std::uint64_t piece_length(const Device& dev, std::uint64_t start, std::uint64_t end,
                           std::uint64_t limit, std::uint64_t granule) {
  for (;;) {
    const std::uint64_t length = cut(start, end, limit, granule) - start;
    if (maps_directly(dev, PhysAddr(start), length)) {
      // Any part of a reachable range is reachable, so the trimmed piece
      // stays direct.
      return trim_to_boundary(dev, start, length);
    }
    const std::uint64_t bounce = bounce_limit(dev);
    if (dev.config().iommu || dev.io_tlb() == nullptr || bounce == 0 || limit <= bounce) {
      return length;  // map_page decides, and says why if it cannot
    }
    limit = bounce;
  }
}

// The segment check map_sg makes, for a piece whose addresses the device
// did not choose in advance (an IOVA).
Status check_piece(const Device& dev, DmaAddr dma, std::uint64_t length) {
  const std::uint64_t mask = dev.config().seg_boundary_mask;
  const std::uint64_t first = dma.value();
  const std::uint64_t last = first + (length - 1);
  if (((first ^ last) & ~mask) != 0) {
    return make_error(Errc::invalid_argument,
                      "device {}: segment [{:#x}, {:#x}] crosses its segment boundary (mask {:#x})",
                      dev.name(), first, last, mask);
  }
  return {};
}

[[gnu::cold]] Error piece_error(const Device& dev, PhysAddr phys, std::uint64_t size,
                                std::size_t index, std::uint64_t offset, std::uint64_t length,
                                const Error& cause) {
  return make_error(cause.code(),
                    "device {}: split mapping of {:#x}+{}: piece {} (offset {}, {} bytes) failed "
                    "and the {} before it were unmapped: {}",
                    dev.name(), phys.value(), size, index, offset, length, index, cause.message());
}

}  // namespace

Result<std::vector<ScatterEntry>> map_split(Device& dev, PhysAddr phys, std::uint64_t size,
                                            Direction dir, Attrs attrs) {
  if (dir == Direction::none) {
    return dev.debug().record(make_error(
        Errc::invalid_argument, "device {}: a split mapping needs a direction", dev.name()));
  }
  if (size == 0) {
    return dev.debug().record(
        make_error(Errc::invalid_argument, "device {}: a split mapping of 0 bytes", dev.name()));
  }
  if (size > kInvalidAddress - phys.value()) {
    return dev.debug().record(make_error(Errc::invalid_argument,
                                         "device {}: split mapping {:#x}+{} wraps around the "
                                         "address space",
                                         dev.name(), phys.value(), size));
  }
  // Pieces go into ScatterEntry lengths, which max_segment_size (32 bits)
  // bounds.
  const std::uint64_t limit =
      std::min<std::uint64_t>(dev.config().max_segment_size, max_mapping_size(dev));
  if (limit == 0) {
    return dev.debug().record(make_error(Errc::invalid_argument,
                                         "device {}: its min_align_mask {:#x} leaves no room "
                                         "for a bounce buffer",
                                         dev.name(), dev.config().min_align_mask));
  }
  const std::uint64_t granule = cut_granule(dev);
  const std::uint64_t end = phys.value() + size;

  std::vector<ScatterEntry> pieces;
  pieces.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(size / limit + 2, 1024)));
  for (std::uint64_t start = phys.value(); start < end;) {
    const std::uint64_t length = piece_length(dev, start, end, limit, granule);
    const auto length32 = static_cast<std::uint32_t>(length);  // at most limit
    const std::size_t index = pieces.size();
    Result<DmaAddr> dma = map_page(dev, PhysAddr(start), length, dir, attrs);
    Status ok;
    if (dma) {
      // Listed before the check, so that a refused piece is undone with the rest.
      pieces.push_back({PhysAddr(start), length32, *dma, length32});
      ok = check_piece(dev, *dma, length);
    } else {
      ok = std::move(dma).error();
    }
    if (!ok) {
      // The device never saw these mappings: nothing to copy back.
      Status undone = unmap_split(dev, pieces, dir, attrs | Attr::skip_cpu_sync);
      (void)undone;  // each was mapped by this call a moment ago
      return piece_error(dev, phys, size, index, start - phys.value(), length, ok.error());
    }
    start += length;
  }
  return pieces;
}

Status unmap_split(Device& dev, std::span<const ScatterEntry> pieces, Direction dir, Attrs attrs) {
  Status first_error;
  for (const ScatterEntry& piece : pieces) {
    Status ok = unmap_page(dev, piece.dma_address, piece.dma_length, dir, attrs);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

Status sync_split_for_cpu(Device& dev, std::span<const ScatterEntry> pieces, Direction dir) {
  Status first_error;
  for (const ScatterEntry& piece : pieces) {
    Status ok = sync_single_for_cpu(dev, piece.dma_address, piece.dma_length, dir);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

Status sync_split_for_device(Device& dev, std::span<const ScatterEntry> pieces, Direction dir) {
  Status first_error;
  for (const ScatterEntry& piece : pieces) {
    Status ok = sync_single_for_device(dev, piece.dma_address, piece.dma_length, dir);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

}  // namespace swiotlb
