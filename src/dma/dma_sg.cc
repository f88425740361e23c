// Scatter-gather lists: each entry mapped on its own, as dma-direct does,
// with the segment checks the kernel's DMA debugging makes.
#include "swiotlb/dma/dma_api.h"

namespace swiotlb {

namespace {

Status check_segment(Device& dev, const ScatterEntry& entry) {
  const DeviceConfig& config = dev.config();
  if (entry.dma_length > config.max_segment_size) {
    return make_error(Errc::invalid_argument,
                      "device {}: scatter-gather segment of {} bytes is longer than its "
                      "max_segment_size {}",
                      dev.name(), entry.dma_length, config.max_segment_size);
  }
  const std::uint64_t first = entry.dma_address.value();
  const std::uint64_t last = first + entry.dma_length - 1;
  if (((first ^ last) & ~config.seg_boundary_mask) != 0) {
    return make_error(Errc::invalid_argument,
                      "device {}: scatter-gather segment [{:#x}, {:#x}] crosses its segment "
                      "boundary (mask {:#x})",
                      dev.name(), first, last, config.seg_boundary_mask);
  }
  return {};
}

}  // namespace

Result<std::size_t> map_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir, Attrs attrs) {
  for (std::size_t i = 0; i < sg.size(); ++i) {
    ScatterEntry& entry = sg[i];
    Result<DmaAddr> dma = map_page(dev, entry.phys, entry.length, dir, attrs);
    Status ok = dma ? Status{} : Status(std::move(dma).error());
    if (ok) {
      entry.dma_address = *dma;
      entry.dma_length = entry.length;
      ok = check_segment(dev, entry);
      if (!ok) {
        ok = dev.debug().record(ok.error());
        i += 1;  // this entry is mapped too and must be undone
      }
    }
    if (!ok) {
      // Undo without copying back: the device never saw these mappings.
      Status undone = unmap_sg(dev, sg.first(i), dir, attrs | Attr::skip_cpu_sync);
      (void)undone;  // they were mapped by this call a moment ago
      return ok.error();
    }
  }
  return sg.size();
}

Status unmap_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir, Attrs attrs) {
  Status first_error;
  for (ScatterEntry& entry : sg) {
    Status ok = unmap_page(dev, entry.dma_address, entry.dma_length, dir, attrs);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

Status sync_sg_for_cpu(Device& dev, std::span<ScatterEntry> sg, Direction dir) {
  Status first_error;
  for (ScatterEntry& entry : sg) {
    Status ok = sync_single_for_cpu(dev, entry.dma_address, entry.dma_length, dir);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

Status sync_sg_for_device(Device& dev, std::span<ScatterEntry> sg, Direction dir) {
  Status first_error;
  for (ScatterEntry& entry : sg) {
    Status ok = sync_single_for_device(dev, entry.dma_address, entry.dma_length, dir);
    if (!ok && first_error) {
      first_error = ok;
    }
  }
  return first_error;
}

}  // namespace swiotlb
