// The pool's lanes on a real PostgreSQL: the routing lane has connections of its own, so a
// decision is answered while a write batch (and the general lane) are stuck in the database.
// Work is held by an advisory lock the test owns, never by a sleep: nothing here depends on speed.
#include "coro_test.hpp"
#include "switchboard/realtime.hpp"
#include "switchboard/store/pool.hpp"
#include "test_database.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <optional>
#include <set>
#include <thread>
#include <vector>

namespace switchboard {
namespace {

namespace asio = boost::asio;

using testing::run_coroutine;

constexpr int held_lock = 4242;

// Long enough that PostgreSQL never cancels the held work however slow this machine is.
store::pool_config lanes_config(const testing::test_database& db, int routing, int writes) {
  return {.url = db.url(),
          .size = 1,
          .routing_size = routing,
          .writes_size = writes,
          .statement_timeout = std::chrono::minutes(10)};
}

// Polls `ready` every 10 ms on the loop until it holds or 60 s have passed (the caller checks).
template <class Ready>
asio::awaitable<void> poll_until(Ready ready) {
  asio::steady_timer wait(co_await asio::this_coro::executor);
  for (int i = 0; i < 6000 && !ready(); ++i) {
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(asio::use_awaitable);
  }
}

// Work that waits in PostgreSQL for the advisory lock the test holds, then writes a row.
auto blocked_write(const char* code) {
  return [code](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec1("SELECT pg_advisory_xact_lock(" + std::to_string(held_lock) + ")");
    tx.exec_params0("INSERT INTO tenants (code, name) VALUES ($1, $1)", std::string(code));
    tx.commit();
  };
}

int backends_waiting_for_the_lock(const testing::test_database& db) {
  return std::stoi(db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = " +
                             std::to_string(held_lock)));
}

TEST(PoolLanes, ARouteQueryIsAnsweredWhileTheWritesAndGeneralLanesAreStuck) {
  testing::test_database db;
  pqxx::connection holder(db.url());
  pqxx::nontransaction(holder).exec1("SELECT pg_advisory_lock(" + std::to_string(held_lock) + ")");

  store::connection_pool pool(lanes_config(db, 1, 1));
  asio::io_context loop;
  int writes_done = 0;
  auto spawn_write = [&](store::connection_pool& lane, const char* code) {
    asio::co_spawn(
        loop,
        [&, code]() -> asio::awaitable<void> {
          auto written = co_await lane.run(blocked_write(code));
          EXPECT_TRUE(written.has_value()) << written.error().message();
          ++writes_done;
        },
        asio::detached);
  };
  spawn_write(pool.lane(store::pool_lane::writes), "batch");
  spawn_write(pool, "desk");  // the general lane has one connection: it is stuck too

  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    co_await poll_until([&] { return backends_waiting_for_the_lock(db) == 2; });
    CO_ASSERT_TRUE(backends_waiting_for_the_lock(db) == 2);
    auto decided = co_await pool.lane(store::pool_lane::routing).run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT count(*) FROM tenants WHERE code IN ('batch', 'desk')")[0].as<int>();
    });
    CO_ASSERT_TRUE(decided.has_value());
    EXPECT_EQ(*decided, 0) << "answered before either stuck write";
    EXPECT_EQ(writes_done, 0);
  });

  pqxx::nontransaction(holder).exec1("SELECT pg_advisory_unlock(" + std::to_string(held_lock) + ")");
  run_coroutine(loop, [&]() -> asio::awaitable<void> { co_await poll_until([&] { return writes_done == 2; }); });
  EXPECT_EQ(writes_done, 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM tenants WHERE code IN ('batch', 'desk')"), "2");
}

TEST(PoolLanes, EachLaneHasConnectionsOfItsOwn) {
  testing::test_database db;
  store::connection_pool pool(lanes_config(db, 2, 1));
  asio::io_context loop;
  std::set<int> general, routing, writes;
  auto backend_of = [](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec1("SELECT pg_backend_pid()")[0].as<int>();
  };
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 20; ++i) {
      auto g = co_await pool.run(backend_of);
      auto r = co_await pool.lane(store::pool_lane::routing).run(backend_of);
      auto w = co_await pool.lane(store::pool_lane::writes).run(backend_of);
      CO_ASSERT_TRUE(g && r && w);
      general.insert(*g);
      routing.insert(*r);
      writes.insert(*w);
    }
  });
  EXPECT_EQ(general.size(), 1u);
  EXPECT_EQ(writes.size(), 1u);
  EXPECT_LE(routing.size(), 2u);
  for (int pid : routing) {
    EXPECT_EQ(general.count(pid), 0u);
    EXPECT_EQ(writes.count(pid), 0u);
  }
  EXPECT_NE(*general.begin(), *writes.begin());
  EXPECT_EQ(
      db.scalar("SELECT string_agg(DISTINCT application_name, ',' ORDER BY application_name) "
                "FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'switchboard%'"),
      "switchboard,switchboard-routing,switchboard-writes")
      << "each lane shows in pg_stat_activity";
}

TEST(PoolLanes, ALaneWithoutConnectionsIsTheGeneralLane) {
  testing::test_database db;
  store::connection_pool plain({.url = db.url(), .size = 2});
  EXPECT_EQ(&plain.lane(store::pool_lane::routing), &plain);
  EXPECT_EQ(&plain.lane(store::pool_lane::writes), &plain);
  EXPECT_EQ(&plain.lane(store::pool_lane::general), &plain);

  store::connection_pool routing_only(lanes_config(db, 1, 0));
  EXPECT_NE(&routing_only.lane(store::pool_lane::routing), &routing_only);
  EXPECT_EQ(&routing_only.lane(store::pool_lane::writes), &routing_only);
  EXPECT_EQ(routing_only.lane(store::pool_lane::routing).config().url, db.url());
}

// The database is one: an outage seen on any lane is the pool's, and so is the recovery.
TEST(PoolLanes, TheLanesShareOneDatabaseStatus) {
  testing::test_database db;
  store::connection_pool pool(lanes_config(db, 1, 1));
  auto& routing = pool.lane(store::pool_lane::routing);
  asio::io_context loop;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto killed = co_await routing.run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT pg_terminate_backend(pg_backend_pid())");
    });
    CO_ASSERT_FALSE(killed.has_value());
    EXPECT_TRUE(killed.error().is(errc::db_unavailable)) << killed.error().message();
    EXPECT_FALSE(pool.database_up());
    EXPECT_FALSE(pool.lane(store::pool_lane::writes).database_up());

    auto fine = co_await pool.lane(store::pool_lane::writes).run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT 1")[0].as<int>();
    });
    CO_ASSERT_TRUE(fine.has_value());
    EXPECT_TRUE(pool.database_up());
    EXPECT_TRUE(routing.database_up());

    auto again = co_await routing.run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT 2")[0].as<int>();
    });
    CO_ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, 2) << "the routing lane reconnected by itself";
  });
}

// Whether this process may use SCHED_FIFO (root or CAP_SYS_NICE, as in CI): the test below then
// checks what the routing lane gets, and otherwise that the lane works on without it.
bool may_use_realtime() {
  result<void> made;
  std::thread([&] { made = make_realtime(1); }).join();
  return made.has_value();
}

TEST(PoolLanes, TheRoutingLanesWorkersAndBackendsRunAtItsRealtimePriorityAndNoOtherLanes) {
  testing::test_database db;
  auto config = lanes_config(db, 1, 1);
  config.routing_realtime_priority = 5;
  store::connection_pool pool(config);
  const int expected = may_use_realtime() ? 5 : 0;
  struct priorities {
    int worker;
    int backend;
  };
  const auto read = [](pqxx::connection& c) {
    return priorities{realtime_priority_of(), realtime_priority_of(c.backendpid())};
  };
  asio::io_context loop;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 2; ++i) {  // the second time on the connection and worker the first one left
      auto routing = co_await pool.lane(store::pool_lane::routing).run(read);
      auto writes = co_await pool.lane(store::pool_lane::writes).run(read);
      auto general = co_await pool.lane(store::pool_lane::general).run(read);
      EXPECT_TRUE(routing && writes && general);
      if (!routing || !writes || !general) co_return;
      EXPECT_EQ(routing->worker, expected);
      EXPECT_EQ(routing->backend, expected);
      EXPECT_EQ(writes->worker, 0);
      EXPECT_EQ(writes->backend, 0);
      EXPECT_EQ(general->worker, 0);
      EXPECT_EQ(general->backend, 0);
    }
  });
  pool.close();
}

// The governor (app/server.cpp) gives the routing lane's path its priority up and takes it again:
// every worker and backend the lane has follows, and one that joins meanwhile (a reconnect) too.
TEST(PoolLanes, TheRoutingLanesPathGivesItsRealtimePriorityUpAndTakesItAgainWorkersAndBackends) {
  if (!may_use_realtime()) GTEST_SKIP() << "needs root or CAP_SYS_NICE";
  testing::test_database db;
  auto config = lanes_config(db, 1, 1);
  config.routing_realtime_priority = 5;
  store::connection_pool pool(config);
  auto& routing = pool.lane(store::pool_lane::routing);
  struct seen {
    pid_t worker;
    int backend;
    int worker_priority;  // as the worker saw itself and its backend
    int backend_priority;
    bool at(int priority) const { return worker_priority == priority && backend_priority == priority; }
  };
  const auto read = [](pqxx::connection& c) {
    return seen{::gettid(), c.backendpid(), realtime_priority_of(), realtime_priority_of(c.backendpid())};
  };
  const auto the_path_is = [&](const seen& s) {
    return routing.realtime_path() == std::vector<pid_t>{s.worker, static_cast<pid_t>(s.backend)};
  };
  const auto seen_from_here_at = [](const seen& s, int priority) {
    return realtime_priority_of(s.worker) == priority && realtime_priority_of(s.backend) == priority;
  };
  asio::io_context loop;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto first = co_await routing.run(read);
    CO_ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(first->at(5));
    EXPECT_TRUE(the_path_is(*first));
    EXPECT_TRUE(pool.lane(store::pool_lane::writes).realtime_path().empty());
    EXPECT_TRUE(pool.lane(store::pool_lane::general).realtime_path().empty());

    CO_ASSERT_TRUE(routing.set_realtime(false).has_value());
    EXPECT_TRUE(seen_from_here_at(*first, 0));
    auto demoted = co_await routing.run(read);
    CO_ASSERT_TRUE(demoted.has_value());
    EXPECT_TRUE(demoted->at(0));

    // Its backend killed: the next connection's backend joins the path at the normal policy.
    auto killed = co_await routing.run([](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec("SELECT pg_terminate_backend(pg_backend_pid())");
    });
    EXPECT_FALSE(killed.has_value());
    auto reconnected = co_await routing.run(read);
    CO_ASSERT_TRUE(reconnected.has_value());
    EXPECT_NE(reconnected->backend, first->backend);
    EXPECT_TRUE(reconnected->at(0));
    EXPECT_TRUE(the_path_is(*reconnected)) << "the killed backend left the path";

    CO_ASSERT_TRUE(routing.set_realtime(true).has_value());
    EXPECT_TRUE(seen_from_here_at(*reconnected, 5));
    auto promoted = co_await routing.run(read);
    CO_ASSERT_TRUE(promoted.has_value());
    EXPECT_TRUE(promoted->at(5));
  });
  pool.close();
}

// What the governor measures: the path's CPU grows with the SQL the lane runs (its backend's
// time is counted, not only the worker's wait).
TEST(PoolLanes, TheRoutingLanesPathCountsTheCpuItsBackendsSpend) {
  testing::test_database db;
  auto config = lanes_config(db, 1, 0);
  config.routing_realtime_priority = 5;  // refused without root: the path is still listed
  store::connection_pool pool(config);
  auto& routing = pool.lane(store::pool_lane::routing);
  const auto sum = [](int n) {
    return [n](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return tx.exec1("SELECT sum(i) FROM generate_series(1, " + std::to_string(n) + ") i")[0].as<long long>();
    };
  };
  cpu_meter meter;
  std::optional<std::chrono::nanoseconds> backend_before;
  std::optional<std::chrono::nanoseconds> backend_after;
  std::chrono::nanoseconds used{0};
  asio::io_context loop;
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE((co_await routing.run(sum(1))).has_value());
    const auto path = routing.realtime_path();
    CO_ASSERT_TRUE(path.size() == 2u);
    meter.sample(path);
    backend_before = cpu_time_of(path[1]);
    CO_ASSERT_TRUE((co_await routing.run(sum(3'000'000))).has_value());
    backend_after = cpu_time_of(path[1]);
    used = meter.sample(routing.realtime_path());
  });
  pool.close();
  ASSERT_TRUE(backend_before && backend_after);
  EXPECT_GT(*backend_after, *backend_before);
  EXPECT_GE(used, *backend_after - *backend_before) << "the backend's time is the path's";
}

}  // namespace
}  // namespace switchboard
