// Config validation: each object is read through a reader that knows which keys it consumed,
// so unknown keys (typos) are reported instead of silently ignored.
#include "switchboard/app/config.hpp"

#include "switchboard/log.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace switchboard::app {
namespace {

using json = nlohmann::json;

struct config_problem {
  std::string line;
};

std::string fmt_number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string type_name(const json& value) {
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  return "null";
}

// Reads one JSON object; `finish` reports keys nobody asked for.
class object_reader {
 public:
  object_reader(const json& object, std::string path) : object_(object), path_(std::move(path)) {
    if (object_.is_object()) return;
    if (path_.empty()) throw config_problem{"config: the document must be a JSON object, got " + type_name(object_)};
    throw config_problem{"config key '" + path_ + "': must be an object, got " + type_name(object_)};
  }

  void text(const char* key, std::string& out, bool required = false) {
    if (const json* v = find(key, required)) {
      if (!v->is_string()) fail(key, "expected a string, got " + type_name(*v));
      out = v->get<std::string>();
      if (required && out.empty()) fail(key, "must not be empty");
    }
  }

  void boolean(const char* key, bool& out) {
    if (const json* v = find(key, false)) {
      if (!v->is_boolean()) fail(key, "expected true or false, got " + type_name(*v));
      out = v->get<bool>();
    }
  }

  template <class Int>
  void integer(const char* key, Int& out, long long min, long long max) {
    if (const json* v = find(key, false)) {
      if (!v->is_number_integer()) fail(key, "expected an integer, got " + type_name(*v));
      const auto value = v->get<long long>();
      if (value < min || value > max)
        fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                      std::to_string(value));
      out = static_cast<Int>(value);
    }
  }

  void number(const char* key, double& out, double min, double max) {
    if (const json* v = find(key, false)) {
      if (!v->is_number()) fail(key, "expected a number, got " + type_name(*v));
      const auto value = v->get<double>();
      if (value < min || value > max)
        fail(key, "must be between " + fmt_number(min) + " and " + fmt_number(max) + ", got " + fmt_number(value));
      out = value;
    }
  }

  // A string that must be one of `allowed`; returns its index (or -1 when absent).
  int choice(const char* key, std::initializer_list<const char*> allowed) {
    const json* v = find(key, false);
    if (!v) return -1;
    std::string list;
    for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
    if (!v->is_string()) fail(key, "expected one of " + list + ", got " + type_name(*v));
    int i = 0;
    for (const char* a : allowed) {
      if (v->get<std::string>() == a) return i;
      ++i;
    }
    fail(key, "expected one of " + list + ", got \"" + v->get<std::string>() + "\"");
  }

  void strings(const char* key, std::vector<std::string>& out) {
    if (const json* v = find(key, false)) {
      if (!v->is_array()) fail(key, "expected an array of strings, got " + type_name(*v));
      out.clear();
      for (const auto& item : *v) {
        if (!item.is_string() || item.get<std::string>().empty()) fail(key, "expected an array of non-empty strings");
        out.push_back(item.get<std::string>());
      }
    }
  }

  template <class Duration>
  void duration(const char* key, Duration& out, long long min, long long max) {
    long long count = out.count();
    integer(key, count, min, max);
    out = Duration(count);
  }

  object_reader child(const char* key) {
    static const json empty = json::object();
    const json* v = find(key, false);
    return object_reader(v ? *v : empty, key_path(key));
  }

  void finish() const {
    for (const auto& [key, value] : object_.items())
      if (!seen_.count(key)) fail(key, "unknown key (check the spelling; see docs/configuration.md)");
  }

 private:
  const json* find(const char* key, bool required) {
    seen_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) {
      if (required) fail(key, "missing (required)");
      return nullptr;
    }
    return &*it;
  }

  std::string key_path(const std::string& key) const {
    if (path_.empty()) return key;
    if (key.empty()) return path_;
    return path_ + "." + key;
  }

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw config_problem{"config key '" + key_path(key) + "': " + what};
  }

  const json& object_;
  std::string path_;
  std::set<std::string> seen_;
};

void read_database(object_reader r, database_config& out) {
  r.text("url", out.url);
  r.integer("pool_size", out.pool_size, 1, 64);
  r.integer("routing_pool_size", out.routing_pool_size, 0, 64);
  r.integer("writes_pool_size", out.writes_pool_size, 0, 64);
  r.duration("connect_timeout_seconds", out.connect_timeout, 1, 300);
  r.duration("statement_timeout_ms", out.statement_timeout, 10, 600000);
  r.boolean("migrate_on_start", out.migrate_on_start);
  r.finish();
}

void read_health(object_reader r, health_config& out) {
  r.boolean("enabled", out.enabled);
  r.text("listen", out.listen);
  r.integer("port", out.port, 0, 65535);
  r.finish();
}

void read_pbx(object_reader r, pbx_config& out) {
  auto& c = out.csta;
  r.boolean("enabled", out.enabled);
  if (r.choice("driver", {"csta"}) >= 0) out.driver = "csta";
  r.text("host", c.host);
  r.integer("port", c.port, 1, 65535);
  r.boolean("tls", c.tls);
  r.boolean("tls_verify", c.tls_verify);
  r.text("tls_ca_file", c.tls_ca_file);
  if (int i = r.choice("session", {"system_status", "application_session"}); i >= 0)
    c.session = i == 0 ? csta::session_style::system_status : csta::session_style::application_session;
  if (int i = r.choice("edition", {"ed2", "ed3", "ed4", "ed5", "ed6"}); i >= 0) c.emit = static_cast<csta::edition>(i);
  r.text("application_id", c.application_id);
  r.duration("session_duration_seconds", c.session_duration, 10, 86400);
  r.strings("devices", c.devices);
  r.strings("route_points", c.route_points);
  r.boolean("monitor_from_database", out.monitor_from_database);
  r.duration("connect_timeout_ms", c.connect_timeout, 100, 600000);
  r.duration("request_timeout_ms", c.request_timeout, 100, 600000);
  r.duration("heartbeat_interval_ms", c.heartbeat_interval, 100, 3600000);
  r.integer("heartbeat_misses", c.heartbeat_misses, 1, 100);
  r.duration("reconnect_initial_ms", c.reconnect_initial, 10, 600000);
  r.duration("reconnect_max_ms", c.reconnect_max, 10, 3600000);
  r.integer("max_frame_bytes", c.max_frame_size, 1024, 65535);
  r.finish();
  if (auto problem = c.validate(); !problem.empty()) throw config_problem{"config section 'pbx': " + problem};
}

void read_desk(object_reader r, desk_config& out) {
  auto& c = out.server;
  r.boolean("enabled", out.enabled);
  r.text("listen", c.listen_address);
  r.integer("port", c.port, 0, 65535);
  r.integer("max_connections", c.max_connections, 1, 1000000);
  r.integer("max_line_bytes", c.max_line_bytes, 256, 16 * 1024 * 1024);
  r.duration("heartbeat_interval_ms", c.heartbeat_interval, 100, 3600000);
  r.duration("idle_timeout_ms", c.idle_timeout, 100, 3600000);
  r.duration("login_timeout_ms", c.login_timeout, 100, 3600000);
  r.duration("resume_grace_ms", c.resume_grace, 0, 86400000);
  r.duration("write_timeout_ms", c.write_timeout, 100, 3600000);
  r.integer("outbox_max_messages", c.outbox_max_messages, 1, 1000000);
  r.integer("outbox_max_bytes", c.outbox_max_bytes, 1024, 1024 * 1024 * 1024);
  r.number("requests_per_second", c.requests_per_second, 0.1, 100000);
  r.number("request_burst", c.request_burst, 1, 100000);
  if (int i = r.choice("second_login", {"refuse", "take_over"}); i >= 0)
    c.second_login = i == 0 ? desk::second_login_policy::refuse : desk::second_login_policy::take_over;
  r.integer("max_failed_logins_per_login", c.max_failed_logins_per_login, 1, 100000);
  r.integer("max_failed_logins_per_address", c.max_failed_logins_per_address, 1, 100000);
  r.duration("failed_login_window_seconds", c.failed_login_window, 1, 86400);
  r.text("lost_desktop_reason", c.lost_desktop_reason);
  auto tls = r.child("tls");
  tls.boolean("enabled", c.tls.enabled);
  tls.text("certificate_file", c.tls.certificate_file);
  tls.text("private_key_file", c.tls.private_key_file);
  tls.finish();
  r.finish();
  if (auto valid = desk::validate(c); !valid) throw config_problem{"config section 'desk': " + valid.error().detail};
}

void read_routing(object_reader r, routing::router_config& c) {
  r.duration("route_timeout_ms", c.route_timeout, 10, 60000);
  r.duration("reservation_timeout_seconds", c.reservation_timeout, 1, 600);
  r.duration("recheck_interval_ms", c.recheck_interval, 100, 600000);
  r.duration("expiry_interval_ms", c.expiry_interval, 100, 600000);
  r.duration("stats_interval_ms", c.stats_interval, 100, 3600000);
  r.text("fallback_destination", c.fallback_destination);
  r.finish();
  if (auto valid = routing::validate(c); !valid)
    throw config_problem{"config section 'routing': " + valid.error().detail};
}

void read_calls(object_reader r, calls::call_centre_config& c) {
  r.duration("ring_no_answer_seconds", c.ring_no_answer, 1, 600);
  r.duration("default_wrap_up_seconds", c.default_wrap_up, 0, 3600);
  r.duration("stats_push_ms", c.stats_push, 100, 600000);
  r.finish();
}

void read_scheduling(object_reader r, scheduling_config& out) {
  r.integer("realtime_priority", out.realtime_priority, 0, 99);
  r.integer("realtime_cpu_limit", out.realtime_cpu_limit, 1, 100);
  r.finish();
}

}  // namespace

result<config> parse_config(const json& document) {
  try {
    config out;
    object_reader root(document, "");
    root.text("node_name", out.node_name);
    root.text("log_level", out.log_level);
    if (spdlog::level::from_str(out.log_level) == spdlog::level::off && out.log_level != "off")
      throw config_problem{"config key 'log_level': expected one of trace, debug, info, warn, error, critical, off"};
    read_database(root.child("database"), out.database);
    read_health(root.child("health"), out.health);
    read_pbx(root.child("pbx"), out.pbx);
    read_desk(root.child("desk"), out.desk);
    read_routing(root.child("routing"), out.routing);
    read_calls(root.child("calls"), out.calls);
    read_scheduling(root.child("scheduling"), out.scheduling);
    out.desk.server.node_name = out.node_name;
    out.routing.node = out.node_name;
    out.calls.node = out.node_name;
    root.finish();
    return out;
  } catch (const config_problem& p) {
    return error{errc::config_invalid, p.line};
  }
}

result<config> parse_config_text(const std::string& text) {
  json document;
  try {
    document = json::parse(text);
  } catch (const json::parse_error& e) {
    return error{errc::config_invalid, std::string("config is not valid JSON: ") + e.what()};
  }
  return parse_config(document);
}

result<config> load_config(const std::string& path) {
  std::ifstream file(path);
  if (!file) return error{errc::config_unreadable, path};
  std::stringstream text;
  text << file.rdbuf();
  auto parsed = parse_config_text(text.str());
  if (!parsed) return parsed;
  if (const char* env = std::getenv("SWITCHBOARD_DATABASE_URL"); env && *env) parsed->database.url = env;
  if (parsed->database.url.empty())
    return error{errc::config_invalid,
                 "config key 'database.url': missing (set it in the file or in SWITCHBOARD_DATABASE_URL)"};
  return parsed;
}

}  // namespace switchboard::app
