// Tests for the modelled machine (the board of seed 003 and hand-made
// layouts): bank validation, lazy backing, translation to host pointers,
// the per-bank allocator; and for the host address space.
#include "swiotlb/platform/machine_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "platform/platform_test_support.h"
#include "swiotlb/platform/address_space.h"

namespace swiotlb {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

std::unique_ptr<MachineModel> board() {
  Result<std::unique_ptr<MachineModel>> m = MachineModel::iproc_stingray();
  EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message());
  return m ? std::move(*m) : nullptr;
}

std::string create_error(std::vector<MemoryBank> banks) {
  Result<std::unique_ptr<MachineModel>> m = MachineModel::create(std::move(banks));
  EXPECT_FALSE(m.has_value()) << "a machine was made";
  return m ? std::string() : m.error().message();
}

// --- Banks ----------------------------------------------------------------------

TEST(MachineModel, IprocStingrayHasTheBoardsBanks) {
  auto machine = board();
  ASSERT_TRUE(machine);
  const std::vector<MemoryBank> want = {{PhysAddr(2 * kGiB), 2 * kGiB},
                                        {PhysAddr(34 * kGiB), 14 * kGiB},
                                        {PhysAddr(576 * kGiB), 16 * kGiB},
                                        {PhysAddr(640 * kGiB), 16 * kGiB}};
  EXPECT_THAT(machine->banks(), ElementsAreArray(want));
  EXPECT_EQ(iproc_stingray_banks(), want);
  EXPECT_EQ(machine->ram_bytes(), 48 * kGiB);
}

TEST(MachineModel, BackingIsLazy) {
  const std::uint64_t before = test::resident_bytes();
  auto machine = board();
  ASSERT_TRUE(machine);
  // Touch one byte at each end of every bank: a handful of pages.
  for (const MemoryBank& bank : machine->banks()) {
    for (PhysAddr addr : {bank.start, bank.end() - 1}) {
      Result<std::byte*> p = machine->host_pointer(addr, 1);
      ASSERT_TRUE(p.has_value()) << p.error().message();
      **p = std::byte{1};
    }
  }
  const std::uint64_t after = test::resident_bytes();
  if (before == 0 || after == 0) {
    GTEST_SKIP() << "/proc/self/statm is not readable";
  }
  // 48 GiB of banks; a generous bound for allocator noise and sanitizers.
  EXPECT_LT(after > before ? after - before : 0, 64 * kMiB);
}

TEST(MachineModel, BanksAreSortedByAddress) {
  auto m = MachineModel::create({{PhysAddr(8 * kGiB), kGiB}, {PhysAddr(kGiB), kGiB}});
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ((*m)->banks()[0].start, PhysAddr(kGiB));
  EXPECT_EQ((*m)->bank_of(PhysAddr(8 * kGiB)), 1u);
}

TEST(MachineModel, OverlappingBanksAreRefusedNamingBoth) {
  const std::string message =
      create_error({{PhysAddr(2 * kGiB), 2 * kGiB}, {PhysAddr(3 * kGiB), 2 * kGiB}});
  EXPECT_THAT(message, HasSubstr("RAM banks [0x80000000, 0x100000000) and "
                                 "[0xc0000000, 0x140000000) overlap"));
  EXPECT_THAT(create_error({{PhysAddr(kGiB), kMiB}, {PhysAddr(kGiB), 2 * kMiB}}),
              HasSubstr("overlap"));
}

TEST(MachineModel, AdjacentBanksAreNotAnOverlap) {
  auto m = MachineModel::create({{PhysAddr(kGiB), kGiB}, {PhysAddr(2 * kGiB), kGiB}});
  EXPECT_TRUE(m.has_value()) << m.error().message();
}

TEST(MachineModel, MalformedBanksAreRefused) {
  EXPECT_THAT(create_error({}), HasSubstr("at least one RAM bank"));
  EXPECT_THAT(create_error({{PhysAddr(kGiB), 0}}), HasSubstr("has no bytes"));
  EXPECT_THAT(create_error({{PhysAddr(kGiB + 1), kMiB}}), HasSubstr("not aligned"));
  EXPECT_THAT(create_error({{PhysAddr(kGiB), kMiB + 512}}), HasSubstr("not aligned"));
  EXPECT_THAT(create_error({{PhysAddr(0xffff'ffff'fff0'0000), 2 * kMiB}}),
              HasSubstr("runs past the top"));
}

TEST(MachineModel, BankOfKnowsTheBoundaries) {
  auto machine = board();
  ASSERT_TRUE(machine);
  EXPECT_EQ(machine->bank_of(PhysAddr(2 * kGiB)), 0u);
  EXPECT_EQ(machine->bank_of(PhysAddr(4 * kGiB - 1)), 0u);
  EXPECT_EQ(machine->bank_of(PhysAddr(4 * kGiB)), std::nullopt);
  EXPECT_EQ(machine->bank_of(PhysAddr(0)), std::nullopt);
  EXPECT_EQ(machine->bank_of(PhysAddr(40 * kGiB)), 1u);
  EXPECT_EQ(machine->bank_of(PhysAddr(600 * kGiB)), std::nullopt);
  EXPECT_EQ(machine->bank_of(PhysAddr(656 * kGiB - 1)), 3u);
  EXPECT_EQ(machine->bank_of(PhysAddr(656 * kGiB)), std::nullopt);
}

// --- Translation ----------------------------------------------------------------

TEST(MachineModel, HostPointerRoundTrips) {
  auto machine = board();
  ASSERT_TRUE(machine);
  const PhysAddr addr(640 * kGiB + 12345);
  Result<std::byte*> p = machine->host_pointer(addr, 16);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  std::memcpy(*p, "bounce me", 10);

  Result<std::byte*> q = machine->host_pointer(addr + 7, 3);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EXPECT_EQ(*q, *p + 7);
  EXPECT_EQ(std::memcmp(*q, "me", 3), 0);

  // The same offset in another bank is other memory.
  Result<std::byte*> other = machine->host_pointer(PhysAddr(576 * kGiB + 12345), 16);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(*other, *p);
  EXPECT_EQ((*other)[0], std::byte{0});
}

TEST(MachineModel, WholeBankAndEmptyRangesTranslate) {
  auto machine = board();
  ASSERT_TRUE(machine);
  EXPECT_TRUE(machine->host_pointer(PhysAddr(34 * kGiB), 14 * kGiB).has_value());
  EXPECT_TRUE(machine->host_pointer(PhysAddr(48 * kGiB - 1), 0).has_value());
  EXPECT_TRUE(machine->contains(PhysAddr(34 * kGiB), 14 * kGiB));
  EXPECT_TRUE(machine->contains(PhysAddr(48 * kGiB - 1), 0));
}

TEST(MachineModel, AddressOutsideEveryBankIsAnError) {
  auto machine = board();
  ASSERT_TRUE(machine);
  for (std::uint64_t hole : {std::uint64_t{0}, kGiB, 4 * kGiB, 100 * kGiB, 700 * kGiB}) {
    Result<std::byte*> p = machine->host_pointer(PhysAddr(hole), 1);
    ASSERT_FALSE(p.has_value()) << hole;
    EXPECT_EQ(p.error().code(), Errc::out_of_range);
    EXPECT_THAT(p.error().message(), HasSubstr("is in no RAM bank"));
    EXPECT_THAT(p.error().message(), HasSubstr("[0xa000000000, 0xa400000000)"));
    EXPECT_FALSE(machine->contains(PhysAddr(hole)));
  }
}

TEST(MachineModel, RangeRunningPastItsBankIsAnError) {
  auto machine = board();
  ASSERT_TRUE(machine);
  Result<std::byte*> p = machine->host_pointer(PhysAddr(4 * kGiB - 8), 16);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message(), HasSubstr("runs past the end of RAM bank 0"));
  EXPECT_FALSE(machine->contains(PhysAddr(4 * kGiB - 8), 16));
  EXPECT_FALSE(machine->host_pointer(PhysAddr(2 * kGiB), ~std::uint64_t{0}).has_value());
}

TEST(MachineModel, RangeAcrossAdjacentBanksIsAnError) {
  // Adjacent in the model, not in host memory: no single pointer covers both.
  auto m = MachineModel::create({{PhysAddr(kGiB), kGiB}, {PhysAddr(2 * kGiB), kGiB}});
  ASSERT_TRUE(m.has_value()) << m.error().message();
  Result<std::byte*> p = (*m)->host_pointer(PhysAddr(2 * kGiB - 16), 32);
  ASSERT_FALSE(p.has_value());
  EXPECT_THAT(p.error().message(), HasSubstr("must lie inside one bank"));
  EXPECT_FALSE((*m)->contains(PhysAddr(2 * kGiB - 16), 32));
}

// --- Allocation -----------------------------------------------------------------

TEST(MachineModel, AllocatesInsideTheRequestedBank) {
  auto machine = board();
  ASSERT_TRUE(machine);
  Result<PhysAddr> a = machine->allocate(3, 3 * kMiB, 2 * kMiB);
  Result<PhysAddr> b = machine->allocate(3, kMiB, 4096);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(machine->bank_of(*a), 3u);
  EXPECT_EQ(machine->bank_of(*b), 3u);
  EXPECT_EQ(a->value() % (2 * kMiB), 0u);
  EXPECT_TRUE(*b >= *a + 3 * kMiB || *b + kMiB <= *a);
  EXPECT_TRUE(machine->contains(*a, 3 * kMiB));
  EXPECT_EQ(machine->allocated_bytes(3), 4 * kMiB);
  EXPECT_EQ(machine->allocated_bytes(0), 0u);

  Result<std::byte*> p = machine->host_pointer(*b, kMiB);
  ASSERT_TRUE(p.has_value());
  std::memset(*p, 0xab, kMiB);
}

TEST(MachineModel, AlignmentIsOfThePhysicalAddress) {
  // A bank that starts 4 KiB past a 1 MiB boundary.
  auto m = MachineModel::create({{PhysAddr(kGiB + 4096), 64 * kMiB}});
  ASSERT_TRUE(m.has_value()) << m.error().message();
  Result<PhysAddr> a = (*m)->allocate(0, 4096, kMiB);
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(*a, PhysAddr(kGiB + kMiB));
  // The pad before it is still free, for a request it fits.
  Result<PhysAddr> small = (*m)->allocate(0, 4096, 4096);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(*small, PhysAddr(kGiB + 4096));
}

TEST(MachineModel, FreedRangesAreReusedAndMerged) {
  auto m = MachineModel::create({{PhysAddr(kGiB), 4 * kMiB}});
  ASSERT_TRUE(m.has_value()) << m.error().message();
  MachineModel& machine = **m;
  std::vector<PhysAddr> parts;
  for (int i = 0; i < 4; ++i) {
    Result<PhysAddr> a = machine.allocate(0, kMiB, 4096);
    ASSERT_TRUE(a.has_value()) << a.error().message();
    parts.push_back(*a);
  }
  EXPECT_FALSE(machine.allocate(0, 1, 1).has_value());
  ASSERT_TRUE(machine.free(parts[1]).has_value());
  Result<PhysAddr> again = machine.allocate(0, kMiB, 4096);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, parts[1]);

  // Freed in an order that needs merging on both sides.
  for (int i : {0, 2, 1, 3}) {
    ASSERT_TRUE(machine.free(parts[static_cast<std::size_t>(i)]).has_value());
  }
  EXPECT_EQ(machine.allocated_bytes(0), 0u);
  Result<PhysAddr> whole = machine.allocate(0, 4 * kMiB, 4096);
  ASSERT_TRUE(whole.has_value()) << whole.error().message();
  EXPECT_EQ(*whole, PhysAddr(kGiB));
}

TEST(MachineModel, FreedMemoryGoesBackToTheHost) {
  auto machine = board();
  ASSERT_TRUE(machine);
  Result<PhysAddr> a = machine->allocate(2, 32 * kMiB, 4096);
  ASSERT_TRUE(a.has_value());
  std::byte* p = *machine->host_pointer(*a, 32 * kMiB);
  std::memset(p, 1, 32 * kMiB);
  ASSERT_TRUE(machine->free(*a).has_value());
  EXPECT_EQ(p[0], std::byte{0});
}

TEST(MachineModel, FreeOfWhatWasNotAllocatedIsAnError) {
  auto machine = board();
  ASSERT_TRUE(machine);
  Result<PhysAddr> a = machine->allocate(1, kMiB, 4096);
  ASSERT_TRUE(a.has_value());
  Status inside = machine->free(*a + 4096);
  ASSERT_FALSE(inside.has_value());
  EXPECT_EQ(inside.error().code(), Errc::not_mapped);
  EXPECT_THAT(inside.error().message(), HasSubstr("not the start of a live allocation"));
  EXPECT_FALSE(machine->free(PhysAddr(kGiB)).has_value());
  ASSERT_TRUE(machine->free(*a).has_value());
  EXPECT_FALSE(machine->free(*a).has_value());  // twice
}

TEST(MachineModel, FullBankSaysHowFullItIs) {
  auto machine = board();
  ASSERT_TRUE(machine);
  Result<PhysAddr> a = machine->allocate(0, 3 * kGiB, 4096);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code(), Errc::pool_full);
  EXPECT_THAT(a.error().message(), HasSubstr("no free run of 3221225472 bytes"));
  EXPECT_THAT(a.error().message(), HasSubstr("2147483648 of 2147483648 bytes free"));
}

TEST(MachineModel, BadAllocationRequestsAreRefused) {
  auto machine = board();
  ASSERT_TRUE(machine);
  EXPECT_THAT(machine->allocate(4, kMiB, 4096).error().message(),
              HasSubstr("RAM bank 4 does not exist"));
  EXPECT_THAT(machine->allocate(0, 0, 4096).error().message(), HasSubstr("at least one byte"));
  EXPECT_THAT(machine->allocate(0, kMiB, 3).error().message(), HasSubstr("not a power of two"));
  EXPECT_THAT(machine->allocate(0, kMiB, 0).error().message(), HasSubstr("not a power of two"));
}

TEST(MachineModel, ConcurrentAllocationsNeverOverlap) {
  auto m = MachineModel::create({{PhysAddr(kGiB), 64 * kMiB}});
  ASSERT_TRUE(m.has_value()) << m.error().message();
  MachineModel& machine = **m;
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&machine, &failures, t] {
      const auto mark = static_cast<unsigned char>(t + 1);
      for (int round = 0; round < kRounds; ++round) {
        const std::uint64_t bytes = 4096 * static_cast<std::uint64_t>(1 + (round + t) % 8);
        Result<PhysAddr> a = machine.allocate(0, bytes, 4096);
        if (!a) {
          ++failures[static_cast<std::size_t>(t)];
          continue;
        }
        std::byte* p = *machine.host_pointer(*a, bytes);
        std::memset(p, mark, bytes);
        if (std::any_of(p, p + bytes, [mark](std::byte b) { return b != std::byte{mark}; })) {
          ++failures[static_cast<std::size_t>(t)];
        }
        if (!machine.free(*a)) {
          ++failures[static_cast<std::size_t>(t)];
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
  EXPECT_EQ(machine.allocated_bytes(0), 0u);
  EXPECT_TRUE(machine.allocate(0, 64 * kMiB, 4096).has_value());
}

// --- Address spaces ---------------------------------------------------------------

// What the layer above does: copy through whichever address space it has.
Status copy_in(const AddressSpace& space, PhysAddr to, const char* text) {
  const std::size_t bytes = std::strlen(text) + 1;
  Result<std::byte*> p = space.host_pointer(to, bytes);
  if (!p) {
    return p.error();
  }
  std::memcpy(*p, text, bytes);
  return Status::ok();
}

TEST(AddressSpace, HostAndModelAreInterchangeable) {
  char buffer[16] = {};
  ASSERT_TRUE(copy_in(host_address_space(), PhysAddr::from_pointer(buffer), "host").has_value());
  EXPECT_STREQ(buffer, "host");

  auto machine = board();
  ASSERT_TRUE(machine);
  ASSERT_TRUE(copy_in(*machine, PhysAddr(2 * kGiB), "model").has_value());
  EXPECT_STREQ(reinterpret_cast<const char*>(*machine->host_pointer(PhysAddr(2 * kGiB), 6)),
               "model");
  EXPECT_FALSE(copy_in(*machine, PhysAddr(kGiB), "hole").has_value());
}

TEST(HostAddressSpace, IsTheIdentity) {
  const HostAddressSpace space;
  int x = 0;
  Result<std::byte*> p = space.host_pointer(PhysAddr::from_pointer(&x), sizeof(x));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(static_cast<void*>(*p), static_cast<void*>(&x));
  EXPECT_TRUE(space.host_pointer(PhysAddr(~std::uint64_t{0}), 1).has_value());
}

TEST(HostAddressSpace, RefusesNullAndWrappingRanges) {
  const HostAddressSpace space;
  Result<std::byte*> null = space.host_pointer(PhysAddr(0), 1);
  ASSERT_FALSE(null.has_value());
  EXPECT_THAT(null.error().message(), HasSubstr("null"));
  Result<std::byte*> wrap = space.host_pointer(PhysAddr(~std::uint64_t{0}), 2);
  ASSERT_FALSE(wrap.has_value());
  EXPECT_THAT(wrap.error().message(), HasSubstr("wraps"));
}

}  // namespace
}  // namespace swiotlb
