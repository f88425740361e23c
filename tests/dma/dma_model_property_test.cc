// Random map/unmap/sync sequences, as ops (ops/op.h) applied to a Device
// through the DMA API, against a simple reference model. After
// every step: live bounced mappings never overlap, the pool's used count is
// the sum of the live mappings' slots, hiwater >= used, the pool's own
// invariants hold; and every byte round-trips as its direction promises.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/core/constants.h"
#include "swiotlb/dma/apply_op.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::make_device;
using testing::make_io_tlb;

struct LiveMapping {
  std::vector<std::byte> storage;  // the original buffer (with room for an offset)
  std::size_t offset = 0;
  std::uint64_t size = 0;
  Direction dir = Direction::to_device;
  DmaAddr dma;
  std::vector<std::byte> expected;  // what the original must hold after unmap

  std::byte* orig() { return storage.data() + offset; }
};

const std::vector<Direction> kDirections = {Direction::to_device, Direction::from_device,
                                            Direction::bidirectional};

void check_model(const IoTlb& io_tlb, const std::vector<LiveMapping>& live) {
  std::uint64_t slots = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const LiveMapping& m : live) {
    slots += nr_slots(m.size);
    ranges.emplace_back(m.dma.value(), m.dma.value() + m.size);
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    RC_ASSERT(ranges[i - 1].second <= ranges[i].first);
  }
  RC_ASSERT(io_tlb.pool().used() == slots);
  RC_ASSERT(io_tlb.pool().hiwater() >= io_tlb.pool().used());
  RC_ASSERT(static_cast<bool>(io_tlb.pool().check_invariants()));
}

void fill(std::byte* p, std::size_t n, unsigned seed) {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] = static_cast<std::byte>((seed * 31 + i * 7) & 0xff);
  }
}

void map_one(Device& dev, std::vector<LiveMapping>& live) {
  LiveMapping m;
  m.size = *rc::gen::inRange<std::uint64_t>(1, 64 * 1024 + 1);
  m.offset = *rc::gen::inRange<std::size_t>(0, 4096);
  m.dir = *rc::gen::elementOf(kDirections);
  m.storage.resize(m.offset + m.size);
  fill(m.orig(), m.size, static_cast<unsigned>(live.size()));
  ops::Map map;
  map.orig = PhysAddr::from_pointer(m.orig()).value();
  map.size = m.size;
  map.min_align_mask = dev.config().min_align_mask;
  map.dir = m.dir;
  map.attrs = static_cast<std::uint32_t>(Attr::no_warn);
  ops::Applied dma = ops::apply(map, dev);
  if (!dma) {
    RC_ASSERT(dma.error().code() == Errc::pool_full);
    return;
  }
  m.dma = DmaAddr(*dma);
  // Whatever the direction, the device first sees the original's bytes.
  RC_ASSERT(std::memcmp(device_view(m.dma), m.orig(), m.size) == 0);
  m.expected.assign(m.orig(), m.orig() + m.size);
  live.push_back(std::move(m));
}

void device_writes(LiveMapping& m) {
  const std::uint64_t from = *rc::gen::inRange<std::uint64_t>(0, m.size);
  const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, m.size - from + 1);
  std::memset(device_view(m.dma) + from, 0xd5, n);
  if (copies_from_device(m.dir)) {
    std::memset(m.expected.data() + from, 0xd5, n);
  }
}

void sync_one(Device& dev, LiveMapping& m) {
  const std::uint64_t from = *rc::gen::inRange<std::uint64_t>(0, m.size);
  const std::uint64_t n = *rc::gen::inRange<std::uint64_t>(1, m.size - from + 1);
  RC_ASSERT(static_cast<bool>(
      ops::apply(ops::Sync{(m.dma + from).value(), n, m.dir, ops::SyncFor::cpu}, dev)));
  if (copies_from_device(m.dir)) {
    RC_ASSERT(std::memcmp(m.orig() + from, device_view(m.dma) + from, n) == 0);
  }
  RC_ASSERT(static_cast<bool>(
      ops::apply(ops::Sync{(m.dma + from).value(), n, m.dir, ops::SyncFor::device}, dev)));
  if (copies_to_device(m.dir)) {
    RC_ASSERT(std::memcmp(device_view(m.dma) + from, m.orig() + from, n) == 0);
  }
}

void unmap_one(Device& dev, std::vector<LiveMapping>& live, std::size_t i) {
  LiveMapping& m = live[i];
  RC_ASSERT(static_cast<bool>(
      ops::apply(ops::Unmap{m.dma.value(), m.size, dev.config().min_align_mask, m.dir, 0}, dev)));
  RC_ASSERT(std::memcmp(m.orig(), m.expected.data(), m.size) == 0);
  live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
}

void run_sequence(const char* policy, std::uint64_t min_align) {
  auto io_tlb = make_io_tlb(512, true, policy, 2);
  RC_ASSERT(io_tlb != nullptr);
  auto dev = make_device(io_tlb.get(), {.name = "dev", .min_align_mask = min_align});
  std::vector<LiveMapping> live;
  const int steps = *rc::gen::inRange(1, 120);
  for (int step = 0; step < steps; ++step) {
    const int op = *rc::gen::inRange(0, 10);
    if (live.empty() || op < 4) {
      map_one(*dev, live);
    } else {
      const std::size_t i = *rc::gen::inRange<std::size_t>(0, live.size());
      if (op < 6) {
        device_writes(live[i]);
      } else if (op < 8) {
        device_writes(live[i]);
        sync_one(*dev, live[i]);
      } else {
        unmap_one(*dev, live, i);
      }
    }
    if (min_align == 0) {
      check_model(*io_tlb, live);
    } else {
      RC_ASSERT(static_cast<bool>(io_tlb->pool().check_invariants()));
    }
  }
  while (!live.empty()) {
    unmap_one(*dev, live, live.size() - 1);
  }
  RC_ASSERT(io_tlb->pool().used() == 0u);
  RC_ASSERT(static_cast<bool>(dev->close()));
}

RC_GTEST_PROP(DmaModel, LinuxPolicyKeepsEveryPromise, ()) {
  run_sequence("linux", 0);
}
RC_GTEST_PROP(DmaModel, Linux61PolicyKeepsEveryPromise, ()) {
  run_sequence("linux-6.1", 0);
}
RC_GTEST_PROP(DmaModel, NvmeAlignmentKeepsEveryPromise, ()) {
  run_sequence("linux", 0xfff);
}
RC_GTEST_PROP(DmaModel, FastPolicyKeepsEveryPromise, ()) {
  run_sequence("fast", 0);
}
RC_GTEST_PROP(DmaModel, FastPolicyWithNvmeAlignmentKeepsEveryPromise, ()) {
  run_sequence("fast", 0xfff);
}

}  // namespace
}  // namespace swiotlb
