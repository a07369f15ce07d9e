// The pool on a real PostgreSQL: work runs off the event loop and resumes on it; SQL errors are
// values; NOTIFY reaches a coroutine on the loop.
#include "switchboard/store/pool.hpp"
#include "coro_test.hpp"
#include "switchboard/store/listener.hpp"
#include "switchboard/store/operator_queries.hpp"
#include "test_database.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <thread>

namespace switchboard {
namespace {

namespace asio = boost::asio;

using testing::run_coroutine;

TEST(Pool, RunsOffTheLoopAndResumesOnIt) {
  testing::test_database db;
  store::connection_pool pool({.url = db.url(), .size = 2});
  asio::io_context loop;
  const auto loop_thread = std::this_thread::get_id();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    std::thread::id worker;
    auto answer = co_await pool.run([&](pqxx::connection& c) {
      worker = std::this_thread::get_id();
      pqxx::work tx(c);
      return tx.exec1("SELECT 40 + 2")[0].as<int>();
    });
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    EXPECT_NE(worker, loop_thread);
    CO_ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(*answer, 42);
  });
}

TEST(Pool, SqlErrorsAreValuesAndTheConnectionStaysUsable) {
  testing::test_database db;
  store::connection_pool pool({.url = db.url(), .size = 1});
  asio::io_context loop;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto bad = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      return tx.exec1("SELECT no_such_column FROM tenants")[0].as<int>();
    });
    CO_ASSERT_FALSE(bad.has_value());
    EXPECT_TRUE(bad.error().is(errc::db_query_failed));
    EXPECT_NE(bad.error().detail.find("no_such_column"), std::string::npos);

    auto refused = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec0("INSERT INTO tenants (code, name) VALUES ('BAD CODE', 'x')");
      tx.commit();
    });
    CO_ASSERT_FALSE(refused.has_value());
    EXPECT_TRUE(refused.error().is(errc::db_constraint_violated)) << refused.error().message();

    auto fine = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      return tx.exec1("SELECT 1")[0].as<int>();
    });
    EXPECT_TRUE(fine.has_value());
    EXPECT_TRUE(pool.database_up());
  });
}

TEST(Pool, ManyConcurrentCoroutinesShareFewConnections) {
  testing::test_database db;
  store::connection_pool pool({.url = db.url(), .size = 3});
  asio::io_context loop;
  int finished = 0;
  for (int i = 0; i < 200; ++i) {
    asio::co_spawn(
        loop,
        [&, i]() -> asio::awaitable<void> {
          auto r = co_await pool.run([i](pqxx::connection& c) {
            pqxx::work tx(c);
            return tx.exec_params1("SELECT $1::int * 2", i)[0].as<int>();
          });
          EXPECT_TRUE(r.has_value());
          if (r) {
            EXPECT_EQ(*r, i * 2);
          }
          ++finished;
        },
        asio::detached);
  }
  loop.run_for(std::chrono::seconds(60));
  EXPECT_EQ(finished, 200);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"), "4")
      << "3 pooled connections plus this one";
}

// Polls `ready` every 10 ms on the loop, up to `tries` times (no wall-clock assertion: the caller
// checks what it waited for).
template <class Ready>
asio::awaitable<void> poll_until(Ready ready, int tries = 500) {
  asio::steady_timer wait(co_await asio::this_coro::executor);
  for (int i = 0; i < tries && !ready(); ++i) {
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(asio::use_awaitable);
  }
}

TEST(Listener, NotifyReachesACoroutineOnTheLoop) {
  testing::test_database db;
  asio::io_context loop;
  asio::thread_pool blocking(1);
  const auto loop_thread = std::this_thread::get_id();
  std::vector<store::notification> received;
  std::thread::id delivered_on;
  store::notification_listener listener(loop.get_executor(), blocking.get_executor(), {.url = db.url()},
                                        {"presence", "routing_rules"}, [&](const store::notification& n) {
                                          delivered_on = std::this_thread::get_id();
                                          received.push_back(n);
                                        });
  listener.start();
  store::connection_pool pool({.url = db.url(), .size = 1});
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    co_await poll_until([&] { return listener.listening(); }, 100000);
    auto sent = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec("SELECT pg_notify('routing_rules', 'rule 7 changed')");
      tx.exec("SELECT pg_notify('unrelated', 'nobody listens')");
      tx.commit();
    });
    EXPECT_TRUE(sent.has_value());
    co_await poll_until([&] { return !received.empty(); });
  });
  listener.stop();
  loop.run_for(std::chrono::milliseconds(100));
  blocking.join();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].channel, "routing_rules");
  EXPECT_EQ(received[0].payload, "rule 7 changed");
  EXPECT_EQ(delivered_on, loop_thread);
}

TEST(Pool, PresenceChangeIsAnnounced) {
  testing::test_database db;
  db.exec(
      "INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');"
      "INSERT INTO operators (tenant_id, login, password_hash) VALUES (1, 'alice', hash_password('pw'))");
  pqxx::connection listen_conn(db.url());
  pqxx::nontransaction(listen_conn).exec0("LISTEN presence");
  db.exec("UPDATE presence SET state = 'ready', device = '2001' WHERE operator_id = 1");
  EXPECT_EQ(listen_conn.await_notification(5, 0), 1);
}

TEST(Urls, DatabaseNameIsReplacedInBothForms) {
  EXPECT_EQ(store::url_with_database("postgresql:///postgres?host=/tmp/x&port=5", "db1"),
            "postgresql:///db1?host=/tmp/x&port=5");
  EXPECT_EQ(store::url_with_database("postgresql://u@h:5432/postgres", "db1"), "postgresql://u@h:5432/db1");
  EXPECT_EQ(store::url_with_database("postgresql://h", "db1"), "postgresql://h/db1");
  EXPECT_EQ(store::url_with_database("host=/tmp dbname=postgres user=x", "db1"), "host=/tmp dbname=db1 user=x");
  EXPECT_EQ(store::url_with_database("host=/tmp", "db1"), "host=/tmp dbname=db1");
}

}  // namespace
// Migration 0040: the presence NOTIFY carries the row, so nodes need not read it back.
TEST(Listener, PresenceNotificationCarriesTheRowLoadPresenceReads) {
  testing::test_database db;
  db.exec(
      "INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');"
      "INSERT INTO operators (tenant_id, login, password_hash, full_name) VALUES "
      "(1, 'alice', hash_password('pw'), 'Alice')");
  asio::io_context loop;
  asio::thread_pool blocking(1);
  std::vector<std::string> payloads;
  store::notification_listener listener(loop.get_executor(), blocking.get_executor(), {.url = db.url()}, {"presence"},
                                        [&](const store::notification& n) { payloads.push_back(n.payload); });
  listener.start();
  store::connection_pool pool({.url = db.url(), .size = 1});
  std::optional<store::operator_presence> loaded;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    co_await poll_until([&] { return listener.listening(); }, 100000);
    auto moved = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec("UPDATE presence SET state = 'not_ready', reason = 'lunch', device = '2001' WHERE operator_id = 1");
      tx.commit();
    });
    CO_ASSERT_TRUE(moved.has_value());
    co_await poll_until([&] { return !payloads.empty(); });
    auto row = co_await store::load_presence(pool, 1);
    CO_ASSERT_TRUE(row.has_value());
    loaded = *row;
  });
  listener.stop();
  loop.run_for(std::chrono::milliseconds(100));
  blocking.join();
  ASSERT_EQ(payloads.size(), 1u);
  ASSERT_TRUE(loaded.has_value());
  const auto notified = store::presence_from_notification(payloads[0]);
  ASSERT_TRUE(notified.has_value()) << payloads[0];
  EXPECT_EQ(notified->operator_id, loaded->operator_id);
  EXPECT_EQ(notified->tenant_id, loaded->tenant_id);
  EXPECT_EQ(notified->state, "not_ready");
  EXPECT_EQ(notified->state, loaded->state);
  EXPECT_EQ(notified->reason, loaded->reason);
  EXPECT_EQ(notified->since, loaded->since);
  EXPECT_EQ(notified->device, loaded->device);
  EXPECT_EQ(notified->current_call_id, loaded->current_call_id);
  EXPECT_TRUE(notified->login.empty()) << "names are not in the payload";
  // Not a row (an older schema's payload, or garbage): nothing, and the caller reads it back.
  EXPECT_FALSE(store::presence_from_notification(R"({"operator_id": 1, "state": "ready"})").has_value());
  EXPECT_FALSE(store::presence_from_notification("not json").has_value());
}

}  // namespace switchboard
