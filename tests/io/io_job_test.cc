// Runs through the ring on a real file: every rw mode, from unaligned,
// aligned, mixed and registered buffers, with every byte read back.
#include <gtest/gtest.h>
#include <unistd.h>

#include <tuple>

#include "io/io_fixture.h"

namespace swiotlb::io {
namespace {

using testing::IoFixture;

class RingModes : public IoFixture,
                  public ::testing::WithParamInterface<std::tuple<RwMode, BufferSource>> {};

TEST_P(RingModes, EveryBlockReadBackIsRight) {
  open();
  if (IsSkipped()) {
    return;
  }
  const auto [rw, buffers] = GetParam();
  JobSpec s = spec(rw, buffers);
  s.block_sizes = {{4096, 60}, {16384, 30}, {65536, 10}};
  Result<JobResult> r = run_ring_job(*dev_, s);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->error) << r->error->message();
  EXPECT_EQ(r->measures.ios, 1500U);
  EXPECT_EQ(r->verify_errors, 0U) << r->first_verify_error;
  if (rw == RwMode::read || rw == RwMode::randread || rw == RwMode::randrw) {
    EXPECT_GT(r->verified_blocks, 0U);
  }
  const double expected_share = buffers == BufferSource::registered ? 0.0
                                : buffers == BufferSource::mixed    ? 0.5
                                                                    : 1.0;
  EXPECT_NEAR(r->measures.bounced_share(), expected_share, 0.05);
  EXPECT_EQ(pool_used(), 0U);
  EXPECT_EQ(dev_->device().stats().live_direct, 0U);
  expect_file_matches();
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, RingModes,
    ::testing::Combine(::testing::Values(RwMode::read, RwMode::write, RwMode::randread,
                                         RwMode::randwrite, RwMode::randrw),
                       ::testing::Values(BufferSource::unaligned, BufferSource::aligned,
                                         BufferSource::mixed, BufferSource::registered)));

TEST_F(IoFixture, WrittenBlocksAreFoundByALaterReadPass) {
  open();
  if (IsSkipped()) {
    return;
  }
  // Sequential writes over the whole file, then sequential reads: every
  // block is read back with the sequence its write gave it.
  const std::uint64_t blocks = kFileSize / 65536;
  Result<JobResult> w =
      run_ring_job(*dev_, spec(RwMode::write, BufferSource::unaligned, 65536, blocks));
  ASSERT_TRUE(w);
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::read, BufferSource::unaligned, 65536, blocks));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->verified_blocks, kFileSize / dev_->block_size());
  EXPECT_EQ(r->verify_errors, 0U);
}

TEST_F(IoFixture, ASmallPoolMakesTheRingWaitForSlots) {
  // 128 slots (256 KiB) for 16 I/Os of 64 KiB (1 MiB).
  open({}, 128);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 65536, 600));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->error) << r->error->message();
  EXPECT_GT(r->pool_waits, 0U);
  EXPECT_EQ(r->measures.ios, 600U);
  EXPECT_EQ(r->verify_errors, 0U) << r->first_verify_error;
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoFixture, AnIoLargerThanThePoolFailsClearly) {
  open({}, 128);
  if (IsSkipped()) {
    return;
  }
  // 512 KiB cannot fit in a 256 KiB pool even with nothing in flight.
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randread, BufferSource::unaligned, 512 * 1024, 10));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error);
  EXPECT_EQ(r->measures.ios, 0U);
  EXPECT_EQ(pool_used(), 0U);
}

TEST_F(IoFixture, TheBaselinesVerifyToo) {
  open();
  if (IsSkipped()) {
    return;
  }
  for (int fd : {file_->fd(), file_->buffered_fd()}) {
    JobSpec s = spec(RwMode::randrw, BufferSource::aligned);
    s.ios = 500;
    Result<JobResult> r = run_sync_job(fd, dev_->block_size(), s);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(r->error);
    EXPECT_EQ(r->measures.ios, 500U);
    EXPECT_EQ(r->measures.bounced, 0U);
    EXPECT_EQ(r->verify_errors, 0U) << r->first_verify_error;
    ASSERT_EQ(::fsync(fd), 0);
  }
  expect_file_matches();
}

TEST_F(IoFixture, SpecsThatCannotRunAreRefused) {
  open();
  if (IsSkipped()) {
    return;
  }
  EXPECT_FALSE(run_ring_job(*dev_, spec(RwMode::read, BufferSource::unaligned, 1000)));
  EXPECT_FALSE(run_ring_job(*dev_, spec(RwMode::read, BufferSource::unaligned, 2 * kFileSize)));
  JobSpec big = spec(RwMode::read, BufferSource::registered, 1 << 20);
  EXPECT_FALSE(run_ring_job(*dev_, big));  // 16 x 1 MiB does not fit the 4 MiB arena
}

TEST(IoParse, SizesModesAndMixes) {
  EXPECT_EQ(*parse_size("4k"), 4096U);
  EXPECT_EQ(*parse_size("256M"), 256U << 20);
  EXPECT_EQ(*parse_size("1GiB"), 1U << 30);
  EXPECT_FALSE(parse_size("4x"));
  EXPECT_FALSE(parse_size(""));
  EXPECT_EQ(*parse_rw_mode("randrw"), RwMode::randrw);
  EXPECT_FALSE(parse_rw_mode("rw"));
  EXPECT_EQ(*parse_buffer_source("mixed"), BufferSource::mixed);
  Result<std::vector<BlockSizeShare>> mix = parse_block_sizes("4k/70:128k/30");
  ASSERT_TRUE(mix);
  ASSERT_EQ(mix->size(), 2U);
  EXPECT_EQ((*mix)[1].bytes, 128U * 1024);
  EXPECT_EQ((*mix)[1].percent, 30U);
  EXPECT_FALSE(parse_block_sizes("4k/70:128k/20"));
  EXPECT_FALSE(parse_block_sizes("4k/0:128k/100"));
}

TEST(IoLatency, PercentilesAreWithinABucket) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) {
    h.record(v * 1000);
  }
  EXPECT_NEAR(static_cast<double>(h.percentile(0.5)), 500e3, 500e3 * 0.04);
  EXPECT_NEAR(static_cast<double>(h.percentile(0.99)), 990e3, 990e3 * 0.04);
  EXPECT_EQ(LatencyHistogram().percentile(0.5), 0U);
}

TEST(IoPattern, CatchesWrongOffsetStaleAndTornBlocks) {
  BlockPattern p(8192, 512);
  std::vector<std::byte> a(1024);
  std::vector<std::byte> b(1024);
  p.fill_initial(a, 0);
  std::string err;
  EXPECT_EQ(p.check(a, 0, &err).good, 2U);
  EXPECT_EQ(p.check(a, 1024, &err).bad, 2U);  // the blocks of another offset
  p.fill_for_write(b, 0);
  EXPECT_EQ(p.check(a, 0, nullptr).bad, 2U);  // stale: sequence 0, now 1
  EXPECT_EQ(p.check(b, 0, nullptr).good, 2U);
  b[700] ^= std::byte{1};
  EXPECT_EQ(p.check(b, 0, nullptr).bad, 1U);  // torn
  p.write_failed(0, 1024);
  EXPECT_EQ(p.check(a, 0, nullptr).unknown, 2U);
}

}  // namespace
}  // namespace swiotlb::io
