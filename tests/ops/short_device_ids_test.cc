// ShortDeviceIds: exact matches only, whatever bytes follow an id in memory.
#include "swiotlb/ops/short_device_ids.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace swiotlb::ops {
namespace {

// `id` followed by `after`, as the reader finds an id inside a line.
struct InLine {
  std::string text;
  std::string_view id() const { return std::string_view(text).substr(0, length); }
  std::size_t length;
};

InLine in_line(const std::string& id, const std::string& after = " 0x1000 4096 - 0x0 0 0x0 -\n") {
  return {id + after, id.size()};
}

TEST(ShortDeviceIds, FindsEachIdItKeptAndNoOther) {
  const std::vector<std::string> ids = {
      "0000:00:04.0", "0000:00:05.0", "net",     "a",
      "12345678",     "123456789",    "1234567", "0123456789abcdef"};
  ShortDeviceIds kept;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    kept.add(ids[i], static_cast<std::uint16_t>(i));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::uint16_t index = 99;
    ASSERT_TRUE(kept.find(in_line(ids[i]).id(), index)) << ids[i];
    EXPECT_EQ(index, i) << ids[i];
  }
  for (const char* other : {"0000:00:06.0", "0000:01:04.0", "ne", "net0", "b", "12345679",
                            "0123456789abcdeF", "0000:00:04.00", "1234567 "}) {
    std::uint16_t index = 99;
    EXPECT_FALSE(kept.find(in_line(other).id(), index)) << other;
    EXPECT_EQ(index, 99);
  }
}

TEST(ShortDeviceIds, LeavesLongIdsAndLateIdsToTheCaller) {
  ShortDeviceIds kept;
  kept.add("an-id-of-seventeen", 0);
  for (std::uint16_t i = 1; i <= ShortDeviceIds::kMaxIds + 1; ++i) {
    kept.add("dev" + std::to_string(i), i);
  }
  std::uint16_t index = 0;
  EXPECT_FALSE(kept.find(in_line("an-id-of-seventeen").id(), index));
  EXPECT_TRUE(kept.find(in_line("dev1").id(), index));
  EXPECT_EQ(index, 1);
  EXPECT_TRUE(kept.find(in_line("dev8").id(), index));
  EXPECT_FALSE(kept.find(in_line("dev9").id(), index));  // past kMaxIds
  EXPECT_FALSE(kept.find(in_line("").id(), index));
}

// PCI addresses apart in one digit, as a machine's devices are: every one
// is kept, each in a slot of its own.
TEST(ShortDeviceIds, KeepsEightNeighbouringPciAddresses) {
  ShortDeviceIds kept;
  for (std::uint16_t i = 0; i < ShortDeviceIds::kMaxIds; ++i) {
    kept.add(fmt::format("0000:00:{:02x}.0", i + 1), i);
  }
  for (std::uint16_t i = 0; i < ShortDeviceIds::kMaxIds; ++i) {
    std::uint16_t index = 99;
    ASSERT_TRUE(kept.find(in_line(fmt::format("0000:00:{:02x}.0", i + 1)).id(), index)) << i;
    EXPECT_EQ(index, i);
  }
  std::uint16_t index = 99;
  EXPECT_FALSE(kept.find(in_line("0000:00:09.0").id(), index));
  EXPECT_FALSE(kept.find(in_line("0000:00:01.1").id(), index));
}

// Ids alike but for a byte or their length, from a small alphabet: a kept
// id is found as its own device, an id never added is never found.
RC_GTEST_PROP(ShortDeviceIds, NeverFindsAWrongDevice, ()) {
  // Mostly the same first eight bytes, so that ids differ in their tails.
  const auto id_gen = rc::gen::map(
      rc::gen::pair(rc::gen::element<std::string>("", "0000:00:"),
                    rc::gen::resize(
                        10, rc::gen::container<std::string>(rc::gen::element('0', '1', ':', '.')))),
      [](const std::pair<std::string, std::string>& parts) { return parts.first + parts.second; });
  const auto ids = *rc::gen::resize(20, rc::gen::unique<std::vector<std::string>>(id_gen));
  const std::size_t added = *rc::gen::inRange<std::size_t>(0, ids.size() + 1);
  ShortDeviceIds kept;
  for (std::size_t i = 0; i < added; ++i) {
    kept.add(ids[i], static_cast<std::uint16_t>(i));
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::uint16_t index = 999;
    const bool found = kept.find(in_line(ids[i]).id(), index);
    RC_ASSERT(!found || (i < added && index == i));
  }
}

}  // namespace
}  // namespace swiotlb::ops
