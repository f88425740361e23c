// AddressTable (private to the sim layer) against std::unordered_map, under
// random inserts, replacements and erases: every key that should be there
// is, with its last value, and no other.
#include "../../src/sim/address_table.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <unordered_map>
#include <vector>

namespace swiotlb::sim {
namespace {

RC_GTEST_PROP(AddressTable, BehavesLikeAMap, (const std::vector<std::uint8_t>& ops)) {
  AddressTable<std::uint64_t> table(4);
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  std::uint64_t next_value = 1;
  for (std::uint8_t op : ops) {
    // Few distinct keys, with 0 and all ones among them, so that probe
    // chains collide and wrap.
    const std::uint64_t key = op % 5 == 0 ? ~std::uint64_t{0} : (op >> 1) * 0x800ull;
    const std::size_t at = table.find(key);
    RC_ASSERT((at != table.kNone) == (model.count(key) != 0));
    if (at == table.kNone) {
      table.insert(key, next_value);
      model[key] = next_value++;
    } else {
      RC_ASSERT(table.at(at) == model[key]);
      if (op & 1) {
        table.erase(at);
        model.erase(key);
      }
    }
    RC_ASSERT(table.size() == model.size());
  }
  for (const auto& [key, value] : model) {
    const std::size_t at = table.find(key);
    RC_ASSERT(at != table.kNone);
    RC_ASSERT(table.at(at) == value);
  }
}

// find_or_free + put, the one-probe insert-or-replace replay's maps use,
// against the same model: a key that is there has its value replaced, one
// that is not is inserted (growing the table when it must), and
// find_or_free tells the two apart.
RC_GTEST_PROP(AddressTable, PutInsertsOrReplacesLikeAMap, (const std::vector<std::uint8_t>& ops)) {
  AddressTable<std::uint64_t> table(4);
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  std::uint64_t next_value = 1;
  for (std::uint8_t op : ops) {
    const std::uint64_t key = op % 5 == 0 ? ~std::uint64_t{0} : (op >> 1) * 0x800ull;
    if (op % 7 == 3) {
      if (const std::size_t at = table.find(key); at != table.kNone) {
        table.erase(at);
        model.erase(key);
      }
    } else {
      const std::size_t position = table.find_or_free(key);
      RC_ASSERT(table.holds(position) == (model.count(key) != 0));
      table.put(position, key, next_value);
      model[key] = next_value++;
    }
    RC_ASSERT(table.size() == model.size());
  }
  for (const auto& [key, value] : model) {
    const std::size_t at = table.find(key);
    RC_ASSERT(at != table.kNone);
    RC_ASSERT(table.at(at) == value);
  }
}

}  // namespace
}  // namespace swiotlb::sim
