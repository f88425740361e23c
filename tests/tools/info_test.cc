// Runs the built `swiotlb info` as a user would, through the shell, and
// checks what it prints and the status it exits with.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace {

using ::testing::HasSubstr;

using swiotlb::testing::CliRun;
using swiotlb::testing::run_cli;

TEST(InfoCommand, JsonForForcedPool) {
  const CliRun run = run_cli("info --cmdline 'swiotlb=65536,8,force' --json", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("nslabs"), 65536);
  EXPECT_EQ(j.at("nareas"), 8);
  EXPECT_EQ(j.at("bytes"), 134217728);
  EXPECT_EQ(j.at("force"), true);
  EXPECT_EQ(j.at("force_mode"), "force");
  EXPECT_EQ(j.at("start"), 0);
  EXPECT_EQ(j.at("end"), 134217728);  // one past the last byte, as the kernel keeps it
  EXPECT_TRUE(j.at("addr").is_null());
  EXPECT_TRUE(j.at("warnings").empty());
}

TEST(InfoCommand, JsonCarriesAddrAndWarnings) {
  const CliRun run =
      run_cli("info --cmdline 'swiotlb=1000,addr=0x7e0000000000' --cpus 1 --json", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  const nlohmann::json j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j.at("nslabs"), 1024);
  EXPECT_EQ(j.at("addr"), 0x7e0000000000);
  EXPECT_EQ(j.at("start"), 0x7e0000000000);
  EXPECT_EQ(j.at("end"), 0x7e0000000000 + (1024 << 11));
  EXPECT_EQ(j.at("force"), false);
  EXPECT_EQ(j.at("force_mode"), "auto");
  ASSERT_EQ(j.at("warnings").size(), 1u);
}

TEST(InfoCommand, TextMimicsBootLines) {
  const CliRun run = run_cli("info --cmdline 'swiotlb=100000' --cpus 2", "2>/dev/null");
  ASSERT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("software IO TLB: area num 2.\n"));
  EXPECT_THAT(run.out, HasSubstr("roundup to 256MB"));
  EXPECT_THAT(
      run.out,
      HasSubstr("software IO TLB: mapped [mem 0x0000000000000000-0x0000000010000000] (256MB)"));
  EXPECT_THAT(run.out, HasSubstr("131072"));
}

TEST(InfoCommand, WarningsGoToStderr) {
  const CliRun run = run_cli("info --cmdline 'swiotlb=100000' --cpus 1", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 0);
  EXPECT_THAT(run.out, HasSubstr("swiotlb: warning: nslabs rounded up from 100000 to 100096"));
}

TEST(InfoCommand, MalformedCmdlineExitsTwoAndNamesTheToken) {
  const CliRun run = run_cli("info --cmdline 'swiotlb=12x'", "2>&1 >/dev/null");
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("swiotlb: error: "));
  EXPECT_THAT(run.out, HasSubstr("12x"));
}

}  // namespace

namespace swiotlb {
namespace {

TEST(InfoCommand, PoolThatCannotBePlacedIsAnError) {
  // The kernel's half of the address space: no process may map there.
  const CliRun run =
      run_cli("info --cmdline 'swiotlb=1024,addr=0xffff800000000000' --cpus 1", "2>&1");
  EXPECT_EQ(run.status, 2) << run.out;
  EXPECT_NE(run.out.find("cannot place the pool at 0xffff800000000000"), std::string::npos)
      << run.out;
}

}  // namespace
}  // namespace swiotlb
