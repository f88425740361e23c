// The device of the shared-window example: a separate program that is given
// pools' memfds (windows) and nothing else of the host, maps them, and
// plays a DMA device through device addresses alone
// (docs/shared-window.md).
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
#include <swiotlb/platform/fd_passing.h>
#include <swiotlb/platform/shared_window.h>
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

using swiotlb::Status;
using swiotlb::window::DeviceWindows;

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
Message serve_transfer(const DeviceWindows& windows, const Message& command) {
  const std::uint64_t dir = command[1];
  if (!is_direction(dir)) {
    return reply(kMalformed);
  }
  const std::optional<std::span<std::byte>> bytes = windows.reach(command[2], command[3]);
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

// What one message asks for: the reply, and whether it ends the session.
struct Answer {
  Message reply;
  bool last = false;
};

// Window messages go to the windows; a command carries no descriptor, and
// one that does is malformed (the descriptor is closed with the message).
// Before the hello nothing but a hello is served; a hello refused ends the
// session.
Answer answer(DeviceWindows& windows, const Message& command, swiotlb::ReceivedMessage& received) {
  if (received.bytes != sizeof(command)) {
    return windows.has_hello() ? Answer{reply(kMalformed)} : Answer{reply(kNoWindow), true};
  }
  if (DeviceWindows::is_window_message(command)) {
    const bool hello = command[0] == kHello && !windows.has_hello();
    const Message done =
        windows.handle(command, std::move(received.fd)).value_or(reply(kMalformed));
    if (done[1] != kOk) {
      std::fprintf(stderr, "shared_window_device: %s\n", windows.last_refusal().c_str());
    }
    return {done, hello && !windows.has_hello()};
  }
  if (!windows.has_hello()) {
    return {reply(kNoWindow), true};
  }
  if (received.fd.valid()) {
    return {reply(kMalformed)};
  }
  switch (command[0]) {
    case kTransfer:
      return {serve_transfer(windows, command)};
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

// Serves messages until the host says goodbye (0) or goes away (1), or its
// hello is refused (2). A message that is too long or carries descriptors
// is malformed, not fatal.
int serve(int socket) {
  DeviceWindows windows;
  for (;;) {
    Message command{};
    auto got = swiotlb::receive_message(socket, std::as_writable_bytes(std::span(command)),
                                        windows.has_hello() ? kIdleTimeout : kHelloTimeout);
    if (!got && (got.error().code() == swiotlb::Errc::system || !windows.has_hello())) {
      fail(got.error());
      return windows.has_hello() ? 1 : 2;
    }
    if (got && got->bytes == 0) {
      return fail(
          swiotlb::Error(swiotlb::Errc::system, "the host went away without saying goodbye"));
    }
    const Answer a = got ? answer(windows, command, *got) : Answer{reply(kMalformed)};
    if (Status sent = send(socket, a.reply); !sent) {
      return fail(sent.error());
    }
    if (a.last) {
      return windows.has_hello() ? 0 : 2;
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
  return serve(socket);
}
