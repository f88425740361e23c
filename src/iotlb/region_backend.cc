// The real backend: pool memory in regions of the configured window's kind.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/backend.h"

namespace swiotlb {

namespace {

class RegionBackend final : public IoTlbBackend {
 public:
  explicit RegionBackend(const RegionBackendOptions& options) : options_(options) {}

  Result<PoolMemory> allocate(const PoolMemoryRequest& request) override {
    Result<std::unique_ptr<Region>> region = make(request);
    if (!region) {
      return std::move(region).error();
    }
    PoolMemory memory;
    memory.start = (*region)->start();
    memory.bytes = (*region)->size();
    memory.data = (*region)->data();
    memory.token = (*region)->offset();
    memory.region = std::move(*region);
    if (request.kind == PoolKind::configured && request.tier == 0) {
      std::lock_guard guard(lock_);
      window_ = Window{memory.region->kind(), memory.region->offset() + memory.region->size(),
                       memory.region->page_size()};
    }
    return memory;
  }

  void release(PoolMemory memory) noexcept override {
    if (memory.region == nullptr || !in_window_file(memory)) {
      return;  // unmapped (and closed) with the region
    }
    std::lock_guard guard(lock_);
    free_ranges_.emplace(memory.region->size(), memory.token);
  }

  Result<PoolMemory> reattach(const PoolMemoryRequest& request, PhysAddr start,
                              std::uint64_t token) override {
    if (!file_window()) {
      return make_error(Errc::invalid_argument,
                        "the {} pool at {:#x} cannot be attached again: only a window in a file "
                        "named by its path keeps pools beside the default one",
                        request.name, start.value());
    }
    AttachSpec spec;
    spec.path = options_.region->path;
    spec.offset = token;
    spec.bytes = request.bytes;
    spec.fixed_address = start;
    Result<std::unique_ptr<Region>> region = Region::attach(spec);
    if (!region) {
      return make_error(region.error().code(),
                        "the {} pool at {:#x} ({} bytes at offset {:#x} of "
                        "{}): {}",
                        request.name, start.value(), request.bytes, token, spec.path,
                        region.error().message());
    }
    PoolMemory memory;
    memory.start = (*region)->start();
    memory.bytes = (*region)->size();
    memory.data = (*region)->data();
    memory.token = (*region)->offset();
    memory.region = std::move(*region);
    std::lock_guard guard(lock_);
    next_offset_ = std::max(next_offset_, memory.token + memory.bytes);
    return memory;
  }

  Clock::time_point now() const override { return Clock::now(); }
  Maintenance maintenance() const override { return Maintenance::worker_thread; }

 private:
  struct Window {
    RegionKind kind = RegionKind::anonymous;
    std::uint64_t end = 0;  // past the window in its file
    std::size_t page_size = 0;
  };

  // A grown or transient pool of a file window lives in the window's file.
  bool file_window() const {
    return options_.region &&
           (options_.region->kind == RegionKind::file ||
            options_.region->kind == RegionKind::hugetlbfs) &&
           !options_.region->path.empty();
  }
  bool in_window_file(const PoolMemory& memory) const {
    return file_window() && memory.region->kind() == options_.region->kind &&
           memory.token >= options_.region->offset;
  }

  Result<std::unique_ptr<Region>> make(const PoolMemoryRequest& request) {
    const RegionSpec window = options_.region.value_or(RegionSpec{});
    // A persistent IoTlb keeps every pool in the window's file, the high
    // pool and those grown for it included.
    const bool all_in_file = options_.persistent && file_window();
    if (request.kind == PoolKind::configured && (request.tier == 0 || !all_in_file)) {
      return configured(request);
    }
    if (request.tier != 0 && !all_in_file) {
      return Region::anonymous(request.bytes, RegionPlacement::anywhere);
    }
    RegionKind kind = window.kind;
    {
      std::lock_guard guard(lock_);
      kind = window_ ? window_->kind : kind;
    }
    if (kind == RegionKind::anonymous) {
      return Region::anonymous(request.bytes,
                               options_.region ? window.placement : options_.placement);
    }
    if (kind == RegionKind::memfd || !file_window()) {
      // A new memfd beside the window (also for an attached memfd window,
      // whose file has no path to extend).
      RegionSpec spec;
      spec.kind = RegionKind::memfd;
      spec.bytes = request.bytes;
      spec.placement = window.placement;
      return Region::create(spec);
    }
    return in_file(request, window);
  }

  Result<std::unique_ptr<Region>> configured(const PoolMemoryRequest& request) {
    if (request.tier != 0) {
      RegionSpec spec;
      spec.bytes = request.bytes;
      return Region::create(spec);
    }
    if (options_.attach) {
      AttachSpec spec = *options_.attach;
      if (spec.bytes == 0) {
        spec.bytes = request.bytes;
      }
      if (spec.bytes < request.bytes) {
        return make_error(Errc::invalid_argument,
                          "the {} pool needs {} bytes; the region to attach has {}", request.name,
                          request.bytes, spec.bytes);
      }
      return Region::attach(spec);
    }
    RegionSpec spec = options_.region.value_or(RegionSpec{});
    if (!options_.region) {
      spec.placement = options_.placement;
    }
    spec.bytes = request.bytes;
    return Region::create(spec);
  }

  // Further ranges of the window's file: a range given back of the same
  // size if there is one, else the file's end (the file grows).
  Result<std::unique_ptr<Region>> in_file(const PoolMemoryRequest& request,
                                          const RegionSpec& window) {
    std::lock_guard guard(lock_);
    const std::size_t page = window_ && window_->page_size != 0 ? window_->page_size : kPageSize;
    const std::uint64_t bytes = (request.bytes + page - 1) / page * page;
    RegionSpec spec = window;
    spec.bytes = bytes;
    spec.fixed_address.reset();  // a window at a fixed address grows anywhere
    spec.dma_base.reset();
    spec.create = true;
    spec.machine = nullptr;
    if (auto it = free_ranges_.find(bytes); it != free_ranges_.end()) {
      spec.offset = it->second;
      Result<std::unique_ptr<Region>> region = Region::create(spec);
      if (region) {
        free_ranges_.erase(it);
      }
      return region;
    }
    const std::uint64_t end = window_ ? window_->end : window.offset + window.bytes;
    spec.offset = (std::max(end, next_offset_) + page - 1) / page * page;
    Result<std::unique_ptr<Region>> region = Region::create(spec);
    if (region) {
      next_offset_ = spec.offset + (*region)->size();
    }
    return region;
  }

  const RegionBackendOptions options_;
  std::mutex lock_;
  std::optional<Window> window_;                             // guarded by lock_
  std::uint64_t next_offset_ = 0;                            // guarded by lock_
  std::multimap<std::uint64_t, std::uint64_t> free_ranges_;  // bytes -> offset; lock_
};

}  // namespace

std::shared_ptr<IoTlbBackend> make_region_backend(const RegionBackendOptions& options) {
  return std::make_shared<RegionBackend>(options);
}

}  // namespace swiotlb
