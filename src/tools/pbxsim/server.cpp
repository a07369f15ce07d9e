// The simulated PBX's network side: one coroutine pair per CTI client (reader, writer with a
// bounded outbox), both session styles, monitors, route registrations and fault switches; the
// call model and generator run on a clock coroutine on the same executor.
#include "switchboard/pbxsim/server.hpp"

#include "switchboard/csta/framer.hpp"
#include "switchboard/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <unordered_map>

namespace switchboard::pbxsim {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Every event carries the cross reference of the monitor it is reported to.
void set_cross_ref(csta::message& m, const std::string& xref) {
  std::visit(
      [&](auto& e) {
        if constexpr (requires { e.monitor_cross_ref_id; }) e.monitor_cross_ref_id = xref;
      },
      m);
}

}  // namespace

struct session;

struct simulator::state : std::enable_shared_from_this<simulator::state> {
  struct monitor_ref {
    session* owner;
    std::string xref;
  };

  state(asio::any_io_executor executor, simulator_config cfg)
      : ex(std::move(executor)),
        config(std::move(cfg)),
        model(config.model),
        acceptor(ex),
        clock_timer(ex),
        start_time(clock_type::now()) {
    if (config.generator) generator.emplace(*config.generator);
  }

  asio::any_io_executor ex;
  simulator_config config;
  call_model model;
  std::optional<call_generator> generator;
  tcp::acceptor acceptor;
  asio::steady_timer clock_timer;
  clock_type::time_point start_time;
  clock_type::time_point scheduled_wake = clock_type::time_point::max();
  bool running = false;
  std::vector<std::shared_ptr<session>> sessions;
  std::unordered_map<std::string, std::vector<monitor_ref>> monitors;  // device -> monitors
  std::unordered_map<std::string, session*> registrations;             // routeRegisterReqID -> owner
  std::uint64_t next_xref = 1000;
  std::uint64_t next_session = 1;
  link_stats links;
  // faults
  clock_type::time_point refuse_until{};
  bool heartbeats_silent = false;
  std::chrono::milliseconds response_delay{0};
  int withhold_count = 0;
  std::string withhold_name;
  std::shared_ptr<spdlog::logger> log = logger("pbxsim");

  sim_time now() const { return std::chrono::duration_cast<sim_time>(clock_type::now() - start_time); }
  void flush();
  // Timers armed by a request may be due before the clock's next wake: wake it now.
  void wake_if_needed() {
    const auto due = model.next_due();
    if (due && start_time + *due < scheduled_wake) clock_timer.cancel();
  }
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> clock_loop();
  void remove_monitor(session* owner, const std::string& xref, const std::string& device);
  // Forgets a closed session: its monitors, and its registrations (their dialogs go to the
  // default device). Idempotent.
  void session_closed(const std::shared_ptr<session>& s);
};

struct session : std::enable_shared_from_this<session> {
  session(std::shared_ptr<simulator::state> owner, tcp::socket s, std::uint64_t number)
      : sim(std::move(owner)),
        socket(std::move(s)),
        wake(socket.get_executor()),
        heartbeat_timer(socket.get_executor()),
        session_timer(socket.get_executor()),
        id(number) {
    boost::system::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    peer = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
    established = sim->config.server.style == session_style::system_status;
  }

  std::shared_ptr<simulator::state> sim;
  tcp::socket socket;
  asio::steady_timer wake;
  asio::steady_timer heartbeat_timer;
  asio::steady_timer session_timer;
  std::uint64_t id;
  std::string peer;
  std::deque<std::string> outbox;
  bool closed = false;
  bool close_when_drained = false;
  bool established = false;
  csta::framer framer;
  int next_invoke = 0;
  std::optional<int> heartbeat_outstanding;
  int heartbeat_misses = 0;
  std::string session_id;
  std::chrono::seconds session_duration{0};
  std::vector<std::pair<std::string, std::string>> monitors;  // xref, device
  std::vector<std::string> registrations;

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(
        socket.get_executor(), [self]() { return self->reader(); }, asio::detached);
    asio::co_spawn(
        socket.get_executor(), [self]() { return self->writer(); }, asio::detached);
    if (sim->config.server.style == session_style::system_status) {
      asio::co_spawn(
          socket.get_executor(), [self]() { return self->heartbeat(); }, asio::detached);
    } else {
      session_timer.expires_at(clock_type::time_point::max());
      asio::co_spawn(
          socket.get_executor(), [self]() { return self->session_watch(); }, asio::detached);
    }
  }

  // Invoke ids of requests the PBX starts: 0000..9998, 9999 is for events.
  int pbx_invoke() {
    next_invoke = (next_invoke + 1) % csta::event_invoke_id;
    return next_invoke;
  }

  void send_bytes(std::string frame) {
    if (closed) return;
    if (outbox.size() >= sim->config.server.outbox_limit) {
      ++sim->links.slow_consumers;
      close("client reads too slowly (" + std::to_string(outbox.size()) + " frames queued)");
      return;
    }
    outbox.push_back(std::move(frame));
    if (outbox.size() == 1) wake.cancel();
  }

  void send(const csta::message& m, int invoke) {
    if (closed) return;
    std::string frame;
    if (auto r = csta::encode_frame(m, invoke, frame, csta::encode_options{.emit = sim->config.server.edition}); !r) {
      sim->log->error("pbxsim: cannot encode {} for {}: {}", csta::message_name(m), peer, r.error().message());
      return;
    }
    if (sim->config.tap.sent) sim->config.tap.sent(m);
    send_bytes(std::move(frame));
  }

  // A response to the client's request, subject to the withhold and delay faults.
  void respond(int invoke, csta::message m, std::string_view request_name) {
    auto& s = *sim;
    if (s.withhold_count > 0 && (s.withhold_name.empty() || s.withhold_name == request_name)) {
      --s.withhold_count;
      s.log->info("pbxsim: withholding the response to {} (invoke {}) from {}", request_name, invoke, peer);
      return;
    }
    if (std::holds_alternative<csta::csta_error_code>(m)) ++s.links.errors_sent;
    if (s.response_delay.count() <= 0) {
      send(m, invoke);
      return;
    }
    auto self = shared_from_this();
    asio::co_spawn(
        socket.get_executor(),
        [self, invoke, m = std::move(m), delay = s.response_delay]() -> asio::awaitable<void> {
          asio::steady_timer t(self->socket.get_executor(), delay);
          co_await t.async_wait(nothrow);
          self->send(m, invoke);
        },
        asio::detached);
  }

  void close(std::string_view reason) {
    if (closed) return;
    closed = true;
    sim->log->info("pbxsim: CTI client {} disconnected: {}", peer, reason);
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    wake.cancel();
    heartbeat_timer.cancel();
    session_timer.cancel();
    // Cleanup touches the monitor tables, which a caller may be iterating: do it later.
    asio::post(socket.get_executor(), [owner = sim, self = shared_from_this()] { owner->session_closed(self); });
  }

  asio::awaitable<void> reader() {
    std::array<char, 16384> buffer;
    while (!closed) {
      auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), nothrow);
      if (ec) {
        close(ec == asio::error::eof ? std::string("the client closed the connection") : ec.message());
        co_return;
      }
      framer.feed(std::string_view(buffer.data(), n));
      while (!closed) {
        auto next = framer.next();
        if (!next) {
          close("bad frame from the client: " + next.error().message());
          co_return;
        }
        if (!*next) break;
        on_frame((*next)->invoke_id, (*next)->xml);
      }
    }
  }

  asio::awaitable<void> writer() {
    std::string batch;
    while (!closed) {
      if (outbox.empty()) {
        if (close_when_drained) {
          close("the application session was stopped");
          co_return;
        }
        wake.expires_at(clock_type::time_point::max());
        co_await wake.async_wait(nothrow);
        continue;
      }
      batch.clear();  // several frames per write: fewer system calls under load
      while (!outbox.empty() && batch.size() < 65536) {
        batch += outbox.front();
        outbox.pop_front();
      }
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(batch), nothrow);
      if (ec) {
        close("write failed: " + ec.message());
        co_return;
      }
    }
  }

  // system_status style: SystemStatus at once, then every interval; too many unanswered ones
  // mean the application is gone.
  asio::awaitable<void> heartbeat() {
    const auto& cfg = sim->config.server;
    while (!closed) {
      if (!sim->heartbeats_silent) {
        if (heartbeat_outstanding && ++heartbeat_misses >= cfg.heartbeat_misses) {
          close(std::to_string(heartbeat_misses) + " SystemStatus heartbeats unanswered");
          co_return;
        }
        heartbeat_outstanding = pbx_invoke();
        send(csta::system_status{.status = "normal"}, *heartbeat_outstanding);
      }
      heartbeat_timer.expires_after(cfg.heartbeat_interval);
      co_await heartbeat_timer.async_wait(nothrow);
    }
  }

  // application_session style: the session ends when its timer is not reset in time.
  asio::awaitable<void> session_watch() {
    while (!closed) {
      auto [ec] = co_await session_timer.async_wait(nothrow);
      if (closed) co_return;
      if (ec == asio::error::operation_aborted) continue;  // reset, or started
      send(
          csta::application_session_terminated{
              .session_id = session_id, .session_term_reason = csta::choice_value{"definedTermReason", "timeout"}},
          pbx_invoke());
      close_when_drained = true;
      wake.cancel();
      co_return;
    }
  }

  void on_frame(int invoke, std::string_view xml) {
    auto decoded = csta::decode(xml);
    if (!decoded) {
      sim->log->warn("pbxsim: undecodable message from {} (invoke {}): {}", peer, invoke, decoded.error().message());
      if (invoke != csta::event_invoke_id) respond(invoke, csta_error("operation", "generic"), "?");
      return;
    }
    ++sim->links.requests;
    const auto& m = *decoded;
    if (sim->config.tap.received) sim->config.tap.received(m);
    const auto name = csta::message_name(m);
    std::visit([&](const auto& r) { on(invoke, r, name); }, m);
    sim->flush();
    sim->wake_if_needed();
  }

  // ---- session and heartbeat messages ----------------------------------------------------------
  void on(int invoke, const csta::system_status_response&, std::string_view) {
    if (heartbeat_outstanding == invoke) {
      heartbeat_outstanding.reset();
      heartbeat_misses = 0;
    }
  }
  void on(int invoke, const csta::system_status&, std::string_view name) {
    if (!sim->heartbeats_silent) respond(invoke, csta::system_status_response{}, name);
  }
  void on(int invoke, const csta::request_system_status&, std::string_view name) {
    if (!sim->heartbeats_silent) respond(invoke, csta::request_system_status_response{.system_status = "normal"}, name);
  }
  void on(int invoke, const csta::system_register&, std::string_view name) {
    respond(invoke, csta::system_register_response{.sys_stat_register_id = std::to_string(id)}, name);
  }
  void on(int invoke, const csta::start_application_session& r, std::string_view name) {
    if (sim->config.server.style != session_style::application_session) {
      respond(invoke,
              csta::start_application_session_neg_response{.error_code = {"definedError", "invalidApplicationInfo"}},
              name);
      return;
    }
    std::optional<std::string> version;
    for (const auto& v : r.protocol_versions) {
      if (csta::parse_edition(v)) {
        version = v;
        break;
      }
    }
    if (!version && !r.protocol_versions.empty()) {
      respond(invoke,
              csta::start_application_session_neg_response{
                  .error_code = {"definedError", "requestedProtocolVersionNotSupported"}},
              name);
      return;
    }
    const auto max = sim->config.server.max_session_duration;
    session_duration = std::min(max, std::chrono::seconds(r.requested_session_duration.value_or(max.count())));
    if (session_duration.count() <= 0) session_duration = max;
    char text[16];
    std::snprintf(text, sizeof text, "%09llu", static_cast<unsigned long long>(id));
    session_id = text;
    established = true;
    respond(
        invoke,
        csta::start_application_session_pos_response{
            .session_id = session_id,
            .actual_protocol_version = version.value_or(std::string(csta::namespace_of(sim->config.server.edition))),
            .actual_session_duration = session_duration.count()},
        name);
    session_timer.expires_after(session_duration);
  }
  void on(int invoke, const csta::reset_application_session_timer& r, std::string_view name) {
    if (sim->heartbeats_silent) return;
    if (!established || r.session_id != session_id) {
      respond(invoke,
              csta::reset_application_session_timer_neg_response{.error_code = {"definedError", "invalidSessionID"}},
              name);
      return;
    }
    if (r.requested_session_duration && *r.requested_session_duration > 0) {
      session_duration =
          std::min(sim->config.server.max_session_duration, std::chrono::seconds(*r.requested_session_duration));
    }
    respond(invoke,
            csta::reset_application_session_timer_pos_response{.actual_session_duration = session_duration.count()},
            name);
    session_timer.expires_after(session_duration);
  }
  void on(int invoke, const csta::stop_application_session& r, std::string_view name) {
    if (!established || r.session_id != session_id) {
      respond(invoke, csta::stop_application_session_neg_response{.error_code = {"definedError", "invalidSessionID"}},
              name);
      return;
    }
    respond(invoke, csta::stop_application_session_pos_response{}, name);
    close_when_drained = true;
    wake.cancel();
  }

  // ---- monitors and routing registrations -------------------------------------------------------
  void on(int invoke, const csta::monitor_start& r, std::string_view name) {
    if (!established) return refuse(invoke, name);
    if (!sim->model.has_device(r.device)) {
      respond(invoke, csta_error("operation", "invalidDeviceID"), name);
      return;
    }
    const auto xref = std::to_string(sim->next_xref++);
    monitors.emplace_back(xref, r.device);
    sim->monitors[r.device].push_back({this, xref});
    sim->model.add_monitor(r.device);
    respond(invoke, csta::monitor_start_response{.monitor_cross_ref_id = xref}, name);
  }
  void on(int invoke, const csta::monitor_stop& r, std::string_view name) {
    if (!established) return refuse(invoke, name);
    const auto it = std::find_if(monitors.begin(), monitors.end(),
                                 [&](const auto& m) { return m.first == r.monitor_cross_ref_id; });
    if (it == monitors.end()) {
      respond(invoke, csta_error("operation", "invalidMonitorCrossRefID"), name);
      return;
    }
    sim->remove_monitor(this, it->first, it->second);
    monitors.erase(it);
    respond(invoke, csta::monitor_stop_response{}, name);
  }
  void on(int invoke, const csta::route_register& r, std::string_view name) {
    if (!established) return refuse(invoke, name);
    auto response = sim->model.handle(r, sim->now());
    if (const auto* ok = std::get_if<csta::route_register_response>(&*response)) {
      registrations.push_back(ok->route_register_req_id);
      sim->registrations[ok->route_register_req_id] = this;
    }
    respond(invoke, std::move(*response), name);
  }
  void on(int invoke, const csta::route_register_cancel& r, std::string_view name) {
    if (!established) return refuse(invoke, name);
    const auto mine = std::find(registrations.begin(), registrations.end(), r.route_register_req_id);
    if (mine == registrations.end()) {
      respond(invoke, csta_error("operation", "invalidRouteRegistrationCrossRefID"), name);
      return;
    }
    registrations.erase(mine);
    sim->registrations.erase(r.route_register_req_id);
    respond(invoke, *sim->model.handle(r, sim->now()), name);
  }

  // ---- what the client should not send, and everything for the call model -----------------------
  void on(int invoke, const csta::unknown_message& r, std::string_view name) {
    sim->log->warn("pbxsim: {} sent {}, which this PBX does not know", peer, r.name);
    respond(invoke, csta_error("operation", "serviceNotSupported"), name);
  }
  template <class T>
  void on(int invoke, const T& r, std::string_view name) {
    if constexpr (requires { r.monitor_cross_ref_id; }) {
      sim->log->warn("pbxsim: {} sent the event {}; ignored", peer, name);
    } else if (name.ends_with("Response") || std::is_same_v<T, csta::csta_error_code>) {
      sim->log->debug("pbxsim: {} sent an unexpected {} (invoke {}); ignored", peer, name, invoke);
    } else if (!established) {
      refuse(invoke, name);
    } else if (auto response = sim->model.handle(r, sim->now())) {
      respond(invoke, std::move(*response), name);
    }
  }

  // application_session style: nothing but session messages before StartApplicationSession.
  void refuse(int invoke, std::string_view name) { respond(invoke, csta_error("operation", "generic"), name); }
};

void detail::listen(tcp::acceptor& acceptor, const std::string& address, std::uint16_t port) {
  const tcp::endpoint ep(asio::ip::make_address(address), port);
  acceptor.open(ep.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen();
}

// ---- the simulator ------------------------------------------------------------------------------

void simulator::state::flush() {
  if (!model.has_outputs()) return;
  for (auto& o : model.take_outputs()) {
    if (o.what == output::kind::routing) {
      const auto it = registrations.find(o.target);
      if (it != registrations.end()) it->second->send(o.message, it->second->pbx_invoke());
      continue;
    }
    const auto it = monitors.find(o.target);
    if (it == monitors.end()) continue;
    for (const auto& m : it->second) {
      set_cross_ref(o.message, m.xref);
      m.owner->send(o.message, csta::event_invoke_id);
      ++links.events_sent;
    }
  }
}

void simulator::state::remove_monitor(session* owner, const std::string& xref, const std::string& device) {
  if (const auto it = monitors.find(device); it != monitors.end()) {
    std::erase_if(it->second, [&](const auto& m) { return m.owner == owner && m.xref == xref; });
    if (it->second.empty()) monitors.erase(it);
  }
  model.remove_monitor(device);
}

void simulator::state::session_closed(const std::shared_ptr<session>& s) {
  for (const auto& [xref, device] : s->monitors) remove_monitor(s.get(), xref, device);
  s->monitors.clear();
  const auto t = now();
  for (const auto& reg : s->registrations) {
    registrations.erase(reg);
    model.cancel_registration(reg, t);  // its open routing dialogs go to the default device
  }
  s->registrations.clear();
  std::erase(sessions, s);
  links.sessions_open = sessions.size();
  flush();
}

asio::awaitable<void> simulator::state::accept_loop() {
  auto self = shared_from_this();
  while (running) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (!running) co_return;
    if (ec) {
      log->warn("pbxsim: accept failed: {}", ec.message());
      continue;
    }
    if (clock_type::now() < refuse_until) {
      boost::system::error_code ignored;
      socket.close(ignored);  // the link is "down": refuse until the fault ends
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    auto s = std::make_shared<session>(self, std::move(socket), next_session++);
    log->info("pbxsim: CTI client {} connected", s->peer);
    sessions.push_back(s);
    ++links.sessions_accepted;
    links.sessions_open = sessions.size();
    s->start();
  }
}

asio::awaitable<void> simulator::state::clock_loop() {
  auto self = shared_from_this();
  while (running) {
    const auto t = now();
    if (generator) {
      generator->run_until(model, t);
    } else {
      model.advance(t);
    }
    flush();
    auto next = t + config.server.max_tick;
    if (const auto due = model.next_due()) next = std::min(next, *due);
    if (generator) {
      if (const auto at = generator->next_arrival()) next = std::min(next, *at);
    }
    scheduled_wake = start_time + std::max(next, t + sim_time(1));
    clock_timer.expires_at(scheduled_wake);
    co_await clock_timer.async_wait(nothrow);
    scheduled_wake = clock_type::time_point::max();
  }
}

simulator::simulator(boost::asio::any_io_executor executor, simulator_config config)
    : state_(std::make_shared<state>(std::move(executor), std::move(config))) {}

simulator::~simulator() { stop(); }

void simulator::start() {
  auto& s = *state_;
  if (s.running) return;
  detail::listen(s.acceptor, s.config.server.listen_address, s.config.server.port);
  s.running = true;
  s.start_time = clock_type::now();
  s.log->info("pbxsim: listening on {}:{} ({} style)", s.config.server.listen_address, port(),
              s.config.server.style == session_style::system_status ? "SystemStatus" : "application session");
  asio::co_spawn(
      s.ex, [st = state_]() { return st->accept_loop(); }, asio::detached);
  asio::co_spawn(
      s.ex, [st = state_]() { return st->clock_loop(); }, asio::detached);
}

void simulator::stop() {
  auto& s = *state_;
  if (!s.running) return;
  s.running = false;
  boost::system::error_code ignored;
  s.acceptor.close(ignored);
  s.clock_timer.cancel();
  const auto open = s.sessions;
  for (const auto& session : open) session->close("the simulator stops");
  for (const auto& session : open) s.session_closed(session);  // breaks the session <-> state cycle now
}

std::uint16_t simulator::port() const {
  boost::system::error_code ec;
  const auto ep = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

const model_stats& simulator::stats() const { return state_->model.stats(); }
const link_stats& simulator::links() const { return state_->links; }
call_model& simulator::model() { return state_->model; }
sim_time simulator::now() const { return state_->now(); }

void simulator::set_rate(double calls_per_second) {
  auto& s = *state_;
  if (!s.generator) {
    if (s.config.model.route_points.empty()) throw std::invalid_argument("pbxsim: no route point to offer calls to");
    s.generator.emplace(generator_config{.rate = calls_per_second, .route_points = s.config.model.route_points},
                        s.now());
  }
  s.generator->set_rate(calls_per_second, s.now());
  s.clock_timer.cancel();
}

double simulator::rate() const { return state_->generator ? state_->generator->rate() : 0.0; }

std::optional<std::string> simulator::offer(inbound_call call) {
  auto& s = *state_;
  if (call.dialled.empty() && !s.config.model.route_points.empty()) call.dialled = s.config.model.route_points.front();
  if (call.caller.empty()) {
    if (s.generator) {
      auto sampled = s.generator->sample_call(call.dialled);
      call.caller = sampled.caller;
      if (call.correlator.empty()) call.correlator = sampled.correlator;
    } else {
      call.caller = "+49305550001";
    }
  }
  const auto t = s.now();
  s.model.advance(t);
  auto id = s.model.offer_call(call, t);
  s.flush();
  s.wake_if_needed();
  return id;
}

bool simulator::hang_up(const std::string& call_id) {
  auto& s = *state_;
  const bool done = s.model.hang_up_caller(call_id, s.now());
  s.flush();
  return done;
}

void simulator::drop_link(std::chrono::milliseconds how_long) {
  auto& s = *state_;
  s.refuse_until = clock_type::now() + how_long;
  s.log->info("pbxsim: dropping every CTI link for {} ms", how_long.count());
  for (const auto& session : std::vector(s.sessions)) session->close("link dropped (fault injection)");
}

void simulator::silence_heartbeats(bool silent) { state_->heartbeats_silent = silent; }

void simulator::delay_responses(std::chrono::milliseconds delay) { state_->response_delay = delay; }

void simulator::withhold_responses(int count, std::string message_name) {
  state_->withhold_count = count;
  state_->withhold_name = std::move(message_name);
}

void simulator::send_malformed(malformed_kind kind) {
  for (const auto& session : state_->sessions) {
    if (kind == malformed_kind::bad_header) {
      session->send_bytes(
          std::string("\x01\x02\x00\x10"
                      "abcd"
                      "<Broken/>",
                      17));
    } else {
      std::string frame;
      (void)csta::append_frame(frame, csta::event_invoke_id, "<DeliveredEvent><unclosed>");
      session->send_bytes(std::move(frame));
    }
  }
}

}  // namespace switchboard::pbxsim
