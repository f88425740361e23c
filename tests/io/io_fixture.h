// A temporary file opened for direct I/O, an IoTlb and an IoDevice on it,
// for the io layer's tests. Tests skip, saying why, where the file system
// refuses O_DIRECT or the kernel has no io_uring.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "swiotlb/io/io_device.h"
#include "swiotlb/io/io_file.h"
#include "swiotlb/io/io_job.h"
#include "swiotlb/iotlb/io_tlb.h"

namespace swiotlb::io::testing {

// Where test files go: $SWIOTLB_IO_TEST_DIR, else /var/tmp (a disk file
// system; /tmp may be tmpfs, where O_DIRECT is not the disk's).
inline std::string test_dir() {
  const char* dir = std::getenv("SWIOTLB_IO_TEST_DIR");
  return dir != nullptr ? dir : "/var/tmp";
}

class IoFixture : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kFileSize = std::uint64_t{4} << 20;

  // Opens the file and makes the device; skips the test when the machine
  // cannot. Call from the test (or SetUp) with the options it needs.
  void open(IoDeviceOptions options = {}, std::uint64_t nslabs = 2048) {
    IoTlbOptions to;
    to.nslabs = nslabs;
    open_with(std::move(to), std::move(options));
  }

  // The same, with the IoTlb made from `to`.
  void open_with(IoTlbOptions to, IoDeviceOptions options) {
    IoFileOptions fo;
    fo.temp_dir = test_dir();
    fo.size = kFileSize;
    Result<IoFile> f = IoFile::open(fo);
    if (!f) {
      GTEST_SKIP() << "no O_DIRECT file in " << test_dir() << ": " << f.error().message();
    }
    file_.emplace(std::move(*f));
    Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(to);
    ASSERT_TRUE(tlb) << tlb.error().message();
    tlb_ = std::move(*tlb);
    if (options.direct_bytes == 0) {
      options.direct_bytes = std::uint64_t{4} << 20;
    }
    Result<std::unique_ptr<IoDevice>> dev = IoDevice::create(file_->fd(), tlb_.get(), options);
    if (!dev && dev.error().code() == Errc::system) {
      GTEST_SKIP() << "io_uring unavailable: " << dev.error().message();
    }
    ASSERT_TRUE(dev) << dev.error().message();
    dev_ = std::move(*dev);
    pattern_.emplace(kFileSize, dev_->block_size());
    ASSERT_TRUE(prepare_file(file_->fd(), *pattern_));
  }

  JobSpec spec(RwMode rw, BufferSource buffers, std::uint64_t bs = 4096, std::uint64_t ios = 1500) {
    JobSpec s;
    s.file_size = kFileSize;
    s.block_sizes = {{bs, 100}};
    s.queue_depth = 16;
    s.rw = rw;
    s.ios = ios;
    s.buffers = buffers;
    s.verify = &*pattern_;
    return s;
  }

  std::uint64_t pool_used() const { return tlb_->pool(0).stats().used; }

  // Reads the whole file back: every block must be as the pattern says.
  void expect_file_matches() {
    std::string first;
    Result<BlockPattern::Check> c = verify_file(file_->fd(), *pattern_, &first);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->bad, 0U) << first;
    EXPECT_EQ(c->good + c->unknown, kFileSize / dev_->block_size());
  }

  std::optional<IoFile> file_;
  std::unique_ptr<IoTlb> tlb_;
  std::unique_ptr<IoDevice> dev_;  // destroyed before tlb_ (declared after it)
  std::optional<BlockPattern> pattern_;
};

}  // namespace swiotlb::io::testing
