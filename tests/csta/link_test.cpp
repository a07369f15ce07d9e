// csta_link against a scripted fake PBX on loopback, built on the same framer and codec:
// handshakes, monitoring, routing, call control, negative responses, timeouts, heartbeat loss,
// reconnect with resync, and link-down failures during an outage.
#include "switchboard/csta/link.hpp"
#include "coro_test.hpp"
#include "fake_pbx.hpp"
#include "switchboard/csta/framer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <deque>

namespace switchboard::csta {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

using testing_pbx::fake_pbx;
using testing_pbx::serve_system_status_handshake;

link_config test_config(std::uint16_t port) {
  link_config c;
  c.port = port;
  c.devices = {"4711"};
  c.route_points = {"800"};
  c.connect_timeout = 1000ms;
  c.request_timeout = 300ms;
  c.write_timeout = 1000ms;
  c.heartbeat_interval = 100ms;
  c.heartbeat_misses = 3;
  c.reconnect_initial = 50ms;
  c.reconnect_max = 200ms;
  return c;
}

using testing_pbx::recorder;

struct csta_link_fixture : ::testing::Test {
  asio::io_context loop;
  fake_pbx pbx{loop.get_executor()};
  recorder seen;
  std::shared_ptr<csta_link> link;

  void start(link_config config) {
    link = csta_link::create(loop.get_executor(), std::move(config));
    link->on_event([this](const pbx::event& e) { seen.events.push_back(e); });
    link->start();
  }
  void TearDown() override {
    if (link) link->stop();
    pbx.close();
    loop.run_for(200ms);  // let the link's coroutines finish
  }
};

TEST_F(csta_link_fixture, system_status_handshake_monitors_and_resyncs) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    CO_ASSERT_TRUE(seen.count<pbx::link_up>() == 1);
    EXPECT_TRUE(link->is_up());
    EXPECT_EQ(seen.last<pbx::resynced>().device, "800") << "route points come last";
    const auto& resynced = seen.first<pbx::resynced>();
    EXPECT_EQ(resynced.device, "4711");
    CO_ASSERT_TRUE(resynced.calls.size() == 1u);
    EXPECT_EQ(resynced.calls[0].state, pbx::connection_state::connected);
    // Events flow once monitored.
    co_await pbx.send(
        event_invoke_id,
        held_event{
            "m4711", {"C1", "4711"}, device_ref::known("4711"), local_connection_state::hold, std::nullopt, "normal"});
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::call_held>());
    EXPECT_EQ(seen.last<pbx::call_held>().connection, (pbx::connection_id{"C1", "4711"}));
  });
}

TEST_F(csta_link_fixture, application_session_handshake_and_keep_alive) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto config = test_config(pbx.port());
    config.session = session_style::application_session;
    config.session_duration = 2s;
    config.route_points.clear();
    start(config);
    CO_ASSERT_TRUE(co_await pbx.accept());
    auto start_request = co_await pbx.expect<start_application_session>();
    CO_ASSERT_TRUE(start_request.has_value());
    EXPECT_EQ(start_request->second.application_id, "switchboard");
    EXPECT_EQ(start_request->second.requested_session_duration, 2);
    co_await pbx.send(start_request->first,
                      start_application_session_pos_response{"S1", std::string(namespace_of(edition::ed3)), 2});
    CO_ASSERT_TRUE(co_await pbx.answer<monitor_start>(monitor_start_response{"m1"}));
    CO_ASSERT_TRUE(co_await pbx.answer<snapshot_device>(snapshot_device_response{}));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>());
    // Keep-alives keep coming (every heartbeat_interval, below half the session duration).
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (pbx.heartbeats_seen < 3 && std::chrono::steady_clock::now() < until) co_await testing::sleep_for(10ms);
    EXPECT_GE(pbx.heartbeats_seen, 3);
    EXPECT_TRUE(link->is_up());
  });
}

TEST_F(csta_link_fixture, refused_application_session_reconnects_later) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto config = test_config(pbx.port());
    config.session = session_style::application_session;
    config.session_duration = 2s;
    start(config);
    CO_ASSERT_TRUE(co_await pbx.accept());
    CO_ASSERT_TRUE(co_await pbx.answer<start_application_session>(
        start_application_session_neg_response{{"definedError", "invalidApplicationInfo"}}));
    // The link drops this connection and comes back after its backoff.
    CO_ASSERT_TRUE(co_await pbx.accept());
    CO_ASSERT_TRUE((co_await pbx.expect<start_application_session>()).has_value());
    EXPECT_EQ(seen.count<pbx::link_up>(), 0u);
  });
}

TEST_F(csta_link_fixture, route_request_then_route_select) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    co_await pbx.send(42, route_request{"5001",
                                        "12",
                                        device_ref::known("0800123"),
                                        device_ref::known("0301234567"),
                                        std::nullopt,
                                        {"C9", "800"},
                                        std::nullopt,
                                        std::nullopt,
                                        4000,
                                        "77#"});
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::call_offered>());
    const auto offered = seen.last<pbx::call_offered>();
    EXPECT_EQ(offered.route_point, "800");  // from the registration, not the dialled number
    EXPECT_EQ(offered.dialled, pbx::party::known("0800123"));
    EXPECT_EQ(offered.correlator, "77#");
    auto selected = co_await link->execute(pbx::route_select{offered.dialog, "4711", "", true});
    CO_ASSERT_TRUE(selected.has_value());
    auto got = co_await pbx.expect<route_select>();
    CO_ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->second.cross_ref_identifier, "5001");
    EXPECT_EQ(got->second.route_register_req_id, "12");
    EXPECT_EQ(got->second.route_selected, "4711");
    EXPECT_EQ(got->second.route_used_req, true);
    EXPECT_NE(got->first, event_invoke_id);
    // The PBX ends the dialog; selecting again is refused without a round trip.
    co_await pbx.send(43, route_end{"5001", "12", {"unspecified", ""}, std::nullopt});
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::route_ended>());
    auto late = co_await link->execute(pbx::route_select{offered.dialog, "4712", "", false});
    CO_ASSERT_FALSE(late.has_value());
    EXPECT_TRUE(late.error().is(errc::call_unknown));
  });
}

TEST_F(csta_link_fixture, make_call_returns_the_new_connection) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    auto [made, answered] = co_await (link->execute(pbx::make_call{"4711", "0301234567", ""}) &&
                                      pbx.answer<make_call>(make_call_response{{"C7", "4711"}}));
    CO_ASSERT_TRUE(answered);
    CO_ASSERT_TRUE(made.has_value());
    EXPECT_EQ(*made, (pbx::connection_id{"C7", "4711"}));
    auto [held, held_answered] =
        co_await (link->execute(pbx::hold_call{{"C7", "4711"}}) && pbx.answer<hold_call>(hold_call_response{}));
    CO_ASSERT_TRUE(held_answered);
    EXPECT_TRUE(held.has_value());
  });
}

TEST_F(csta_link_fixture, negative_response_is_pbx_rejected_with_its_text) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    auto [r, answered] = co_await (link->execute(pbx::answer_call{{"C1", "4711"}}) &&
                                   pbx.answer<answer_call>(csta_error_code{{"operation", "invalidCallID"}}));
    CO_ASSERT_TRUE(answered);
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::pbx_rejected));
    EXPECT_EQ(r.error().detail, "operation: invalidCallID");
    EXPECT_TRUE(link->is_up());
  });
}

TEST_F(csta_link_fixture, response_that_never_comes_is_pbx_timeout) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    auto r = co_await link->execute(pbx::retrieve_call{{"C1", "4711"}});
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::pbx_timeout));
    EXPECT_TRUE((co_await pbx.expect<retrieve_call>()).has_value());
    EXPECT_TRUE(link->is_up());  // heartbeats were answered: one lost answer is not a lost link
  });
}

TEST_F(csta_link_fixture, heartbeat_loss_reconnects_remonitors_and_resyncs) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(test_config(pbx.port()));
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    pbx.silent = true;  // the PBX hangs: no answers, no events, socket still open
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::link_down>());
    EXPECT_TRUE(seen.last<pbx::link_down>().reason.detail.find("heartbeats missed") != std::string::npos);
    pbx.silent = false;
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::link_up>(2));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(4));
    EXPECT_TRUE(link->is_up());
  });
}

// A PBX that stops reading its socket while it keeps sending: the link's writes stall, and it is
// dropped with that reason (not left to grow its queue) and connects again.
TEST_F(csta_link_fixture, a_pbx_that_stops_reading_is_dropped_with_the_reason) {
  testing::run_coroutine(
      loop,
      [&]() -> asio::awaitable<void> {
        auto config = test_config(pbx.port());
        config.outbox_limit = 1'000'000;  // the write deadline, not the queue's length, is what trips
        pbx.small_receive_buffer();
        start(config);
        CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
        CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
        pbx.deaf = true;
        // Every RequestSystemStatus is traffic (the read deadline never trips) and makes the
        // link answer: its answers pile up in the sockets until a write stalls.
        int sent = 0;
        while (seen.count<pbx::link_down>() == 0 && sent < 2'000'000) {
          co_await pbx.send(1000 + sent % 8000, request_system_status{});
          if (++sent % 256 == 0) co_await testing::sleep_for(1ms);
        }
        CO_ASSERT_TRUE(seen.count<pbx::link_down>() == 1);
        const auto& why = seen.last<pbx::link_down>().reason;
        EXPECT_TRUE(why.is(errc::pbx_link_down));
        EXPECT_NE(why.detail.find("PBX did not take a frame within 1000 ms"), std::string::npos) << why.detail;
        pbx.deaf = false;
        CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
        CO_ASSERT_TRUE(co_await seen.wait_for<pbx::link_up>(2));
        EXPECT_TRUE(link->is_up());
      },
      std::chrono::seconds(120));
}

TEST_F(csta_link_fixture, requests_fail_with_link_down_during_an_outage) {
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto config = test_config(pbx.port());
    config.reconnect_initial = 1000ms;  // a long enough outage to ask during it
    config.reconnect_max = 1000ms;
    start(config);
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::resynced>(2));
    // A request in flight when the connection drops is released with link down.
    auto [in_flight, closed] =
        co_await (link->execute(pbx::clear_connection{{"C1", "4711"}}) && [&]() -> asio::awaitable<bool> {
          auto got = co_await pbx.expect<clear_connection>();
          pbx.close();
          co_return got.has_value();
        }());
    CO_ASSERT_TRUE(closed);
    CO_ASSERT_FALSE(in_flight.has_value());
    EXPECT_TRUE(in_flight.error().is(errc::pbx_link_down));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::link_down>());
    // While it is down, commands fail at once.
    EXPECT_FALSE(link->is_up());
    auto during = co_await link->execute(pbx::deflect_call{{"C1", "4711"}, "4712"});
    CO_ASSERT_FALSE(during.has_value());
    EXPECT_TRUE(during.error().is(errc::pbx_link_down));
    auto routed = co_await link->execute(pbx::route_end{"12/5001"});
    CO_ASSERT_FALSE(routed.has_value());
    EXPECT_TRUE(routed.error().is(errc::pbx_link_down));
    // And it comes back.
    CO_ASSERT_TRUE(co_await serve_system_status_handshake(pbx));
    CO_ASSERT_TRUE(co_await seen.wait_for<pbx::link_up>(2));
  });
}

TEST(csta_link_config, validate_names_the_bad_value) {
  link_config c;
  EXPECT_EQ(c.validate(), "");
  c.heartbeat_misses = 0;
  EXPECT_EQ(c.validate(), "heartbeat_misses must be at least 1");
  c = {};
  c.reconnect_max = std::chrono::milliseconds(1);
  EXPECT_NE(c.validate(), "");
  EXPECT_EQ(to_string(link_state::resyncing), "resyncing");
}

}  // namespace
}  // namespace switchboard::csta
