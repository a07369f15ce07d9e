// A simulator run described in one JSON profile (or the command line), and the JSON-lines
// control port through which tests, the demo and the benchmark steer a running simulator.
#pragma once

#include "switchboard/error.hpp"
#include "switchboard/pbxsim/server.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace switchboard::pbxsim {

struct profile {
  simulator_config sim;
  std::string control_address = "127.0.0.1";
  std::optional<std::uint16_t> control_port;  // std::nullopt: no control port
  std::chrono::seconds duration{0};           // 0: until stopped
  std::chrono::seconds stats_every{10};       // 0: no stats lines
  std::string log_level = "info";
};

// The defaults of every key (docs/pbxsim.md lists them): operators 4701..4720, route point 800,
// default device 4799, port 4721, SystemStatus style, 1 call/s.
profile default_profile();
// Reads a profile; keys left out keep default_profile()'s values. errc::config_invalid names the
// key at fault.
result<profile> parse_profile(const nlohmann::json& j, profile base = default_profile());
result<profile> load_profile(const std::string& path, profile base = default_profile());

// Counters of a running simulator as JSON, and as the one-line summary printed every N seconds.
nlohmann::json stats_json(const simulator& sim);
std::string stats_line(const simulator& sim);

// Runs one control command ({"cmd":"stats"}, {"cmd":"set_rate","rate":5}, ...) against `sim`
// and returns the reply ({"ok":true,...} or {"ok":false,"error":"..."}). `stop` is called for
// {"cmd":"stop"}.
nlohmann::json control_command(simulator& sim, const nlohmann::json& command, const std::function<void()>& stop = {});

// The control port: one JSON command per line in, one JSON reply per line out.
class control_server {
 public:
  control_server(boost::asio::any_io_executor executor, simulator& sim, std::function<void()> stop = {});
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  // Binds (throws boost::system::system_error when it cannot) and accepts connections.
  void start(const std::string& address, std::uint16_t port);
  void stop();
  std::uint16_t port() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::pbxsim
