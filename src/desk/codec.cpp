// JSON lines ↔ typed desktop messages. Decoding never throws: the first problem found becomes
// a decode_failure that names the field, so the peer gets a reply it can act on.
#include "switchboard/desk/codec.hpp"

#include <limits>
#include <stdexcept>

namespace switchboard::desk {

using json = nlohmann::json;

void throw_exception_from_error(const decode_failure& f, const boost::source_location&) {
  throw std::runtime_error(f.err.message());
}

namespace {

constexpr std::size_t max_text_bytes = 4096;

// Nesting deeper than max_json_depth is refused before parsing, so neither the parser nor the
// destructor of a hostile document can use much stack or memory.
bool too_deep(std::string_view line) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_json_depth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

decode_failure failure(errc code, std::string detail, std::optional<request_id> id = std::nullopt) {
  return {error{code, std::move(detail)}, std::move(id)};
}

// Reads typed fields from one object; the first problem is kept and later reads return defaults.
class reader {
 public:
  explicit reader(const json& object) : object_(object) {}

  bool failed() const noexcept { return failed_; }
  const std::string& problem() const noexcept { return problem_; }

  std::string text(const char* key, std::size_t max = max_text_bytes) { return required(key, optional_text(key, max)); }

  // Missing or null → nullopt.
  std::optional<std::string> optional_text(const char* key, std::size_t max = max_text_bytes) {
    const json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string()) {
      fail(std::string("field '") + key + "' must be a string");
      return std::nullopt;
    }
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max) {
      fail(std::string("field '") + key + "' is longer than " + std::to_string(max) + " bytes");
      return std::nullopt;
    }
    return s;
  }

  std::int64_t integer(const char* key) { return required(key, optional_integer(key)); }

  std::optional<std::int64_t> optional_integer(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (v->is_number_unsigned()) {
      if (v->get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        fail(std::string("field '") + key + "' is out of range");
        return std::nullopt;
      }
      return static_cast<std::int64_t>(v->get<std::uint64_t>());
    }
    if (v->is_number_integer()) return v->get<std::int64_t>();
    fail(std::string("field '") + key + "' must be an integer");
    return std::nullopt;
  }

  double number(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return 0;
    if (!v->is_number()) {
      fail(std::string("field '") + key + "' must be a number");
      return 0;
    }
    return v->get<double>();
  }

  // Missing or null → nullopt.
  std::optional<double> optional_number(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_number()) {
      fail(std::string("field '") + key + "' must be a number");
      return std::nullopt;
    }
    return v->get<double>();
  }

  bool boolean(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return false;
    if (!v->is_boolean()) {
      fail(std::string("field '") + key + "' must be true or false");
      return false;
    }
    return v->get<bool>();
  }

  // An object field (or null); anything else is a problem.
  json object_or_null(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return nullptr;
    if (!v->is_object()) {
      fail(std::string("field '") + key + "' must be an object or null");
      return nullptr;
    }
    return *v;
  }

  // Calls `each(reader&)` for every object of an array field; stops at the first problem.
  template <class Each>
  void objects(const char* key, Each each) {
    const json* v = find(key);
    if (!v || v->is_null()) return;
    if (!v->is_array()) return fail(std::string("field '") + key + "' must be an array");
    for (const auto& item : *v) {
      if (!item.is_object()) return fail(std::string(key) + ": each entry must be an object");
      reader r(item);
      each(r);
      if (r.failed()) return fail(std::string(key) + ": " + r.problem());
    }
  }

  // Calls `read(reader&)` on an object field (when present); its problem becomes ours.
  template <class Read>
  void object(const char* key, bool required, Read read) {
    const json* v = find(key);
    if (!v || v->is_null()) {
      if (required) fail(std::string("missing field '") + key + "'");
      return;
    }
    if (!v->is_object()) return fail(std::string("field '") + key + "' must be an object");
    reader r(*v);
    read(r);
    if (r.failed()) fail(std::string(key) + ": " + r.problem());
  }

  void fail(std::string what) {
    if (failed_) return;
    failed_ = true;
    problem_ = std::move(what);
  }

 private:
  const json* find(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  template <class T>
  T required(const char* key, std::optional<T> value) {
    if (!value && !failed_) fail(std::string("missing field '") + key + "'");
    return value.value_or(T{});
  }

  const json& object_;
  bool failed_ = false;
  std::string problem_;
};

// ---- shared pieces --------------------------------------------------------------------------

json to_json(const request_id& id) {
  return std::visit([](const auto& v) { return json(v); }, id);
}

json optional_json(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }
json number_or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json to_json(const state_event& s) {
  return {{"state", s.state},
          {"reason", optional_json(s.reason)},
          {"since", s.since},
          {"device", optional_json(s.device)},
          {"pending_not_ready", optional_json(s.pending_not_ready)}};
}

json to_json(const call_event& c) {
  return {{"call_id", c.call_id},
          {"state", to_string(c.state)},
          {"caller", c.caller},
          {"dialled", c.dialled},
          {"consult_number", optional_json(c.consult_number)}};
}

json to_json(const offer_event& o) {
  json call{{"call_id", o.call.call_id},
            {"caller", o.call.caller},
            {"dialled", o.call.dialled},
            {"queue", optional_json(o.call.queue)},
            {"queue_id", o.call.queue_id ? json(*o.call.queue_id) : json(nullptr)},
            {"waited_seconds", o.call.waited_seconds}};
  return {{"call", std::move(call)},
          {"customer", o.customer.is_object() ? o.customer : json(nullptr)},
          {"ivr", o.ivr.is_object() ? o.ivr : json::object()}};
}

json to_json(const operator_event& o) {
  return {{"operator_id", o.operator_id},
          {"login", o.login},
          {"name", o.name},
          {"state", o.state},
          {"reason", optional_json(o.reason)},
          {"since", o.since},
          {"device", optional_json(o.device)}};
}

json to_json(const operator_info& o) {
  return {{"operator_id", o.operator_id},
          {"tenant_id", o.tenant_id},
          {"tenant", o.tenant},
          {"login", o.login},
          {"name", o.name},
          {"role", to_string(o.role)},
          {"device", o.device}};
}

std::optional<call_state> parse_call_state(const std::string& s) {
  for (auto v : {call_state::ringing, call_state::talking, call_state::held, call_state::consulting,
                 call_state::conference, call_state::ended})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

std::optional<role> parse_role(const std::string& s) {
  for (auto v : {role::operator_, role::supervisor, role::admin})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

state_event read_state(reader& r) {
  state_event s;
  s.state = r.text("state");
  s.reason = r.optional_text("reason");
  s.since = r.optional_text("since").value_or("");
  s.device = r.optional_text("device");
  s.pending_not_ready = r.optional_text("pending_not_ready");
  return s;
}

call_event read_call(reader& r) {
  call_event c;
  c.call_id = r.integer("call_id");
  auto state = r.text("state");
  if (auto parsed = parse_call_state(state)) {
    c.state = *parsed;
  } else if (!r.failed()) {
    r.fail("unknown call state '" + state + "'");
  }
  c.caller = r.optional_text("caller").value_or("");
  c.dialled = r.optional_text("dialled").value_or("");
  c.consult_number = r.optional_text("consult_number");
  return c;
}

offer_event read_offer(reader& r) {
  offer_event o;
  r.object("call", true, [&](reader& c) {
    o.call.call_id = c.integer("call_id");
    o.call.caller = c.optional_text("caller").value_or("");
    o.call.dialled = c.optional_text("dialled").value_or("");
    o.call.queue = c.optional_text("queue");
    o.call.queue_id = c.optional_integer("queue_id");
    o.call.waited_seconds = c.number("waited_seconds");
  });
  o.customer = r.object_or_null("customer");
  o.ivr = r.object_or_null("ivr");
  if (o.ivr.is_null()) o.ivr = json::object();
  return o;
}

operator_event read_operator(reader& r) {
  operator_event o;
  o.operator_id = r.integer("operator_id");
  o.login = r.optional_text("login").value_or("");
  o.name = r.optional_text("name").value_or("");
  o.state = r.text("state");
  o.reason = r.optional_text("reason");
  o.since = r.optional_text("since").value_or("");
  o.device = r.optional_text("device");
  return o;
}

// ---- requests -------------------------------------------------------------------------------

decoded<request_body> read_request(reader& r, const std::string& type) {
  using namespace req;
  auto check = [&](request_body body) -> decoded<request_body> {
    if (r.failed()) return failure(errc::desk_bad_request, type + ": " + r.problem());
    return body;
  };
  if (type == "hello") {
    hello h;
    auto v = r.integer("version");
    h.version = v > std::numeric_limits<int>::max() || v < 0 ? -1 : static_cast<int>(v);
    h.client = r.optional_text("client", 256).value_or("");
    return check(h);
  }
  if (type == "login") {
    login l;
    l.tenant = r.text("tenant", 256);
    l.login = r.text("login", 256);
    l.password = r.text("password", 1024);
    l.device = r.optional_text("device", 64).value_or("");
    return check(l);
  }
  if (type == "resume") return check(resume{r.text("token", 256)});
  if (type == "logout") return check(logout{});
  if (type == "ping") return check(ping{});
  if (type == "ready") return check(ready{});
  if (type == "not_ready") {
    auto reason = r.text("reason", 64);
    if (!r.failed() && reason.empty()) r.fail("field 'reason' must not be empty");
    return check(not_ready{reason});
  }
  if (type == "end_wrap_up") return check(end_wrap_up{});
  if (type == "answer") return check(answer{});
  if (type == "hangup") return check(hangup{});
  if (type == "hold") return check(hold{});
  if (type == "retrieve") return check(retrieve{});
  auto number = [&] {
    auto n = r.text("number", 64);
    if (!r.failed() && n.empty()) r.fail("field 'number' must not be empty");
    return n;
  };
  if (type == "consult") return check(consult{number()});
  if (type == "transfer") {
    transfer t;
    auto mode = r.text("mode", 16);
    if (mode == "blind") {
      t.mode = transfer_mode::blind;
      t.number = number();
    } else if (mode == "complete") {
      t.mode = transfer_mode::complete;
    } else if (!r.failed()) {
      r.fail("field 'mode' must be \"blind\" or \"complete\"");
    }
    return check(t);
  }
  if (type == "conference") return check(conference{});
  if (type == "dial") return check(dial{number()});
  if (type == "disposition") {
    disposition d;
    d.code = r.text("code", 64);
    if (!r.failed() && d.code.empty()) r.fail("field 'code' must not be empty");
    d.notes = r.optional_text("notes", 4000).value_or("");
    return check(d);
  }
  if (type == "force_state") {
    force_state f;
    f.operator_id = r.integer("operator_id");
    auto state = r.text("state", 16);
    if (state == "ready") {
      f.state = forced_state::ready;
    } else if (state == "not_ready") {
      f.state = forced_state::not_ready;
      f.reason = r.text("reason", 64);
      if (!r.failed() && f.reason.empty()) r.fail("field 'reason' must not be empty");
    } else if (state == "logged_out") {
      f.state = forced_state::logged_out;
    } else if (!r.failed()) {
      r.fail("field 'state' must be \"ready\", \"not_ready\" or \"logged_out\"");
    }
    return check(f);
  }
  if (type == "tenant_view") return check(tenant_view{});
  return failure(errc::desk_unknown_type, "'" + type.substr(0, 64) + "'");
}

json request_fields(const request_body& body) {
  using namespace req;
  return std::visit(
      [](const auto& r) -> json {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, hello>) {
          json j{{"version", r.version}};
          if (!r.client.empty()) j["client"] = r.client;
          return j;
        } else if constexpr (std::is_same_v<T, login>) {
          json j{{"tenant", r.tenant}, {"login", r.login}, {"password", r.password}};
          if (!r.device.empty()) j["device"] = r.device;
          return j;
        } else if constexpr (std::is_same_v<T, resume>) {
          return {{"token", r.token}};
        } else if constexpr (std::is_same_v<T, not_ready>) {
          return {{"reason", r.reason}};
        } else if constexpr (std::is_same_v<T, consult> || std::is_same_v<T, dial>) {
          return {{"number", r.number}};
        } else if constexpr (std::is_same_v<T, transfer>) {
          json j{{"mode", to_string(r.mode)}};
          if (r.mode == transfer_mode::blind) j["number"] = r.number;
          return j;
        } else if constexpr (std::is_same_v<T, disposition>) {
          return {{"code", r.code}, {"notes", r.notes}};
        } else if constexpr (std::is_same_v<T, force_state>) {
          json j{{"operator_id", r.operator_id}, {"state", to_string(r.state)}};
          if (r.state == forced_state::not_ready) j["reason"] = r.reason;
          return j;
        } else {
          return json::object();
        }
      },
      body);
}

std::string dump_line(const json& j) {
  // Invalid UTF-8 (never from the parser, but maybe from a database row) is replaced, not thrown.
  auto text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  text += '\n';
  return text;
}

// ---- server messages ------------------------------------------------------------------------

json server_json(const server_message& m) {
  return std::visit(
      [](const auto& v) -> json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, ok_reply>) {
          json j{{"type", "ok"}, {"id", to_json(v.id)}};
          std::visit(
              [&](const auto& r) {
                using R = std::decay_t<decltype(r)>;
                if constexpr (std::is_same_v<R, hello_result>) {
                  j["version"] = r.version;
                  j["server"] = r.server;
                  j["heartbeat_seconds"] = r.heartbeat_seconds;
                  j["idle_timeout_seconds"] = r.idle_timeout_seconds;
                  j["max_line_bytes"] = r.max_line_bytes;
                  j["resume_seconds"] = r.resume_seconds;
                } else if constexpr (std::is_same_v<R, login_result>) {
                  j["token"] = r.token;
                  j["resume_seconds"] = r.resume_seconds;
                  j["operator"] = to_json(r.who);
                  j["snapshot"] = {{"state", to_json(r.snapshot.state)},
                                   {"call", r.snapshot.call ? to_json(*r.snapshot.call) : json(nullptr)},
                                   {"offer", r.snapshot.offer ? to_json(*r.snapshot.offer) : json(nullptr)}};
                } else if constexpr (std::is_same_v<R, pending_result>) {
                  j["pending"] = r.pending;
                }
              },
              v.result);
          return j;
        } else if constexpr (std::is_same_v<T, error_reply>) {
          return {{"type", "error"},
                  {"id", v.id ? to_json(*v.id) : json(nullptr)},
                  {"code", v.code},
                  {"message", v.message}};
        } else if constexpr (std::is_same_v<T, pong_reply>) {
          return {{"type", "pong"}, {"id", to_json(v.id)}};
        } else if constexpr (std::is_same_v<T, state_event>) {
          auto j = to_json(v);
          j["type"] = "state";
          return j;
        } else if constexpr (std::is_same_v<T, offer_event>) {
          auto j = to_json(v);
          j["type"] = "offer";
          return j;
        } else if constexpr (std::is_same_v<T, call_event>) {
          auto j = to_json(v);
          j["type"] = "call";
          return j;
        } else if constexpr (std::is_same_v<T, operator_event>) {
          auto j = to_json(v);
          j["type"] = "operator";
          return j;
        } else if constexpr (std::is_same_v<T, tenant_event>) {
          json ops = json::array();
          for (const auto& o : v.operators) ops.push_back(to_json(o));
          json queues = json::array();
          for (const auto& q : v.queues) queues.push_back({{"queue_id", q.queue_id}, {"name", q.name}});
          return {{"type", "tenant"}, {"operators", std::move(ops)}, {"queues", std::move(queues)}};
        } else if constexpr (std::is_same_v<T, stats_event>) {
          json queues = json::array();
          for (const auto& q : v.queues)
            queues.push_back({{"queue_id", q.queue_id},
                              {"name", q.name},
                              {"waiting", q.waiting},
                              {"longest_wait_seconds", q.longest_wait_seconds},
                              {"ready", q.ready},
                              {"busy", q.busy},
                              {"answered", q.answered},
                              {"abandoned", q.abandoned},
                              {"service_level_percent", q.service_level_percent},
                              {"offered", q.offered},
                              {"asa_seconds", number_or_null(q.asa_seconds)},
                              {"aht_seconds", number_or_null(q.aht_seconds)},
                              {"abandon_rate_percent", number_or_null(q.abandon_rate_percent)}});
          json operators = json::array();
          for (const auto& o : v.operators)
            operators.push_back({{"operator_id", o.operator_id},
                                 {"login", o.login},
                                 {"state", o.state},
                                 {"seconds_in_state", o.seconds_in_state},
                                 {"calls_today", o.calls_today},
                                 {"handled", o.handled},
                                 {"aht_seconds", number_or_null(o.aht_seconds)},
                                 {"occupancy_percent", number_or_null(o.occupancy_percent)}});
          return {{"type", "stats"}, {"at", v.at}, {"queues", std::move(queues)}, {"operators", std::move(operators)}};
        } else {
          static_assert(std::is_same_v<T, closing_event>);
          return {{"type", "closing"}, {"code", v.code}, {"message", v.message}};
        }
      },
      m);
}

// Parses one line into an object, refusing what is not one.
decoded<json> parse_object(std::string_view line) {
  if (too_deep(line)) return failure(errc::desk_json_malformed, "nested deeper than 32 levels");
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return failure(errc::desk_json_malformed, "not valid JSON");
  if (!j.is_object()) return failure(errc::desk_json_malformed, "not a JSON object");
  return j;
}

decoded<request_id> read_id(const json& j) {
  auto it = j.find("id");
  if (it == j.end() || it->is_null()) return failure(errc::desk_bad_request, "missing field 'id'");
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > max_id_bytes) return failure(errc::desk_bad_request, "field 'id' is longer than 64 bytes");
    return request_id{s};
  }
  if (it->is_number_unsigned()) {
    auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      return failure(errc::desk_bad_request, "field 'id' is out of range");
    return request_id{static_cast<std::int64_t>(v)};
  }
  if (it->is_number_integer()) return request_id{it->get<std::int64_t>()};
  return failure(errc::desk_bad_request, "field 'id' must be a string or an integer");
}

}  // namespace

decoded<request> decode_request(std::string_view line) {
  auto parsed = parse_object(line);
  if (!parsed) return parsed.error();
  const json& j = *parsed;
  auto id = read_id(j);
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) {
    std::optional<request_id> known;
    if (id) known = *id;
    return failure(errc::desk_bad_request, "missing string field 'type'", known);
  }
  if (!id) return id.error();
  reader r(j);
  auto body = read_request(r, type_it->get_ref<const std::string&>());
  if (!body) {
    auto f = body.error();
    f.id = *id;
    return f;
  }
  return request{*id, std::move(*body)};
}

std::string encode(const request& r) {
  json j = request_fields(r.body);
  j["type"] = type_name(r.body);
  j["id"] = to_json(r.id);
  return dump_line(j);
}

std::string encode(const server_message& m) { return dump_line(server_json(m)); }

decoded<server_message> decode_server_message(std::string_view line) {
  auto parsed = parse_object(line);
  if (!parsed) return parsed.error();
  const json& j = *parsed;
  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string())
    return failure(errc::desk_bad_request, "missing string field 'type'");
  const auto& type = type_it->get_ref<const std::string&>();
  reader r(j);
  auto done = [&](server_message m) -> decoded<server_message> {
    if (r.failed()) return failure(errc::desk_bad_request, type + ": " + r.problem());
    return m;
  };
  if (type == "ok" || type == "pong") {
    auto id = read_id(j);
    if (!id) return id.error();
    if (type == "pong") return done(pong_reply{*id});
    ok_reply ok{*id, std::monostate{}};
    if (j.contains("token")) {
      login_result l;
      l.token = r.text("token");
      l.resume_seconds = static_cast<int>(r.integer("resume_seconds"));
      r.object("operator", true, [&](reader& w) {
        l.who.operator_id = w.integer("operator_id");
        l.who.tenant_id = w.integer("tenant_id");
        l.who.tenant = w.optional_text("tenant").value_or("");
        l.who.login = w.text("login");
        l.who.name = w.optional_text("name").value_or("");
        auto role_text = w.text("role");
        if (auto parsed_role = parse_role(role_text))
          l.who.role = *parsed_role;
        else if (!w.failed())
          w.fail("unknown role '" + role_text + "'");
        l.who.device = w.optional_text("device").value_or("");
      });
      r.object("snapshot", true, [&](reader& s) {
        s.object("state", true, [&](reader& x) { l.snapshot.state = read_state(x); });
        s.object("call", false, [&](reader& x) { l.snapshot.call = read_call(x); });
        s.object("offer", false, [&](reader& x) { l.snapshot.offer = read_offer(x); });
      });
      ok.result = std::move(l);
    } else if (j.contains("server")) {
      hello_result h;
      h.version = static_cast<int>(r.integer("version"));
      h.server = r.text("server");
      h.heartbeat_seconds = static_cast<int>(r.integer("heartbeat_seconds"));
      h.idle_timeout_seconds = static_cast<int>(r.integer("idle_timeout_seconds"));
      h.max_line_bytes = static_cast<std::size_t>(r.integer("max_line_bytes"));
      h.resume_seconds = static_cast<int>(r.integer("resume_seconds"));
      ok.result = h;
    } else if (j.contains("pending")) {
      ok.result = pending_result{r.boolean("pending")};
    }
    return done(std::move(ok));
  }
  if (type == "error") {
    error_reply e;
    if (auto it = j.find("id"); it != j.end() && !it->is_null()) {
      auto id = read_id(j);
      if (!id) return id.error();
      e.id = *id;
    }
    e.code = r.text("code");
    e.message = r.optional_text("message").value_or("");
    return done(std::move(e));
  }
  if (type == "state") return done(read_state(r));
  if (type == "offer") return done(read_offer(r));
  if (type == "call") return done(read_call(r));
  if (type == "operator") return done(read_operator(r));
  if (type == "tenant") {
    tenant_event t;
    r.objects("operators", [&](reader& o) { t.operators.push_back(read_operator(o)); });
    r.objects("queues", [&](reader& q) {
      t.queues.push_back({q.integer("queue_id"), q.optional_text("name").value_or("")});
    });
    return done(std::move(t));
  }
  if (type == "stats") {
    stats_event s;
    s.at = r.optional_text("at").value_or("");
    r.objects("queues", [&](reader& qr) {
      queue_stats st;
      st.queue_id = qr.integer("queue_id");
      st.name = qr.optional_text("name").value_or("");
      st.waiting = static_cast<int>(qr.optional_integer("waiting").value_or(0));
      st.longest_wait_seconds = qr.number("longest_wait_seconds");
      st.ready = static_cast<int>(qr.optional_integer("ready").value_or(0));
      st.busy = static_cast<int>(qr.optional_integer("busy").value_or(0));
      st.answered = static_cast<int>(qr.optional_integer("answered").value_or(0));
      st.abandoned = static_cast<int>(qr.optional_integer("abandoned").value_or(0));
      st.service_level_percent = qr.number("service_level_percent");
      st.offered = static_cast<int>(qr.optional_integer("offered").value_or(0));
      st.asa_seconds = qr.optional_number("asa_seconds");
      st.aht_seconds = qr.optional_number("aht_seconds");
      st.abandon_rate_percent = qr.optional_number("abandon_rate_percent");
      s.queues.push_back(std::move(st));
    });
    r.objects("operators", [&](reader& orr) {
      operator_stats os;
      os.operator_id = orr.integer("operator_id");
      os.login = orr.optional_text("login").value_or("");
      os.state = orr.optional_text("state").value_or("");
      os.seconds_in_state = orr.number("seconds_in_state");
      os.calls_today = static_cast<int>(orr.optional_integer("calls_today").value_or(0));
      os.handled = static_cast<int>(orr.optional_integer("handled").value_or(0));
      os.aht_seconds = orr.optional_number("aht_seconds");
      os.occupancy_percent = orr.optional_number("occupancy_percent");
      s.operators.push_back(std::move(os));
    });
    return done(std::move(s));
  }
  if (type == "closing") {
    closing_event c;
    c.code = r.text("code");
    c.message = r.optional_text("message").value_or("");
    return done(std::move(c));
  }
  return failure(errc::desk_unknown_type, "'" + type.substr(0, 64) + "'");
}

}  // namespace switchboard::desk
