// Devices with 32-, 36- and 64-bit masks on the seed-003 board (RAM at
// 2 GiB, 34 GiB, 576 GiB and 640 GiB): every mapping is either direct, at
// the buffer's own address because the device reaches it, or bounced into
// a pool the device reaches, checked by address.
//
// The buffers and the low pool are regions at fixed addresses inside the
// board's banks, so that a CPU address here is the board's physical address
// (the host maps them at those very addresses). Where the host has those
// addresses in use, or a sanitizer reserves them, the test says so and skips.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/dma_fixture.h"
#include "swiotlb/platform/machine_model.h"
#include "swiotlb/platform/region.h"

namespace swiotlb {
namespace {

using testing::device_view;
using testing::pattern;
using testing::same_bytes;

constexpr std::uint64_t kBufferBytes = 64 * 1024;
constexpr std::uint64_t kPoolSlabs = 2048;          // 4 MiB
constexpr std::uint64_t kBufferOffset = 256 << 20;  // into each bank
constexpr std::uint64_t kLowPoolAt = 0xa0000000;    // in the 2 GiB bank, past its buffer

class Seed003 : public ::testing::Test {
 protected:
  void SetUp() override {
#if defined(__SANITIZE_THREAD__)
    // ThreadSanitizer keeps the low address space for itself and ends the
    // process on a mapping there, instead of refusing it.
    GTEST_SKIP() << "the board's low addresses are ThreadSanitizer's";
#endif
    auto machine = MachineModel::iproc_stingray();
    ASSERT_TRUE(machine) << machine.error().message();
    machine_ = std::move(*machine);
    for (const MemoryBank& bank : machine_->banks()) {
      auto region = Region::create({.bytes = kBufferBytes,
                                    .fixed_address = bank.start + kBufferOffset,
                                    .machine = machine_.get()});
      if (!region) {
        GTEST_SKIP() << "the host cannot map at the board's addresses: "
                     << region.error().message();
      }
      buffers_.push_back(std::move(*region));
    }
    IoTlbOptions options;
    options.nslabs = kPoolSlabs;
    options.high_nslabs = kPoolSlabs;  // anywhere in the host: far above 64 GiB
    options.region = RegionSpec{.fixed_address = PhysAddr(kLowPoolAt), .machine = machine_.get()};
    auto tlb = IoTlb::create(options);
    if (!tlb) {
      GTEST_SKIP() << "the host cannot place the low pool at " << std::hex << kLowPoolAt << ": "
                   << tlb.error().message();
    }
    tlb_ = std::move(*tlb);
    if (tlb_->pool_info(1).start.value() < (std::uint64_t{1} << 36)) {
      GTEST_SKIP() << "the host placed the high pool below 64 GiB";
    }
  }

  // Maps every bank's buffer for a device with a `bits`-bit mask, checks
  // each mapping by address and the bytes it carries, and unmaps.
  void check_device(unsigned bits) {
    const std::uint64_t mask = bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    auto dev = testing::make_device(
        tlb_.get(),
        {.name = "dev" + std::to_string(bits), .dma_mask = mask, .coherent_dma_mask = mask});
    ASSERT_TRUE(dev);
    for (std::size_t b = 0; b < buffers_.size(); ++b) {
      SCOPED_TRACE("bank " + std::to_string(b) + ", " + std::to_string(bits) + "-bit mask");
      Region& buffer = *buffers_[b];
      const std::vector<std::byte> data = pattern(kBufferBytes, static_cast<unsigned>(b + bits));
      std::memcpy(buffer.data(), data.data(), kBufferBytes);
      const PhysAddr phys = buffer.start();
      ASSERT_EQ(machine_->bank_of(phys), b);
      auto dma = map_single(*dev, buffer.data(), kBufferBytes, Direction::to_device);
      ASSERT_TRUE(dma) << dma.error().message();
      const std::uint64_t last = dma->value() + kBufferBytes - 1;
      EXPECT_LE(last, mask) << "the device was handed an address it cannot reach";
      const bool reachable = phys.value() + kBufferBytes - 1 <= mask;
      if (reachable) {
        EXPECT_EQ(dma->value(), phys.value()) << "a reachable buffer is mapped direct";
      } else {
        const int pool = tlb_->pool_of(PhysAddr(dma->value()));
        ASSERT_GE(pool, 0) << "an unreachable buffer must be bounced";
        const PoolInfo info = tlb_->pool_info(static_cast<std::uint32_t>(pool));
        EXPECT_LE(info.end.value() - 1, mask)
            << "bounced into the " << info.name << " pool, which the device does not reach";
        // A device that reaches the high pool leaves the low one alone.
        EXPECT_EQ(info.name, bits == 64 ? "high" : "low");
      }
      EXPECT_TRUE(same_bytes(device_view(*dma), data.data(), kBufferBytes));
      EXPECT_TRUE(unmap_single(*dev, *dma, kBufferBytes, Direction::to_device));
    }
    EXPECT_TRUE(dev->close());
  }

  std::unique_ptr<MachineModel> machine_;
  std::vector<std::unique_ptr<Region>> buffers_;
  std::unique_ptr<IoTlb> tlb_;
};

TEST_F(Seed003, ThirtyTwoBitDeviceBouncesAllButTheFirstBankIntoTheLowPool) {
  check_device(32);
}

TEST_F(Seed003, ThirtySixBitDeviceReachesTheFirstTwoBanksDirect) {
  check_device(36);
}

TEST_F(Seed003, SixtyFourBitDeviceReachesEveryBankDirect) {
  check_device(64);
}

TEST_F(Seed003, LowPoolSitsInTheFirstBank) {
  EXPECT_EQ(tlb_->start().value(), kLowPoolAt);
  EXPECT_EQ(machine_->bank_of(tlb_->start()), 0u);
  EXPECT_TRUE(machine_->contains(tlb_->start(), tlb_->end() - tlb_->start()));
}

}  // namespace
}  // namespace swiotlb
