// Random reserve/alloc/free sequences against a reference model: the set of
// IOVAs handed out and the reserved pfns, as plain intervals. After every
// step: the domain's own invariants hold; every IOVA the model holds is in
// the tree with its size; no two overlap; none touches a reserved pfn or
// leaves [start_pfn, limit]; bad frees fail and change nothing; and a failed
// allocation really had no room (unless the kernel's 32-bit fast-fail hint,
// which remembers sizes but not limits, was what refused it).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <bit>
#include <map>
#include <tuple>
#include <vector>

#include "swiotlb/iova/apply_op.h"
#include "swiotlb/iova/iova_domain.h"

namespace swiotlb::iova {
namespace {

struct Held {
  std::uint64_t size;   // granules the tree holds
  std::uint64_t asked;  // what the caller asked for
  bool fast;
};

class Model {
 public:
  Model(std::uint64_t base, std::uint64_t start_pfn, unsigned cpus)
      : base_(base), start_pfn_(start_pfn), cpus_(cpus) {
    domain_ = IovaDomain::create(4096, start_pfn, cpus).value();
  }

  void reserve(std::uint64_t lo, std::uint64_t hi) {
    RC_ASSERT(ops::apply(ops::IovaReserve{base_ + lo, base_ + hi}, *domain_).has_value());
    for (std::uint64_t p = lo; p <= hi; ++p) {
      reserved_[base_ + p] = true;
    }
  }

  void step(int kind, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    const unsigned cpu = static_cast<unsigned>(a % cpus_);
    const std::uint64_t size = b % 40 + 1;
    const std::uint64_t limit = base_ + c % 600;
    switch (kind) {
      case 0:
        alloc_fast(cpu, size, limit, (a / 7) % 2 == 0);
        break;
      case 1:
        free_some(cpu, a, true);
        break;
      case 2:
        alloc_tree(size, limit, (a / 7) % 2 == 0);
        break;
      case 3:
        free_some(cpu, a, false);
        break;
      case 4:
        bogus_free(cpu, base_ + c % 600);
        break;
      case 5:
        wrong_size_free(cpu, a);
        break;
      default:
        domain_->flush_rcaches();
        break;
    }
    check();
  }

 private:
  bool blocked_by_hint(std::uint64_t size, std::uint64_t limit) const {
    return limit + 1 <= domain_->dma_32bit_pfn() &&
           size >= domain_->tree().search_state().max32_alloc_size;
  }

  bool occupied(std::uint64_t pfn, bool count_tree) const {
    if (reserved_.contains(pfn)) {
      return true;
    }
    if (count_tree) {
      return domain_->find(pfn).has_value();
    }
    auto it = held_.upper_bound(pfn);
    return it != held_.begin() && pfn < std::prev(it)->first + std::prev(it)->second.size;
  }

  // No start at a multiple of `align` in [start_pfn, limit] with room.
  void expect_no_room(std::uint64_t size, std::uint64_t limit, std::uint64_t align,
                      bool count_tree) {
    ++no_room_checks_;
    const std::uint64_t first = (start_pfn_ + align - 1) / align * align;
    for (std::uint64_t p = first; p + size - 1 <= limit; p += align) {
      bool free = true;
      for (std::uint64_t q = p; q < p + size && free; ++q) {
        free = !occupied(q, count_tree);
      }
      RC_ASSERT(!free);
    }
  }

  void accept(std::uint64_t pfn, std::uint64_t size, std::uint64_t asked, std::uint64_t limit,
              bool fast) {
    RC_ASSERT(pfn >= start_pfn_);
    RC_ASSERT(pfn + size - 1 <= limit);
    for (std::uint64_t q = pfn; q < pfn + size; ++q) {
      RC_ASSERT(!occupied(q, false));
    }
    held_[pfn] = {size, asked, fast};
  }

  void alloc_fast(unsigned cpu, std::uint64_t size, std::uint64_t limit, bool flush) {
    const std::uint64_t rounded = fast_alloc_size(size);
    const bool hinted = blocked_by_hint(rounded, limit);
    ops::Applied pfn = ops::apply(ops::IovaAlloc{cpu, size, limit, flush}, *domain_);
    if (pfn) {
      RC_ASSERT(*pfn % std::bit_ceil(rounded) == 0);
      accept(*pfn, rounded, size, limit, true);
      return;
    }
    RC_ASSERT(pfn.error().code() == Errc::pool_full);
    if (flush && !hinted) {
      expect_no_room(rounded, limit, std::bit_ceil(rounded), false);
    }
  }

  void alloc_tree(std::uint64_t size, std::uint64_t limit, bool aligned) {
    const bool hinted = blocked_by_hint(size, limit);
    Result<IovaRange> r = domain_->alloc(size, limit, aligned);
    if (r) {
      RC_ASSERT(!aligned || r->pfn_lo % std::bit_ceil(size) == 0);
      accept(r->pfn_lo, size, size, limit, false);
      return;
    }
    RC_ASSERT(r.error().code() == Errc::pool_full);
    if (!hinted) {
      expect_no_room(size, limit, aligned ? std::bit_ceil(size) : 1, true);
    }
  }

  void free_some(unsigned cpu, std::uint64_t pick, bool fast) {
    if (held_.empty()) {
      return;
    }
    auto it = std::next(held_.begin(), static_cast<std::ptrdiff_t>(pick % held_.size()));
    // The tree's own free (free_iova) is not an op: the kernel's DMA path
    // frees with free_iova_fast.
    const bool freed =
        fast ? ops::apply(ops::IovaFree{cpu, it->first, it->second.asked}, *domain_).has_value()
             : domain_->free(it->first).has_value();
    RC_ASSERT(freed);
    held_.erase(it);
  }

  void bogus_free(unsigned cpu, std::uint64_t pfn) {
    if (held_.contains(pfn)) {
      return;
    }
    const auto nodes = domain_->tree().nodes();
    RC_ASSERT(!ops::apply(ops::IovaFree{cpu, pfn, 1}, *domain_).has_value());
    RC_ASSERT(!domain_->free(pfn).has_value());
    RC_ASSERT(domain_->tree().nodes() == nodes);
  }

  void wrong_size_free(unsigned cpu, std::uint64_t pick) {
    if (held_.empty()) {
      return;
    }
    auto it = std::next(held_.begin(), static_cast<std::ptrdiff_t>(pick % held_.size()));
    const ops::Applied st =
        ops::apply(ops::IovaFree{cpu, it->first, it->second.size * 2 + 1}, *domain_);
    RC_ASSERT(!st.has_value());
    RC_ASSERT(st.error().code() == Errc::mapping_mismatch);
  }

 public:
  int no_room_checks() const { return no_room_checks_; }

 private:
  void check() const {
    const Status st = domain_->check_invariants();
    RC_ASSERT(st.has_value());
    RC_ASSERT(domain_->live_count() == held_.size());
    std::uint64_t next_free = 0;
    for (const auto& [pfn, held] : held_) {
      RC_ASSERT(pfn >= next_free);  // no overlap between IOVAs held
      next_free = pfn + held.size;
      const std::optional<IovaNode> node = domain_->find(pfn);
      RC_ASSERT(node.has_value());
      RC_ASSERT(node->kind == IovaKind::allocated);
      RC_ASSERT(node->range == (IovaRange{pfn, pfn + held.size - 1}));
    }
  }

  std::uint64_t base_;
  std::uint64_t start_pfn_;
  unsigned cpus_;
  std::unique_ptr<IovaDomain> domain_;
  std::map<std::uint64_t, Held> held_;      // pfn -> what the caller holds
  std::map<std::uint64_t, bool> reserved_;  // reserved pfns
  int no_room_checks_ = 0;
};

using Op = std::tuple<int, std::uint64_t, std::uint64_t, std::uint64_t>;

void run_model(std::uint64_t base) {
  const std::uint64_t start = base + *rc::gen::inRange<std::uint64_t>(1, 9);
  const unsigned cpus = *rc::gen::inRange(1u, 4u);
  Model model(base, start, cpus);
  const auto reserves = *rc::gen::container<std::vector<std::pair<std::uint64_t, std::uint64_t>>>(
      *rc::gen::inRange(0, 4), rc::gen::pair(rc::gen::inRange<std::uint64_t>(0, 560),
                                             rc::gen::inRange<std::uint64_t>(0, 40)));
  for (const auto& [lo, len] : reserves) {
    model.reserve(lo, lo + len);
  }
  const auto ops = *rc::gen::container<std::vector<Op>>(
      rc::gen::tuple(rc::gen::inRange(0, 7), rc::gen::arbitrary<std::uint64_t>(),
                     rc::gen::arbitrary<std::uint64_t>(), rc::gen::arbitrary<std::uint64_t>()));
  for (const auto& [kind, a, b, c] : ops) {
    model.step(kind, a, b, c);
  }
  RC_CLASSIFY(model.no_room_checks() > 0, "a failed allocation was checked for room");
}

RC_GTEST_PROP(IovaModelTest, LowPfnsAgreeWithTheModel, ()) {
  run_model(0);
}

// Straddling 4 GiB: limits on both sides of dma_32bit_pfn, so both cached
// nodes, the hint and the anchor-started retry all come into play.
RC_GTEST_PROP(IovaModelTest, PfnsAroundFourGigabytesAgreeWithTheModel, ()) {
  run_model(0x100000 - 300);
}

}  // namespace
}  // namespace swiotlb::iova
