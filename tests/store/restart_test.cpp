// The database restarts in the middle of a test: a waiting coroutine gets a clear error (not a
// hang), the pool and the listener come back by themselves. Runs alone (RUN_SERIAL): it stops
// the shared throwaway cluster.
#include "coro_test.hpp"
#include "switchboard/store/listener.hpp"
#include "switchboard/store/pool.hpp"
#include "test_database.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <thread>

namespace switchboard {
namespace {

namespace asio = boost::asio;

using testing::sleep_for;

asio::awaitable<result<int>> select_one(store::connection_pool& pool) {
  co_return co_await pool.run([](pqxx::connection& c) {
    pqxx::work tx(c);
    return tx.exec1("SELECT 1")[0].as<int>();
  });
}

TEST(DatabaseRestart, WaitingQueryFailsClearlyAndThePoolComesBack) {
  testing::test_database db;
  store::connection_pool pool({.url = db.url(), .size = 2, .connect_timeout = std::chrono::seconds(2)});
  asio::io_context loop;
  bool done = false;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        // Warm both connections so they are stale after the restart.
        EXPECT_TRUE((co_await select_one(pool)).has_value());

        // A query in flight when the server goes away.
        std::optional<result<int>> in_flight;
        asio::co_spawn(
            loop,
            [&]() -> asio::awaitable<void> {
              in_flight = co_await pool.run([](pqxx::connection& c) {
                pqxx::work tx(c);
                return tx.exec1("SELECT 1 FROM pg_sleep(30)")[0].as<int>();
              });
            },
            asio::detached);
        co_await sleep_for(std::chrono::milliseconds(300));

        std::thread stopper([] { testing::stop_cluster(); });
        while (!in_flight) co_await sleep_for(std::chrono::milliseconds(20));
        stopper.join();
        CO_ASSERT_FALSE(in_flight->has_value());
        EXPECT_TRUE(in_flight->error().is(errc::db_unavailable)) << in_flight->error().message();
        EXPECT_FALSE(pool.database_up());

        // While the server is down: a clear error, quickly (the socket is gone).
        auto during = co_await select_one(pool);
        CO_ASSERT_FALSE(during.has_value());
        EXPECT_TRUE(during.error().is(errc::db_unavailable));
        EXPECT_NE(during.error().message().find("check that PostgreSQL is running"), std::string::npos);

        testing::start_cluster();
        // Stale idle connections are detected before use: the first query after the restart works.
        auto after = co_await select_one(pool);
        EXPECT_TRUE(after.has_value()) << (after ? "" : after.error().message());
        auto again = co_await select_one(pool);
        EXPECT_TRUE(again.has_value());
        EXPECT_TRUE(pool.database_up());
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  loop.run_for(std::chrono::seconds(120));
  EXPECT_TRUE(done);
}

TEST(DatabaseRestart, ListenerReconnectsAndSaysSo) {
  testing::test_database db;
  asio::io_context loop;
  asio::thread_pool blocking(1);
  std::vector<std::string> payloads;
  int reconnects = 0;
  store::notification_listener listener(
      loop.get_executor(), blocking.get_executor(), {.url = db.url(), .connect_timeout = std::chrono::seconds(2)},
      {"presence"}, [&](const store::notification& n) { payloads.push_back(n.payload); }, [&] { ++reconnects; });
  listener.start();
  bool done = false;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        while (!listener.listening()) co_await sleep_for(std::chrono::milliseconds(10));
        db.exec("NOTIFY presence, 'before'");
        while (payloads.empty()) co_await sleep_for(std::chrono::milliseconds(10));

        std::thread restarter([] {
          testing::stop_cluster();
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          testing::start_cluster();
        });
        while (listener.listening()) co_await sleep_for(std::chrono::milliseconds(10));  // it noticed
        restarter.join();
        for (int i = 0; i < 1000 && !listener.listening(); ++i) co_await sleep_for(std::chrono::milliseconds(10));
        EXPECT_TRUE(listener.listening());
        EXPECT_EQ(reconnects, 1);
        db.exec("NOTIFY presence, 'after'");
        for (int i = 0; i < 500 && payloads.size() < 2; ++i) co_await sleep_for(std::chrono::milliseconds(10));
        done = true;
        loop.stop();
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  loop.run_for(std::chrono::seconds(120));
  loop.restart();
  listener.stop();
  loop.run_for(std::chrono::milliseconds(100));
  blocking.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(payloads, (std::vector<std::string>{"before", "after"}));
}

}  // namespace
}  // namespace switchboard
