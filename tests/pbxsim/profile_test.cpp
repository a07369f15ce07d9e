// Profiles (defaults, every key, errors that name the key), the example profile shipped in
// config/, and the control commands both in-process and over the JSON-lines port.
#include "switchboard/pbxsim/profile.hpp"

#include "../support/coro_test.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

namespace switchboard::pbxsim {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

TEST(profile, defaults_are_a_working_pbx) {
  const auto p = default_profile();
  EXPECT_EQ(p.sim.model.default_device, "4799");
  EXPECT_EQ(p.sim.model.route_points, (std::vector<std::string>{"800"}));
  EXPECT_EQ(p.sim.server.port, 4721);
  EXPECT_NO_THROW(call_model{p.sim.model});
  EXPECT_TRUE(parse_profile(json::object()).has_value());
}

TEST(profile, reads_every_key) {
  const auto j = json::parse(R"({
    "listen": {"address": "0.0.0.0", "port": 5000},
    "control": {"port": 5001},
    "session_style": "application_session",
    "edition": "ed6",
    "heartbeat_interval_ms": 2000, "heartbeat_misses": 3, "max_session_duration_s": 60, "outbox_limit": 100,
    "operators": {"first": 4701, "count": 3},
    "route_points": ["800", "801"],
    "default_device": "4703",
    "route_timeout_ms": 4000,
    "auto_answer_ms": null,
    "external_answer_ms": 1000, "external_talk_ms": 5000, "keep_call_log": true,
    "generator": {"rate": 2.5, "seed": 9, "caller_pattern": {"prefix": "+4989", "digits": 3, "first": 1, "last": 9},
                  "ivr_digits": ["7"], "talk": {"shape": "uniform", "min_ms": 1000, "max_ms": 2000},
                  "patience": null},
    "duration_s": 30, "stats_every_s": 5, "log_level": "debug"
  })");
  const auto p = parse_profile(j);
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->sim.server.listen_address, "0.0.0.0");
  EXPECT_EQ(p->sim.server.port, 5000);
  EXPECT_EQ(p->control_port, 5001);
  EXPECT_EQ(p->sim.server.style, session_style::application_session);
  EXPECT_EQ(p->sim.server.edition, csta::edition::ed6);
  EXPECT_EQ(p->sim.server.heartbeat_interval, 2000ms);
  EXPECT_EQ(p->sim.server.heartbeat_misses, 3);
  EXPECT_EQ(p->sim.server.max_session_duration, 60s);
  EXPECT_EQ(p->sim.server.outbox_limit, 100u);
  EXPECT_EQ(p->sim.model.operators, (std::vector<std::string>{"4701", "4702", "4703"}));
  EXPECT_EQ(p->sim.model.default_device, "4703");
  EXPECT_EQ(p->sim.model.route_timeout, 4000ms);
  EXPECT_FALSE(p->sim.model.auto_answer_delay);
  EXPECT_EQ(p->sim.model.external_answer_delay, 1000ms);
  EXPECT_EQ(p->sim.model.external_talk_time, 5000ms);
  EXPECT_TRUE(p->sim.model.keep_call_log);
  ASSERT_TRUE(p->sim.generator.has_value());
  const auto& g = *p->sim.generator;
  EXPECT_EQ(g.rate, 2.5);
  EXPECT_EQ(g.seed, 9u);
  EXPECT_EQ(g.route_points, (std::vector<std::string>{"800", "801"}));
  EXPECT_EQ(g.pattern.prefix, "+4989");
  EXPECT_EQ(g.pattern.last, 9);
  EXPECT_EQ(g.ivr_digits, (std::vector<std::string>{"7"}));
  EXPECT_EQ(g.talk.kind, duration_dist::shape::uniform);
  EXPECT_EQ(g.talk.max, 2000ms);
  EXPECT_FALSE(g.patience);
  EXPECT_EQ(p->duration, 30s);
  EXPECT_EQ(p->stats_every, 5s);
  EXPECT_EQ(p->log_level, "debug");
}

TEST(profile, errors_name_the_key) {
  const auto check = [](const char* text, const char* needle) {
    const auto p = parse_profile(json::parse(text));
    ASSERT_FALSE(p.has_value()) << text;
    EXPECT_TRUE(p.error().is(errc::config_invalid));
    EXPECT_NE(p.error().detail.find(needle), std::string::npos) << p.error().detail;
  };
  check(R"({"session_style": "fax"})", "session_style");
  check(R"({"default_device": "800"})", "default device");
  check(R"({"listen": {"port": 70000}})", "port");
  check(R"({"route_timeout_ms": "soon"})", "route_timeout_ms");
  check(R"({"generator": {"talk": {"shape": "gamma"}}})", "talk.shape");
  check(R"({"edition": "ed9"})", "edition");
  check(R"([1, 2])", "JSON object");
}

TEST(profile, the_example_profile_loads) {
  const auto p = load_profile(std::string(SWITCHBOARD_SOURCE_DIR) + "/config/pbxsim.example.json");
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_TRUE(p->control_port.has_value());
  EXPECT_FALSE(load_profile("/nonexistent/pbxsim.json").has_value());
}

simulator_config small_sim() {
  return simulator_config{.model = {.operators = {"4711", "4799"}, .route_points = {"800"}, .default_device = "4799"},
                          .generator = std::nullopt,
                          .server = {}};
}

TEST(control, commands_steer_the_simulator) {
  boost::asio::io_context loop;
  simulator sim(loop.get_executor(), small_sim());
  sim.start();
  bool stopped = false;
  auto run = [&](const char* text) { return control_command(sim, json::parse(text), [&] { stopped = true; }); };

  EXPECT_EQ(run(R"({"cmd":"stats"})")["stats"]["offered"], 0);
  auto offered = run(R"({"cmd":"offer","route_point":"800","caller":"+49305550007","ivr":"2"})");
  ASSERT_EQ(offered["ok"], true) << offered.dump();
  const auto call = offered["call"].get<std::string>();
  EXPECT_EQ(sim.model().state_of(call, "4799"), csta::local_connection_state::alerting);
  EXPECT_EQ(run(R"({"cmd":"stats"})")["stats"]["default_routed"], 1);
  EXPECT_EQ(run((R"({"cmd":"hang_up","call":")" + call + R"("})").c_str())["ok"], true);
  EXPECT_EQ(sim.stats().abandoned, 1u);
  EXPECT_EQ(run(R"({"cmd":"hang_up","call":"nope"})")["ok"], false);

  EXPECT_EQ(run(R"({"cmd":"set_rate","rate":5})")["rate"], 5.0);
  EXPECT_EQ(sim.rate(), 5.0);
  EXPECT_EQ(run(R"({"cmd":"set_rate"})")["ok"], false);
  for (const auto* ok : {R"({"cmd":"drop_link","seconds":0.1})", R"({"cmd":"silence_heartbeats","on":true})",
                         R"({"cmd":"delay_responses","ms":10})", R"({"cmd":"withhold","count":2})",
                         R"({"cmd":"malformed","kind":"bad_header"})", R"({"cmd":"stop"})"}) {
    EXPECT_EQ(run(ok)["ok"], true) << ok;
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(run(R"({"cmd":"malformed","kind":"noise"})")["ok"], false);
  EXPECT_EQ(run(R"({"cmd":"dance"})")["ok"], false);
  EXPECT_EQ(run(R"({"nocmd":1})")["ok"], false);
}

TEST(control, calls_lists_each_inbound_call_when_the_log_is_kept) {
  boost::asio::io_context loop;
  auto config = small_sim();
  simulator without(loop.get_executor(), config);
  EXPECT_EQ(control_command(without, json::parse(R"({"cmd":"calls"})"))["ok"], false);
  config.model.keep_call_log = true;
  simulator sim(loop.get_executor(), config);
  sim.start();
  const auto call = control_command(sim, json::parse(R"({"cmd":"offer","route_point":"800"})"))["call"];
  const auto listed = control_command(sim, json::parse(R"({"cmd":"calls"})"));
  ASSERT_EQ(listed["ok"], true) << listed.dump();
  ASSERT_EQ(listed["calls"].size(), 1u);
  EXPECT_EQ(listed["calls"][0]["call"], call);
  EXPECT_EQ(listed["calls"][0]["route_requested"], false);
  EXPECT_EQ(listed["calls"][0]["default_routed"], true);
  EXPECT_EQ(listed["calls"][0]["ended"], false);
}

TEST(control, one_json_line_in_one_json_line_out) {
  boost::asio::io_context loop;
  simulator sim(loop.get_executor(), small_sim());
  sim.start();
  control_server control(loop.get_executor(), sim);
  control.start("127.0.0.1", 0);
  switchboard::testing::run_coroutine(loop, [&]() -> boost::asio::awaitable<void> {
    boost::asio::ip::tcp::socket socket(loop.get_executor());
    co_await socket.async_connect({boost::asio::ip::make_address("127.0.0.1"), control.port()},
                                  boost::asio::use_awaitable);
    boost::asio::streambuf in;
    std::vector<json> replies;
    for (const std::string line : {"{\"cmd\":\"offer\"}\n", "not json\n", "{\"cmd\":\"stats\"}\n"}) {
      co_await boost::asio::async_write(socket, boost::asio::buffer(line), boost::asio::use_awaitable);
      const auto n = co_await boost::asio::async_read_until(socket, in, '\n', boost::asio::use_awaitable);
      std::string text(boost::asio::buffers_begin(in.data()), boost::asio::buffers_begin(in.data()) + n);
      in.consume(n);
      replies.push_back(json::parse(text));
    }
    EXPECT_EQ(replies[0]["ok"], true);
    EXPECT_EQ(replies[1]["ok"], false);
    EXPECT_EQ(replies[2]["stats"]["offered"], 1);
  });
}

}  // namespace
}  // namespace switchboard::pbxsim
