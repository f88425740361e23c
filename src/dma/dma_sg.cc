// Scatter-gather lists: each entry mapped on its own, as dma-direct does,
// with the segment checks the kernel's DMA debugging makes.
#include <atomic>
#include <memory>
#include <optional>

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

// Records a mapped entry and checks its segment; on failure the entry is
// unmapped again (skip_cpu_sync) and the error counted.
Status finish_entry(Device& dev, ScatterEntry& entry, DmaAddr dma, Direction dir, Attrs attrs) {
  entry.dma_address = dma;
  entry.dma_length = entry.length;
  Status ok = check_segment(dev, entry);
  if (!ok) {
    Status undone = unmap_page(dev, dma, entry.dma_length, dir, attrs | Attr::skip_cpu_sync);
    (void)undone;  // mapped a moment ago by this very call
    return dev.debug().record(ok.error());
  }
  return {};
}

// Undoes the first `mapped` entries without copying back: the device never
// saw these mappings.
void undo_entries(Device& dev, std::span<ScatterEntry> sg, std::size_t mapped, Direction dir,
                  Attrs attrs) {
  Status undone = unmap_sg(dev, sg.first(mapped), dir, attrs | Attr::skip_cpu_sync);
  (void)undone;  // they were mapped by this call a moment ago
}

// Maps every entry with `map_one`, in order; all or nothing.
template <class MapOne>
Result<std::size_t> map_entries(Device& dev, std::span<ScatterEntry> sg, Direction dir, Attrs attrs,
                                MapOne map_one) {
  for (std::size_t i = 0; i < sg.size(); ++i) {
    ScatterEntry& entry = sg[i];
    Result<DmaAddr> dma = map_one(entry);
    Status ok = dma ? finish_entry(dev, entry, *dma, dir, attrs) : Status(std::move(dma).error());
    if (!ok) {
      undo_entries(dev, sg, i, dir, attrs);
      return ok.error();
    }
  }
  return sg.size();
}

// A scatter-gather list being mapped entry by entry through the queue.
// Each entry's outcome meets the code that asked for it: whichever of the
// caller (back from map_page_queued) and the callback comes second goes on
// with the next entry, so a list whose entries all map at once runs in a
// loop on the caller's thread, and one that waits goes on on the worker's.
struct QueuedSg {
  // A constructor, not aggregate initialization through make_shared (which
  // not every compiler of C++20 takes).
  QueuedSg(Device& device, std::span<ScatterEntry> entries, Direction direction, Attrs attributes,
           std::optional<DmaDeadline> until, DmaSgCallback callback)
      : dev(device),
        sg(entries),
        dir(direction),
        attrs(attributes),
        deadline(until),
        done(std::move(callback)) {}

  Device& dev;
  std::span<ScatterEntry> sg;
  Direction dir;
  Attrs attrs;
  std::optional<DmaDeadline> deadline;
  DmaSgCallback done;
  std::size_t next = 0;
  std::optional<Result<DmaAddr>> outcome;  // of entry `next`
  std::atomic<int> arrived{0};             // of the caller and the callback, for entry `next`
};

// Goes on from entry st->next, whose outcome is in st->outcome (when
// `have_outcome`). Returns when the list is finished (false) or an entry
// waits and its callback goes on (true).
bool run_queued_sg(const std::shared_ptr<QueuedSg>& st, bool have_outcome) {
  for (;;) {
    if (have_outcome) {
      ScatterEntry& entry = st->sg[st->next];
      Result<DmaAddr> dma = std::move(*st->outcome);
      st->outcome.reset();
      Status ok = dma ? finish_entry(st->dev, entry, *dma, st->dir, st->attrs)
                      : Status(std::move(dma).error());
      if (!ok) {
        undo_entries(st->dev, st->sg, st->next, st->dir, st->attrs);
        st->done(ok.error());
        return false;
      }
      ++st->next;
    }
    if (st->next == st->sg.size()) {
      st->done(st->sg.size());
      return false;
    }
    ScatterEntry& entry = st->sg[st->next];
    st->arrived.store(0, std::memory_order_relaxed);
    map_page_queued(
        st->dev, entry.phys, entry.length, st->dir, st->deadline,
        [st](Result<DmaAddr> dma) {
          st->outcome = std::move(dma);
          // The second to arrive goes on (acq_rel: it sees the other's writes).
          if (st->arrived.fetch_add(1, std::memory_order_acq_rel) == 1) {
            (void)run_queued_sg(st, true);
          }
        },
        st->attrs);
    if (st->arrived.fetch_add(1, std::memory_order_acq_rel) != 1) {
      return true;  // the callback has not run yet: it goes on
    }
    have_outcome = true;
  }
}

}  // namespace

Result<std::size_t> map_sg(Device& dev, std::span<ScatterEntry> sg, Direction dir, Attrs attrs) {
  return map_entries(dev, sg, dir, attrs, [&](const ScatterEntry& entry) {
    return map_page(dev, entry.phys, entry.length, dir, attrs);
  });
}

Result<std::size_t> map_sg_until(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                                 DmaDeadline deadline, Attrs attrs) {
  return map_entries(dev, sg, dir, attrs, [&](const ScatterEntry& entry) {
    return map_page_until(dev, entry.phys, entry.length, dir, deadline, attrs);
  });
}

DmaQueued map_sg_queued(Device& dev, std::span<ScatterEntry> sg, Direction dir,
                        std::optional<DmaDeadline> deadline, DmaSgCallback done, Attrs attrs) {
  auto st = std::make_shared<QueuedSg>(dev, sg, dir, attrs, deadline, std::move(done));
  return run_queued_sg(st, false) ? DmaQueued::queued : DmaQueued::done;
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
