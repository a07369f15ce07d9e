// Switchboard's csta_link against the simulated PBX over loopback: both handshakes, monitors,
// routing, every call-control command with its events, heartbeat loss with reconnect and resync,
// link-down failures during an outage, and the PBX's default routing on a route timeout.
#include "switchboard/csta/link.hpp"
#include "switchboard/pbxsim/server.hpp"

#include "../support/coro_test.hpp"

#include <gtest/gtest.h>

namespace switchboard::pbxsim {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using switchboard::testing::run_coroutine;
using switchboard::testing::sleep_for;

// Every event the link reports, in order; waits poll with a safety limit, never a speed check.
struct recorder {
  std::vector<pbx::event> events;

  template <class T>
  std::size_t count() const {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(), [](const auto& e) { return std::holds_alternative<T>(e); }));
  }
  template <class T, class Pred>
  const T* find(Pred pred) const {
    for (const auto& e : events) {
      if (const auto* x = std::get_if<T>(&e); x && pred(*x)) return x;
    }
    return nullptr;
  }
  template <class T, class Pred>
  asio::awaitable<const T*> wait_for(Pred pred, std::chrono::milliseconds limit = 10s) {
    for (auto waited = 0ms; waited < limit; waited += 5ms) {
      if (const auto* x = find<T>(pred)) co_return x;
      co_await sleep_for(5ms);
    }
    co_return find<T>(pred);
  }
  template <class T>
  asio::awaitable<bool> wait_count(std::size_t n, std::chrono::milliseconds limit = 10s) {
    for (auto waited = 0ms; waited < limit && count<T>() < n; waited += 5ms) co_await sleep_for(5ms);
    co_return count<T>() >= n;
  }
};

constexpr auto any = [](const auto&) { return true; };

simulator_config sim_config(session_style style) {
  return simulator_config{.model = {.operators = {"4711", "4712", "4713", "4799"},
                                    .route_points = {"800"},
                                    .default_device = "4799",
                                    .route_timeout = 30000ms,
                                    .auto_answer_delay = std::nullopt},
                          .generator = std::nullopt,
                          .server = {.style = style, .heartbeat_interval = 100ms, .heartbeat_misses = 3}};
}

csta::link_config link_config(std::uint16_t port, csta::session_style style) {
  csta::link_config c;
  c.port = port;
  c.session = style;
  c.devices = {"4711", "4712", "4713", "4799"};
  c.route_points = {"800"};
  c.request_timeout = 2000ms;
  c.heartbeat_interval = 100ms;
  c.heartbeat_misses = 3;
  c.reconnect_initial = 50ms;
  c.reconnect_max = 200ms;
  return c;
}

struct link_test : ::testing::TestWithParam<session_style> {
  asio::io_context loop;
  std::unique_ptr<simulator> sim;
  std::shared_ptr<csta::csta_link> link;
  recorder seen;

  void start(simulator_config config = sim_config(GetParam())) {
    sim = std::make_unique<simulator>(loop.get_executor(), config);
    sim->start();
    const auto style = GetParam() == session_style::system_status ? csta::session_style::system_status
                                                                  : csta::session_style::application_session;
    link = csta::csta_link::create(loop.get_executor(), link_config(sim->port(), style));
    link->on_event([this](const pbx::event& e) { seen.events.push_back(e); });
    link->start();
  }
  // `from` calls `to` and `to` answers: the call's id, or std::nullopt when a step failed.
  asio::awaitable<std::optional<std::string>> talking(std::string from, std::string to) {
    const auto made = co_await link->execute(pbx::make_call{.from = from, .to = to});
    if (!made) co_return std::nullopt;
    if (!co_await link->execute(pbx::answer_call{{made->call, to}})) co_return std::nullopt;
    co_return made->call;
  }
  // Up and every device resynced.
  asio::awaitable<bool> up() { co_return co_await seen.wait_count<pbx::resynced>(5); }

  void TearDown() override {
    if (link) link->stop();
    if (sim) sim->stop();
    loop.run_for(200ms);  // let the coroutines finish
    loop.restart();
  }
};

TEST_P(link_test, handshake_monitors_and_resyncs_every_device) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    EXPECT_EQ(seen.count<pbx::link_up>(), 1u);
    EXPECT_TRUE(link->is_up());
    EXPECT_EQ(sim->links().sessions_open, 1u);
    for (const auto* d : {"4711", "4712", "4713", "4799", "800"}) {
      EXPECT_TRUE(seen.find<pbx::resynced>([&](const auto& r) { return r.device == d && r.calls.empty(); })) << d;
    }
    // Heartbeats both ways keep the link up for many intervals.
    co_await sleep_for(500ms);
    EXPECT_EQ(seen.count<pbx::link_down>(), 0u);
  });
}

TEST_P(link_test, route_request_is_answered_with_route_select) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    const auto call = sim->offer({.caller = "+49305550042", .dialled = "800", .correlator = "42"});
    CO_ASSERT_TRUE(call.has_value());
    const auto* offered = co_await seen.wait_for<pbx::call_offered>(any);
    CO_ASSERT_TRUE(offered != nullptr);
    EXPECT_EQ(offered->route_point, "800");
    EXPECT_EQ(offered->caller, pbx::party::known("+49305550042"));
    EXPECT_EQ(offered->correlator, "42");
    const auto dialog = offered->dialog;
    const auto selected = co_await link->execute(pbx::route_select{.dialog = dialog, .destination = "4711"});
    EXPECT_TRUE(selected.has_value());
    const auto* ringing =
        co_await seen.wait_for<pbx::call_delivered>([](const auto& d) { return d.connection.device == "4711"; });
    CO_ASSERT_TRUE(ringing != nullptr);
    EXPECT_EQ(ringing->connection.call, *call);
    EXPECT_EQ(ringing->correlator, "42");
    EXPECT_TRUE(co_await link->execute(pbx::answer_call{{*call, "4711"}}));
    EXPECT_TRUE(
        co_await seen.wait_for<pbx::call_established>([](const auto& e) { return e.connection.device == "4711"; }));
    EXPECT_EQ(sim->stats().routed_by_cti, 1u);
  });
}

TEST_P(link_test, the_pbx_routes_to_its_default_device_when_the_link_does_not_answer) {
  auto config = sim_config(GetParam());
  config.model.route_timeout = 300ms;
  start(config);
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    const auto call = sim->offer({.caller = "+49305550001", .dialled = "800"});
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::call_offered>(any) != nullptr);
    EXPECT_TRUE(co_await seen.wait_for<pbx::route_ended>(any));
    EXPECT_TRUE(
        co_await seen.wait_for<pbx::call_delivered>([](const auto& d) { return d.connection.device == "4799"; }));
    EXPECT_EQ(sim->model().state_of(*call, "4799"), csta::local_connection_state::alerting);
    EXPECT_EQ(sim->stats().route_timeouts, 1u);
    EXPECT_EQ(sim->stats().default_routed, 1u);
  });
}

TEST_P(link_test, make_answer_hold_retrieve_consult_transfer_clear) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    const auto made = co_await link->execute(pbx::make_call{.from = "4711", .to = "4712"});
    CO_ASSERT_TRUE(made.has_value());
    const auto a = made->call;
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_initiated>([&](const auto& e) { return e.connection.call == a; }));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_originated>([&](const auto& e) { return e.connection.call == a; }));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_delivered>([&](const auto& e) {
      return e.connection == pbx::connection_id{a, "4712"};
    }));
    EXPECT_TRUE(co_await link->execute(pbx::answer_call{{a, "4712"}}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_established>([&](const auto& e) { return e.connection.call == a; }));

    EXPECT_TRUE(co_await link->execute(pbx::hold_call{{a, "4711"}}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_held>([&](const auto& e) { return e.connection.call == a; }));
    EXPECT_TRUE(co_await link->execute(pbx::retrieve_call{{a, "4711"}}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_retrieved>([&](const auto& e) { return e.connection.call == a; }));

    const auto consult = co_await link->execute(pbx::consult_call{.existing = {a, "4711"}, .to = "4713"});
    CO_ASSERT_TRUE(consult.has_value());
    const auto b = consult->call;
    EXPECT_NE(b, a);
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_delivered>([&](const auto& e) {
      return e.connection == pbx::connection_id{b, "4713"};
    }));
    EXPECT_TRUE(co_await link->execute(pbx::answer_call{{b, "4713"}}));
    EXPECT_TRUE(co_await link->execute(pbx::transfer_call{.held = {a, "4711"}, .active = {b, "4711"}}));
    const auto* moved = co_await seen.wait_for<pbx::call_transferred>(any);
    CO_ASSERT_TRUE(moved != nullptr);
    EXPECT_EQ(moved->primary_old_call, a);
    EXPECT_EQ(moved->secondary_old_call, b);
    EXPECT_EQ(moved->transferring, pbx::party::known("4711"));
    CO_ASSERT_TRUE(moved->connections.size() == 2u);
    const auto merged = moved->connections[0].new_connection->call;
    EXPECT_EQ(moved->connections[0].old_connection, (pbx::connection_id{a, "4712"}));
    EXPECT_EQ(moved->connections[1].new_connection, (pbx::connection_id{merged, "4713"}));

    EXPECT_TRUE(co_await link->execute(pbx::clear_connection{{merged, "4712"}}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_cleared>([&](const auto& e) { return e.call == merged; }));
    const auto snapshot = co_await link->execute(pbx::snapshot_device{"4713"});
    CO_ASSERT_TRUE(snapshot.has_value());
    EXPECT_TRUE(snapshot->empty());
  });
}

TEST_P(link_test, conference_deflect_single_step_and_operator_state) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    const auto talk = co_await talking("4711", "4712");
    CO_ASSERT_TRUE(talk.has_value());
    const auto a = *talk;
    const auto consult = co_await link->execute(pbx::consult_call{.existing = {a, "4711"}, .to = "4713"});
    CO_ASSERT_TRUE(consult.has_value());
    EXPECT_TRUE(co_await link->execute(pbx::answer_call{{consult->call, "4713"}}));
    EXPECT_TRUE(co_await link->execute(pbx::conference_call{.held = {a, "4711"}, .active = {consult->call, "4711"}}));
    const auto* conf = co_await seen.wait_for<pbx::call_conferenced>(any);
    CO_ASSERT_TRUE(conf != nullptr);
    EXPECT_EQ(conf->added_party, pbx::party::known("4713"));
    EXPECT_EQ(conf->connections.size(), 3u);
    const auto c = conf->connections[0].new_connection->call;

    // 4713 leaves, 4711 passes 4712 on to 4799 without consultation.
    EXPECT_TRUE(co_await link->execute(pbx::clear_connection{{c, "4713"}}));
    EXPECT_TRUE(co_await link->execute(pbx::single_step_transfer{.active = {c, "4711"}, .to = "4799"}));
    const auto* sst =
        co_await seen.wait_for<pbx::call_transferred>([](const auto& t) { return t.cause == "singleStepTransfer"; });
    CO_ASSERT_TRUE(sst != nullptr);
    const auto d = sst->connections.back().new_connection->call;
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_delivered>([&](const auto& e) {
      return e.connection == pbx::connection_id{d, "4799"};
    }));
    // 4799 does not answer but deflects to 4713.
    EXPECT_TRUE(co_await link->execute(pbx::deflect_call{.connection = {d, "4799"}, .to = "4713"}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_diverted>([&](const auto& e) { return e.connection.call == d; }));
    EXPECT_TRUE(co_await seen.wait_for<pbx::call_delivered>([&](const auto& e) {
      return e.connection == pbx::connection_id{d, "4713"};
    }));

    EXPECT_TRUE(co_await link->execute(
        pbx::set_operator_state{.device = "4711", .state = pbx::operator_state::logged_on, .agent_id = "A1"}));
    EXPECT_TRUE(co_await link->execute(pbx::set_operator_state{.device = "4711", .state = pbx::operator_state::ready}));
    EXPECT_TRUE(co_await seen.wait_for<pbx::operator_changed>(
        [](const auto& o) { return o.device == "4711" && o.state == pbx::operator_state::ready; }));

    // An impossible request comes back as the PBX's refusal, and the link stays up.
    const auto refused = co_await link->execute(pbx::answer_call{{"424242", "4711"}});
    CO_ASSERT_TRUE(!refused.has_value());
    EXPECT_TRUE(refused.error().is(errc::pbx_rejected));
    EXPECT_TRUE(link->is_up());
  });
}

TEST_P(link_test, heartbeat_loss_reconnects_and_resyncs) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    const auto call = co_await talking("4711", "4712");
    CO_ASSERT_TRUE(call.has_value());
    sim->silence_heartbeats(true);
    CO_ASSERT_TRUE(co_await seen.wait_count<pbx::link_down>(1));
    sim->silence_heartbeats(false);
    CO_ASSERT_TRUE(co_await seen.wait_count<pbx::link_up>(2));
    CO_ASSERT_TRUE(co_await seen.wait_count<pbx::resynced>(10));
    // The snapshot after the reconnect shows the call that went on during the gap.
    const auto* again = co_await seen.wait_for<pbx::resynced>([&](const auto& r) {
      return r.device == "4712" && r.calls.size() == 1 && r.calls[0].connection.call == *call;
    });
    CO_ASSERT_TRUE(again != nullptr);
    EXPECT_EQ(again->calls[0].state, pbx::connection_state::connected);
  });
}

TEST_P(link_test, requests_fail_with_link_down_during_an_outage) {
  start();
  run_coroutine(loop, [&]() -> asio::awaitable<void> {
    CO_ASSERT_TRUE(co_await up());
    sim->drop_link(1000ms);
    CO_ASSERT_TRUE(co_await seen.wait_count<pbx::link_down>(1));
    const auto failed = co_await link->execute(pbx::make_call{.from = "4711", .to = "4712"});
    CO_ASSERT_TRUE(!failed.has_value());
    EXPECT_TRUE(failed.error().is(errc::pbx_link_down));
    // While the link is down the PBX routes by itself.
    const auto call = sim->offer({.caller = "+49305550003", .dialled = "800"});
    EXPECT_EQ(sim->model().state_of(*call, "4799"), csta::local_connection_state::alerting);
    CO_ASSERT_TRUE(co_await seen.wait_count<pbx::link_up>(2));
    EXPECT_TRUE(co_await link->execute(pbx::make_call{.from = "4711", .to = "4712"}));
  });
}

INSTANTIATE_TEST_SUITE_P(styles, link_test,
                         ::testing::Values(session_style::system_status, session_style::application_session),
                         [](const auto& info) {
                           return info.param == session_style::system_status ? std::string("system_status")
                                                                             : std::string("application_session");
                         });

}  // namespace
}  // namespace switchboard::pbxsim
