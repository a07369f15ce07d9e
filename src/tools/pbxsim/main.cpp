// switchboard-pbxsim: the simulated CSTA PBX as a process for demos and load, set up from a JSON
// profile and/or the command line, steered through its control port; --measure reports how many
// calls per second the generator and call model sustain without sockets.
#include "switchboard/csta/codec.hpp"
#include "switchboard/log.hpp"
#include "switchboard/pbxsim/profile.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

namespace {

using namespace switchboard;
using namespace switchboard::pbxsim;
using json = nlohmann::json;

// Splits "800,801" into a JSON list.
json list_of(const std::string& text) {
  json out = json::array();
  std::string item;
  for (const char c : text + ",") {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  return out;
}

struct measured {
  std::uint64_t calls = 0;
  std::uint64_t frames = 0;
  double seconds = 0;
};

// Drives generator + model through `sim_seconds` of simulated time as fast as the CPU allows,
// with a built-in router that sends each RouteRequest to the next free operator. With
// `encode_events`, every device is monitored and every event and routing message is encoded as
// a CSTA frame, as the server would.
measured measure(const profile& p, int sim_seconds, bool encode_events) {
  call_model model(p.sim.model);
  auto gen_cfg = p.sim.generator.value_or(generator_config{.route_points = p.sim.model.route_points});
  call_generator gen(gen_cfg);
  const auto reg = std::get<csta::route_register_response>(*model.handle(csta::route_register{}, sim_time{0}));
  if (encode_events) {
    for (const auto& d : p.sim.model.operators) model.add_monitor(d);
    for (const auto& d : p.sim.model.route_points) model.add_monitor(d);
  }
  const auto& ops = p.sim.model.operators;
  std::size_t next_op = 0;
  std::string frame;
  measured out;
  const auto started = std::chrono::steady_clock::now();
  for (sim_time t{0}; t <= std::chrono::seconds(sim_seconds); t += sim_time(10)) {
    gen.run_until(model, t);
    // Routing answers can produce more outputs; drain until quiet.
    while (model.has_outputs()) {
      for (auto& o : model.take_outputs()) {
        if (encode_events) {
          frame.clear();
          (void)csta::encode_frame(o.message, 9999, frame);
          ++out.frames;
        }
        const auto* request = std::get_if<csta::route_request>(&o.message);
        if (!request) continue;
        std::optional<std::string> pick;
        // A few candidates only: the harness must not cost more than the model it measures.
        for (std::size_t i = 0; i < std::min<std::size_t>(ops.size(), 16) && !pick; ++i) {
          const auto& candidate = ops[(next_op + i) % ops.size()];
          if (!model.is_busy(candidate)) {
            pick = candidate;
            next_op = (next_op + i + 1) % ops.size();
          }
        }
        if (pick) {
          model.handle(csta::route_select{.cross_ref_identifier = request->cross_ref_identifier,
                                          .route_register_req_id = reg.route_register_req_id,
                                          .route_selected = *pick},
                       t);
        } else {
          model.handle(csta::route_end{.cross_ref_identifier = request->cross_ref_identifier,
                                       .route_register_req_id = reg.route_register_req_id},
                       t);
        }
      }
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  out.calls = model.stats().offered;
  return out;
}

int run_measure(const profile& p, int sim_seconds) {
  for (const bool encode : {false, true}) {
    const auto m = measure(p, sim_seconds, encode);
    std::printf("%-34s %9llu calls in %6.2f s wall = %10.0f calls/s%s\n",
                encode ? "model+generator+encoded events:" : "model+generator (no monitors):",
                static_cast<unsigned long long>(m.calls), m.seconds, static_cast<double>(m.calls) / m.seconds,
                encode ? (" (" + std::to_string(m.frames) + " frames)").c_str() : "");
  }
  return 0;
}

int run_server(const profile& p) {
  boost::asio::io_context io;
  simulator sim(io.get_executor(), p.sim);
  sim.start();
  std::optional<control_server> control;
  auto stop_all = [&] {
    if (control) control->stop();
    sim.stop();
    io.stop();
  };
  if (p.control_port) {
    control.emplace(io.get_executor(), sim, [&] { boost::asio::post(io, stop_all); });
    control->start(p.control_address, *p.control_port);
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop_all();
  });
  boost::asio::steady_timer stats_timer(io);
  boost::asio::steady_timer end_timer(io);
  if (p.stats_every.count() > 0) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          for (;;) {
            stats_timer.expires_after(p.stats_every);
            co_await stats_timer.async_wait(boost::asio::use_awaitable);
            logger("pbxsim")->info("stats {}", stats_line(sim));
          }
        },
        boost::asio::detached);
  }
  if (p.duration.count() > 0) {
    end_timer.expires_after(p.duration);
    end_timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) stop_all();
    });
  }
  io.run();
  logger("pbxsim")->info("final {}", stats_line(sim));
  std::cout << stats_json(sim).dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"switchboard-pbxsim: a PBX that speaks CSTA XML (ECMA-323) as a server, with a call generator"};
  std::string profile_path;
  std::string listen, style, operators, route_points, default_device, log_level;
  int port = -1, control_port = -1, auto_answer_ms = -2, measure_seconds = 0;
  double rate = -1, talk_mean_s = -1, patience_mean_s = -1, duration_s = -1, stats_every_s = -1;
  long long seed = -1, route_timeout_ms = -1;
  cli.add_option("--profile", profile_path, "JSON profile (docs/pbxsim.md); options given here override it");
  cli.add_option("--listen", listen, "address to listen on for CTI clients (127.0.0.1)");
  cli.add_option("--port", port, "CSTA port (4721; 0 = any)");
  cli.add_option("--control-port", control_port, "JSON-lines control port (none by default)");
  cli.add_option("--style", style, "session style: system_status | application_session");
  cli.add_option("--operators", operators, "operator extensions, comma separated");
  cli.add_option("--route-points", route_points, "route points, comma separated");
  cli.add_option("--default-device", default_device, "where calls go without CTI routing");
  cli.add_option("--route-timeout-ms", route_timeout_ms, "how long a RouteRequest waits for RouteSelect");
  cli.add_option("--auto-answer-ms", auto_answer_ms, "operators answer after this delay; -1 = only on AnswerCall");
  cli.add_option("--rate", rate, "calls per second per route point");
  cli.add_option("--seed", seed, "generator seed");
  cli.add_option("--talk-mean-s", talk_mean_s, "mean talk time (exponential), seconds");
  cli.add_option("--patience-mean-s", patience_mean_s, "mean caller patience (exponential), seconds; 0 = endless");
  cli.add_option("--duration", duration_s, "stop after this many seconds (0 = run until stopped)");
  cli.add_option("--stats-every", stats_every_s, "print a stats line every N seconds (0 = never)");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
  cli.add_option("--measure", measure_seconds,
                 "no sockets: run N simulated seconds as fast as possible and print calls per second");
  CLI11_PARSE(cli, argc, argv);

  auto base = default_profile();
  if (!profile_path.empty()) {
    auto loaded = load_profile(profile_path, base);
    if (!loaded) {
      std::cerr << "switchboard-pbxsim: " << loaded.error().message() << "\n";
      return 2;
    }
    base = std::move(*loaded);
  }
  // Command-line options as a profile overlay, so both go through one validation.
  json overlay = json::object();
  if (!listen.empty() || port >= 0) {
    overlay["listen"] = json::object();
    if (!listen.empty()) overlay["listen"]["address"] = listen;
    if (port >= 0) overlay["listen"]["port"] = port;
  }
  if (control_port >= 0) overlay["control"] = {{"port", control_port}};
  if (!style.empty()) overlay["session_style"] = style;
  if (!operators.empty()) overlay["operators"] = list_of(operators);
  if (!route_points.empty()) overlay["route_points"] = list_of(route_points);
  if (!default_device.empty()) overlay["default_device"] = default_device;
  if (route_timeout_ms >= 0) overlay["route_timeout_ms"] = route_timeout_ms;
  if (auto_answer_ms >= 0) overlay["auto_answer_ms"] = auto_answer_ms;
  if (auto_answer_ms == -1) overlay["auto_answer_ms"] = nullptr;
  json gen = json::object();
  if (rate >= 0) gen["rate"] = rate;
  if (seed >= 0) gen["seed"] = seed;
  if (talk_mean_s >= 0)
    gen["talk"] = {{"shape", "exponential"}, {"mean_ms", static_cast<long long>(talk_mean_s * 1000)}};
  if (patience_mean_s == 0) gen["patience"] = nullptr;
  if (patience_mean_s > 0) {
    gen["patience"] = {{"shape", "exponential"}, {"mean_ms", static_cast<long long>(patience_mean_s * 1000)}};
  }
  if (!gen.empty()) overlay["generator"] = gen;
  if (duration_s >= 0) overlay["duration_s"] = static_cast<long long>(duration_s);
  if (stats_every_s >= 0) overlay["stats_every_s"] = static_cast<long long>(stats_every_s);
  if (!log_level.empty()) overlay["log_level"] = log_level;
  auto p = parse_profile(overlay, std::move(base));
  if (!p) {
    std::cerr << "switchboard-pbxsim: " << p.error().message() << "\n";
    return 2;
  }
  if (!set_log_level(p->log_level)) {
    std::cerr << "switchboard-pbxsim: unknown log level " << p->log_level << "\n";
    return 2;
  }
  try {
    if (measure_seconds > 0) return run_measure(*p, measure_seconds);
    return run_server(*p);
  } catch (const std::exception& e) {
    std::cerr << "switchboard-pbxsim: " << e.what() << "\n";
    return 1;
  }
}
