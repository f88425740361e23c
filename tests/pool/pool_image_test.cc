// Pools whose metadata lives in a pool image: formatting, attaching with
// adopt and reset, the adopted mappings, every refusal (on headers and
// arrays damaged in every way we can think of, and on random damage, which
// must be refused or yield a consistent pool, never a crash), the live
// holder check, and a real takeover: a child process formats a pool in
// shared memory, maps, and dies; the parent adopts its mappings.
#include "swiotlb/pool/pool_image.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kStart = 0x100000;
constexpr std::uint64_t kSlots = 512;
constexpr std::uint32_t kAreas = 4;
constexpr PoolGeometry kGeometry{PhysAddr(kStart), kSlots, kAreas};

// Page-aligned zeroed memory: private, or shared with children forked later.
class Memory {
 public:
  explicit Memory(std::size_t bytes, bool shared = false) : bytes_(bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    data_ = static_cast<std::byte*>(p);
  }
  ~Memory() { ::munmap(data_, bytes_); }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  std::byte* data() const { return data_; }
  std::span<std::byte> span() const { return {data_, bytes_}; }

 private:
  std::size_t bytes_;
  std::byte* data_;
};

std::shared_ptr<const SlotPolicy> policy(const std::string& name) {
  auto p = make_slot_policy(name);
  EXPECT_TRUE(p);
  return *p;
}

PoolImageHeader read_header(std::span<const std::byte> image) {
  PoolImageHeader header;
  std::memcpy(&header, image.data(), sizeof(header));
  return header;
}

// Writes `header` back; with `seal`, with the checksum its fields give.
void write_header(std::span<std::byte> image, PoolImageHeader header, bool seal = true) {
  if (seal) {
    header.checksum = pool_image_checksum(header);
  }
  std::memcpy(image.data(), &header, sizeof(header));
}

std::byte* slot_record_byte(std::span<std::byte> image, std::uint64_t slot, std::size_t field) {
  return image.data() + pool_image_layout(kSlots).slots_offset + slot * sizeof(SlotRecord) + field;
}

std::byte* list_entry(std::span<std::byte> image, std::uint64_t slot) {
  return image.data() + pool_image_layout(kSlots).list_offset + slot * sizeof(std::uint16_t);
}

SlotRequest request(std::uint64_t size, unsigned cpu = 0, std::uint64_t orig = 0x40000000) {
  SlotRequest r;
  r.orig = PhysAddr(orig);
  r.mapping_size = size;
  r.pool_dma_start = DmaAddr(kStart);
  r.cpu = cpu;
  r.dir = Direction::to_device;
  r.owner = 7;
  return r;
}

Result<std::unique_ptr<SlotPool>> adopt(std::span<std::byte> image,
                                        const std::string& policy_name = "fast",
                                        const PoolGeometry& geometry = kGeometry) {
  return SlotPool::attach(geometry, policy(policy_name), image, {.mode = AttachMode::adopt});
}

bool same_mapping(const MappingInfo& a, const MappingInfo& b) {
  return a.tlb_addr == b.tlb_addr && a.mapping_size == b.mapping_size && a.dir == b.dir &&
         a.index == b.index && a.nslots == b.nslots;
}

// An image of a "fast" pool with a few mappings in several areas, left by
// a pool that has gone (as a process that exits without unmapping leaves
// it), and the mappings as the pool reported them.
class ImageWithMappings : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = SlotPool::create_in(kGeometry, policy("fast"), memory_.span());
    ASSERT_TRUE(made) << made.error().message();
    SlotPool& pool = **made;
    for (unsigned i = 0; i < 6; ++i) {
      auto m = pool.map(request((i + 1) * 3000, i, 0x40000000 + i * 0x10000 + i * 64));
      ASSERT_TRUE(m) << m.error().message();
      auto info = pool.find_mapping(m->tlb_addr, 1);
      ASSERT_TRUE(info);
      mappings_.push_back(*info);
    }
    auto gone = pool.unmap(mappings_[2].tlb_addr, 0);
    ASSERT_TRUE(gone);
    mappings_.erase(mappings_.begin() + 2);
    // In address order, as adopted_mappings() lists them.
    std::sort(mappings_.begin(), mappings_.end(),
              [](const MappingInfo& a, const MappingInfo& b) { return a.tlb_addr < b.tlb_addr; });
    used_ = pool.used();
  }

  std::span<std::byte> image() { return memory_.span(); }

  Memory memory_{pool_image_bytes(kSlots)};
  std::vector<MappingInfo> mappings_;
  std::uint64_t used_ = 0;
};

TEST(PoolImage, LayoutIsAlignedAndPageRounded) {
  const PoolImageLayout layout = pool_image_layout(kSlots);
  EXPECT_EQ(layout.list_offset, 128u);
  EXPECT_EQ(layout.slots_offset, 128u + kSlots * 2);
  EXPECT_EQ(layout.bytes, 20480u);  // 128 + 1024 + 16384, rounded up to pages
  EXPECT_EQ(pool_image_bytes(kDefaultSlotCount), 1118208u);
  EXPECT_EQ(pool_image_layout(128).slots_offset % kPoolImageAlign, 0u);
  EXPECT_EQ(pool_image_bytes(128) % kPoolImageGranule, 0u);
}

TEST(PoolImage, CreateInWritesTheHeader) {
  Memory memory(pool_image_bytes(kSlots));
  auto pool = SlotPool::create_in(kGeometry, policy("linux-6.1"), memory.span());
  ASSERT_TRUE(pool) << pool.error().message();
  const PoolImageHeader header = read_header(memory.span());
  EXPECT_EQ(header.magic, kPoolImageMagic);
  EXPECT_EQ(std::memcmp(memory.data(), "SWIOTLB", 8), 0);
  EXPECT_EQ(header.version, 1u);
  EXPECT_EQ(header.header_bytes, 128u);
  EXPECT_EQ(header.checksum, pool_image_checksum(header));
  EXPECT_EQ(header.pool_start, kStart);
  EXPECT_EQ(header.slot_count, kSlots);
  EXPECT_EQ(header.area_count, kAreas);
  EXPECT_EQ(header.owner_pid, ::getpid());
  EXPECT_EQ(std::string(header.policy), "linux-6.1");
  EXPECT_EQ(header.list_offset, pool_image_layout(kSlots).list_offset);
  EXPECT_EQ(header.slots_offset, pool_image_layout(kSlots).slots_offset);
  EXPECT_EQ(header.image_bytes, pool_image_bytes(kSlots));
  EXPECT_EQ(header.slot_record_bytes, sizeof(SlotRecord));
  EXPECT_TRUE((*pool)->check_invariants());
  EXPECT_EQ((*pool)->largest_free_run(), kSegmentSlots);
}

TEST(PoolImage, ImageBackedPoolMapsLikeAHeapPool) {
  for (const char* name : {"linux", "linux-6.1", "fast"}) {
    Memory memory(pool_image_bytes(kSlots));
    auto in_image = SlotPool::create_in(kGeometry, policy(name), memory.span());
    // A pool over an image keeps no run cache; the heap pool to compare
    // with must not keep one either.
    auto on_heap = SlotPool::create(kGeometry, std::string_view(name) == "fast"
                                                   ? std::make_shared<FastPolicy>(false)
                                                   : policy(name));
    ASSERT_TRUE(in_image && on_heap);
    std::mt19937 random(5);
    std::vector<PhysAddr> live;
    for (int step = 0; step < 2000; ++step) {
      if (live.empty() || random() % 3 != 0) {
        const SlotRequest r = request(1 + random() % 20000, random() % 8, 0x40000000 + random());
        auto a = (*in_image)->map(r);
        auto b = (*on_heap)->map(r);
        ASSERT_EQ(a.has_value(), b.has_value()) << name;
        if (a) {
          ASSERT_EQ(a->tlb_addr, b->tlb_addr) << name;
          live.push_back(a->tlb_addr);
        }
      } else {
        const std::size_t at = random() % live.size();
        ASSERT_TRUE((*in_image)->unmap(live[at], 0));
        ASSERT_TRUE((*on_heap)->unmap(live[at], 0));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
    EXPECT_TRUE((*in_image)->check_invariants());
    EXPECT_EQ((*in_image)->used(), (*on_heap)->used());
  }
}

TEST(PoolImage, DestroyedPoolLeavesNoHolder) {
  Memory memory(pool_image_bytes(kSlots));
  {
    auto pool = SlotPool::create_in(kGeometry, policy("fast"), memory.span());
    ASSERT_TRUE(pool);
    EXPECT_EQ(read_header(memory.span()).owner_pid, ::getpid());
  }
  const PoolImageHeader header = read_header(memory.span());
  EXPECT_EQ(header.owner_pid, 0);
  EXPECT_EQ(header.checksum, pool_image_checksum(header));
}

TEST_F(ImageWithMappings, AdoptKeepsEveryMappingAsAdopted) {
  auto pool = adopt(image());
  ASSERT_TRUE(pool) << pool.error().message();
  SlotPool& p = **pool;
  EXPECT_EQ(p.used(), used_);
  EXPECT_EQ(p.hiwater(), used_);
  EXPECT_EQ(p.adopted_count(), mappings_.size());
  const PoolStats stats = p.stats();
  EXPECT_EQ(stats.used, used_);
  EXPECT_EQ(stats.adopted, mappings_.size());
  EXPECT_EQ(p.count_owned(kAdoptedOwner), mappings_.size());
  EXPECT_EQ(p.count_owned(7), 0u);

  const std::vector<MappingInfo> adopted = p.adopted_mappings();
  ASSERT_EQ(adopted.size(), mappings_.size());
  for (std::size_t i = 0; i < adopted.size(); ++i) {
    EXPECT_TRUE(same_mapping(adopted[i], mappings_[i])) << i;
    EXPECT_EQ(adopted[i].owner, kAdoptedOwner);
    EXPECT_EQ(adopted[i].orig, PhysAddr(0));
  }
  EXPECT_TRUE(p.check_invariants());
  EXPECT_EQ(read_header(image()).owner_pid, ::getpid());
}

TEST_F(ImageWithMappings, AdoptedMappingsAreNeverHandedOut) {
  auto pool = adopt(image());
  ASSERT_TRUE(pool);
  SlotPool& p = **pool;
  const MappingInfo& m = mappings_.front();
  const MappingClaim claim{m.mapping_size, m.dir, 7};
  auto found = p.find_mapping(m.tlb_addr, 1);
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code(), Errc::mapping_mismatch);
  auto begun = p.begin_unmap(m.tlb_addr, 0, &claim);
  ASSERT_FALSE(begun);
  EXPECT_EQ(begun.error().code(), Errc::mapping_mismatch);
  auto unmapped = p.unmap(m.tlb_addr, 0);
  ASSERT_FALSE(unmapped);
  EXPECT_EQ(unmapped.error().code(), Errc::mapping_mismatch);
  EXPECT_EQ(p.adopted_count(), mappings_.size());
  EXPECT_EQ(p.used(), used_);
  EXPECT_TRUE(p.check_invariants());
}

TEST_F(ImageWithMappings, NewMappingsAvoidAdoptedSlots) {
  auto pool = adopt(image());
  ASSERT_TRUE(pool);
  SlotPool& p = **pool;
  std::vector<PhysAddr> mine;
  for (;;) {
    auto m = p.map(request(5000, static_cast<unsigned>(mine.size())));
    if (!m) {
      EXPECT_EQ(m.error().code(), Errc::pool_full);
      break;
    }
    for (const MappingInfo& a : mappings_) {
      const std::uint64_t a_end = a.index.value() + a.nslots.value();
      const std::uint64_t m_end = m->index.value() + m->nslots.value();
      EXPECT_TRUE(m_end <= a.index.value() || m->index.value() >= a_end);
    }
    mine.push_back(m->tlb_addr);
  }
  EXPECT_TRUE(p.check_invariants());
  for (PhysAddr addr : mine) {
    ASSERT_TRUE(p.unmap(addr, 0));
  }
  EXPECT_EQ(p.used(), used_);
}

TEST_F(ImageWithMappings, ReleaseAdoptedFreesThem) {
  auto pool = adopt(image());
  ASSERT_TRUE(pool);
  SlotPool& p = **pool;
  // Not the start of an adopted mapping: a byte in, a free slot, outside.
  Status inside = p.release_adopted(mappings_[0].tlb_addr + 1);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code(), Errc::not_mapped);
  EXPECT_EQ(p.release_adopted(PhysAddr(kStart + (kSlots - 1) * kSlotSize)).error().code(),
            Errc::not_mapped);
  EXPECT_EQ(p.release_adopted(PhysAddr(kStart - kSlotSize)).error().code(), Errc::not_mapped);
  // A live mapping of this process is unmapped, not released.
  auto mine = p.map(request(4096, 3));
  ASSERT_TRUE(mine);
  EXPECT_EQ(p.release_adopted(mine->tlb_addr).error().code(), Errc::not_mapped);

  std::uint64_t left = used_;
  for (const MappingInfo& m : mappings_) {
    ASSERT_TRUE(p.release_adopted(m.tlb_addr));
    left -= m.nslots.value();
    EXPECT_EQ(p.used(), left + mine->nslots.value());
    EXPECT_EQ(p.release_adopted(m.tlb_addr).error().code(), Errc::not_mapped);
    EXPECT_TRUE(p.check_invariants());
  }
  EXPECT_EQ(p.adopted_count(), 0u);
  EXPECT_EQ(p.stats().adopted, 0u);
  ASSERT_TRUE(p.unmap(mine->tlb_addr, 0));
  EXPECT_EQ(p.used(), 0u);
  EXPECT_EQ(p.largest_free_run(), kSegmentSlots);
}

TEST_F(ImageWithMappings, AdoptingAgainKeepsTheAdoptedMappings) {
  {
    auto pool = adopt(image());
    ASSERT_TRUE(pool);
    ASSERT_TRUE((*pool)->release_adopted(mappings_.back().tlb_addr));
  }
  mappings_.pop_back();
  auto again = adopt(image());
  ASSERT_TRUE(again) << again.error().message();
  const std::vector<MappingInfo> adopted = (*again)->adopted_mappings();
  ASSERT_EQ(adopted.size(), mappings_.size());
  for (std::size_t i = 0; i < adopted.size(); ++i) {
    EXPECT_TRUE(same_mapping(adopted[i], mappings_[i])) << i;
  }
}

TEST_F(ImageWithMappings, ResetEmptiesThePool) {
  auto pool = SlotPool::attach(kGeometry, policy("fast"), image(), {.mode = AttachMode::reset});
  ASSERT_TRUE(pool) << pool.error().message();
  SlotPool& p = **pool;
  EXPECT_EQ(p.used(), 0u);
  EXPECT_EQ(p.adopted_count(), 0u);
  EXPECT_TRUE(p.adopted_mappings().empty());
  EXPECT_EQ(p.largest_free_run(), kSegmentSlots);
  EXPECT_TRUE(p.check_invariants());
  EXPECT_EQ(read_header(image()).owner_pid, ::getpid());
  auto m = p.map(request(3000));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->index.value(), 0u);
}

TEST_F(ImageWithMappings, ResetDoesNotReadTheArrays) {
  std::memset(image().data() + pool_image_layout(kSlots).list_offset, 0x5a,
              pool_image_bytes(kSlots) - pool_image_layout(kSlots).list_offset);
  EXPECT_FALSE(adopt(image()));
  auto pool = SlotPool::attach(kGeometry, policy("fast"), image(), {.mode = AttachMode::reset});
  ASSERT_TRUE(pool) << pool.error().message();
  EXPECT_TRUE((*pool)->check_invariants());
}

TEST_F(ImageWithMappings, AdoptRebuildsEachPolicysState) {
  for (const char* name : {"linux", "linux-6.1", "fast"}) {
    Memory memory(pool_image_bytes(kSlots));
    {
      auto made = SlotPool::create_in(kGeometry, policy(name), memory.span());
      ASSERT_TRUE(made);
      for (unsigned i = 0; i < 40; ++i) {
        ASSERT_TRUE((*made)->map(request(1 + i * 777, i)));
      }
    }
    auto pool = adopt(memory.span(), name);
    ASSERT_TRUE(pool) << name << ": " << pool.error().message();
    EXPECT_EQ((*pool)->adopted_count(), 40u);
    EXPECT_TRUE((*pool)->check_invariants()) << name;
    // The search works from the rebuilt state: fill the pool, check, empty it.
    std::vector<PhysAddr> mine;
    for (auto m = (*pool)->map(request(2048)); m; m = (*pool)->map(request(2048))) {
      mine.push_back(m->tlb_addr);
    }
    EXPECT_EQ((*pool)->used(), kSlots) << name;
    EXPECT_TRUE((*pool)->check_invariants()) << name;
  }
}

// The refusals. Each leaves the image as it was.

void expect_refused(const Result<std::unique_ptr<SlotPool>>& attached, Errc code,
                    const std::string& words) {
  ASSERT_FALSE(attached);
  EXPECT_EQ(attached.error().code(), code) << attached.error().message();
  EXPECT_NE(attached.error().message().find(words), std::string::npos)
      << attached.error().message();
}

TEST(PoolImageRefusal, NoHeader) {
  Memory memory(pool_image_bytes(kSlots));
  expect_refused(adopt(memory.span()), Errc::parse, "no pool header at");
  std::mt19937_64 random(1);
  for (std::size_t i = 0; i < 16; ++i) {
    const std::uint64_t word = random();
    std::memcpy(memory.data() + i * 8, &word, 8);
  }
  expect_refused(adopt(memory.span()), Errc::parse, "no pool header at");
  expect_refused(
      SlotPool::attach(kGeometry, policy("fast"), memory.span(), {.mode = AttachMode::reset}),
      Errc::parse, "no pool header at");
}

TEST_F(ImageWithMappings, RefusesAnotherVersionOrHeaderSize) {
  const PoolImageHeader good = read_header(image());
  PoolImageHeader header = good;
  header.version = 2;
  write_header(image(), header);
  expect_refused(adopt(image()), Errc::parse, "version 2");
  header = good;
  header.header_bytes = 256;
  write_header(image(), header);
  expect_refused(adopt(image()), Errc::parse, "256 bytes");
  header = good;
  header.slots_offset += 64;
  write_header(image(), header);
  expect_refused(adopt(image()), Errc::parse, "another layout");
  header = good;
  header.slot_record_bytes = 40;
  write_header(image(), header);
  expect_refused(adopt(image()), Errc::parse, "another layout");
  write_header(image(), good);
  EXPECT_TRUE(adopt(image()));
}

TEST_F(ImageWithMappings, RefusesEveryFlippedHeaderByte) {
  for (std::size_t at = 0; at < sizeof(PoolImageHeader); ++at) {
    image()[at] ^= std::byte{0x10};
    auto attached = adopt(image());
    EXPECT_FALSE(attached) << "byte " << at;
    if (!attached && at >= 16) {  // past magic, version and size
      EXPECT_EQ(attached.error().code(), Errc::parse);
      EXPECT_NE(attached.error().message().find("pool header at"), std::string::npos);
      EXPECT_NE(attached.error().message().find("is corrupt"), std::string::npos) << at;
    }
    image()[at] ^= std::byte{0x10};
  }
  EXPECT_TRUE(adopt(image()));
}

TEST_F(ImageWithMappings, RefusesAnotherGeometry) {
  expect_refused(adopt(image(), "fast", {PhysAddr(kStart + kSegmentBytes), kSlots, kAreas}),
                 Errc::invalid_argument, "start 0x100000, expected 0x140000");
  Memory bigger(pool_image_bytes(2 * kSlots));
  std::memcpy(bigger.data(), image().data(), pool_image_bytes(kSlots));
  expect_refused(adopt(bigger.span(), "fast", {PhysAddr(kStart), 2 * kSlots, kAreas}),
                 Errc::invalid_argument, "slot_count 512, expected 1024");
  expect_refused(adopt(image(), "fast", {PhysAddr(kStart), kSlots, 2}), Errc::invalid_argument,
                 "area_count 4, expected 2");
  // An impossible expectation is refused before the image is read.
  expect_refused(adopt(image(), "fast", {PhysAddr(kStart), kSlots, 3}), Errc::invalid_argument, "");
}

TEST_F(ImageWithMappings, RefusesAnotherPolicy) {
  expect_refused(adopt(image(), "linux"), Errc::invalid_argument,
                 "formatted for the 'fast' slot policy, not 'linux'");
  expect_refused(
      SlotPool::attach(kGeometry, policy("linux-6.1"), image(), {.mode = AttachMode::reset}),
      Errc::invalid_argument, "'fast'");
  expect_refused(SlotPool::attach(kGeometry, nullptr, image(), {}), Errc::invalid_argument,
                 "slot policy");
}

TEST_F(ImageWithMappings, RefusesTooSmallOrMisalignedImages) {
  expect_refused(adopt(image().first(pool_image_bytes(kSlots) - 1)), Errc::invalid_argument,
                 "needs 20480");
  expect_refused(adopt(image().first(100)), Errc::invalid_argument, "too few");
  expect_refused(adopt(image().first(0)), Errc::invalid_argument, "too few");
  expect_refused(adopt(image().subspan(8)), Errc::invalid_argument, "not aligned");

  Memory memory(pool_image_bytes(kSlots) + 4096);
  auto small = SlotPool::create_in(kGeometry, policy("fast"), memory.span().first(4096));
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code(), Errc::invalid_argument);
  auto misaligned = SlotPool::create_in(kGeometry, policy("fast"), memory.span().subspan(32));
  ASSERT_FALSE(misaligned);
  EXPECT_NE(misaligned.error().message().find("not aligned to 64"), std::string::npos);
  auto bad_geometry =
      SlotPool::create_in({PhysAddr(kStart), 100, 1}, policy("fast"), memory.span());
  ASSERT_FALSE(bad_geometry);
  // None of them wrote anything.
  EXPECT_TRUE(std::all_of(memory.data(), memory.data() + memory.span().size(),
                          [](std::byte b) { return b == std::byte{0}; }));
}

// Damage to the arrays behind an intact header: refused with Errc::parse,
// and the image left as it was.
class DamagedArrays : public ImageWithMappings {
 protected:
  void expect_refused_damage(const std::string& words) {
    const std::vector<std::byte> before(image().begin(), image().end());
    auto attached = adopt(image());
    ASSERT_FALSE(attached) << words;
    EXPECT_EQ(attached.error().code(), Errc::parse) << attached.error().message();
    EXPECT_NE(attached.error().message().find("inconsistent slot arrays"), std::string::npos);
    EXPECT_NE(attached.error().message().find(words), std::string::npos)
        << attached.error().message();
    EXPECT_TRUE(std::equal(before.begin(), before.end(), image().begin()));
  }

  std::uint64_t head_slot(std::size_t mapping) const {
    return (mappings_[mapping].tlb_addr.value() - kStart) >> kSlotShift;
  }
};

TEST_F(DamagedArrays, FreeRunCounterOutOfRange) {
  const std::uint16_t bad = 300;
  std::memcpy(list_entry(image(), kSlots - 1), &bad, sizeof(bad));
  expect_refused_damage("free-run counter 300");
}

TEST_F(DamagedArrays, FreeRunCounterOfASlotInUse) {
  const std::uint16_t bad = 1;
  std::memcpy(list_entry(image(), head_slot(0)), &bad, sizeof(bad));
  expect_refused_damage("free-run counter 1 but 0 expected");
}

TEST_F(DamagedArrays, RoleByte) {
  *slot_record_byte(image(), 5, offsetof(SlotRecord, role)) = std::byte{77};
  expect_refused_damage("role 77");
}

TEST_F(DamagedArrays, RoleOfAMappingsSlot) {
  *slot_record_byte(image(), head_slot(1), offsetof(SlotRecord, role)) = std::byte{77};
  expect_refused_damage("role 77");
}

TEST_F(DamagedArrays, MappingState) {
  *slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, state)) = std::byte{9};
  expect_refused_damage("mapping state 9");
}

TEST_F(DamagedArrays, Direction) {
  *slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, dir)) = std::byte{200};
  expect_refused_damage("direction 200");
}

TEST_F(DamagedArrays, PartPointingOutsideThePool) {
  // find_mapping steps back `part` slots: from a data slot that says 200,
  // before slot 0.
  *slot_record_byte(image(), head_slot(0) + 1, offsetof(SlotRecord, part)) = std::byte{200};
  expect_refused_damage("part 200");
}

TEST_F(DamagedArrays, PadCount) {
  *slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, pad_slots)) = std::byte{255};
  expect_refused_damage("255 pad slots recorded");
}

TEST_F(DamagedArrays, AllocSizeReachingPastTheSegment) {
  const std::uint32_t huge = 0xfffff000;
  std::memcpy(slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, alloc_size)), &huge,
              sizeof(huge));
  expect_refused_damage("does not fit its segment");
}

TEST_F(DamagedArrays, MappingSizeLargerThanItsSlots) {
  const std::uint32_t size = 64 * 1024;
  std::memcpy(slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, mapping_size)), &size,
              sizeof(size));
  expect_refused_damage("do not fit the mapping");
}

TEST_F(DamagedArrays, DataOffsetBeyondASlot) {
  const std::uint16_t offset = 4000;
  std::memcpy(slot_record_byte(image(), head_slot(0), offsetof(SlotRecord, tlb_offset)), &offset,
              sizeof(offset));
  expect_refused_damage("data offset 4000");
}

TEST_F(DamagedArrays, FreeSlotHoldingMappingFields) {
  const std::uint32_t owner = 3;
  std::memcpy(slot_record_byte(image(), kSlots - 1, offsetof(SlotRecord, owner)), &owner,
              sizeof(owner));
  expect_refused_damage("free, but holds mapping fields");
}

TEST_F(DamagedArrays, AllOnes) {
  std::memset(image().data() + pool_image_layout(kSlots).list_offset, 0xff,
              pool_image_bytes(kSlots) - pool_image_layout(kSlots).list_offset);
  expect_refused_damage("slot 0");
}

// Random damage: refused, or (when it happens to leave the arrays
// consistent) a pool that keeps its invariants and can be emptied.
RC_GTEST_PROP(PoolImageDamage, IsRefusedOrHarmless, ()) {
  Memory memory(pool_image_bytes(kSlots));
  std::vector<PhysAddr> live;
  {
    auto made = SlotPool::create_in(kGeometry, policy("fast"), memory.span());
    RC_ASSERT(static_cast<bool>(made));
    const auto maps = *rc::gen::inRange(0, 30);
    for (int i = 0; i < maps; ++i) {
      auto m = (*made)->map(request(*rc::gen::inRange<std::uint64_t>(1, 20000),
                                    *rc::gen::inRange(0u, 8u),
                                    *rc::gen::inRange<std::uint64_t>(1, 1u << 30)));
      RC_ASSERT(static_cast<bool>(m));
    }
  }
  const PoolImageLayout layout = pool_image_layout(kSlots);
  const auto flips = *rc::gen::inRange(1, 8);
  for (int i = 0; i < flips; ++i) {
    const auto at =
        *rc::gen::inRange<std::uint64_t>(layout.list_offset, layout.slots_offset + kSlots * 32);
    memory.data()[at] ^= std::byte{*rc::gen::inRange<std::uint8_t>(1, 255)};
  }
  auto pool = adopt(memory.span());
  if (!pool) {
    RC_ASSERT(pool.error().code() == Errc::parse);
    return;
  }
  RC_ASSERT(static_cast<bool>((*pool)->check_invariants()));
  for (const MappingInfo& m : (*pool)->adopted_mappings()) {
    RC_ASSERT(static_cast<bool>((*pool)->release_adopted(m.tlb_addr)));
  }
  RC_ASSERT((*pool)->used() == 0u);
}

// Whatever a pool's maps and unmaps left (every policy, pad slots, kept
// offsets, mappings halfway through an unmap), adopt accepts it and sees
// exactly the mappings that were live.
RC_GTEST_PROP(PoolImageAdopt, SeesExactlyTheLiveMappings, ()) {
  const std::string name = *rc::gen::element<std::string>("linux", "linux-6.1", "fast");
  Memory memory(pool_image_bytes(kSlots));
  std::vector<MappingInfo> live;
  {
    auto made = SlotPool::create_in(kGeometry, policy(name), memory.span());
    RC_ASSERT(static_cast<bool>(made));
    SlotPool& pool = **made;
    const auto steps = *rc::gen::inRange(0, 200);
    for (int step = 0; step < steps; ++step) {
      if (live.empty() || *rc::gen::inRange(0, 3) != 0) {
        SlotRequest r =
            request(*rc::gen::inRange<std::uint64_t>(1, 64 * 1024), *rc::gen::inRange(0u, 8u),
                    *rc::gen::inRange<std::uint64_t>(1, 1u << 30));
        r.min_align_mask = *rc::gen::element<std::uint64_t>(0, 0xfff, 0x3fff);
        r.alloc_align_mask = *rc::gen::element<std::uint64_t>(0, 0xfff, 0x1fff);
        r.alloc_size = r.mapping_size + *rc::gen::element<std::uint64_t>(0, 100, 5000);
        r.dir = *rc::gen::element(Direction::to_device, Direction::from_device,
                                  Direction::bidirectional);
        auto m = pool.map(r);
        if (m) {
          auto info = pool.find_mapping(m->tlb_addr, 1);
          RC_ASSERT(static_cast<bool>(info));
          live.push_back(*info);
        }
      } else {
        const auto at = *rc::gen::inRange<std::size_t>(0, live.size());
        RC_ASSERT(static_cast<bool>(pool.unmap(live[at].tlb_addr, 0x3fff)));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(at));
      }
    }
    // One unmap cut short: begun, never finished.
    if (!live.empty() && *rc::gen::arbitrary<bool>()) {
      RC_ASSERT(static_cast<bool>(pool.begin_unmap(live.back().tlb_addr, 0x3fff)));
    }
    RC_ASSERT(static_cast<bool>(pool.check_invariants()));
  }
  auto pool = adopt(memory.span(), name);
  RC_ASSERT(static_cast<bool>(pool));
  std::sort(live.begin(), live.end(),
            [](const MappingInfo& a, const MappingInfo& b) { return a.tlb_addr < b.tlb_addr; });
  const std::vector<MappingInfo> adopted = (*pool)->adopted_mappings();
  RC_ASSERT(adopted.size() == live.size());
  std::uint64_t slots = 0;
  for (std::size_t i = 0; i < live.size(); ++i) {
    RC_ASSERT(same_mapping(adopted[i], live[i]));
    slots += live[i].nslots.value();
  }
  RC_ASSERT((*pool)->used() == slots);
  RC_ASSERT(static_cast<bool>((*pool)->check_invariants()));
}

// The holder check.

void set_holder(std::span<std::byte> image, std::int32_t pid) {
  PoolImageHeader header = read_header(image);
  header.owner_pid = pid;
  write_header(image, header);
}

TEST_F(ImageWithMappings, RefusesARunningHolder) {
  for (const std::int32_t holder : {static_cast<std::int32_t>(::getppid()), 1}) {
    set_holder(image(), holder);
    expect_refused(adopt(image()), Errc::busy,
                   "held by process " + std::to_string(holder) + ", which is still running");
    expect_refused(
        SlotPool::attach(kGeometry, policy("fast"), image(), {.mode = AttachMode::reset}),
        Errc::busy, "still running");
    EXPECT_EQ(read_header(image()).owner_pid, holder);
  }
  auto forced = SlotPool::attach(kGeometry, policy("fast"), image(),
                                 {.mode = AttachMode::adopt, .ignore_live_owner = true});
  ASSERT_TRUE(forced) << forced.error().message();
  EXPECT_EQ((*forced)->adopted_count(), mappings_.size());
  EXPECT_EQ(read_header(image()).owner_pid, ::getpid());
}

TEST_F(ImageWithMappings, AcceptsItsOwnPidAndNobody) {
  set_holder(image(), ::getpid());
  EXPECT_TRUE(adopt(image()));
  set_holder(image(), 0);
  EXPECT_TRUE(adopt(image()));
  set_holder(image(), -1);  // never passed to kill(): -1 would address every process
  EXPECT_TRUE(adopt(image()));
}

TEST_F(ImageWithMappings, ResetWithTheOverride) {
  set_holder(image(), 1);
  auto pool = SlotPool::attach(kGeometry, policy("fast"), image(),
                               {.mode = AttachMode::reset, .ignore_live_owner = true});
  ASSERT_TRUE(pool);
  EXPECT_EQ((*pool)->used(), 0u);
}

// A real takeover. The child formats a pool whose slots and image share
// one MAP_SHARED mapping (the same address in both processes), maps, tells
// the parent, waits, and dies without unmapping. While it runs the parent
// is refused; once it is gone, the parent adopts exactly its mappings.

struct ChildReport {
  std::uint32_t count = 0;
  std::array<std::uint64_t, 8> tlb_addr{};
  std::array<std::uint64_t, 8> mapping_size{};
  std::array<std::uint64_t, 8> first_slot{};
  std::array<std::uint64_t, 8> nslots{};
};

constexpr std::uint64_t kChildSlots = 1024;
constexpr std::uint32_t kChildAreas = 2;

[[noreturn]] void run_child(std::byte* base, int ready_fd, int go_fd) {
  const std::uint64_t slot_bytes = kChildSlots * kSlotSize;
  const std::span<std::byte> image(base + slot_bytes, pool_image_bytes(kChildSlots));
  auto* report = reinterpret_cast<ChildReport*>(base + slot_bytes + image.size());
  auto pool = SlotPool::create_in({PhysAddr::from_pointer(base), kChildSlots, kChildAreas},
                                  *make_slot_policy("linux"), image);
  if (!pool) {
    ::_exit(2);
  }
  static std::array<std::byte, 64 * 1024> buffer{};
  for (std::uint32_t i = 0; i < 5; ++i) {
    SlotRequest r;
    r.orig = PhysAddr::from_pointer(buffer.data() + i * 100);
    r.mapping_size = 1000 + i * 9000;
    r.pool_dma_start = DmaAddr(PhysAddr::from_pointer(base).value());
    r.cpu = i;
    r.dir = Direction::from_device;
    r.owner = 1;
    auto m = (*pool)->map(r);
    if (!m) {
      ::_exit(3);
    }
    report->tlb_addr[i] = m->tlb_addr.value();
    report->mapping_size[i] = r.mapping_size;
    report->first_slot[i] = m->index.value();
    report->nslots[i] = m->nslots.value();
    report->count = i + 1;
  }
  const char ready = 'r';
  char go = 0;
  if (::write(ready_fd, &ready, 1) != 1 || ::read(go_fd, &go, 1) != 1) {
    ::_exit(4);
  }
  ::_exit(0);  // no destructors: the pool dies as a crashed process's would
}

TEST(PoolImageTwoProcesses, ParentAdoptsTheMappingsOfADeadChild) {
  const std::uint64_t slot_bytes = kChildSlots * kSlotSize;
  const std::uint64_t image_bytes = pool_image_bytes(kChildSlots);
  Memory shared(slot_bytes + image_bytes + 4096, /*shared=*/true);
  const std::span<std::byte> image(shared.data() + slot_bytes, image_bytes);
  const auto* report =
      reinterpret_cast<const ChildReport*>(shared.data() + slot_bytes + image_bytes);
  const PoolGeometry geometry{PhysAddr::from_pointer(shared.data()), kChildSlots, kChildAreas};

  int ready[2];
  int go[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(go), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(go[1]);
    run_child(shared.data(), ready[1], go[0]);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);

  // The child holds the pool and is running.
  EXPECT_EQ(read_header(image).owner_pid, child);
  auto while_running =
      SlotPool::attach(geometry, policy("linux"), image, {.mode = AttachMode::adopt});
  ASSERT_FALSE(while_running);
  EXPECT_EQ(while_running.error().code(), Errc::busy);

  ASSERT_EQ(::write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ::close(ready[0]);
  ::close(go[1]);

  EXPECT_EQ(read_header(image).owner_pid, child);  // it died holding the pool
  auto pool = SlotPool::attach(geometry, policy("linux"), image, {.mode = AttachMode::adopt});
  ASSERT_TRUE(pool) << pool.error().message();
  const std::vector<MappingInfo> adopted = (*pool)->adopted_mappings();
  ASSERT_EQ(report->count, 5u);
  ASSERT_EQ(adopted.size(), report->count);
  std::uint64_t used = 0;
  for (std::uint32_t i = 0; i < report->count; ++i) {
    const auto it = std::find_if(adopted.begin(), adopted.end(), [&](const MappingInfo& m) {
      return m.tlb_addr.value() == report->tlb_addr[i];
    });
    ASSERT_NE(it, adopted.end()) << i;
    EXPECT_EQ(it->mapping_size, report->mapping_size[i]);
    EXPECT_EQ(it->index.value(), report->first_slot[i]);
    EXPECT_EQ(it->nslots.value(), report->nslots[i]);
    EXPECT_EQ(it->dir, Direction::from_device);
    EXPECT_EQ(it->owner, kAdoptedOwner);
    EXPECT_EQ(it->orig, PhysAddr(0));  // the child's buffer: never touched here
    used += report->nslots[i];
  }
  EXPECT_EQ((*pool)->used(), used);
  EXPECT_EQ((*pool)->stats().adopted, 5u);
  EXPECT_EQ(read_header(image).owner_pid, ::getpid());
  for (const MappingInfo& m : adopted) {
    EXPECT_TRUE((*pool)->release_adopted(m.tlb_addr));
  }
  EXPECT_EQ((*pool)->used(), 0u);
  EXPECT_TRUE((*pool)->check_invariants());
}

}  // namespace
}  // namespace swiotlb
