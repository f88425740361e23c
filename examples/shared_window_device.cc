// The device of the shared-window example: a separate program that is given
// a pool's memfd and nothing else of the host, maps it, and plays a DMA
// device through device addresses alone (docs/shared-window.md).
//
// example_shared_window_host starts it with a connected socket at
// descriptor 3 (or the number given as its only argument). The host sends
// the memfd with the window's size and DMA base; this program maps the
// memfd wherever the system puts it and from then on knows the host only
// through DMA addresses: an address becomes an offset in the window
// (dma - dma_base), and an address outside the window is refused, since
// there is nothing of the host's there to reach. This process never has a
// mapping of any other host memory: it was exec'd, so it started with an
// address space of its own.
//
// Every command gets one reply, and a malformed one is answered as such;
// nothing a host sends can make this program crash. It exits 0 after the
// host says goodbye, non-zero when the host goes away without it or the
// window cannot be mapped.
#include <fcntl.h>
#include <swiotlb/platform/fd_passing.h>
#include <swiotlb/platform/region.h>
#include <swiotlb/platform/window_protocol.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace {

using swiotlb::Result;
using swiotlb::Status;

// The protocol (docs/shared-window.md): every message is six 64-bit words
// in the byte order of the machine both processes run on; word 0 is the kind.
using namespace swiotlb::window;  // the protocol (window_protocol.h)

// The kernel's numbering of DMA directions, as the host's Direction.
constexpr std::uint64_t kBidirectional = 0;
constexpr std::uint64_t kToDevice = 1;
constexpr std::uint64_t kFromDevice = 2;

constexpr int kDefaultSocket = 3;
constexpr auto kHelloTimeout = std::chrono::seconds(30);
// A host that is alive but sends nothing for this long is taken as stuck;
// a host that is gone is seen at once (end of file).
constexpr auto kIdleTimeout = std::chrono::seconds(120);
constexpr auto kReplyTimeout = std::chrono::seconds(30);

// The host's memory as this device sees it: one window, at a DMA base.
struct Window {
  std::unique_ptr<swiotlb::Region> region;
  std::uint64_t dma_base = 0;
  std::uint64_t bytes = 0;  // as announced; the mapping may end on a later page

  // The bytes behind [dma, dma + size), or nothing when any of them lies
  // outside the window. Written so that no sum can wrap.
  std::optional<std::span<std::byte>> reach(std::uint64_t dma, std::uint64_t size) const {
    if (size == 0 || size > bytes || dma < dma_base || dma - dma_base > bytes - size) {
      return std::nullopt;
    }
    return std::span<std::byte>(region->data() + (dma - dma_base), size);
  }
};

Message reply(std::uint64_t status, std::uint64_t checked = 0, std::uint64_t wrong = 0,
              std::uint64_t written = 0) {
  return {kReply, status, checked, wrong, written, 0};
}

Status send(int socket, const Message& message) {
  return swiotlb::send_message(socket, std::as_bytes(std::span(message)), -1, kReplyTimeout);
}

bool is_direction(std::uint64_t dir) {
  return dir == kBidirectional || dir == kToDevice || dir == kFromDevice;
}

// One transfer command: check what the host sent, write what it expects.
Message serve_transfer(const Window& window, const Message& command) {
  const std::uint64_t dir = command[1];
  if (!is_direction(dir)) {
    return reply(kMalformed);
  }
  const std::optional<std::span<std::byte>> bytes = window.reach(command[2], command[3]);
  if (!bytes) {
    return reply(command[3] == 0 ? kMalformed : kOutsideWindow);
  }
  Message answer = reply(kOk);
  if (dir != kFromDevice) {
    answer[2] = bytes->size();
    answer[3] = pattern_mismatches(*bytes, command[4]);
  }
  if (dir != kToDevice) {
    fill_pattern(*bytes, command[5]);
    answer[4] = bytes->size();
  }
  return answer;
}

// A memfd its sender could shrink would turn our accesses past the new end
// into SIGBUS; only a window sealed against shrinking is mapped.
Status check_sealed(int fd) {
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    return swiotlb::make_error(swiotlb::Errc::invalid_argument,
                               "the window's descriptor is not sealed against shrinking");
  }
  return Status::ok();
}

Result<Window> map_window(const Message& hello, const swiotlb::OwnedFd& fd) {
  if (hello[0] != kHello || hello[1] != kProtocolVersion || !fd.valid()) {
    return swiotlb::make_error(swiotlb::Errc::invalid_argument,
                               "expected a hello of version {} with a descriptor",
                               kProtocolVersion);
  }
  const std::uint64_t bytes = hello[2];
  const std::uint64_t dma_base = hello[3];
  if (bytes == 0 || dma_base + bytes < dma_base) {
    return swiotlb::make_error(swiotlb::Errc::invalid_argument,
                               "a window of {} bytes at DMA {:#x} is empty or wraps", bytes,
                               dma_base);
  }
  if (Status sealed = check_sealed(fd.get()); !sealed) {
    return sealed.error();
  }
  // Anywhere: the device needs the window's bytes, not the host's addresses.
  auto region = swiotlb::Region::attach({.fd = fd.get(), .bytes = bytes});
  if (!region) {
    return std::move(region).error();
  }
  return Window{std::move(*region), dma_base, bytes};
}

Result<Window> receive_window(int socket) {
  Message hello{};
  auto got =
      swiotlb::receive_message(socket, std::as_writable_bytes(std::span(hello)), kHelloTimeout);
  if (!got) {
    return std::move(got).error();
  }
  if (got->bytes != sizeof(hello)) {
    (void)send(socket, reply(kNoWindow));
    return swiotlb::make_error(swiotlb::Errc::invalid_argument, "a hello of {} bytes", got->bytes);
  }
  Result<Window> window = map_window(hello, got->fd);
  if (!window) {
    (void)send(socket, reply(kNoWindow));
    return window;
  }
  if (Status sent = send(socket, reply(kOk, 0, 0, window->bytes)); !sent) {
    return sent.error();
  }
  return window;
}

// What one message asks for: the reply, and whether it ends the session.
struct Answer {
  Message reply;
  bool last = false;
};

// A command carries no descriptor: one that does is malformed (and the
// descriptor is closed with the received message).
Answer answer(const Window& window, const Message& command,
              const swiotlb::ReceivedMessage& received) {
  if (received.bytes != sizeof(command) || received.fd.valid()) {
    return {reply(kMalformed)};
  }
  switch (command[0]) {
    case kTransfer:
      return {serve_transfer(window, command)};
    case kBye:
      return {reply(kOk), true};
    default:
      return {reply(kMalformed)};
  }
}

int fail(const swiotlb::Error& error) {
  std::fprintf(stderr, "shared_window_device: %s\n", error.message().c_str());
  return 1;
}

// Serves commands until the host says goodbye (0) or goes away (1). A
// message that is too long or carries descriptors is malformed, not fatal.
int serve(int socket, const Window& window) {
  for (;;) {
    Message command{};
    auto got =
        swiotlb::receive_message(socket, std::as_writable_bytes(std::span(command)), kIdleTimeout);
    if (!got && got.error().code() == swiotlb::Errc::system) {
      return fail(got.error());
    }
    if (got && got->bytes == 0) {
      return fail(
          swiotlb::Error(swiotlb::Errc::system, "the host went away without saying goodbye"));
    }
    const Answer a = got ? answer(window, command, *got) : Answer{reply(kMalformed)};
    if (Status sent = send(socket, a.reply); !sent) {
      return fail(sent.error());
    }
    if (a.last) {
      return 0;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int socket = kDefaultSocket;
  if (argc > 1) {
    char* end = nullptr;
    const long n = std::strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || n < 0 || n > 65535) {
      std::fprintf(stderr, "usage: %s [SOCKET_FD]\n", argv[0]);
      return 2;
    }
    socket = static_cast<int>(n);
  }
  Result<Window> window = receive_window(socket);
  if (!window) {
    std::fprintf(stderr, "shared_window_device: %s\n", window.error().message().c_str());
    return 2;
  }
  return serve(socket, *window);
}
