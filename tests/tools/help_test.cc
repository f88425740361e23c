// `swiotlb --version`, and every subcommand's --help ending with an example.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli_run.h"
#include "swiotlb/version.h"

namespace {

using swiotlb::testing::run_cli;

// The subcommand names a --help lists under "SUBCOMMANDS:".
std::vector<std::string> subcommands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream lines(help);
  std::string line;
  bool in_list = false;
  const std::regex entry(R"(^  ([a-z][a-z0-9-]*)\b.*)");
  while (std::getline(lines, line)) {
    if (line.rfind("SUBCOMMANDS:", 0) == 0 || line.rfind("Subcommands:", 0) == 0) {
      in_list = true;
      continue;
    }
    std::smatch m;
    if (in_list && std::regex_match(line, m, entry)) {
      names.push_back(m[1]);
    } else if (in_list && !line.empty() && line[0] != ' ') {
      in_list = false;
    }
  }
  return names;
}

// The help's last non-empty lines: "Example:" and an indented command.
void expect_example(const std::string& command, const std::string& help) {
  const std::regex ending(R"(Example:\n  swiotlb [^\n]+\n*$)");
  EXPECT_TRUE(std::regex_search(help, ending)) << command << " --help ends without an example:\n"
                                               << help;
}

TEST(CliHelp, VersionIsTheLibrarys) {
  const auto run = run_cli("--version");
  EXPECT_EQ(run.status, 0);
  EXPECT_EQ(run.out, std::string("swiotlb ") + SWIOTLB_VERSION_STRING + "\n");
}

TEST(CliHelp, EverySubcommandEndsWithAnExample) {
  const auto top = run_cli("--help");
  ASSERT_EQ(top.status, 0);
  expect_example("swiotlb", top.out);
  const std::vector<std::string> names = subcommands(top.out);
  ASSERT_GE(names.size(), 7u) << top.out;
  int checked = 0;
  for (const std::string& name : names) {
    const auto help = run_cli(name + " --help");
    EXPECT_EQ(help.status, 0) << name;
    expect_example("swiotlb " + name, help.out);
    ++checked;
    for (const std::string& nested : subcommands(help.out)) {
      const auto inner = run_cli(name + " " + nested + " --help");
      expect_example("swiotlb " + name + " " + nested, inner.out);
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);  // iova replay is nested
}

}  // namespace
