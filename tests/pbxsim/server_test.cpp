// The simulator over loopback with a tiny CSTA client: both session styles, heartbeats,
// monitors, a route request answered by the client, link loss and the fault switches.
#include "switchboard/pbxsim/server.hpp"

#include "../support/coro_test.hpp"
#include "test_client.hpp"

#include <gtest/gtest.h>

namespace switchboard::pbxsim {
namespace {

using namespace std::chrono_literals;
using boost::asio::awaitable;
using switchboard::testing::run_coroutine;
using switchboard::testing::sleep_for;
using testing::test_client;

simulator_config sim_config(session_style style = session_style::system_status) {
  return simulator_config{.model = {.operators = {"4711", "4712", "4799"},
                                    .route_points = {"800"},
                                    .default_device = "4799",
                                    .route_timeout = 30000ms,
                                    .auto_answer_delay = std::nullopt},
                          .generator = std::nullopt,
                          .server = {.style = style, .heartbeat_interval = 60000ms}};
}

// Polls `done` while the loop runs; false when `limit` passes first (a safety net, not a check
// of speed).
template <class Pred>
awaitable<bool> eventually(Pred done, std::chrono::milliseconds limit = 10s) {
  for (auto waited = 0ms; waited < limit; waited += 5ms) {
    if (done()) co_return true;
    co_await sleep_for(5ms);
  }
  co_return done();
}

// Connects and answers the first SystemStatus, as a CTI client in the SystemStatus style must.
awaitable<void> open_system_status_session(test_client& client, std::uint16_t port) {
  co_await client.connect(port);
  const auto status = co_await client.wait_for<csta::system_status>();
  if (!status) throw std::runtime_error("no SystemStatus from the simulator");
  co_await client.send(csta::system_status_response{}, status->first);
}

template <class T>
const T* as(const std::optional<csta::message>& m) {
  return m ? std::get_if<T>(&*m) : nullptr;
}

struct server_test : ::testing::Test {
  boost::asio::io_context loop;
};

TEST_F(server_test, system_status_handshake_register_and_heartbeats) {
  auto cfg = sim_config();
  cfg.server.heartbeat_interval = 100ms;
  simulator sim(loop.get_executor(), cfg);
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await client.connect(sim.port());
    const auto first = co_await client.wait_for<csta::system_status>();
    CO_ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->second.status, "normal");
    EXPECT_NE(first->first, csta::event_invoke_id);
    co_await client.send(csta::system_status_response{}, first->first);
    const auto reg = co_await client.request(csta::system_register{}, 1);
    CO_ASSERT_TRUE(as<csta::system_register_response>(reg) != nullptr);
    EXPECT_FALSE(as<csta::system_register_response>(reg)->sys_stat_register_id.empty());
    // The PBX keeps sending SystemStatus; each answered one keeps the link up.
    for (int i = 0; i < 3; ++i) {
      const auto beat = co_await client.wait_for<csta::system_status>();
      CO_ASSERT_TRUE(beat.has_value());
      EXPECT_NE(beat->first, first->first);
      co_await client.send(csta::system_status_response{}, beat->first);
    }
    // The client's own heartbeat is answered with its invoke id.
    EXPECT_TRUE(as<csta::system_status_response>(co_await client.request(csta::system_status{.status = "normal"}, 2)));
    const auto status = co_await client.request(csta::request_system_status{}, 3);
    CO_ASSERT_TRUE(as<csta::request_system_status_response>(status) != nullptr);
    EXPECT_EQ(as<csta::request_system_status_response>(status)->system_status, "normal");
    EXPECT_EQ(sim.links().sessions_open, 1u);
  });
}

TEST_F(server_test, unanswered_heartbeats_drop_the_link) {
  auto cfg = sim_config();
  cfg.server.heartbeat_interval = 20ms;
  cfg.server.heartbeat_misses = 2;
  simulator sim(loop.get_executor(), cfg);
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await client.connect(sim.port());
    EXPECT_TRUE(co_await client.closed_by_peer());
    EXPECT_TRUE(co_await eventually([&] { return sim.links().sessions_open == 0; }));
  });
}

TEST_F(server_test, application_session_start_reset_and_stop) {
  simulator sim(loop.get_executor(), sim_config(session_style::application_session));
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await client.connect(sim.port());
    // Nothing but the session service before the session exists.
    const auto early = co_await client.request(csta::monitor_start{.device = "4711"}, 1);
    CO_ASSERT_TRUE(as<csta::csta_error_code>(early) != nullptr);

    const auto ns = std::string(csta::namespace_of(csta::edition::ed3));
    const auto started = co_await client.request(
        csta::start_application_session{
            .application_id = "switchboard", .protocol_versions = {ns}, .requested_session_duration = 60},
        2);
    const auto* pos = as<csta::start_application_session_pos_response>(started);
    CO_ASSERT_TRUE(pos != nullptr);
    EXPECT_FALSE(pos->session_id.empty());
    EXPECT_EQ(pos->actual_protocol_version, ns);
    EXPECT_EQ(pos->actual_session_duration, 60);

    const auto reset = co_await client.request(
        csta::reset_application_session_timer{.session_id = pos->session_id, .requested_session_duration = 60}, 3);
    CO_ASSERT_TRUE(as<csta::reset_application_session_timer_pos_response>(reset) != nullptr);
    const auto wrong = co_await client.request(csta::reset_application_session_timer{.session_id = "nope"}, 4);
    EXPECT_TRUE(as<csta::reset_application_session_timer_neg_response>(wrong));

    EXPECT_TRUE(as<csta::monitor_start_response>(co_await client.request(csta::monitor_start{.device = "4711"}, 5)));
    const auto stopped = co_await client.request(csta::stop_application_session{.session_id = pos->session_id}, 6);
    EXPECT_TRUE(as<csta::stop_application_session_pos_response>(stopped));
    EXPECT_TRUE(co_await client.closed_by_peer());
  });
}

TEST_F(server_test, an_unsupported_protocol_version_is_refused) {
  simulator sim(loop.get_executor(), sim_config(session_style::application_session));
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await client.connect(sim.port());
    const auto r = co_await client.request(
        csta::start_application_session{.application_id = "x", .protocol_versions = {"http://example.com/v9"}}, 1);
    const auto* neg = as<csta::start_application_session_neg_response>(r);
    CO_ASSERT_TRUE(neg != nullptr);
    EXPECT_EQ(neg->error_code.value, "requestedProtocolVersionNotSupported");
  });
}

TEST_F(server_test, an_application_session_not_kept_alive_is_terminated) {
  simulator sim(loop.get_executor(), sim_config(session_style::application_session));
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await client.connect(sim.port());
    const auto started = co_await client.request(
        csta::start_application_session{.application_id = "switchboard", .requested_session_duration = 1}, 1);
    CO_ASSERT_TRUE(as<csta::start_application_session_pos_response>(started) != nullptr);
    const auto ended = co_await client.wait_for<csta::application_session_terminated>();
    CO_ASSERT_TRUE(ended.has_value());
    EXPECT_EQ(ended->second.session_id, as<csta::start_application_session_pos_response>(started)->session_id);
    EXPECT_TRUE(co_await client.closed_by_peer());
  });
}

TEST_F(server_test, monitor_and_a_route_request_answered_by_the_client) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await open_system_status_session(client, sim.port());
    const auto rp = as<csta::monitor_start_response>(co_await client.request(csta::monitor_start{.device = "800"}, 1));
    const auto op = as<csta::monitor_start_response>(co_await client.request(csta::monitor_start{.device = "4711"}, 2));
    CO_ASSERT_TRUE(rp && op);
    EXPECT_NE(rp->monitor_cross_ref_id, op->monitor_cross_ref_id);
    const auto rp_xref = rp->monitor_cross_ref_id;
    const auto op_xref = op->monitor_cross_ref_id;
    const auto bad = co_await client.request(csta::monitor_start{.device = "9999"}, 3);
    CO_ASSERT_TRUE(as<csta::csta_error_code>(bad) != nullptr);
    EXPECT_EQ(as<csta::csta_error_code>(bad)->error.value, "invalidDeviceID");
    const auto registered = co_await client.request(csta::route_register{.routeing_device = "800"}, 4);
    CO_ASSERT_TRUE(as<csta::route_register_response>(registered) != nullptr);
    const auto reg = as<csta::route_register_response>(registered)->route_register_req_id;

    const auto call = sim.offer(inbound_call{.caller = "+49305550042", .dialled = "800", .correlator = "42"});
    CO_ASSERT_TRUE(call.has_value());
    const auto delivered_rp = co_await client.next();
    CO_ASSERT_TRUE(delivered_rp.has_value());
    EXPECT_EQ(delivered_rp->invoke, csta::event_invoke_id);
    CO_ASSERT_TRUE(std::holds_alternative<csta::delivered_event>(delivered_rp->message));
    EXPECT_EQ(std::get<csta::delivered_event>(delivered_rp->message).monitor_cross_ref_id, rp_xref);
    const auto request = co_await client.wait_for<csta::route_request>();
    CO_ASSERT_TRUE(request.has_value());
    EXPECT_NE(request->first, csta::event_invoke_id);
    EXPECT_EQ(request->second.route_register_req_id, reg);
    EXPECT_EQ(request->second.calling_device.id, "+49305550042");
    EXPECT_EQ(request->second.correlator_data, "42");

    co_await client.send(csta::route_select{.cross_ref_identifier = request->second.cross_ref_identifier,
                                            .route_register_req_id = reg,
                                            .route_selected = "4711"},
                         5);
    EXPECT_TRUE(co_await client.wait_for<csta::route_end>());
    const auto ringing = co_await client.wait_for<csta::delivered_event>();
    CO_ASSERT_TRUE(ringing.has_value());
    EXPECT_EQ(ringing->second.monitor_cross_ref_id, op_xref);
    EXPECT_EQ(ringing->second.connection, (csta::connection_ref{*call, "4711"}));
    EXPECT_EQ(ringing->second.correlator_data, "42");

    const auto answered = co_await client.request(csta::answer_call{{*call, "4711"}}, 6);
    EXPECT_TRUE(as<csta::answer_call_response>(answered));
    const auto established = co_await client.wait_for<csta::established_event>();
    CO_ASSERT_TRUE(established.has_value());
    EXPECT_EQ(established->second.answering_device.id, "4711");
    EXPECT_EQ(sim.stats().routed_by_cti, 1u);

    const auto snap = co_await client.request(csta::snapshot_device{"4711"}, 7);
    CO_ASSERT_TRUE(as<csta::snapshot_device_response>(snap) != nullptr);
    EXPECT_EQ(as<csta::snapshot_device_response>(snap)->items.size(), 1u);

    EXPECT_TRUE(as<csta::monitor_stop_response>(co_await client.request(csta::monitor_stop{op_xref}, 8)));
    EXPECT_TRUE(as<csta::csta_error_code>(co_await client.request(csta::monitor_stop{op_xref}, 9)));
  });
}

TEST_F(server_test, a_lost_link_sends_waiting_calls_to_the_default_device) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    std::optional<std::string> call;
    {
      test_client client(loop.get_executor());
      co_await open_system_status_session(client, sim.port());
      CO_ASSERT_TRUE(as<csta::route_register_response>(co_await client.request(csta::route_register{}, 1)) != nullptr);
      call = sim.offer(inbound_call{.caller = "+49305550001", .dialled = "800"});
      CO_ASSERT_TRUE(call.has_value());
      EXPECT_TRUE(co_await client.wait_for<csta::route_request>());
      client.close();
    }
    EXPECT_TRUE(co_await eventually([&] { return sim.model().state_of(*call, "4799").has_value(); }));
    EXPECT_EQ(sim.stats().default_routed, 1u);
    // With no link at all, the next call goes there at once.
    const auto next = sim.offer(inbound_call{.caller = "+49305550002", .dialled = "800"});
    EXPECT_TRUE(sim.model().state_of(*next, "4799").has_value());
  });
}

TEST_F(server_test, unknown_and_unsupported_requests_get_negative_responses) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await open_system_status_session(client, sim.port());
    std::string frame;
    CO_ASSERT_TRUE(csta::append_frame(frame, 11, "<FrobnicateCall xmlns=\"x\"/>").has_value());
    co_await client.send_bytes(frame);
    const auto unknown = co_await client.next();
    CO_ASSERT_TRUE(unknown.has_value());
    EXPECT_EQ(unknown->invoke, 11);
    CO_ASSERT_TRUE(std::holds_alternative<csta::csta_error_code>(unknown->message));
    EXPECT_EQ(std::get<csta::csta_error_code>(unknown->message).error.value, "serviceNotSupported");
    const auto answer = co_await client.request(csta::answer_call{{"12345", "4711"}}, 12);
    CO_ASSERT_TRUE(as<csta::csta_error_code>(answer) != nullptr);
    EXPECT_EQ(as<csta::csta_error_code>(answer)->error.value, "invalidCallID");
    EXPECT_EQ(sim.links().sessions_open, 1u);  // bad requests do not cost the link
  });
}

TEST_F(server_test, withheld_and_delayed_responses) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await open_system_status_session(client, sim.port());
    sim.withhold_responses(1, "MonitorStart");
    co_await client.send(csta::monitor_start{.device = "4711"}, 1);
    // A request of another kind is still answered, the withheld one never is.
    EXPECT_TRUE(as<csta::request_system_status_response>(co_await client.request(csta::request_system_status{}, 2)));
    EXPECT_TRUE(as<csta::monitor_start_response>(co_await client.request(csta::monitor_start{.device = "4711"}, 3)));
    for (const auto& r : client.backlog()) EXPECT_NE(r.invoke, 1);

    sim.delay_responses(50ms);
    EXPECT_TRUE(as<csta::monitor_start_response>(co_await client.request(csta::monitor_start{.device = "4712"}, 4)));
  });
}

TEST_F(server_test, malformed_frames_reach_the_client) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await open_system_status_session(client, sim.port());
    sim.send_malformed(malformed_kind::bad_xml);
    EXPECT_FALSE(co_await client.next());
    CO_ASSERT_TRUE(client.stream_error().has_value());
    EXPECT_TRUE(client.stream_error()->is(errc::message_malformed));
    sim.send_malformed(malformed_kind::bad_header);
    EXPECT_FALSE(co_await client.next());
    EXPECT_TRUE(client.broken());
    EXPECT_TRUE(client.stream_error()->is(errc::frame_malformed));
  });
}

TEST_F(server_test, drop_link_closes_connections_and_refuses_new_ones_for_a_while) {
  simulator sim(loop.get_executor(), sim_config());
  sim.start();
  run_coroutine(loop, [&]() -> awaitable<void> {
    test_client client(loop.get_executor());
    co_await open_system_status_session(client, sim.port());
    sim.drop_link(300ms);
    EXPECT_TRUE(co_await client.closed_by_peer());
    test_client refused(loop.get_executor());
    co_await refused.connect(sim.port());
    EXPECT_TRUE(co_await refused.closed_by_peer());
    co_await sleep_for(350ms);
    test_client later(loop.get_executor());
    co_await later.connect(sim.port());
    EXPECT_TRUE(co_await later.wait_for<csta::system_status>());
  });
}

}  // namespace
}  // namespace switchboard::pbxsim
