// EventPipeline: a TraceReader on a thread of its own, handing its events to
// the caller in blocks, so that parsing overlaps replay. Private to the sim
// layer. A block also carries the pool events read before its events.
//
// A fixed ring of blocks passes between the two threads under one mutex: the
// reader fills a free block, the caller replays it and gives it back. Block
// buffers are reused, so the steady state allocates nothing. A block carries
// the devices declared since the previous block (the reader ends a block at
// every `# device` line), so the caller knows a device before its events.
//
// Synchronization: a block belongs to the reader from the moment it is
// taken from the free list until it is published, then to the caller until
// it is released; the mutex orders the hand-overs. The reader object itself
// is touched only by the reading thread until done() (join) returns.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/sim/trace.h"
#include "trace_reader.h"

namespace swiotlb::sim {

struct EventBlock {
  std::vector<TraceDevice> new_devices;  // declared before this block's events
  // Pool events read since the previous block: they come before this
  // block's events (the reader ends a block at each one).
  std::vector<TracePoolEvent> new_pool_events;
  std::vector<TraceEvent> events;
  std::size_t bytes_read = 0;  // the reader's position after the block
};

class EventPipeline {
 public:
  // Starts reading. REQUIRES: reader.read_header() succeeded, and `reader`
  // outlives the pipeline.
  explicit EventPipeline(TraceReader& reader);
  // Stops the reader early if it is still going, and waits for it.
  ~EventPipeline();
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  // The next block, or nullptr when the text is read or reading failed.
  // Each block must be released before the next call.
  const EventBlock* next();
  void release(const EventBlock* block);

  // Waits for the reader and returns how it ended. After it, the reader's
  // header() (bad lines, comments) may be read.
  Status finish();

 private:
  void read_loop();
  bool fill(EventBlock& block, std::size_t& devices_published, std::size_t& pool_events_published);

  TraceReader& reader_;
  std::vector<EventBlock> blocks_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // Both hold at most every block: sized once, they never allocate.
  std::vector<EventBlock*> free_;  // guarded by mutex_; any order
  std::vector<EventBlock*> full_;  // guarded by mutex_; a ring in reading order
  std::size_t full_head_ = 0;      // guarded by mutex_
  std::size_t full_count_ = 0;     // guarded by mutex_
  bool reading_done_ = false;      // guarded by mutex_
  bool stop_ = false;              // guarded by mutex_
  std::optional<Error> error_;     // written by the reader before reading_done_
  std::thread thread_;
};

}  // namespace swiotlb::sim
