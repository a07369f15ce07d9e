// Test support for coroutines: gtest's ASSERT_* `return`, which a coroutine cannot, so
// CO_ASSERT_* records the failure and `co_return`s; run_coroutine drives one to completion.
#pragma once

#include <gtest/gtest.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <exception>

#define CO_ASSERT_TRUE(condition)                  \
  if (!(condition)) {                              \
    ADD_FAILURE() << "expected true: " #condition; \
    co_return;                                     \
  }
#define CO_ASSERT_FALSE(condition) CO_ASSERT_TRUE(!(condition))

namespace switchboard::testing {

// Spawns `body()` on `loop` and runs the loop until it finishes or `limit` passes; the loop is
// left restarted, ready to run again.
template <class Body>
bool run_coroutine(boost::asio::io_context& loop, Body body, std::chrono::seconds limit = std::chrono::seconds(60)) {
  bool done = false;
  std::exception_ptr failure;
  boost::asio::co_spawn(
      loop,
      [&]() -> boost::asio::awaitable<void> {
        co_await body();
        done = true;
        loop.stop();  // other work (listeners, servers) may keep the loop busy forever
      },
      [&](std::exception_ptr e) {
        failure = e;
        loop.stop();
      });
  loop.run_for(limit);
  loop.restart();
  if (failure) std::rethrow_exception(failure);
  EXPECT_TRUE(done) << "coroutine did not finish within " << limit.count() << " s";
  return done;
}

inline boost::asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, d);
  co_await t.async_wait(boost::asio::use_awaitable);
}

}  // namespace switchboard::testing
