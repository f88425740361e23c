// EventPipeline: the reading thread's loop and the hand-over of blocks.
#include "event_pipeline.h"

namespace swiotlb::sim {
namespace {

// Four blocks of 8192 events: 2 MiB in flight, enough to keep both threads
// busy, small enough to stay in cache.
constexpr std::size_t kBlocks = 4;
constexpr std::size_t kBlockEvents = 8192;

}  // namespace

EventPipeline::EventPipeline(TraceReader& reader)
    : reader_(reader), blocks_(kBlocks), full_(kBlocks) {
  free_.reserve(kBlocks);
  for (EventBlock& block : blocks_) {
    block.events.reserve(kBlockEvents);
    free_.push_back(&block);
  }
  thread_ = std::thread([this] { read_loop(); });
}

EventPipeline::~EventPipeline() {
  {
    std::lock_guard guard(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void EventPipeline::read_loop() {
  std::size_t devices_published = 0;
  std::size_t pool_events_published = 0;
  for (;;) {
    EventBlock* block = nullptr;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stop_ || !free_.empty(); });
      if (stop_) {
        break;
      }
      block = free_.back();
      free_.pop_back();
    }
    const bool more = fill(*block, devices_published, pool_events_published);
    {
      std::lock_guard guard(mutex_);
      full_[(full_head_ + full_count_++) % full_.size()] = block;
      reading_done_ = !more;
    }
    changed_.notify_all();
    if (!more) {
      return;
    }
  }
  std::lock_guard guard(mutex_);
  reading_done_ = true;
}

// Fills one block; false when there is nothing more to read.
bool EventPipeline::fill(EventBlock& block, std::size_t& devices_published,
                         std::size_t& pool_events_published) {
  block.events.clear();
  block.new_devices.clear();
  const std::vector<TraceDevice>& devices = reader_.header().devices;
  block.new_devices.assign(devices.begin() + static_cast<std::ptrdiff_t>(devices_published),
                           devices.end());
  devices_published = devices.size();
  const std::vector<TracePoolEvent>& pool_events = reader_.header().pool_events;
  block.new_pool_events.assign(
      pool_events.begin() + static_cast<std::ptrdiff_t>(pool_events_published), pool_events.end());
  pool_events_published = pool_events.size();
  Result<bool> more = reader_.read_events(block.events, kBlockEvents);
  block.bytes_read = reader_.bytes_read();
  if (!more) {
    error_ = std::move(more).error();
    return false;
  }
  return *more;
}

const EventBlock* EventPipeline::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return full_count_ != 0 || reading_done_; });
  if (full_count_ == 0) {
    return nullptr;
  }
  EventBlock* block = full_[full_head_];
  full_head_ = (full_head_ + 1) % full_.size();
  --full_count_;
  return block;
}

void EventPipeline::release(const EventBlock* block) {
  {
    std::lock_guard guard(mutex_);
    free_.push_back(const_cast<EventBlock*>(block));
  }
  changed_.notify_all();
}

Status EventPipeline::finish() {
  {
    std::lock_guard guard(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (error_) {
    return *error_;
  }
  return {};
}

}  // namespace swiotlb::sim
