// Replays the map/unmap sequence recorded on a real Linux 6.1.192 kernel
// (tests/data/linux-6.1-nvme-randrw-256k-qd32.trace: swiotlb=8192,force, one
// CPU, NVMe with min_align_mask 0xfff) straight into a linux-6.1 pool and
// checks that every map gets the slot the kernel chose.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "swiotlb/ops/trace_ops.h"
#include "swiotlb/ops/trace_parser.h"
#include "swiotlb/pool/apply_op.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kPoolStart = 0x79b31000;

TEST(Linux61Trace, EveryMapGetsTheKernelsSlot) {
  auto policy = make_slot_policy("linux-6.1");
  ASSERT_TRUE(policy);
  auto pool = SlotPool::create({PhysAddr(kPoolStart), 8192, 1}, *policy);
  ASSERT_TRUE(pool) << pool.error().message();

  Result<ops::Trace> trace =
      ops::load_trace(std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace");
  ASSERT_TRUE(trace) << trace.error().message();
  ASSERT_EQ(trace->devices[0].min_align_mask, 0xfffu);  // NVMe
  ASSERT_EQ(trace->devices[0].seg_boundary_mask, 0xffffffffu);
  const std::vector<ops::Op> ops = ops::ops_from_trace(*trace);
  ASSERT_EQ(ops.size(), trace->events.size());
  int maps = 0;
  int unmaps = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::uint32_t line_no = trace->events[i].line;
    // The kernel's own lines are requests the pool must serve: a map at the
    // slot the kernel chose, an unmap (with the size and direction of its
    // map) of a live mapping.
    ops::Applied done = ops::apply(ops[i], **pool);
    ASSERT_TRUE(done) << "line " << line_no << ": " << done.error().message();
    if (const ops::Map* map = std::get_if<ops::Map>(&ops[i])) {
      ASSERT_TRUE(map->recorded_tlb);
      ASSERT_EQ(*done, *map->recorded_tlb) << "line " << line_no;
      ++maps;
    } else if (std::holds_alternative<ops::Unmap>(ops[i])) {
      ++unmaps;
    }
    ASSERT_TRUE((*pool)->check_invariants()) << "line " << line_no;
  }
  EXPECT_EQ(maps, 282);
  EXPECT_EQ(unmaps, 282);
  EXPECT_EQ((*pool)->used(), 0u);
  EXPECT_EQ((*pool)->hiwater(), 3970u);
}

}  // namespace
}  // namespace swiotlb
