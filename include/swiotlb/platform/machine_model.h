// A modelled machine: the physical address map of a board's RAM banks, for
// tests and the simulator, so that pools, devices and IOVA domains can be
// exercised at the addresses a real board has (banks at 576 GiB and above)
// on any host.
//
// Each bank is backed lazily by its own anonymous MAP_NORESERVE mapping,
// somewhere in the host's address space (not at the bank's address): an
// address map of hundreds of GiB costs address space only, and host memory
// only for the pages that are touched. A model physical address becomes a
// host pointer through host_pointer(); a range must lie inside one bank,
// because neighbouring banks are not neighbours in host memory.
//
// allocate() and free() hand out ranges of a bank (first fit, with the free
// runs merged again on free), for a pool or a buffer that must sit in a
// particular bank.
//
// Thread safety: the bank table and the host mappings are fixed at creation
// and only read afterwards, so host_pointer(), contains() and bank_of() are
// lock-free and may run on any thread. allocate() and free() serialize on a
// mutex that guards only the per-bank free lists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "swiotlb/core/address.h"
#include "swiotlb/core/error.h"
#include "swiotlb/platform/address_space.h"

namespace swiotlb {

// A bank of RAM in the modelled physical address map: [start, start + size).
struct MemoryBank {
  PhysAddr start;
  std::uint64_t size = 0;

  PhysAddr end() const { return start + size; }
  bool operator==(const MemoryBank&) const = default;
};

// The banks of the iProc/Stingray board of seed 003: 2 GiB @ 2 GiB,
// 14 GiB @ 34 GiB, 16 GiB @ 576 GiB and 16 GiB @ 640 GiB.
std::vector<MemoryBank> iproc_stingray_banks();

class MachineModel final : public AddressSpace {
 public:
  // Builds a machine with these banks (any order; kept sorted by address).
  // Fails when there are none, when a bank is empty, not page-aligned or
  // runs past the top of the address space, when two banks overlap (the
  // message names both), or when the host refuses the backing mappings.
  static Result<std::unique_ptr<MachineModel>> create(std::vector<MemoryBank> banks);

  // create(iproc_stingray_banks()).
  static Result<std::unique_ptr<MachineModel>> iproc_stingray();

  ~MachineModel() override;
  MachineModel(const MachineModel&) = delete;
  MachineModel& operator=(const MachineModel&) = delete;

  // The banks, sorted by start address; bank indices below refer to this.
  const std::vector<MemoryBank>& banks() const { return banks_; }
  std::uint64_t ram_bytes() const;

  // The bank holding `addr`, if any.
  std::optional<std::size_t> bank_of(PhysAddr addr) const;

  // True when [addr, addr + bytes) lies inside one bank (bytes 0: addr does).
  bool contains(PhysAddr addr, std::uint64_t bytes = 1) const;

  // The host pointer backing [addr, addr + bytes). Fails (out_of_range) when
  // the address is in no bank or the range runs past the end of its bank.
  Result<std::byte*> host_pointer(PhysAddr addr, std::uint64_t bytes) const override;

  // Reserves `bytes` of bank `bank` at an address that is a multiple of
  // `align` (a power of two), the lowest such run that fits. The memory is
  // not cleared: it holds what the last user left. Fails on a bad bank
  // index, zero bytes, an alignment that is not a power of two, or (with the
  // bank's free and largest-run sizes in the message) when nothing fits.
  Result<PhysAddr> allocate(std::size_t bank, std::uint64_t bytes, std::uint64_t align);

  // Returns an allocation (its start address) to its bank, and its whole
  // pages to the host. Fails (not_mapped) for an address allocate() did not
  // return or that was already freed.
  Status free(PhysAddr addr);

  // Bytes of bank `bank` currently allocated (0 for a bad index).
  std::uint64_t allocated_bytes(std::size_t bank) const;

 private:
  // A bank's allocator state; offsets are relative to the bank's start.
  struct BankHeap {
    std::map<std::uint64_t, std::uint64_t> free_runs;  // offset -> length
    std::map<std::uint64_t, std::uint64_t> live;       // offset -> length
    std::uint64_t allocated = 0;
  };

  MachineModel(std::vector<MemoryBank> banks, std::vector<std::byte*> hosts);

  std::optional<std::uint64_t> take_first_fit_locked(std::size_t bank, std::uint64_t bytes,
                                                     std::uint64_t align);
  void give_back_locked(std::size_t bank, std::uint64_t offset, std::uint64_t bytes);
  Error no_room_locked(std::size_t bank, std::uint64_t bytes, std::uint64_t align) const;

  // Immutable after construction: read without locks.
  const std::vector<MemoryBank> banks_;
  const std::vector<std::byte*> hosts_;  // hosts_[i] backs banks_[i]

  mutable std::mutex mutex_;
  std::vector<BankHeap> heaps_;  // guarded by mutex_
};

}  // namespace swiotlb
