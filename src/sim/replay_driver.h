// Feeding a trace's events to a replayer, from a parsed Trace or from an
// EventPipeline's blocks, with progress callbacks now and then. Private to
// the sim layer: the plain replay (replay.cc) and the dynamic one
// (dynamic_replay.cc) share it, so that both stream large files alike.
//
// A Replayer has:
//   void add_device(const TraceDevice&);   // before the events that name it
//   bool replay(const TraceEvent&);        // false once the replay should stop
//   std::uint64_t events() const;          // events replayed so far
// and may have:
//   void pool_event(const TracePoolEvent&);  // where the trace has it, among the events
//   void look_ahead(std::span<const TraceEvent>);  // a hint: the events that come next
// (a replayer without them ignores pool events and replays without hints).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "event_pipeline.h"
#include "swiotlb/core/error.h"
#include "swiotlb/sim/replay.h"
#include "swiotlb/sim/trace.h"
#include "trace_reader.h"

namespace swiotlb::sim {

// Events between two progress callbacks.
inline constexpr std::uint64_t kProgressEvery = std::uint64_t{1} << 16;
// Below this size a text is parsed first and replayed after: a second
// thread would cost more than it saves.
inline constexpr std::size_t kStreamingThreshold = std::size_t{1} << 20;

inline void report_progress(const ProgressFn& progress, std::uint64_t done, std::uint64_t total,
                            double fraction) {
  if (progress) {
    progress({done, total, fraction});
  }
}

// Replays events[0, count), each after showing the replayer the events
// that follow it in the run (look_ahead); false once the replayer asks to
// stop.
template <class Replayer>
bool replay_run(const TraceEvent* events, std::size_t count, Replayer& replayer) {
  for (std::size_t i = 0; i < count; ++i) {
    if constexpr (requires { replayer.look_ahead(std::span<const TraceEvent>{}); }) {
      replayer.look_ahead(std::span<const TraceEvent>(events + i + 1, count - i - 1));
    }
    if (!replayer.replay(events[i])) {
      return false;
    }
  }
  return true;
}

template <class Replayer>
void pass_pool_event(Replayer& replayer, const TracePoolEvent& event) {
  if constexpr (requires { replayer.pool_event(event); }) {
    replayer.pool_event(event);
  }
}

// Replays the trace's events until the replayer asks to stop.
template <class Replayer>
void replay_events(const Trace& trace, Replayer& replayer, const ProgressFn& progress) {
  for (const TraceDevice& device : trace.devices) {
    replayer.add_device(device);
  }
  const std::uint64_t total = trace.events.size();
  auto pool_event = trace.pool_events.begin();
  std::uint64_t index = 0;
  bool going = true;
  while (going && index < total) {
    for (; pool_event != trace.pool_events.end() && pool_event->before_event <= index;
         ++pool_event) {
      pass_pool_event(replayer, *pool_event);
    }
    // A run ends at the next pool event and at the next progress report.
    std::uint64_t end = std::min(total, (index / kProgressEvery + 1) * kProgressEvery);
    if (pool_event != trace.pool_events.end()) {
      end = std::min(end, pool_event->before_event);
    }
    going = replay_run(trace.events.data() + index, end - index, replayer);
    index = end;
    if (going && index % kProgressEvery == 0) {
      report_progress(progress, replayer.events(), total,
                      static_cast<double>(replayer.events()) / static_cast<double>(total));
    }
  }
  for (; going && pool_event != trace.pool_events.end(); ++pool_event) {
    pass_pool_event(replayer, *pool_event);  // after the last event
  }
  report_progress(progress, replayer.events(), total, 1.0);
}

// Replays the pipeline's blocks as they come.
template <class Replayer>
Status replay_blocks(EventPipeline& pipeline, Replayer& replayer, const TraceReader& reader,
                     const ProgressFn& progress) {
  std::uint64_t next_progress = kProgressEvery;
  bool going = true;
  while (going) {
    const EventBlock* block = pipeline.next();
    if (block == nullptr) {
      break;
    }
    for (const TraceDevice& device : block->new_devices) {
      replayer.add_device(device);
    }
    for (const TracePoolEvent& event : block->new_pool_events) {
      pass_pool_event(replayer, event);
    }
    going = replay_run(block->events.data(), block->events.size(), replayer);
    if (replayer.events() >= next_progress) {
      next_progress = replayer.events() + kProgressEvery;
      report_progress(progress, replayer.events(), 0,
                      static_cast<double>(block->bytes_read) /
                          static_cast<double>(std::max<std::size_t>(reader.bytes_total(), 1)));
    }
    pipeline.release(block);
  }
  report_progress(progress, replayer.events(), replayer.events(), 1.0);
  return pipeline.finish();
}

}  // namespace swiotlb::sim
