// SCHED_FIFO for the route's path (switchboard/realtime.hpp): granted to a thread when this
// process may (root or CAP_SYS_NICE, as in CI), and a refusal that says what it needs otherwise.
#include "switchboard/realtime.hpp"

#include <gtest/gtest.h>

#include <system_error>
#include <thread>

namespace switchboard {
namespace {

TEST(Realtime, AThreadMadeRealtimeRunsUnderSchedFifoAtThatPriorityOrIsToldWhatItNeeds) {
  result<void> made;
  int before = -1;
  int after = -1;
  std::thread([&] {
    before = realtime_priority_of();
    made = make_realtime(7);
    after = realtime_priority_of();
  }).join();
  EXPECT_EQ(before, 0);
  if (made) {
    EXPECT_EQ(after, 7);
  } else {
    EXPECT_EQ(made.error().code, std::make_error_code(std::errc::operation_not_permitted));
    EXPECT_NE(made.error().detail.find("CAP_SYS_NICE"), std::string::npos) << made.error().detail;
    EXPECT_EQ(after, 0);
  }
  EXPECT_EQ(realtime_priority_of(), 0) << "only the thread that asked changes";
}

TEST(Realtime, APriorityOutsideOneToNinetyNineIsRefusedAndChangesNothing) {
  for (int priority : {0, -1, 100}) {
    result<void> made;
    int after = -1;
    std::thread([&] {
      made = make_realtime(priority);
      after = realtime_priority_of();
    }).join();
    ASSERT_FALSE(made) << priority;
    EXPECT_TRUE(made.error().is(errc::config_invalid)) << made.error().message();
    EXPECT_EQ(after, 0);
  }
}

}  // namespace
}  // namespace switchboard
