// End to end on loopback: the simulated PBX (CSTA XML over TCP) + the CSTA link + the router on
// a real PostgreSQL + the call-control layer + the desktop server with operators' desktop
// clients. Inbound calls are routed, ring, are answered and end; the records, the journal, the
// presence table and the screen pops must all agree.
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

#include <map>
#include <set>

namespace switchboard {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::sleep_for;

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

// One operator at his desktop: logged in, ready, and every screen pop he received.
struct desktop {
  std::string login;
  std::string device;
  std::unique_ptr<desk::client> client;
  std::int64_t operator_id = 0;
  std::vector<desk::offer_event> offers;
};

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(seed_sql);
    pbxsim::simulator_config sim_config;
    sim_config.model.operators = {"2001", "2002", "2003"};
    sim_config.model.route_points = {"5000"};
    sim_config.model.default_device = "2003";
    sim_config.model.route_timeout = 5s;
    sim_config.model.auto_answer_delay = 300ms;
    sim_config.server.heartbeat_interval = 2s;
    sim_ = std::make_unique<pbxsim::simulator>(loop_.get_executor(), sim_config);
    sim_->start();

    csta::link_config link_config;
    link_config.port = sim_->port();
    link_config.devices = {"2001", "2002", "2003"};
    link_config.route_points = {"5000"};
    link_config.request_timeout = 3s;
    link_config.heartbeat_interval = 2s;
    link_ = csta::csta_link::create(loop_.get_executor(), link_config);

    centre_ = std::make_unique<calls::call_centre>(
        loop_.get_executor(), pool_, *link_,
        calls::call_centre_config{.node = "e2e", .ring_no_answer = 10s, .default_wrap_up = 1s, .stats_push = 200ms});
    router_ = std::make_unique<routing::router>(loop_.get_executor(), blocking_.get_executor(), pool_, *centre_,
                                                routing::router_config{.route_timeout = 2000ms, .node = "e2e"});
    desk::server_config desk_config;
    desk_config.listen_address = "127.0.0.1";
    desk_config.port = 0;
    desk_config.node_name = "e2e";
    desk_ = std::make_unique<desk::server>(loop_.get_executor(), desk_config, pool_, *centre_);
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
    for (auto& d : desktops_) d.client->close();
    if (supervisor_) supervisor_->close();
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

  // Logs each operator in at his extension and makes him ready.
  asio::awaitable<bool> staff(std::vector<std::pair<std::string, std::string>> operators) {
    for (auto& [login, device] : operators) {
      desktop d{login, device, std::make_unique<desk::client>(loop_.get_executor())};
      auto connected = co_await d.client->connect("127.0.0.1", desk_->local_endpoint().port());
      if (!connected) co_return false;
      auto hello = co_await d.client->request(desk::req::hello{.client = "e2e"});
      if (!hello || !std::holds_alternative<desk::ok_reply>(*hello)) co_return false;
      auto login_reply = co_await d.client->request(
          desk::req::login{.tenant = "acme", .login = login, .password = "pw", .device = device});
      if (!login_reply || !std::holds_alternative<desk::ok_reply>(*login_reply)) co_return false;
      d.operator_id = std::get<desk::login_result>(std::get<desk::ok_reply>(*login_reply).result).who.operator_id;
      auto ready = co_await d.client->request(desk::req::ready{});
      if (!ready || !std::holds_alternative<desk::ok_reply>(*ready)) co_return false;
      desktops_.push_back(std::move(d));
    }
    co_return true;
  }

  // Collects the screen pops each desktop received so far (events are queued in the client).
  asio::awaitable<void> collect_offers() {
    for (auto& d : desktops_) {
      for (;;) {
        auto m = co_await d.client->receive(50ms);
        if (!m) break;
        if (auto* offer = std::get_if<desk::offer_event>(&*m)) d.offers.push_back(*offer);
      }
    }
  }

  asio::awaitable<bool> wait_until(std::function<bool()> done, std::chrono::seconds limit) {
    for (auto waited = 0ms; waited < limit; waited += 50ms) {
      if (done()) co_return true;
      co_await sleep_for(50ms);
    }
    co_return done();
  }

  testing::test_database db_;
  asio::io_context loop_;
  asio::thread_pool blocking_{1};
  store::connection_pool pool_{{.url = db_.url(), .size = 2}};
  std::unique_ptr<pbxsim::simulator> sim_;
  std::shared_ptr<csta::csta_link> link_;
  std::unique_ptr<calls::call_centre> centre_;
  std::unique_ptr<routing::router> router_;
  std::unique_ptr<desk::server> desk_;
  std::unique_ptr<store::notification_listener> listener_;
  std::vector<desktop> desktops_;
  std::unique_ptr<desk::client> supervisor_;
  int supervisor_answered_ = 0;
};

TEST_F(EndToEnd, InboundCallsAreRoutedAnsweredRecordedAndPopped) {
  constexpr int calls_per_round = 3;
  constexpr int rounds = 2;
  testing::run_coroutine(
      loop_,
      [&]() -> asio::awaitable<void> {
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
          if (supervisor_answered_ == calls_per_round * rounds) break;
        }
      },
      120s);
  EXPECT_EQ(supervisor_answered_, calls_per_round * rounds);

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
  {
    pqxx::connection c(db_.url());
    pqxx::read_transaction tx(c);
    for (const auto& row : tx.exec("SELECT call_id, operator_id FROM calls"))
      operator_of_call[row[0].as<std::string>()] = row[1].as<std::string>();
  }
  std::size_t pops = 0;
  for (const auto& d : desktops_) {
    std::set<std::int64_t> seen;
    for (const auto& offer : d.offers) {
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

}  // namespace
}  // namespace switchboard
