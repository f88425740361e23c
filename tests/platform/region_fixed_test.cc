// Tests for regions at a fixed address (seed 000: a pool at a predefined
// address; kdump reusing the old kernel's pool) and for attaching a shared
// region again at the address its creator used, in this process and in a
// forked child.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "platform/platform_test_support.h"
#include "swiotlb/platform/machine_model.h"
#include "swiotlb/platform/region.h"

namespace swiotlb {
namespace {

using test::TempDir;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kBytes = 64 * kPage;

// A free, page-aligned address for a test region, or a skip when the
// system will not give one.
#define FREE_ADDRESS_OR_SKIP(name, bytes)                                                     \
  const std::optional<PhysAddr> name##_probe = test::free_address(bytes);                     \
  if (!name##_probe) {                                                                        \
    GTEST_SKIP() << "the system refuses to reserve " << (bytes) << " bytes of address space"; \
  }                                                                                           \
  const PhysAddr name = *name##_probe

// Creates the region, or skips the test when the system refuses a fixed
// mapping at an address it had just reported free (a seccomp filter, a
// sanitizer runtime that owns that range).
#define CREATE_OR_SKIP(region, spec)                                                \
  Result<std::unique_ptr<Region>> region##_result = Region::create(spec);           \
  if (!region##_result && region##_result.error().code() == Errc::system &&         \
      region##_result.error().message().find("taken") == std::string::npos) {       \
    GTEST_SKIP() << "fixed mapping refused: " << region##_result.error().message(); \
  }                                                                                 \
  ASSERT_TRUE(region##_result.has_value()) << region##_result.error().message();    \
  std::unique_ptr<Region> region = std::move(*region##_result)

std::string create_error(const RegionSpec& spec) {
  Result<std::unique_ptr<Region>> r = Region::create(spec);
  EXPECT_FALSE(r.has_value()) << "a region was made at " << (r ? (*r)->data() : nullptr);
  return r ? std::string() : r.error().message();
}

std::string attach_error(const AttachSpec& spec) {
  Result<std::unique_ptr<Region>> r = Region::attach(spec);
  EXPECT_FALSE(r.has_value()) << "a region was attached";
  return r ? std::string() : r.error().message();
}

void write_text(const Region& region, const char* text) {
  std::memcpy(region.data(), text, std::strlen(text) + 1);
}

std::string read_text(const std::byte* p) {
  return reinterpret_cast<const char*>(p);
}

// --- Placement at a fixed address -------------------------------------------

TEST(FixedAddress, EachKindLandsExactlyThere) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  for (RegionKind kind : {RegionKind::anonymous, RegionKind::memfd, RegionKind::file}) {
    SCOPED_TRACE(to_string(kind));
    FREE_ADDRESS_OR_SKIP(addr, kBytes);
    RegionSpec spec{.kind = kind, .bytes = kBytes, .fixed_address = addr};
    if (kind == RegionKind::file) {
      spec.path = dir.file("pool");
      spec.create = true;
    }
    CREATE_OR_SKIP(region, spec);
    EXPECT_EQ(region->start(), addr);
    EXPECT_EQ(region->kind(), kind);
    EXPECT_EQ(region->dma_base().value(), addr.value());
    write_text(*region, "here");
    EXPECT_EQ(read_text(static_cast<std::byte*>(addr.to_pointer())), "here");
  }
}

TEST(FixedAddress, DeviceAddressCanBeGivenSeparately) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(
      region,
      (RegionSpec{.bytes = kBytes, .fixed_address = addr, .dma_base = DmaAddr(0xf000'0000)}));
  EXPECT_EQ(region->start(), addr);
  EXPECT_EQ(region->dma_base(), DmaAddr(0xf000'0000));
}

TEST(FixedAddress, TakenAddressIsRefusedNamingWhatHoldsIt) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(first,
                 (RegionSpec{.kind = RegionKind::memfd, .bytes = kBytes, .fixed_address = addr}));
  // Overlapping the first region's tail, not just its start.
  const PhysAddr inside = addr + kBytes / 2;
  const std::string message = create_error({.bytes = kBytes, .fixed_address = inside});
  EXPECT_THAT(message, HasSubstr(fmt::format("address {:#x} is taken", inside.value())));
  EXPECT_THAT(message, HasSubstr("memfd:swiotlb-region"));
  EXPECT_THAT(message, HasSubstr(std::strerror(EEXIST)));
  EXPECT_EQ(read_text(first->data()), "");  // untouched by the failed attempt
}

TEST(FixedAddress, FallbackPlacesElsewhereAndLogsWhy) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(first, (RegionSpec{.bytes = kBytes, .fixed_address = addr}));
  test::LogCapture log;
  Result<std::unique_ptr<Region>> second = Region::create({.kind = RegionKind::memfd,
                                                           .bytes = kBytes,
                                                           .fixed_address = addr,
                                                           .fallback_anywhere = true});
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_NE((*second)->start(), addr);
  EXPECT_EQ((*second)->dma_base().value(), (*second)->start().value());
  ASSERT_THAT(log.messages(), SizeIs(1));
  EXPECT_THAT(log.messages()[0], HasSubstr(fmt::format("could not place memfd")));
  EXPECT_THAT(log.messages()[0],
              HasSubstr(fmt::format("at {:#x}, allocating elsewhere", addr.value())));
  EXPECT_THAT(log.messages()[0], HasSubstr("is taken"));
}

TEST(FixedAddress, FallbackIsOffByDefault) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(first, (RegionSpec{.bytes = kBytes, .fixed_address = addr}));
  test::LogCapture log;
  EXPECT_THAT(create_error({.bytes = kBytes, .fixed_address = addr}), HasSubstr("is taken"));
  EXPECT_THAT(log.messages(), SizeIs(0));
}

TEST(FixedAddress, MisalignedAddressIsRefusedEvenWithFallback) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  const PhysAddr odd = addr + 0x800;
  const std::string message =
      create_error({.bytes = kBytes, .fixed_address = odd, .fallback_anywhere = true});
  EXPECT_THAT(message,
              HasSubstr(fmt::format("fixed address {:#x} is not a multiple", odd.value())));
  EXPECT_THAT(message, HasSubstr("page size (4096 bytes)"));
}

// --- Fixed addresses in a modelled machine ----------------------------------

TEST(FixedAddress, InsideModelledRamIsAccepted) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  auto machine = MachineModel::create({{addr, kBytes}});
  ASSERT_TRUE(machine.has_value()) << machine.error().message();
  CREATE_OR_SKIP(region, (RegionSpec{.kind = RegionKind::memfd,
                                     .bytes = kBytes,
                                     .fixed_address = addr,
                                     .machine = machine->get()}));
  EXPECT_EQ(region->start(), addr);
}

TEST(FixedAddress, OutsideModelledRamIsRefused) {
  auto machine = MachineModel::iproc_stingray();
  ASSERT_TRUE(machine.has_value()) << machine.error().message();
  // 1 GiB: below the board's first bank at 2 GiB.
  const std::string message = create_error({.bytes = kBytes,
                                            .fixed_address = PhysAddr(0x4000'0000),
                                            .fallback_anywhere = true,
                                            .machine = machine->get()});
  EXPECT_THAT(message, HasSubstr("fixed address 0x40000000 is outside the modelled RAM"));
  EXPECT_THAT(message, HasSubstr("[0x80000000, 0x100000000)"));
}

TEST(FixedAddress, BankTooSmallForTheSizeIsRefused) {
  auto machine = MachineModel::iproc_stingray();
  ASSERT_TRUE(machine.has_value()) << machine.error().message();
  // 1 MiB before the end of the 2 GiB @ 2 GiB bank, asking for 2 MiB.
  const std::string message = create_error(
      {.bytes = 2 << 20, .fixed_address = PhysAddr(0xfff0'0000), .machine = machine->get()});
  EXPECT_THAT(message, HasSubstr("RAM bank 0 [0x80000000, 0x100000000) is too small"));
  EXPECT_THAT(message, HasSubstr("1048576 bytes from fixed address 0xfff00000"));
  EXPECT_THAT(message, HasSubstr("needs 2097152"));
}

// --- Attaching again ----------------------------------------------------------

TEST(Attach, MemfdAtTheSameAddressAfterTheFirstIsUnmapped) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(first,
                 (RegionSpec{.kind = RegionKind::memfd, .bytes = kBytes, .fixed_address = addr}));
  write_text(*first, "pool header");
  const int keep = dup(first->fd());
  ASSERT_GE(keep, 0);
  first.reset();

  Result<std::unique_ptr<Region>> again =
      Region::attach({.fd = keep, .bytes = kBytes, .fixed_address = addr});
  close(keep);  // the region holds its own duplicate
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ((*again)->start(), addr);
  EXPECT_EQ((*again)->kind(), RegionKind::memfd);
  EXPECT_EQ(read_text((*again)->data()), "pool header");
}

TEST(Attach, FileByPathAtTheSameAddress) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("pool");
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  {
    CREATE_OR_SKIP(first, (RegionSpec{.kind = RegionKind::file,
                                      .bytes = kBytes,
                                      .path = path,
                                      .offset = 2 * kPage,
                                      .create = true,
                                      .fixed_address = addr}));
    write_text(*first, "kept in the file");
  }
  Result<std::unique_ptr<Region>> again =
      Region::attach({.path = path, .offset = 2 * kPage, .bytes = kBytes, .fixed_address = addr});
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ((*again)->start(), addr);
  EXPECT_EQ((*again)->kind(), RegionKind::file);
  EXPECT_EQ((*again)->offset(), 2 * kPage);
  EXPECT_EQ(read_text((*again)->data()), "kept in the file");
}

TEST(Attach, WhileTheFirstIsMappedTheAddressIsTaken) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(first,
                 (RegionSpec{.kind = RegionKind::memfd, .bytes = kBytes, .fixed_address = addr}));
  const std::string message =
      attach_error({.fd = first->fd(), .bytes = kBytes, .fixed_address = addr});
  EXPECT_THAT(message, HasSubstr(fmt::format("address {:#x} is taken", addr.value())));
}

TEST(Attach, ForkedChildAttachesAtTheSameAddress) {
  FREE_ADDRESS_OR_SKIP(addr, kBytes);
  CREATE_OR_SKIP(region,
                 (RegionSpec{.kind = RegionKind::memfd, .bytes = kBytes, .fixed_address = addr}));
  write_text(*region, "from the parent");
  const int fd = region->fd();
  const int code = test::run_in_child([fd, addr] {
    // A fresh process would not have the parent's mapping; drop the copy
    // fork made, keeping only the descriptor.
    munmap(addr.to_pointer(), kBytes);
    Result<std::unique_ptr<Region>> child =
        Region::attach({.fd = fd, .bytes = kBytes, .fixed_address = addr});
    if (!child) {
      return 2;
    }
    if (read_text((*child)->data()) != "from the parent") {
      return 3;
    }
    write_text(**child, "from the child");
    return 0;
  });
  ASSERT_EQ(code, 0);
  EXPECT_EQ(read_text(region->data()), "from the child");
}

TEST(Attach, AnywhereWhenNoAddressIsGiven) {
  auto first = Region::create({.kind = RegionKind::memfd, .bytes = kBytes});
  ASSERT_TRUE(first.has_value()) << first.error().message();
  write_text(**first, "shared");
  Result<std::unique_ptr<Region>> second =
      Region::attach({.fd = (*first)->fd(), .bytes = kBytes, .dma_base = DmaAddr(0x1000)});
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_NE((*second)->start(), (*first)->start());
  EXPECT_EQ((*second)->dma_base(), DmaAddr(0x1000));
  EXPECT_EQ(read_text((*second)->data()), "shared");
}

TEST(Attach, RegionLargerThanTheFileIsRefused) {
  auto first = Region::create({.kind = RegionKind::memfd, .bytes = kBytes});
  ASSERT_TRUE(first.has_value()) << first.error().message();
  const std::string message =
      attach_error({.fd = (*first)->fd(), .offset = kPage, .bytes = kBytes});
  EXPECT_THAT(message, HasSubstr(fmt::format("holds {} bytes, too small", kBytes)));
}

TEST(Attach, NeedsExactlyOneOfDescriptorAndPath) {
  EXPECT_THAT(attach_error({.bytes = kPage}), HasSubstr("either a descriptor or a path"));
  EXPECT_THAT(attach_error({.fd = 0, .path = "/tmp/x", .bytes = kPage}),
              HasSubstr("either a descriptor or a path"));
  EXPECT_THAT(attach_error({.path = "/tmp/x"}), HasSubstr("at least one byte"));
}

TEST(Attach, BadDescriptorIsReported) {
  EXPECT_THAT(attach_error({.fd = 1 << 20, .bytes = kPage}), HasSubstr(std::strerror(EBADF)));
}

}  // namespace
}  // namespace swiotlb
