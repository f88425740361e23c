// Tests for the `swiotlb=` parser: the kernel's grammar and rounding pinned
// case by case, the errors we raise where the kernel stays silent, the
// warnings for what it adjusts, and a property over random geometries.
#include "swiotlb/core/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "swiotlb/core/constants.h"

namespace swiotlb {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

SwiotlbConfig parse_ok(std::string_view text, unsigned cpus = 1) {
  Result<SwiotlbConfig> r = parse_swiotlb_config(text, cpus);
  EXPECT_TRUE(r.has_value()) << "'" << text << "': " << (r ? "" : r.error().message());
  return r ? *r : SwiotlbConfig{};
}

// The message of the error `text` gives; fails the test if it parses.
std::string parse_error(std::string_view text, unsigned cpus = 1) {
  Result<SwiotlbConfig> r = parse_swiotlb_config(text, cpus);
  EXPECT_FALSE(r.has_value()) << "'" << text << "' parsed";
  if (r) {
    return {};
  }
  EXPECT_EQ(r.error().code(), Errc::parse) << r.error().message();
  return r.error().message();
}

// --- What the kernel boots with ---------------------------------------------

TEST(DefaultConfig, IsSixtyFourMebibytesWithAreasFromCpus) {
  const SwiotlbConfig c = default_swiotlb_config(1);
  EXPECT_EQ(c.nslabs, 32768u);
  EXPECT_EQ(c.nareas, 1u);
  EXPECT_EQ(c.bytes(), std::uint64_t{64} << 20);
  EXPECT_EQ(c.force, ForceMode::automatic);
  EXPECT_FALSE(c.addr);
  EXPECT_FALSE(c.requested_nslabs);
  EXPECT_FALSE(c.requested_nareas);
  EXPECT_THAT(c.warnings, IsEmpty());
}

TEST(DefaultConfig, CpuCountRoundsUpToPowerOfTwoAndZeroMeansOne) {
  EXPECT_EQ(default_swiotlb_config(0).nareas, 1u);
  EXPECT_EQ(default_swiotlb_config(6).nareas, 8u);
  EXPECT_EQ(default_swiotlb_config(6).nslabs, 32768u);
  EXPECT_EQ(default_swiotlb_config(256).nslabs, 32768u);
}

TEST(DefaultConfig, ManyCpusRaiseTheDefaultSize) {
  const SwiotlbConfig c = default_swiotlb_config(300);
  EXPECT_EQ(c.nareas, 512u);
  EXPECT_EQ(c.nslabs, 65536u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("32768"), HasSubstr("65536"),
                                            HasSubstr("512 areas"), HasSubstr("per CPU"))));
}

TEST(ParseConfig, EmptyTextAndLinesWithoutSwiotlbGiveDefaults) {
  for (const char* text :
       {"", "   ", "console=ttyS0 quiet", "console=ttyS0", "ro root=/dev/vda1"}) {
    const SwiotlbConfig c = parse_ok(text, 4);
    EXPECT_EQ(c.nslabs, 32768u) << text;
    EXPECT_EQ(c.nareas, 4u) << text;
    EXPECT_EQ(c.force, ForceMode::automatic) << text;
    EXPECT_THAT(c.warnings, IsEmpty()) << text;
  }
}

// --- The three ways of writing it --------------------------------------------

TEST(ParseConfig, BareValueWordAndCommandLineAgree) {
  for (const char* text :
       {"65536,8,force", "swiotlb=65536,8,force", "console=ttyS0 swiotlb=65536,8,force quiet"}) {
    const SwiotlbConfig c = parse_ok(text, 2);
    EXPECT_EQ(c.nslabs, 65536u) << text;
    EXPECT_EQ(c.nareas, 8u) << text;
    EXPECT_EQ(c.force, ForceMode::force) << text;
    EXPECT_EQ(c.bytes(), 134217728u) << text;
    EXPECT_EQ(c.requested_nslabs, 65536u) << text;
    EXPECT_EQ(c.requested_nareas, 8u) << text;
    EXPECT_THAT(c.warnings, IsEmpty()) << text;
  }
}

TEST(ParseConfig, CommandLineToleratesTabsNewlinesAndQuotes) {
  EXPECT_EQ(parse_ok("quiet\tswiotlb=4096,2\n").nslabs, 4096u);
  EXPECT_EQ(parse_ok("quiet swiotlb=\"4096,2\"").nareas, 2u);
  EXPECT_EQ(parse_ok("quiet \"swiotlb=4096,2\"").nareas, 2u);
  EXPECT_EQ(parse_ok("\"4096,2\"").nareas, 2u);
  // A quoted space keeps another parameter's value in one word.
  EXPECT_EQ(parse_ok("dyndbg=\"file a.c +p\" swiotlb=8192").nslabs, 8192u);
}

TEST(ParseConfig, WordsAfterDoubleDashBelongToInit) {
  const SwiotlbConfig c = parse_ok("quiet -- swiotlb=12x", 1);
  EXPECT_EQ(c.nslabs, 32768u);
  EXPECT_EQ(parse_ok("swiotlb=4096 -- swiotlb=8192").nslabs, 4096u);
}

// --- nslabs --------------------------------------------------------------------

TEST(ParseConfig, NslabsRoundsToSegmentThenPowerOfTwo) {
  const SwiotlbConfig c = parse_ok("swiotlb=100000", 1);
  EXPECT_EQ(c.nslabs, 131072u);
  EXPECT_EQ(c.nareas, 1u);
  EXPECT_EQ(c.requested_nslabs, 100000u);
  EXPECT_FALSE(c.requested_nareas);
  EXPECT_THAT(
      c.warnings,
      ElementsAre(AllOf(HasSubstr("100000"), HasSubstr("100096"), HasSubstr("segment")),
                  AllOf(HasSubstr("100096"), HasSubstr("131072"), HasSubstr("power of two"))));
  EXPECT_EQ(parse_ok("swiotlb=100000", 4).nslabs, 131072u);
  EXPECT_EQ(parse_ok("swiotlb=100000", 4).nareas, 4u);
}

TEST(ParseConfig, PowerOfTwoNslabsOnlyAlignsToSegments) {
  // 129 slots become 256: first a whole segment more, which is a power of two.
  const SwiotlbConfig c = parse_ok("swiotlb=129", 1);
  EXPECT_EQ(c.nslabs, 256u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("129"), HasSubstr("256"))));
}

TEST(ParseConfig, NonPowerOfTwoMultipleOfSegmentIsRounded) {
  const SwiotlbConfig c = parse_ok("swiotlb=384", 1);
  EXPECT_EQ(c.nslabs, 512u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("384"), HasSubstr("512"))));
}

TEST(ParseConfig, CpuCountRaisesSmallPools) {
  const SwiotlbConfig c = parse_ok("swiotlb=1024", 16);
  EXPECT_EQ(c.nslabs, 2048u);
  EXPECT_EQ(c.nareas, 16u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("1024"), HasSubstr("2048"),
                                            HasSubstr("16 areas (one per CPU)"))));
  EXPECT_EQ(parse_ok("swiotlb=1024", 12).nareas, 16u);
  EXPECT_EQ(parse_ok("swiotlb=1024", 0).nareas, 1u);
  EXPECT_EQ(parse_ok("swiotlb=1024", 0).nslabs, 1024u);
}

TEST(ParseConfig, ZeroNslabsBecomesOneSegmentPerArea) {
  const SwiotlbConfig c = parse_ok("swiotlb=0", 1);
  EXPECT_EQ(c.nslabs, 128u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("from 0 to 128"))));
  EXPECT_EQ(parse_ok("swiotlb=0", 4).nslabs, 512u);
}

TEST(ParseConfig, NumbersFollowStrtoulBaseZero) {
  EXPECT_EQ(parse_ok("swiotlb=0x10000,0x4").nslabs, 65536u);
  EXPECT_EQ(parse_ok("swiotlb=0x10000,0x4").nareas, 4u);
  EXPECT_EQ(parse_ok("swiotlb=0X800").nslabs, 2048u);
  EXPECT_EQ(parse_ok("swiotlb=0xaBc0").nslabs, 65536u);  // 0xabc0 = 43968
  EXPECT_EQ(parse_ok("swiotlb=0xaBc0").requested_nslabs, 0xabc0u);
  EXPECT_EQ(parse_ok("swiotlb=010000").nslabs, 4096u);  // octal
  EXPECT_EQ(parse_ok("swiotlb=4096,010").nareas, 8u);   // octal 8
  EXPECT_EQ(parse_ok("swiotlb=00").nslabs, 128u);
}

TEST(ParseConfig, LargestPoolIsAccepted) {
  const SwiotlbConfig c = parse_ok("swiotlb=2147483648");
  EXPECT_EQ(c.nslabs, kMaxSlotCount);
  EXPECT_EQ(parse_ok("swiotlb=2147483521").nslabs, kMaxSlotCount);
  EXPECT_EQ(parse_ok("swiotlb=1073741825").nslabs, kMaxSlotCount);
}

// --- nareas --------------------------------------------------------------------

TEST(ParseConfig, NareasZeroMeansOne) {
  const SwiotlbConfig c = parse_ok("swiotlb=1024,0", 8);
  EXPECT_EQ(c.nareas, 1u);
  EXPECT_EQ(c.requested_nareas, 0u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("0 to 1"), HasSubstr("single area"))));
}

TEST(ParseConfig, NareasRoundsUpToPowerOfTwo) {
  const SwiotlbConfig c = parse_ok("swiotlb=4096,3", 1);
  EXPECT_EQ(c.nareas, 4u);
  EXPECT_EQ(c.nslabs, 4096u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("3 to 4"), HasSubstr("powers of two"))));
}

TEST(ParseConfig, GivenNareasOverridesCpuCount) {
  const SwiotlbConfig c = parse_ok("swiotlb=4096,2", 64);
  EXPECT_EQ(c.nareas, 2u);
  EXPECT_EQ(c.nslabs, 4096u);
}

TEST(ParseConfig, MoreAreasThanSegmentsRaisesNslabs) {
  const SwiotlbConfig c = parse_ok("swiotlb=1024,16", 1);
  EXPECT_EQ(c.nslabs, 2048u);
  EXPECT_EQ(c.nareas, 16u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("1024"), HasSubstr("2048"),
                                            HasSubstr("16 areas holds"))));
  const SwiotlbConfig odd = parse_ok("swiotlb=1000,9", 1);
  EXPECT_EQ(odd.nslabs, 2048u);
  EXPECT_EQ(odd.nareas, 16u);
  EXPECT_THAT(odd.warnings, SizeIs(3));
}

TEST(ParseConfig, LargestAreaCountIsAccepted) {
  const SwiotlbConfig c = parse_ok("swiotlb=1024,1048576");
  EXPECT_EQ(c.nareas, 1048576u);
  EXPECT_EQ(c.nslabs, std::uint64_t{1} << 27);
  EXPECT_EQ(parse_ok("swiotlb=1024,1048575").nareas, 1048576u);
}

TEST(ParseConfig, LeadingCommaGivesNareasAlone) {
  const SwiotlbConfig c = parse_ok("swiotlb=,4", 1);
  EXPECT_EQ(c.nslabs, 32768u);
  EXPECT_EQ(c.nareas, 4u);
  EXPECT_FALSE(c.requested_nslabs);
  const SwiotlbConfig f = parse_ok("swiotlb=,4,force", 1);
  EXPECT_EQ(f.nareas, 4u);
  EXPECT_EQ(f.force, ForceMode::force);
}

// --- force / noforce -------------------------------------------------------------

TEST(ParseConfig, ForceAlone) {
  const SwiotlbConfig c = parse_ok("swiotlb=force", 2);
  EXPECT_EQ(c.nslabs, 32768u);
  EXPECT_EQ(c.nareas, 2u);
  EXPECT_EQ(c.force, ForceMode::force);
  EXPECT_THAT(c.warnings, IsEmpty());
  EXPECT_EQ(parse_ok("force").force, ForceMode::force);
}

TEST(ParseConfig, ForceWithoutNareasIsFine) {
  const SwiotlbConfig c = parse_ok("swiotlb=1024,force", 1);
  EXPECT_EQ(c.nslabs, 1024u);
  EXPECT_EQ(c.nareas, 1u);
  EXPECT_EQ(c.force, ForceMode::force);
}

TEST(ParseConfig, NoforceIsAcceptedWithAWarning) {
  const SwiotlbConfig c = parse_ok("swiotlb=noforce", 1);
  EXPECT_EQ(c.force, ForceMode::noforce);
  EXPECT_EQ(c.nslabs, 32768u);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("noforce"), HasSubstr("frees its pool"))));
  EXPECT_EQ(parse_ok("swiotlb=2048,2,noforce").force, ForceMode::noforce);
}

TEST(ForceMode, Names) {
  EXPECT_EQ(to_string(ForceMode::automatic), "auto");
  EXPECT_EQ(to_string(ForceMode::force), "force");
  EXPECT_EQ(to_string(ForceMode::noforce), "noforce");
}

// --- addr= (seed 000) ------------------------------------------------------------

TEST(ParseConfig, AddrInEveryPosition) {
  for (const char* text :
       {"swiotlb=8192,1,addr=0x7e0000000000", "swiotlb=8192,addr=0x7e0000000000",
        "swiotlb=8192,1,force,addr=0x7e0000000000", "8192,addr=0x7e0000000000"}) {
    const SwiotlbConfig c = parse_ok(text, 1);
    EXPECT_EQ(c.nslabs, 8192u) << text;
    EXPECT_EQ(c.addr, std::uint64_t{0x7e0000000000}) << text;
  }
  EXPECT_EQ(parse_ok("swiotlb=8192,force,addr=4096").addr, 4096u);
  EXPECT_EQ(parse_ok("swiotlb=8192,force,addr=4096").force, ForceMode::force);
  EXPECT_EQ(parse_ok("swiotlb=addr=0x1000").addr, 0x1000u);
  EXPECT_EQ(parse_ok("addr=0x1000").addr, 0x1000u);
  EXPECT_EQ(parse_ok("swiotlb=8192,addr=0").addr, 0u);
}

TEST(ParseConfig, AddrMustBePageAligned) {
  EXPECT_THAT(parse_error("swiotlb=8192,addr=0x1001"),
              AllOf(HasSubstr("addr=0x1001"), HasSubstr("page-aligned"), HasSubstr("column 14")));
}

TEST(ParseConfig, AddrMustLeaveRoomForThePool) {
  EXPECT_THAT(parse_error("swiotlb=1024,addr=0xfffffffffffff000"),
              AllOf(HasSubstr("0xfffffffffffff000"), HasSubstr("2097152 bytes")));
  // The pool may end on the very last byte.
  EXPECT_EQ(parse_ok("swiotlb=128,addr=0xfffffffffffc0000").addr, 0xfffffffffffc0000u);
}

// --- Several swiotlb= words --------------------------------------------------------

TEST(ParseConfig, LaterWordWinsWhereSet) {
  const SwiotlbConfig c =
      parse_ok("swiotlb=4096,4,addr=0x1000 quiet swiotlb=8192 swiotlb=force", 1);
  EXPECT_EQ(c.nslabs, 8192u);
  EXPECT_EQ(c.nareas, 4u);
  EXPECT_EQ(c.addr, 0x1000u);
  EXPECT_EQ(c.force, ForceMode::force);
  EXPECT_THAT(c.warnings, ElementsAre(AllOf(HasSubstr("swiotlb=8192"), HasSubstr("column 34")),
                                      AllOf(HasSubstr("swiotlb=force"), HasSubstr("column 47"))));
}

TEST(ParseConfig, LaterSizeWithoutNareasNotesTheKernelDifference) {
  const SwiotlbConfig c = parse_ok("swiotlb=1000,4 swiotlb=3000", 1);
  EXPECT_EQ(c.nslabs, 4096u);
  EXPECT_EQ(c.nareas, 4u);
  EXPECT_THAT(c.warnings,
              testing::Contains(AllOf(HasSubstr("kernel would keep 3072"), HasSubstr("4096"))));
}

TEST(ParseConfig, NoforceStaysOnceGiven) {
  const SwiotlbConfig c = parse_ok("swiotlb=noforce swiotlb=force", 1);
  EXPECT_EQ(c.force, ForceMode::noforce);
  EXPECT_THAT(c.warnings, testing::Contains(HasSubstr("noforce wins")));
  EXPECT_EQ(parse_ok("swiotlb=force swiotlb=noforce").force, ForceMode::noforce);
}

// --- Errors: the kernel ignores these, we do not ------------------------------------

TEST(ParseErrors, EmptyValue) {
  EXPECT_THAT(parse_error("swiotlb="), AllOf(HasSubstr("empty value"), HasSubstr("column 9")));
  EXPECT_THAT(parse_error("quiet swiotlb= ro"), HasSubstr("column 15"));
}

TEST(ParseErrors, MissingValue) {
  EXPECT_THAT(parse_error("quiet swiotlb"),
              AllOf(HasSubstr("'swiotlb'"), HasSubstr("no value"), HasSubstr("column 7")));
}

TEST(ParseErrors, TrailingGarbageInNumber) {
  EXPECT_THAT(parse_error("swiotlb=12x"), AllOf(HasSubstr("nslabs '12x'"), HasSubstr("column 9")));
  EXPECT_THAT(parse_error("console=ttyS0 swiotlb=12x"), HasSubstr("column 23"));
  EXPECT_THAT(parse_error("12x"), AllOf(HasSubstr("'12x'"), HasSubstr("column 1")));
  EXPECT_THAT(parse_error("swiotlb=1024,4z"),
              AllOf(HasSubstr("nareas '4z'"), HasSubstr("column 14")));
  EXPECT_THAT(parse_error("swiotlb=0x"), AllOf(HasSubstr("'0x'"), HasSubstr("hex digit")));
  EXPECT_THAT(parse_error("swiotlb=0xg"), HasSubstr("'0xg'"));
  EXPECT_THAT(parse_error("swiotlb=08"), AllOf(HasSubstr("'08'"), HasSubstr("octal")));
  EXPECT_THAT(parse_error("swiotlb=8192,addr=0x12zz000"), HasSubstr("'0x12zz000'"));
  EXPECT_THAT(parse_error("swiotlb=8192,addr="), HasSubstr("'addr='"));
  EXPECT_THAT(parse_error("swiotlb=8192,addr=zz"), HasSubstr("'addr=zz'"));
}

TEST(ParseErrors, Overflow) {
  EXPECT_THAT(parse_error("swiotlb=18446744073709551616"),
              AllOf(HasSubstr("'18446744073709551616'"), HasSubstr("64 bits")));
  EXPECT_THAT(parse_error("swiotlb=0x10000000000000000"), HasSubstr("'0x10000000000000000'"));
  EXPECT_THAT(parse_error("swiotlb=2147483649"),
              AllOf(HasSubstr("'2147483649'"), HasSubstr("too large")));
  EXPECT_THAT(parse_error("swiotlb=18446744073709551615"), HasSubstr("too large"));
  EXPECT_THAT(parse_error("swiotlb=1024,1048577"),
              AllOf(HasSubstr("nareas '1048577'"), HasSubstr("too large")));
  EXPECT_THAT(parse_error("swiotlb=8192,addr=0x100000000000000000"), HasSubstr("64 bits"));
}

TEST(ParseErrors, UnknownWords) {
  EXPECT_THAT(parse_error("swiotlb=1024,fast"),
              AllOf(HasSubstr("unknown word 'fast'"), HasSubstr("column 14")));
  EXPECT_THAT(parse_error("swiotlb=Force"), HasSubstr("'Force'"));
  EXPECT_THAT(parse_error("swiotlb=dynamic"), HasSubstr("'dynamic'"));
  EXPECT_THAT(parse_error("swiotlb=-1"), HasSubstr("'-1'"));
  EXPECT_THAT(parse_error("quiet"), HasSubstr("'quiet'"));
}

TEST(ParseErrors, RepeatedOrConflictingWords) {
  EXPECT_THAT(parse_error("swiotlb=1024,force,force"),
              AllOf(HasSubstr("repeated word 'force'"), HasSubstr("column 20")));
  EXPECT_THAT(parse_error("swiotlb=force,noforce"), HasSubstr("conflicting word 'noforce'"));
  EXPECT_THAT(parse_error("swiotlb=8192,addr=0x1000,addr=0x2000"),
              HasSubstr("repeated word 'addr=0x2000'"));
}

TEST(ParseErrors, OutOfPlace) {
  EXPECT_THAT(parse_error("swiotlb=1024,8,16"),
              AllOf(HasSubstr("'16'"), HasSubstr("out of place")));
  EXPECT_THAT(parse_error("swiotlb=force,1024"), HasSubstr("'1024'"));
  EXPECT_THAT(parse_error("swiotlb=addr=0x1000,force"),
              AllOf(HasSubstr("'force'"), HasSubstr("out of place")));
}

TEST(ParseErrors, EmptyFields) {
  EXPECT_THAT(parse_error("swiotlb=1024,,force"),
              AllOf(HasSubstr("empty field"), HasSubstr("column 14"), HasSubstr("1024,,force")));
  EXPECT_THAT(parse_error("swiotlb=1024,"), HasSubstr("column 14"));
  EXPECT_THAT(parse_error("swiotlb=,force"), HasSubstr("column 9"));
  EXPECT_THAT(parse_error("swiotlb=,,4"), HasSubstr("column 9"));
  EXPECT_THAT(parse_error("swiotlb=,"), HasSubstr("empty field"));
  EXPECT_THAT(parse_error("swiotlb=1024,8,"), HasSubstr("column 16"));
}

TEST(ParseErrors, ErrorInLaterWordStillFails) {
  EXPECT_THAT(parse_error("swiotlb=4096 quiet swiotlb=1024,fast"),
              AllOf(HasSubstr("'fast'"), HasSubstr("column 33")));
}

// --- Explicit geometry ---------------------------------------------------------------

TEST(ValidateGeometry, AcceptsWholeSegmentsPerArea) {
  EXPECT_TRUE(validate_geometry(128, 1));
  EXPECT_TRUE(validate_geometry(256, 2));
  EXPECT_TRUE(validate_geometry(384, 1));  // not a power of two: explicit, so fine
  EXPECT_TRUE(validate_geometry(65536, 8));
  EXPECT_TRUE(validate_geometry(kMaxSlotCount, 1));
}

TEST(ValidateGeometry, RejectsWithTheNumbers) {
  struct Case {
    std::uint64_t nslabs;
    std::uint32_t nareas;
    const char* mentions;
  };
  for (const Case& c :
       {Case{0, 1, "nslabs 0"}, Case{100, 1, "nslabs 100"},
        Case{kMaxSlotCount + 128, 1, "2147483776"}, Case{1024, 3, "nareas 3"},
        Case{1024, 0, "nareas 0"}, Case{128, 2, "into 2 areas"}, Case{384, 4, "nslabs 384"}}) {
    const Status s = validate_geometry(c.nslabs, c.nareas);
    ASSERT_FALSE(s) << c.nslabs << "/" << c.nareas;
    EXPECT_EQ(s.error().code(), Errc::invalid_argument);
    EXPECT_THAT(s.error().message(), HasSubstr(c.mentions));
  }
}

// --- Properties -----------------------------------------------------------------------

// Writes `n` in one of the bases strtoul(…, 0) reads.
std::string write_number(std::uint64_t n, int style) {
  switch (style % 3) {
    case 0:
      return fmt::format("{}", n);
    case 1:
      return fmt::format("{:#x}", n);
    default:
      return n == 0 ? "0" : fmt::format("0{:o}", n);
  }
}

RC_GTEST_PROP(ConfigProperty, RoundedGeometryIsPowerOfTwoWithFullAreas, ()) {
  const auto nslabs = *rc::gen::inRange<std::uint64_t>(0, kMaxSlotCount + 1);
  const bool give_nareas = *rc::gen::arbitrary<bool>();
  const auto nareas = *rc::gen::inRange<std::uint64_t>(0, (1u << 20) + 1);
  const auto cpus = *rc::gen::inRange<unsigned>(0, 5000);
  const auto style = *rc::gen::inRange(0, 3);
  std::string text = "swiotlb=" + write_number(nslabs, style);
  if (give_nareas) {
    text += "," + write_number(nareas, style);
  }
  Result<SwiotlbConfig> r = parse_swiotlb_config(text, cpus);
  RC_ASSERT(r.has_value());
  const std::uint64_t want_areas =
      round_up_power_of_two(std::max<std::uint64_t>(1, give_nareas ? nareas : cpus));
  RC_ASSERT(r->nareas == want_areas);
  RC_ASSERT(is_power_of_two(r->nslabs));
  RC_ASSERT(r->nslabs % kSegmentSlots == 0);
  RC_ASSERT(r->nslabs >= std::uint64_t{kSegmentSlots} * r->nareas);
  RC_ASSERT(r->nslabs >= nslabs);
  RC_ASSERT(r->nslabs <= kMaxSlotCount);
  RC_ASSERT(r->requested_nslabs == nslabs);
  RC_ASSERT(validate_geometry(r->nslabs, r->nareas).has_value());
}

RC_GTEST_PROP(ConfigProperty, GarbageNeverCrashesAndErrorsAreParseErrors, ()) {
  const auto value = *rc::gen::container<std::string>(
      rc::gen::element('0', '1', '8', 'x', ',', '=', ' ', 'f', 'o', 'r', 'c', 'e', '"'));
  Result<SwiotlbConfig> r = parse_swiotlb_config("swiotlb=" + value, 3);
  if (r) {
    RC_ASSERT(validate_geometry(r->nslabs, r->nareas).has_value());
  } else {
    RC_ASSERT(r.error().code() == Errc::parse);
  }
}

}  // namespace
}  // namespace swiotlb
