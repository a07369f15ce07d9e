#include "processes.hpp"

#include "switchboard/realtime.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

child_process::child_process(const std::vector<std::string>& argv, const std::string& log_file) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(args[0], args.data());
    _exit(127);
  }
}

namespace {

// The ids of this process's threads but the calling one.
std::vector<pid_t> other_threads() {
  std::vector<pid_t> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    const auto tid = static_cast<pid_t>(std::stoi(task.path().filename().string()));
    if (tid != gettid()) out.push_back(tid);
  }
  return out;
}

}  // namespace

int nice_other_threads(int nice) {
  int failed = 0;
  for (const auto tid : other_threads())
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) != 0) ++failed;
  return failed;
}

int realtime_other_threads(int priority) {
  int failed = 0;
  for (const auto tid : other_threads())
    if (!make_realtime(priority, tid)) ++failed;
  return failed;
}

child_process::~child_process() {
  if (pid_ > 0 && status_ < 0) stop();
}

bool child_process::running() {
  if (status_ >= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int child_process::wait() {
  if (status_ >= 0) return status_;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return status_;
}

int child_process::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + grace;
  while (running() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (running()) kill(pid_, SIGKILL);
  return wait();
}

std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

std::optional<std::string> http_get(std::uint16_t port, const std::string& path) {
  try {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string reply;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(reply), ec);  // HTTP/1.0: until the server closes
    if (!reply.starts_with("HTTP/1.1 200") && !reply.starts_with("HTTP/1.0 200")) return std::nullopt;
    const auto body = reply.find("\r\n\r\n");
    return body == std::string::npos ? std::string() : reply.substr(body + 4);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace switchboard::bench
