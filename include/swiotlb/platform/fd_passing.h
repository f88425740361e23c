// Handing file descriptors to another process: to a program this process
// starts (inherited at the number the program expects) and to a peer that
// is already running (over a connected AF_UNIX socket, as SCM_RIGHTS
// ancillary data, with a small payload in the same message).
//
// This is how a pool's memfd reaches a process that plays the device
// (docs/shared-window.md): the peer is given the descriptor and nothing
// else of ours, and can map only what the descriptor holds.
//
// Every call that waits on a peer takes a timeout, so that a peer that
// hangs is reported instead of hanging the caller; a peer that is gone is
// seen at once (end of file, EPIPE) and never raises SIGPIPE. Failures are
// values whose message carries the system's reason (strerror text).
//
// Thread safety: OwnedFd and ChildProcess have one owner at a time and no
// locks of their own. The free functions may be called from any thread;
// two threads receiving on one socket each get whole messages, in an
// unspecified order.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "swiotlb/core/error.h"

namespace swiotlb {

// A file descriptor with one owner, closed when the owner goes.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() { reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(other.release()) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// The most bytes one message may carry: enough for a command, small enough
// to sit on the stack of either side.
inline constexpr std::size_t kMaxMessagePayload = 4096;

struct SocketPair {
  OwnedFd first;
  OwnedFd second;
};

// Two connected AF_UNIX SOCK_SEQPACKET sockets, close-on-exec. Sequenced
// packets keep message boundaries, so a message is received whole or not
// at all, and a peer that closes its end (or dies) is end of file here.
Result<SocketPair> make_socket_pair();

// Sends `payload` (1 to kMaxMessagePayload bytes) as one message on a
// connected message socket, with a copy of `fd` attached when fd >= 0.
// Waits at most `timeout` for room in the socket. Fails on an empty or
// oversized payload, a timeout, or a socket the system refuses (EPIPE when
// the peer is gone).
Status send_message(int socket, std::span<const std::byte> payload, int fd,
                    std::chrono::milliseconds timeout);

struct ReceivedMessage {
  // Payload bytes written to the buffer; 0 means the peer closed its end
  // or died (the connection was reset) and nothing more is to be acted on
  // (send_message never sends an empty message).
  std::size_t bytes = 0;
  OwnedFd fd;  // the descriptor that came with it (close-on-exec), if any
};

// Waits at most `timeout` for one message and puts its payload in
// `buffer`. Fails on a timeout, on a message longer than the buffer (its
// tail would be lost), on a message carrying more than one descriptor, or
// when the system refuses; a descriptor that came with a refused message
// is closed, never leaked.
Result<ReceivedMessage> receive_message(int socket, std::span<std::byte> buffer,
                                        std::chrono::milliseconds timeout);

// How a child process ended.
struct ChildExit {
  int code = -1;   // its exit status, when it exited
  int signal = 0;  // the signal that ended it, else 0
  bool ok() const { return signal == 0 && code == 0; }
  std::string describe() const;  // "exited with status 0", "killed by signal 9 (Killed)"
};

// A program started by spawn(), killed and reaped when it is dropped while
// still running, so that no child outlives its owner or stays a zombie.
class ChildProcess {
 public:
  // Starts `program` (a path; no PATH search) with `args` as argv[1...].
  // Our descriptor `fd` becomes its descriptor `child_fd` (at least 3);
  // it shares our stdin, stdout and stderr, and every other descriptor is
  // closed at exec, whether or not it was close-on-exec here (on Linux
  // 5.11 and later, which have CLOSE_RANGE_CLOEXEC). exec replaces the
  // whole address space, so the program holds no mapping of ours.
  // Fails when fork() fails or the program cannot be executed (the reason
  // execv gave, reported back through a pipe).
  static Result<ChildProcess> spawn(const std::string& program,
                                    const std::vector<std::string>& args, int fd, int child_fd);

  ChildProcess() = default;  // no process
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !exit_; }

  // Sends `signal`; fails if the child has already been reaped.
  Status kill(int signal);

  // Waits at most `timeout` for the child to end and reaps it. Once it has
  // ended, every call returns the same ChildExit at once.
  Result<ChildExit> wait(std::chrono::milliseconds timeout);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void kill_and_reap();

  pid_t pid_ = -1;
  std::optional<ChildExit> exit_;
};

}  // namespace swiotlb
