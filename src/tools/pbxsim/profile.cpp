// Profile parsing, statistics and the JSON-lines control port of the simulator: everything a
// process or a script needs to set it up and steer it.
#include "switchboard/pbxsim/profile.hpp"

#include "switchboard/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fstream>
#include <sstream>

namespace switchboard::pbxsim {
namespace {

namespace asio = boost::asio;
using json = nlohmann::json;
using ms = std::chrono::milliseconds;

// A profile error: which key, and what is wrong with it.
struct bad_key {
  std::string text;
};

template <class T>
T get(const json& j, const char* key, T fallback) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw bad_key{std::string(key) + ": " + e.what()};
  }
}

std::vector<std::string> device_list(const json& j, const char* key, std::vector<std::string> fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (v.is_object()) {  // {"first": 4701, "count": 20}: a block of extensions
    const auto first = get<long long>(v, "first", 0);
    const auto count = get<int>(v, "count", 0);
    if (first <= 0 || count <= 0 || count > 100000)
      throw bad_key{std::string(key) + ": first and count must be positive"};
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) out.push_back(std::to_string(first + i));
    return out;
  }
  return get<std::vector<std::string>>(j, key, std::move(fallback));
}

duration_dist distribution(const json& j, const char* key, duration_dist fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (v.is_number()) return duration_dist{duration_dist::shape::fixed, ms(v.get<long long>())};
  const auto shape = get<std::string>(v, "shape", "exponential");
  duration_dist d = fallback;
  if (shape == "fixed") {
    d.kind = duration_dist::shape::fixed;
  } else if (shape == "exponential") {
    d.kind = duration_dist::shape::exponential;
  } else if (shape == "uniform") {
    d.kind = duration_dist::shape::uniform;
  } else {
    throw bad_key{std::string(key) + ".shape: one of fixed, exponential, uniform"};
  }
  d.mean = ms(get<long long>(v, "mean_ms", d.mean.count()));
  d.min = ms(get<long long>(v, "min_ms", d.min.count()));
  d.max = ms(get<long long>(v, "max_ms", d.max.count()));
  if (d.kind == duration_dist::shape::uniform && d.max < d.min)
    throw bad_key{std::string(key) + ": max_ms below min_ms"};
  return d;
}

session_style style_of(const std::string& s) {
  if (s == "system_status") return session_style::system_status;
  if (s == "application_session") return session_style::application_session;
  throw bad_key{"session_style: system_status or application_session"};
}

std::string_view style_name(session_style s) {
  return s == session_style::system_status ? "system_status" : "application_session";
}

std::uint16_t port_of(const json& j, const char* key, std::uint16_t fallback) {
  const auto p = get<int>(j, key, fallback);
  if (p < 0 || p > 65535) throw bad_key{std::string(key) + ": a TCP port, 0..65535"};
  return static_cast<std::uint16_t>(p);
}

}  // namespace

profile default_profile() {
  profile p;
  auto& m = p.sim.model;
  for (int i = 4701; i <= 4720; ++i) m.operators.push_back(std::to_string(i));
  m.operators.push_back("4799");
  m.route_points = {"800"};
  m.default_device = "4799";
  p.sim.server.port = 4721;
  p.sim.generator = generator_config{.rate = 1.0, .route_points = m.route_points};
  return p;
}

result<profile> parse_profile(const json& j, profile base) {
  if (!j.is_object()) return error(errc::config_invalid, "pbxsim profile: a JSON object expected");
  try {
    auto p = std::move(base);
    auto& m = p.sim.model;
    auto& s = p.sim.server;
    if (j.contains("listen")) {
      const auto& l = j.at("listen");
      s.listen_address = get<std::string>(l, "address", s.listen_address);
      s.port = port_of(l, "port", s.port);
    }
    if (j.contains("control")) {
      const auto& c = j.at("control");
      if (c.is_null()) {
        p.control_port.reset();
      } else {
        p.control_address = get<std::string>(c, "address", p.control_address);
        p.control_port = port_of(c, "port", p.control_port.value_or(0));
      }
    }
    s.style = style_of(get<std::string>(j, "session_style", std::string(style_name(s.style))));
    if (j.contains("edition")) {
      const auto e = csta::parse_edition(get<std::string>(j, "edition", "ed3"));
      if (!e) throw bad_key{"edition: ed2..ed6"};
      s.edition = *e;
    }
    s.heartbeat_interval = ms(get<long long>(j, "heartbeat_interval_ms", s.heartbeat_interval.count()));
    s.heartbeat_misses = get<int>(j, "heartbeat_misses", s.heartbeat_misses);
    s.max_session_duration =
        std::chrono::seconds(get<long long>(j, "max_session_duration_s", s.max_session_duration.count()));
    s.outbox_limit = get<std::size_t>(j, "outbox_limit", s.outbox_limit);
    if (s.heartbeat_interval.count() <= 0 || s.heartbeat_misses <= 0) {
      throw bad_key{"heartbeat_interval_ms and heartbeat_misses must be positive"};
    }

    m.operators = device_list(j, "operators", m.operators);
    m.route_points = device_list(j, "route_points", m.route_points);
    m.default_device = get<std::string>(j, "default_device", m.default_device);
    m.route_timeout = ms(get<long long>(j, "route_timeout_ms", m.route_timeout.count()));
    if (j.contains("auto_answer_ms")) {
      m.auto_answer_delay = j.at("auto_answer_ms").is_null()
                                ? std::nullopt
                                : std::optional<ms>(ms(get<long long>(j, "auto_answer_ms", 0)));
    }
    m.external_answer_delay = ms(get<long long>(j, "external_answer_ms", m.external_answer_delay.count()));
    m.external_talk_time = ms(get<long long>(j, "external_talk_ms", m.external_talk_time.count()));
    m.keep_call_log = get<bool>(j, "keep_call_log", m.keep_call_log);

    if (j.contains("generator")) {
      const auto& g = j.at("generator");
      if (g.is_null()) {
        p.sim.generator.reset();
      } else {
        auto gen = p.sim.generator.value_or(generator_config{});
        gen.rate = get<double>(g, "rate", gen.rate);
        gen.seed = get<std::uint64_t>(g, "seed", gen.seed);
        gen.callers = get<std::vector<std::string>>(g, "callers", gen.callers);
        if (g.contains("caller_pattern")) {
          const auto& c = g.at("caller_pattern");
          gen.pattern.prefix = get<std::string>(c, "prefix", gen.pattern.prefix);
          gen.pattern.digits = get<int>(c, "digits", gen.pattern.digits);
          gen.pattern.first = get<int>(c, "first", gen.pattern.first);
          gen.pattern.last = get<int>(c, "last", gen.pattern.last);
        }
        gen.ivr_digits = get<std::vector<std::string>>(g, "ivr_digits", gen.ivr_digits);
        gen.talk = distribution(g, "talk", gen.talk);
        if (g.contains("patience")) {
          gen.patience = g.at("patience").is_null()
                             ? std::nullopt
                             : std::optional(distribution(g, "patience", gen.patience.value_or(duration_dist{})));
        }
        if (gen.rate < 0) throw bad_key{"generator.rate must not be negative"};
        p.sim.generator = std::move(gen);
      }
    }
    if (p.sim.generator) p.sim.generator->route_points = m.route_points;  // calls arrive at every route point

    p.duration = std::chrono::seconds(get<long long>(j, "duration_s", p.duration.count()));
    p.stats_every = std::chrono::seconds(get<long long>(j, "stats_every_s", p.stats_every.count()));
    p.log_level = get<std::string>(j, "log_level", p.log_level);
    try {
      call_model check(m);  // device lists and the default device, checked once here
    } catch (const std::invalid_argument& e) {
      throw bad_key{e.what()};
    }
    return p;
  } catch (const bad_key& e) {
    return error(errc::config_invalid, "pbxsim profile: " + e.text);
  }
}

result<profile> load_profile(const std::string& path, profile base) {
  std::ifstream in(path);
  if (!in) return error(errc::config_unreadable, path);
  try {
    return parse_profile(json::parse(in), std::move(base));
  } catch (const json::exception& e) {
    return error(errc::config_invalid, path + ": " + e.what());
  }
}

json stats_json(const simulator& sim) {
  const auto& m = sim.stats();
  const auto& l = sim.links();
  return json{{"offered", m.offered},
              {"route_requests", m.route_requests},
              {"routed_by_cti", m.routed_by_cti},
              {"default_routed", m.default_routed},
              {"route_timeouts", m.route_timeouts},
              {"abandoned", m.abandoned},
              {"answered", m.answered},
              {"completed", m.completed},
              {"active_calls", m.active_calls},
              {"sessions_open", l.sessions_open},
              {"sessions_accepted", l.sessions_accepted},
              {"requests", l.requests},
              {"events_sent", l.events_sent},
              {"errors_sent", l.errors_sent},
              {"slow_consumers", l.slow_consumers},
              {"rate", sim.rate()},
              {"sim_time_ms", sim.now().count()}};
}

std::string stats_line(const simulator& sim) {
  const auto& m = sim.stats();
  std::ostringstream out;
  out << "offered=" << m.offered << " routed_by_cti=" << m.routed_by_cti << " default_routed=" << m.default_routed
      << " abandoned=" << m.abandoned << " answered=" << m.answered << " active=" << m.active_calls
      << " links=" << sim.links().sessions_open << " rate=" << sim.rate();
  return out.str();
}

json control_command(simulator& sim, const json& command, const std::function<void()>& stop) {
  auto fail = [](std::string text) { return json{{"ok", false}, {"error", std::move(text)}}; };
  if (!command.is_object() || !command.contains("cmd") || !command.at("cmd").is_string()) {
    return fail("a JSON object with \"cmd\" expected");
  }
  const auto cmd = command.at("cmd").get<std::string>();
  try {
    if (cmd == "stats") return json{{"ok", true}, {"stats", stats_json(sim)}};
    if (cmd == "set_rate") {
      const auto rate = get<double>(command, "rate", -1);
      if (rate < 0) return fail("set_rate: \"rate\" (calls per second per route point, >= 0) expected");
      sim.set_rate(rate);
      return json{{"ok", true}, {"rate", sim.rate()}};
    }
    if (cmd == "drop_link") {
      sim.drop_link(ms(static_cast<long long>(get<double>(command, "seconds", 0) * 1000)));
      return json{{"ok", true}};
    }
    if (cmd == "silence_heartbeats") {
      sim.silence_heartbeats(get<bool>(command, "on", true));
      return json{{"ok", true}};
    }
    if (cmd == "delay_responses") {
      sim.delay_responses(ms(get<long long>(command, "ms", 0)));
      return json{{"ok", true}};
    }
    if (cmd == "withhold") {
      sim.withhold_responses(get<int>(command, "count", 1), get<std::string>(command, "message", ""));
      return json{{"ok", true}};
    }
    if (cmd == "malformed") {
      const auto kind = get<std::string>(command, "kind", "bad_xml");
      if (kind != "bad_xml" && kind != "bad_header") return fail("malformed: kind is bad_xml or bad_header");
      sim.send_malformed(kind == "bad_xml" ? malformed_kind::bad_xml : malformed_kind::bad_header);
      return json{{"ok", true}};
    }
    if (cmd == "offer") {
      inbound_call call{.caller = get<std::string>(command, "caller", ""),
                        .dialled = get<std::string>(command, "route_point", ""),
                        .correlator = get<std::string>(command, "ivr", ""),
                        .talk_time = ms(get<long long>(command, "talk_ms", 60000))};
      if (command.contains("patience_ms")) call.patience = ms(get<long long>(command, "patience_ms", 0));
      const auto id = sim.offer(std::move(call));
      if (!id) return fail("offer: no such device");
      return json{{"ok", true}, {"call", *id}};
    }
    if (cmd == "hang_up") {
      if (!sim.hang_up(get<std::string>(command, "call", ""))) return fail("hang_up: no such outside call");
      return json{{"ok", true}};
    }
    if (cmd == "calls") {
      if (!sim.model().config().keep_call_log) return fail("calls: start the simulator with keep_call_log");
      auto calls = json::array();
      for (const auto& f : sim.model().call_log())
        calls.push_back(json{{"call", f.call},
                             {"route_requested", f.route_requested},
                             {"routed_by_cti", f.routed_by_cti},
                             {"default_routed", f.default_routed},
                             {"answered", f.answered},
                             {"ended", f.ended},
                             {"continued_as", f.continued_as}});
      return json{{"ok", true}, {"calls", std::move(calls)}};
    }
    if (cmd == "stop") {
      if (stop) stop();
      return json{{"ok", true}};
    }
  } catch (const bad_key& e) {
    return fail(cmd + ": " + e.text);
  }
  return fail("unknown cmd \"" + cmd +
              "\" (stats, set_rate, drop_link, silence_heartbeats, delay_responses, withhold, malformed, offer, "
              "hang_up, calls, stop)");
}

// ---- control port -------------------------------------------------------------------------------

struct control_server::state : std::enable_shared_from_this<control_server::state> {
  state(asio::any_io_executor ex, simulator& s, std::function<void()> stop_fn)
      : acceptor(ex), sim(s), stop(std::move(stop_fn)) {}
  asio::ip::tcp::acceptor acceptor;
  simulator& sim;
  std::function<void()> stop;
  bool running = false;
  std::vector<std::weak_ptr<asio::ip::tcp::socket>> clients;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    while (running) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (!running) co_return;
      if (ec) continue;
      auto client = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      std::erase_if(clients, [](const auto& w) { return w.expired(); });
      clients.push_back(client);
      asio::co_spawn(
          acceptor.get_executor(), [self, client] { return self->serve(client); }, asio::detached);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<asio::ip::tcp::socket> socket) {
    auto self = shared_from_this();
    asio::streambuf in(64 * 1024);  // a longer line is an error, not a memory leak
    std::string out;
    while (running) {
      auto [ec, n] = co_await asio::async_read_until(*socket, in, '\n', asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      std::string line(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(n));
      in.consume(n);
      json reply;
      try {
        reply = control_command(sim, json::parse(line), stop);
      } catch (const json::exception& e) {
        reply = json{{"ok", false}, {"error", std::string("bad JSON: ") + e.what()}};
      }
      out = reply.dump() + "\n";
      auto [wec, wn] = co_await asio::async_write(*socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      if (wec) co_return;
    }
  }
};

control_server::control_server(asio::any_io_executor executor, simulator& sim, std::function<void()> stop)
    : state_(std::make_shared<state>(std::move(executor), sim, std::move(stop))) {}

control_server::~control_server() { stop(); }

void control_server::start(const std::string& address, std::uint16_t port) {
  auto& s = *state_;
  detail::listen(s.acceptor, address, port);
  s.running = true;
  logger("pbxsim")->info("pbxsim: control port on {}:{}", address, this->port());
  asio::co_spawn(
      s.acceptor.get_executor(), [st = state_] { return st->accept_loop(); }, asio::detached);
}

void control_server::stop() {
  auto& s = *state_;
  if (!s.running) return;
  s.running = false;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  for (const auto& w : s.clients) {
    if (const auto c = w.lock()) c->close(ignored);
  }
}

std::uint16_t control_server::port() const {
  boost::system::error_code ec;
  const auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace switchboard::pbxsim
