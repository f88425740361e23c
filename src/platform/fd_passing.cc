// Descriptor passing: SCM_RIGHTS messages on sequenced-packet sockets, with
// every wait bounded by poll(), and programs started with one descriptor of
// ours at a fixed number.
//
// Between fork() and exec the child of a multithreaded program may only call
// async-signal-safe functions, so everything spawn() needs (argv, the
// report pipe) is built before the fork and the child does nothing but
// move descriptors and exec.
#include "swiotlb/platform/fd_passing.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <thread>
#include <utility>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)  // linux/close_range.h, for older C libraries
#endif

namespace swiotlb {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A peer sending more than one descriptor is refused; room for a few lets
// us see (and close) the extras instead of having the kernel drop them.
constexpr std::size_t kMaxFdsSeen = 8;

std::string last_error() {
  return errno_text(errno);
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
}

// Waits until `socket` is ready for `events` (or has hung up or failed, which
// the next call on it reports). EINTR restarts the wait with the time left.
Status wait_ready(int socket, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{socket, events, 0};
    const int n = poll(&p, 1, remaining_ms(deadline));
    if (n > 0) {
      return Status::ok();
    }
    if (n == 0) {
      return make_error(Errc::system, "{} on socket {}: the peer did not answer in time", what,
                        socket);
    }
    if (errno != EINTR) {
      return make_error(Errc::system, "poll for {} on socket {} failed: {}", what, socket,
                        last_error());
    }
  }
}

Clock::time_point deadline_after(milliseconds timeout) {
  return Clock::now() + std::max(timeout, milliseconds(0));
}

void attach_fd(msghdr& msg, std::span<char> control, int fd) {
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  cmsghdr* header = CMSG_FIRSTHDR(&msg);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
}

// Every descriptor a received message carried, owned, so that none leaks
// whatever is decided about the message.
std::vector<OwnedFd> take_fds(msghdr& msg) {
  std::vector<OwnedFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  return fds;
}

Result<ReceivedMessage> accept_message(const msghdr& msg, std::size_t bytes,
                                       std::vector<OwnedFd> fds, std::size_t capacity) {
  if ((msg.msg_flags & MSG_TRUNC) != 0) {
    return make_error(Errc::out_of_range,
                      "a message longer than the {} bytes expected arrived; refused", capacity);
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || fds.size() > 1) {
    return make_error(Errc::invalid_argument,
                      "a message carried {}{} descriptors, at most one is accepted; all closed",
                      (msg.msg_flags & MSG_CTRUNC) != 0 ? "more than " : "", fds.size());
  }
  ReceivedMessage received;
  received.bytes = bytes;
  if (!fds.empty() && bytes != 0) {
    received.fd = std::move(fds.front());
  }
  return received;
}

// The child's side of spawn(): only async-signal-safe calls until exec.
// On failure it writes errno to `report_fd` for the parent and exits.
[[noreturn]] void exec_child(const char* program, char* const* argv, int fd, int child_fd,
                             int report_fd) {
  // The program starts with no signal blocked, whatever our threads block.
  // The child has one thread, so the process-wide call is the right one.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);  // NOLINT(concurrency-mt-unsafe): single-threaded child
  if (report_fd == child_fd) {
    report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, child_fd + 1);
  }
  bool placed = fd == child_fd || dup2(fd, child_fd) == child_fd;
  // Whatever this process had open stays here: the program gets stdio and
  // the one descriptor it was given.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  placed = placed && fcntl(child_fd, F_SETFD, 0) == 0;
  if (placed) {
    execv(program, argv);
  }
  const int error = errno;
  if (write(report_fd, &error, sizeof(error)) < 0) {
    _exit(127);
  }
  _exit(127);
}

ChildExit decode(int status) {
  ChildExit exit;
  if (WIFEXITED(status)) {
    exit.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  }
  return exit;
}

// What the child reported before exec: 0 when exec succeeded (the pipe
// closed with nothing in it), else its errno.
int read_exec_report(int report_fd) {
  int child_errno = 0;
  ssize_t n = 0;
  do {
    n = read(report_fd, &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(child_errno)) ? child_errno : 0;
}

}  // namespace

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    reset(other.release());
  }
  return *this;
}

int OwnedFd::release() {
  return std::exchange(fd_, -1);
}

void OwnedFd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

Result<SocketPair> make_socket_pair() {
  std::array<int, 2> fds{-1, -1};
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds.data()) != 0) {
    return make_error(Errc::system, "socketpair(AF_UNIX, SOCK_SEQPACKET) failed: {}", last_error());
  }
  return SocketPair{OwnedFd(fds[0]), OwnedFd(fds[1])};
}

Status send_message(int socket, std::span<const std::byte> payload, int fd, milliseconds timeout) {
  if (payload.empty() || payload.size() > kMaxMessagePayload) {
    return make_error(Errc::invalid_argument, "a message carries 1 to {} bytes (asked to send {})",
                      kMaxMessagePayload, payload.size());
  }
  iovec iov{const_cast<std::byte*>(payload.data()), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (fd >= 0) {
    attach_fd(msg, control, fd);
  }
  const Clock::time_point deadline = deadline_after(timeout);
  for (;;) {
    if (Status ready = wait_ready(socket, POLLOUT, deadline, "send"); !ready) {
      return ready;
    }
    const ssize_t sent = sendmsg(socket, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent == static_cast<ssize_t>(payload.size())) {
      return Status::ok();
    }
    if (sent >= 0) {
      return make_error(Errc::system, "sent {} of {} bytes on socket {}: not a message socket",
                        sent, payload.size(), socket);
    }
    if (errno != EINTR && errno != EAGAIN) {
      return make_error(Errc::system, "sending {} bytes{} on socket {} failed: {}", payload.size(),
                        fd >= 0 ? " and a descriptor" : "", socket, last_error());
    }
  }
}

Result<ReceivedMessage> receive_message(int socket, std::span<std::byte> buffer,
                                        milliseconds timeout) {
  const Clock::time_point deadline = deadline_after(timeout);
  for (;;) {
    if (Status ready = wait_ready(socket, POLLIN, deadline, "receive"); !ready) {
      return ready.error();
    }
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxFdsSeen)> control{};
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n >= 0) {
      return accept_message(msg, static_cast<std::size_t>(n), take_fds(msg), buffer.size());
    }
    // A peer that died with our messages unread resets the connection: it
    // is gone, like one that closed its end.
    if (errno == ECONNRESET) {
      return ReceivedMessage{};
    }
    if (errno != EINTR && errno != EAGAIN) {
      return make_error(Errc::system, "receiving on socket {} failed: {}", socket, last_error());
    }
  }
}

std::string ChildExit::describe() const {
  if (signal != 0) {
    const char* name = sigdescr_np(signal);  // unlike strsignal, thread-safe
    return fmt::format("killed by signal {} ({})", signal, name != nullptr ? name : "unknown");
  }
  return fmt::format("exited with status {}", code);
}

Result<ChildProcess> ChildProcess::spawn(const std::string& program,
                                         const std::vector<std::string>& args, int fd,
                                         int child_fd) {
  if (fd < 0 || child_fd < 3) {
    return make_error(Errc::invalid_argument,
                      "spawn needs an open descriptor (given {}) and a child number of at least "
                      "3 (given {})",
                      fd, child_fd);
  }
  std::vector<std::string> strings{program};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(strings.size() + 1);
  for (std::string& s : strings) {
    argv.push_back(s.data());
  }
  argv.push_back(nullptr);
  std::array<int, 2> report{-1, -1};
  if (pipe2(report.data(), O_CLOEXEC) != 0) {
    return make_error(Errc::system, "pipe2 for starting {} failed: {}", program, last_error());
  }
  OwnedFd report_read(report[0]);
  OwnedFd report_write(report[1]);
  const pid_t pid = fork();
  if (pid < 0) {
    return make_error(Errc::system, "fork for starting {} failed: {}", program, last_error());
  }
  if (pid == 0) {
    exec_child(program.c_str(), argv.data(), fd, child_fd, report_write.get());
  }
  report_write.reset();
  ChildProcess child(pid);
  if (const int child_errno = read_exec_report(report_read.get()); child_errno != 0) {
    (void)child.wait(milliseconds(5000));
    return make_error(Errc::system, "cannot execute {}: {}", program, errno_text(child_errno));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  kill_and_reap();
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_(std::exchange(other.exit_, std::nullopt)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    exit_ = std::exchange(other.exit_, std::nullopt);
  }
  return *this;
}

Status ChildProcess::kill(int signal) {
  if (!running()) {
    return make_error(Errc::invalid_argument, "process {} has already ended", pid_);
  }
  if (::kill(pid_, signal) != 0) {
    return make_error(Errc::system, "kill({}, {}) failed: {}", pid_, signal, last_error());
  }
  return Status::ok();
}

Result<ChildExit> ChildProcess::wait(milliseconds timeout) {
  if (exit_) {
    return *exit_;
  }
  if (pid_ <= 0) {
    return make_error(Errc::invalid_argument, "no process to wait for");
  }
  const Clock::time_point deadline = deadline_after(timeout);
  milliseconds pause(1);
  for (;;) {
    int status = 0;
    const pid_t reaped = waitpid(pid_, &status, WNOHANG);
    if (reaped == pid_) {
      exit_ = decode(status);
      return *exit_;
    }
    if (reaped < 0 && errno != EINTR) {
      return make_error(Errc::system, "waitpid({}) failed: {}", pid_, last_error());
    }
    const int left = remaining_ms(deadline);
    if (left == 0) {
      return make_error(Errc::system, "process {} still running after {} ms", pid_,
                        timeout.count());
    }
    std::this_thread::sleep_for(std::min(pause, milliseconds(left)));
    pause = std::min(pause * 2, milliseconds(50));
  }
}

void ChildProcess::kill_and_reap() {
  if (!running()) {
    return;
  }
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_ = decode(status);
}

}  // namespace swiotlb
