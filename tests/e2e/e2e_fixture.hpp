// The in-process call centre of the end-to-end tests, on loopback: the simulated PBX (CSTA XML
// over TCP) + the CSTA link + the router on a real PostgreSQL + the call-control layer + the
// desktop server, with operators' desktop clients. Each test seeds its tenant, then starts it.
#pragma once

#include "coro_test.hpp"
#include "switchboard/calls/call_centre.hpp"
#include "switchboard/csta/link.hpp"
#include "switchboard/desk/client.hpp"
#include "switchboard/desk/server.hpp"
#include "switchboard/pbxsim/server.hpp"
#include "switchboard/routing/router.hpp"
#include "switchboard/store/listener.hpp"
#include "switchboard/store/pool.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <pqxx/pqxx>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::e2e {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// What differs between scenarios: the PBX's devices and timings, the server's timers.
struct scenario {
  std::vector<std::string> phones;  // every operator phone of the PBX, the default device included
  std::vector<std::string> route_points;
  std::string default_device;
  std::chrono::milliseconds pbx_route_timeout{5000};             // the PBX's routeing timer
  std::optional<std::chrono::milliseconds> auto_answer = 300ms;  // nullopt: phones answer on request only
  std::optional<pbxsim::generator_config> generator;             // starts with rate 0: set_rate() once staffed
  std::chrono::milliseconds router_route_timeout{2000};          // below the PBX's, so the router answers first
  std::chrono::seconds ring_no_answer{10};
  std::chrono::seconds default_wrap_up{1};
  std::chrono::milliseconds stats_push{200};
  // Two writers, the second used as soon as one write waits for the first, so that every
  // scenario (transfers, consultations, restarts) runs with each operator's and each call's
  // writes kept in order across connections (calls::write_lanes); the third connection serves
  // the router and the desktops while both writers wait on a lock.
  std::size_t write_lanes = 2;
  int database_connections = 3;
  // Raised where a test holds the calls table locked for a while: a record write waiting on the
  // lock must not time out on a slow machine (sanitizers, two cores).
  std::chrono::milliseconds statement_timeout{5000};
};

// Everything that came to one desktop; `timeline` keeps the order of offers and call events.
struct inbox {
  struct step {
    std::int64_t call_id = 0;
    bool offer = false;  // else a call event in `state`
    desk::call_state state = desk::call_state::ringing;
  };
  std::vector<step> timeline;
  std::vector<desk::offer_event> offers;
  std::vector<desk::call_event> calls;
  std::vector<desk::state_event> states;
  std::vector<desk::stats_event> stats;
};

// One operator at his desktop.
struct desktop {
  std::string login;
  std::string device;
  std::unique_ptr<desk::client> client;
  std::int64_t operator_id = 0;
  inbox received;
};

class end_to_end : public ::testing::Test {
 protected:
  // Seeds the database with `seed_sql`, then builds and starts the PBX, link, call centre,
  // router, desktop server and the presence listener.
  void start(const std::string& seed_sql, scenario s) {
    db_.exec(seed_sql);
    pool_ = std::make_unique<store::connection_pool>(
        store::pool_config{.url = db_.url(), .size = s.database_connections, .statement_timeout = s.statement_timeout});
    pbxsim::simulator_config sim_config;
    sim_config.model.operators = s.phones;
    sim_config.model.route_points = s.route_points;
    sim_config.model.default_device = s.default_device;
    sim_config.model.route_timeout = s.pbx_route_timeout;
    sim_config.model.auto_answer_delay = s.auto_answer;
    if (s.generator) {
      sim_config.generator = *s.generator;
      sim_config.generator->route_points = s.route_points;
      sim_config.generator->rate = 0;
    }
    sim_config.server.heartbeat_interval = 2s;
    sim_ = std::make_unique<pbxsim::simulator>(loop_.get_executor(), sim_config);
    sim_->start();

    csta::link_config link_config;
    link_config.port = sim_->port();
    link_config.devices = s.phones;
    link_config.route_points = s.route_points;
    link_config.request_timeout = 5s;
    link_config.heartbeat_interval = 2s;
    link_ = csta::csta_link::create(loop_.get_executor(), link_config);

    centre_ = std::make_unique<calls::call_centre>(loop_.get_executor(), *pool_, *link_,
                                                   calls::call_centre_config{.node = "e2e",
                                                                             .ring_no_answer = s.ring_no_answer,
                                                                             .default_wrap_up = s.default_wrap_up,
                                                                             .stats_push = s.stats_push,
                                                                             .write_lanes = s.write_lanes,
                                                                             .write_spill = 1});
    router_ = std::make_unique<routing::router>(
        loop_.get_executor(), blocking_.get_executor(), *pool_, *centre_,
        routing::router_config{.route_timeout = s.router_route_timeout, .node = "e2e"});
    desk::server_config desk_config;
    desk_config.listen_address = "127.0.0.1";
    desk_config.port = 0;
    desk_config.node_name = "e2e";
    desk_config.idle_timeout = 10min;  // the test's desktops do not ping
    desk_config.outbox_max_messages = 100'000;
    desk_config.outbox_max_bytes = 64 << 20;
    desk_ = std::make_unique<desk::server>(loop_.get_executor(), desk_config, *pool_, *centre_);
    ASSERT_TRUE(desk_->start().has_value());
    centre_->attach(*router_, *desk_);
    listener_ = std::make_unique<store::notification_listener>(
        loop_.get_executor(), blocking_.get_executor(), store::pool_config{.url = db_.url()},
        std::vector<std::string>{"presence"},
        [this](const store::notification& n) { centre_->presence_notification(n.payload); });
    listener_->start();
    centre_->start();
    router_->start();
    link_->start();
  }

  void TearDown() override {
    if (!sim_) return;
    for (auto& d : desktops_) d.client->close();
    listener_->stop();
    desk_->stop();
    router_->stop();
    centre_->stop();
    link_->stop();
    sim_->stop();
    loop_.restart();
    loop_.run_for(500ms);
    blocking_.join();
  }

  // Connects a desktop and logs the operator in at `device`; nullopt on any refusal.
  asio::awaitable<std::optional<desktop>> log_in(std::string login, std::string device) {
    desktop d{std::move(login), std::move(device), std::make_unique<desk::client>(loop_.get_executor())};
    if (!co_await d.client->connect("127.0.0.1", desk_->local_endpoint().port())) co_return std::nullopt;
    if (!ok(co_await d.client->request(desk::req::hello{.client = "e2e"}))) co_return std::nullopt;
    auto reply = co_await d.client->request(
        desk::req::login{.tenant = "acme", .login = d.login, .password = "pw", .device = d.device});
    if (!ok(reply)) co_return std::nullopt;
    d.operator_id = std::get<desk::login_result>(std::get<desk::ok_reply>(*reply).result).who.operator_id;
    co_return std::move(d);
  }

  // Logs each operator in at his extension and makes him ready.
  asio::awaitable<bool> staff(std::vector<std::pair<std::string, std::string>> operators) {
    for (auto& [login, device] : operators) {
      auto d = co_await log_in(login, device);
      if (!d) co_return false;
      if (!ok(co_await d->client->request(desk::req::ready{}))) co_return false;
      desktops_.push_back(std::move(*d));
    }
    co_return true;
  }

  // The call centre knows the operator's phone (from his presence), so it tracks calls there.
  asio::awaitable<bool> phone_known(std::string device) {
    return wait_until([this, device] { return centre_->tracker().is_operator_device(device); }, 30s);
  }

  static bool ok(const result<desk::server_message>& reply) {
    return reply && std::holds_alternative<desk::ok_reply>(*reply);
  }

  // Keeps one event in the desktop's inbox.
  static void file(desktop& d, desk::server_message&& m) {
    if (auto* offer = std::get_if<desk::offer_event>(&m)) {
      d.received.timeline.push_back({.call_id = offer->call.call_id, .offer = true});
      d.received.offers.push_back(std::move(*offer));
    } else if (auto* call = std::get_if<desk::call_event>(&m)) {
      d.received.timeline.push_back({.call_id = call->call_id, .state = call->state});
      d.received.calls.push_back(std::move(*call));
    } else if (auto* state = std::get_if<desk::state_event>(&m))
      d.received.states.push_back(std::move(*state));
    else if (auto* stats = std::get_if<desk::stats_event>(&m))
      d.received.stats.push_back(std::move(*stats));
  }

  // Files every event a desktop has received so far (they are queued in its client).
  static asio::awaitable<void> drain(desktop& d) {
    for (;;) {
      auto m = co_await d.client->receive(20ms);
      if (!m) break;
      file(d, std::move(*m));
    }
  }

  // Reads (and files) a desktop's events until one satisfies `match`; false after `limit`.
  static asio::awaitable<bool> until(desktop& d, std::function<bool(const desk::server_message&)> match,
                                     std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = co_await d.client->receive(200ms);
      if (!m) continue;
      const bool found = match(*m);
      file(d, std::move(*m));
      if (found) co_return true;
    }
    co_return false;
  }

  static asio::awaitable<bool> until_call(desktop& d, desk::call_state state, std::chrono::seconds limit = 30s) {
    return until(
        d,
        [state](const desk::server_message& m) {
          const auto* call = std::get_if<desk::call_event>(&m);
          return call && call->state == state;
        },
        limit);
  }

  static asio::awaitable<bool> until_state(desktop& d, std::string state, std::chrono::seconds limit = 30s) {
    return until(
        d,
        [state](const desk::server_message& m) {
          const auto* s = std::get_if<desk::state_event>(&m);
          return s && s->state == state;
        },
        limit);
  }

  asio::awaitable<void> collect_offers() {
    for (auto& d : desktops_) co_await drain(d);
  }

  desktop& at(const std::string& login) {
    for (auto& d : desktops_)
      if (d.login == login) return d;
    throw std::out_of_range("no desktop for " + login);
  }

  static asio::awaitable<bool> wait_until(std::function<bool()> done, std::chrono::seconds limit) {
    for (auto waited = 0ms; waited < limit; waited += 50ms) {
      if (done()) co_return true;
      co_await testing::sleep_for(50ms);
    }
    co_return done();
  }

  // Every write of the call centre reached the database.
  bool settled() const { return centre_->pending_writes() == 0; }
  std::string scalar(const std::string& sql) const { return db_.scalar(sql); }
  std::int64_t count(const std::string& sql) const { return std::stoll(db_.scalar(sql)); }

  // Rows of a query as text (NULL as ""), for checks that walk the records.
  std::vector<std::vector<std::string>> rows(const std::string& sql) const {
    pqxx::connection c(db_.url());
    pqxx::read_transaction tx(c);
    std::vector<std::vector<std::string>> out;
    for (const auto& row : tx.exec(sql)) {
      auto& r = out.emplace_back();
      for (const auto& field : row) r.push_back(field.is_null() ? "" : field.as<std::string>());
    }
    return out;
  }

  testing::test_database db_;
  asio::io_context loop_;
  asio::thread_pool blocking_{1};
  std::unique_ptr<store::connection_pool> pool_;
  std::unique_ptr<pbxsim::simulator> sim_;
  std::shared_ptr<csta::csta_link> link_;
  std::unique_ptr<calls::call_centre> centre_;
  std::unique_ptr<routing::router> router_;
  std::unique_ptr<desk::server> desk_;
  std::unique_ptr<store::notification_listener> listener_;
  std::vector<desktop> desktops_;
};

}  // namespace switchboard::e2e
