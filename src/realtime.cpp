// SCHED_FIFO for the threads of the route's path (see realtime.hpp).
#include "switchboard/realtime.hpp"

#include <sched.h>

#include <cerrno>
#include <string>
#include <system_error>

namespace switchboard {

result<void> make_realtime(int priority, pid_t tid) {
  if (priority < 1 || priority > 99)
    return error{errc::config_invalid, "real-time priority " + std::to_string(priority) + " is not within 1-99"};
  sched_param param{};
  param.sched_priority = priority;
  if (::sched_setscheduler(tid, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) != 0) {
    const int e = errno;
    return error{std::error_code(e, std::generic_category()),
                 e == EPERM ? "SCHED_FIFO needs CAP_SYS_NICE or an RLIMIT_RTPRIO of " + std::to_string(priority)
                            : "sched_setscheduler"};
  }
  return {};
}

int realtime_priority_of(pid_t tid) {
  const int policy = ::sched_getscheduler(tid);
  if (policy < 0) return 0;
  if ((policy & ~SCHED_RESET_ON_FORK) != SCHED_FIFO && (policy & ~SCHED_RESET_ON_FORK) != SCHED_RR) return 0;
  sched_param param{};
  if (::sched_getparam(tid, &param) != 0) return 0;
  return param.sched_priority;
}

}  // namespace switchboard
