// LatencyHistogram: I/O latencies in log-linear buckets (32 per power of
// two, so a percentile is within about 3% of the true value), with no
// allocation after construction.
//
// Thread safety: none; one runner records into it.
#pragma once

#include <array>
#include <cstdint>

namespace swiotlb::io {

class LatencyHistogram {
 public:
  void record(std::uint64_t nanoseconds);
  // Adds another histogram's samples to this one.
  void merge(const LatencyHistogram& other);
  std::uint64_t count() const { return count_; }
  // The latency below which `fraction` (0..1) of the samples lie, in
  // nanoseconds (the upper edge of its bucket); 0 without samples.
  std::uint64_t percentile(double fraction) const;

 private:
  static constexpr unsigned kSubBits = 5;
  static constexpr unsigned kSub = 1U << kSubBits;
  static constexpr unsigned kBuckets = kSub + (64 - kSubBits) * kSub;
  static unsigned bucket_of(std::uint64_t v);
  static std::uint64_t upper_edge(unsigned bucket);

  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
};

}  // namespace swiotlb::io
