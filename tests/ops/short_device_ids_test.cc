// ShortDeviceIds: exact matches only, whatever bytes follow an id in memory.
#include "swiotlb/ops/short_device_ids.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace swiotlb::ops
