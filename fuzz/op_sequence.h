// The op-sequence check: bytes become an IoTlb configuration and a sequence
// of ops of the op vocabulary (ops/op.h: map, unmap, sync, tick) applied
// with ops::apply to an IoTlb over a simulation backend, so that pools of
// any size cost nothing. After every op:
//  - IoTlb::check_invariants() holds (every pool's slot records, the pool
//    table, the counts over all pools);
//  - the slots in use equal what the check's own record of live mappings
//    holds, and the high-water mark is at least that;
//  - a successful map took slots that were free and fit the kernel's rules
//    (oracle::run_fits), in a pool the check knows of;
//  - with the `fast` policy on one pool that cannot grow, a map succeeds
//    exactly when the brute-force oracle finds a run, and in the first area
//    that has one.
// Used by the libFuzzer driver (fuzz_ops.cc), the corpus regression test,
// and a long seeded run (tests/iotlb/op_sequence_test.cc).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/slot_oracle.h"
#include "swiotlb/iotlb/apply_op.h"
#include "swiotlb/iotlb/backend.h"
#include "swiotlb/iotlb/io_tlb.h"
#include "swiotlb/ops/op.h"
#include "swiotlb/pool/slot_policy.h"

namespace swiotlb::fuzz {

// Reads the input a byte at a time; zeros once it has run out.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return at_ >= bytes_.size(); }
  std::uint8_t byte() { return done() ? 0 : static_cast<std::uint8_t>(bytes_[at_++]); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

struct OpSequenceStats {
  std::uint64_t ops = 0;
  std::uint64_t maps = 0;
  std::uint64_t failed_maps = 0;
  std::uint64_t oracle_checks = 0;
};

class OpSequence {
 public:
  // The first two bytes choose the configuration.
  static std::optional<OpSequence> make(ByteReader& in) {
    static constexpr const char* kPolicies[] = {"fast", "linux", "linux-6.1"};
    const std::uint8_t a = in.byte();
    const std::uint8_t b = in.byte();
    IoTlbOptions o;
    o.policy = kPolicies[a % 3];
    o.nareas = 1u << ((a >> 2) % 3);
    o.nslabs = std::uint64_t{kSegmentSlots} * o.nareas * (1 + b % 4);
    o.growth.enabled = ((a >> 4) & 1) != 0;
    o.growth.pool_nslabs = kSegmentSlots * (1 + (b >> 2) % 4);
    // Areas of whole segments: the fast policy's index covers no partial
    // one (the kernel policies take any split; see docs/limits.md).
    o.growth.pool_nareas =
        o.growth.pool_nslabs % (2 * kSegmentSlots) == 0 ? 1u << ((b >> 4) % 2) : 1;
    o.growth.max_nslabs = o.nslabs * 4;
    o.growth.shrink_after = std::chrono::milliseconds((b >> 5) % 4 == 0 ? 0 : 8);
    o.transient = ((a >> 5) & 1) != 0;
    o.search_order = ((a >> 6) & 1) != 0 ? PoolSearchOrder::kernel : PoolSearchOrder::oldest_first;
    auto backend = std::make_shared<SimulationBackend>(std::uint64_t{1} << 32);
    o.backend = backend;
    Result<std::unique_ptr<IoTlb>> tlb = IoTlb::create(o);
    if (!tlb) {
      return std::nullopt;
    }
    Result<std::shared_ptr<const SlotPolicy>> policy = make_slot_policy(o.policy);
    if (!policy) {
      return std::nullopt;
    }
    OpSequence s;
    s.config_ = "policy " + o.policy + ", " + std::to_string(o.nslabs) + " slots in " +
                std::to_string(o.nareas) + " areas, growth " + (o.growth.enabled ? "on" : "off") +
                " (" + std::to_string(o.growth.pool_nslabs) + " slots in " +
                std::to_string(o.growth.pool_nareas) + " areas), transient " +
                (o.transient ? "on" : "off") + ", order " + std::string(to_string(o.search_order));
    s.backend_ = std::move(backend);
    s.tlb_ = std::move(*tlb);
    s.policy_ = std::move(*policy);
    s.exact_oracle_ = o.policy == "fast" && !o.growth.enabled && !o.transient;
    s.loose_alignment_ = o.policy == "linux-6.1";
    s.shadow_ = oracle::Shadow(o.nslabs, o.nareas);
    return s;
  }

  // Decodes one op and applies it; an empty string when every check held.
  std::string step(ByteReader& in) {
    ++stats_.ops;
    const std::uint8_t op = in.byte();
    std::string broke;
    switch (op % 8) {
      case 0:
      case 1:
      case 2:
        broke = map(map_from(in));
        break;
      case 3:
      case 4:
        broke = live_.empty() ? unmap_unknown() : unmap_at(in.byte() % live_.size());
        break;
      case 5:
        broke = live_.empty() ? std::string() : sync(in);
        break;
      case 6:
        broke = tick(ops::Tick{(1 + in.byte() % 16) * kTickNs});
        break;
      default:
        // Maintenance with no time passing.
        broke = tick(ops::Tick{0});
        break;
    }
    return broke.empty() ? check() : broke;
  }

  // Unmaps what is left; the pools must then be empty.
  std::string finish() {
    while (!live_.empty()) {
      if (std::string broke = unmap_at(live_.size() - 1); !broke.empty()) {
        return broke;
      }
    }
    if (std::string broke = tick(ops::Tick{0}); !broke.empty()) {
      return broke;
    }
    if (tlb_->used() != 0) {
      return "slots still in use after every mapping was unmapped";
    }
    return check();
  }

  const OpSequenceStats& stats() const { return stats_; }
  // The configuration the input chose, for messages.
  const std::string& config() const { return config_; }
  // The IoTlb under test, for a test that shows the checks can fail.
  IoTlb& io_tlb() { return *tlb_; }
  std::string check_now() const { return check(); }

 private:
  struct Live {
    PhysAddr tlb;
    std::uint64_t size = 0;
    std::uint64_t min_align_mask = 0;
    Direction dir = Direction::bidirectional;
    std::uint64_t nslots = 0;
    std::optional<std::uint64_t> first;  // in the configured pool, for the shadow
  };

  // One tick of the simulation clock, in the nanoseconds a Tick op counts.
  static constexpr auto kTickNs = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(SimulationBackend::kTick).count());

  OpSequence() = default;

  ops::Map map_from(ByteReader& in) const {
    static constexpr std::uint64_t kMinAlign[] = {0, 0, 0x7ff, 0xfff, 0x3fff};
    static constexpr std::uint64_t kAllocAlign[] = {0, 0, 0, 0xfff};
    static constexpr std::uint64_t kBoundary[] = {~std::uint64_t{0}, ~std::uint64_t{0}, 0xffff};
    const std::uint16_t size = in.u16();
    const std::uint8_t shape = in.byte();
    ops::Map m;
    // Mostly small, sometimes up to two segments: the sizes that fill a
    // small pool in a few maps.
    m.size = 1 + ((shape & 1) != 0 ? size % (2 * kSegmentBytes) : size % 8192);
    m.orig = std::uint64_t{in.u16()} << 4 | 0x100000000;
    m.min_align_mask = kMinAlign[(shape >> 1) % 5];
    m.alloc_align_mask = kAllocAlign[(shape >> 4) % 4];
    m.seg_boundary_mask = kBoundary[(shape >> 6) % 3];
    m.dir = static_cast<Direction>(in.byte() % 3);
    m.cpu = in.byte() % 8;
    m.attrs = static_cast<std::uint32_t>(Attr::no_warn);
    return m;
  }

  // Whether slots from `first` could be taken: free and in one segment
  // always; the alignment and boundary rules too, except under linux-6.1,
  // whose stride can step off an alignment the request asks for (6.1
  // derives the stride from min_align_mask as if it were one run of bits,
  // and the kernel replays that).
  bool fits(const SearchPlan& plan, std::uint64_t first) const {
    if (!loose_alignment_) {
      return oracle::run_fits(plan, shadow_.in_use, first);
    }
    if (first % kSegmentSlots + plan.nslots > kSegmentSlots) {
      return false;
    }
    for (std::uint64_t i = first; i < first + plan.nslots; ++i) {
      if (i >= shadow_.in_use.size() || shadow_.in_use[i]) {
        return false;
      }
    }
    return true;
  }

  static std::string describe(const BounceRequest& r) {
    return "size " + std::to_string(r.size) + ", orig " + std::to_string(r.orig.value()) +
           ", min_align_mask " + std::to_string(r.min_align_mask) + ", alloc_align_mask " +
           std::to_string(r.alloc_align_mask) + ", boundary " + std::to_string(r.seg_boundary_mask);
  }

  // What the configured pool is asked for: the library's own conversion,
  // at the pool's device start.
  SlotRequest pool_request(const BounceRequest& r) const {
    SlotRequest s = slot_request(r);
    s.pool_dma_start = r.pool_dma_start;
    return s;
  }

  std::string map(const ops::Map& m) {
    // The request apply() makes of the IoTlb, judged by the oracle.
    const BounceRequest r = ops::bounce_request(m, *tlb_);
    const std::optional<SearchPlan> plan = oracle::plan_for(*policy_, pool_request(r));
    std::optional<std::uint32_t> oracle_area;
    if (plan) {
      oracle_area = shadow_.first_area_with_run(*plan, m.cpu);
    }
    const std::uint64_t used_before = tlb_->used();
    ++stats_.maps;
    const ops::Applied applied = ops::apply(m, *tlb_, backend_.get());
    if (!applied) {
      ++stats_.failed_maps;
      if (exact_oracle_ && plan) {
        ++stats_.oracle_checks;
        if (oracle_area) {
          return "a map failed (" + std::string(applied.error().message()) +
                 ") although the oracle finds a run in area " + std::to_string(*oracle_area);
        }
      }
      return {};
    }
    if (!plan) {
      return "a map succeeded that the policy cannot plan";
    }
    const PhysAddr got(*applied);
    Live live{got, r.size, r.min_align_mask, r.dir, tlb_->used() - used_before, std::nullopt};
    if (live.nslots != plan->nslots) {
      return "a map took " + std::to_string(live.nslots) + " slots where the plan needs " +
             std::to_string(plan->nslots);
    }
    const SlotPool& pool = tlb_->pool();
    if (pool.contains(got)) {
      const std::uint64_t head = (got - pool.start() - plan->tlb_offset) >> kSlotShift;
      const std::uint64_t first = head - plan->pad_slots;
      if (!fits(*plan, first)) {
        return "a map took slots at " + std::to_string(first) + " (" +
               std::to_string(plan->nslots) + " slots; " + describe(r) +
               ") that were in use or break the kernel's rules";
      }
      if (exact_oracle_) {
        ++stats_.oracle_checks;
        const std::uint64_t area = first / (shadow_.slots / shadow_.areas);
        if (!oracle_area || area != *oracle_area) {
          return "a map landed in area " + std::to_string(area) +
                 " where the oracle's first area with a run is another";
        }
      }
      shadow_.mark(first, plan->nslots, true);
      live.first = first;
    } else if (exact_oracle_) {
      return "a map of a pool that cannot grow landed outside it";
    } else if (!tlb_->contains(got)) {
      return "a map returned an address in no pool";
    }
    live_.push_back(live);
    return {};
  }

  // An address nobody mapped must be refused, changing nothing.
  std::string unmap_unknown() {
    const std::uint64_t used = tlb_->used();
    if (ops::apply(ops::Unmap{(tlb_->start() + 8).value(), 8, 0, Direction::to_device, 0}, *tlb_)) {
      return "an unmap of an address never mapped succeeded";
    }
    return tlb_->used() == used ? std::string() : "a refused unmap changed the slots in use";
  }

  std::string unmap_at(std::size_t at) {
    const Live live = live_[at];
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(at));
    const std::uint64_t used_before = tlb_->used();
    const ops::Unmap unmap{live.tlb.value(), live.size, live.min_align_mask, live.dir, 0};
    // A claim that does not match is refused and the mapping stays.
    ops::Unmap wrong = unmap;
    wrong.size = live.size + 1;
    if (ops::apply(wrong, *tlb_)) {
      return "an unmap with the wrong size succeeded";
    }
    if (ops::Applied ok = ops::apply(unmap, *tlb_); !ok) {
      return "the unmap of a live mapping failed: " + std::string(ok.error().message());
    }
    if (used_before - tlb_->used() != live.nslots) {
      return "an unmap freed " + std::to_string(used_before - tlb_->used()) + " slots of " +
             std::to_string(live.nslots);
    }
    if (live.first) {
      shadow_.mark(*live.first, live.nslots, false);
    }
    return {};
  }

  // REQUIRES: a live mapping.
  std::string sync(ByteReader& in) {
    const Live& live = live_[in.byte() % live_.size()];
    const std::uint64_t offset = in.u16() % live.size;
    const std::uint64_t size = 1 + in.u16() % (live.size - offset);
    const ops::SyncFor to = (in.byte() & 1) != 0 ? ops::SyncFor::cpu : ops::SyncFor::device;
    if (ops::Applied ok =
            ops::apply(ops::Sync{(live.tlb + offset).value(), size, live.dir, to}, *tlb_);
        !ok) {
      return "a sync inside a live mapping failed: " + std::string(ok.error().message());
    }
    // A range over the mapping's last byte and the next is in no one mapping.
    if (ops::apply(ops::Sync{(live.tlb + (live.size - 1)).value(), 2, live.dir, ops::SyncFor::cpu},
                   *tlb_)) {
      return "a sync past a mapping's end succeeded";
    }
    return {};
  }

  // Time passes on the backend's clock and the maintenance due runs.
  std::string tick(const ops::Tick& t) {
    if (ops::Applied ok = ops::apply(t, *tlb_, backend_.get()); !ok) {
      return "a tick failed: " + std::string(ok.error().message());
    }
    return {};
  }

  std::string check() const {
    if (Status ok = tlb_->check_invariants(); !ok) {
      return "invariants: " + std::string(ok.error().message());
    }
    std::uint64_t held = 0;
    for (const Live& live : live_) {
      held += live.nslots;
    }
    if (tlb_->used() != held) {
      return "the IoTlb counts " + std::to_string(tlb_->used()) + " slots in use, the live " +
             "mappings hold " + std::to_string(held);
    }
    if (tlb_->hiwater() < held) {
      return "the high-water mark is below the slots in use";
    }
    return {};
  }

  std::shared_ptr<SimulationBackend> backend_;
  std::unique_ptr<IoTlb> tlb_;
  std::shared_ptr<const SlotPolicy> policy_;
  std::string config_;
  bool exact_oracle_ = false;
  bool loose_alignment_ = false;
  oracle::Shadow shadow_;
  std::vector<Live> live_;
  OpSequenceStats stats_;
};

// Runs the whole input; an empty string when every check held.
inline std::string check_op_sequence(std::string_view input, OpSequenceStats* stats = nullptr) {
  ByteReader in(input);
  std::optional<OpSequence> s = OpSequence::make(in);
  if (!s) {
    return "no IoTlb could be made from a configuration the decoder chose";
  }
  std::string broke;
  while (!in.done() && broke.empty()) {
    broke = s->step(in);
  }
  if (broke.empty()) {
    broke = s->finish();
  }
  if (!broke.empty()) {
    broke += " [" + s->config() + ", op " + std::to_string(s->stats().ops) + "]";
  }
  if (stats != nullptr) {
    *stats = s->stats();
  }
  return broke;
}

}  // namespace swiotlb::fuzz
