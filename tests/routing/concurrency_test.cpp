// Two nodes (two pools, two loops on their own threads) route 10,000 calls against 500
// operators at once, operators taking waiting calls as they finish: afterwards no call was given
// twice, no operator held two calls, and every reservation was found where it was made.
#include "routing_world.hpp"

#include <boost/asio/detached.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace switchboard {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr int operators = 500;
constexpr int calls = 10'000;
constexpr int first_wave = 2'000;  // offered before anyone finishes: 500 reserved, the rest wait
constexpr int queues = 10;

struct node {
  explicit node(const std::string& url) : pool({.url = url, .size = 4, .application_name = "node"}) {}
  asio::io_context loop;
  store::connection_pool pool;
};

struct shift {
  std::atomic<int> next_call{0};
  std::atomic<int> errors{0};
  std::atomic<int> finished{0};
  std::atomic<int> lost{0};  // a reservation not found where it was made
  std::mutex mutex;
  std::unordered_map<std::int64_t, std::int64_t> served;  // call -> operator
  int given_twice = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> first_reservations;  // operator, call

  void record(std::int64_t call, std::int64_t op) {
    std::lock_guard lock(mutex);
    if (!served.emplace(call, op).second) ++given_twice;
  }

  // The operator finishes his call (as the calls part would) and takes the next waiting one.
  asio::awaitable<void> work(node& n, std::int64_t op, std::int64_t call) {
    for (;;) {
      record(call, op);
      auto done = co_await n.pool.run([op, call](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx
            .exec_params(
                "UPDATE presence SET state = 'ready', current_call_id = NULL, reserved_until = NULL, "
                "last_call_ended = clock_timestamp(), calls_handled = calls_handled + 1 "
                "WHERE operator_id = $1 AND state = 'reserved' AND current_call_id = $2",
                op, call)
            .affected_rows();
      });
      if (!done || *done != 1) {
        ++lost;
        co_return;
      }
      ++finished;
      auto next = co_await store::pick_call(n.pool, op, 600s);
      if (!next) ++errors;
      if (!next || !*next) co_return;
      call = (*next)->call_id;
    }
  }

  asio::awaitable<void> caller(node& n, int limit, bool finish) {
    for (int i = next_call++; i < limit; i = next_call++) {
      store::call_offer offer;
      offer.route_point = "rp" + std::to_string(i % queues);
      offer.pbx_call_id = "load-" + std::to_string(i);
      offer.caller = "+1" + std::to_string(i);
      offer.node = n.pool.config().application_name;
      offer.reservation = 600s;
      auto d = co_await store::offer_call(n.pool, offer);
      if (!d) {
        ++errors;
        ADD_FAILURE() << d.error().message();
        continue;
      }
      if (d->kind == store::route_kind::operator_reserved) {
        if (finish) {
          co_await work(n, d->operator_id, d->call_id);
        } else {
          std::lock_guard lock(mutex);
          first_reservations.emplace_back(d->operator_id, d->call_id);
        }
      } else if (d->kind != store::route_kind::queued) {
        ++errors;
      }
    }
  }
};

// Runs each node's loop on its own thread until its coroutines are done.
void run_nodes(std::vector<std::unique_ptr<node>>& nodes) {
  std::vector<std::thread> threads;
  for (auto& n : nodes)
    threads.emplace_back([&n] {
      n->loop.run();
      n->loop.restart();
    });
  for (auto& t : threads) t.join();
}

TEST(RoutingConcurrency, TwoNodesRouteTenThousandCallsAgainstFiveHundredOperators) {
  testing::routing_world w;
  const auto t = w.tenant("load");
  w.exec("INSERT INTO skills (tenant_id, name) VALUES ($1, 'general')", t);
  w.exec(
      "INSERT INTO operators (tenant_id, login, password_hash) "
      "SELECT $1, 'op' || i, '$2a$08$' || repeat('a', 53) FROM generate_series(1, $2) i",
      t, operators);
  w.exec(
      "INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) "
      "SELECT $1, o.operator_id, s.skill_id, 1 + o.operator_id % 10 FROM operators o, skills s "
      "WHERE o.tenant_id = $1 AND s.tenant_id = $1",
      t);
  w.exec("UPDATE presence SET state = 'ready', device = 'dev' || operator_id WHERE tenant_id = $1", t);
  const char* strategies[] = {"longest_idle", "fewest_calls", "round_robin", "best_skill", "sticky"};
  for (int i = 0; i < queues; ++i) {
    const auto q =
        w.queue(t, "q" + std::to_string(i), {{"general", 1}}, "strategy = '" + std::string(strategies[i % 5]) + "'");
    w.route_point(t, "rp" + std::to_string(i), q);
  }

  // queue figures as the router keeps them (refresh_queue_stats every few seconds)
  w.exec("SELECT refresh_queue_stats()");
  std::vector<std::unique_ptr<node>> nodes;
  nodes.push_back(std::make_unique<node>(w.url()));
  nodes.push_back(std::make_unique<node>(w.url()));
  shift s;

  // wave 1: every operator gets reserved, the rest wait
  for (auto& n : nodes)
    for (int c = 0; c < 8; ++c) asio::co_spawn(n->loop, s.caller(*n, first_wave, false), asio::detached);
  run_nodes(nodes);
  ASSERT_EQ(s.first_reservations.size(), static_cast<std::size_t>(operators));

  // wave 2: operators finish and take waiting calls while both nodes offer the rest
  s.next_call = first_wave;  // each wave-1 caller drew one number past the wave when it stopped
  w.exec("SELECT refresh_queue_stats()");
  for (std::size_t i = 0; i < s.first_reservations.size(); ++i) {
    auto& n = *nodes[i % nodes.size()];
    const auto [op, call] = s.first_reservations[i];
    asio::co_spawn(n.loop, s.work(n, op, call), asio::detached);
  }
  for (auto& n : nodes)
    for (int c = 0; c < 8; ++c) asio::co_spawn(n->loop, s.caller(*n, calls, true), asio::detached);
  run_nodes(nodes);

  // calls queued while every operator was between pick_call and ready: the router's recheck
  // timer would take them; here the free operators do, until nobody waits
  for (int round = 0; round < 100 && w.scalar("SELECT count(*) FROM waiting_calls") != "0"; ++round) {
    auto ready = w.exec("SELECT operator_id FROM presence WHERE tenant_id = $1 AND state = 'ready'", t);
    for (std::size_t i = 0; i < ready.size(); ++i) {
      auto& n = *nodes[i % nodes.size()];
      const auto op = ready[i][0].as<std::int64_t>();
      asio::co_spawn(
          n.loop,
          [&s, &n, op]() -> asio::awaitable<void> {
            auto next = co_await store::pick_call(n.pool, op, 600s);
            if (next && *next) co_await s.work(n, op, (*next)->call_id);
          },
          asio::detached);
    }
    run_nodes(nodes);
  }

  EXPECT_EQ(s.errors.load(), 0);
  EXPECT_EQ(s.lost.load(), 0) << "reservations not found where they were made";
  EXPECT_EQ(s.given_twice, 0) << "calls given to two operators";
  EXPECT_EQ(s.finished.load(), calls);
  EXPECT_EQ(s.served.size(), static_cast<std::size_t>(calls));
  EXPECT_EQ(w.scalar("SELECT count(*) FROM waiting_calls"), "0");
  EXPECT_EQ(w.scalar("SELECT count(*) || ' ' || count(DISTINCT call_id) FROM call_events WHERE kind = 'reserved'"),
            "10000 10000");
  EXPECT_EQ(w.scalar("SELECT sum(calls_handled) FROM presence WHERE tenant_id = $1", t), "10000");
  EXPECT_EQ(w.scalar("SELECT count(*) FROM presence WHERE tenant_id = $1 AND state <> 'ready'", t), "0");
  // every operator's reservations = the calls he finished: none overwritten, none lost
  EXPECT_EQ(w.scalar("SELECT count(*) FROM presence p WHERE p.tenant_id = $1 AND p.calls_handled <> "
                     "(SELECT count(*) FROM call_events e WHERE e.operator_id = p.operator_id AND e.kind = 'reserved')",
                     t),
            "0");
  EXPECT_EQ(w.scalar("SELECT count(DISTINCT node) FROM calls WHERE tenant_id = $1", t), "1")
      << "both pools carry the same node name here";
}

}  // namespace
}  // namespace switchboard
