// The modelled machine: a sorted, immutable table of RAM banks, each backed
// by a lazy anonymous mapping, and a first-fit allocator per bank.
//
// Synchronization: banks_ and hosts_ never change after construction, so
// translation reads them without locks. heaps_ (free runs, live
// allocations) is guarded by mutex_; every helper that touches it ends in
// _locked and is called with mutex_ held.
#include "swiotlb/platform/machine_model.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "host_page.h"
#include "swiotlb/core/constants.h"

namespace swiotlb {

namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

std::string describe(const MemoryBank& bank) {
  return fmt::format("[{:#x}, {:#x})", bank.start.value(), bank.start.value() + bank.size);
}

std::string describe_all(const std::vector<MemoryBank>& banks) {
  std::string out;
  for (const MemoryBank& bank : banks) {
    out += (out.empty() ? "" : " ") + describe(bank);
  }
  return out;
}

Status check_bank(const MemoryBank& bank) {
  if (bank.size == 0) {
    return make_error(Errc::invalid_argument, "a RAM bank at {:#x} has no bytes",
                      bank.start.value());
  }
  if (bank.size > kInvalidAddress - bank.start.value()) {
    return make_error(Errc::invalid_argument,
                      "a RAM bank at {:#x} of {} bytes runs past the top of the address space",
                      bank.start.value(), bank.size);
  }
  if (bank.start.value() % kPageSize != 0 || bank.size % kPageSize != 0) {
    return make_error(Errc::invalid_argument,
                      "RAM bank at {:#x} of {:#x} bytes is not aligned to the {}-byte page",
                      bank.start.value(), bank.size, kPageSize);
  }
  return Status::ok();
}

// Validates and sorts the banks; overlapping neighbours are named together.
Status arrange(std::vector<MemoryBank>& banks) {
  if (banks.empty()) {
    return make_error(Errc::invalid_argument, "a machine needs at least one RAM bank");
  }
  for (const MemoryBank& bank : banks) {
    if (Status ok = check_bank(bank); !ok) {
      return ok;
    }
  }
  std::sort(banks.begin(), banks.end(),
            [](const MemoryBank& a, const MemoryBank& b) { return a.start < b.start; });
  for (std::size_t i = 1; i < banks.size(); ++i) {
    if (banks[i].start.value() - banks[i - 1].start.value() < banks[i - 1].size) {
      return make_error(Errc::invalid_argument, "RAM banks {} and {} overlap",
                        describe(banks[i - 1]), describe(banks[i]));
    }
  }
  return Status::ok();
}

void unmap_all(const std::vector<std::byte*>& hosts, const std::vector<MemoryBank>& banks) {
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    munmap(hosts[i], banks[i].size);
  }
}

// One lazy host mapping per bank: reserved address space, no memory until
// a page is touched.
Result<std::vector<std::byte*>> back(const std::vector<MemoryBank>& banks) {
  std::vector<std::byte*> hosts;
  for (const MemoryBank& bank : banks) {
    void* p = mmap(nullptr, bank.size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      unmap_all(hosts, banks);
      return make_error(Errc::system, "backing RAM bank {} ({} bytes) with host memory failed: {}",
                        describe(bank), bank.size, errno_text(err));
    }
    hosts.push_back(static_cast<std::byte*>(p));
  }
  return hosts;
}

// Hands the whole pages of [p, p + bytes) back to the host; they read as
// zero when touched again.
void release_pages(std::byte* p, std::uint64_t bytes) {
  const std::uint64_t page = host_page_size();
  const auto first = reinterpret_cast<std::uintptr_t>(p);
  const std::uint64_t lo = kernel_align(first, page);
  const std::uint64_t hi = (first + bytes) & ~(page - 1);
  if (lo < hi) {
    madvise(p + (lo - first), hi - lo, MADV_DONTNEED);
  }
}

}  // namespace

std::vector<MemoryBank> iproc_stingray_banks() {
  return {{PhysAddr(2 * kGiB), 2 * kGiB},
          {PhysAddr(34 * kGiB), 14 * kGiB},
          {PhysAddr(576 * kGiB), 16 * kGiB},
          {PhysAddr(640 * kGiB), 16 * kGiB}};
}

Result<std::unique_ptr<MachineModel>> MachineModel::create(std::vector<MemoryBank> banks) {
  if (Status ok = arrange(banks); !ok) {
    return ok.error();
  }
  Result<std::vector<std::byte*>> hosts = back(banks);
  if (!hosts) {
    return std::move(hosts).error();
  }
  return std::unique_ptr<MachineModel>(new MachineModel(std::move(banks), std::move(*hosts)));
}

Result<std::unique_ptr<MachineModel>> MachineModel::iproc_stingray() {
  return create(iproc_stingray_banks());
}

MachineModel::MachineModel(std::vector<MemoryBank> banks, std::vector<std::byte*> hosts)
    : banks_(std::move(banks)), hosts_(std::move(hosts)), heaps_(banks_.size()) {
  for (std::size_t i = 0; i < banks_.size(); ++i) {
    heaps_[i].free_runs.emplace(0, banks_[i].size);
  }
}

MachineModel::~MachineModel() {
  unmap_all(hosts_, banks_);
}

std::uint64_t MachineModel::ram_bytes() const {
  std::uint64_t total = 0;
  for (const MemoryBank& bank : banks_) {
    total += bank.size;
  }
  return total;
}

std::optional<std::size_t> MachineModel::bank_of(PhysAddr addr) const {
  auto after = std::upper_bound(banks_.begin(), banks_.end(), addr,
                                [](PhysAddr a, const MemoryBank& bank) { return a < bank.start; });
  if (after == banks_.begin()) {
    return std::nullopt;
  }
  const auto i = static_cast<std::size_t>(after - banks_.begin()) - 1;
  if (addr - banks_[i].start >= banks_[i].size) {
    return std::nullopt;
  }
  return i;
}

bool MachineModel::contains(PhysAddr addr, std::uint64_t bytes) const {
  const std::optional<std::size_t> i = bank_of(addr);
  return i && bytes <= banks_[*i].size - (addr - banks_[*i].start);
}

Result<std::byte*> MachineModel::host_pointer(PhysAddr addr, std::uint64_t bytes) const {
  const std::optional<std::size_t> i = bank_of(addr);
  if (!i) {
    return make_error(Errc::out_of_range, "model address {:#x} is in no RAM bank (banks: {})",
                      addr.value(), describe_all(banks_));
  }
  const MemoryBank& bank = banks_[*i];
  const std::uint64_t offset = addr - bank.start;
  if (bytes > bank.size - offset) {
    return make_error(Errc::out_of_range,
                      "model range at {:#x} of {} bytes runs past the end of RAM bank {} {}: "
                      "a range must lie inside one bank",
                      addr.value(), bytes, *i, describe(bank));
  }
  return hosts_[*i] + offset;
}

Result<PhysAddr> MachineModel::allocate(std::size_t bank, std::uint64_t bytes,
                                        std::uint64_t align) {
  if (bank >= banks_.size()) {
    return make_error(Errc::invalid_argument, "RAM bank {} does not exist: the machine has {}",
                      bank, banks_.size());
  }
  if (bytes == 0) {
    return make_error(Errc::invalid_argument, "an allocation needs at least one byte");
  }
  if (!is_power_of_two(align)) {
    return make_error(Errc::invalid_argument, "alignment {} is not a power of two", align);
  }
  std::lock_guard guard(mutex_);
  const std::optional<std::uint64_t> offset = take_first_fit_locked(bank, bytes, align);
  if (!offset) {
    return no_room_locked(bank, bytes, align);
  }
  return banks_[bank].start + *offset;
}

Status MachineModel::free(PhysAddr addr) {
  const std::optional<std::size_t> bank = bank_of(addr);
  if (!bank) {
    return make_error(Errc::not_mapped, "model address {:#x} is in no RAM bank", addr.value());
  }
  const std::uint64_t offset = addr - banks_[*bank].start;
  std::lock_guard guard(mutex_);
  BankHeap& heap = heaps_[*bank];
  const auto live = heap.live.find(offset);
  if (live == heap.live.end()) {
    return make_error(Errc::not_mapped,
                      "model address {:#x} is not the start of a live allocation in RAM bank {}",
                      addr.value(), *bank);
  }
  const std::uint64_t bytes = live->second;
  heap.live.erase(live);
  heap.allocated -= bytes;
  // Before the run is free again: once it is, another thread may reuse it.
  release_pages(hosts_[*bank] + offset, bytes);
  give_back_locked(*bank, offset, bytes);
  return Status::ok();
}

std::uint64_t MachineModel::allocated_bytes(std::size_t bank) const {
  std::lock_guard guard(mutex_);
  return bank < heaps_.size() ? heaps_[bank].allocated : 0;
}

std::optional<std::uint64_t> MachineModel::take_first_fit_locked(std::size_t bank,
                                                                 std::uint64_t bytes,
                                                                 std::uint64_t align) {
  BankHeap& heap = heaps_[bank];
  const std::uint64_t base = banks_[bank].start.value();
  for (auto run = heap.free_runs.begin(); run != heap.free_runs.end(); ++run) {
    const auto [run_offset, run_bytes] = *run;
    const std::uint64_t misalign = (base + run_offset) & (align - 1);
    const std::uint64_t pad = misalign == 0 ? 0 : align - misalign;
    if (pad > run_bytes || bytes > run_bytes - pad) {
      continue;
    }
    heap.free_runs.erase(run);
    if (pad != 0) {
      heap.free_runs.emplace(run_offset, pad);
    }
    if (run_bytes - pad - bytes != 0) {
      heap.free_runs.emplace(run_offset + pad + bytes, run_bytes - pad - bytes);
    }
    heap.live.emplace(run_offset + pad, bytes);
    heap.allocated += bytes;
    return run_offset + pad;
  }
  return std::nullopt;
}

void MachineModel::give_back_locked(std::size_t bank, std::uint64_t offset, std::uint64_t bytes) {
  auto& runs = heaps_[bank].free_runs;
  auto next = runs.lower_bound(offset);
  if (next != runs.end() && offset + bytes == next->first) {
    bytes += next->second;
    next = runs.erase(next);
  }
  if (next != runs.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += bytes;
      return;
    }
  }
  runs.emplace_hint(next, offset, bytes);
}

Error MachineModel::no_room_locked(std::size_t bank, std::uint64_t bytes,
                                   std::uint64_t align) const {
  const BankHeap& heap = heaps_[bank];
  std::uint64_t largest = 0;
  for (const auto& [offset, run_bytes] : heap.free_runs) {
    largest = std::max(largest, run_bytes);
  }
  return make_error(Errc::pool_full,
                    "RAM bank {} {} has no free run of {} bytes aligned to {}: {} of {} bytes "
                    "free, the largest run {} bytes",
                    bank, describe(banks_[bank]), bytes, align, banks_[bank].size - heap.allocated,
                    banks_[bank].size, largest);
}

}  // namespace swiotlb
