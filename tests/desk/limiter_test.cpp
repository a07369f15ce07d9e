// The pure limiters at their edges: failures per login and per address within the window,
// success clearing a login, the window passing, the memory bound, the token bucket.
#include "switchboard/desk/limiter.hpp"

#include <gtest/gtest.h>

namespace switchboard::desk {
namespace {

using namespace std::chrono_literals;

TEST(LoginLimiter, BlocksALoginAfterItsFailuresUntilTheWindowPasses) {
  login_limiter l({.max_failures_per_login = 3, .max_failures_per_address = 100, .window = 60s});
  const steady_time t0{};
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l.allowed("10.0.0.1", "acme/alice", t0));
    l.record_failure("10.0.0.1", "acme/alice", t0 + 1s);
  }
  EXPECT_FALSE(l.allowed("10.0.0.1", "acme/alice", t0 + 2s));
  EXPECT_FALSE(l.allowed("10.0.0.9", "acme/alice", t0 + 2s));  // from anywhere
  EXPECT_TRUE(l.allowed("10.0.0.1", "acme/bob", t0 + 2s));
  EXPECT_TRUE(l.allowed("10.0.0.1", "acme/alice", t0 + 61s));
}

TEST(LoginLimiter, BlocksAnAddressGuessingManyLogins) {
  login_limiter l({.max_failures_per_login = 100, .max_failures_per_address = 4, .window = 60s});
  const steady_time t0{};
  for (int i = 0; i < 4; ++i) l.record_failure("10.0.0.1", "acme/user" + std::to_string(i), t0);
  EXPECT_FALSE(l.allowed("10.0.0.1", "acme/new", t0));
  EXPECT_TRUE(l.allowed("10.0.0.2", "acme/new", t0));
}

TEST(LoginLimiter, SuccessClearsTheLoginNotTheAddress) {
  login_limiter l({.max_failures_per_login = 2, .max_failures_per_address = 3, .window = 60s});
  const steady_time t0{};
  l.record_failure("a", "acme/alice", t0);
  l.record_failure("a", "acme/alice", t0);
  EXPECT_FALSE(l.allowed("b", "acme/alice", t0));
  l.record_success("acme/alice");
  EXPECT_TRUE(l.allowed("b", "acme/alice", t0));
  l.record_failure("a", "acme/x", t0);
  EXPECT_FALSE(l.allowed("a", "acme/alice", t0));
}

TEST(LoginLimiter, MemoryStaysBounded) {
  login_limiter l({.max_failures_per_login = 5, .max_failures_per_address = 5, .window = 60s, .max_entries = 100});
  const steady_time t0{};
  for (int i = 0; i < 10000; ++i)
    l.record_failure("10.0." + std::to_string(i), "t/" + std::to_string(i), t0 + std::chrono::milliseconds(i));
  EXPECT_LE(l.entries(), 100u);
}

TEST(RequestBucket, BurstThenRate) {
  const steady_time t0{};
  request_bucket b(10, 3, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_TRUE(b.take(t0));
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0));
  EXPECT_TRUE(b.take(t0 + 100ms));  // one token per 100 ms
  EXPECT_FALSE(b.take(t0 + 100ms));
  EXPECT_TRUE(b.take(t0 + 10s));
}

}  // namespace
}  // namespace switchboard::desk
