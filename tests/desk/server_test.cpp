// The desktop server over loopback with a real PostgreSQL: login, rate limit, resume, slow
// consumers, second logins, supervisors' tenant walls, bad input and TLS. Short configured
// timeouts, no timed assertions: waits only guard against hangs.
#include "coro_test.hpp"
#include "desk_fixture.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace switchboard::desk {
namespace {

using testing::run_coroutine;
using testing::sleep_for;

TEST(DeskServer, LoginReadyAndNotReady) {
  desk_fixture f;
  f.start();
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client alice(f.loop.get_executor());
    auto login = co_await f.log_in(alice, "acme", "alice", "alice-pw");
    CO_ASSERT_TRUE(login.has_value());
    EXPECT_EQ(login->who.login, "alice");
    EXPECT_EQ(login->who.device, "2001");
    EXPECT_EQ(login->who.role, role::operator_);
    EXPECT_EQ(login->token.size(), 32u);
    EXPECT_EQ(login->snapshot.state.state, "not_ready");
    EXPECT_EQ(login->snapshot.state.reason, "login");
    auto st = co_await alice.expect<state_event>();
    CO_ASSERT_TRUE(st.has_value());

    auto ok = co_await alice.request(req::ready{});
    CO_ASSERT_TRUE(ok && std::holds_alternative<ok_reply>(*ok));
    auto ready = co_await alice.expect<state_event>();
    CO_ASSERT_TRUE(ready.has_value());
    EXPECT_EQ(ready->state, "ready");
    EXPECT_EQ(f.db.scalar("SELECT state FROM presence WHERE operator_id = " + std::to_string(f.alice)), "ready");

    ok = co_await alice.request(req::not_ready{"lunch"});
    CO_ASSERT_TRUE(ok && std::holds_alternative<ok_reply>(*ok));
    EXPECT_EQ(f.db.scalar("SELECT reason FROM presence WHERE operator_id = " + std::to_string(f.alice)), "lunch");

    ok = co_await alice.request(req::logout{});
    CO_ASSERT_TRUE(ok && std::holds_alternative<ok_reply>(*ok));
    EXPECT_EQ(f.db.scalar("SELECT state || coalesce(device, '-') FROM presence WHERE operator_id = " +
                          std::to_string(f.alice)),
              "logged_out-");
    auto after = co_await alice.request(req::ready{});
    CO_ASSERT_TRUE(after.has_value());
    EXPECT_EQ(error_code(*after), "not_logged_in");
  });
}

TEST(DeskServer, WrongPasswordIsRefusedAndRateLimited) {
  desk_fixture f;
  auto config = f.config();
  config.max_failed_logins_per_login = 3;
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client c(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.hello(c)).has_value());
    for (int i = 0; i < 3; ++i) {
      auto r = co_await c.request(req::login{"acme", "alice", "wrong", ""});
      CO_ASSERT_TRUE(r.has_value());
      EXPECT_EQ(error_code(*r), "login_failed");
    }
    // the right password no longer helps within the window
    auto limited = co_await c.request(req::login{"acme", "alice", "alice-pw", ""});
    CO_ASSERT_TRUE(limited.has_value());
    EXPECT_EQ(error_code(*limited), "rate_limited");
    // another login from the same address is not affected
    auto bob = co_await c.request(req::login{"acme", "bob", "bob-pw", ""});
    CO_ASSERT_TRUE(bob.has_value());
    EXPECT_TRUE(std::holds_alternative<ok_reply>(*bob)) << error_code(*bob);
  });
}

TEST(DeskServer, ResumeWithinGraceGetsSnapshotWithCallAndOffer) {
  desk_fixture f;
  f.start();
  const auto call_id = f.make_call("+4930111");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    std::string token;
    {
      client first(f.loop.get_executor());
      auto login = co_await f.log_in(first, "acme", "alice", "alice-pw");
      CO_ASSERT_TRUE(login.has_value());
      token = login->token;
      CO_ASSERT_TRUE((co_await first.request(req::ready{})).has_value());
      f.server->offer(f.alice, f.make_offer(call_id));
      auto offer = co_await first.expect<offer_event>();
      CO_ASSERT_TRUE(offer.has_value());
      EXPECT_EQ(offer->customer["name"], "Jane Doe");
      EXPECT_EQ(offer->ivr["contract"], "A-1");
      first.close();
    }
    // the server notices the loss, then the desktop comes back
    co_await f.until([&] { return f.server->connection_count() == 0; });
    client second(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.hello(second)).has_value());
    auto r = co_await second.request(req::resume{token});
    CO_ASSERT_TRUE(r && std::holds_alternative<ok_reply>(*r));
    const auto* resumed = std::get_if<login_result>(&std::get<ok_reply>(*r).result);
    CO_ASSERT_TRUE(resumed != nullptr);
    EXPECT_EQ(resumed->snapshot.state.state, "ready");
    CO_ASSERT_TRUE(resumed->snapshot.call.has_value());
    EXPECT_EQ(resumed->snapshot.call->call_id, call_id);
    EXPECT_EQ(resumed->snapshot.call->state, call_state::ringing);
    CO_ASSERT_TRUE(resumed->snapshot.offer.has_value());
    EXPECT_EQ(resumed->snapshot.offer->customer["name"], "Jane Doe");
    // commands work on the resumed session
    auto answer = co_await second.request(req::answer{});
    CO_ASSERT_TRUE(answer && std::holds_alternative<ok_reply>(*answer));
    CO_ASSERT_TRUE(f.calls.seen.size() == 1);
    EXPECT_EQ(f.calls.seen[0].first.call_id, call_id);
    EXPECT_EQ(f.calls.seen[0].first.device, "2001");
  });
}

TEST(DeskServer, SilentDesktopIsDroppedAndGoesNotReadyAfterGrace) {
  desk_fixture f;
  auto config = f.config();
  config.heartbeat_interval = std::chrono::milliseconds(100);
  config.idle_timeout = std::chrono::milliseconds(300);
  config.resume_grace = std::chrono::milliseconds(200);
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client alice(f.loop.get_executor());
    auto login = co_await f.log_in(alice, "acme", "alice", "alice-pw");
    CO_ASSERT_TRUE(login.has_value());
    CO_ASSERT_TRUE((co_await alice.request(req::ready{})).has_value());
    // alice stops talking: the server closes her connection with a reason
    auto closing = co_await alice.expect<closing_event>();
    CO_ASSERT_TRUE(closing.has_value());
    EXPECT_EQ(closing->code, "idle_timeout");
    const auto who = std::to_string(f.alice);
    co_await f.until(
        [&] { return f.db.scalar("SELECT state FROM presence WHERE operator_id = " + who) == "not_ready"; });
    EXPECT_EQ(f.db.scalar("SELECT reason FROM presence WHERE operator_id = " + who), "desktop_lost");
    client late(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.hello(late)).has_value());
    auto r = co_await late.request(req::resume{login->token});
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(error_code(*r), "resume_failed");
  });
}

TEST(DeskServer, SlowConsumerIsDisconnectedOthersKeepWorking) {
  desk_fixture f;
  auto config = f.config();
  config.socket_send_buffer = 4096;
  config.outbox_max_messages = 64;
  config.outbox_max_bytes = 64 * 1024;
  f.start(config);
  const auto call_id = f.make_call("+4930111");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client bob(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(bob, "acme", "bob", "bob-pw")).has_value());
    // a desktop that logs in and then never reads
    tcp::socket lazy(f.loop);
    lazy.open(tcp::v4());
    lazy.set_option(asio::socket_base::receive_buffer_size(4096));
    co_await lazy.async_connect(f.server->local_endpoint(), asio::use_awaitable);
    const std::string lines =
        encode(request{1, req::hello{}}) + encode(request{2, req::login{"acme", "alice", "alice-pw", ""}});
    co_await asio::async_write(lazy, asio::buffer(lines), asio::use_awaitable);
    co_await f.until([&] { return f.server->session_count() == 2; });
    // flood her with screen pops until the server gives up on her
    int sent = 0;
    while (f.server->connection_count() == 2 && sent < 100000) {
      f.server->offer(f.alice, f.make_offer(call_id));
      if (++sent % 16 == 0) co_await sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(f.server->connection_count(), 1u);
    auto pong = co_await bob.request(req::ping{});
    CO_ASSERT_TRUE(pong.has_value());
    EXPECT_TRUE(std::holds_alternative<pong_reply>(*pong));
  });
}

TEST(DeskServer, SecondLoginRefusedByPolicy) {
  desk_fixture f;
  auto config = f.config();
  config.second_login = second_login_policy::refuse;
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client one(f.loop.get_executor());
    client two(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(one, "acme", "alice", "alice-pw")).has_value());
    CO_ASSERT_TRUE((co_await f.hello(two)).has_value());
    auto r = co_await two.request(req::login{"acme", "alice", "alice-pw", ""});
    CO_ASSERT_TRUE(r.has_value());
    EXPECT_EQ(error_code(*r), "already_logged_in");
    auto still = co_await one.request(req::ping{});
    EXPECT_TRUE(still && std::holds_alternative<pong_reply>(*still));
  });
}

TEST(DeskServer, SecondLoginTakesOverByPolicy) {
  desk_fixture f;
  f.start();  // take_over is the default
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client one(f.loop.get_executor());
    client two(f.loop.get_executor());
    auto first = co_await f.log_in(one, "acme", "alice", "alice-pw");
    CO_ASSERT_TRUE(first.has_value());
    auto second = co_await f.log_in(two, "acme", "alice", "alice-pw", "2009");
    CO_ASSERT_TRUE(second.has_value());
    EXPECT_NE(second->token, first->token);
    auto closing = co_await one.expect<closing_event>();
    CO_ASSERT_TRUE(closing.has_value());
    EXPECT_EQ(closing->code, "taken_over");
    EXPECT_EQ(f.db.scalar("SELECT device FROM presence WHERE operator_id = " + std::to_string(f.alice)), "2009");
    auto ok = co_await two.request(req::ready{});
    EXPECT_TRUE(ok && std::holds_alternative<ok_reply>(*ok));
  });
}

TEST(DeskServer, SupervisorSeesAndActsOnlyInHisTenant) {
  desk_fixture f;
  f.start();
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client sue(f.loop.get_executor());
    auto login = co_await f.log_in(sue, "acme", "sue", "sue-pw");
    CO_ASSERT_TRUE(login.has_value());
    EXPECT_EQ(login->who.role, role::supervisor);
    auto view = co_await sue.expect<tenant_event>();
    CO_ASSERT_TRUE(view.has_value());
    std::vector<std::string> logins;
    for (const auto& o : view->operators) logins.push_back(o.login);
    EXPECT_EQ(logins, (std::vector<std::string>{"alice", "bob", "sue"}));
    CO_ASSERT_TRUE(view->queues.size() == 1);
    EXPECT_EQ(view->queues[0].name, "Support");

    // carl (other tenant) goes ready, then alice: sue hears of alice only
    client carl(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(carl, "beta", "carl", "carl-pw")).has_value());
    CO_ASSERT_TRUE((co_await carl.request(req::ready{})).has_value());
    client alice(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(alice, "acme", "alice", "alice-pw")).has_value());
    CO_ASSERT_TRUE((co_await alice.request(req::ready{})).has_value());
    f.server->publish_stats(f.beta, stats_event{"t", {{99, "Beta queue", 1, 1, 1, 1, 1, 1, 50}}});
    f.server->publish_stats(f.acme, stats_event{"t", {{f.support, "Support", 3, 41, 2, 5, 120, 4, 87.5}}});
    bool saw_alice_ready = false;
    for (;;) {
      auto m = co_await sue.receive();
      CO_ASSERT_TRUE(m.has_value());
      if (auto* op = std::get_if<operator_event>(&*m)) {
        EXPECT_NE(op->operator_id, f.carl) << "supervisor saw another tenant's operator";
        if (op->operator_id == f.alice && op->state == "ready") saw_alice_ready = true;
      }
      if (auto* st = std::get_if<stats_event>(&*m)) {
        CO_ASSERT_TRUE(st->queues.size() == 1);
        EXPECT_EQ(st->queues[0].name, "Support");
        break;
      }
    }
    EXPECT_TRUE(saw_alice_ready);

    auto other = co_await sue.request(req::force_state{f.carl, req::forced_state::not_ready, "x"});
    CO_ASSERT_TRUE(other.has_value());
    EXPECT_EQ(error_code(*other), "unknown_operator");
    auto forced = co_await sue.request(req::force_state{f.alice, req::forced_state::not_ready, "meeting"});
    CO_ASSERT_TRUE(forced && std::holds_alternative<ok_reply>(*forced));
    for (;;) {
      auto st = co_await alice.expect<state_event>();
      CO_ASSERT_TRUE(st.has_value());
      if (st->reason == "meeting") {
        EXPECT_EQ(st->state, "not_ready");
        break;
      }
    }
    auto not_allowed = co_await alice.request(req::force_state{f.bob, req::forced_state::ready, ""});
    CO_ASSERT_TRUE(not_allowed.has_value());
    EXPECT_EQ(error_code(*not_allowed), "not_allowed");
  });
}

TEST(DeskServer, BadInputGetsClearErrorsAndTheSessionGoesOn) {
  desk_fixture f;
  f.start();
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client c(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await c.connect("127.0.0.1", f.server->local_endpoint().port())).has_value());
    auto next_error = [&]() -> asio::awaitable<std::string> {
      auto e = co_await c.expect<error_reply>();
      co_return e ? e->code : "closed";
    };
    auto before_hello = co_await c.request(req::ready{});
    CO_ASSERT_TRUE(before_hello.has_value());
    EXPECT_EQ(error_code(*before_hello), "hello_required");
    auto version = co_await c.request(req::hello{2, ""});
    CO_ASSERT_TRUE(version.has_value());
    EXPECT_EQ(error_code(*version), "unsupported_version");
    CO_ASSERT_TRUE((co_await f.hello(c)).has_value());
    c.send_raw("{\"type\":\"ping\",\n");
    EXPECT_EQ(co_await next_error(), "malformed_json");
    c.send_raw("{\"type\":\"ping\"}\n");
    EXPECT_EQ(co_await next_error(), "bad_request");
    c.send_raw("{\"type\":\"dance\",\"id\":5}\n");
    EXPECT_EQ(co_await next_error(), "unknown_type");
    c.send_raw("{\"type\":\"not_ready\",\"id\":6,\"reason\":7}\n");
    EXPECT_EQ(co_await next_error(), "bad_request");
    c.send_raw(std::string(200000, 'x') + "\n");
    EXPECT_EQ(co_await next_error(), "line_too_long");
    auto before_login = co_await c.request(req::hangup{});
    CO_ASSERT_TRUE(before_login.has_value());
    EXPECT_EQ(error_code(*before_login), "not_logged_in");
    auto pong = co_await c.request(req::ping{});
    EXPECT_TRUE(pong && std::holds_alternative<pong_reply>(*pong));
    auto login = co_await c.request(req::login{"acme", "alice", "alice-pw", ""});
    EXPECT_TRUE(login && std::holds_alternative<ok_reply>(*login));
    auto no_call = co_await c.request(req::answer{});
    CO_ASSERT_TRUE(no_call.has_value());
    EXPECT_EQ(error_code(*no_call), "state_not_allowed");
    EXPECT_NE(std::get<error_reply>(*no_call).message.find("no call to answer"), std::string::npos);
  });
}

TEST(DeskServer, FloodOfRequestsIsLimitedThenClosed) {
  desk_fixture f;
  auto config = f.config();
  config.requests_per_second = 5;
  config.request_burst = 5;
  config.max_consecutive_errors = 20;
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client other(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(other, "acme", "bob", "bob-pw")).has_value());
    client flooder(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await flooder.connect("127.0.0.1", f.server->local_endpoint().port())).has_value());
    std::string burst;
    for (int i = 0; i < 500; ++i) burst += encode(request{i, req::ping{}});
    flooder.send_raw(burst);
    int pongs = 0, limited = 0;
    std::string closed_with;
    for (;;) {
      auto m = co_await flooder.receive();
      if (!m) break;
      if (std::holds_alternative<pong_reply>(*m)) ++pongs;
      if (auto* e = std::get_if<error_reply>(&*m); e && e->code == "rate_limited") ++limited;
      if (auto* c = std::get_if<closing_event>(&*m)) closed_with = c->code;
    }
    EXPECT_GE(pongs, 5);
    EXPECT_LT(pongs, 500);
    EXPECT_GE(limited, 20);
    EXPECT_EQ(closed_with, "too_many_errors");
    auto pong = co_await other.request(req::ping{});
    EXPECT_TRUE(pong && std::holds_alternative<pong_reply>(*pong));
  });
}

TEST(DeskServer, HalfOpenConnectionIsClosedByTheServer) {
  desk_fixture f;
  auto config = f.config();
  config.heartbeat_interval = std::chrono::milliseconds(100);
  config.idle_timeout = std::chrono::milliseconds(300);
  config.login_timeout = std::chrono::milliseconds(300);
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    tcp::socket half(f.loop);
    co_await half.async_connect(f.server->local_endpoint(), asio::use_awaitable);
    const std::string partial = "{\"type\":\"hello\",\"id\":1,";  // and then silence
    co_await asio::async_write(half, asio::buffer(partial), asio::use_awaitable);
    std::string got(4096, '\0');
    std::string all;
    for (;;) {
      auto [ec, n] = co_await half.async_read_some(asio::buffer(got), asio::as_tuple(asio::use_awaitable));
      all.append(got.data(), n);
      if (ec) break;
    }
    EXPECT_NE(all.find("\"closing\""), std::string::npos) << all;
    EXPECT_NE(all.find("login_timeout"), std::string::npos) << all;
    co_await f.until([&] { return f.server->connection_count() == 0; });
  });
}

TEST(DeskServer, CallCommandsAreCheckedThenHandedToCallControl) {
  desk_fixture f;
  f.start();
  const auto call_id = f.make_call("+4930111");
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client alice(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await f.log_in(alice, "acme", "alice", "alice-pw")).has_value());
    CO_ASSERT_TRUE((co_await alice.request(req::ready{})).has_value());
    auto hold = co_await alice.request(req::hold{});
    CO_ASSERT_TRUE(hold.has_value());
    EXPECT_EQ(error_code(*hold), "state_not_allowed");
    // the router reserved her and the PBX rings her
    f.db.exec("UPDATE presence SET state = 'ringing', current_call_id = " + std::to_string(call_id) +
              " WHERE operator_id = " + std::to_string(f.alice));
    f.server->offer(f.alice, f.make_offer(call_id));
    f.server->presence_changed(f.alice);
    auto pending = co_await alice.request(req::not_ready{"break"});
    CO_ASSERT_TRUE(pending && std::holds_alternative<ok_reply>(*pending));
    EXPECT_TRUE(std::holds_alternative<pending_result>(std::get<ok_reply>(*pending).result));
    CO_ASSERT_TRUE((co_await alice.request(req::answer{})).has_value());
    f.server->call_update(f.alice, call_event{call_id, call_state::talking, "+4930111", "800", std::nullopt});
    auto transfer = co_await alice.request(req::transfer{req::transfer_mode::complete, ""});
    CO_ASSERT_TRUE(transfer.has_value());
    EXPECT_EQ(error_code(*transfer), "state_not_allowed");
    f.calls.next = error{errc::pbx_rejected, "device busy"};
    auto consult = co_await alice.request(req::consult{"2002"});
    CO_ASSERT_TRUE(consult.has_value());
    EXPECT_EQ(error_code(*consult), "rejected");
    f.calls.next = {};
    CO_ASSERT_TRUE((co_await alice.request(req::hangup{})).has_value());
    // the call tracker ends the call: wrap-up, and her pending not-ready applies
    f.db.exec("UPDATE presence SET state = 'wrap_up', current_call_id = NULL WHERE operator_id = " +
              std::to_string(f.alice));
    f.server->call_update(f.alice, call_event{call_id, call_state::ended, "+4930111", "800", std::nullopt});
    auto disposition = co_await alice.request(req::disposition{"sale", "gold"});
    EXPECT_TRUE(disposition && std::holds_alternative<ok_reply>(*disposition));
    const auto who = std::to_string(f.alice);
    co_await f.until(
        [&] { return f.db.scalar("SELECT state FROM presence WHERE operator_id = " + who) == "not_ready"; });
    EXPECT_EQ(f.db.scalar("SELECT reason FROM presence WHERE operator_id = " + who), "break");
    std::vector<std::string> kinds;
    for (const auto& [ctx, cmd] : f.calls.seen)
      kinds.push_back(type_name(std::visit([](auto c) -> request_body { return c; }, cmd)));
    EXPECT_EQ(kinds, (std::vector<std::string>{"answer", "consult", "hangup", "disposition"}));
    EXPECT_EQ(f.calls.seen.back().first.call_id, call_id);
  });
}

TEST(DeskServer, TlsLoginWithASelfSignedCertificate) {
  const auto dir = std::filesystem::temp_directory_path() / ("desk-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = (dir / "cert.pem").string();
  const auto key = (dir / "key.pem").string();
  std::string output;
  const int status = testing::run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
          key + " -out " + cert,
      &output);
  ASSERT_EQ(status, 0) << output;
  desk_fixture f;
  auto config = f.config();
  config.tls = {true, cert, key};
  f.start(config);
  run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    client alice(f.loop.get_executor(), client_options{.tls = true, .verify_peer = true, .ca_file = cert});
    auto login = co_await f.log_in(alice, "acme", "alice", "alice-pw");
    CO_ASSERT_TRUE(login.has_value());
    EXPECT_EQ(login->who.login, "alice");
    // a plain-text client gets nowhere, and the TLS session is unaffected
    client plain(f.loop.get_executor());
    CO_ASSERT_TRUE((co_await plain.connect("127.0.0.1", f.server->local_endpoint().port())).has_value());
    auto hello = co_await plain.request(req::hello{});
    EXPECT_FALSE(hello.has_value());
    auto pong = co_await alice.request(req::ping{});
    EXPECT_TRUE(pong && std::holds_alternative<pong_reply>(*pong));
  });
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace switchboard::desk
