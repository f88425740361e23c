// The header of a pool image: building it, writing it with its checksum,
// and reading it back with every check that does not need the slot arrays
// (private to the pool layer; the layout is in
// include/swiotlb/pool/pool_image.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "swiotlb/core/error.h"
#include "swiotlb/pool/pool_image.h"
#include "swiotlb/pool/slot_pool.h"

namespace swiotlb {

// Fails when `image` cannot hold the metadata of `slot_count` slots or is
// not aligned to kPoolImageAlign.
Status check_image_memory(std::span<const std::byte> image, std::uint64_t slot_count);

// The header of a freshly formatted pool. Fails for a policy name that does
// not fit the header.
Result<PoolImageHeader> make_image_header(const PoolGeometry& geometry,
                                          std::string_view policy_name, std::int32_t owner_pid);

// Writes `header` at the start of `image` with its checksum recomputed.
void store_image_header(std::byte* image, PoolImageHeader header);

// The header at the start of `image`, when it is a pool header this library
// writes, intact, for the `expected` geometry and policy, and the image is
// large enough for the arrays it describes. Reads the bytes only through a
// copy, so that any content is safe to look at.
Result<PoolImageHeader> load_image_header(std::span<const std::byte> image,
                                          const PoolGeometry& expected,
                                          std::string_view policy_name);

// The policy name a header records (up to its first NUL).
std::string_view recorded_policy(const PoolImageHeader& header);

}  // namespace swiotlb
