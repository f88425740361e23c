// A shared window that grows: SharedWindowBackend hands every grown and
// transient pool to the device program (example_shared_window_device) as a
// memfd window before any mapping in it is handed out, takes it back when
// the pool goes, and the device process maps the windows and nothing else
// of the host. Failures of the device process are errors, never hangs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/eventually.h"
#include "swiotlb/dma/dma_api.h"
#include "swiotlb/dma/shared_window_backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/fd_passing.h"
#include "swiotlb/platform/shared_window.h"

namespace swiotlb {
namespace {

using namespace window;

constexpr int kDeviceSocket = 3;

struct Mapping {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::string perms;
  std::uint64_t inode = 0;
  std::string path;
};

std::vector<Mapping> read_maps(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/maps");
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream in(line);
    Mapping m;
    std::string range, offset, device;
    in >> range >> m.perms >> offset >> device >> m.inode;
    std::getline(in >> std::ws, m.path);
    const std::size_t dash = range.find('-');
    m.start = std::stoull(range.substr(0, dash), nullptr, 16);
    m.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    out.push_back(m);
  }
  return out;
}

// The host side: the device program, a growing memfd pool whose pools are
// its windows, and a Device whose reach is those windows.
struct Host {
  std::shared_ptr<WindowChannel> channel;
  ChildProcess process;
  std::shared_ptr<SharedWindowBackend> backend;
  std::unique_ptr<IoTlb> tlb;
  std::unique_ptr<Device> dev;

  static std::unique_ptr<Host> start(std::chrono::milliseconds timeout) {
    auto host = std::make_unique<Host>();
    auto pair = make_socket_pair();
    EXPECT_TRUE(pair);
    auto process =
        ChildProcess::spawn(SWIOTLB_SHARED_WINDOW_DEVICE, {std::to_string(kDeviceSocket)},
                            pair->second.get(), kDeviceSocket);
    EXPECT_TRUE(process);
    pair->second.reset();
    host->process = std::move(*process);
    host->channel = std::make_shared<WindowChannel>(std::move(pair->first), timeout);
    return host;
  }

  Status make_pool() {
    const RegionSpec memfd{.kind = RegionKind::memfd};
    auto shared = SharedWindowBackend::create(
        {.inner = make_region_backend({.region = memfd}), .channel = channel});
    if (!shared) {
      return shared.error();
    }
    backend = *shared;
    IoTlbOptions options{.nslabs = 256, .force_bounce = true, .region = memfd};
    options.backend = backend;
    options.growth.enabled = true;
    options.growth.pool_nslabs = 512;
    // One grown pool at most: what it cannot take goes to transient pools,
    // however fast or slow the worker is.
    options.growth.max_nslabs = 256 + 512;
    options.transient = true;
    auto made = IoTlb::create(options);
    if (!made) {
      return made.error();
    }
    tlb = std::move(*made);
    auto device = Device::create({.name = "peer", .windows = backend->windows()}, tlb.get());
    if (!device) {
      return device.error();
    }
    dev = std::move(*device);
    return {};
  }
};

// The inode of the memfd mapped at `start` in this process.
std::uint64_t host_inode_at(std::uint64_t start) {
  for (const Mapping& m : read_maps(getpid())) {
    if (m.start <= start && start < m.end) {
      return m.inode;
    }
  }
  return 0;
}

struct Buffer {
  std::vector<std::byte> bytes;
  DmaAddr dma;
  std::uint64_t seed = 0;
};

TEST(SharedWindowGrowth, GrownPoolsAreWindowsOfTheDeviceAndOnlyThey) {
  auto host = Host::start(std::chrono::seconds(10));
  ASSERT_TRUE(host->make_pool());
  // Four times the configured pool in flight: maps past it land in
  // transient pools at once and in grown pools once the worker has grown.
  std::vector<Buffer> live;
  for (std::uint64_t i = 0; i < 64; ++i) {
    Buffer b{std::vector<std::byte>(32768), {}, 1000 + i};
    fill_pattern(b.bytes, b.seed);
    auto dma = map_single(*host->dev, b.bytes.data(), b.bytes.size(), Direction::bidirectional);
    ASSERT_TRUE(dma) << dma.error().message();
    b.dma = *dma;
    live.push_back(std::move(b));
    if (i == 31) {
      // Give the worker the moment it needs to grow, so that later maps
      // find a grown pool.
      testing::eventually([&] { return host->tlb->stats().growth.grow_events != 0; });
    }
  }
  const GrowthStats growth = host->tlb->stats().growth;
  EXPECT_GE(growth.grow_events, 1u);
  EXPECT_GE(growth.transient_pools_total, 1u);

  // Every byte through the device process, wherever the bounce landed.
  for (Buffer& b : live) {
    auto answer =
        host->channel->exchange({kTransfer, 0, b.dma.value(), b.bytes.size(), b.seed, b.seed + 1});
    ASSERT_TRUE(answer) << answer.error().message();
    EXPECT_EQ((*answer)[1], kOk) << "dma " << b.dma.value();
    EXPECT_EQ((*answer)[3], 0u);
  }

  // The device's mappings of shared memory are exactly the windows: each
  // window's memfd once, at the window's size, and no other shared mapping.
  const std::vector<WindowMapping> windows = host->backend->windows()->windows();
  ASSERT_GE(windows.size(), 3u);                    // configured, grown, transient
  std::map<std::uint64_t, std::uint64_t> expected;  // inode -> bytes
  for (const WindowMapping& w : windows) {
    const std::uint64_t inode = host_inode_at(w.cpu_start);
    ASSERT_NE(inode, 0u);
    expected[inode] = w.size;
  }
  std::map<std::uint64_t, std::uint64_t> seen;
  for (const Mapping& m : read_maps(host->process.pid())) {
    const bool shared = m.perms.size() > 3 && m.perms[3] == 's';
    if (shared || m.path.find("memfd:") != std::string::npos) {
      EXPECT_TRUE(expected.count(m.inode)) << "the device maps " << m.path << " " << m.perms;
      EXPECT_EQ(seen.count(m.inode), 0u) << "mapped twice: " << m.path;
      seen[m.inode] += m.end - m.start;
    }
  }
  EXPECT_EQ(seen, expected);

  for (Buffer& b : live) {
    ASSERT_TRUE(unmap_single(*host->dev, b.dma, b.bytes.size(), Direction::bidirectional));
    EXPECT_EQ(pattern_mismatches(b.bytes, b.seed + 1), 0u);
  }
  // Transient pools go once unmapped (after a grace period): the device is
  // told to unmap them, and then maps only the windows left, the
  // configured and the grown pool.
  testing::eventually([&] {
    host->tlb->run_maintenance();
    return host->backend->stats().live <= 2;
  });
  EXPECT_EQ(host->backend->stats().live, 2u);
  EXPECT_GE(host->backend->stats().released, 1u);
  std::set<std::uint64_t> left;
  for (const WindowMapping& w : host->backend->windows()->windows()) {
    left.insert(host_inode_at(w.cpu_start));
  }
  std::set<std::uint64_t> device_memfds;
  for (const Mapping& m : read_maps(host->process.pid())) {
    if (m.path.find("memfd:") != std::string::npos) {
      device_memfds.insert(m.inode);
    }
  }
  EXPECT_EQ(device_memfds, left);

  ASSERT_TRUE(host->dev->close());
  ASSERT_TRUE(host->channel->close());
  auto exit = host->process.wait(std::chrono::seconds(10));
  ASSERT_TRUE(exit);
  EXPECT_TRUE(exit->ok()) << exit->describe();
}

TEST(SharedWindowGrowth, ADeviceProcessThatIsGoneRefusesNewPoolsAsErrors) {
  auto host = Host::start(std::chrono::seconds(10));
  ASSERT_TRUE(host->make_pool());
  ASSERT_TRUE(host->process.kill(SIGKILL));
  ASSERT_TRUE(host->process.wait(std::chrono::seconds(10)));
  // Past the configured pool every map needs a new window, which nobody
  // can acknowledge: refused, at once, and nothing stays mapped.
  std::vector<std::vector<std::byte>> buffers(40, std::vector<std::byte>(32768));
  std::vector<DmaAddr> mapped;
  std::uint64_t refused = 0;
  for (auto& b : buffers) {
    auto dma = map_single(*host->dev, b.data(), b.size(), Direction::to_device);
    if (dma) {
      mapped.push_back(*dma);
    } else {
      ++refused;
    }
  }
  EXPECT_GT(refused, 0u);
  EXPECT_GE(host->backend->stats().refused, 1u);
  for (DmaAddr dma : mapped) {
    EXPECT_TRUE(unmap_single(*host->dev, dma, 32768, Direction::to_device));
  }
  EXPECT_TRUE(host->dev->close());
}

TEST(SharedWindowGrowth, AMissingAcknowledgementIsAnErrorAfterTheTimeout) {
  // A peer that holds its end of the socket and never answers.
  auto pair = make_socket_pair();
  ASSERT_TRUE(pair);
  auto channel =
      std::make_shared<WindowChannel>(std::move(pair->first), std::chrono::milliseconds(200));
  const RegionSpec memfd{.kind = RegionKind::memfd};
  auto backend = SharedWindowBackend::create(
      {.inner = make_region_backend({.region = memfd}), .channel = channel});
  ASSERT_TRUE(backend);
  IoTlbOptions options{.nslabs = 128, .force_bounce = true, .region = memfd};
  options.backend = *backend;
  const auto before = std::chrono::steady_clock::now();
  auto tlb = IoTlb::create(options);
  ASSERT_FALSE(tlb);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
  EXPECT_NE(tlb.error().message().find("did not answer in time"), std::string::npos)
      << tlb.error().message();
  // The channel stays broken: a late reply could not be told apart.
  auto again = channel->exchange({kBye, 0, 0, 0, 0, 0});
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("broke earlier"), std::string::npos);
}

TEST(SharedWindowGrowth, APoolThatIsNoMemfdIsNotHandedOver) {
  auto pair = make_socket_pair();
  ASSERT_TRUE(pair);
  auto channel =
      std::make_shared<WindowChannel>(std::move(pair->first), std::chrono::milliseconds(200));
  auto backend =
      SharedWindowBackend::create({.inner = make_region_backend({}), .channel = channel});
  ASSERT_TRUE(backend);
  IoTlbOptions options{.nslabs = 128, .force_bounce = true};
  options.backend = *backend;
  auto tlb = IoTlb::create(options);
  ASSERT_FALSE(tlb);
  EXPECT_NE(tlb.error().message().find("not a memfd"), std::string::npos) << tlb.error().message();
}

}  // namespace
}  // namespace swiotlb
