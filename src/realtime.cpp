// SCHED_FIFO for the threads of the route's path, what they cost, and the governor that gives
// it up when they cost too much (see realtime.hpp).
#include "switchboard/realtime.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace switchboard {
namespace {

result<void> set_policy(pid_t tid, int policy, int priority, const std::string& refused) {
  sched_param param{};
  param.sched_priority = priority;
  if (::sched_setscheduler(tid, policy, &param) != 0) {
    const int e = errno;
    return error{std::error_code(e, std::generic_category()), e == EPERM ? refused : "sched_setscheduler"};
  }
  return {};
}

// utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks), where schedstat is missing.
std::optional<std::chrono::nanoseconds> ticks_of(pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  const auto name_end = text.rfind(')');  // the name may hold spaces and parentheses
  if (name_end == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(name_end + 2));
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  long long user = 0;
  long long system = 0;
  if (!(fields >> user >> system)) return std::nullopt;
  const long per_second = ::sysconf(_SC_CLK_TCK);
  return std::chrono::nanoseconds((user + system) * (1'000'000'000LL / (per_second > 0 ? per_second : 100)));
}

}  // namespace

result<void> make_realtime(int priority, pid_t tid) {
  if (priority < 1 || priority > 99)
    return error{errc::config_invalid, "real-time priority " + std::to_string(priority) + " is not within 1-99"};
  return set_policy(tid, SCHED_FIFO | SCHED_RESET_ON_FORK, priority,
                    "SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO of " + std::to_string(priority));
}

result<void> make_normal(pid_t tid) { return set_policy(tid, SCHED_OTHER, 0, "SCHED_OTHER needs CAP_SYS_NICE"); }

int realtime_priority_of(pid_t tid) {
  const int policy = ::sched_getscheduler(tid);
  if (policy < 0) return 0;
  if ((policy & ~SCHED_RESET_ON_FORK) != SCHED_FIFO && (policy & ~SCHED_RESET_ON_FORK) != SCHED_RR) return 0;
  sched_param param{};
  if (::sched_getparam(tid, &param) != 0) return 0;
  return param.sched_priority;
}

std::optional<std::chrono::nanoseconds> cpu_time_of(pid_t tid) {
  // /proc/TID serves any thread of any process, listed or not; schedstat's first field is the
  // time on a CPU in nanoseconds.
  std::ifstream in("/proc/" + std::to_string(tid) + "/schedstat");
  long long ns = 0;
  if (in >> ns) return std::chrono::nanoseconds(ns);
  return ticks_of(tid);
}

std::chrono::nanoseconds cpu_meter::sample(const std::vector<pid_t>& tids) {
  std::unordered_map<pid_t, std::chrono::nanoseconds> now;
  std::chrono::nanoseconds used{0};
  for (const pid_t tid : tids) {
    const auto total = cpu_time_of(tid);
    if (!total || now.count(tid)) continue;
    now[tid] = *total;
    if (const auto before = last_.find(tid); before != last_.end() && *total > before->second)
      used += *total - before->second;
  }
  last_ = std::move(now);
  return used;
}

realtime_governor::realtime_governor(int host_cpus, int cpu_limit_percent, int quiet_intervals)
    : cpus_(std::max(host_cpus, 1)), limit_(cpu_limit_percent), quiet_needed_(std::max(quiet_intervals, 1)) {}

realtime_governor::change realtime_governor::observe(std::chrono::nanoseconds used, std::chrono::nanoseconds interval) {
  if (interval.count() <= 0) return change::none;
  share_ = 100.0 * static_cast<double>(used.count()) / (static_cast<double>(interval.count()) * cpus_);
  if (realtime_) {
    if (share_ <= limit_) return change::none;
    realtime_ = false;
    quiet_ = 0;
    return change::demote;
  }
  if (share_ * 4 >= limit_ * 3) {
    quiet_ = 0;  // a spike starts the count again
    return change::none;
  }
  if (++quiet_ < quiet_needed_) return change::none;
  realtime_ = true;
  quiet_ = 0;
  return change::promote;
}

}  // namespace switchboard
