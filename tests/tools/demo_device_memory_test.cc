// `swiotlb demo --device-memory`: the pool in a device file (a file stands
// in for one) at an offset, seen at a bus address; every byte bounces
// through the file and every device address is a bus address.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cli_run.h"

namespace {

using swiotlb::testing::CliRun;
using swiotlb::testing::run_cli;

constexpr std::uint64_t kOffset = std::uint64_t{1} << 20;
constexpr std::uint64_t kPoolBytes = std::uint64_t{4096} * 2048;  // swiotlb=4096
constexpr std::uint64_t kBusBase = 0xc0000000;

TEST(DemoDeviceMemory, EveryByteBouncesThroughTheDeviceAtBusAddresses) {
  std::string path = "/tmp/swiotlb-fake-device-XXXXXX";
  const int fd = mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kOffset + kPoolBytes)), 0);
  close(fd);

  const CliRun run = run_cli(
      "demo --cmdline 'swiotlb=4096,force' --transfers 400 --queue-depth 8 --json "
      "--device-memory 'swiotlb_devmem=" +
          path + ",offset=0x100000,dma_base=0xc0000000'",
      "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("ok"), true);
  EXPECT_EQ(j.at("bad_bytes"), 0);
  EXPECT_EQ(j.at("map_failures"), 0);
  EXPECT_GT(j.at("bytes_checked").get<std::uint64_t>(), 0u);
  EXPECT_EQ(j.at("bus_base").get<std::uint64_t>(), kBusBase);
  EXPECT_GE(j.at("lowest_dma").get<std::uint64_t>(), kBusBase);
  EXPECT_LT(j.at("highest_dma").get<std::uint64_t>(), kBusBase + kPoolBytes);

  // The bytes went through the file, after the offset and not before it.
  std::ifstream file(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.size(), kOffset + kPoolBytes);
  std::uint64_t before = 0;
  std::uint64_t inside = 0;
  for (std::uint64_t i = 0; i < bytes.size(); ++i) {
    (i < kOffset ? before : inside) += bytes[i] != 0 ? 1 : 0;
  }
  EXPECT_EQ(before, 0u);
  EXPECT_GT(inside, 0u);
  unlink(path.c_str());
}

TEST(DemoDeviceMemory, ABadWordIsAnError) {
  const CliRun run =
      run_cli("demo --device-memory 'swiotlb_devmem=/dev/null,size=1'", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 2);
  EXPECT_NE(run.out.find("unknown setting"), std::string::npos) << run.out;
}

}  // namespace
