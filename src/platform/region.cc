// Regions: a backing (region_backing.h) put into the address space
// (region_mapping.h) and sealed into an immutable Region. Creation checks
// the request in the order a person would fix it: the spec itself, then the
// file, then alignment, then the modelled RAM, then the system's answer.
//
// Synchronization: none needed. A Region is built by one call and never
// changes afterwards; concurrent creations only meet in the kernel, which
// arbitrates the address space.
#include "swiotlb/platform/region.h"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <limits>
#include <string>

#include "region_backing.h"
#include "region_mapping.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/core/log.h"
#include "swiotlb/platform/machine_model.h"

namespace swiotlb {

// Turns a mapped backing into a Region; the Region takes the descriptor.
class RegionBuilder {
 public:
  static std::unique_ptr<Region> assemble(std::byte* base, std::size_t size, Backing backing,
                                          std::uint64_t offset,
                                          const std::optional<DmaAddr>& dma_base) {
    Region::Parts parts;
    parts.base = base;
    parts.size = size;
    parts.dma_base = dma_base.value_or(DmaAddr(PhysAddr::from_pointer(base).value()));
    parts.kind = backing.kind;
    parts.page_size = backing.page_size;
    parts.offset = offset;
    parts.fd = backing.fd.release();
    return std::unique_ptr<Region>(new Region(parts));
  }
};

namespace {

bool has_file(RegionKind kind) {
  return kind == RegionKind::file || kind == RegionKind::hugetlbfs || kind == RegionKind::device;
}

Status check_not_null(const std::optional<PhysAddr>& fixed) {
  if (fixed && fixed->value() == 0) {
    return make_error(Errc::invalid_argument, "fixed address 0 (null) cannot be mapped");
  }
  return Status::ok();
}

Status check_spec(const RegionSpec& spec) {
  if (spec.bytes == 0) {
    return make_error(Errc::invalid_argument, "a region needs at least one byte");
  }
  if (has_file(spec.kind) && spec.path.empty()) {
    return make_error(Errc::invalid_argument, "a {} region needs a path", to_string(spec.kind));
  }
  if (!has_file(spec.kind) && !spec.path.empty()) {
    return make_error(Errc::invalid_argument, "a {} region takes no path (given: {})",
                      to_string(spec.kind), spec.path);
  }
  if (spec.kind == RegionKind::device && spec.create) {
    return make_error(Errc::invalid_argument,
                      "a device region maps a device file that exists; it is never created ({})",
                      spec.path);
  }
  if (!has_file(spec.kind) && spec.offset != 0) {
    return make_error(Errc::invalid_argument, "a {} region takes no offset (given: {:#x})",
                      to_string(spec.kind), spec.offset);
  }
  return check_not_null(spec.fixed_address);
}

Result<Backing> open_backing(const RegionSpec& spec) {
  switch (spec.kind) {
    case RegionKind::anonymous:
      return anonymous_backing();
    case RegionKind::memfd:
      return open_memfd();
    case RegionKind::file:
    case RegionKind::hugetlbfs:
      return open_file(spec.path, spec.kind, spec.create);
    case RegionKind::device:
      return open_device(spec.path);
  }
  return make_error(Errc::invalid_argument, "unknown region kind {}", static_cast<int>(spec.kind));
}

// `bytes` rounded up to whole pages of the backing, unless that overflows.
Result<std::size_t> round_to_pages(std::size_t bytes, const Backing& backing) {
  const std::size_t page = backing.page_size;
  if (bytes > std::numeric_limits<std::size_t>::max() - (page - 1)) {
    return make_error(Errc::invalid_argument, "a region of {} bytes cannot be rounded to pages",
                      bytes);
  }
  return static_cast<std::size_t>(kernel_align(bytes, page));
}

Status check_alignment(const Backing& backing, std::uint64_t offset,
                       const std::optional<PhysAddr>& fixed) {
  if (Status ok = check_page_aligned(backing, "offset", offset); !ok) {
    return ok;
  }
  if (fixed) {
    return check_page_aligned(backing, "fixed address", fixed->value());
  }
  return Status::ok();
}

std::string list_banks(const MachineModel& machine) {
  std::string out;
  for (const MemoryBank& bank : machine.banks()) {
    out += fmt::format("{}[{:#x}, {:#x})", out.empty() ? "" : " ", bank.start.value(),
                       bank.end().value());
  }
  return out;
}

// A fixed address in a modelled machine stands for physical memory there,
// so the whole region must fit in the RAM bank the address is in.
Status check_in_machine(const RegionSpec& spec, std::size_t size) {
  if (spec.machine == nullptr || !spec.fixed_address) {
    return Status::ok();
  }
  const MachineModel& machine = *spec.machine;
  const PhysAddr addr = *spec.fixed_address;
  const std::optional<std::size_t> bank = machine.bank_of(addr);
  if (!bank) {
    return make_error(Errc::out_of_range,
                      "fixed address {:#x} is outside the modelled RAM (banks: {})", addr.value(),
                      list_banks(machine));
  }
  const MemoryBank& range = machine.banks()[*bank];
  const std::uint64_t room = range.end() - addr;
  if (room < size) {
    return make_error(Errc::out_of_range,
                      "RAM bank {} [{:#x}, {:#x}) is too small for the region: {} bytes from "
                      "fixed address {:#x} to its end, the region needs {}",
                      *bank, range.start.value(), range.end().value(), room, addr.value(), size);
  }
  return Status::ok();
}

// Gives the file its final size: a memfd is sized and sealed, a file grown
// when the spec allows it.
Status prepare(const Backing& backing, const RegionSpec& spec, std::size_t size) {
  switch (backing.kind) {
    case RegionKind::anonymous:
      return Status::ok();
    case RegionKind::memfd:
      return seal_memfd(backing, size);
    case RegionKind::file:
    case RegionKind::hugetlbfs:
      return fit_file(backing, spec.offset, size, spec.create);
    case RegionKind::device:
      return backing.sized ? fit_file(backing, spec.offset, size, false) : Status::ok();
  }
  return Status::ok();
}

// Everything between opening the backing and mapping it, in the order the
// file header gives.
Status make_ready(const Backing& backing, const RegionSpec& spec, std::size_t size) {
  if (Status ok = check_alignment(backing, spec.offset, spec.fixed_address); !ok) {
    return ok;
  }
  if (Status ok = check_in_machine(spec, size); !ok) {
    return ok;
  }
  return prepare(backing, spec, size);
}

MapRequest map_request(const Backing& backing, std::uint64_t offset, std::size_t size) {
  MapRequest request;
  request.size = size;
  request.fd = backing.fd.get();
  request.offset = offset;
  request.reserve = backing.kind == RegionKind::hugetlbfs;
  request.page_size = backing.page_size;
  request.what = backing.name;
  return request;
}

// The fixed address when there is one, else (or, with the fallback, when
// the system refuses it) wherever `placement` says.
Result<std::byte*> place(const RegionSpec& spec, const MapRequest& request) {
  if (!spec.fixed_address) {
    return map_anywhere(request, spec.placement);
  }
  Result<std::byte*> fixed = map_fixed(request, *spec.fixed_address);
  if (fixed || !spec.fallback_anywhere) {
    return fixed;
  }
  Result<std::byte*> elsewhere = map_anywhere(request, spec.placement);
  if (elsewhere) {
    log_warning(
        fmt::format("could not place {} ({} bytes) at {:#x}, allocating elsewhere: at {} "
                    "({})",
                    request.what, request.size, spec.fixed_address->value(),
                    static_cast<void*>(*elsewhere), fixed.error().message()));
  }
  return elsewhere;
}

}  // namespace

std::string_view to_string(RegionKind kind) {
  switch (kind) {
    case RegionKind::anonymous:
      return "anonymous";
    case RegionKind::memfd:
      return "memfd";
    case RegionKind::file:
      return "file";
    case RegionKind::hugetlbfs:
      return "hugetlbfs";
    case RegionKind::device:
      return "device";
  }
  return "unknown";
}

Result<std::unique_ptr<Region>> Region::anonymous(std::size_t bytes, RegionPlacement placement) {
  return create({.kind = RegionKind::anonymous, .bytes = bytes, .placement = placement});
}

Result<std::unique_ptr<Region>> Region::create(const RegionSpec& spec) {
  if (Status ok = check_spec(spec); !ok) {
    return ok.error();
  }
  Result<Backing> backing = open_backing(spec);
  if (!backing) {
    return std::move(backing).error();
  }
  Result<std::size_t> size = round_to_pages(spec.bytes, *backing);
  if (!size) {
    return std::move(size).error();
  }
  if (Status ready = make_ready(*backing, spec, *size); !ready) {
    return ready.error();
  }
  Result<std::byte*> base = place(spec, map_request(*backing, spec.offset, *size));
  if (!base) {
    return std::move(base).error();
  }
  return RegionBuilder::assemble(*base, *size, std::move(*backing), spec.offset, spec.dma_base);
}

Result<std::unique_ptr<Region>> Region::attach(const AttachSpec& spec) {
  if (spec.bytes == 0) {
    return make_error(Errc::invalid_argument, "attaching a region needs at least one byte");
  }
  if ((spec.fd >= 0) == !spec.path.empty()) {
    return make_error(Errc::invalid_argument,
                      "attach takes either a descriptor or a path (given fd {}, path \"{}\")",
                      spec.fd, spec.path);
  }
  if (Status ok = check_not_null(spec.fixed_address); !ok) {
    return ok.error();
  }
  Result<Backing> backing =
      spec.fd >= 0 ? adopt_fd(spec.fd) : open_file(spec.path, RegionKind::file, false);
  if (!backing) {
    return std::move(backing).error();
  }
  Result<std::size_t> size = round_to_pages(spec.bytes, *backing);
  if (!size) {
    return std::move(size).error();
  }
  if (Status ok = check_alignment(*backing, spec.offset, spec.fixed_address); !ok) {
    return ok.error();
  }
  if (Status ok = fit_file(*backing, spec.offset, *size, false); !ok) {
    return ok.error();
  }
  const MapRequest request = map_request(*backing, spec.offset, *size);
  Result<std::byte*> base = spec.fixed_address ? map_fixed(request, *spec.fixed_address)
                                               : map_anywhere(request, RegionPlacement::anywhere);
  if (!base) {
    return std::move(base).error();
  }
  return RegionBuilder::assemble(*base, *size, std::move(*backing), spec.offset, spec.dma_base);
}

Region::Region(const Parts& parts)
    : base_(parts.base),
      size_(parts.size),
      dma_base_(parts.dma_base),
      kind_(parts.kind),
      fd_(parts.fd),
      offset_(parts.offset),
      page_size_(parts.page_size) {}

Region::~Region() {
  munmap(base_, size_);
  if (fd_ >= 0) {
    close(fd_);
  }
}

}  // namespace swiotlb
