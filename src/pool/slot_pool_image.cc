// SlotPool over a pool image: formatting one, attaching to one, and the
// mappings adopted from an earlier holder of the pool.
//
// Nothing read from an image is trusted before it is checked: the header by
// load_image_header, the arrays by check_slot_records, which bounds every
// index it follows by the segment it is in. Only then does adopt write, so
// that a refused attach leaves the image exactly as it found it.
//
// Writing the header last, after the arrays, and wiping it first when the
// arrays are about to be rewritten, means that a format or reset cut short
// leaves no header that attach would accept.
#include <algorithm>
#include <cstring>
#include <memory>

#include "image_header.h"
#include "owner_process.h"
#include "slot_pool_area.h"
#include "slot_records_check.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

namespace {

std::uint64_t address_of(const std::byte* p) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}

void wipe_header(std::byte* image) {
  std::memset(image, 0, sizeof(PoolImageHeader));
}

}  // namespace

Result<std::unique_ptr<SlotPool>> SlotPool::create_in(const PoolGeometry& geometry,
                                                      std::shared_ptr<const SlotPolicy> policy,
                                                      std::span<std::byte> image) {
  if (Status valid = check_create_args(geometry, policy.get()); !valid) {
    return valid.error();
  }
  if (Status fits = check_image_memory(image, geometry.slot_count); !fits) {
    return fits.error();
  }
  Result<PoolImageHeader> header = make_image_header(geometry, policy->name(), current_pid());
  if (!header) {
    return std::move(header).error();
  }
  std::unique_ptr<SlotPool> pool(new SlotPool(geometry, std::move(policy), image.data()));
  wipe_header(image.data());
  pool->format_image_slots();
  store_image_header(image.data(), *header);
  pool->held_image_ = image.data();
  return pool;
}

Result<std::unique_ptr<SlotPool>> SlotPool::attach(const PoolGeometry& expected,
                                                   std::shared_ptr<const SlotPolicy> policy,
                                                   std::span<std::byte> image,
                                                   const AttachOptions& options) {
  if (Status valid = check_create_args(expected, policy.get()); !valid) {
    return valid.error();
  }
  Result<PoolImageHeader> header = load_image_header(image, expected, policy->name());
  if (!header) {
    return std::move(header).error();
  }
  // A running holder still maps and unmaps under locks that are not ours;
  // its arrays may change under the check below, and ours would then race
  // with its. Checked before the arrays are read at all.
  const std::int32_t holder = header->owner_pid;
  if (!options.ignore_live_owner && holder != current_pid() && process_exists(holder)) {
    return make_error(Errc::busy,
                      "pool image at {:#x} is held by process {}, which is still running; attach "
                      "when it has exited (or set AttachOptions::ignore_live_owner if that pid "
                      "now names another process)",
                      address_of(image.data()), holder);
  }
  std::unique_ptr<SlotPool> pool(new SlotPool(expected, std::move(policy), image.data()));
  if (options.mode == AttachMode::reset) {
    wipe_header(image.data());
    pool->format_image_slots();
  } else if (Status adopted = pool->adopt_image_slots(); !adopted) {
    return make_error(Errc::parse, "pool image at {:#x} holds inconsistent slot arrays: {}",
                      address_of(image.data()), adopted.error().message());
  }
  header->owner_pid = current_pid();
  store_image_header(image.data(), *header);
  pool->held_image_ = image.data();
  return pool;
}

void SlotPool::format_image_slots() {
  format_free_runs();
  // Constructs the records, which also begins their lifetime in the image.
  std::uninitialized_fill_n(slots_, slot_count_, Slot{});
}

// Runs before the pool is handed out: no other thread can see it yet, so
// the area locks are not taken.
Status SlotPool::adopt_image_slots() {
  std::unique_ptr<std::uint64_t[]> in_use(new std::uint64_t[area_count_]);
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    Result<std::uint64_t> counted =
        check_slot_records(list_, slots_, std::uint64_t{a} * area_slots_, area_slots_);
    if (!counted) {
      return std::move(counted).error();
    }
    in_use[a] = *counted;
  }
  std::uint64_t total = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    Area& area = areas_[a];
    const std::uint64_t base = std::uint64_t{a} * area_slots_;
    for (std::uint64_t i = base; i < base + area_slots_; ++i) {
      Slot& slot = slots_[i];
      if (slot.role == SlotRole::data) {
        // The earlier holder's buffer: an address in its address space.
        slot.orig_addr = kInvalidAddress;
      }
      if (slot.state != MappingState::none) {
        slot.state = MappingState::adopted;
        slot.owner = kAdoptedOwner;
        ++area.adopted;
      }
    }
    area.used.store(in_use[a], std::memory_order_relaxed);
    // The adopted slots are the high-water mark so far, each area's gate
    // at its own use (see raise_hiwater).
    area.gate.store(in_use[a], std::memory_order_relaxed);
    gated_ += in_use[a];
    total += in_use[a];
    replay_into_policy_state(area, a);
  }
  hiwater_.store(total, std::memory_order_relaxed);
  return check_invariants();
}

// The policy's index was made for an all-free area; tell it of every run in
// use, as the maps that made them would have.
void SlotPool::replay_into_policy_state(Area& area, std::uint32_t area_index) {
  if (!area.state) {
    return;
  }
  const std::uint64_t base = std::uint64_t{area_index} * area_slots_;
  for (std::uint32_t segment = 0; segment < area_slots_; segment += kSegmentSlots) {
    std::uint32_t run = 0;
    for (std::uint32_t p = 0; p <= kSegmentSlots; ++p) {
      if (p < kSegmentSlots && list_[base + segment + p] == 0) {
        ++run;
      } else if (run != 0) {
        area.state->on_take(segment + p - run, run);
        run = 0;
      }
    }
  }
}

void SlotPool::record_holder(std::int32_t pid) {
  PoolImageHeader header;
  std::memcpy(&header, held_image_, sizeof(header));
  header.owner_pid = pid;
  store_image_header(held_image_, header);
}

Status SlotPool::release_adopted(PhysAddr tlb_addr) {
  if (!contains(tlb_addr)) {
    return make_error(Errc::not_mapped, "{:#x} is outside the pool [{:#x}, {:#x})",
                      tlb_addr.value(), start_.value(), end().value());
  }
  // An adopted mapping's address lies in its first data slot.
  const std::uint64_t head = (tlb_addr - start_) >> kSlotShift;
  Area& area = area_of(head);
  std::lock_guard guard(area.lock);
  const Slot& h = slots_[head];
  if (h.role != SlotRole::data || h.part != 0 || h.state != MappingState::adopted ||
      start_ + (head << kSlotShift) + h.tlb_offset != tlb_addr) {
    return make_error(Errc::not_mapped, "no adopted mapping starts at {:#x}", tlb_addr.value());
  }
  const MappingInfo info = info_locked(static_cast<std::uint32_t>(head));
  release_locked(area, info.index.value(), static_cast<std::uint32_t>(info.nslots.value()));
  area.adopted -= 1;
  return {};
}

std::uint64_t SlotPool::adopted_count() const {
  std::uint64_t count = 0;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    std::lock_guard guard(areas_[a].lock);
    count += areas_[a].adopted;
  }
  return count;
}

std::vector<MappingInfo> SlotPool::adopted_mappings() const {
  std::vector<MappingInfo> mappings;
  for (std::uint32_t a = 0; a < area_count_; ++a) {
    std::lock_guard guard(areas_[a].lock);
    const std::uint64_t base = std::uint64_t{a} * area_slots_;
    for (std::uint64_t i = base; i < base + area_slots_; ++i) {
      if (slots_[i].state == MappingState::adopted) {
        mappings.push_back(info_locked(static_cast<std::uint32_t>(i)));
      }
    }
  }
  return mappings;
}

}  // namespace swiotlb
