// Every pool of a persistent IoTlb comes back: a process with live mappings
// in the default pool, the high pool and a grown pool is killed, and a
// second process attaches to all three through the pool directory, adopting
// or dropping what was left. Also a persistent pool in device memory (a
// memfd standing in for a device file, through /proc/self/fd).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../platform/platform_test_support.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/iotlb/pool_directory.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kLow = 512;
constexpr std::uint64_t kHigh = 256;
constexpr std::uint64_t kGrown = 256;
constexpr std::uint64_t kChunk = 64 * 1024;  // 32 slots
constexpr std::uint32_t kOwner = 3;

// What the first holder left mapped.
struct Left {
  std::uint64_t addr = 0;
  std::uint64_t size = 0;
  std::uint32_t pool = 0;   // the configured pool it was mapped for
  std::uint32_t value = 0;  // every byte of it
};

IoTlbOptions common(std::uint64_t max_nslabs = kLow + kHigh + kGrown) {
  IoTlbOptions options;
  options.nslabs = kLow;
  options.high_nslabs = kHigh;
  options.growth.enabled = true;
  options.growth.pool_nslabs = kGrown;
  options.growth.max_nslabs = max_nslabs;  // one grown pool, no more
  return options;
}

IoTlbOptions first_holder(const std::string& path, PhysAddr at) {
  IoTlbOptions options = common();
  options.persistent = true;
  options.region =
      RegionSpec{.kind = RegionKind::file, .path = path, .create = true, .fixed_address = at};
  return options;
}

IoTlbOptions attacher(const std::string& path, PhysAddr at, AttachMode mode) {
  IoTlbOptions options = common();
  options.attach = IoTlbOptions::Attach{AttachSpec{.path = path, .fixed_address = at},
                                        AttachOptions{.mode = mode}};
  return options;
}

BounceRequest request(const IoTlb& tlb, std::uint32_t pool, const void* orig, std::uint64_t size) {
  BounceRequest r;
  r.pool = pool;
  r.orig = PhysAddr::from_pointer(orig);
  r.size = size;
  r.pool_dma_start = DmaAddr(tlb.pool_info(pool).start.value());
  r.dir = Direction::to_device;
  r.owner = kOwner;
  r.attrs = Attrs{Attr::no_warn};
  return r;
}

// Runs `body` in a child that reports through a pipe what it left mapped
// and ends by SIGKILL (the crash); returns what it reported.
std::vector<Left> run_killed_child(const std::function<bool(IoTlb&, std::vector<Left>&)>& body,
                                   const IoTlbOptions& options) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    auto tlb = IoTlb::create(options);
    if (!tlb) {
      _exit(2);
    }
    std::vector<Left> left;
    if (!body(**tlb, left)) {
      _exit(3);
    }
    for (const Left& l : left) {
      if (write(fds[1], &l, sizeof l) != sizeof l) {
        _exit(4);
      }
    }
    close(fds[1]);
    raise(SIGKILL);  // no unmap, no destructor, no exit handlers
    _exit(5);
  }
  close(fds[1]);
  std::vector<Left> left;
  Left l;
  while (read(fds[0], &l, sizeof l) == sizeof l) {
    left.push_back(l);
  }
  close(fds[0]);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  return left;
}

// Fills the default pool past its watermark until a pool is grown and a
// mapping lands in it; then frees every other default-pool mapping, so
// the pool has holes; then maps into the high pool.
bool map_everywhere(IoTlb& tlb, std::vector<Left>& left) {
  std::vector<std::byte> data(kChunk);
  std::vector<Left> low;
  bool grown = false;
  for (std::uint32_t i = 0; i < 64 && !grown; ++i) {
    std::memset(data.data(), static_cast<int>(i + 1), data.size());
    auto mapped = tlb.map(request(tlb, 0, data.data(), data.size()));
    if (!mapped) {
      tlb.run_maintenance();  // the growth the full pool asked for
      continue;
    }
    const Left l{mapped->value(), kChunk, 0, i + 1};
    if (*mapped >= tlb.start() && *mapped < tlb.end()) {
      low.push_back(l);
    } else {
      left.push_back(l);
      grown = true;
    }
  }
  if (!grown || low.size() < 4) {
    return false;
  }
  for (std::size_t i = 0; i < low.size(); ++i) {
    if (i % 2 == 1) {
      if (!tlb.unmap(PhysAddr(low[i].addr), 0, {kChunk, Direction::to_device, kOwner}, {})) {
        return false;
      }
    } else {
      left.push_back(low[i]);
    }
  }
  std::vector<std::byte> high(8192, std::byte{0xee});
  auto mapped = tlb.map(request(tlb, 1, high.data(), high.size()));
  if (!mapped) {
    return false;
  }
  left.push_back({mapped->value(), high.size(), 1, 0xee});
  return true;
}

std::uint64_t slots_of(const std::vector<Left>& left, std::uint32_t pool) {
  std::uint64_t slots = 0;
  for (const Left& l : left) {
    slots += l.pool == pool ? nr_slots(l.size) : 0;
  }
  return slots;
}

class PersistentPools : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_THREAD__)
    // The high and grown pools are where mmap put them in the child: the
    // top of the free gap both processes shared at the fork. ThreadSanitizer
    // maps memory of its own in the parent after the fork, often in that
    // same gap, and the attach then finds those addresses taken. Nothing
    // here is concurrent; the Release and ASan builds run these tests.
    GTEST_SKIP() << "ThreadSanitizer's own mappings take the child's pool addresses";
#endif
    auto at = test::free_address(persistent_region_bytes(kLow));
    ASSERT_TRUE(at);
    at_ = *at;
    path_ = dir_.file("pools");
  }

  test::TempDir dir_;
  std::string path_;
  PhysAddr at_;
};

TEST_F(PersistentPools, EveryPoolComesBackWithItsLiveMappings) {
  const std::vector<Left> left = run_killed_child(map_everywhere, first_holder(path_, at_));
  ASSERT_GE(left.size(), 4u);

  auto attached = IoTlb::create(attacher(path_, at_, AttachMode::adopt));
  ASSERT_TRUE(attached) << attached.error().message();
  IoTlb& tlb = **attached;
  ASSERT_EQ(tlb.pool_count(), 2u);
  const IoTlbStats stats = tlb.stats();
  ASSERT_EQ(stats.growth.grown_pools, 1u);
  ASSERT_EQ(stats.dynamic.size(), 1u);
  EXPECT_EQ(stats.dynamic[0].nslabs, kGrown);
  std::uint64_t in_low = 0;
  for (const Left& l : left) {
    in_low += l.pool == 0 && PhysAddr(l.addr) < tlb.end() ? 1 : 0;
  }
  EXPECT_EQ(tlb.pool(0).adopted_count(), in_low);
  EXPECT_EQ(tlb.pool(1).adopted_count(), 1u);
  EXPECT_EQ(stats.dynamic[0].used, nr_slots(kChunk));
  EXPECT_EQ(tlb.used(0), slots_of(left, 0));
  EXPECT_EQ(tlb.used(1), slots_of(left, 1));
  // What the device was given is still there, in every pool.
  for (const Left& l : left) {
    ASSERT_TRUE(tlb.contains(PhysAddr(l.addr)));
    const std::byte* bytes = tlb.bounce_pointer(PhysAddr(l.addr));
    ASSERT_NE(bytes, nullptr);
    for (std::uint64_t k = 0; k < l.size; k += 511) {
      ASSERT_EQ(bytes[k], std::byte(l.value)) << std::hex << l.addr << " byte " << k;
    }
  }

  // Nothing live is handed out twice: fill every pool one slot at a time.
  std::vector<std::byte> one(kSlotSize);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> fresh;
  for (std::uint32_t pool = 0; pool < 2; ++pool) {
    for (;;) {
      auto mapped = tlb.map(request(tlb, pool, one.data(), one.size()));
      if (!mapped) {
        EXPECT_EQ(mapped.error().code(), Errc::pool_full) << mapped.error().message();
        break;
      }
      fresh.emplace_back(mapped->value(), pool);
      for (const Left& l : left) {
        ASSERT_TRUE(mapped->value() + one.size() <= l.addr || l.addr + l.size <= mapped->value())
            << std::hex << mapped->value() << " overlaps the live mapping at " << l.addr;
      }
    }
  }
  EXPECT_EQ(fresh.size(), kLow + kHigh + kGrown - slots_of(left, 0) - slots_of(left, 1));
  for (const auto& [addr, pool] : fresh) {
    ASSERT_TRUE(tlb.unmap(PhysAddr(addr), 0, {one.size(), Direction::to_device, kOwner}, {}));
  }
  for (const Left& l : left) {
    EXPECT_TRUE(tlb.release_adopted(PhysAddr(l.addr))) << std::hex << l.addr;
  }
  EXPECT_EQ(tlb.used(0), 0u);
  EXPECT_EQ(tlb.used(1), 0u);
  EXPECT_TRUE(tlb.check_invariants());
}

TEST_F(PersistentPools, ResetFreesTheMappingsOfEveryPool) {
  const std::vector<Left> left = run_killed_child(map_everywhere, first_holder(path_, at_));
  ASSERT_GE(left.size(), 4u);
  auto attached = IoTlb::create(attacher(path_, at_, AttachMode::reset));
  ASSERT_TRUE(attached) << attached.error().message();
  IoTlb& tlb = **attached;
  ASSERT_EQ(tlb.pool_count(), 2u);
  EXPECT_EQ(tlb.used(0), 0u);
  EXPECT_EQ(tlb.used(1), 0u);
  EXPECT_EQ(tlb.pool(0).adopted_count(), 0u);
  EXPECT_EQ(tlb.pool(1).adopted_count(), 0u);
  const IoTlbStats stats = tlb.stats();
  ASSERT_EQ(stats.dynamic.size(), 1u);  // the grown pool is back, empty
  EXPECT_EQ(stats.dynamic[0].used, 0u);
  EXPECT_TRUE(tlb.check_invariants());
}

TEST_F(PersistentPools, AGrownPoolGivenBackIsNotAttachedAgain) {
  IoTlbOptions options = first_holder(path_, at_);
  options.growth.shrink_after = std::chrono::milliseconds{1};
  {
    auto made = IoTlb::create(options);
    ASSERT_TRUE(made) << made.error().message();
    IoTlb& tlb = **made;
    std::vector<Left> left;
    ASSERT_TRUE(map_everywhere(tlb, left));
    for (const Left& l : left) {
      ASSERT_TRUE(tlb.unmap(PhysAddr(l.addr), 0, {l.size, Direction::to_device, kOwner}, {}));
    }
    for (int i = 0; i < 2000 && tlb.growth_stats().shrunk_pools == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
      tlb.run_maintenance();
    }
    ASSERT_EQ(tlb.growth_stats().shrunk_pools, 1u);
  }
  auto attached = IoTlb::create(attacher(path_, at_, AttachMode::adopt));
  ASSERT_TRUE(attached) << attached.error().message();
  EXPECT_EQ((*attached)->stats().growth.grown_pools, 0u);
  EXPECT_EQ((*attached)->pool_count(), 2u);
}

TEST_F(PersistentPools, AttachRefusesAnotherHighPool) {
  { ASSERT_TRUE(IoTlb::create(first_holder(path_, at_))); }
  IoTlbOptions other = attacher(path_, at_, AttachMode::adopt);
  other.high_nslabs = 2 * kHigh;
  auto refused = IoTlb::create(other);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("high pool of 256 slots"), std::string::npos)
      << refused.error().message();
  other.high_nslabs = 0;
  refused = IoTlb::create(other);
  ASSERT_FALSE(refused);
}

TEST_F(PersistentPools, OtherPoolsNeedAFileWindowAndNoTransientPools) {
  IoTlbOptions options = common();
  options.persistent = true;
  options.region = RegionSpec{.kind = RegionKind::memfd};
  auto memfd = IoTlb::create(options);
  ASSERT_FALSE(memfd);
  EXPECT_NE(memfd.error().message().find("file or hugetlbfs window"), std::string::npos)
      << memfd.error().message();
  options = first_holder(path_, at_);
  options.transient = true;
  auto transient = IoTlb::create(options);
  ASSERT_FALSE(transient);
  EXPECT_NE(transient.error().message().find("no transient pools"), std::string::npos);
}

TEST(PersistentDeviceMemory, APoolImageInDeviceMemoryIsAdopted) {
  constexpr std::uint64_t kBus = 0xc0000000;
  constexpr std::uint64_t kOffset = std::uint64_t{1} << 20;
  const std::uint64_t bytes = persistent_region_bytes(kLow);
  const int fd = memfd_create("fake-bar", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kOffset + bytes)), 0);
  const std::string device = "/proc/self/fd/" + std::to_string(fd);
  auto at = test::free_address(bytes);
  ASSERT_TRUE(at);

  IoTlbOptions options;
  options.nslabs = kLow;
  options.persistent = true;
  options.region = RegionSpec{.kind = RegionKind::device,
                              .path = device,
                              .offset = kOffset,
                              .fixed_address = *at,
                              .dma_base = DmaAddr(kBus)};
  const std::vector<Left> left = run_killed_child(
      [](IoTlb& tlb, std::vector<Left>& out) {
        std::vector<std::byte> data(10000, std::byte{0x42});
        auto mapped = tlb.map(request(tlb, 0, data.data(), data.size()));
        if (!mapped) {
          return false;
        }
        out.push_back({mapped->value(), data.size(), 0, 0x42});
        return true;
      },
      options);
  ASSERT_EQ(left.size(), 1u);

  IoTlbOptions again;
  again.nslabs = kLow;
  again.attach = IoTlbOptions::Attach{
      AttachSpec{
          .path = device, .offset = kOffset, .fixed_address = *at, .dma_base = DmaAddr(kBus)},
      AttachOptions{.mode = AttachMode::adopt}};
  auto attached = IoTlb::create(again);
  ASSERT_TRUE(attached) << attached.error().message();
  IoTlb& tlb = **attached;
  EXPECT_EQ(tlb.region()->dma_base().value(), kBus);
  EXPECT_EQ(tlb.pool().adopted_count(), 1u);
  // The device's view: the bytes sit in the device file at the mapping's
  // offset from the pool's start.
  std::vector<std::byte> seen(left[0].size);
  ASSERT_EQ(pread(fd, seen.data(), seen.size(),
                  static_cast<off_t>(kOffset + (left[0].addr - at->value()))),
            static_cast<ssize_t>(seen.size()));
  EXPECT_EQ(seen[0], std::byte{0x42});
  EXPECT_EQ(seen.back(), std::byte{0x42});
  std::vector<std::byte> data(4096);
  auto fresh = tlb.map(request(tlb, 0, data.data(), data.size()));
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->value() + data.size() <= left[0].addr ||
              left[0].addr + left[0].size <= fresh->value());
  EXPECT_TRUE(tlb.release_adopted(PhysAddr(left[0].addr)));
  EXPECT_TRUE(tlb.unmap(*fresh, 0, {data.size(), Direction::to_device, kOwner}, {}));
  attached->reset();
  close(fd);
}

}  // namespace
}  // namespace swiotlb
