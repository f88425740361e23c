// Tests for a pool window shared with another process (docs/shared-window.md):
// a pool in a memfd, a device that sees only that pool, at a DMA base of its
// own, and the example's device program (examples/shared_window_device.cc)
// exec'd as a separate process that receives the memfd over a Unix socket.
// The test is the host and speaks the protocol itself, so that it can also
// send what a correct host never would; and it checks the descriptor passing
// underneath (platform/fd_passing.h).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "swiotlb/dma/dma_api.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/platform/fd_passing.h"
#include "swiotlb/platform/region.h"

namespace swiotlb {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The protocol, as docs/shared-window.md gives it.
using Message = std::array<std::uint64_t, 6>;
constexpr std::uint64_t kHello = 1;
constexpr std::uint64_t kTransfer = 2;
constexpr std::uint64_t kBye = 3;
constexpr std::uint64_t kReply = 4;
constexpr std::uint64_t kProtocolVersion = 1;
constexpr std::uint64_t kOk = 0;
constexpr std::uint64_t kOutsideWindow = 1;
constexpr std::uint64_t kMalformed = 2;
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15;

constexpr std::uint64_t kDmaBase = 0x10000000;
constexpr std::uint64_t kPoolSlots = 2048;  // 4 MiB
constexpr int kDeviceSocket = 3;
// Generous: the peer may be a sanitizer build on a busy machine. A dead
// peer is seen at once (end of file), so this only bounds a hung one.
constexpr auto kTimeout = 30s;

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

void fill_pattern(std::span<std::byte> out, std::uint64_t seed) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(mix(seed + (i >> 3) * kGolden) >> ((i & 7) * 8));
  }
}

std::uint64_t count_mismatches(std::span<const std::byte> in, std::uint64_t seed) {
  std::vector<std::byte> expected(in.size());
  fill_pattern(expected, seed);
  std::uint64_t bad = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    bad += in[i] != expected[i] ? 1 : 0;
  }
  return bad;
}

std::uint64_t wire(Direction dir) {
  return static_cast<std::uint64_t>(dir);
}

Message transfer_command(Direction dir, std::uint64_t dma, std::uint64_t size,
                         std::uint64_t check_seed = 0, std::uint64_t fill_seed = 0) {
  return {kTransfer, wire(dir), dma, size, check_seed, fill_seed};
}

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

// One line of /proc/PID/maps.
struct MapsEntry {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  std::string perms;
  std::uint64_t inode = 0;
  std::string path;

  bool shared() const { return perms.size() > 3 && perms[3] == 's'; }
  bool overlaps(std::uint64_t first, std::uint64_t last) const {
    return start < last && first < end;
  }
};

std::vector<MapsEntry> read_maps(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/maps");
  std::vector<MapsEntry> entries;
  std::string line;
  while (std::getline(file, line)) {
    std::istringstream in(line);
    MapsEntry e;
    std::string range, offset, device;
    in >> range >> e.perms >> offset >> device >> e.inode;
    std::getline(in >> std::ws, e.path);
    const std::size_t dash = range.find('-');
    e.start = std::stoull(range.substr(0, dash), nullptr, 16);
    e.end = std::stoull(range.substr(dash + 1), nullptr, 16);
    entries.push_back(e);
  }
  return entries;
}

// The test's host: a memfd pool, a device that sees only it (at kDmaBase),
// and the device program, started and handed the window.
class Host {
 public:
  static Result<std::unique_ptr<Host>> start() {
    auto host = std::unique_ptr<Host>(new Host);
    if (Status made = host->make_pool_and_device(); !made) {
      return made.error();
    }
    if (Status started = host->start_peer(); !started) {
      return started.error();
    }
    return host;
  }

  Result<Message> exchange(const Message& message, int fd = -1) {
    return exchange_bytes(std::as_bytes(std::span(message)), fd);
  }

  Result<Message> exchange_bytes(std::span<const std::byte> bytes, int fd = -1) {
    if (Status sent = send_message(socket_.get(), bytes, fd, kTimeout); !sent) {
      return sent.error();
    }
    return receive();
  }

  Result<Message> receive() {
    Message answer{};
    auto got = receive_message(socket_.get(), std::as_writable_bytes(std::span(answer)), kTimeout);
    if (!got) {
      return std::move(got).error();
    }
    if (got->bytes != sizeof(answer) || answer[0] != kReply) {
      return make_error(Errc::system, "no reply: {}",
                        got->bytes == 0 ? "the device process closed the connection"
                                        : fmt::format("a message of {} bytes", got->bytes));
    }
    return answer;
  }

  // Says goodbye; the device program must then exit 0.
  void stop() {
    Result<Message> bye = exchange({kBye, 0, 0, 0, 0, 0});
    ASSERT_TRUE(bye) << bye.error().message();
    EXPECT_EQ((*bye)[1], kOk);
    Result<ChildExit> exit = process_.wait(kTimeout);
    ASSERT_TRUE(exit) << exit.error().message();
    EXPECT_TRUE(exit->ok()) << exit->describe();
  }

  IoTlb& tlb() { return *tlb_; }
  Device& device() { return *device_; }
  ChildProcess& process() { return process_; }
  int socket() const { return socket_.get(); }
  std::uint64_t window_bytes() const { return tlb_->end() - tlb_->start(); }

 private:
  Host() = default;

  Status make_pool_and_device() {
    auto tlb = IoTlb::create({.nslabs = kPoolSlots,
                              .force_bounce = true,
                              .region = RegionSpec{.kind = RegionKind::memfd}});
    if (!tlb) {
      return tlb.error();
    }
    tlb_ = std::move(*tlb);
    auto ranges = DmaRangeMap::create({{tlb_->start().value(), kDmaBase, window_bytes()}});
    if (!ranges) {
      return ranges.error();
    }
    auto device = Device::create({.name = "peer", .dma_ranges = std::move(*ranges)}, tlb_.get());
    if (!device) {
      return device.error();
    }
    device_ = std::move(*device);
    return Status::ok();
  }

  Status start_peer() {
    auto pair = make_socket_pair();
    if (!pair) {
      return pair.error();
    }
    auto process =
        ChildProcess::spawn(SWIOTLB_SHARED_WINDOW_DEVICE, {std::to_string(kDeviceSocket)},
                            pair->second.get(), kDeviceSocket);
    if (!process) {
      return process.error();
    }
    process_ = std::move(*process);
    socket_ = std::move(pair->first);
    const Message hello = {kHello, kProtocolVersion, window_bytes(), kDmaBase, 0, 0};
    auto answer = exchange(hello, tlb_->region()->fd());
    if (!answer) {
      return answer.error();
    }
    if ((*answer)[1] != kOk || (*answer)[4] != window_bytes()) {
      return make_error(Errc::system, "the device refused the window (status {})", (*answer)[1]);
    }
    return Status::ok();
  }

  std::unique_ptr<IoTlb> tlb_;
  std::unique_ptr<Device> device_;
  OwnedFd socket_;
  ChildProcess process_;
};

std::unique_ptr<Host> start_host() {
  Result<std::unique_ptr<Host>> host = Host::start();
  EXPECT_TRUE(host) << host.error().message();
  return host ? std::move(*host) : nullptr;
}

// A host buffer mapped for the device, with the seeds of what the device
// must find in it and write into it.
struct Buffer {
  std::span<std::byte> bytes;
  Direction dir = Direction::to_device;
  DmaAddr dma;
  std::uint64_t check_seed = 0;
  std::uint64_t fill_seed = 0;
};

Buffer map_buffer(Device& dev, std::span<std::byte> bytes, Direction dir, std::uint64_t seed) {
  Buffer b{bytes, dir, {}, seed, ~seed};
  fill_pattern(bytes, dir == Direction::from_device ? seed * 3 + 1 : b.check_seed);
  Result<DmaAddr> dma = map_single(dev, bytes.data(), bytes.size(), dir);
  EXPECT_TRUE(dma) << dma.error().message();
  b.dma = dma ? *dma : DmaAddr(kInvalidAddress);
  return b;
}

Result<Message> run_on_device(Host& host, const Buffer& b) {
  return host.exchange(
      transfer_command(b.dir, b.dma.value(), b.bytes.size(), b.check_seed, b.fill_seed));
}

// Checks the device's reply to a transfer of `b`: everything it had to
// check was checked and right, everything it had to write was written.
void expect_done(const Result<Message>& reply, const Buffer& b) {
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ((*reply)[1], kOk);
  EXPECT_EQ((*reply)[2], copies_to_device(b.dir) ? b.bytes.size() : 0);
  EXPECT_EQ((*reply)[3], 0u) << "bytes the device found wrong";
  EXPECT_EQ((*reply)[4], copies_from_device(b.dir) ? b.bytes.size() : 0);
}

// A bidirectional buffer goes back and forth once more before its unmap:
// the CPU reads the device's bytes, writes new ones, and the device checks.
void sync_both_ways(Host& host, Buffer& b) {
  Device& dev = host.device();
  ASSERT_TRUE(sync_single_for_cpu(dev, b.dma, b.bytes.size(), b.dir));
  EXPECT_EQ(count_mismatches(b.bytes, b.fill_seed), 0u);
  fill_pattern(b.bytes, b.fill_seed + 1);
  ASSERT_TRUE(sync_single_for_device(dev, b.dma, b.bytes.size(), b.dir));
  const Message check =
      transfer_command(Direction::to_device, b.dma.value(), b.bytes.size(), b.fill_seed + 1);
  Result<Message> reply = host.exchange(check);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ((*reply)[1], kOk);
  EXPECT_EQ((*reply)[2], b.bytes.size());
  EXPECT_EQ((*reply)[3], 0u);
  b.fill_seed += 1;
}

// Unmaps `b` and checks every byte the host holds afterwards.
void unmap_and_check(Device& dev, const Buffer& b) {
  ASSERT_TRUE(unmap_single(dev, b.dma, b.bytes.size(), b.dir));
  const std::uint64_t seed = copies_from_device(b.dir) ? b.fill_seed : b.check_seed;
  EXPECT_EQ(count_mismatches(b.bytes, seed), 0u) << to_string(b.dir) << " " << b.bytes.size();
}

void expect_pool_empty(Host& host) {
  EXPECT_TRUE(host.device().close());
  EXPECT_EQ(host.tlb().stats().pools[0].used, 0u);
}

TEST(SharedWindow, EveryByteRoundTripsThroughTheDeviceProcess) {
  std::unique_ptr<Host> host = start_host();
  ASSERT_NE(host, nullptr);
  std::mt19937_64 rng(2024);
  const Direction kDirections[] = {Direction::to_device, Direction::from_device,
                                   Direction::bidirectional};
  for (int round = 0; round < 20; ++round) {
    std::vector<std::vector<std::byte>> storage;
    std::vector<Buffer> batch;
    for (int i = 0; i < 6; ++i) {
      const std::size_t offset = rng() % 4096;
      storage.emplace_back(offset + 512 + rng() % (256 * 1024 - 512 + 1));
      const std::span<std::byte> bytes = std::span(storage.back()).subspan(offset);
      batch.push_back(map_buffer(host->device(), bytes, kDirections[rng() % 3], rng()));
      // The device sees the window at its own base, not at the host's address.
      EXPECT_GE(batch.back().dma.value(), kDmaBase);
      EXPECT_LE(batch.back().dma.value() + bytes.size(), kDmaBase + host->window_bytes());
    }
    for (Buffer& b : batch) {
      expect_done(run_on_device(*host, b), b);
      if (b.dir == Direction::bidirectional) {
        sync_both_ways(*host, b);
      }
    }
    for (const Buffer& b : batch) {
      unmap_and_check(host->device(), b);
    }
  }
  host->stop();
  expect_pool_empty(*host);
}

TEST(SharedWindow, DeviceRefusesAddressesOutsideTheWindow) {
  std::unique_ptr<Host> host = start_host();
  ASSERT_NE(host, nullptr);
  const std::uint64_t end = kDmaBase + host->window_bytes();
  const std::uint64_t host_address = host->tlb().start().value();
  struct Case {
    std::uint64_t dma;
    std::uint64_t size;
  };
  const Case outside[] = {
      {kDmaBase - 4096, 512},                // below the window
      {kDmaBase - 1, 512},                   // straddles its start
      {end, 1},                              // one past its end
      {end - 256, 512},                      // straddles its end
      {0, 512},                              // address 0
      {host_address, 512},                   // where the host keeps the pool
      {kDmaBase, host->window_bytes() + 1},  // longer than the window
      {kDmaBase + 4096, ~std::uint64_t{0}},  // a size that wraps
      {~std::uint64_t{0} - 16, 512},         // an address that wraps
  };
  for (const Case& c : outside) {
    for (Direction dir : {Direction::to_device, Direction::from_device, Direction::bidirectional}) {
      Result<Message> reply = host->exchange(transfer_command(dir, c.dma, c.size));
      ASSERT_TRUE(reply) << reply.error().message();
      EXPECT_EQ((*reply)[1], kOutsideWindow) << std::hex << c.dma << " + " << c.size;
      EXPECT_EQ((*reply)[2] + (*reply)[4], 0u) << "nothing read or written";
    }
  }
  // The first and last bytes of the window are the device's to read.
  for (std::uint64_t dma : {kDmaBase, end - 512}) {
    Result<Message> reply = host->exchange(transfer_command(Direction::to_device, dma, 512));
    ASSERT_TRUE(reply);
    EXPECT_EQ((*reply)[1], kOk);
  }
  std::vector<std::byte> storage(8192);
  Buffer b = map_buffer(host->device(), storage, Direction::bidirectional, 5);
  expect_done(run_on_device(*host, b), b);
  unmap_and_check(host->device(), b);
  host->stop();
  expect_pool_empty(*host);
}

TEST(SharedWindow, DeviceAnswersMalformedCommandsAndCarriesOn) {
  std::unique_ptr<Host> host = start_host();
  ASSERT_NE(host, nullptr);
  auto expect_malformed = [&](Result<Message> reply, const char* what) {
    ASSERT_TRUE(reply) << what << ": " << reply.error().message();
    EXPECT_EQ((*reply)[1], kMalformed) << what;
  };
  const Message good = transfer_command(Direction::to_device, kDmaBase, 512);
  expect_malformed(host->exchange_bytes(std::as_bytes(std::span(good)).first(47)), "short");
  std::array<std::byte, 100> long_message{};
  expect_malformed(host->exchange_bytes(long_message), "long");
  expect_malformed(host->exchange({99, 0, 0, 0, 0, 0}), "unknown kind");
  expect_malformed(host->exchange({kTransfer, 3, kDmaBase, 512, 0, 0}), "direction none");
  expect_malformed(host->exchange({kTransfer, 77, kDmaBase, 512, 0, 0}), "direction 77");
  expect_malformed(host->exchange(transfer_command(Direction::to_device, kDmaBase, 0)), "size 0");
  expect_malformed(host->exchange({kHello, kProtocolVersion, 4096, 0, 0, 0}), "second hello");
  expect_malformed(host->exchange({kReply, 0, 0, 0, 0, 0}), "a reply");
  expect_malformed(host->exchange(good, host->tlb().region()->fd()), "with a descriptor");

  std::vector<std::byte> storage(3000);
  Buffer b = map_buffer(host->device(), storage, Direction::bidirectional, 9);
  expect_done(run_on_device(*host, b), b);
  unmap_and_check(host->device(), b);
  host->stop();
  expect_pool_empty(*host);
}

// The device program checks the window before it maps it, and a hello it
// refuses ends it (status 2) after a "no window" reply.
std::pair<std::uint64_t, ChildExit> hello_with(int fd, std::uint64_t bytes) {
  SocketPair pair = make_socket_pair().value();
  ChildProcess device =
      ChildProcess::spawn(SWIOTLB_SHARED_WINDOW_DEVICE, {"3"}, pair.second.get(), kDeviceSocket)
          .value();
  pair.second.reset();
  const Message hello = {kHello, kProtocolVersion, bytes, kDmaBase, 0, 0};
  EXPECT_TRUE(send_message(pair.first.get(), std::as_bytes(std::span(hello)), fd, kTimeout));
  Message answer{};
  Result<ReceivedMessage> got =
      receive_message(pair.first.get(), std::as_writable_bytes(std::span(answer)), kTimeout);
  EXPECT_TRUE(got && got->bytes == sizeof(answer));
  Result<ChildExit> exit = device.wait(kTimeout);
  EXPECT_TRUE(exit);
  return {answer[1], exit ? *exit : ChildExit{}};
}

TEST(SharedWindow, DeviceRefusesAWindowItCannotTrust) {
  constexpr std::uint64_t kNoWindow = 3;
  OwnedFd unsealed(memfd_create("unsealed", MFD_CLOEXEC));
  ASSERT_TRUE(unsealed.valid());
  ASSERT_EQ(ftruncate(unsealed.get(), 1 << 20), 0);
  // The sender could shrink it under the device's mapping.
  auto [status, exit] = hello_with(unsealed.get(), 1 << 20);
  EXPECT_EQ(status, kNoWindow);
  EXPECT_EQ(exit.code, 2);

  auto tlb = IoTlb::create({.nslabs = 128, .region = RegionSpec{.kind = RegionKind::memfd}});
  ASSERT_TRUE(tlb) << tlb.error().message();
  const int sealed = (*tlb)->region()->fd();
  const std::uint64_t size = (*tlb)->end() - (*tlb)->start();
  for (const auto& [fd, bytes] :
       std::vector<std::pair<int, std::uint64_t>>{{sealed, size * 2},  // more than the memfd holds
                                                  {sealed, 0},         // nothing
                                                  {-1, size}}) {       // no descriptor
    auto [refused, ended] = hello_with(fd, bytes);
    EXPECT_EQ(refused, kNoWindow) << bytes;
    EXPECT_EQ(ended.code, 2) << bytes;
  }
}

// The device process holds the window and no other memory of the host's:
// its only mapping of the memfd is the window, it has no other shared
// mapping, and the host's buffers are not mapped in it at all.
TEST(SharedWindow, DeviceProcessHoldsOnlyTheWindow) {
  std::unique_ptr<Host> host = start_host();
  ASSERT_NE(host, nullptr);
  // Host buffers in low memory, which the exec'd device program leaves
  // empty (its binary, heap, libraries and stack live high), so that an
  // address of ours found mapped there would be a real finding.
  auto arena = Region::anonymous(1 << 20, RegionPlacement::low);
  ASSERT_TRUE(arena) << arena.error().message();
  std::vector<Buffer> buffers;
  for (Direction dir : {Direction::to_device, Direction::from_device, Direction::bidirectional}) {
    const std::span<std::byte> bytes((*arena)->data() + buffers.size() * 65536 + 100, 60000);
    buffers.push_back(map_buffer(host->device(), bytes, dir, buffers.size() + 1));
    expect_done(run_on_device(*host, buffers.back()), buffers.back());
  }

  // Low placement is a preference (ThreadSanitizer keeps low memory for
  // itself); elsewhere an address could meet the device's own mappings.
  const bool arena_low = (*arena)->end().value() <= (1ULL << 31);
  if (!arena_low) {
    std::cerr << "note: host buffers are not in low memory; their addresses go unchecked\n";
  }
  struct stat memfd {};
  ASSERT_EQ(fstat(host->tlb().region()->fd(), &memfd), 0);
  std::vector<MapsEntry> window;
  for (const MapsEntry& e : read_maps(host->process().pid())) {
    if (e.inode == memfd.st_ino && e.path.find("memfd:") != std::string::npos) {
      window.push_back(e);
    } else {
      EXPECT_FALSE(e.shared()) << "shared with someone: " << e.path;
    }
    EXPECT_FALSE(arena_low && e.overlaps((*arena)->start().value(), (*arena)->end().value()))
        << "host buffers mapped in the device process: " << e.path;
  }
  ASSERT_EQ(window.size(), 1u);
  EXPECT_EQ(window[0].end - window[0].start, host->window_bytes());
  EXPECT_TRUE(window[0].shared());

  for (const Buffer& b : buffers) {
    unmap_and_check(host->device(), b);
  }
  host->stop();
  expect_pool_empty(*host);
}

// Why the device program is exec'd: a child that is only forked holds a
// copy of every host mapping, buffers included, at the host's addresses.
TEST(SharedWindow, AForkedChildWouldHoldTheHostBuffers) {
  auto arena = Region::anonymous(1 << 20, RegionPlacement::anywhere);
  ASSERT_TRUE(arena) << arena.error().message();
  std::array<int, 2> gate{};
  ASSERT_EQ(pipe2(gate.data(), O_CLOEXEC), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Waits until the parent has looked (and closed its end of the gate).
    close(gate[1]);
    char c = 0;
    _exit(read(gate[0], &c, 1) < 0 ? 1 : 0);
  }
  close(gate[0]);
  bool holds_buffers = false;
  for (const MapsEntry& e : read_maps(pid)) {
    holds_buffers = holds_buffers || e.overlaps((*arena)->start().value(), (*arena)->end().value());
  }
  close(gate[1]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(holds_buffers);
}

TEST(SharedWindow, DeviceProcessThatDiesMidTransferLeavesTheHostUsable) {
  const std::size_t fds_before = open_fd_count();
  {
    std::unique_ptr<Host> host = start_host();
    ASSERT_NE(host, nullptr);
    std::vector<std::vector<std::byte>> storage;
    std::vector<Buffer> buffers;
    for (int i = 0; i < 8; ++i) {
      storage.emplace_back(20000 + i * 5000);
      const Direction dir = static_cast<Direction>(i % 3);
      buffers.push_back(map_buffer(host->device(), storage.back(), dir, 40 + i));
    }
    for (int i = 0; i < 3; ++i) {
      expect_done(run_on_device(*host, buffers[i]), buffers[i]);
    }
    // A command in flight when the device process is killed.
    const Buffer& last = buffers[3];
    const Message in_flight = transfer_command(last.dir, last.dma.value(), last.bytes.size(), 1, 2);
    ASSERT_TRUE(send_message(host->socket(), std::as_bytes(std::span(in_flight)), -1, kTimeout));
    ASSERT_TRUE(host->process().kill(SIGKILL));
    Result<ChildExit> exit = host->process().wait(kTimeout);
    ASSERT_TRUE(exit) << exit.error().message();
    EXPECT_EQ(exit->signal, SIGKILL);

    // Its reply may or may not have left; after it, end of file, at once.
    Result<Message> reply = host->receive();
    if (reply) {
      reply = host->receive();
    }
    ASSERT_FALSE(reply);
    EXPECT_THAT(reply.error().message(), HasSubstr("closed the connection"));
    // Sending to it is an error (EPIPE), not a SIGPIPE that would end us.
    Result<Message> after = host->exchange(transfer_command(Direction::to_device, kDmaBase, 1));
    ASSERT_FALSE(after);

    // Every mapping still unmaps, and the pool is whole again.
    for (const Buffer& b : buffers) {
      EXPECT_TRUE(unmap_single(host->device(), b.dma, b.bytes.size(), b.dir));
    }
    EXPECT_EQ(host->device().stats().debug_errors, 0u);
    expect_pool_empty(*host);
    std::vector<std::byte> again(4096);
    Buffer b = map_buffer(host->device(), again, Direction::to_device, 1);
    EXPECT_TRUE(unmap_single(host->device(), b.dma, again.size(), b.dir));
    EXPECT_EQ(host->tlb().stats().pools[0].used, 0u);
  }
  EXPECT_EQ(open_fd_count(), fds_before) << "descriptors leaked";
}

// The descriptor passing underneath.

SocketPair socket_pair() {
  Result<SocketPair> pair = make_socket_pair();
  EXPECT_TRUE(pair) << pair.error().message();
  return pair ? std::move(*pair) : SocketPair{};
}

TEST(FdPassing, PassesOneDescriptorWithItsPayload) {
  SocketPair pair = socket_pair();
  OwnedFd memfd(memfd_create("fd-passing-test", MFD_CLOEXEC));
  ASSERT_TRUE(memfd.valid());
  const std::string text = "window";
  ASSERT_TRUE(send_message(pair.first.get(), std::as_bytes(std::span(text)), memfd.get(), 1s));
  std::array<std::byte, 64> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.second.get(), buffer, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, text.size());
  EXPECT_EQ(std::memcmp(buffer.data(), text.data(), text.size()), 0);
  ASSERT_TRUE(got->fd.valid());
  EXPECT_NE(got->fd.get(), memfd.get());
  struct stat sent {};
  struct stat received {};
  ASSERT_EQ(fstat(memfd.get(), &sent), 0);
  ASSERT_EQ(fstat(got->fd.get(), &received), 0);
  EXPECT_EQ(sent.st_ino, received.st_ino);
  EXPECT_NE(fcntl(got->fd.get(), F_GETFD) & FD_CLOEXEC, 0) << "received close-on-exec";
}

TEST(FdPassing, RefusesAndClosesMoreThanOneDescriptor) {
  SocketPair pair = socket_pair();
  const std::size_t fds_before = open_fd_count();
  std::array<int, 2> fds = {pair.first.get(), pair.first.get()};
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(fds))> control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* header = CMSG_FIRSTHDR(&msg);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(fds));
  std::memcpy(CMSG_DATA(header), fds.data(), sizeof(fds));
  ASSERT_EQ(sendmsg(pair.first.get(), &msg, 0), 1);
  std::array<std::byte, 8> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.second.get(), buffer, 1s);
  ASSERT_FALSE(got);
  EXPECT_THAT(got.error().message(), HasSubstr("at most one"));
  EXPECT_EQ(open_fd_count(), fds_before);
}

TEST(FdPassing, RefusesAMessageLongerThanTheBuffer) {
  SocketPair pair = socket_pair();
  const std::array<std::byte, 100> message{};
  ASSERT_TRUE(send_message(pair.first.get(), message, -1, 1s));
  std::array<std::byte, 48> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.second.get(), buffer, 1s);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code(), Errc::out_of_range);
}

TEST(FdPassing, RefusesEmptyAndOversizedPayloads) {
  SocketPair pair = socket_pair();
  EXPECT_FALSE(send_message(pair.first.get(), {}, -1, 1s));
  std::vector<std::byte> big(kMaxMessagePayload + 1);
  EXPECT_FALSE(send_message(pair.first.get(), big, -1, 1s));
}

TEST(FdPassing, ReportsAPeerThatSaysNothingInsteadOfHanging) {
  SocketPair pair = socket_pair();
  std::array<std::byte, 8> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.second.get(), buffer, 50ms);
  ASSERT_FALSE(got);
  EXPECT_THAT(got.error().message(), HasSubstr("did not answer in time"));
}

TEST(FdPassing, SeesAPeerThatIsGone) {
  SocketPair pair = socket_pair();
  pair.second.reset();
  std::array<std::byte, 8> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.first.get(), buffer, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, 0u);
  // No SIGPIPE: the error is a value.
  const std::array<std::byte, 4> message{};
  Status sent = send_message(pair.first.get(), message, -1, 1s);
  ASSERT_FALSE(sent);
  EXPECT_THAT(sent.error().message(), HasSubstr("Broken pipe"));
}

// Closing with messages unread resets the connection (ECONNRESET): the
// peer is just as gone.
TEST(FdPassing, SeesAPeerThatDiedWithMessagesUnread) {
  SocketPair pair = socket_pair();
  const std::array<std::byte, 4> message{};
  ASSERT_TRUE(send_message(pair.first.get(), message, -1, 1s));
  pair.second.reset();
  std::array<std::byte, 8> buffer{};
  Result<ReceivedMessage> got = receive_message(pair.first.get(), buffer, 1s);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->bytes, 0u);
}

TEST(FdPassing, SpawnReportsAProgramThatCannotRun) {
  SocketPair pair = socket_pair();
  Result<ChildProcess> child =
      ChildProcess::spawn("/nonexistent/program", {}, pair.second.get(), 3);
  ASSERT_FALSE(child);
  EXPECT_THAT(child.error().message(), HasSubstr("No such file or directory"));
}

// The spawned program gets stdio and its socket, nothing else of ours, even
// a descriptor we forgot to make close-on-exec.
TEST(FdPassing, SpawnedProgramGetsOnlyItsDescriptor) {
  SocketPair pair = socket_pair();
  OwnedFd careless(dup(2));
  ASSERT_TRUE(careless.valid());
  Result<ChildProcess> child = ChildProcess::spawn("/bin/sh", {"-c", "ls /proc/$$/fd >&3"},
                                                   pair.second.get(), kDeviceSocket);
  ASSERT_TRUE(child) << child.error().message();
  std::array<char, 4096> listing{};
  Result<ReceivedMessage> got =
      receive_message(pair.first.get(), std::as_writable_bytes(std::span(listing)), kTimeout);
  ASSERT_TRUE(got) << got.error().message();
  std::istringstream in(std::string(listing.data(), got->bytes));
  std::vector<int> open;
  for (int fd = 0; in >> fd;) {
    open.push_back(fd);
  }
  EXPECT_THAT(open, ::testing::Contains(kDeviceSocket));
  EXPECT_THAT(open, ::testing::Not(::testing::Contains(careless.get())));
  Result<ChildExit> exit = child->wait(kTimeout);
  ASSERT_TRUE(exit) << exit.error().message();
  EXPECT_TRUE(exit->ok()) << exit->describe();
}

}  // namespace
}  // namespace swiotlb
