// The desktop server: per connection a reader (framing, decoding, one request at a time), a
// writer draining a bounded outbox and a watchdog (login, idle and write deadlines); operator
// sessions that outlive a lost connection for a grace period; the hub's fan-out. Everything
// runs on one event loop; only the database work leaves it (through the pool).
#include "switchboard/desk/server.hpp"

#include "switchboard/desk/codec.hpp"
#include "switchboard/desk/limiter.hpp"
#include "switchboard/log.hpp"
#include "switchboard/store/operator_queries.hpp"
#include "transport.hpp"

#include <openssl/rand.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <deque>
#include <list>
#include <unordered_map>
#include <variant>
#include <vector>

namespace switchboard::desk {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using clock = std::chrono::steady_clock;
using detail::transport;
using detail::use_tuple;
using buffer = std::shared_ptr<const std::string>;

result<void> validate(const server_config& c) {
  auto bad = [](std::string key) { return error{errc::config_invalid, "desk." + key}; };
  if (c.max_line_bytes < 256) return bad("max_line_bytes must be at least 256");
  if (c.read_buffer_bytes < 64) return bad("read_buffer_bytes must be at least 64");
  if (c.max_connections < 1) return bad("max_connections must be at least 1");
  if (c.idle_timeout <= c.heartbeat_interval) return bad("idle_timeout must be longer than heartbeat_interval");
  if (c.heartbeat_interval.count() <= 0 || c.login_timeout.count() <= 0 || c.write_timeout.count() <= 0 ||
      c.resume_grace.count() < 0)
    return bad("timeouts must be positive");
  if (c.outbox_max_messages < 8 || c.outbox_max_bytes < c.max_line_bytes)
    return bad("outbox_max_messages must be at least 8 and outbox_max_bytes at least max_line_bytes");
  if (c.requests_per_second <= 0 || c.request_burst < 1)
    return bad("requests_per_second and request_burst must be positive");
  if (c.max_consecutive_errors < 1) return bad("max_consecutive_errors must be at least 1");
  if (c.max_failed_logins_per_login < 1 || c.max_failed_logins_per_address < 1 || c.failed_login_window.count() <= 0)
    return bad("failed-login limits must be positive");
  if (c.lost_desktop_reason.empty()) return bad("lost_desktop_reason must not be empty");
  if (c.tls.enabled && (c.tls.certificate_file.empty() || c.tls.private_key_file.empty()))
    return bad("tls needs certificate_file and private_key_file");
  return {};
}

namespace {

std::string random_token() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

bool is_busy(const std::string& state) {
  return state == "reserved" || state == "ringing" || state == "talking" || state == "held";
}

role role_from(const std::string& text) {
  if (text == "supervisor") return role::supervisor;
  if (text == "admin") return role::admin;
  return role::operator_;
}

state_event state_from(const store::operator_presence& p, const std::optional<std::string>& pending) {
  return {p.state, p.reason, p.since, p.device, pending};
}

operator_event operator_from(const store::operator_presence& p) {
  return {p.operator_id, p.login, p.full_name, p.state, p.reason, p.since, p.device};
}

bool same(const state_event& a, const state_event& b) {
  return a.state == b.state && a.reason == b.reason && a.since == b.since && a.device == b.device &&
         a.pending_not_ready == b.pending_not_ready;
}

buffer serialise(const server_message& m) { return std::make_shared<const std::string>(encode(m)); }

std::string describe(const tcp::endpoint& e) { return e.address().to_string() + ":" + std::to_string(e.port()); }

}  // namespace

class connection;

// An operator's logged-in session: survives its connection for the grace period.
struct agent {
  operator_info who;
  std::string token;
  std::weak_ptr<connection> conn;
  state_event state;
  std::optional<call_event> call;
  std::optional<offer_event> offer;
  std::optional<std::int64_t> last_call_id;
  std::optional<std::string> pending_not_ready;
  std::unique_ptr<asio::steady_timer> grace;
  std::uint64_t grace_generation = 0;
  bool lost = false;  // grace over: token void, waiting for his call to end to go not ready

  bool supervises() const { return who.role != role::operator_; }
};

class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(std::shared_ptr<server::impl> owner, transport stream, std::string address, const server_config& config);

  void start();
  // Queues one line; a desktop that lets its queue pass the limits is disconnected.
  void send(buffer line);
  void send(const server_message& m) { send(serialise(m)); }
  // Says why, then closes once the outbox is written (or the write deadline passes).
  void close_after(const closing_event& why);
  void close_now();

  bool closed() const noexcept { return closed_; }
  const std::string& address() const noexcept { return address_; }
  // The peer's address without the port: what failed logins are counted by.
  std::string address_host() const { return address_.substr(0, address_.rfind(':')); }
  std::shared_ptr<desk::agent>& agent() noexcept { return agent_; }
  bool hello_done = false;
  bool logged_in_once = false;

 private:
  asio::awaitable<void> reader();
  asio::awaitable<void> writer();
  asio::awaitable<void> watchdog();
  asio::awaitable<void> on_line(std::string_view line);
  void protocol_error(std::optional<request_id> id, const error& e);
  std::string who() const;

  std::shared_ptr<server::impl> owner_;  // the server lives as long as its connections
  transport stream_;
  std::string address_;
  const server_config& config_;
  std::deque<buffer> outbox_;
  std::size_t outbox_bytes_ = 0;
  asio::steady_timer wake_;
  asio::steady_timer watchdog_timer_;
  clock::time_point connected_at_ = clock::now();
  clock::time_point last_read_ = clock::now();
  std::optional<clock::time_point> write_started_;
  bool closed_ = false;
  bool closing_ = false;
  line_framer framer_;
  request_bucket bucket_;
  int consecutive_errors_ = 0;
  std::shared_ptr<desk::agent> agent_;
};

struct server::impl : std::enable_shared_from_this<server::impl> {
  asio::any_io_executor loop;
  server_config config;
  store::connection_pool& pool;
  command_handler& calls;
  std::shared_ptr<spdlog::logger> log = logger("desk");
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor;
  bool running = false;
  clock::time_point last_accept_warning{};
  login_limiter limiter;
  std::unordered_map<connection*, std::weak_ptr<connection>> connections;
  std::unordered_map<std::int64_t, std::shared_ptr<agent>> by_operator;
  std::unordered_map<std::string, std::shared_ptr<agent>> by_token;
  std::unordered_map<std::int64_t, std::vector<std::weak_ptr<connection>>> supervisors;  // by tenant
  // Login and name of every operator seen, to apply NOTIFY rows (which lack them) without a read.
  std::unordered_map<std::int64_t, std::pair<std::string, std::string>> names;
  std::unordered_map<std::int64_t, state_event> last_seen;  // what supervisors were last told, per operator

  impl(asio::any_io_executor l, server_config c, store::connection_pool& p, command_handler& h)
      : loop(std::move(l)),
        config(std::move(c)),
        pool(p),
        calls(h),
        acceptor(loop),
        limiter({config.max_failed_logins_per_login, config.max_failed_logins_per_address, config.failed_login_window,
                 100000}) {}

  // ---- lifecycle ---------------------------------------------------------------------------

  result<void> start() {
    if (auto ok = validate(config); !ok) return ok.error();
    if (config.tls.enabled) {
      tls.emplace(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      boost::system::error_code ec;
      tls->use_certificate_chain_file(config.tls.certificate_file, ec);
      if (ec)
        return error{errc::config_invalid,
                     "desk.tls.certificate_file " + config.tls.certificate_file + ": " + ec.message()};
      tls->use_private_key_file(config.tls.private_key_file, ssl::context::pem, ec);
      if (ec)
        return error{errc::config_invalid,
                     "desk.tls.private_key_file " + config.tls.private_key_file + ": " + ec.message()};
    }
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config.listen_address, ec);
    if (ec) return error{errc::config_invalid, "desk.listen_address " + config.listen_address + ": " + ec.message()};
    tcp::endpoint at{address, config.port};
    acceptor.open(at.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(at, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return error{errc::config_invalid, "desk: cannot listen on " + describe(at) + ": " + ec.message()};
    running = true;
    asio::co_spawn(loop, accept_loop(shared_from_this()), asio::detached);
    log->info("desktop channel listening on {}{}", describe(acceptor.local_endpoint()), tls ? " (TLS)" : "");
    return {};
  }

  void stop() {
    if (!running) return;
    running = false;
    boost::system::error_code ec;
    acceptor.close(ec);
    for (auto& [raw, weak] : connections)
      if (auto c = weak.lock()) c->close_after({"shutdown", "the server is shutting down"});
    for (auto& [id, a] : by_operator)
      if (a->grace) a->grace->cancel();
  }

  asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    while (running) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (!running) break;
      if (ec) {
        // Out of descriptors or a transient error: say it (once per 10 s), breathe, go on.
        if (clock::now() - last_accept_warning >= std::chrono::seconds(10)) {
          last_accept_warning = clock::now();
          log->warn("desktop accept failed: {} (retrying every 50 ms)", ec.message());
        }
        asio::steady_timer pause(loop, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_tuple);
        continue;
      }
      boost::system::error_code opt;
      auto remote = socket.remote_endpoint(opt);
      if (connections.size() >= config.max_connections) {
        log->warn("desktop connection from {} refused: {} connections is the limit", describe(remote),
                  config.max_connections);
        socket.close(opt);
        continue;
      }
      socket.set_option(tcp::no_delay(true), opt);
      if (config.socket_send_buffer > 0)
        socket.set_option(asio::socket_base::send_buffer_size(config.socket_send_buffer), opt);
      auto stream = tls ? transport(std::move(socket), *tls) : transport(std::move(socket));
      auto c = std::make_shared<connection>(shared_from_this(), std::move(stream), describe(remote), config);
      connections.emplace(c.get(), c);
      c->start();
    }
    (void)self;
  }

  // The reader of `c` ended: its operator's session waits for a resume.
  void connection_ended(connection& c) {
    connections.erase(&c);
    auto a = c.agent();
    if (!a) return;
    c.agent().reset();
    if (a->conn.lock().get() != &c && !a->conn.expired()) return;  // taken over already
    a->conn.reset();
    start_grace(a);
  }

  void start_grace(const std::shared_ptr<agent>& a) {
    if (!running) return;
    if (!a->grace) a->grace = std::make_unique<asio::steady_timer>(loop);
    a->grace->expires_after(config.resume_grace);
    const auto generation = ++a->grace_generation;
    log->info("operator {} ({}) lost his desktop; session kept {} ms for a resume", a->who.operator_id, a->who.login,
              config.resume_grace.count());
    asio::co_spawn(
        loop,
        [self = shared_from_this(), a, generation]() -> asio::awaitable<void> {
          auto [ec] = co_await a->grace->async_wait(use_tuple);
          if (ec || generation != a->grace_generation || !a->conn.expired() || !self->running) co_return;
          co_await self->grace_over(a);
        },
        asio::detached);
  }

  asio::awaitable<void> grace_over(std::shared_ptr<agent> a) {
    by_token.erase(a->token);
    a->lost = true;
    a->pending_not_ready = config.lost_desktop_reason;
    log->info("operator {} ({}) did not come back in time: not ready ({})", a->who.operator_id, a->who.login,
              config.lost_desktop_reason);
    co_await apply_pending(a);
  }

  void forget(const std::shared_ptr<agent>& a) {
    by_token.erase(a->token);
    auto it = by_operator.find(a->who.operator_id);
    if (it != by_operator.end() && it->second == a) by_operator.erase(it);
    if (a->grace) a->grace->cancel();
  }

  // ---- presence ----------------------------------------------------------------------------

  // A presence row arrived (our change, a NOTIFY, a reload): tell his desktop and supervisors.
  void apply_presence(const store::operator_presence& p) {
    if (!p.login.empty()) names.insert_or_assign(p.operator_id, std::pair(p.login, p.full_name));
    auto it = by_operator.find(p.operator_id);
    std::shared_ptr<agent> a = it == by_operator.end() ? nullptr : it->second;
    auto ev = state_from(p, a ? a->pending_not_ready : std::nullopt);
    if (a) {
      if (!same(a->state, ev)) {
        a->state = ev;
        if (auto c = a->conn.lock()) c->send(server_message{ev});
      }
      if (p.state == "logged_out" && a->lost) forget(a);
    }
    auto& seen = last_seen[p.operator_id];
    ev.pending_not_ready.reset();
    if (!same(seen, ev)) {
      seen = ev;
      // encoded only for someone: most presence changes happen with no supervisor watching
      if (supervisors.contains(p.tenant_id)) broadcast(p.tenant_id, serialise(server_message{operator_from(p)}));
    }
    if (a && a->pending_not_ready && (p.state == "ready" || p.state == "wrap_up"))
      asio::co_spawn(loop, apply_pending(a), asio::detached);
  }

  asio::awaitable<void> apply_pending(std::shared_ptr<agent> a) {
    if (!a->pending_not_ready) co_return;
    const auto reason = *a->pending_not_ready;
    auto change = co_await store::change_presence(pool, a->who.operator_id, store::presence_request::not_ready, reason);
    if (!change) {
      log->error("operator {}: pending not-ready failed: {}", a->who.operator_id, change.error().message());
      co_return;
    }
    if (!*change) co_return;
    const auto& now = (*change)->now;
    if ((*change)->changed || now.state == "logged_out") {
      if (a->pending_not_ready == reason) a->pending_not_ready.reset();
      if (a->lost) forget(a);
    }
    apply_presence(now);
  }

  asio::awaitable<void> reload_presence(std::int64_t operator_id) {
    auto p = co_await store::load_presence(pool, operator_id);
    if (!p) {
      log->warn("operator {}: presence reload failed: {}", operator_id, p.error().message());
      co_return;
    }
    if (*p) apply_presence(**p);
  }

  void broadcast(std::int64_t tenant_id, const buffer& line) {
    auto it = supervisors.find(tenant_id);
    if (it == supervisors.end()) return;
    auto& list = it->second;
    std::erase_if(list, [&](const std::weak_ptr<connection>& w) {
      auto c = w.lock();
      if (!c || c->closed() || !c->agent() || !c->agent()->supervises() || c->agent()->who.tenant_id != tenant_id)
        return true;
      c->send(line);
      return false;
    });
    if (list.empty()) supervisors.erase(it);
  }

  // ---- requests ----------------------------------------------------------------------------

  asio::awaitable<void> handle(std::shared_ptr<connection> c, request r) {
    auto reply_error = [&](const error& e) { c->send(server_message{make_error_reply(r.id, e)}); };
    if (std::holds_alternative<req::ping>(r.body)) {
      c->send(server_message{pong_reply{r.id}});
      co_return;
    }
    if (auto* h = std::get_if<req::hello>(&r.body)) {
      if (h->version != protocol_version) {
        reply_error({errc::desk_version_unsupported, "this server speaks version " + std::to_string(protocol_version)});
        co_return;
      }
      c->hello_done = true;
      log->debug("desktop {} says hello ({})", c->address(), h->client);
      hello_result hr;
      hr.heartbeat_seconds =
          static_cast<int>(std::chrono::ceil<std::chrono::seconds>(config.heartbeat_interval).count());
      hr.idle_timeout_seconds = static_cast<int>(std::chrono::floor<std::chrono::seconds>(config.idle_timeout).count());
      hr.max_line_bytes = config.max_line_bytes;
      hr.resume_seconds = static_cast<int>(std::chrono::floor<std::chrono::seconds>(config.resume_grace).count());
      c->send(server_message{ok_reply{r.id, hr}});
      co_return;
    }
    if (!c->hello_done) {
      reply_error({errc::desk_hello_required});
      co_return;
    }
    if (auto* l = std::get_if<req::login>(&r.body)) {
      co_await login(c, r.id, std::move(*l));
      co_return;
    }
    if (auto* rs = std::get_if<req::resume>(&r.body)) {
      co_await resume(c, r.id, rs->token);
      co_return;
    }
    auto a = c->agent();
    if (!a) {
      reply_error({errc::desk_not_logged_in});
      co_return;
    }
    if (std::holds_alternative<req::logout>(r.body)) {
      co_await logout(c, a, r.id);
      co_return;
    }
    if (std::holds_alternative<req::ready>(r.body)) {
      co_await ready(c, a, r.id);
      co_return;
    }
    if (auto* nr = std::get_if<req::not_ready>(&r.body)) {
      co_await not_ready(c, a, r.id, nr->reason);
      co_return;
    }
    if (auto* f = std::get_if<req::force_state>(&r.body)) {
      co_await force(c, a, r.id, *f);
      co_return;
    }
    if (std::holds_alternative<req::tenant_view>(r.body)) {
      if (!a->supervises()) {
        reply_error({errc::desk_not_allowed, "supervisors only"});
        co_return;
      }
      c->send(server_message{ok_reply{r.id, std::monostate{}}});
      co_await send_tenant_view(c, a->who.tenant_id);
      co_return;
    }
    co_await call_command_request(c, a, r);
  }

  asio::awaitable<void> login(std::shared_ptr<connection> c, request_id id, req::login l) {
    auto reply_error = [&](const error& e) { c->send(server_message{make_error_reply(id, e)}); };
    if (c->agent()) {
      reply_error({errc::state_not_allowed, "already logged in on this connection: log out first"});
      co_return;
    }
    const auto key = l.tenant + "/" + l.login;
    if (!limiter.allowed(c->address_host(), key, clock::now())) {
      log->warn("login refused for {} from {}: too many failed attempts", key, c->address());
      reply_error({errc::desk_rate_limited});
      co_return;
    }
    auto who = co_await store::check_login(pool, l.tenant, l.login, l.password);
    if (c->closed()) co_return;
    if (!who) {
      log->error("login of {} from {}: {}", key, c->address(), who.error().message());
      reply_error(who.error());
      co_return;
    }
    if (!*who) {
      limiter.record_failure(c->address_host(), key, clock::now());
      log->warn("login failed for {} from {} (wrong tenant, login or password, or inactive)", key, c->address());
      reply_error({errc::desk_login_failed});
      co_return;
    }
    limiter.record_success(key);
    const auto& id_row = **who;
    std::string device = l.device.empty() ? id_row.extension.value_or("") : l.device;
    if (device.empty()) {
      reply_error({errc::desk_bad_request, "no device: the operator has no extension, give 'device'"});
      co_return;
    }
    auto existing = by_operator.find(id_row.operator_id);
    if (existing != by_operator.end()) {
      auto old = existing->second->conn.lock();
      if (old && old.get() != c.get() && !old->closed() && config.second_login == second_login_policy::refuse) {
        log->warn("second login of {} from {} refused (connected from {})", key, c->address(), old->address());
        reply_error({errc::desk_already_logged_in});
        co_return;
      }
    }
    auto presence = co_await store::log_in(pool, id_row.operator_id, device, config.node_name);
    if (c->closed()) co_return;
    if (!presence) {
      if (presence.error().is(errc::db_constraint_violated) &&
          presence.error().detail.find("presence_one_operator_per_device") != std::string::npos) {
        reply_error({errc::desk_device_in_use, device});
      } else {
        log->error("login of {}: {}", key, presence.error().message());
        reply_error(presence.error());
      }
      co_return;
    }
    // Re-read: another login may have finished while we waited for the database.
    std::shared_ptr<agent> a;
    if (auto again = by_operator.find(id_row.operator_id); again != by_operator.end()) {
      a = again->second;
      if (auto old = a->conn.lock(); old && old.get() != c.get()) {
        if (config.second_login == second_login_policy::refuse && !old->closed()) {
          reply_error({errc::desk_already_logged_in});
          co_return;
        }
        take_over(a, old);
      }
      by_token.erase(a->token);
      if (a->lost) a->pending_not_ready.reset();  // he is back: the lost-desktop not-ready is moot
      a->lost = false;
    } else {
      a = std::make_shared<agent>();
      by_operator.emplace(id_row.operator_id, a);
    }
    a->who = {id_row.operator_id, id_row.tenant_id,       l.tenant, l.login,
              id_row.full_name,   role_from(id_row.role), device};
    a->token = random_token();
    by_token.emplace(a->token, a);
    log->info("operator {} ({}) logged in from {} on device {}", a->who.operator_id, key, c->address(), device);
    co_await attach(c, a, id, *presence);
  }

  void take_over(const std::shared_ptr<agent>& a, const std::shared_ptr<connection>& old) {
    log->info("operator {} ({}): new desktop takes over from {}", a->who.operator_id, a->who.login, old->address());
    old->agent().reset();
    a->conn.reset();
    old->close_after({"taken_over", error{errc::desk_taken_over}.message()});
  }

  // Binds a session to a connection and sends the reply, the state and what a supervisor sees.
  asio::awaitable<void> attach(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request_id id,
                               const store::operator_presence& p) {
    if (a->grace) a->grace->cancel();
    ++a->grace_generation;
    a->conn = c;
    c->agent() = a;
    c->logged_in_once = true;
    a->state = state_from(p, a->pending_not_ready);
    login_result result{a->token,
                        static_cast<int>(std::chrono::floor<std::chrono::seconds>(config.resume_grace).count()), a->who,
                        snapshot{a->state, a->call, a->offer}};
    c->send(server_message{ok_reply{std::move(id), std::move(result)}});
    c->send(server_message{a->state});
    if (a->call) c->send(server_message{*a->call});
    apply_presence(p);
    if (a->supervises()) {
      supervisors[a->who.tenant_id].push_back(c);
      co_await send_tenant_view(c, a->who.tenant_id);
    }
  }

  asio::awaitable<void> send_tenant_view(std::shared_ptr<connection> c, std::int64_t tenant_id) {
    auto view = co_await store::load_tenant_view(pool, tenant_id);
    if (!view) {
      log->error("tenant {} view: {}", tenant_id, view.error().message());
      co_return;
    }
    tenant_event t;
    for (const auto& p : view->operators) t.operators.push_back(operator_from(p));
    for (const auto& q : view->queues) t.queues.push_back({q.queue_id, q.name});
    c->send(server_message{std::move(t)});
  }

  asio::awaitable<void> resume(std::shared_ptr<connection> c, request_id id, const std::string& token) {
    auto reply_error = [&](const error& e) { c->send(server_message{make_error_reply(id, e)}); };
    if (c->agent()) {
      reply_error({errc::state_not_allowed, "already logged in on this connection"});
      co_return;
    }
    if (!limiter.allowed(c->address_host(), "", clock::now())) {
      reply_error({errc::desk_rate_limited});
      co_return;
    }
    auto it = by_token.find(token);
    if (it == by_token.end()) {
      limiter.record_failure(c->address_host(), "", clock::now());
      log->warn("resume refused from {}: unknown or expired session token", c->address());
      reply_error({errc::desk_resume_failed});
      co_return;
    }
    auto a = it->second;
    if (auto old = a->conn.lock(); old && old.get() != c.get()) take_over(a, old);
    if (a->grace) a->grace->cancel();
    ++a->grace_generation;
    auto p = co_await store::load_presence(pool, a->who.operator_id);
    if (c->closed()) co_return;
    if (!p || !*p) {
      reply_error(p ? error{errc::operator_unknown} : p.error());
      co_return;
    }
    if (a->conn.lock() || by_token.find(token) == by_token.end()) {  // someone else got there first
      reply_error({errc::desk_resume_failed});
      co_return;
    }
    log->info("operator {} ({}) resumed from {}", a->who.operator_id, a->who.login, c->address());
    co_await attach(c, a, std::move(id), **p);
  }

  asio::awaitable<void> logout(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request_id id) {
    auto change = co_await store::change_presence(pool, a->who.operator_id, store::presence_request::logged_out);
    if (!change || !*change) {
      c->send(server_message{make_error_reply(id, change ? error{errc::operator_unknown} : change.error())});
      co_return;
    }
    if (!(*change)->changed) {
      c->send(server_message{make_error_reply(id, {errc::state_not_allowed, "finish the call first"})});
      co_return;
    }
    c->send(server_message{ok_reply{id, std::monostate{}}});
    apply_presence((*change)->now);
    forget(a);
    if (c->agent() == a) c->agent().reset();
    log->info("operator {} ({}) logged out", a->who.operator_id, a->who.login);
  }

  asio::awaitable<void> ready(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request_id id) {
    if (a->pending_not_ready && is_busy(a->state.state)) {
      a->pending_not_ready.reset();  // "ready" during a call cancels the not-ready asked for it
      c->send(server_message{ok_reply{id, std::monostate{}}});
      a->state.pending_not_ready.reset();
      c->send(server_message{a->state});
      co_return;
    }
    auto change = co_await store::change_presence(pool, a->who.operator_id, store::presence_request::ready);
    if (!change || !*change) {
      c->send(server_message{make_error_reply(id, change ? error{errc::operator_unknown} : change.error())});
      co_return;
    }
    if (!(*change)->changed) {
      const auto& state = (*change)->now.state;
      auto why = state == "wrap_up" ? std::string("in wrap-up: send end_wrap_up") : "cannot go ready while " + state;
      c->send(server_message{make_error_reply(id, {errc::state_not_allowed, why})});
      apply_presence((*change)->now);
      co_return;
    }
    a->pending_not_ready.reset();
    c->send(server_message{ok_reply{id, std::monostate{}}});
    apply_presence((*change)->now);
  }

  asio::awaitable<void> not_ready(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request_id id,
                                  std::string reason) {
    auto change = co_await store::change_presence(pool, a->who.operator_id, store::presence_request::not_ready, reason);
    if (!change || !*change) {
      c->send(server_message{make_error_reply(id, change ? error{errc::operator_unknown} : change.error())});
      co_return;
    }
    const auto& now = (*change)->now;
    if ((*change)->changed) {
      a->pending_not_ready.reset();
      c->send(server_message{ok_reply{id, std::monostate{}}});
    } else if (is_busy(now.state)) {
      a->pending_not_ready = reason;
      c->send(server_message{ok_reply{id, pending_result{}}});
    } else {
      c->send(
          server_message{make_error_reply(id, {errc::state_not_allowed, "cannot go not ready while " + now.state})});
    }
    apply_presence(now);
  }

  asio::awaitable<void> force(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request_id id,
                              req::force_state f) {
    if (!a->supervises()) {
      c->send(server_message{make_error_reply(id, {errc::desk_not_allowed, "supervisors only"})});
      co_return;
    }
    auto to = f.state == req::forced_state::ready       ? store::presence_request::ready
              : f.state == req::forced_state::not_ready ? store::presence_request::not_ready
                                                        : store::presence_request::logged_out;
    auto change = co_await store::change_presence(pool, f.operator_id, to, f.reason, a->who.tenant_id);
    if (!change) {
      c->send(server_message{make_error_reply(id, change.error())});
      co_return;
    }
    if (!*change) {
      c->send(server_message{make_error_reply(id, {errc::operator_unknown, std::to_string(f.operator_id)})});
      co_return;
    }
    const auto& now = (*change)->now;
    if (!(*change)->changed) {
      c->send(server_message{make_error_reply(
          id, {errc::state_not_allowed, "operator " + std::to_string(f.operator_id) + " is " + now.state})});
      co_return;
    }
    log->info("supervisor {} forced operator {} to {}", a->who.login, f.operator_id, to_string(f.state));
    c->send(server_message{ok_reply{id, std::monostate{}}});
    apply_presence(now);
    if (f.state == req::forced_state::logged_out) {
      if (auto it = by_operator.find(f.operator_id); it != by_operator.end()) {
        auto target = it->second;
        forget(target);
        if (auto tc = target->conn.lock()) {
          tc->agent().reset();
          tc->close_after({"logged_out", "a supervisor logged you out"});
        }
      }
    }
  }

  // The desk's own check of a call command against what it knows; nullopt when allowed.
  static std::optional<std::string> refuse(const agent& a, const call_command& cmd) {
    const auto call =
        a.call && a.call->state != call_state::ended ? std::optional<call_state>(a.call->state) : std::nullopt;
    return std::visit(
        [&](const auto& c) -> std::optional<std::string> {
          using T = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<T, req::end_wrap_up>) {
            // Right after the hang-up the presence row may not have been re-read yet: an ended
            // call is enough here, and call control (which runs the wrap-up timer) decides.
            const bool just_ended = a.call && a.call->state == call_state::ended;
            if (a.state.state != "wrap_up" && !just_ended) return "not in wrap-up";
          } else if constexpr (std::is_same_v<T, req::answer>) {
            if (call != call_state::ringing) return "no call to answer";
          } else if constexpr (std::is_same_v<T, req::hangup>) {
            if (!call) return "no call to hang up";
          } else if constexpr (std::is_same_v<T, req::hold>) {
            if (call != call_state::talking) return "no connected call to put on hold";
          } else if constexpr (std::is_same_v<T, req::retrieve>) {
            if (call != call_state::held) return "the call is not on hold";
          } else if constexpr (std::is_same_v<T, req::consult>) {
            if (call != call_state::talking && call != call_state::held) return "no call to consult from";
          } else if constexpr (std::is_same_v<T, req::transfer>) {
            if (c.mode == req::transfer_mode::complete && call != call_state::consulting)
              return "no consultation to complete";
            if (c.mode == req::transfer_mode::blind && call != call_state::talking && call != call_state::held)
              return "no call to transfer";
          } else if constexpr (std::is_same_v<T, req::conference>) {
            if (call != call_state::consulting) return "no consultation to join";
          } else if constexpr (std::is_same_v<T, req::dial>) {
            if (call || is_busy(a.state.state)) return "already on a call";
            if (a.state.state == "logged_out") return "logged out";
          } else if constexpr (std::is_same_v<T, req::disposition>) {
            if (!a.call && !a.last_call_id) return "no call to set a disposition on";
          }
          return std::nullopt;
        },
        cmd);
  }

  asio::awaitable<void> call_command_request(std::shared_ptr<connection> c, std::shared_ptr<agent> a, request r) {
    std::optional<call_command> cmd = std::visit(
        [](auto& body) -> std::optional<call_command> {
          using T = std::decay_t<decltype(body)>;
          if constexpr (std::is_constructible_v<call_command, T>) return call_command{std::move(body)};
          return std::nullopt;
        },
        r.body);
    if (!cmd) {  // every other request type was handled before
      c->send(server_message{make_error_reply(r.id, {errc::internal, type_name(r.body)})});
      co_return;
    }
    if (auto why = refuse(*a, *cmd)) {
      c->send(server_message{make_error_reply(r.id, {errc::state_not_allowed, *why})});
      co_return;
    }
    operator_context who{a->who.operator_id, a->who.tenant_id, a->who.device, a->state.state,
                         a->call ? std::optional<std::int64_t>(a->call->call_id) : a->last_call_id};
    auto done = co_await calls.execute(who, *cmd);
    if (!done) {
      log->info("operator {}: {} failed: {}", a->who.operator_id, type_name(r.body), done.error().message());
      c->send(server_message{make_error_reply(r.id, done.error())});
      co_return;
    }
    c->send(server_message{ok_reply{r.id, std::monostate{}}});
  }

  // ---- hub ---------------------------------------------------------------------------------

  std::shared_ptr<agent> find(std::int64_t operator_id) {
    auto it = by_operator.find(operator_id);
    return it == by_operator.end() ? nullptr : it->second;
  }

  void offer(std::int64_t operator_id, offer_event o) {
    auto a = find(operator_id);
    if (!a) {
      log->warn("offer of call {} for operator {}, who has no desktop on this node", o.call.call_id, operator_id);
      return;
    }
    a->call = call_event{o.call.call_id, call_state::ringing, o.call.caller, o.call.dialled, std::nullopt};
    a->last_call_id = o.call.call_id;
    auto line = serialise(server_message{o});
    a->offer = std::move(o);
    if (auto c = a->conn.lock()) c->send(std::move(line));
  }

  void call_update(std::int64_t operator_id, call_event call) {
    auto a = find(operator_id);
    if (!a) return;
    a->last_call_id = call.call_id;
    if (auto c = a->conn.lock()) c->send(server_message{call});
    if (call.state == call_state::ended) {
      if (a->call && a->call->call_id == call.call_id) {
        a->call.reset();
        a->offer.reset();
      }
      // the call tracker moves presence at hang-up; make sure a pending not-ready sees it
      asio::co_spawn(loop, reload_presence(operator_id), asio::detached);
    } else {
      a->call = std::move(call);
    }
  }

  void publish_stats(std::int64_t tenant_id, stats_event stats) {
    broadcast(tenant_id, serialise(server_message{std::move(stats)}));
  }
};

// ---- connection ---------------------------------------------------------------------------

connection::connection(std::shared_ptr<server::impl> owner, transport stream, std::string address,
                       const server_config& config)
    : owner_(std::move(owner)),
      stream_(std::move(stream)),
      address_(std::move(address)),
      config_(config),
      wake_(owner_->loop),
      watchdog_timer_(owner_->loop),
      framer_(config.max_line_bytes),
      bucket_(config.requests_per_second, config.request_burst, clock::now()) {}

void connection::start() {
  auto self = shared_from_this();
  asio::co_spawn(
      owner_->loop, [self]() { return self->writer(); }, asio::detached);
  asio::co_spawn(
      owner_->loop, [self]() { return self->watchdog(); }, asio::detached);
  asio::co_spawn(
      owner_->loop, [self]() { return self->reader(); }, asio::detached);
}

std::string connection::who() const {
  if (agent_)
    return "operator " + std::to_string(agent_->who.operator_id) + " (" + agent_->who.login + ") at " + address_;
  return "desktop " + address_;
}

void connection::send(buffer line) {
  if (closed_) return;
  if (outbox_.size() + 1 > config_.outbox_max_messages || outbox_bytes_ + line->size() > config_.outbox_max_bytes) {
    owner_->log->warn("{} disconnected: slow consumer ({} messages, {} bytes unsent)", who(), outbox_.size(),
                      outbox_bytes_);
    close_now();
    return;
  }
  outbox_bytes_ += line->size();
  outbox_.push_back(std::move(line));
  wake_.cancel();
}

void connection::close_after(const closing_event& why) {
  if (closed_ || closing_) return;
  owner_->log->info("{} closed: {} ({})", who(), why.code, why.message);
  send(server_message{why});
  closing_ = true;
  wake_.cancel();
}

void connection::close_now() {
  if (closed_) return;
  closed_ = true;
  stream_.close();
  wake_.cancel();
  watchdog_timer_.cancel();
}

asio::awaitable<void> connection::writer() {
  std::vector<buffer> batch;
  std::vector<asio::const_buffer> pieces;
  while (!closed_) {
    if (outbox_.empty()) {
      if (closing_) break;
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(use_tuple);
      continue;
    }
    batch.clear();
    pieces.clear();
    std::size_t bytes = 0;
    while (!outbox_.empty() && batch.size() < 64) {
      bytes += outbox_.front()->size();
      pieces.emplace_back(asio::buffer(*outbox_.front()));
      batch.push_back(std::move(outbox_.front()));
      outbox_.pop_front();
    }
    write_started_ = clock::now();
    auto [ec, n] = co_await stream_.write(pieces);
    write_started_.reset();
    outbox_bytes_ -= bytes;
    if (ec) break;
  }
  close_now();
}

asio::awaitable<void> connection::watchdog() {
  const auto shortest = std::min({config_.idle_timeout, config_.write_timeout, config_.login_timeout});
  const auto tick = std::clamp(shortest / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(5000));
  while (!closed_) {
    watchdog_timer_.expires_after(tick);
    co_await watchdog_timer_.async_wait(use_tuple);
    if (closed_) break;
    const auto now = clock::now();
    if (write_started_ && now - *write_started_ > config_.write_timeout) {
      owner_->log->warn("{} disconnected: slow consumer (one write blocked over {} ms)", who(),
                        config_.write_timeout.count());
      close_now();
    } else if (closing_) {
      continue;  // the writer is flushing the last words
    } else if (!logged_in_once && now - connected_at_ > config_.login_timeout) {
      close_after({"login_timeout", "no login within " + std::to_string(config_.login_timeout.count()) + " ms"});
    } else if (now - last_read_ > config_.idle_timeout) {
      close_after({"idle_timeout", error{errc::desk_idle_timeout}.message()});
    }
  }
}

void connection::protocol_error(std::optional<request_id> id, const error& e) {
  send(server_message{make_error_reply(std::move(id), e)});
  if (++consecutive_errors_ >= config_.max_consecutive_errors)
    close_after({"too_many_errors", error{errc::desk_too_many_errors}.message()});
}

asio::awaitable<void> connection::on_line(std::string_view line) {
  if (!bucket_.take(clock::now())) {
    protocol_error(std::nullopt, {errc::desk_rate_limited,
                                  "more than " + std::to_string(static_cast<int>(config_.requests_per_second)) +
                                      " requests per second"});
    co_return;
  }
  auto decoded = decode_request(line);
  if (!decoded) {
    owner_->log->debug("{}: {}", who(), decoded.error().err.message());
    protocol_error(decoded.error().id, decoded.error().err);
    co_return;
  }
  consecutive_errors_ = 0;
  co_await owner_->handle(shared_from_this(), std::move(*decoded));
}

asio::awaitable<void> connection::reader() {
  auto self = shared_from_this();
  if (auto ec = co_await stream_.handshake(ssl::stream_base::server)) {
    owner_->log->info("{}: TLS handshake failed: {}", who(), ec.message());
    close_now();
  }
  std::vector<char> storage(config_.read_buffer_bytes);
  while (!closed_ && !closing_) {
    auto [ec, n] = co_await stream_.read_some(asio::buffer(storage));
    if (ec) {
      if (!closed_ && !closing_) owner_->log->info("{} disconnected: {}", who(), ec.message());
      break;
    }
    last_read_ = clock::now();
    std::string_view input(storage.data(), n);
    while (!closed_ && !closing_) {
      auto frame = framer_.next(input);
      if (frame.what == line_framer::status::need_more) break;
      if (frame.what == line_framer::status::too_long) {
        protocol_error(std::nullopt,
                       {errc::desk_line_too_long, "limit " + std::to_string(config_.max_line_bytes) + " bytes"});
        continue;
      }
      co_await on_line(frame.line);  // `input` stays valid: nothing reads into storage meanwhile
    }
  }
  if (!closing_) close_now();
  owner_->connection_ended(*this);
}

// ---- server -------------------------------------------------------------------------------

server::server(asio::any_io_executor loop, server_config config, store::connection_pool& pool, command_handler& calls)
    : impl_(std::make_shared<impl>(std::move(loop), std::move(config), pool, calls)) {}

server::~server() { impl_->stop(); }

result<void> server::start() { return impl_->start(); }
void server::stop() { impl_->stop(); }

tcp::endpoint server::local_endpoint() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec);
}

std::size_t server::connection_count() const noexcept { return impl_->connections.size(); }
std::size_t server::session_count() const noexcept { return impl_->by_operator.size(); }

void server::offer(std::int64_t operator_id, offer_event o) { impl_->offer(operator_id, std::move(o)); }
void server::call_update(std::int64_t operator_id, call_event call) {
  impl_->call_update(operator_id, std::move(call));
}
void server::publish_stats(std::int64_t tenant_id, stats_event stats) {
  impl_->publish_stats(tenant_id, std::move(stats));
}
bool server::watched(std::int64_t tenant_id) const {
  const auto it = impl_->supervisors.find(tenant_id);
  return it != impl_->supervisors.end() &&
         std::any_of(it->second.begin(), it->second.end(), [](const auto& w) { return !w.expired(); });
}
void server::presence_notified(store::operator_presence row) {
  asio::dispatch(impl_->loop, [self = impl_, row = std::move(row)]() mutable {
    const auto known = self->names.find(row.operator_id);
    if (known == self->names.end()) {
      asio::co_spawn(self->loop, self->reload_presence(row.operator_id), asio::detached);
      return;
    }
    row.login = known->second.first;
    row.full_name = known->second.second;
    self->apply_presence(row);
  });
}
void server::presence_changed(std::int64_t operator_id) {
  asio::co_spawn(
      impl_->loop, [self = impl_, operator_id] { return self->reload_presence(operator_id); }, asio::detached);
}

}  // namespace switchboard::desk
