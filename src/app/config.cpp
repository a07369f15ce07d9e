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
