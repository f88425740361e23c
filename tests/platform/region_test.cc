// Tests for the kinds of Region placed where the system chooses: anonymous
// memory, sealed memfds, files at an offset and hugetlbfs files; and for the
// spec checks that come before any of them is made.
#include "swiotlb/platform/region.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "platform/platform_test_support.h"

namespace swiotlb {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

constexpr std::size_t kPage = 4096;

std::unique_ptr<Region> make(const RegionSpec& spec) {
  Result<std::unique_ptr<Region>> r = Region::create(spec);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? std::move(*r) : nullptr;
}

std::string error_of(const RegionSpec& spec) {
  Result<std::unique_ptr<Region>> r = Region::create(spec);
  EXPECT_FALSE(r.has_value()) << "a region was made";
  return r ? std::string() : r.error().message();
}

void fill(const Region& region, char seed) {
  for (std::size_t i = 0; i < region.size(); i += 512) {
    region.data()[i] = std::byte(static_cast<unsigned char>(seed + static_cast<char>(i >> 9)));
  }
}

bool holds(const std::byte* p, std::size_t size, char seed) {
  for (std::size_t i = 0; i < size; i += 512) {
    if (p[i] != std::byte(static_cast<unsigned char>(seed + static_cast<char>(i >> 9)))) {
      return false;
    }
  }
  return true;
}

std::uint64_t file_size(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// --- Anonymous memory --------------------------------------------------------

TEST(AnonymousRegion, RoundsUpToWholeZeroedPages) {
  Result<std::unique_ptr<Region>> r = Region::anonymous(5000, RegionPlacement::anywhere);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const Region& region = **r;
  EXPECT_EQ(region.size(), 2 * kPage);
  EXPECT_EQ(region.kind(), RegionKind::anonymous);
  EXPECT_EQ(region.fd(), -1);
  EXPECT_EQ(region.offset(), 0u);
  EXPECT_EQ(region.dma_base().value(), region.start().value());
  EXPECT_EQ(region.end(), region.start() + region.size());
  EXPECT_TRUE(std::all_of(region.data(), region.data() + region.size(),
                          [](std::byte b) { return b == std::byte{0}; }));
}

TEST(AnonymousRegion, ZeroBytesIsAnError) {
  Result<std::unique_ptr<Region>> r = Region::anonymous(0, RegionPlacement::anywhere);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
  EXPECT_THAT(r.error().message(), HasSubstr("at least one byte"));
}

TEST(AnonymousRegion, ContainsExactlyItsRange) {
  auto region = make({.bytes = kPage});
  ASSERT_TRUE(region);
  EXPECT_TRUE(region->contains(region->start()));
  EXPECT_TRUE(region->contains(region->end() - 1));
  EXPECT_TRUE(region->contains(region->start(), region->size()));
  EXPECT_FALSE(region->contains(region->end()));
  EXPECT_FALSE(region->contains(region->start() - 1));
  EXPECT_FALSE(region->contains(region->start(), region->size() + 1));
  EXPECT_FALSE(region->contains(region->start() + 1, region->size()));
}

TEST(AnonymousRegion, LowPlacementIsAPreferenceThatAlwaysMaps) {
  Result<std::unique_ptr<Region>> r = Region::anonymous(64 * kPage, RegionPlacement::low);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  (*r)->data()[0] = std::byte{1};
  EXPECT_EQ((*r)->size(), 64 * kPage);
}

TEST(AnonymousRegion, DeviceAddressCanDifferFromCpuAddress) {
  auto region = make({.bytes = kPage, .dma_base = DmaAddr(0x8000'0000)});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->dma_base(), DmaAddr(0x8000'0000));
}

TEST(RegionSpec, InconsistentSpecsAreRefusedBeforeAnythingIsMade) {
  EXPECT_THAT(error_of({.kind = RegionKind::file, .bytes = kPage}), HasSubstr("needs a path"));
  EXPECT_THAT(error_of({.kind = RegionKind::memfd, .bytes = kPage, .path = "/tmp/x"}),
              HasSubstr("takes no path"));
  EXPECT_THAT(error_of({.kind = RegionKind::anonymous, .bytes = kPage, .offset = kPage}),
              HasSubstr("takes no offset"));
  EXPECT_THAT(error_of({.bytes = kPage, .fixed_address = PhysAddr(0)}), HasSubstr("null"));
  EXPECT_THAT(error_of({.kind = RegionKind::memfd}), HasSubstr("at least one byte"));
}

TEST(RegionKind, NamesItself) {
  EXPECT_EQ(to_string(RegionKind::anonymous), "anonymous");
  EXPECT_EQ(to_string(RegionKind::memfd), "memfd");
  EXPECT_EQ(to_string(RegionKind::file), "file");
  EXPECT_EQ(to_string(RegionKind::hugetlbfs), "hugetlbfs");
}

// --- memfd ---------------------------------------------------------------------

TEST(MemfdRegion, SecondMappingOfTheFdSeesTheSameBytes) {
  auto region = make({.kind = RegionKind::memfd, .bytes = 16 * kPage});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->kind(), RegionKind::memfd);
  ASSERT_GE(region->fd(), 0);
  EXPECT_EQ(file_size(region->fd()), region->size());
  fill(*region, 'a');

  void* second = mmap(nullptr, region->size(), PROT_READ | PROT_WRITE, MAP_SHARED, region->fd(), 0);
  ASSERT_NE(second, MAP_FAILED) << std::strerror(errno);
  auto* bytes = static_cast<std::byte*>(second);
  EXPECT_NE(bytes, region->data());
  EXPECT_TRUE(holds(bytes, region->size(), 'a'));
  bytes[100] = std::byte{0x5a};
  EXPECT_EQ(region->data()[100], std::byte{0x5a});
  munmap(second, region->size());
}

TEST(MemfdRegion, IsSealedAgainstResizingAndFurtherSeals) {
  auto region = make({.kind = RegionKind::memfd, .bytes = 4 * kPage});
  ASSERT_TRUE(region);
  const int seals = fcntl(region->fd(), F_GET_SEALS);
  ASSERT_GE(seals, 0) << std::strerror(errno);
  EXPECT_TRUE(seals & F_SEAL_SHRINK);
  EXPECT_TRUE(seals & F_SEAL_GROW);
  EXPECT_TRUE(seals & F_SEAL_SEAL);

  EXPECT_NE(ftruncate(region->fd(), static_cast<off_t>(kPage)), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(region->fd(), static_cast<off_t>(64 * kPage)), 0);
  EXPECT_EQ(errno, EPERM);
  // A peer could otherwise lock out writable mappings by adding a write seal.
  EXPECT_NE(fcntl(region->fd(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
  EXPECT_EQ(file_size(region->fd()), 4 * kPage);
}

TEST(MemfdRegion, ForkedChildMappingTheFdSharesTheBytes) {
  auto region = make({.kind = RegionKind::memfd, .bytes = 8 * kPage});
  ASSERT_TRUE(region);
  fill(*region, 'p');
  const int fd = region->fd();
  const std::size_t size = region->size();
  const int code = test::run_in_child([fd, size] {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      return 2;
    }
    auto* bytes = static_cast<std::byte*>(p);
    if (!holds(bytes, size, 'p')) {
      return 3;
    }
    bytes[size - 1] = std::byte{0x77};
    return 0;
  });
  ASSERT_EQ(code, 0);
  EXPECT_EQ(region->data()[size - 1], std::byte{0x77});
}

TEST(MemfdRegion, DescriptorIsClosedWithTheRegion) {
  auto region = make({.kind = RegionKind::memfd, .bytes = kPage});
  ASSERT_TRUE(region);
  const int fd = region->fd();
  EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  region.reset();
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
}

// --- Files ---------------------------------------------------------------------

TEST(FileRegion, BytesPersistAfterTheRegionIsGone) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("pool");
  {
    auto first = make({.kind = RegionKind::file, .bytes = 8 * kPage, .path = path, .create = true});
    ASSERT_TRUE(first);
    EXPECT_EQ(first->kind(), RegionKind::file);
    EXPECT_GE(first->fd(), 0);
    fill(*first, 'f');
  }
  auto again = make({.kind = RegionKind::file, .bytes = 8 * kPage, .path = path});
  ASSERT_TRUE(again);
  EXPECT_TRUE(holds(again->data(), again->size(), 'f'));
}

TEST(FileRegion, OffsetIsWhereTheRegionStartsInTheFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("pool");
  auto region = make({.kind = RegionKind::file,
                      .bytes = kPage,
                      .path = path,
                      .offset = 3 * kPage,
                      .create = true});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->offset(), 3 * kPage);
  EXPECT_EQ(file_size(region->fd()), 4 * kPage);
  region->data()[7] = std::byte{'X'};
  msync(region->data(), region->size(), MS_SYNC);

  char c = 0;
  EXPECT_EQ(pread(region->fd(), &c, 1, static_cast<off_t>(3 * kPage + 7)), 1);
  EXPECT_EQ(c, 'X');
  EXPECT_EQ(pread(region->fd(), &c, 1, 7), 1);
  EXPECT_EQ(c, 0);
}

TEST(FileRegion, MissingFileWithoutCreateNamesThePathAndReason) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("absent");
  const std::string message = error_of({.kind = RegionKind::file, .bytes = kPage, .path = path});
  EXPECT_THAT(message, HasSubstr(path));
  EXPECT_THAT(message, HasSubstr(std::strerror(ENOENT)));
}

TEST(FileRegion, ShortFileIsRefusedWithoutCreateAndGrownWithIt) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("short");
  std::ofstream(path) << std::string(kPage, 's');

  const std::string message =
      error_of({.kind = RegionKind::file, .bytes = 2 * kPage, .path = path});
  EXPECT_THAT(message, HasSubstr("holds 4096 bytes"));
  EXPECT_THAT(message, HasSubstr("= 8192 bytes"));

  auto grown = make({.kind = RegionKind::file, .bytes = 2 * kPage, .path = path, .create = true});
  ASSERT_TRUE(grown);
  EXPECT_EQ(file_size(grown->fd()), 2 * kPage);
  EXPECT_EQ(grown->data()[0], std::byte{'s'});
  EXPECT_EQ(grown->data()[kPage], std::byte{0});
}

TEST(FileRegion, CreateNeverShrinksALongerFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("long");
  std::ofstream(path) << std::string(5 * kPage, 'l');
  auto region = make({.kind = RegionKind::file, .bytes = kPage, .path = path, .create = true});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->size(), kPage);
  EXPECT_EQ(file_size(region->fd()), 5 * kPage);
}

TEST(FileRegion, MisalignedOffsetIsRefusedNamingThePageSize) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string message = error_of({.kind = RegionKind::file,
                                        .bytes = kPage,
                                        .path = dir.file("pool"),
                                        .offset = 100,
                                        .create = true});
  EXPECT_THAT(message, HasSubstr("offset 0x64"));
  EXPECT_THAT(message, HasSubstr("page size (4096 bytes)"));
}

TEST(FileRegion, NotARegularFileIsRefused) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  EXPECT_THAT(error_of({.kind = RegionKind::file, .bytes = kPage, .path = "/dev/null"}),
              HasSubstr("not a regular file"));
}

TEST(FileRegion, HugetlbfsKindRefusesAPathElsewhere) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string message = error_of(
      {.kind = RegionKind::hugetlbfs, .bytes = kPage, .path = dir.file("pool"), .create = true});
  EXPECT_THAT(message, HasSubstr("not on hugetlbfs"));
}

// --- hugetlbfs -----------------------------------------------------------------

struct HugetlbfsMount {
  std::string dir;
  std::size_t page_size = 0;
  std::uint64_t free_pages = 0;
};

std::optional<HugetlbfsMount> find_hugetlbfs() {
  std::ifstream mounts("/proc/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string device;
    std::string dir;
    std::string type;
    fields >> device >> dir >> type;
    struct statfs fs {};
    if (type != "hugetlbfs" || statfs(dir.c_str(), &fs) != 0 || access(dir.c_str(), W_OK) != 0) {
      continue;
    }
    HugetlbfsMount mount{dir, static_cast<std::size_t>(fs.f_bsize), 0};
    std::ifstream free_file("/sys/kernel/mm/hugepages/hugepages-" +
                            std::to_string(mount.page_size >> 10) + "kB/free_hugepages");
    free_file >> mount.free_pages;
    return mount;
  }
  return std::nullopt;
}

// A file name on the mount, removed at the end of the test.
class HugetlbfsFile {
 public:
  explicit HugetlbfsFile(const HugetlbfsMount& mount)
      : path_(mount.dir + "/swiotlb-test-" + std::to_string(getpid())) {}
  ~HugetlbfsFile() { unlink(path_.c_str()); }
  HugetlbfsFile(const HugetlbfsFile&) = delete;
  HugetlbfsFile& operator=(const HugetlbfsFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(HugetlbfsRegion, MapsWholeHugePages) {
  const std::optional<HugetlbfsMount> mount = find_hugetlbfs();
  if (!mount) {
    GTEST_SKIP() << "no writable hugetlbfs mount in /proc/mounts";
  }
  if (mount->free_pages == 0) {
    GTEST_SKIP() << "no free huge pages of " << mount->page_size << " bytes on " << mount->dir;
  }
  HugetlbfsFile file(*mount);
  auto region =
      make({.kind = RegionKind::hugetlbfs, .bytes = 1, .path = file.path(), .create = true});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->kind(), RegionKind::hugetlbfs);
  EXPECT_EQ(region->page_size(), mount->page_size);
  EXPECT_EQ(region->size(), mount->page_size);
  EXPECT_EQ(region->start().value() % mount->page_size, 0u);
  fill(*region, 'h');
  EXPECT_TRUE(holds(region->data(), region->size(), 'h'));
}

TEST(HugetlbfsRegion, OffsetMustBeAMultipleOfTheHugePageSize) {
  const std::optional<HugetlbfsMount> mount = find_hugetlbfs();
  if (!mount) {
    GTEST_SKIP() << "no writable hugetlbfs mount in /proc/mounts";
  }
  HugetlbfsFile file(*mount);
  const std::string message = error_of({.kind = RegionKind::hugetlbfs,
                                        .bytes = 1,
                                        .path = file.path(),
                                        .offset = kPage,
                                        .create = true});
  EXPECT_THAT(message, HasSubstr("huge page size (" + std::to_string(mount->page_size)));
}

TEST(HugetlbfsRegion, FileKindOnHugetlbfsReportsHugePages) {
  const std::optional<HugetlbfsMount> mount = find_hugetlbfs();
  if (!mount) {
    GTEST_SKIP() << "no writable hugetlbfs mount in /proc/mounts";
  }
  if (mount->free_pages == 0) {
    GTEST_SKIP() << "no free huge pages of " << mount->page_size << " bytes on " << mount->dir;
  }
  HugetlbfsFile file(*mount);
  auto region = make({.kind = RegionKind::file, .bytes = 1, .path = file.path(), .create = true});
  ASSERT_TRUE(region);
  EXPECT_EQ(region->kind(), RegionKind::hugetlbfs);
  EXPECT_EQ(region->size(), mount->page_size);
}

TEST(HugetlbfsRegion, FixedAddressFollowsTheHugePageSize) {
  const std::optional<HugetlbfsMount> mount = find_hugetlbfs();
  if (!mount || mount->free_pages == 0) {
    GTEST_SKIP() << "no hugetlbfs mount with free huge pages";
  }
  const std::optional<PhysAddr> addr = test::free_address(mount->page_size, mount->page_size);
  ASSERT_TRUE(addr);
  HugetlbfsFile file(*mount);
  RegionSpec spec{.kind = RegionKind::hugetlbfs,
                  .bytes = mount->page_size,
                  .path = file.path(),
                  .create = true,
                  .fixed_address = *addr + kPage};
  EXPECT_THAT(error_of(spec), HasSubstr("huge page size"));

  spec.fixed_address = *addr;
  auto region = make(spec);
  ASSERT_TRUE(region);
  EXPECT_EQ(region->start(), *addr);
  fill(*region, 'H');
  region.reset();

  Result<std::unique_ptr<Region>> again =
      Region::attach({.path = file.path(), .bytes = mount->page_size, .fixed_address = *addr});
  ASSERT_TRUE(again.has_value()) << again.error().message();
  EXPECT_EQ((*again)->kind(), RegionKind::hugetlbfs);
  EXPECT_TRUE(holds((*again)->data(), (*again)->size(), 'H'));
}

TEST(HugetlbfsRegion, TooFewHugePagesIsAnErrorNotACrash) {
  const std::optional<HugetlbfsMount> mount = find_hugetlbfs();
  if (!mount) {
    GTEST_SKIP() << "no writable hugetlbfs mount in /proc/mounts";
  }
  HugetlbfsFile file(*mount);
  // The pages are reserved when mapping, so the shortage shows here and not
  // as SIGBUS at the first touch.
  const std::string message = error_of({.kind = RegionKind::hugetlbfs,
                                        .bytes = (mount->free_pages + 1) * mount->page_size,
                                        .path = file.path(),
                                        .create = true});
  EXPECT_THAT(message, HasSubstr(std::strerror(ENOMEM)));
}

}  // namespace
}  // namespace swiotlb
