// Child processes of switchboard-bench (the server, the migration) and loopback helpers.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::bench {

// A started program; its output goes to `log_file`. Destruction stops it (SIGTERM, then SIGKILL).
class child_process {
 public:
  child_process(const std::vector<std::string>& argv, const std::string& log_file);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  int pid() const { return pid_; }
  bool running();
  // Waits for the exit; returns the exit status (128 + signal when killed).
  int wait();
  // SIGTERM, and SIGKILL after `grace`; returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  int pid_ = -1;
  int status_ = -1;
};

// Sets the nice value of every thread of this process but the calling one (Linux: nice is per
// thread; threads started later inherit their creator's). Returns how many it could not set.
int nice_other_threads(int nice);

// Puts every thread of this process but the calling one under SCHED_FIFO at `priority`, as if
// the PBX and the desktops had CPUs of their own. Returns how many it could not set.
int realtime_other_threads(int priority);

// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

// GET http://127.0.0.1:<port><path>: the body when the answer is 200, else nothing.
std::optional<std::string> http_get(std::uint16_t port, const std::string& path);

}  // namespace switchboard::bench
