// Scripted operators: many desktops played from one process (auto-ready, answer after a delay,
// wrap-up time, sometimes a break) for tests, the demo and the benchmark.
#pragma once

#include "switchboard/desk/client.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace switchboard::desk {

struct script {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8490;
  client_options connection;
  std::string tenant;
  std::string password;
  bool auto_ready = true;
  bool auto_answer = true;
  std::chrono::milliseconds answer_delay{1000};
  std::chrono::milliseconds wrap_up{2000};  // then disposition + end of wrap-up
  double break_probability = 0.0;           // after a call: a not-ready break with this chance
  std::chrono::milliseconds break_length{5000};
  std::chrono::milliseconds heartbeat{0};  // 0: what the server's hello says
};

// What the scripted operators did, summed (single-threaded: they share one event loop).
struct script_stats {
  int logged_in = 0;
  int offers = 0;
  int answered = 0;
  int calls_ended = 0;
  int wrap_ups_ended = 0;
  int breaks = 0;
  int pings = 0;
  int errors = 0;
  int disconnected = 0;
};

// Plays one operator until `stop()` is true (checked at least every heartbeat), then logs out.
// `on_event` (optional) sees every message, e.g. to print it.
boost::asio::awaitable<void> play_operator(
    script s, std::string login, script_stats& stats, std::function<bool()> stop,
    std::function<void(const std::string&, const server_message&)> on_event = {});

}  // namespace switchboard::desk
