// What a Region is made of, as plain values: the kind of memory behind it,
// its size, where it must sit, and the address the device sees it at.
//
// A RegionSpec asks Region::create() for new memory; an AttachSpec asks
// Region::attach() to map memory that already exists (a memfd handed over by
// a peer, a file another process filled) a second time, usually at the
// address its creator used, so that addresses stored inside it stay valid.
// Both are filled with designated initializers:
//
//   Region::create({.kind = RegionKind::memfd, .bytes = 64 << 20,
//                   .fixed_address = PhysAddr(0x7e0000000000)});
//
// Thread safety: plain values with no synchronization of their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"

namespace swiotlb {

class MachineModel;

enum class RegionKind : std::uint8_t {
  anonymous,  // private zeroed memory of this process; gone with it
  memfd,      // an anonymous shared file (memfd_create) whose descriptor can be
              // handed to a peer process; sealed so that no one can resize it
  file,       // a named file at an offset, mapped shared; outlives the process
  hugetlbfs,  // a named file on a hugetlbfs mount: backed by huge pages, so the
              // offset, the size and a fixed address follow the huge page size
  device,     // a device file that supports mmap, mapped shared at an offset:
              // device memory (a UIO BAR, a DAX device, RAM set aside and
              // reached through /dev/mem). Opened as it is, never created or
              // resized; a regular file standing in for one (a test's memfd
              // through /proc/self/fd) must already be long enough.
              // docs/device-memory.md
};

SWIOTLB_API std::string_view to_string(RegionKind kind);

enum class RegionPlacement : std::uint8_t {
  anywhere,  // wherever the system puts it
  low,       // below 2 GiB where the system allows (MAP_32BIT on x86-64), so
             // that a device with a 32-bit mask reaches it at its own address,
             // as the kernel places its default pool in low memory. Not under
             // ThreadSanitizer, which reserves those addresses. A preference:
             // when low memory is refused the region goes anywhere.
};

struct RegionSpec {
  RegionKind kind = RegionKind::anonymous;

  // At least one byte; rounded up to whole pages (whole huge pages on
  // hugetlbfs). Region::size() reports the rounded size.
  std::size_t bytes = 0;

  // file, hugetlbfs and device only: the file, and where in it the region
  // starts. The offset must be a multiple of the page size (of the huge page
  // size on hugetlbfs). With `create` (not for a device), a missing file is
  // created (mode 0600) and a short one grown to offset + size; without it,
  // a file too short for the region is an error, never silently extended.
  std::string path;
  std::uint64_t offset = 0;
  bool create = false;

  // The CPU-side address the region must start at (the kernel's
  // swiotlb=addr=, seed 000). Must be aligned like the offset. Mapped without
  // replacing anything: an address already in use is an error that says what
  // holds it, unless `fallback_anywhere` is set, in which case the region is
  // placed by `placement` instead and a warning is logged, as the kernel does
  // when it cannot remap the address it was given. The fallback covers the
  // system refusing the address, never invalid input (misalignment, an
  // address outside the machine's RAM, a short file).
  std::optional<PhysAddr> fixed_address;
  bool fallback_anywhere = false;

  // Where a region without a fixed address goes.
  RegionPlacement placement = RegionPlacement::anywhere;

  // The address the device sees the first byte at (its bus address, as a
  // BAR or a reserved range has one); by default the CPU-side start address
  // (an identity-mapped device). Where the CPU maps the region
  // (`fixed_address`, `placement`) is a separate matter.
  std::optional<DmaAddr> dma_base;

  // When set, a fixed address must lie, with the whole region, inside one
  // RAM bank of this modelled machine: the region stands for memory at that
  // physical address. Not owned; only read during create().
  const MachineModel* machine = nullptr;
};

struct AttachSpec {
  // The memory to map: a descriptor (a memfd or an open file; duplicated, so
  // the caller keeps and closes its own) or, when fd is -1, a file path.
  int fd = -1;
  std::string path;

  // Where the region starts in the file, and its size, as at creation. The
  // file must already hold offset + size bytes; attach never resizes it.
  // A memfd from Region::create() is sealed so that it cannot shrink; a
  // file is not, and whoever truncates it under a mapping turns accesses to
  // the lost pages into SIGBUS, which no check here can prevent.
  std::uint64_t offset = 0;
  std::size_t bytes = 0;

  // The address to map at, normally the creator's start(). No fallback: an
  // address in use is an error, since data inside the region may point into
  // it. Without one, the system chooses.
  std::optional<PhysAddr> fixed_address;

  std::optional<DmaAddr> dma_base;  // as in RegionSpec
};

// Parses the device-memory word that sits beside the kernel's swiotlb=
// (docs/device-memory.md):
//
//   swiotlb_devmem=<path>[,offset=<bytes>][,dma_base=<bus address>]
//
// into a RegionSpec of kind device (its size comes from swiotlb=<nslabs>;
// swiotlb=...,addr= keeps its meaning: where the CPU maps the pool). The
// word's name may be left out. Numbers take 0x for hexadecimal and a K, M
// or G suffix, as the kernel's memparse. Errors (Errc::parse): no path, an
// unknown key, a key given twice, a number that does not parse or overflows.
SWIOTLB_API Result<RegionSpec> parse_device_memory(std::string_view text);

}  // namespace swiotlb
