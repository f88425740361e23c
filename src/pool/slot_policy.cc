// Policy lookup by name, and the default for policies that keep no
// per-area state.
#include "swiotlb/pool/slot_policy.h"

#include "swiotlb/core/constants.h"
#include "swiotlb/pool/fast_policy.h"
#include "swiotlb/pool/linux_policy.h"

namespace swiotlb {

std::unique_ptr<AreaState> SlotPolicy::make_area_state(std::uint32_t) const {
  return nullptr;
}

Result<std::shared_ptr<const SlotPolicy>> make_slot_policy(std::string_view name) {
  if (name == "linux") {
    return std::shared_ptr<const SlotPolicy>(std::make_shared<LinuxPolicy>());
  }
  if (name == "linux-6.1") {
    return std::shared_ptr<const SlotPolicy>(std::make_shared<Linux61Policy>());
  }
  if (name == "fast") {
    return std::shared_ptr<const SlotPolicy>(std::make_shared<FastPolicy>());
  }
  return make_error(Errc::invalid_argument, "unknown slot policy '{}' (known: {})", name,
                    slot_policy_names());
}

std::string_view slot_policy_names() {
  return "linux, linux-6.1, fast";
}

}  // namespace swiotlb
