// A persistent pool: its bookkeeping in a file, and a second process that
// attaches to it at the same address and adopts or drops what the first
// left mapped (the crash-kernel case).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "../platform/platform_test_support.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/io_tlb_json.h"
#include "swiotlb/iotlb/pool_directory.h"
#include "swiotlb/pool/pool_image.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kSlabs = 1024;
constexpr std::uint64_t kBytes = (kSlabs << kSlotShift);

IoTlbOptions file_options(const std::string& path, PhysAddr at) {
  IoTlbOptions options;
  options.nslabs = kSlabs;
  options.persistent = true;
  options.region =
      RegionSpec{.kind = RegionKind::file, .path = path, .create = true, .fixed_address = at};
  return options;
}

IoTlbOptions attach_options(const std::string& path, PhysAddr at, AttachMode mode) {
  IoTlbOptions options;
  options.nslabs = kSlabs;
  options.attach = IoTlbOptions::Attach{AttachSpec{.path = path, .fixed_address = at},
                                        AttachOptions{.mode = mode}};
  return options;
}

BounceRequest request(const void* orig, std::uint64_t size, const IoTlb& tlb) {
  BounceRequest r;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.start().value());
  r.dir = Direction::to_device;
  r.owner = 3;
  return r;
}

struct LeftBehind {
  std::vector<std::uint64_t> addrs;
  std::vector<std::uint64_t> sizes;
};

// A child process makes the pool, maps `sizes` bytes each (byte value i+1
// for mapping i), tells the parent where they went through a pipe and dies
// without unmapping anything.
LeftBehind run_first_holder(const std::string& path, PhysAddr at,
                            const std::vector<std::uint64_t>& sizes) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto tlb = IoTlb::create(file_options(path, at));
    if (!tlb) {
      _exit(2);
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      std::vector<std::byte> data(sizes[i], std::byte(i + 1));
      auto mapped = (*tlb)->map(request(data.data(), sizes[i], **tlb));
      if (!mapped) {
        _exit(3);
      }
      const std::uint64_t addr = mapped->value();
      if (write(fds[1], &addr, sizeof addr) != sizeof addr) {
        _exit(4);
      }
    }
    _exit(0);  // the crash: no unmap, no destructor
  }
  close(fds[1]);
  LeftBehind left;
  std::uint64_t addr = 0;
  while (read(fds[0], &addr, sizeof addr) == sizeof addr) {
    left.addrs.push_back(addr);
  }
  close(fds[0]);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  left.sizes = sizes;
  return left;
}

class PersistentPool : public ::testing::Test {
 protected:
  void SetUp() override {
    auto at = test::free_address(persistent_region_bytes(kSlabs));
    ASSERT_TRUE(at);
    at_ = *at;
    path_ = dir_.file("pool");
  }

  test::TempDir dir_;
  std::string path_;
  PhysAddr at_;
};

TEST_F(PersistentPool, NeedsMemoryThatOutlivesTheProcess) {
  IoTlbOptions options;
  options.nslabs = kSlabs;
  options.persistent = true;
  auto made = IoTlb::create(options);
  ASSERT_FALSE(made);
  EXPECT_NE(made.error().message().find("memfd, file or hugetlbfs"), std::string::npos);
}

TEST_F(PersistentPool, ASecondProcessAdoptsTheLiveMappings) {
  const std::vector<std::uint64_t> sizes{512, 4096, 65536, 3000};
  const LeftBehind left = run_first_holder(path_, at_, sizes);
  ASSERT_EQ(left.addrs.size(), sizes.size());

  auto tlb = IoTlb::create(attach_options(path_, at_, AttachMode::adopt));
  ASSERT_TRUE(tlb) << tlb.error().message();
  EXPECT_EQ((*tlb)->start(), at_);
  const SlotPool& pool = (*tlb)->pool();
  EXPECT_EQ(pool.adopted_count(), sizes.size());
  std::uint64_t slots = 0;
  for (std::uint64_t size : sizes) {
    slots += nr_slots(size);
  }
  EXPECT_EQ(pool.used(), slots);
  EXPECT_EQ(io_tlb_json(**tlb)["used"], slots);
  // What the device was given is still there to read.
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const std::byte* bytes = (*tlb)->bounce_pointer(PhysAddr(left.addrs[i]));
    for (std::uint64_t k = 0; k < sizes[i]; ++k) {
      ASSERT_EQ(bytes[k], std::byte(i + 1)) << "mapping " << i << " byte " << k;
    }
  }
  // An adopted mapping is not this process's to unmap or sync.
  EXPECT_FALSE((*tlb)->unmap(PhysAddr(left.addrs[0]), 0, {sizes[0], Direction::to_device, 3}, {}));
  EXPECT_FALSE((*tlb)->sync_for_cpu(PhysAddr(left.addrs[0]), 1, Direction::to_device, 3));
  // New mappings avoid the adopted slots.
  std::vector<std::byte> data(8192, std::byte{0x5a});
  auto fresh = (*tlb)->map(request(data.data(), data.size(), **tlb));
  ASSERT_TRUE(fresh);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const bool apart =
        fresh->value() + data.size() <= left.addrs[i] || left.addrs[i] + sizes[i] <= fresh->value();
    EXPECT_TRUE(apart) << "mapping " << i;
  }
  for (std::uint64_t addr : left.addrs) {
    EXPECT_TRUE((*tlb)->release_adopted(PhysAddr(addr)));
  }
  EXPECT_FALSE((*tlb)->release_adopted(PhysAddr(left.addrs[0])));  // once only
  EXPECT_TRUE((*tlb)->unmap(*fresh, 0, {data.size(), Direction::to_device, 3}, {}));
  EXPECT_EQ(pool.used(), 0u);
  EXPECT_TRUE(pool.check_invariants());
}

TEST_F(PersistentPool, ResetDropsWhatWasLeft) {
  const LeftBehind left = run_first_holder(path_, at_, {4096, 4096});
  ASSERT_EQ(left.addrs.size(), 2u);
  auto tlb = IoTlb::create(attach_options(path_, at_, AttachMode::reset));
  ASSERT_TRUE(tlb) << tlb.error().message();
  EXPECT_EQ((*tlb)->pool().used(), 0u);
  EXPECT_EQ((*tlb)->pool().adopted_count(), 0u);
}

TEST_F(PersistentPool, AttachesAgainAfterAnOrderlyExit) {
  {
    auto tlb = IoTlb::create(file_options(path_, at_));
    ASSERT_TRUE(tlb) << tlb.error().message();
  }
  auto again = IoTlb::create(attach_options(path_, at_, AttachMode::adopt));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ((*again)->pool().used(), 0u);
}

TEST_F(PersistentPool, RefusesMemoryWithoutAPoolHeader) {
  {
    std::ofstream out(path_, std::ios::binary);
    std::vector<char> zeros(persistent_region_bytes(kSlabs), 0);
    out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  auto tlb = IoTlb::create(attach_options(path_, at_, AttachMode::adopt));
  ASSERT_FALSE(tlb);
  EXPECT_NE(tlb.error().message().find("no pool header"), std::string::npos)
      << tlb.error().message();
}

TEST_F(PersistentPool, RefusesAnotherGeometryOrPolicy) {
  { ASSERT_TRUE(IoTlb::create(file_options(path_, at_))); }
  IoTlbOptions other = attach_options(path_, at_, AttachMode::adopt);
  other.nareas = 2;
  auto areas = IoTlb::create(other);
  ASSERT_FALSE(areas);
  EXPECT_NE(areas.error().message().find("area_count"), std::string::npos)
      << areas.error().message();
  other = attach_options(path_, at_, AttachMode::adopt);
  other.policy = "linux";
  EXPECT_FALSE(IoTlb::create(other));
}

TEST_F(PersistentPool, RefusesACorruptHeader) {
  { ASSERT_TRUE(IoTlb::create(file_options(path_, at_))); }
  {
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(kBytes + 40));  // inside the geometry
    file.put('\x7f');
  }
  auto tlb = IoTlb::create(attach_options(path_, at_, AttachMode::adopt));
  ASSERT_FALSE(tlb);
  EXPECT_NE(tlb.error().message().find("corrupt"), std::string::npos) << tlb.error().message();
}

}  // namespace
}  // namespace swiotlb
