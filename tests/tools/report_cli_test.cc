// `swiotlb report` as a user runs it: a self-contained page with its plots
// and advice (what a browser makes of it: report_browser_test.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "support/cli_run.h"

namespace {

using ::swiotlb::testing::run_cli;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSample =
    std::string(SWIOTLB_TEST_DATA) + "/linux-6.1-nvme-randrw-256k-qd32.trace";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(ReportCli, SelfContainedPageWithEveryPlot) {
  const std::string path = ::testing::TempDir() + "/report-cli.html";
  const auto r = run_cli("report " + kSample + " -o " + path + " --ram 16G", "2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("wrote " + path));
  const std::string html = read_file(path);
  // Nothing fetched at view time: no external scripts, styles, images or fonts.
  EXPECT_THAT(html, Not(HasSubstr(" src=")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_EQ(count(html, "http"), count(html, "http://www.w3.org/2000/svg"));
  for (const char* chart : {"occupancy", "largest-free-run", "free-runs", "slot-map-device",
                            "slot-map-size", "sizing-curve", "dynamic-growth"}) {
    EXPECT_THAT(html, HasSubstr(std::string("data-chart=\"") + chart + "\"")) << chart;
  }
  EXPECT_EQ(count(html, "<figcaption>"), 7u);
  EXPECT_EQ(count(html, "<h3>"), count(html, "<figure>") + 3);  // + advice, devices, sizes
  // Occupancy series carry every event, though drawn downsampled.
  EXPECT_THAT(html, HasSubstr(R"(data-series="linux-6.1" data-points="564")"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, std::regex(R"(swiotlb-line">swiotlb=([0-9]+),1<)")));
  const unsigned long advised = std::stoul(m[1].str());
  EXPECT_EQ(advised % 128, 0u);
  EXPECT_THAT(html, HasSubstr("25% margin"));
  EXPECT_THAT(html, HasSubstr("kernel default (64 MiB)"));
  EXPECT_THAT(html, HasSubstr("id=\"saved-coco-0\""));
  // The per-device table names both devices of the sample.
  EXPECT_THAT(html, HasSubstr("0000:00:05.0 nvme"));
  EXPECT_THAT(html, HasSubstr("virtio-blk(legacy)"));
}

TEST(ReportCli, MarginPoliciesAndTwoTraces) {
  const std::string path = ::testing::TempDir() + "/report-cli-2.html";
  const auto r = run_cli("report " + kSample + " " + kSample + " -o " + path +
                             " --policy linux --margin 0 --nareas 2 --cmdline swiotlb=force",
                         "2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string html = read_file(path);
  EXPECT_EQ(count(html, "<section class=\"trace\""), 2u);
  EXPECT_THAT(html, HasSubstr("0% margin"));
  EXPECT_THAT(html, ::testing::ContainsRegex(R"(swiotlb-line">swiotlb=[0-9]+,2,force<)"));
  EXPECT_THAT(html, Not(HasSubstr(R"(data-series="fast")")));
  EXPECT_THAT(html, HasSubstr("Give <code>--ram</code>"));
}

TEST(ReportCli, Errors) {
  const std::string path = ::testing::TempDir() + "/report-cli-3.html";
  EXPECT_EQ(run_cli("report /nonexistent.trace -o " + path, "2>/dev/null").status, 1);
  EXPECT_EQ(run_cli("report " + kSample + " -o " + path + " --margin x", "2>/dev/null").status, 2);
  EXPECT_EQ(run_cli("report " + kSample + " -o " + path + " --policy nope", "2>/dev/null").status,
            1);
  EXPECT_EQ(run_cli("report " + kSample + " -o /nonexistent-dir/r.html", "2>/dev/null").status, 1);
}

}  // namespace
