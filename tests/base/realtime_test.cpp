// SCHED_FIFO for the route's path (switchboard/realtime.hpp): granted to a thread when this
// process may (root or CAP_SYS_NICE, as in CI), and a refusal that says what it needs otherwise;
// what the path's threads cost, and the governor's decisions from it.
#include "switchboard/realtime.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <system_error>
#include <thread>
#include <vector>

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

TEST(Realtime, AThreadMadeNormalAgainLeavesSchedFifo) {
  int realtime = -1;
  int normal = -1;
  result<void> made;
  result<void> unmade;
  std::thread([&] {
    made = make_realtime(7);
    realtime = realtime_priority_of();
    unmade = make_normal();
    normal = realtime_priority_of();
  }).join();
  if (!made) GTEST_SKIP() << "needs root or CAP_SYS_NICE";
  EXPECT_EQ(realtime, 7);
  EXPECT_TRUE(unmade.has_value()) << unmade.error().message();
  EXPECT_EQ(normal, 0);
}

// A thread that works until its own CPU time has grown by 5 ms, however long that takes.
TEST(Realtime, TheMeterCountsTheCpuAThreadUsedBetweenSamplesFromTheFirstSampleNamingIt) {
  using std::chrono::milliseconds;
  std::atomic<pid_t> tid{0};
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::atomic<bool> leave{false};  // the thread stays until the last sample: a thread gone has no time
  std::thread worker([&] {
    tid = ::gettid();
    while (!go) std::this_thread::yield();
    const auto start = cpu_time_of(tid);
    if (start)
      while (cpu_time_of(tid).value_or(*start) < *start + milliseconds(5)) {
      }
    done = true;
    while (!leave) std::this_thread::yield();
  });
  while (tid == 0) std::this_thread::yield();
  cpu_meter meter;
  EXPECT_EQ(meter.sample({tid}), std::chrono::nanoseconds(0)) << "counted from the first sample naming it";
  go = true;
  while (!done) std::this_thread::yield();
  EXPECT_GE(meter.sample({tid}), milliseconds(5));
  EXPECT_EQ(meter.sample({}), std::chrono::nanoseconds(0));
  EXPECT_EQ(meter.sample({tid}), std::chrono::nanoseconds(0)) << "forgotten when a sample left it out";
  leave = true;
  worker.join();
}

using std::chrono::milliseconds;
using change = realtime_governor::change;

constexpr milliseconds second{1000};

TEST(RealtimeGovernor, GivesThePriorityUpAtOnceWhenThePathUsesMoreThanTheLimit) {
  realtime_governor governor(2, 35);  // 35 % of two CPUs: 700 ms of CPU per second
  EXPECT_TRUE(governor.realtime());
  EXPECT_EQ(governor.observe(milliseconds(600), second), change::none);
  EXPECT_EQ(governor.observe(milliseconds(700), second), change::none) << "at the limit, not above it";
  EXPECT_TRUE(governor.realtime());
  EXPECT_EQ(governor.observe(milliseconds(720), second), change::demote);
  EXPECT_FALSE(governor.realtime());
  EXPECT_DOUBLE_EQ(governor.last_share_percent(), 36.0);
  EXPECT_EQ(governor.observe(milliseconds(1900), second), change::none) << "given up once";
  EXPECT_FALSE(governor.realtime());
}

TEST(RealtimeGovernor, TakesThePriorityAgainOnlyAfterTenIntervalsInARowBelowThreeQuartersOfTheLimit) {
  realtime_governor governor(2, 40, 10);  // three quarters: 30 %, 600 ms per second
  ASSERT_EQ(governor.observe(milliseconds(1000), second), change::demote);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(governor.observe(milliseconds(600), second), change::none) << "not below";
  for (int i = 1; i < 10; ++i) EXPECT_EQ(governor.observe(milliseconds(590), second), change::none) << i;
  EXPECT_FALSE(governor.realtime());
  EXPECT_EQ(governor.observe(milliseconds(590), second), change::promote);
  EXPECT_TRUE(governor.realtime());
  EXPECT_EQ(governor.observe(milliseconds(590), second), change::none);
  EXPECT_EQ(governor.observe(milliseconds(810), second), change::demote) << "and gives it up again";
}

TEST(RealtimeGovernor, ASpikeWhileGivenUpStartsTheQuietCountAgain) {
  realtime_governor governor(2, 40, 10);
  ASSERT_EQ(governor.observe(milliseconds(1000), second), change::demote);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(governor.observe(milliseconds(100), second), change::none);
  EXPECT_EQ(governor.observe(milliseconds(700), second), change::none) << "below the limit, above three quarters";
  for (int i = 0; i < 9; ++i) EXPECT_EQ(governor.observe(milliseconds(100), second), change::none) << i;
  EXPECT_EQ(governor.observe(milliseconds(100), second), change::promote);
}

TEST(RealtimeGovernor, TheShareIsOfTheHostsCpusOverTheIntervalsLength) {
  realtime_governor one(1, 35);
  EXPECT_EQ(one.observe(milliseconds(340), second), change::none);
  EXPECT_EQ(one.observe(milliseconds(360), second), change::demote);
  EXPECT_DOUBLE_EQ(one.last_share_percent(), 36.0);

  realtime_governor eight(8, 35);  // 2.8 s of CPU per second
  EXPECT_EQ(eight.observe(milliseconds(2000), second), change::none) << "a core of the eight and more";
  EXPECT_EQ(eight.observe(milliseconds(2800), second), change::none);
  EXPECT_EQ(eight.observe(milliseconds(2900), second), change::demote);

  realtime_governor late(1, 35);  // a tick that came late: the same CPU over a longer interval
  EXPECT_EQ(late.observe(milliseconds(500), milliseconds(2000)), change::none);
  EXPECT_EQ(late.observe(milliseconds(500), milliseconds(0)), change::none) << "no interval, no decision";
  EXPECT_EQ(late.observe(milliseconds(720), milliseconds(2000)), change::demote);
}

}  // namespace
}  // namespace switchboard
