// The op-sequence check (fuzz/op_sequence.h) on seeded random inputs: every
// configuration the decoder can choose, thousands of operations each. The
// same check runs under libFuzzer (scripts/fuzz.sh) and, for a long run,
// with SWIOTLB_OP_SEQUENCE_OPS set (ops in all; the test prints the totals).
#include "../fuzz/op_sequence.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace swiotlb::fuzz {
namespace {

std::uint64_t ops_wanted() {
  const char* text = std::getenv("SWIOTLB_OP_SEQUENCE_OPS");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 40'000;
}

TEST(OpSequence, RandomSequencesKeepEveryCheck) {
  const std::uint64_t wanted = ops_wanted();
  std::mt19937_64 rng(20261206);
  OpSequenceStats total;
  std::uint64_t runs = 0;
  while (total.ops < wanted) {
    // Each run: a configuration (the first byte's 128 choices in turn) and
    // about a thousand operations.
    std::string input(2 + 1000 * 6, '\0');
    for (char& c : input) {
      c = static_cast<char>(rng());
    }
    input[0] = static_cast<char>(runs % 128);
    OpSequenceStats stats;
    const std::string broke = check_op_sequence(input, &stats);
    ASSERT_TRUE(broke.empty()) << "run " << runs << ": " << broke;
    total.ops += stats.ops;
    total.maps += stats.maps;
    total.failed_maps += stats.failed_maps;
    total.oracle_checks += stats.oracle_checks;
    ++runs;
    if (wanted > 1'000'000 && runs % 256 == 0) {
      std::fprintf(stderr, "op sequences: %llu ops so far\n",
                   static_cast<unsigned long long>(total.ops));
    }
  }
  // The runs must have exercised what they claim: maps that fail (full
  // pools) as well as succeed, and oracle verdicts.
  EXPECT_GT(total.failed_maps, 0u);
  EXPECT_LT(total.failed_maps, total.maps);
  EXPECT_GT(total.oracle_checks, 0u);
  std::printf("op sequences: %llu runs, %llu ops, %llu maps (%llu failed), %llu oracle checks\n",
              static_cast<unsigned long long>(runs), static_cast<unsigned long long>(total.ops),
              static_cast<unsigned long long>(total.maps),
              static_cast<unsigned long long>(total.failed_maps),
              static_cast<unsigned long long>(total.oracle_checks));
}

TEST(OpSequence, SlotsNobodyRecordedAreCaught) {
  // The checks are not vacuous: a mapping made behind the check's back
  // holds slots that no recorded mapping accounts for.
  ByteReader in(std::string_view("\x00\x03", 2));
  std::optional<OpSequence> s = OpSequence::make(in);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->check_now(), "");
  BounceRequest r;
  r.size = 4096;
  r.pool_dma_start = DmaAddr(s->io_tlb().start().value());
  ASSERT_TRUE(s->io_tlb().map(r));
  EXPECT_EQ(s->check_now(), "the IoTlb counts 2 slots in use, the live mappings hold 0");
}

}  // namespace
}  // namespace swiotlb::fuzz
