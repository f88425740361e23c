// Replays the map/unmap sequence recorded on a real Linux 6.1.192 kernel
// (tests/data/linux-6.1-nvme-randrw-256k-qd32.trace: swiotlb=8192,force, one
// CPU, NVMe with min_align_mask 0xfff) straight into a linux-6.1 pool and
// checks that every map gets the slot the kernel chose.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {
namespace {

constexpr std::uint64_t kPoolStart = 0x79b31000;
constexpr std::uint64_t kNvmeMinAlign = 0xfff;

std::uint64_t number(const std::string& text) {
  return std::stoull(text, nullptr, 0);
}

TEST(Linux61Trace, EveryMapGetsTheKernelsSlot) {
  auto policy = make_slot_policy("linux-6.1");
  ASSERT_TRUE(policy);
  auto pool = SlotPool::create({PhysAddr(kPoolStart), 8192, 1}, *policy);
  ASSERT_TRUE(pool) << pool.error().message();

  std::ifstream in(std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace");
  ASSERT_TRUE(in.is_open());
  std::string line;
  int line_no = 0;
  int maps = 0;
  int unmaps = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    std::string op, t_ns, cpu, dev;
    fields >> op >> t_ns >> cpu >> dev;
    if (op == "map") {
      std::string orig, mapping_size, alloc_size, align, dir, attrs, tlb;
      fields >> orig >> mapping_size >> alloc_size >> align >> dir >> attrs >> tlb;
      SlotRequest request;
      request.orig = PhysAddr(number(orig));
      request.mapping_size = number(mapping_size);
      request.alloc_size = number(alloc_size);
      request.alloc_align_mask = number(align);
      request.min_align_mask = kNvmeMinAlign;
      request.seg_boundary_mask = 0xffffffff;
      request.pool_dma_start = DmaAddr(kPoolStart);
      request.cpu = static_cast<unsigned>(number(cpu));
      auto mapping = (*pool)->map(request);
      ASSERT_TRUE(mapping) << "line " << line_no << ": " << mapping.error().message();
      ASSERT_EQ(mapping->tlb_addr.value(), number(tlb)) << "line " << line_no;
      ++maps;
    } else if (op == "unmap") {
      std::string tlb;
      fields >> tlb;
      auto info = (*pool)->unmap(PhysAddr(number(tlb)), kNvmeMinAlign);
      ASSERT_TRUE(info) << "line " << line_no << ": " << info.error().message();
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
