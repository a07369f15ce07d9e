// End to end on loopback: the simulated PBX (CSTA XML over TCP) + the CSTA link + the router on
// a real PostgreSQL + the call-control layer + the desktop server with operators' desktop
// clients. Inbound calls are routed, ring, are answered and end; the records, the journal, the
// presence table and the screen pops must all agree.
#include "e2e_fixture.hpp"

#include <map>
#include <set>

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using e2e::asio::awaitable;

constexpr const char* seed_sql = R"(
  INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
  INSERT INTO queues (tenant_id, name, strategy, wrap_up_seconds) VALUES (1, 'sales', 'longest_idle', 1);
  INSERT INTO route_points (tenant_id, device, name, default_queue_id) VALUES (1, '5000', 'Sales', 1);
  INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) VALUES
    (1, 'alice', hash_password('pw'), 'Alice', '2001'),
    (1, 'bob', hash_password('pw'), 'Bob', '2002'),
    (1, 'carol', hash_password('pw'), 'Carol', '2003');
  INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role) VALUES
    (1, 'sam', hash_password('pw'), 'Sam', '2100', 'supervisor');
  INSERT INTO customers (tenant_id, phone, name, tier) VALUES
    (1, '+4930555001', 'Miller', 'gold'), (1, '+4930555002', 'Schmidt', 'vip'), (1, '+4930555003', 'Garcia', 'standard');
)";

class EndToEnd : public e2e::end_to_end {
 protected:
  void SetUp() override {
    start(seed_sql, {.phones = {"2001", "2002", "2003"}, .route_points = {"5000"}, .default_device = "2003"});
  }

  void TearDown() override {
    if (supervisor_) supervisor_->close();
    end_to_end::TearDown();
  }

  std::unique_ptr<desk::client> supervisor_;
  int supervisor_answered_ = 0;
  int supervisor_operator_calls_ = 0;
};

TEST_F(EndToEnd, InboundCallsAreRoutedAnsweredRecordedAndPopped) {
  constexpr int calls_per_round = 3;
  constexpr int rounds = 2;
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 20s));
        CO_ASSERT_TRUE(co_await staff({{"alice", "2001"}, {"bob", "2002"}, {"carol", "2003"}}));
        supervisor_ = std::make_unique<desk::client>(loop_.get_executor());
        CO_ASSERT_TRUE((co_await supervisor_->connect("127.0.0.1", desk_->local_endpoint().port())).has_value());
        CO_ASSERT_TRUE((co_await supervisor_->request(desk::req::hello{.client = "e2e"})).has_value());
        auto sam = co_await supervisor_->request(
            desk::req::login{.tenant = "acme", .login = "sam", .password = "pw", .device = "2100"});
        CO_ASSERT_TRUE(sam && std::holds_alternative<desk::ok_reply>(*sam));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return db_.scalar("SELECT count(*) FROM presence WHERE state = 'ready'") == "3"; }, 10s));
        for (int round = 0; round < rounds; ++round) {
          for (int i = 0; i < calls_per_round; ++i)
            sim_->offer(pbxsim::inbound_call{.caller = "+493055500" + std::to_string(i + 1),
                                             .dialled = "5000",
                                             .correlator = "lang=en;account=" + std::to_string(100 + i),
                                             .talk_time = 1500ms});
          // Every call of the round ends, and every operator is ready again after his wrap-up.
          CO_ASSERT_TRUE(co_await wait_until(
              [&] {
                return centre_->counters().calls_ended == static_cast<std::uint64_t>((round + 1) * calls_per_round) &&
                       centre_->pending_writes() == 0 &&
                       db_.scalar("SELECT count(*) FROM presence WHERE state = 'ready'") == "3";
              },
              40s));
        }
        co_await collect_offers();
        // The supervisor's live figures reach the day's total (pushed when they change).
        for (;;) {
          auto figures = co_await supervisor_->expect<desk::stats_event>(10s);
          CO_ASSERT_TRUE(figures.has_value());
          CO_ASSERT_TRUE(figures->queues.size() == 1u);
          supervisor_answered_ = figures->queues[0].answered;
          supervisor_operator_calls_ = 0;
          for (const auto& o : figures->operators) supervisor_operator_calls_ += o.calls_today;
          if (supervisor_answered_ == calls_per_round * rounds && supervisor_operator_calls_ == supervisor_answered_)
            break;
        }
      },
      120s);
  EXPECT_EQ(supervisor_answered_, calls_per_round * rounds);
  EXPECT_EQ(supervisor_operator_calls_, calls_per_round * rounds) << "the per-operator figures add up to the queue's";

  const int total = calls_per_round * rounds;
  // Exactly one complete record per call, answered by an operator, times in order.
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM calls"), std::to_string(total));
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM calls WHERE disposition = 'answered' AND operator_id IS NOT NULL "
                       "AND offered_at <= answered_at AND answered_at <= ended_at AND talk_seconds > 0"),
            std::to_string(total));
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM calls WHERE wrap_up_seconds IS NOT NULL"), std::to_string(total));
  // The journal tells each call's story in order.
  EXPECT_EQ(db_.scalar("SELECT count(DISTINCT call_id) FROM call_events WHERE kind = 'answered'"),
            std::to_string(total));
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events WHERE kind = 'ended'"), std::to_string(total));
  // Operators are back to ready with their calls counted.
  EXPECT_EQ(db_.scalar("SELECT sum(calls_handled) FROM presence"), std::to_string(total));
  EXPECT_EQ(sim_->stats().routed_by_cti, static_cast<std::uint64_t>(total));
  EXPECT_EQ(sim_->stats().default_routed, 0u);

  // Every screen pop reached the operator whose phone rang, with the caller's customer record
  // and the IVR data; nobody was offered two calls at once (each record's operator got its pop).
  std::map<std::string, std::string> operator_of_call;  // call_id -> operator_id
  for (const auto& row : rows("SELECT call_id, operator_id FROM calls")) operator_of_call[row[0]] = row[1];
  std::size_t pops = 0;
  for (const auto& d : desktops_) {
    std::set<std::int64_t> seen;
    for (const auto& offer : d.received.offers) {
      ++pops;
      EXPECT_TRUE(seen.insert(offer.call.call_id).second) << d.login << " got call " << offer.call.call_id << " twice";
      EXPECT_EQ(operator_of_call[std::to_string(offer.call.call_id)], std::to_string(d.operator_id)) << d.login;
      ASSERT_TRUE(offer.customer.is_object()) << d.login;
      EXPECT_EQ(offer.customer.value("phone", ""), offer.call.caller);
      EXPECT_EQ(offer.ivr.value("lang", ""), "en");
      EXPECT_EQ(offer.call.queue.value_or(""), "sales");
    }
  }
  EXPECT_EQ(pops, static_cast<std::size_t>(total));
}

// The queue has no wait device: a call nobody can take waits at its route point, the routing
// dialog open, until an operator is ready or the PBX's routeing timer gives it to its default.
class QueuedAtTheRoutePoint : public e2e::end_to_end {
 protected:
  void SetUp() override {
    start(seed_sql, {.phones = {"2001", "2002", "2003", "2099"},
                     .route_points = {"5000"},
                     .default_device = "2099",
                     .pbx_route_timeout = 6s});
  }

  awaitable<bool> alice_logged_in_not_ready() {
    if (!co_await wait_until([&] { return link_->is_up(); }, 20s)) co_return false;
    auto alice = co_await log_in("alice", "2001");
    if (!alice) co_return false;
    desktops_.push_back(std::move(*alice));
    co_return co_await wait_until(
        [&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "not_ready"; }, 20s);
  }
};

TEST_F(QueuedAtTheRoutePoint, TheCallRingsAtTheFirstOperatorWhoBecomesReady) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_logged_in_not_ready());
        auto call = sim_->offer({.caller = "+4930555002", .dialled = "5000", .talk_time = 1s});
        CO_ASSERT_TRUE(call.has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 20s));
        // The caller is still at the route point: nothing was sent to the PBX's default.
        CO_ASSERT_TRUE(sim_->model().state_of(*call, "5000") == csta::local_connection_state::alerting);
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::ready{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), desk::call_state::talking));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), desk::call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1 && settled(); }, 30s));
      },
      120s);
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE disposition = 'answered' AND operator_id = 1 "
                  "AND queued_at IS NOT NULL AND offered_at <= queued_at AND queued_at <= answered_at"),
            1);
  ASSERT_EQ(at("alice").received.offers.size(), 1u);
  EXPECT_EQ(at("alice").received.offers[0].customer.value("name", ""), "Schmidt");
  EXPECT_EQ(sim_->stats().routed_by_cti, 1u);
  EXPECT_EQ(sim_->stats().default_routed, 0u);
}

TEST_F(QueuedAtTheRoutePoint, WhenThePbxTimerRunsOutTheCallIsDefaultRoutedAndNoLongerOffered) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_logged_in_not_ready());
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555002", .dialled = "5000", .talk_time = 1s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 20s));
        // The PBX gives the call to its default device (which answers it); it leaves the queue.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 1 && settled() && sim_->stats().active_calls == 0 &&
                     count("SELECT count(*) FROM waiting_calls") == 0;
            },
            60s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::ready{})));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "ready"));
        co_await collect_offers();
      },
      120s);
  EXPECT_EQ(scalar("SELECT disposition FROM calls"), "default_routed");
  EXPECT_EQ(count("SELECT count(*) FROM call_events WHERE kind = 'withdrawn'"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM waiting_calls"), 0);
  EXPECT_TRUE(at("alice").received.offers.empty());
  EXPECT_EQ(scalar("SELECT state FROM presence WHERE operator_id = 1"), "ready");
  EXPECT_EQ(sim_->stats().default_routed, 1u);
  EXPECT_EQ(sim_->stats().route_timeouts, 1u);
}

TEST_F(QueuedAtTheRoutePoint, ARouteSelectToABusyPhoneGivesTheOperatorBackAndTheCallToThePbxDefault) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_logged_in_not_ready());
        // Her phone takes a call the PBX does not report to us (its monitor is lost: no event for
        // 2001 reaches the server), and she makes herself ready: routing offers her a call her phone
        // cannot take. (A call the server sees keeps her busy when she goes ready: CallControl.)
        sim_->model().remove_monitor("2001");
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930999", .dialled = "2001", .talk_time = 10min}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return sim_->model().is_busy("2001"); }, 20s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::ready{})));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "ready"));
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555002", .dialled = "5000", .talk_time = 1s}).has_value());
        // The PBX refuses the busy phone; she is free again at once, the call goes to the default.
        CO_ASSERT_TRUE(co_await until_call(at("alice"), desk::call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 1 && settled() &&
                     scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready";
            },
            60s));
      },
      120s);
  EXPECT_EQ(scalar("SELECT disposition FROM calls WHERE route_point_id IS NOT NULL"), "default_routed");
  EXPECT_EQ(count("SELECT count(*) FROM call_events WHERE kind = 'reservation_released' AND operator_id = 1"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM call_events e JOIN calls c USING (call_id) WHERE c.route_point_id IS NOT "
                  "NULL AND e.kind IN ('reservation_expired', 'ringing')"),
            0);
  // The call the server never saw has no record.
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE route_point_id IS NULL"), 0);
  EXPECT_EQ(sim_->stats().default_routed, 1u);
  EXPECT_EQ(sim_->stats().route_timeouts, 0u);
}

}  // namespace
}  // namespace switchboard
