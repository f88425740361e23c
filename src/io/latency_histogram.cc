// Log-linear latency buckets.
#include "swiotlb/io/latency_histogram.h"

#include <bit>
#include <cmath>

namespace swiotlb::io {

unsigned LatencyHistogram::bucket_of(std::uint64_t v) {
  if (v < kSub) {
    return static_cast<unsigned>(v);
  }
  const auto exponent = static_cast<unsigned>(std::bit_width(v)) - 1;  // >= kSubBits
  const auto sub = static_cast<unsigned>((v >> (exponent - kSubBits)) & (kSub - 1));
  return kSub + (exponent - kSubBits) * kSub + sub;
}

std::uint64_t LatencyHistogram::upper_edge(unsigned bucket) {
  if (bucket < kSub) {
    return bucket;
  }
  const unsigned exponent = (bucket - kSub) / kSub + kSubBits;
  const unsigned sub = (bucket - kSub) % kSub;
  const std::uint64_t step = std::uint64_t{1} << (exponent - kSubBits);
  return (std::uint64_t{1} << exponent) + (sub + 1) * step - 1;
}

void LatencyHistogram::record(std::uint64_t nanoseconds) {
  ++buckets_[bucket_of(nanoseconds)];
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  for (unsigned b = 0; b < kBuckets; ++b) {
    buckets_[b] += other.buckets_[b];
  }
  count_ += other.count_;
}

std::uint64_t LatencyHistogram::percentile(double fraction) const {
  if (count_ == 0) {
    return 0;
  }
  const auto rank = static_cast<std::uint64_t>(std::ceil(fraction * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (unsigned b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank && seen > 0) {
      return upper_edge(b);
    }
  }
  return upper_edge(kBuckets - 1);
}

}  // namespace swiotlb::io
