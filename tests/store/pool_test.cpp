// The pool on a real PostgreSQL: work runs off the event loop and resumes on it; SQL errors are
// values; NOTIFY reaches a coroutine on the loop.
#include "switchboard/store/pool.hpp"
#include "coro_test.hpp"
#include "switchboard/store/listener.hpp"
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
    asio::steady_timer wait(loop);
    while (!listener.listening()) {
      wait.expires_after(std::chrono::milliseconds(10));
      co_await wait.async_wait(asio::use_awaitable);
    }
    auto sent = co_await pool.run([](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec("SELECT pg_notify('routing_rules', 'rule 7 changed')");
      tx.exec("SELECT pg_notify('unrelated', 'nobody listens')");
      tx.commit();
    });
    EXPECT_TRUE(sent.has_value());
    for (int i = 0; i < 500 && received.empty(); ++i) {
      wait.expires_after(std::chrono::milliseconds(10));
      co_await wait.async_wait(asio::use_awaitable);
    }
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
}  // namespace switchboard
