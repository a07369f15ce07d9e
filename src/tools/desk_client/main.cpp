// switchboard-desk: one operator at a terminal (state, current call, screen pop; typed
// commands), or --script: many operators played from one process.
#include "switchboard/desk/client.hpp"
#include "switchboard/desk/scripted.hpp"
#include "switchboard/log.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>
#include <iostream>
#include <sstream>

namespace asio = boost::asio;
using namespace switchboard;
using namespace switchboard::desk;

namespace {

std::string show(const server_message& m) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, state_event>) {
          return "STATE " + v.state + (v.reason ? " (" + *v.reason + ")" : "") + " since " + v.since +
                 (v.pending_not_ready ? " [not ready after this call: " + *v.pending_not_ready + "]" : "");
        } else if constexpr (std::is_same_v<T, offer_event>) {
          std::string text = "OFFER call " + std::to_string(v.call.call_id) + " from " + v.call.caller + " to " +
                             v.call.dialled + (v.call.queue ? " queue " + *v.call.queue : "") + ", waited " +
                             std::to_string(v.call.waited_seconds) + " s";
          text += "\n      customer: " + (v.customer.is_null() ? std::string("unknown") : v.customer.dump());
          text += "\n      ivr:      " + v.ivr.dump();
          return text;
        } else if constexpr (std::is_same_v<T, call_event>) {
          return "CALL " + std::to_string(v.call_id) + " " + to_string(v.state) + " " + v.caller + " → " + v.dialled;
        } else if constexpr (std::is_same_v<T, error_reply>) {
          return "ERROR " + v.code + ": " + v.message;
        } else if constexpr (std::is_same_v<T, closing_event>) {
          return "CLOSING " + v.code + ": " + v.message;
        } else if constexpr (std::is_same_v<T, pong_reply>) {
          return "";
        } else {
          return encode(server_message{v});
        }
      },
      m);
}

// A typed command line to a request; nullopt with a message when it is not one.
std::optional<request_body> parse_command(const std::string& line, std::string& problem) {
  std::istringstream in(line);
  std::string word, arg;
  in >> word;
  std::getline(in >> std::ws, arg);
  auto need = [&](const char* what) {
    if (arg.empty()) problem = word + " needs " + what;
    return !arg.empty();
  };
  if (word == "ready") return req::ready{};
  if (word == "nr" || word == "not_ready")
    return need("a reason") ? std::optional<request_body>(req::not_ready{arg}) : std::nullopt;
  if (word == "logout") return req::logout{};
  if (word == "wrapped" || word == "end_wrap_up") return req::end_wrap_up{};
  if (word == "answer" || word == "a") return req::answer{};
  if (word == "hangup" || word == "h") return req::hangup{};
  if (word == "hold") return req::hold{};
  if (word == "retrieve") return req::retrieve{};
  if (word == "consult") return need("a number") ? std::optional<request_body>(req::consult{arg}) : std::nullopt;
  if (word == "transfer")
    return need("a number") ? std::optional<request_body>(req::transfer{req::transfer_mode::blind, arg}) : std::nullopt;
  if (word == "complete") return req::transfer{req::transfer_mode::complete, ""};
  if (word == "conference") return req::conference{};
  if (word == "dial") return need("a number") ? std::optional<request_body>(req::dial{arg}) : std::nullopt;
  if (word == "dispo" || word == "disposition") {
    if (!need("a code")) return std::nullopt;
    auto space = arg.find(' ');
    return req::disposition{arg.substr(0, space), space == std::string::npos ? "" : arg.substr(space + 1)};
  }
  if (word == "view") return req::tenant_view{};
  if (word == "force") {
    std::istringstream a(arg);
    std::int64_t id = 0;
    std::string state, reason;
    a >> id >> state;
    std::getline(a >> std::ws, reason);
    if (state == "ready") return req::force_state{id, req::forced_state::ready, ""};
    if (state == "logged_out") return req::force_state{id, req::forced_state::logged_out, ""};
    if (state == "not_ready" && !reason.empty()) return req::force_state{id, req::forced_state::not_ready, reason};
    problem = "force OPERATOR_ID ready|not_ready REASON|logged_out";
    return std::nullopt;
  }
  problem =
      "commands: ready, nr REASON, logout, wrapped, answer, hangup, hold, retrieve, consult N, transfer N, "
      "complete, conference, dial N, dispo CODE [NOTES], view, force ID STATE [REASON], quit";
  return std::nullopt;
}

asio::awaitable<int> interactive(std::string host, std::uint16_t port, client_options options, req::login who) {
  auto ex = co_await asio::this_coro::executor;
  client c(ex, options);
  if (auto up = co_await c.connect(host, port); !up) {
    std::cerr << up.error().message() << "\n";
    co_return 1;
  }
  auto hello = co_await c.request(req::hello{protocol_version, "switchboard-desk"});
  if (!hello) {
    std::cerr << hello.error().message() << "\n";
    co_return 1;
  }
  auto in = co_await c.request(who);
  if (!in || !std::holds_alternative<ok_reply>(*in)) {
    std::cerr << (in ? show(*in) : in.error().message()) << "\n";
    co_return 1;
  }
  const auto& l = std::get<login_result>(std::get<ok_reply>(*in).result);
  std::cout << "logged in as " << l.who.name << " (" << l.who.login << ", " << to_string(l.who.role) << ") on "
            << l.who.device << "\n";
  if (l.snapshot.offer) std::cout << show(server_message{*l.snapshot.offer}) << "\n";

  bool quit = false;
  // typed commands from stdin, each sent as a request; replies and events print as they come
  asio::co_spawn(
      ex,
      [&]() -> asio::awaitable<void> {
        asio::posix::stream_descriptor input(ex, ::dup(STDIN_FILENO));
        std::string buffered;
        for (;;) {
          auto [ec, n] = co_await asio::async_read_until(input, asio::dynamic_buffer(buffered), '\n',
                                                         asio::as_tuple(asio::use_awaitable));
          if (ec) break;
          auto line = buffered.substr(0, n - 1);
          buffered.erase(0, n);
          if (line == "quit" || line == "q") break;
          if (line.empty()) continue;
          std::string problem;
          if (auto body = parse_command(line, problem))
            c.send(std::move(*body));
          else
            std::cout << problem << "\n";
        }
        quit = true;
        c.send(req::logout{});
      },
      asio::detached);
  auto heartbeat = std::chrono::seconds(10);
  if (auto* ok = std::get_if<ok_reply>(&*hello))
    if (auto* h = std::get_if<hello_result>(&ok->result))
      heartbeat = std::chrono::seconds(std::max(1, h->heartbeat_seconds));
  for (;;) {
    auto m = co_await c.receive(heartbeat);
    if (!m) {
      if (!c.connected()) break;
      c.send(req::ping{});
      continue;
    }
    if (auto text = show(*m); !text.empty()) std::cout << text << std::endl;
    if (quit && std::holds_alternative<ok_reply>(*m)) break;
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"switchboard-desk: an operator desktop for the terminal, or many scripted operators"};
  std::string host = "127.0.0.1", tenant, login, password, device, ca_file;
  std::uint16_t port = 8490;
  bool tls = false, insecure = false;
  std::vector<std::string> script_logins;
  int answer_ms = 1000, wrap_up_ms = 2000, break_ms = 5000, duration_s = 0;
  double break_probability = 0.1;
  app.add_option("--host", host, "server address")->capture_default_str();
  app.add_option("--port", port, "desktop channel port")->capture_default_str();
  app.add_flag("--tls", tls, "connect with TLS");
  app.add_option("--ca", ca_file, "CA certificate (PEM) to verify the server with");
  app.add_flag("--insecure", insecure, "with --tls: do not verify the server's certificate");
  app.add_option("--tenant", tenant, "tenant code")->required();
  app.add_option("--login", login, "operator login (interactive mode)");
  app.add_option("--password", password, "password (default: env SWITCHBOARD_DESK_PASSWORD)");
  app.add_option("--device", device, "phone for this session (default: the operator's extension)");
  app.add_option("--script", script_logins, "play these operators (scripted mode)")->expected(1, -1);
  app.add_option("--answer-ms", answer_ms, "scripted: answer an offer after this delay")->capture_default_str();
  app.add_option("--wrap-up-ms", wrap_up_ms, "scripted: wrap-up time after a call")->capture_default_str();
  app.add_option("--break-probability", break_probability, "scripted: chance of a break after a call")
      ->capture_default_str();
  app.add_option("--break-ms", break_ms, "scripted: length of a break")->capture_default_str();
  app.add_option("--duration", duration_s, "scripted: stop after this many seconds (0: until Ctrl-C)");
  CLI11_PARSE(app, argc, argv);
  if (password.empty())
    if (const char* env = std::getenv("SWITCHBOARD_DESK_PASSWORD")) password = env;

  client_options options{.tls = tls, .verify_peer = !insecure, .ca_file = ca_file};
  asio::io_context loop(1);
  asio::signal_set signals(loop, SIGINT, SIGTERM);
  bool stopping = false;
  signals.async_wait([&](auto, int) { stopping = true; });
  int status = 0;

  if (script_logins.empty()) {
    if (login.empty()) {
      std::cerr << "--login (interactive) or --script LOGIN... is required\n";
      return 2;
    }
    signals.async_wait([&](auto, int) { loop.stop(); });
    asio::co_spawn(loop, interactive(host, port, options, req::login{tenant, login, password, device}),
                   [&](std::exception_ptr e, int code) {
                     status = e ? 1 : code;
                     loop.stop();
                   });
    loop.run();
    return status;
  }

  script s{.host = host,
           .port = port,
           .connection = options,
           .tenant = tenant,
           .password = password,
           .answer_delay = std::chrono::milliseconds(answer_ms),
           .wrap_up = std::chrono::milliseconds(wrap_up_ms),
           .break_probability = break_probability,
           .break_length = std::chrono::milliseconds(break_ms)};
  script_stats stats;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(duration_s);
  auto stop = [&] { return stopping || (duration_s > 0 && std::chrono::steady_clock::now() >= until); };
  int running = static_cast<int>(script_logins.size());
  for (const auto& who : script_logins)
    asio::co_spawn(loop,
                   play_operator(s, who, stats, stop,
                                 [](const std::string& op, const server_message& m) {
                                   if (std::holds_alternative<offer_event>(m) || std::holds_alternative<call_event>(m))
                                     logger("desk")->info("{}: {}", op, show(m));
                                 }),
                   [&](std::exception_ptr) {
                     if (--running == 0) loop.stop();
                   });
  loop.run();
  std::cout << "operators " << script_logins.size() << " logged_in " << stats.logged_in << " offers " << stats.offers
            << " answered " << stats.answered << " calls_ended " << stats.calls_ended << " breaks " << stats.breaks
            << " errors " << stats.errors << " disconnected " << stats.disconnected << "\n";
  return stats.logged_in == static_cast<int>(script_logins.size()) ? 0 : 1;
}
