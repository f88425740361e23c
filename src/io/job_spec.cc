// Parsing a run's words and sizes; the measures derived from a run.
#include <charconv>
#include <string>

#include "swiotlb/io/io_job.h"

namespace swiotlb::io {

Result<RwMode> parse_rw_mode(std::string_view text) {
  for (RwMode m :
       {RwMode::read, RwMode::write, RwMode::randread, RwMode::randwrite, RwMode::randrw}) {
    if (text == to_string(m)) {
      return m;
    }
  }
  return make_error(Errc::parse, "--rw {}: expected read, write, randread, randwrite or randrw",
                    text);
}

std::string_view to_string(RwMode mode) {
  switch (mode) {
    case RwMode::read:
      return "read";
    case RwMode::write:
      return "write";
    case RwMode::randread:
      return "randread";
    case RwMode::randwrite:
      return "randwrite";
    case RwMode::randrw:
      return "randrw";
  }
  return "?";
}

Result<BufferSource> parse_buffer_source(std::string_view text) {
  for (BufferSource s : {BufferSource::unaligned, BufferSource::aligned, BufferSource::mixed,
                         BufferSource::registered}) {
    if (text == to_string(s)) {
      return s;
    }
  }
  return make_error(Errc::parse, "--buffers {}: expected unaligned, aligned, mixed or registered",
                    text);
}

std::string_view to_string(BufferSource source) {
  switch (source) {
    case BufferSource::unaligned:
      return "unaligned";
    case BufferSource::aligned:
      return "aligned";
    case BufferSource::mixed:
      return "mixed";
    case BufferSource::registered:
      return "registered";
  }
  return "?";
}

Result<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr == text.data()) {
    return make_error(Errc::parse, "size '{}': expected a number with an optional k, m or g", text);
  }
  unsigned shift = 0;
  if (ptr != end) {
    switch (*ptr) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      default:
        return make_error(Errc::parse, "size '{}': unknown suffix '{}' (k, m or g)", text, *ptr);
    }
    ++ptr;
    if (ptr != end && (*ptr == 'i' || *ptr == 'I')) {
      ++ptr;
    }
    if (ptr != end && (*ptr == 'b' || *ptr == 'B')) {
      ++ptr;
    }
  }
  if (ptr != end) {
    return make_error(Errc::parse, "size '{}': trailing '{}'", text, std::string_view(ptr, end));
  }
  if (shift != 0 && value > (~std::uint64_t{0} >> shift)) {
    return make_error(Errc::parse, "size '{}' overflows 64 bits", text);
  }
  return value << shift;
}

Result<std::vector<BlockSizeShare>> parse_block_sizes(std::string_view text) {
  std::vector<BlockSizeShare> shares;
  if (text.find('/') == std::string_view::npos) {
    Result<std::uint64_t> bytes = parse_size(text);
    if (!bytes) {
      return std::move(bytes).error();
    }
    if (*bytes == 0) {
      return make_error(Errc::parse, "--bs {}: a block size of 0", text);
    }
    shares.push_back({*bytes, 100});
    return shares;
  }
  std::uint32_t total = 0;
  while (!text.empty()) {
    const std::size_t colon = text.find(':');
    const std::string_view item = text.substr(0, colon);
    text = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    const std::size_t slash = item.find('/');
    if (slash == std::string_view::npos) {
      return make_error(Errc::parse, "--bs item '{}': expected size/percent", item);
    }
    Result<std::uint64_t> bytes = parse_size(item.substr(0, slash));
    if (!bytes) {
      return std::move(bytes).error();
    }
    std::uint32_t percent = 0;
    const std::string_view p = item.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), percent);
    if (ec != std::errc() || ptr != p.data() + p.size() || percent == 0 || percent > 100 ||
        *bytes == 0) {
      return make_error(Errc::parse, "--bs item '{}': a non-zero size and a percent in 1..100",
                        item);
    }
    total += percent;
    shares.push_back({*bytes, percent});
  }
  if (total != 100) {
    return make_error(Errc::parse, "--bs shares add up to {}%, not 100%", total);
  }
  return shares;
}

void merge_into(JobResult& total, const JobResult& part) {
  JobMeasures& t = total.measures;
  const JobMeasures& p = part.measures;
  t.ios += p.ios;
  t.reads += p.reads;
  t.writes += p.writes;
  t.bytes += p.bytes;
  t.bounced += p.bounced;
  t.seconds += p.seconds;
  t.cpu_ns += p.cpu_ns;
  t.latency.merge(p.latency);
  total.verified_blocks += part.verified_blocks;
  total.verify_errors += part.verify_errors;
  total.unknown_blocks += part.unknown_blocks;
  if (total.first_verify_error.empty()) {
    total.first_verify_error = part.first_verify_error;
  }
  total.pool_waits += part.pool_waits;
  total.cancelled = total.cancelled || part.cancelled;
  if (!total.error && part.error) {
    total.error = part.error;
  }
}

double JobMeasures::iops() const {
  return seconds > 0 ? static_cast<double>(ios) / seconds : 0;
}

double JobMeasures::mib_per_s() const {
  return seconds > 0 ? static_cast<double>(bytes) / (1024.0 * 1024.0) / seconds : 0;
}

double JobMeasures::bounced_share() const {
  return ios > 0 ? static_cast<double>(bounced) / static_cast<double>(ios) : 0;
}

double JobMeasures::cpu_ns_per_io() const {
  return ios > 0 ? static_cast<double>(cpu_ns) / static_cast<double>(ios) : 0;
}

}  // namespace swiotlb::io
