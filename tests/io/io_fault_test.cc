// Faults on the ring path, injected through the device's completion
// filter: each ends with a clear message (or a transparent retry), every
// bounce slot released, and no block counted good that was not read back.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <map>
#include <utility>

#include "io/io_fixture.h"

namespace swiotlb::io {
namespace {

using testing::IoFixture;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(IoFixture, ShortTransfersAreResumed) {
  int shortened = 0;
  IoDeviceOptions o;
  o.filter = [&](const CompletionView& v) {
    // Half of each of the first 40 I/Os, as a device that splits them.
    if (shortened < 40 && v.done == 0 && v.result == static_cast<int>(v.length)) {
      ++shortened;
      return v.result / 2;
    }
    return v.result;
  };
  open(o);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 8192, 400));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->error) << r->error->message();
  EXPECT_EQ(dev_->stats().short_resumes, 40U);
  EXPECT_EQ(r->verify_errors, 0U) << r->first_verify_error;
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoFixture, AReadThatEndsShortFailsWithoutCountingItsBlocks) {
  int reads = 0;
  IoDeviceOptions o;
  o.filter = [&](const CompletionView& v) {
    if (v.kind == IoKind::read && ++reads > 20) {
      return 0;  // end of file
    }
    return v.result;
  };
  open(o);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randread, BufferSource::unaligned, 4096, 1000));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error);
  EXPECT_TRUE(contains(r->error->message(), "short read")) << r->error->message();
  EXPECT_TRUE(contains(r->error->message(), "end of file")) << r->error->message();
  // Only the 20 reads that completed were checked.
  EXPECT_EQ(r->verified_blocks, 20U * 4096 / dev_->block_size());
  EXPECT_EQ(r->verify_errors, 0U);
  EXPECT_EQ(r->measures.ios, 20U);
  EXPECT_EQ(pool_used(), 0U);
}

TEST_F(IoFixture, EagainIsRetriedAndThenReported) {
  int seen = 0;
  bool always = false;
  // Every third completion is -EAGAIN, but no I/O more than twice: with a
  // few I/Os cycling through the ring, the same one could otherwise come
  // third every time and run out of retries.
  std::map<std::pair<IoKind, std::uint64_t>, int> refused;
  IoDeviceOptions o;
  o.filter = [&](const CompletionView& v) {
    ++seen;
    if (always) {
      return -EAGAIN;
    }
    return seen % 3 == 0 && refused[{v.kind, v.offset}]++ < 2 ? -EAGAIN : v.result;
  };
  open(o);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r = run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::aligned, 4096, 300));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->error) << r->error->message();
  EXPECT_GT(dev_->stats().eagain_retries, 50U);
  EXPECT_EQ(r->verify_errors, 0U);

  always = true;
  r = run_ring_job(*dev_, spec(RwMode::randwrite, BufferSource::aligned, 4096, 300));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error);
  EXPECT_TRUE(contains(r->error->message(), "after 16 retries")) << r->error->message();
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoFixture, AFullSubmissionQueueIsSubmittedEarly) {
  IoDeviceOptions o;
  o.ring_entries = 2;  // 16 I/Os in flight through a 2-entry queue
  o.max_in_flight = 16;
  open(o);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 4096, 800));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->error) << r->error->message();
  EXPECT_GT(dev_->stats().ring_full, 0U);
  EXPECT_EQ(r->measures.ios, 800U);
  EXPECT_EQ(r->verify_errors, 0U);
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoFixture, ADiskFullWriteStopsTheRunAndItsBlocksAreUnknown) {
  int writes = 0;
  IoDeviceOptions o;
  o.filter = [&](const CompletionView& v) {
    return v.kind == IoKind::write && ++writes > 30 ? -ENOSPC : v.result;
  };
  open(o);
  if (IsSkipped()) {
    return;
  }
  Result<JobResult> r =
      run_ring_job(*dev_, spec(RwMode::randrw, BufferSource::unaligned, 4096, 1000));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error);
  EXPECT_TRUE(contains(r->error->message(), "disk is full")) << r->error->message();
  EXPECT_EQ(r->verify_errors, 0U);
  EXPECT_EQ(pool_used(), 0U);
  std::string first;
  Result<BlockPattern::Check> c = verify_file(file_->fd(), *pattern_, &first);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->bad, 0U) << first;
  EXPECT_GT(c->unknown, 0U);  // the failed writes' blocks are not called good
}

TEST_F(IoFixture, ACancelledRunDrainsAndReleasesEverySlot) {
  std::atomic<bool> cancel{false};
  int completions = 0;
  IoDeviceOptions o;
  o.filter = [&](const CompletionView& v) {
    if (++completions == 100) {
      cancel = true;  // as the SIGINT handler does
    }
    return v.result;
  };
  open(o);
  if (IsSkipped()) {
    return;
  }
  JobSpec s = spec(RwMode::randrw, BufferSource::unaligned, 4096, 0);
  s.runtime = std::chrono::seconds(60);
  s.cancel = &cancel;
  Result<JobResult> r = run_ring_job(*dev_, s);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->error);
  EXPECT_GE(r->measures.ios, 100U);
  EXPECT_LT(r->measures.ios, 100U + 16);
  EXPECT_EQ(dev_->in_flight(), 0U);
  EXPECT_EQ(pool_used(), 0U);
  expect_file_matches();
}

TEST_F(IoFixture, BadOpsAreRefusedAndLeaveNothingMapped) {
  open();
  if (IsSkipped()) {
    return;
  }
  std::vector<std::byte> heap(8192);
  EXPECT_EQ(dev_->start({IoKind::read, heap.data(), 1000, 0, 0}).error().code(),
            Errc::invalid_argument);
  EXPECT_EQ(dev_->start({IoKind::read, heap.data(), 4096, 100, 0}).error().code(),
            Errc::invalid_argument);
  // Registered memory off a block boundary can be neither used nor bounced.
  Status misaligned = dev_->start({IoKind::read, dev_->direct_memory().data() + 8, 4096, 0, 0});
  ASSERT_FALSE(misaligned);
  EXPECT_EQ(misaligned.error().code(), Errc::invalid_argument);
  EXPECT_EQ(dev_->in_flight(), 0U);
  EXPECT_EQ(pool_used(), 0U);
}

TEST_F(IoFixture, TeardownFinishesIosStillQueuedOrInFlight) {
  open();
  if (IsSkipped()) {
    return;
  }
  std::vector<std::byte> heap(3 * 4096 + 8);
  ASSERT_TRUE(dev_->start({IoKind::read, heap.data() + 8, 4096, 0, 1}));
  ASSERT_TRUE(dev_->submit());
  ASSERT_TRUE(dev_->start({IoKind::read, heap.data() + 8 + 4096, 4096, 4096, 2}));  // queued only
  EXPECT_EQ(dev_->in_flight(), 2U);
  EXPECT_GT(pool_used(), 0U);
  dev_.reset();
  EXPECT_EQ(pool_used(), 0U);
}

TEST_F(IoFixture, WindowsComeAndGoInTheSparseTable) {
  open();
  if (IsSkipped()) {
    return;
  }
  const std::size_t bytes = 1 << 20;
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  EXPECT_TRUE(dev_->register_window(5, mem, bytes));
  EXPECT_EQ(dev_->register_window(5, mem, bytes).error().code(), Errc::invalid_argument);
  EXPECT_EQ(dev_->register_window(64, mem, bytes).error().code(), Errc::out_of_range);
  EXPECT_TRUE(dev_->unregister_window(5));
  EXPECT_EQ(dev_->unregister_window(5).error().code(), Errc::invalid_argument);
  EXPECT_TRUE(dev_->register_window(5, mem, bytes));  // the entry can be used again
  EXPECT_TRUE(dev_->unregister_window(5));
  ::munmap(mem, bytes);
}

TEST(IoFileTest, AFileSystemRefusingODirectIsNamedUnlessBufferedIsAllowed) {
  IoFileOptions o;
  o.temp_dir = testing::test_dir();
  o.size = 1 << 20;
  o.open = [](const char* path, int flags, unsigned mode) {
    if ((flags & O_DIRECT) != 0) {
      errno = EINVAL;  // what a file system without direct I/O answers
      return -1;
    }
    return ::open(path, flags, mode);
  };
  Result<IoFile> refused = IoFile::open(o);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::invalid_argument);
  EXPECT_TRUE(contains(refused.error().message(), "refuses O_DIRECT"));
  EXPECT_TRUE(contains(refused.error().message(), "--allow-buffered"));
  o.allow_buffered = true;
  Result<IoFile> buffered = IoFile::open(o);
  ASSERT_TRUE(buffered) << buffered.error().message();
  EXPECT_FALSE(buffered->direct());
}

}  // namespace
}  // namespace swiotlb::io
