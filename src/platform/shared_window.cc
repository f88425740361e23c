// Both ends of a shared window: the host's serialized channel and the
// device process's set of mapped windows.
#include "swiotlb/platform/shared_window.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace swiotlb::window {

WindowChannel::WindowChannel(OwnedFd socket, std::chrono::milliseconds timeout)
    : socket_(std::move(socket)), timeout_(timeout) {}

Result<Message> WindowChannel::exchange(const Message& message, int fd) {
  std::lock_guard guard(lock_);
  if (broken_) {
    return make_error(broken_->code(), "the device process's channel broke earlier: {}",
                      broken_->message());
  }
  Result<Message> answer = exchange_locked(message, fd);
  if (!answer) {
    broken_ = answer.error();
  }
  return answer;
}

Status WindowChannel::close() {
  Result<Message> answer = exchange({kBye, 0, 0, 0, 0, 0});
  std::lock_guard guard(lock_);
  closed_ = true;
  if (!broken_) {
    broken_ = Error(Errc::invalid_argument, "the device process was told goodbye");
  }
  if (!answer) {
    return answer.error();
  }
  if ((*answer)[1] != kOk) {
    return make_error(Errc::system, "the device process answered goodbye with status {}",
                      (*answer)[1]);
  }
  return {};
}

bool WindowChannel::closed() const {
  std::lock_guard guard(lock_);
  return closed_;
}

Result<Message> WindowChannel::exchange_locked(const Message& message, int fd) {
  if (Status sent = send_message(socket_.get(), std::as_bytes(std::span(message)), fd, timeout_);
      !sent) {
    return sent.error();
  }
  Message answer{};
  auto got = receive_message(socket_.get(), std::as_writable_bytes(std::span(answer)), timeout_);
  if (!got) {
    return std::move(got).error();
  }
  if (got->bytes != sizeof(answer) || answer[0] != kReply) {
    return make_error(Errc::system, "the device process {} to a message of kind {}",
                      got->bytes == 0 ? "closed the connection instead of replying"
                                      : "sent something other than a reply",
                      message[0]);
  }
  return answer;
}

std::optional<Message> DeviceWindows::handle(const Message& message, OwnedFd fd) {
  switch (message[0]) {
    case kHello: {
      if (hello_) {
        return refuse(kMalformed, "a second hello");
      }
      if (message[1] != kProtocolVersion) {
        return refuse(kNoWindow, fmt::format("a hello of version {}; this device speaks {}",
                                             message[1], kProtocolVersion));
      }
      Message answer = add(0, message[2], message[3], fd);
      hello_ = answer[1] == kOk;
      return answer;
    }
    case kAddWindow:
      if (!hello_) {
        return refuse(kNoWindow, "a window added before the hello");
      }
      return add(message[1], message[2], message[3], fd);
    case kRemoveWindow:
      return remove(message[1], fd);
    default:
      return std::nullopt;
  }
}

Message DeviceWindows::refuse(std::uint64_t status, std::string reason) {
  last_refusal_ = std::move(reason);
  return make_reply(status);
}

Message DeviceWindows::add(std::uint64_t number, std::uint64_t bytes, std::uint64_t dma_base,
                           const OwnedFd& fd) {
  if (!fd.valid()) {
    return refuse(kNoWindow, fmt::format("window {} came without a descriptor", number));
  }
  if (bytes == 0 || dma_base + (bytes - 1) < dma_base) {
    return refuse(kNoWindow, fmt::format("window {} of {} bytes at DMA {:#x} is empty or wraps",
                                         number, bytes, dma_base));
  }
  for (const Window& w : windows_) {
    if (w.number == number || (dma_base < w.dma_base + w.bytes && w.dma_base < dma_base + bytes)) {
      return refuse(
          kNoWindow,
          fmt::format("window {} at DMA {:#x} ({} bytes) {} window {}", number, dma_base, bytes,
                      w.number == number ? "reuses the number of" : "overlaps", w.number));
    }
  }
  const int seals = fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    return refuse(kNoWindow,
                  fmt::format("window {}'s descriptor is not sealed against shrinking", number));
  }
  // Anywhere: the device needs the window's bytes, not the host's addresses.
  auto region = Region::attach({.fd = fd.get(), .bytes = static_cast<std::size_t>(bytes)});
  if (!region) {
    return refuse(kNoWindow, fmt::format("window {}: {}", number, region.error().message()));
  }
  windows_.push_back({number, dma_base, bytes, std::move(*region)});
  return make_reply(kOk, 0, 0, bytes);
}

Message DeviceWindows::remove(std::uint64_t number, const OwnedFd& fd) {
  if (fd.valid()) {
    return refuse(kMalformed, "a remove window message carried a descriptor");
  }
  auto it = std::find_if(windows_.begin(), windows_.end(),
                         [number](const Window& w) { return w.number == number; });
  if (it == windows_.end() || number == 0) {
    return refuse(kNoSuchWindow, fmt::format("no window {} to remove{}", number,
                                             number == 0 ? " (the hello's stays)" : ""));
  }
  windows_.erase(it);  // unmapped with its region
  return make_reply(kOk);
}

std::optional<std::span<std::byte>> DeviceWindows::reach(std::uint64_t dma,
                                                         std::uint64_t size) const {
  for (const Window& w : windows_) {
    if (size != 0 && size <= w.bytes && dma >= w.dma_base && dma - w.dma_base <= w.bytes - size) {
      return std::span<std::byte>(w.region->data() + (dma - w.dma_base), size);
    }
  }
  return std::nullopt;
}

}  // namespace swiotlb::window
