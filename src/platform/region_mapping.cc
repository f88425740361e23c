// mmap for regions. MAP_FIXED_NOREPLACE (Linux 4.17) places a mapping at an
// exact address without destroying what is there; older kernels ignore the
// unknown flag and treat the address as a hint, so the returned address is
// always compared with the one asked for.
#include "region_mapping.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <charconv>
#include <fstream>
#include <string>

namespace swiotlb {

namespace {

#ifndef MAP_FIXED_NOREPLACE
constexpr int MAP_FIXED_NOREPLACE = 0x100000;  // the Linux value, for older headers
#endif

// ThreadSanitizer owns the low addresses for its shadow and stops the
// process on a mapping there; under it, low placement is not attempted.
#if defined(__SANITIZE_THREAD__)
constexpr bool kLowPlacementAllowed = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kLowPlacementAllowed = false;
#else
constexpr bool kLowPlacementAllowed = true;
#endif
#else
constexpr bool kLowPlacementAllowed = true;
#endif

int base_flags(const MapRequest& request) {
  if (request.fd < 0) {
    return MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  }
  return request.reserve ? MAP_SHARED : MAP_SHARED | MAP_NORESERVE;
}

void* raw_map(const MapRequest& request, void* hint, int extra_flags) {
  return mmap(hint, request.size, PROT_READ | PROT_WRITE, base_flags(request) | extra_flags,
              request.fd, static_cast<off_t>(request.offset));
}

// One hexadecimal bound of a /proc/self/maps line, advancing `p`.
bool parse_hex(const char*& p, const char* end, std::uint64_t* out) {
  const auto [next, ec] = std::from_chars(p, end, *out, 16);
  p = next;
  return ec == std::errc();
}

// Squeezes runs of blanks, which /proc/self/maps uses to pad columns.
std::string squeeze(const std::string& line) {
  std::string out;
  for (char c : line) {
    if (c != ' ' || out.empty() || out.back() != ' ') {
      out.push_back(c);
    }
  }
  return out;
}

// The first line of /proc/self/maps overlapping [start, end), to tell the
// user what holds an address.
std::string occupant_of(std::uint64_t start, std::uint64_t end) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const char* p = line.data();
    const char* stop = p + line.size();
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    if (parse_hex(p, stop, &lo) && p != stop && *p++ == '-' && parse_hex(p, stop, &hi) &&
        lo < end && hi > start) {
      return squeeze(line);
    }
  }
  return "a mapping /proc/self/maps does not show";
}

Error taken_error(const MapRequest& request, PhysAddr addr) {
  const std::uint64_t end = addr.value() + request.size;
  return make_error(Errc::system,
                    "address {:#x} is taken: [{:#x}, {:#x}) for {} overlaps an existing mapping "
                    "({}); mmap with MAP_FIXED_NOREPLACE: {}",
                    addr.value(), addr.value(), end, request.what, occupant_of(addr.value(), end),
                    errno_text(EEXIST));
}

// What to do about a refusal, where there is something to say.
std::string advice(const MapRequest& request, int err) {
  if (!request.reserve || err != ENOMEM || request.page_size == 0) {
    return {};
  }
  return fmt::format(
      " (it needs {} free huge pages of {} bytes: see HugePages_Free in "
      "/proc/meminfo and vm.nr_hugepages)",
      request.size / request.page_size, request.page_size);
}

}  // namespace

Result<std::byte*> map_anywhere(const MapRequest& request, RegionPlacement placement) {
  void* p = MAP_FAILED;
#ifdef MAP_32BIT
  if (placement == RegionPlacement::low && kLowPlacementAllowed) {
    p = raw_map(request, nullptr, MAP_32BIT);
  }
#else
  (void)placement;
#endif
  // Low memory is a preference: a device that needs it will be refused
  // later with a reachability error that names the address.
  if (p == MAP_FAILED) {
    p = raw_map(request, nullptr, 0);
  }
  if (p == MAP_FAILED) {
    const int err = errno;
    return make_error(Errc::system, "mmap of {} bytes of {} failed: {}{}", request.size,
                      request.what, errno_text(err), advice(request, err));
  }
  return static_cast<std::byte*>(p);
}

Result<std::byte*> map_fixed(const MapRequest& request, PhysAddr addr) {
  void* want = addr.to_pointer();
  void* p = raw_map(request, want, MAP_FIXED_NOREPLACE);
  if (p == MAP_FAILED) {
    const int err = errno;
    if (err == EEXIST) {
      return taken_error(request, addr);
    }
    return make_error(Errc::system, "mmap of {} bytes of {} at {:#x} failed: {}{}", request.size,
                      request.what, addr.value(), errno_text(err), advice(request, err));
  }
  if (p != want) {
    munmap(p, request.size);
    return make_error(Errc::system,
                      "the kernel put {} bytes of {} at {} instead of {:#x}: it takes "
                      "MAP_FIXED_NOREPLACE as a hint (Linux before 4.17), so the address may be "
                      "taken",
                      request.size, request.what, p, addr.value());
  }
  return static_cast<std::byte*>(p);
}

}  // namespace swiotlb
