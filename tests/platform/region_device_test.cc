// Regions in device memory: a device file mapped at an offset, with the
// bus address the device sees kept apart from where the CPU maps it. The
// device is played by a stand-in that behaves like a device file: a memfd
// opened again through /proc/self/fd.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "platform_test_support.h"
#include "swiotlb/platform/region.h"

namespace swiotlb {
namespace {

using ::testing::HasSubstr;

constexpr std::size_t kPage = 4096;

// A memfd of `bytes` bytes standing in for a device file; its path is the
// one a device node would have.
class FakeDevice {
 public:
  explicit FakeDevice(std::size_t bytes) : fd_(memfd_create("fake-device", MFD_CLOEXEC)) {
    if (fd_ >= 0 && ftruncate(fd_, static_cast<off_t>(bytes)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~FakeDevice() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  FakeDevice(const FakeDevice&) = delete;
  FakeDevice& operator=(const FakeDevice&) = delete;

  bool ok() const { return fd_ >= 0; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  void write_at(std::uint64_t offset, const std::vector<std::byte>& bytes) const {
    ASSERT_EQ(pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
  }
  std::vector<std::byte> read_at(std::uint64_t offset, std::size_t size) const {
    std::vector<std::byte> bytes(size);
    EXPECT_EQ(pread(fd_, bytes.data(), size, static_cast<off_t>(offset)),
              static_cast<ssize_t>(size));
    return bytes;
  }

 private:
  int fd_;
};

std::vector<std::byte> bytes_of(std::size_t size, unsigned seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) {
    out[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  }
  return out;
}

TEST(RegionDevice, MapsThePartOfTheDeviceAtItsOffsetWithItsBusAddress) {
  FakeDevice device(16 * kPage);
  ASSERT_TRUE(device.ok());
  const std::vector<std::byte> before = bytes_of(4 * kPage, 1);
  device.write_at(8 * kPage, before);

  auto region = Region::create({.kind = RegionKind::device,
                                .bytes = 4 * kPage,
                                .path = device.path(),
                                .offset = 8 * kPage,
                                .dma_base = DmaAddr(0xc0000000)});
  ASSERT_TRUE(region) << region.error().message();
  EXPECT_EQ((*region)->kind(), RegionKind::device);
  EXPECT_EQ((*region)->size(), 4 * kPage);
  EXPECT_EQ((*region)->offset(), 8 * kPage);
  EXPECT_EQ((*region)->dma_base().value(), 0xc0000000u);
  EXPECT_NE((*region)->start().value(), 0xc0000000u) << "the CPU maps it where it can";
  // The device's memory, not a copy: what was there shows, what is written
  // lands there.
  EXPECT_EQ(std::memcmp((*region)->data(), before.data(), before.size()), 0);
  const std::vector<std::byte> after = bytes_of(kPage, 7);
  std::memcpy((*region)->data() + kPage, after.data(), after.size());
  EXPECT_EQ(device.read_at(9 * kPage, kPage), after);
  EXPECT_EQ(to_string(RegionKind::device), "device");
}

TEST(RegionDevice, AtAFixedCpuAddressTheBusAddressStaysItsOwn) {
  FakeDevice device(4 * kPage);
  ASSERT_TRUE(device.ok());
  const std::optional<PhysAddr> where = test::free_address(4 * kPage);
  ASSERT_TRUE(where);
  auto region = Region::create({.kind = RegionKind::device,
                                .bytes = 4 * kPage,
                                .path = device.path(),
                                .fixed_address = *where,
                                .dma_base = DmaAddr(0x80000000)});
  ASSERT_TRUE(region) << region.error().message();
  EXPECT_EQ((*region)->start(), *where);
  EXPECT_EQ((*region)->dma_base().value(), 0x80000000u);
}

TEST(RegionDevice, IsNeverCreatedResizedOrTakenFromElsewhere) {
  test::TempDir dir;
  ASSERT_TRUE(dir.ok());
  auto created = Region::create(
      {.kind = RegionKind::device, .bytes = kPage, .path = dir.file("uio0"), .create = true});
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message(), HasSubstr("never created"));

  auto missing =
      Region::create({.kind = RegionKind::device, .bytes = kPage, .path = dir.file("uio0")});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::system);
  EXPECT_THAT(missing.error().message(), HasSubstr("device " + dir.file("uio0")));

  // A FIFO opens read-write but is no memory.
  ASSERT_EQ(mkfifo(dir.file("fifo").c_str(), 0600), 0);
  auto fifo =
      Region::create({.kind = RegionKind::device, .bytes = kPage, .path = dir.file("fifo")});
  ASSERT_FALSE(fifo);
  EXPECT_THAT(fifo.error().message(), HasSubstr("neither a character device nor a file"));

  auto no_path = Region::create({.kind = RegionKind::device, .bytes = kPage});
  ASSERT_FALSE(no_path);
  EXPECT_THAT(no_path.error().message(), HasSubstr("needs a path"));

  // A stand-in shorter than offset + size is refused, not grown.
  FakeDevice device(2 * kPage);
  ASSERT_TRUE(device.ok());
  auto too_long = Region::create(
      {.kind = RegionKind::device, .bytes = 2 * kPage, .path = device.path(), .offset = kPage});
  ASSERT_FALSE(too_long);
  EXPECT_THAT(too_long.error().message(), HasSubstr("too small"));
  EXPECT_EQ(device.read_at(0, 2 * kPage).size(), 2 * kPage);

  auto unaligned = Region::create(
      {.kind = RegionKind::device, .bytes = kPage, .path = device.path(), .offset = 100});
  ASSERT_FALSE(unaligned);
  EXPECT_THAT(unaligned.error().message(), HasSubstr("not a multiple of the page size"));
}

// A real character device that supports mmap: /dev/zero, mapped shared.
TEST(RegionDevice, ACharacterDeviceHasNoSizeToCheck) {
  if (access("/dev/zero", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "/dev/zero cannot be opened read-write here";
  }
  auto region = Region::create(
      {.kind = RegionKind::device, .bytes = 2 * kPage, .path = "/dev/zero", .offset = 0});
  ASSERT_TRUE(region) << region.error().message();
  (*region)->data()[0] = std::byte{1};
  EXPECT_EQ((*region)->data()[0], std::byte{1});
}

}  // namespace
}  // namespace swiotlb

namespace swiotlb {
namespace {

TEST(DeviceMemoryWord, ParsesPathOffsetAndBusBase) {
  auto spec = parse_device_memory("swiotlb_devmem=/dev/uio0,offset=0x1000,dma_base=3G");
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->kind, RegionKind::device);
  EXPECT_EQ(spec->path, "/dev/uio0");
  EXPECT_EQ(spec->offset, 0x1000u);
  ASSERT_TRUE(spec->dma_base);
  EXPECT_EQ(spec->dma_base->value(), std::uint64_t{3} << 30);
  EXPECT_FALSE(spec->fixed_address) << "where the CPU maps it is swiotlb=...,addr=";

  spec = parse_device_memory("/dev/dax0.0");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->path, "/dev/dax0.0");
  EXPECT_EQ(spec->offset, 0u);
  EXPECT_FALSE(spec->dma_base);

  spec = parse_device_memory("/dev/mem,offset=64M");
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->offset, std::uint64_t{64} << 20);
}

TEST(DeviceMemoryWord, RefusesWhatItCannotRead) {
  for (const char* bad :
       {"", "swiotlb_devmem=", "offset=4096", "/dev/uio0,size=4096",
        "/dev/uio0,offset=", "/dev/uio0,offset=12x", "/dev/uio0,offset=1,offset=2",
        "/dev/uio0,dma_base=0xfffffffffffffffffff", "/dev/uio0,dma_base=99999999999G"}) {
    auto spec = parse_device_memory(bad);
    EXPECT_FALSE(spec) << bad;
    if (!spec) {
      EXPECT_EQ(spec.error().code(), Errc::parse) << bad;
    }
  }
}

}  // namespace
}  // namespace swiotlb
