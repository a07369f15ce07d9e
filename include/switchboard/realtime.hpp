// Real-time scheduling for the route's critical path. On a host where PostgreSQL, the server
// and other work share a few cores, a route decision's tail is its threads waiting for a CPU
// behind other runnable work, not the work itself (docs/benchmarks.md): SCHED_FIFO lets a
// woken thread of the route's path preempt them at once. Needs CAP_SYS_NICE (root, or a
// systemd unit's AmbientCapabilities) or an RLIMIT_RTPRIO at least `priority` (LimitRTPRIO=).
#pragma once

#include "switchboard/error.hpp"

#include <sys/types.h>

namespace switchboard {

// Puts thread `tid` (0: the calling thread; a process id names its main thread) under
// SCHED_FIFO at `priority` (1-99). Children it forks start with the normal policy again.
result<void> make_realtime(int priority, pid_t tid = 0);

// The SCHED_FIFO or SCHED_RR priority of thread `tid` (0: the calling thread); 0 under a
// normal policy or when it cannot be read.
int realtime_priority_of(pid_t tid = 0);

}  // namespace switchboard
