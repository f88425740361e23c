// The pool image header: checksum, format, and the checks attach makes
// before it looks at any slot.
#include "image_header.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace swiotlb {

namespace {

constexpr std::uint64_t kFnvOffsetBasis = 0xcbf29ce484222325;
constexpr std::uint64_t kFnvPrime = 0x100000001b3;

std::uint64_t address_of(std::span<const std::byte> image) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(image.data()));
}

}  // namespace

std::uint64_t pool_image_checksum(const PoolImageHeader& header) {
  PoolImageHeader copy = header;
  copy.checksum = 0;
  const auto bytes = std::bit_cast<std::array<std::uint8_t, sizeof(PoolImageHeader)>>(copy);
  std::uint64_t hash = kFnvOffsetBasis;
  for (std::uint8_t byte : bytes) {
    hash = (hash ^ byte) * kFnvPrime;
  }
  return hash;
}

std::string_view recorded_policy(const PoolImageHeader& header) {
  const char* end = std::find(std::begin(header.policy), std::end(header.policy), '\0');
  return {header.policy, static_cast<std::size_t>(end - header.policy)};
}

Status check_image_memory(std::span<const std::byte> image, std::uint64_t slot_count) {
  if (address_of(image) % kPoolImageAlign != 0) {
    return make_error(Errc::invalid_argument, "pool image at {:#x} is not aligned to {} bytes",
                      address_of(image), kPoolImageAlign);
  }
  const std::uint64_t needed = pool_image_bytes(slot_count);
  if (image.size() < needed) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} has {} bytes, but the metadata of {} slots needs {}",
                      address_of(image), image.size(), slot_count, needed);
  }
  return {};
}

Result<PoolImageHeader> make_image_header(const PoolGeometry& geometry,
                                          std::string_view policy_name, std::int32_t owner_pid) {
  PoolImageHeader header;
  if (policy_name.size() >= sizeof(header.policy)) {
    return make_error(Errc::invalid_argument,
                      "policy name '{}' does not fit a pool image header ({} bytes at most)",
                      policy_name, sizeof(header.policy) - 1);
  }
  const PoolImageLayout layout = pool_image_layout(geometry.slot_count);
  header.header_bytes = sizeof(PoolImageHeader);
  header.pool_start = geometry.start.value();
  header.slot_count = geometry.slot_count;
  header.area_count = geometry.area_count;
  header.owner_pid = owner_pid;
  header.list_offset = layout.list_offset;
  header.slots_offset = layout.slots_offset;
  header.image_bytes = layout.bytes;
  header.slot_record_bytes = sizeof(SlotRecord);
  std::copy(policy_name.begin(), policy_name.end(), header.policy);
  return header;
}

void store_image_header(std::byte* image, PoolImageHeader header) {
  header.checksum = pool_image_checksum(header);
  std::memcpy(image, &header, sizeof(header));
}

Result<PoolImageHeader> load_image_header(std::span<const std::byte> image,
                                          const PoolGeometry& expected,
                                          std::string_view policy_name) {
  const std::uint64_t at = address_of(image);
  if (at % kPoolImageAlign != 0) {
    return make_error(Errc::invalid_argument, "pool image at {:#x} is not aligned to {} bytes", at,
                      kPoolImageAlign);
  }
  if (image.size() < sizeof(PoolImageHeader)) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} has {} bytes, too few for a {}-byte pool header", at,
                      image.size(), sizeof(PoolImageHeader));
  }
  PoolImageHeader header;
  std::memcpy(&header, image.data(), sizeof(header));

  // What kind of bytes these are, before what they say.
  if (header.magic != kPoolImageMagic) {
    return make_error(Errc::parse, "no pool header at {:#x} (magic {:#018x}, expected {:#018x})",
                      at, header.magic, kPoolImageMagic);
  }
  if (header.version != kPoolImageVersion) {
    return make_error(Errc::parse,
                      "pool header at {:#x} has version {}; this library reads version {}", at,
                      header.version, kPoolImageVersion);
  }
  if (header.header_bytes != sizeof(PoolImageHeader)) {
    return make_error(Errc::parse, "pool header at {:#x} says it has {} bytes; version {} has {}",
                      at, header.header_bytes, kPoolImageVersion, sizeof(PoolImageHeader));
  }
  if (const std::uint64_t sum = pool_image_checksum(header); sum != header.checksum) {
    return make_error(
        Errc::parse, "pool header at {:#x} is corrupt: checksum {:#018x}, its fields give {:#018x}",
        at, header.checksum, sum);
  }

  // Whose pool it is.
  if (header.pool_start != expected.start.value()) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} is of another pool: start {:#x}, expected {:#x}", at,
                      header.pool_start, expected.start.value());
  }
  if (header.slot_count != expected.slot_count) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} is of another pool: slot_count {}, expected {}", at,
                      header.slot_count, expected.slot_count);
  }
  if (header.area_count != expected.area_count) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} is of another pool: area_count {}, expected {}", at,
                      header.area_count, expected.area_count);
  }
  if (recorded_policy(header) != policy_name) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} was formatted for the '{}' slot policy, not '{}'", at,
                      recorded_policy(header), policy_name);
  }

  // Where its arrays are: always where this version puts them.
  const PoolImageLayout layout = pool_image_layout(expected.slot_count);
  if (header.list_offset != layout.list_offset || header.slots_offset != layout.slots_offset ||
      header.image_bytes != layout.bytes || header.slot_record_bytes != sizeof(SlotRecord)) {
    return make_error(Errc::parse,
                      "pool header at {:#x} describes another layout: arrays at {} and {} of "
                      "{}-byte records, {} bytes in all; expected {} and {} of {}-byte records, {}",
                      at, header.list_offset, header.slots_offset, header.slot_record_bytes,
                      header.image_bytes, layout.list_offset, layout.slots_offset,
                      sizeof(SlotRecord), layout.bytes);
  }
  if (image.size() < layout.bytes) {
    return make_error(Errc::invalid_argument,
                      "pool image at {:#x} has {} bytes, but the metadata of {} slots needs {}", at,
                      image.size(), expected.slot_count, layout.bytes);
  }
  return header;
}

}  // namespace swiotlb
