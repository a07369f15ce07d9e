// The router end to end on a real PostgreSQL with a recording sink: answers, queue hand-over,
// escalation and max-wait timers, reservation expiry, NOTIFY refresh, and the fallback on a
// database outage or a route_call slower than the route timeout (its late decision undone).
#include "switchboard/routing/router.hpp"

#include "coro_test.hpp"
#include "routing_world.hpp"
#include "switchboard/metrics/metrics.hpp"

#include <boost/asio/thread_pool.hpp>

#include <gtest/gtest.h>

#include <functional>

namespace switchboard {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::offer_at;
using testing::recording_sink;
using testing::routing_world;
using testing::run_coroutine;

// Waits (on the loop) until `condition` holds, for at most 20 s.
asio::awaitable<bool> eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 2000 && !condition(); ++i) co_await testing::sleep_for(10ms);
  co_return condition();
}

routing::call_offered call_at(const std::string& route_point, const std::string& caller = "+100") {
  const auto o = offer_at(route_point, caller);
  return {o.route_point, o.pbx_call_id, o.caller, o.dialled, o.ivr_data, "dialog-" + o.pbx_call_id};
}

routing::router_config quiet_config() {
  routing::router_config c;
  c.listen_for_rule_changes = false;
  return c;
}

// The loop outlives the pool and the router (members are destroyed in reverse order).
struct router_fixture {
  explicit router_fixture(routing::router_config config = quiet_config(), std::string url = "")
      : pool({.url = url.empty() ? world.url() : url, .size = 2}),
        router(loop.get_executor(), blocking.get_executor(), pool, sink, std::move(config), &counters) {}

  std::int64_t tenant_with_queue(const std::string& settings = "", const testing::skill_levels& skills = {}) {
    tenant = world.tenant("t");
    queue = world.queue(tenant, "q", skills, settings);
    world.route_point(tenant, "rp", queue);
    return queue;
  }
  std::string state_of(std::int64_t op) {
    return world.scalar("SELECT state FROM presence WHERE operator_id = $1", op);
  }

  routing_world world;
  asio::io_context loop;
  asio::thread_pool blocking{1};
  store::connection_pool pool;
  recording_sink sink;
  metrics::registry counters;
  routing::router router;
  std::int64_t tenant = 0;
  std::int64_t queue = 0;
};

TEST(Router, RoutesToAFreeOperatorAndOffersHisDesktop) {
  router_fixture f;
  f.tenant_with_queue();
  const auto op = f.world.operator_(f.tenant, "a", {});
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.route(call_at("rp"));
    co_await f.router.route(call_at("nowhere"));
  });
  ASSERT_EQ(f.sink.selects.size(), 1u);
  EXPECT_EQ(f.sink.selects[0].destination, "a-" + std::to_string(f.tenant));
  EXPECT_EQ(f.sink.selects[0].operator_id, op);
  EXPECT_EQ(f.sink.selects[0].routing_dialog_id, "dialog-" + f.sink.selects[0].pbx_call_id);
  ASSERT_EQ(f.sink.offers.size(), 1u);
  EXPECT_EQ(f.sink.offers[0].operator_id, op);
  EXPECT_EQ(f.sink.offers[0].call_id, f.sink.selects[0].call_id);
  EXPECT_FALSE(f.sink.offers[0].from_queue);
  ASSERT_EQ(f.sink.ends.size(), 1u);  // unknown route point: the PBX default, not a fallback
  EXPECT_FALSE(f.sink.ends[0].fallback);
  EXPECT_EQ(f.state_of(op), "reserved");
}

// GET /metrics shows how each request was answered and how long the routing SQL took.
TEST(Router, CountsEveryAnswerByOutcomeAndEveryDecisionInItsMetrics) {
  router_fixture f;
  f.tenant_with_queue();
  f.world.operator_(f.tenant, "a", {});
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.route(call_at("rp"));       // the operator
    co_await f.router.route(call_at("rp"));       // queued: he is reserved
    co_await f.router.route(call_at("nowhere"));  // the PBX default
    // a call decided again after it ended meanwhile: gone, not a fallback
    const auto ended = f.sink.selects.at(0).call_id;
    f.world.exec("UPDATE calls SET ended_at = now(), disposition = 'abandoned_ringing' WHERE call_id = $1", ended);
    co_await f.router.reroute(call_at("rp"), ended);
  });
  const auto text = "\n" + f.counters.text();
  for (const auto* line : {"switchboard_route_answer_seconds_count{outcome=\"operator\"} 1\n",
                           "switchboard_route_answer_seconds_count{outcome=\"queued\"} 1\n",
                           "switchboard_route_answer_seconds_count{outcome=\"default\"} 1\n",
                           "switchboard_route_answer_seconds_count{outcome=\"gone\"} 1\n",
                           "switchboard_route_answer_seconds_count{outcome=\"fallback\"} 0\n",
                           "switchboard_route_decision_seconds_count 4\n",
                           "switchboard_route_answer_seconds_bucket{outcome=\"operator\",le=\"+Inf\"} 1\n"})
    EXPECT_NE(text.find(std::string("\n") + line), std::string::npos) << line << " not in" << text;
  // the times are in seconds: more than nothing, less than four route timeouts
  const std::string sum_line = "\nswitchboard_route_decision_seconds_sum ";
  const auto sum_at = text.find(sum_line);
  ASSERT_NE(sum_at, std::string::npos) << text;
  const double sum = std::stod(text.substr(sum_at + sum_line.size()));
  EXPECT_GT(sum, 0.0);
  EXPECT_LT(sum, 4 * 2.0);
}

TEST(Router, AWaitingCallGoesToTheOperatorWhoBecomesReady) {
  router_fixture f;
  f.tenant_with_queue("wait_destination = 'music'");
  const auto later = f.world.operator_(f.tenant, "a", {}, "wrap_up");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.route(call_at("rp"));
    EXPECT_EQ(f.router.waiting_calls(), 1u);
    f.world.exec("UPDATE presence SET state = 'ready' WHERE operator_id = $1", later);
    co_await f.router.operator_ready(later);
  });
  ASSERT_EQ(f.sink.selects.size(), 1u);
  EXPECT_EQ(f.sink.selects[0].destination, "music");
  EXPECT_EQ(f.sink.selects[0].position, 1);
  EXPECT_EQ(f.sink.selects[0].expected_wait_seconds, 180);  // default handle time, one operator
  ASSERT_EQ(f.sink.offers.size(), 1u);
  EXPECT_TRUE(f.sink.offers[0].from_queue);
  EXPECT_EQ(f.sink.offers[0].pbx_call_id, f.sink.selects[0].pbx_call_id);
  EXPECT_EQ(f.router.waiting_calls(), 0u);
}

TEST(Router, EscalationTimerHandsTheCallToALowerLevel) {
  router_fixture f;
  const auto q = f.tenant_with_queue("", {{"english", 8}});
  f.world.exec(
      "INSERT INTO queue_escalation_steps (tenant_id, queue_id, after_seconds, level_drop) VALUES ($1, $2, 1, 5)",
      f.tenant, q);
  const auto junior = f.world.operator_(f.tenant, "junior", {{"english", 3}});
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.refresh();
    co_await f.router.route(call_at("rp"));
    EXPECT_EQ(f.sink.offers.size(), 0u);
    EXPECT_TRUE(co_await eventually([&] { return !f.sink.offers.empty(); }));
  });
  ASSERT_EQ(f.sink.offers.size(), 1u);
  EXPECT_EQ(f.sink.offers[0].operator_id, junior);
  EXPECT_TRUE(f.sink.offers[0].from_queue);
}

TEST(Router, MaxWaitRedirectsToTheClosedDestination) {
  router_fixture f;
  f.tenant_with_queue("max_wait_seconds = 1, closed_destination = 'voicemail'");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.refresh();
    co_await f.router.route(call_at("rp"));
    EXPECT_TRUE(co_await eventually([&] { return !f.sink.redirects.empty(); }));
  });
  ASSERT_EQ(f.sink.redirects.size(), 1u);
  EXPECT_EQ(f.sink.redirects[0].destination, "voicemail");
  EXPECT_EQ(f.sink.redirects[0].pbx_call_id, f.sink.ends.at(0).pbx_call_id);
  EXPECT_EQ(f.router.waiting_calls(), 0u);
}

TEST(Router, ACallThatEndsStopsWaiting) {
  router_fixture f;
  f.tenant_with_queue();
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.route(call_at("rp"));
    CO_ASSERT_TRUE(f.router.waiting_calls() == 1u);
    co_await f.router.call_ended(f.sink.ends.at(0).call_id);
  });
  EXPECT_EQ(f.router.waiting_calls(), 0u);
  EXPECT_EQ(f.world.scalar("SELECT count(*) FROM waiting_calls"), "0");
  EXPECT_EQ(f.world.scalar("SELECT count(*) FROM call_events WHERE kind = 'withdrawn'"), "1");
}

TEST(Router, DatabaseOutageAnswersTheFallback) {
  const std::string nowhere = "postgresql:///postgres?host=/tmp/sbpg-routing-no-such-dir&user=postgres";
  routing::router_config with_fallback = quiet_config();
  with_fallback.fallback_destination = "reception";
  for (const auto& config : {quiet_config(), with_fallback}) {
    router_fixture f(config, nowhere);
    run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
      co_await f.router.route(call_at("rp"));
      co_await f.router.operator_ready(1);  // logged, nothing offered
    });
    EXPECT_TRUE(f.sink.offers.empty());
    EXPECT_NE(f.counters.text().find("switchboard_route_answer_seconds_count{outcome=\"fallback\"} 1"),
              std::string::npos);
    if (config.fallback_destination.empty()) {
      ASSERT_EQ(f.sink.ends.size(), 1u);
      EXPECT_TRUE(f.sink.ends[0].fallback);
      EXPECT_NE(f.sink.ends[0].reason.find("database unavailable"), std::string::npos) << f.sink.ends[0].reason;
    } else {
      ASSERT_EQ(f.sink.selects.size(), 1u);
      EXPECT_TRUE(f.sink.selects[0].fallback);
      EXPECT_EQ(f.sink.selects[0].destination, "reception");
    }
  }
}

TEST(Router, ARouteCallSlowerThanTheRouteTimeoutGetsTheFallbackAndIsUndone) {
  auto config = quiet_config();
  config.route_timeout = 200ms;
  router_fixture f(config);
  f.tenant_with_queue();
  const auto op = f.world.operator_(f.tenant, "a", {});
  f.world.exec(R"(CREATE OR REPLACE FUNCTION route_call(c calls) RETURNS route_target
                  LANGUAGE plpgsql VOLATILE AS $$
                  BEGIN
                    PERFORM pg_sleep(1);
                    RETURN route_call_by_rules(c);
                  END $$)");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    co_await f.router.route(call_at("rp"));  // would reserve the operator, too late
    CO_ASSERT_TRUE(f.sink.ends.size() == 1u);
    EXPECT_TRUE(f.sink.ends[0].fallback);
    EXPECT_TRUE(co_await eventually(
        [&] { return f.world.scalar("SELECT count(*) FROM call_events WHERE kind = 'reservation_released'") == "1"; }));
    EXPECT_EQ(f.state_of(op), "ready");

    f.world.exec("UPDATE presence SET state = 'not_ready', reason = 'break' WHERE operator_id = $1", op);
    co_await f.router.route(call_at("rp"));  // would queue the call, too late
    EXPECT_TRUE(co_await eventually(
        [&] { return f.world.scalar("SELECT count(*) FROM call_events WHERE kind = 'withdrawn'") == "1"; }));
  });
  ASSERT_EQ(f.sink.ends.size(), 2u);
  EXPECT_TRUE(f.sink.offers.empty());
  // Each late decision's call row goes to the sink, which closes it with the call.
  ASSERT_EQ(f.sink.late_records.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(f.sink.late_records[i].pbx_call_id, f.sink.ends[i].pbx_call_id);
    EXPECT_EQ(f.world.scalar("SELECT pbx_call_id FROM calls WHERE call_id = $1", f.sink.late_records[i].call_id),
              f.sink.ends[i].pbx_call_id);
  }
  EXPECT_EQ(f.world.scalar("SELECT count(*) FROM waiting_calls"), "0");
  EXPECT_EQ(f.router.waiting_calls(), 0u);
}

TEST(Router, AnExpiredReservationFreesTheOperatorForTheNextWaitingCall) {
  auto config = quiet_config();
  config.reservation_timeout = 1s;
  config.route_timeout = 500ms;
  config.expiry_interval = 100ms;
  router_fixture f(config);
  f.tenant_with_queue();
  const auto op = f.world.operator_(f.tenant, "a", {});
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    f.router.start();
    co_await f.router.route(call_at("rp"));  // reserved, never confirmed
    co_await f.router.route(call_at("rp"));  // waits
    CO_ASSERT_TRUE(f.sink.offers.size() == 1u);
    EXPECT_TRUE(co_await eventually([&] { return f.sink.offers.size() == 2u; }));
    f.router.stop();
  });
  ASSERT_EQ(f.sink.offers.size(), 2u);
  EXPECT_EQ(f.sink.offers[1].operator_id, op);
  EXPECT_EQ(f.sink.offers[1].call_id, f.sink.ends.at(0).call_id);
  EXPECT_TRUE(f.sink.offers[1].from_queue);
  EXPECT_EQ(f.world.scalar("SELECT call_id FROM call_events WHERE kind = 'reservation_expired'"),
            std::to_string(f.sink.offers[0].call_id));
}

TEST(Router, RuleChangesReachTheTimersThroughNotify) {
  auto config = quiet_config();
  config.listen_for_rule_changes = true;
  config.recheck_interval = 60s;  // only the new escalation step can hand the call over in time
  router_fixture f(config);
  const auto q = f.tenant_with_queue("", {{"english", 8}});
  const auto junior = f.world.operator_(f.tenant, "junior", {{"english", 3}});
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    f.router.start();
    EXPECT_TRUE(co_await eventually([&] { return f.router.refreshes() >= 1; }));
    const auto before = f.router.refreshes();
    // the LISTEN session may still be connecting: repeat the change until it is heard
    for (int i = 0; i < 50 && f.router.refreshes() == before; ++i) {
      f.world.exec("UPDATE queues SET name = name WHERE queue_id = $1", q);
      co_await testing::sleep_for(100ms);
    }
    EXPECT_GT(f.router.refreshes(), before);
    const auto heard = f.router.refreshes();
    f.world.exec(
        "INSERT INTO queue_escalation_steps (tenant_id, queue_id, after_seconds, level_drop) VALUES ($1, $2, 1, 5)",
        f.tenant, q);
    EXPECT_TRUE(co_await eventually([&] { return f.router.refreshes() > heard; }));
    co_await f.router.route(call_at("rp"));
    EXPECT_TRUE(co_await eventually([&] { return !f.sink.offers.empty(); }));
    f.router.stop();
  });
  ASSERT_EQ(f.sink.offers.size(), 1u);
  EXPECT_EQ(f.sink.offers[0].operator_id, junior);
}

}  // namespace
}  // namespace switchboard
