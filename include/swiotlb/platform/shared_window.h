// The two ends of a shared window (docs/shared-window.md), for a host and
// a device process of one's own:
//  - WindowChannel, the host's end of the socket: one exchange (a message
//    and its reply) at a time, whichever thread asks, each bounded by a
//    timeout;
//  - DeviceWindows, the device process's view of the host: the windows it
//    was handed (a hello, then add and remove window messages), each a
//    memfd mapped wherever its system puts it, and nothing else.
//
// The message layout is window_protocol.h's.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"
#include "swiotlb/core/export.h"
#include "swiotlb/platform/fd_passing.h"
#include "swiotlb/platform/region.h"
#include "swiotlb/platform/window_protocol.h"

namespace swiotlb::window {

// The host's end of the socket to a device process.
//
// Thread safety: exchange() may be called from any thread; exchanges are
// serialized, so that every reply goes to the thread that sent its message
// (an IoTlb announces pools from its worker while the application sends
// transfers).
// Errors: after any failed exchange (the peer gone, a timeout, a message
// that is no reply) the channel is broken: a late reply could no longer be
// told from the next one, so every later exchange fails at once with the
// first failure's reason.
class SWIOTLB_API WindowChannel {
 public:
  WindowChannel(OwnedFd socket, std::chrono::milliseconds timeout);

  // Sends `message` (with a copy of `fd` when fd >= 0) and waits at most the
  // timeout for its reply, a kReply message. Errors: system (sending failed,
  // no reply in time, the peer closed the connection or sent something
  // other than a reply), and a broken channel's first error.
  Result<Message> exchange(const Message& message, int fd = -1);

  // Says goodbye (kBye) and waits for the reply; from then on every
  // exchange fails and closed() is true: the device process exits and its
  // mappings go with it, so nobody needs to tell it more. Errors: those of
  // exchange(), and a reply whose status is not kOk.
  Status close();
  bool closed() const;

  int socket() const { return socket_.get(); }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  Result<Message> exchange_locked(const Message& message, int fd);

  const OwnedFd socket_;
  const std::chrono::milliseconds timeout_;
  mutable std::mutex lock_;
  std::optional<Error> broken_;  // guarded by lock_
  bool closed_ = false;          // guarded by lock_
};

// The device process's windows. A window is a memfd sealed against
// shrinking (an unsealed one could be cut short under the mapping, turning
// an access into SIGBUS), mapped shared, once, at an address of the
// system's choosing; the device knows it only by its DMA base and size.
//
// Thread safety: none; one thread serves the socket.
class SWIOTLB_API DeviceWindows {
 public:
  // Acts on a hello, add window or remove window message, whose descriptor
  // (if any) came in `fd`, and returns the reply; nothing for any other
  // kind. A refused message changes nothing: kNoWindow (no descriptor, a
  // wrong version, an empty or wrapping window, one overlapping another, an
  // unsealed memfd, one shorter than announced, a window number in use, an
  // add before the hello), kNoSuchWindow, kMalformed (a second hello, a
  // descriptor with a remove).
  std::optional<Message> handle(const Message& message, OwnedFd fd);
  // Whether handle() acts on a message of this kind.
  static bool is_window_message(const Message& message) {
    return message[0] == kHello || message[0] == kAddWindow || message[0] == kRemoveWindow;
  }

  // The bytes behind [dma, dma + size), when all of them lie in one window.
  // Written so that no sum can wrap.
  std::optional<std::span<std::byte>> reach(std::uint64_t dma, std::uint64_t size) const;

  bool has_hello() const { return hello_; }
  std::size_t window_count() const { return windows_.size(); }
  // The reason the last message was refused, for the device's log.
  const std::string& last_refusal() const { return last_refusal_; }

 private:
  struct Window {
    std::uint64_t number = 0;
    std::uint64_t dma_base = 0;
    std::uint64_t bytes = 0;  // as announced; the mapping may end on a later page
    std::unique_ptr<Region> region;
  };
  Message add(std::uint64_t number, std::uint64_t bytes, std::uint64_t dma_base, const OwnedFd& fd);
  Message remove(std::uint64_t number, const OwnedFd& fd);
  Message refuse(std::uint64_t status, std::string reason);

  std::vector<Window> windows_;
  bool hello_ = false;
  std::string last_refusal_;
};

// A reply with its status and counts.
inline Message make_reply(std::uint64_t status, std::uint64_t checked = 0, std::uint64_t wrong = 0,
                          std::uint64_t written = 0) {
  return {kReply, status, checked, wrong, written, 0};
}

}  // namespace swiotlb::window
