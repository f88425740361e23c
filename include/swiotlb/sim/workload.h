// Synthetic workloads: traces from documented models of real devices, for
// trying policies and sizes when no kernel trace is at hand.
//
// Each profile models one kind of device (docs/trace-format.md, "Synthetic
// workloads", has the numbers and the reasons for them): its min_align_mask and segment boundary,
// the sizes it maps and how often, how many requests it keeps in flight (its queue depth) and in
// which order they complete. A map is unmapped after about a queue depth's worth of other events.
// Requests are spread over `cpus` CPUs, each with its own queue, as multi-queue drivers do.
//
// The output is an ordinary Trace: a `# pool` line (the kernel's default
// pool for `cpus` areas), `# device` lines, events. The kernel's bounce
// address is not known, so maps carry `-` and unmaps name their map by its
// original address, which the generator keeps unique among live mappings.
// Every map is unmapped by the end. The same seed gives the same trace on
// every platform (the generator uses its own random numbers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/sim/trace.h"

namespace swiotlb::sim {

enum class WorkloadProfile : std::uint8_t { nvme, virtio_blk, network, mixed };

SWIOTLB_API std::string_view to_string(WorkloadProfile profile);
// Accepts "nvme", "virtio-blk", "network", "mixed".
SWIOTLB_API std::optional<WorkloadProfile> workload_profile_from_string(std::string_view name);
// The names workload_profile_from_string accepts.
SWIOTLB_API std::string_view workload_profile_names();

struct WorkloadOptions {
  WorkloadProfile profile = WorkloadProfile::mixed;
  std::uint64_t events = 100000;  // about this many events (maps, unmaps, syncs)
  std::uint64_t seed = 1;
  std::uint32_t cpus = 4;  // a power of two, 1..1024
};

// Fails for events == 0 or a cpu count that is not a power of two in range.
SWIOTLB_API Result<Trace> generate_workload(const WorkloadOptions& options);

}  // namespace swiotlb::sim
