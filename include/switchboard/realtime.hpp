// Real-time scheduling for the route's critical path. On a host where PostgreSQL, the server
// and other work share a few cores, a route decision's tail is its threads waiting for a CPU
// behind other runnable work, not the work itself (docs/benchmarks.md): SCHED_FIFO lets a
// woken thread of the route's path preempt them at once. Needs CAP_SYS_NICE (root, or a
// systemd unit's AmbientCapabilities) or an RLIMIT_RTPRIO at least `priority` (LimitRTPRIO=).
// Near saturation the same threads starve everything else, so a governor gives the priority
// up while the path uses more than a share of the host's CPUs, and takes it again later.
#pragma once

#include "switchboard/error.hpp"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <unordered_map>
#include <vector>

namespace switchboard {

// Puts thread `tid` (0: the calling thread; a process id names its main thread) under
// SCHED_FIFO at `priority` (1-99). Children it forks start with the normal policy again.
result<void> make_realtime(int priority, pid_t tid = 0);

// Puts thread `tid` (0: the calling thread) back under the normal policy (SCHED_OTHER; its nice
// value, which SCHED_FIFO leaves alone, applies again).
result<void> make_normal(pid_t tid = 0);

// The SCHED_FIFO or SCHED_RR priority of thread `tid` (0: the calling thread); 0 under a
// normal policy or when it cannot be read.
int realtime_priority_of(pid_t tid = 0);

// The CPU time thread or process `tid` of this host has used since it started (its main thread
// for a process: a PostgreSQL backend has one); nothing when it is gone or cannot be read.
std::optional<std::chrono::nanoseconds> cpu_time_of(pid_t tid);

// The CPU time a changing set of threads used between two samples: a thread counts from the
// first sample that names it; one that is gone, or no longer named, is forgotten.
class cpu_meter {
 public:
  std::chrono::nanoseconds sample(const std::vector<pid_t>& tids);

 private:
  std::unordered_map<pid_t, std::chrono::nanoseconds> last_;
};

// Whether the route's path should run real-time, decided from what it costs. Pure: fed once per
// interval with the CPU time the path's threads used during it. It gives the priority up at once
// when the path used more than `cpu_limit_percent` of the host's CPUs (real-time threads near
// saturation keep PostgreSQL's other backends and other work off the cores), and takes it again
// only after `quiet_intervals` intervals in a row below three quarters of the limit, so that it
// does not flap. While it is given up the threads are measured at the normal priority.
class realtime_governor {
 public:
  enum class change { none, demote, promote };

  realtime_governor(int host_cpus, int cpu_limit_percent, int quiet_intervals = 10);

  change observe(std::chrono::nanoseconds used, std::chrono::nanoseconds interval);

  bool realtime() const noexcept { return realtime_; }
  // The last interval's share of the host's CPUs, in percent (100: all of them).
  double last_share_percent() const noexcept { return share_; }
  int limit_percent() const noexcept { return limit_; }

 private:
  int cpus_;
  int limit_;
  int quiet_needed_;
  int quiet_ = 0;
  bool realtime_ = true;
  double share_ = 0;
};

}  // namespace switchboard
