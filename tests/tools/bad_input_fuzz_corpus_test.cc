// Every file of the fuzz corpora (fuzz/corpus/<target>/: the seeds, and
// every input a fuzzer ever found failing, kept there as a regression case)
// run through the checks of its fuzz target in the normal test suite, so a
// finding stays fixed in builds that have no libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "../fuzz/fuzz_checks.h"
#include "../fuzz/op_sequence.h"

namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(SWIOTLB_TEST_DATA) / ".." / ".." / "fuzz" / "corpus";

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void run_corpus(const std::string& target,
                const std::function<std::string(std::string_view)>& check) {
  std::size_t files = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kCorpus / target)) {
    ++files;
    const std::string broke = check(slurp(entry.path()));
    EXPECT_TRUE(broke.empty()) << entry.path() << ": " << broke;
  }
  EXPECT_GE(files, 3u) << "the " << target << " corpus is missing or nearly empty";
}

TEST(FuzzCorpus, Config) {
  run_corpus("config", swiotlb::fuzz::check_config);
}
TEST(FuzzCorpus, TraceV1) {
  run_corpus("trace_v1", swiotlb::fuzz::check_trace_v1);
}
TEST(FuzzCorpus, IovaTrace) {
  run_corpus("iova_trace", swiotlb::fuzz::check_iova_trace);
}
TEST(FuzzCorpus, Replay) {
  run_corpus("replay", swiotlb::fuzz::check_replay);
}
TEST(FuzzCorpus, Ops) {
  run_corpus("ops", [](std::string_view input) { return swiotlb::fuzz::check_op_sequence(input); });
}

// The checks themselves can fail: a writer/parser disagreement and an
// accepted bad geometry would be reported, not passed over.
TEST(FuzzCorpus, ChecksAcceptGoodInput) {
  EXPECT_EQ(swiotlb::fuzz::check_config(std::string("\x03swiotlb=65536,8,force", 22)), "");
  EXPECT_EQ(swiotlb::fuzz::check_iova_trace("# swiotlb-iova-trace v1\n"
                                            "# domain 0 granule=4096 start_pfn=0x1\n"
                                            "alloc 0 0 1 0xfffff 0 0xfffff\n"),
            "");
}

}  // namespace
