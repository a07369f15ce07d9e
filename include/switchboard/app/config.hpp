// The server's configuration: one JSON file, validated at start-up. An unknown key, a wrong
// type or a missing value is one line that names the key (see docs/configuration.md).
#pragma once

#include "switchboard/calls/call_centre.hpp"
#include "switchboard/csta/link.hpp"
#include "switchboard/desk/server.hpp"
#include "switchboard/error.hpp"
#include "switchboard/routing/router.hpp"

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace switchboard::app {

struct database_config {
  std::string url;            // env SWITCHBOARD_DATABASE_URL overrides
  int pool_size = 4;          // general lane: desktops, supervisors' figures, start-up, health
  int routing_pool_size = 2;  // the router's own connections (0: it shares the general lane)
  int writes_pool_size = 2;   // the call-record writers' own connections (0: one writer on the general lane)
  std::chrono::seconds connect_timeout{5};
  std::chrono::milliseconds statement_timeout{5000};
  bool migrate_on_start = false;
};

struct health_config {
  bool enabled = true;
  std::string listen = "127.0.0.1";
  std::uint16_t port = 8480;
};

struct pbx_config {
  bool enabled = true;
  std::string driver = "csta";
  csta::link_config csta;
  bool monitor_from_database = true;  // also monitor every route point and operator extension in the database
};

struct desk_config {
  bool enabled = true;
  desk::server_config server;
};

// SCHED_FIFO for the route's critical path: the event loop, the routing lane's workers and
// their PostgreSQL backends (switchboard/realtime.hpp, docs/configuration.md), given up while the
// path uses more than `realtime_cpu_limit` percent of the host's CPUs.
struct scheduling_config {
  int realtime_priority = 0;    // 1-99; 0: the normal policy
  int realtime_cpu_limit = 30;  // 1-100 percent of the host's CPUs
};

struct config {
  std::string node_name = "node-1";
  std::string log_level = "info";
  database_config database;
  health_config health;
  pbx_config pbx;
  desk_config desk;
  routing::router_config routing;
  calls::call_centre_config calls;
  scheduling_config scheduling;
};

// Parses and validates; the error's detail is the one line to print.
result<config> parse_config(const nlohmann::json& document);
result<config> parse_config_text(const std::string& text);
// Reads FILE, parses, validates, then applies SWITCHBOARD_DATABASE_URL from the environment.
result<config> load_config(const std::string& path);

}  // namespace switchboard::app
