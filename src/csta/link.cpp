// csta_link: the CSTA session, registrations, heartbeat and reconnect as one explicit state
// machine (run), with per-connection reader / writer / heartbeat / watchdog coroutines the only
// code that awaits the socket. Requests wait on their own deadline timer, paired by invoke id.
#include "switchboard/csta/link.hpp"

#include "switchboard/csta/framer.hpp"
#include "switchboard/csta/translate.hpp"
#include "switchboard/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <exception>
#include <optional>
#include <vector>

namespace switchboard::csta {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Bugs surface from io_context::run(); expected failures never throw.
void rethrow(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

std::string millis(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// Messages a switch sends on its own (not responses): they may reuse one of our invoke ids.
bool from_switch(const message& m) {
  return std::holds_alternative<system_status>(m) || std::holds_alternative<request_system_status>(m) ||
         std::holds_alternative<route_request>(m) || std::holds_alternative<re_route>(m) ||
         std::holds_alternative<route_end>(m) || std::holds_alternative<route_used>(m) ||
         std::holds_alternative<route_register_abort>(m) || std::holds_alternative<application_session_terminated>(m);
}

}  // namespace

std::string link_config::validate() const {
  if (host.empty()) return "host is empty";
  if (port == 0) return "port must not be 0";
  if (heartbeat_misses < 1) return "heartbeat_misses must be at least 1";
  if (heartbeat_interval.count() <= 0) return "heartbeat_interval must be positive";
  if (request_timeout.count() <= 0 || connect_timeout.count() <= 0 || write_timeout.count() <= 0) {
    return "timeouts must be positive";
  }
  if (reconnect_initial.count() <= 0 || reconnect_max < reconnect_initial) {
    return "reconnect_initial must be positive and at most reconnect_max";
  }
  if (max_frame_size < 64 || max_frame_size > max_frame_size_limit) return "max_frame_size must be 64..65535";
  if (outbox_limit == 0) return "outbox_limit must be at least 1";
  if (session == session_style::application_session && session_duration.count() < 2) {
    return "session_duration must be at least 2 s";
  }
  return {};
}

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::connecting:
      return "connecting";
    case link_state::opening_session:
      return "opening_session";
    case link_state::registering:
      return "registering";
    case link_state::resyncing:
      return "resyncing";
    case link_state::up:
      return "up";
    case link_state::lost:
      return "lost";
    case link_state::backing_off:
      return "backing_off";
    case link_state::stopped:
      return "stopped";
  }
  return "unknown";
}

// One TCP (or TLS) connection: its socket, the bounded outbox and the writer's wake-up.
struct csta_link::connection {
  connection(const asio::any_io_executor& ex, bool use_tls)
      : ssl(asio::ssl::context::tls_client),
        stream(ex, ssl),
        tls(use_tls),
        write_signal(ex),
        heartbeat(ex),
        watchdog(ex),
        last_read(std::chrono::steady_clock::now()) {}

  void close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream.next_layer().close(ignored);
    write_signal.cancel();
    heartbeat.cancel();
    watchdog.cancel();
  }

  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    if (tls) co_return co_await stream.async_read_some(b, use_tuple);
    co_return co_await stream.next_layer().async_read_some(b, use_tuple);
  }
  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write(
      const std::vector<asio::const_buffer>& frames) {
    if (tls) co_return co_await asio::async_write(stream, frames, use_tuple);
    co_return co_await asio::async_write(stream.next_layer(), frames, use_tuple);
  }

  asio::ssl::context ssl;  // before stream: the stream refers to it
  asio::ssl::stream<tcp::socket> stream;
  bool tls;
  bool closed = false;
  std::deque<std::string> outbox;  // whole frames; references stay valid while the writer writes
  asio::steady_timer write_signal;
  asio::steady_timer heartbeat;
  // One timer for the read and write deadlines (watchdog()), not one raced against every read
  // and write: those were a timer and an operator group per frame on the loop's hot path.
  asio::steady_timer watchdog;
  std::chrono::steady_clock::time_point last_read;                     // the PBX's last byte
  std::optional<std::chrono::steady_clock::time_point> write_started;  // a write in progress
};

// A request waiting for its response: the timer is its deadline and its wake-up.
struct csta_link::waiter {
  explicit waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<result<message>> outcome;
};

std::shared_ptr<csta_link> csta_link::create(asio::any_io_executor executor, link_config config) {
  return std::shared_ptr<csta_link>(new csta_link(std::move(executor), std::move(config)));
}

csta_link::csta_link(asio::any_io_executor executor, link_config config)
    : executor_(std::move(executor)),
      config_(std::move(config)),
      wake_(std::make_unique<asio::steady_timer>(executor_)),
      backoff_(config_.reconnect_initial) {}

csta_link::~csta_link() = default;

void csta_link::start() {
  if (state_ != link_state::stopped || stopping_) return;
  if (const auto problem = config_.validate(); !problem.empty()) {
    throw std::invalid_argument("csta link configuration: " + problem);
  }
  state_ = link_state::connecting;
  backoff_ = config_.reconnect_initial;
  asio::co_spawn(
      executor_, [self = shared_from_this()] { return self->run(); }, rethrow);
}

void csta_link::stop() {
  if (stopping_) return;
  stopping_ = true;
  if (connection_) connection_->close();
  fail_waiters(error(errc::pbx_link_down, "link stopped"));
  wake_->cancel();
}

std::vector<std::string> csta_link::monitored_devices() const {
  std::vector<std::string> all = config_.route_points;
  all.insert(all.end(), config_.devices.begin(), config_.devices.end());
  return all;
}

// ---- the state machine ------------------------------------------------------------------------
asio::awaitable<void> csta_link::run() {
  auto log = logger("csta");
  for (;;) {
    if (stopping_)
      state_ = state_ == link_state::up || state_ == link_state::resyncing ? link_state::lost : link_state::stopped;
    switch (state_) {
      case link_state::connecting: {
        lost_reason_.reset();
        if (auto r = co_await connect(); !r) {
          log->warn("cannot reach the PBX at {}:{}: {}", config_.host, config_.port, r.error().message());
          connection_.reset();
          state_ = link_state::backing_off;
        } else {
          state_ = link_state::opening_session;
        }
        break;
      }
      case link_state::opening_session: {
        auto r = co_await open_session();
        if (!r) lose(connection_, r.error());
        state_ = r ? link_state::registering : link_state::lost;
        break;
      }
      case link_state::registering: {
        auto r = co_await register_devices();
        if (!r) {
          lose(connection_, r.error());
          state_ = link_state::lost;
          break;
        }
        backoff_ = config_.reconnect_initial;
        announced_up_ = true;
        state_ = link_state::resyncing;
        log->info("CSTA link to {}:{} is up", config_.host, config_.port);
        emit(pbx::link_up{config_.host + ":" + std::to_string(config_.port)});
        break;
      }
      case link_state::resyncing: {
        co_await resync();
        if (state_ == link_state::resyncing) state_ = lost_reason_ ? link_state::lost : link_state::up;
        break;
      }
      case link_state::up: {
        if (!lost_reason_) {
          wake_->expires_at(asio::steady_timer::time_point::max());
          co_await wake_->async_wait(use_tuple);  // woken by lose() or stop()
        }
        if (lost_reason_ || stopping_) state_ = link_state::lost;
        break;
      }
      case link_state::lost: {
        const error reason = lost_reason_.value_or(error(errc::pbx_link_down, "link stopped"));
        if (connection_) connection_->close();
        connection_.reset();
        fail_waiters(error(errc::pbx_link_down, reason.message()));
        open_dialogs_.clear();
        route_registrations_.clear();
        session_id_.clear();
        if (announced_up_ && !stopping_) emit(pbx::link_down{reason});
        announced_up_ = false;
        state_ = stopping_ ? link_state::stopped : link_state::backing_off;
        break;
      }
      case link_state::backing_off: {
        log->info("reconnecting to the PBX in {}", millis(backoff_));
        wake_->expires_after(backoff_);
        co_await wake_->async_wait(use_tuple);
        backoff_ = std::min(backoff_ * 2, config_.reconnect_max);
        state_ = link_state::connecting;
        break;
      }
      case link_state::stopped: {
        if (connection_) connection_->close();
        connection_.reset();
        fail_waiters(error(errc::pbx_link_down, "link stopped"));
        co_return;
      }
    }
  }
}

asio::awaitable<result<void>> csta_link::connect() {
  auto c = std::make_shared<connection>(executor_, config_.tls);
  connection_ = c;  // so stop() can cancel the attempt
  asio::steady_timer deadline(executor_);
  deadline.expires_after(config_.connect_timeout);
  const auto timed_out = error(errc::pbx_link_down, "no connection within " + millis(config_.connect_timeout));

  tcp::resolver resolver(executor_);
  auto resolved = co_await (resolver.async_resolve(config_.host, std::to_string(config_.port), use_tuple) ||
                            deadline.async_wait(use_tuple));
  if (resolved.index() == 1) co_return timed_out;
  auto [resolve_ec, endpoints] = std::get<0>(resolved);
  if (resolve_ec) co_return error(errc::pbx_link_down, "resolve " + config_.host + ": " + resolve_ec.message());
  if (c->closed) co_return error(errc::pbx_link_down, "link stopped");

  auto connected =
      co_await (asio::async_connect(c->stream.next_layer(), endpoints, use_tuple) || deadline.async_wait(use_tuple));
  if (connected.index() == 1) co_return timed_out;
  if (auto ec = std::get<0>(std::get<0>(connected)); ec) co_return error(errc::pbx_link_down, ec.message());
  boost::system::error_code ignored;
  c->stream.next_layer().set_option(tcp::no_delay(true), ignored);

  if (config_.tls) {
    if (config_.tls_verify) {
      c->ssl.set_default_verify_paths();
      if (!config_.tls_ca_file.empty()) c->ssl.load_verify_file(config_.tls_ca_file, ignored);
      c->stream.set_verify_mode(asio::ssl::verify_peer);
      c->stream.set_verify_callback(asio::ssl::host_name_verification(config_.host));
    } else {
      c->stream.set_verify_mode(asio::ssl::verify_none);
    }
    SSL_set_tlsext_host_name(c->stream.native_handle(), config_.host.c_str());
    auto shaken = co_await (c->stream.async_handshake(asio::ssl::stream_base::client, use_tuple) ||
                            deadline.async_wait(use_tuple));
    if (shaken.index() == 1) co_return timed_out;
    if (auto ec = std::get<0>(std::get<0>(shaken)); ec) co_return error(errc::pbx_link_down, "TLS: " + ec.message());
  }
  if (c->closed) co_return error(errc::pbx_link_down, "link stopped");

  auto self = shared_from_this();
  asio::co_spawn(
      executor_, [self, c] { return self->read_loop(c); }, rethrow);
  asio::co_spawn(
      executor_, [self, c] { return self->write_loop(c); }, rethrow);
  asio::co_spawn(
      executor_, [self, c] { return self->heartbeat_loop(c); }, rethrow);
  asio::co_spawn(
      executor_, [self, c] { return self->watchdog(c); }, rethrow);
  co_return result<void>{};
}

asio::awaitable<result<void>> csta_link::open_session() {
  auto log = logger("csta");
  if (config_.session == session_style::application_session) {
    start_application_session start;
    start.application_id = config_.application_id;
    start.protocol_versions = {std::string(namespace_of(config_.emit))};
    start.requested_session_duration = config_.session_duration.count();
    auto r = co_await send_request(start, false);
    if (!r) co_return r.error();
    if (auto* neg = std::get_if<start_application_session_neg_response>(&*r)) {
      co_return error(errc::pbx_rejected, "StartApplicationSession: " + error_text(neg->error_code));
    }
    auto* pos = std::get_if<start_application_session_pos_response>(&*r);
    if (!pos)
      co_return error(errc::pbx_protocol_error, "StartApplicationSession answered by " + std::string(message_name(*r)));
    session_id_ = pos->session_id;
    log->info("application session {} open", session_id_);
    co_return result<void>{};
  }
  auto r = co_await call<system_register_response>(system_register{}, false);
  if (!r && r.error().is(errc::pbx_rejected)) {
    // Some switches refuse SystemRegister but still send SystemStatus; carry on.
    log->warn("PBX refused SystemRegister ({}); continuing without it", r.error().detail);
    co_return result<void>{};
  }
  if (!r) co_return r.error();
  co_return result<void>{};
}

asio::awaitable<result<void>> csta_link::register_devices() {
  auto log = logger("csta");
  route_registrations_.clear();
  for (const auto& rp : config_.route_points) {
    auto r = co_await call<route_register_response>(route_register{rp}, false);
    if (!r && r.error().is(errc::pbx_rejected)) {
      log->error("PBX refused RouteRegister for route point {}: {}", rp, r.error().detail);
      continue;
    }
    if (!r) co_return r.error();
    route_registrations_[r->route_register_req_id] = rp;
  }
  for (const auto& device : monitored_devices()) {
    auto r = co_await call<monitor_start_response>(monitor_start{device, std::nullopt}, false);
    if (!r && r.error().is(errc::pbx_rejected)) {
      log->error("PBX refused MonitorStart for device {}: {}", device, r.error().detail);
      continue;
    }
    if (!r) co_return r.error();
  }
  co_return result<void>{};
}

asio::awaitable<void> csta_link::resync() {
  // Phones before route points: a call that left a route point during the gap is then found
  // where it went before the route point's snapshot says it is gone.
  std::vector<std::string> devices = config_.devices;
  devices.insert(devices.end(), config_.route_points.begin(), config_.route_points.end());
  for (const auto& device : devices) {
    auto r = co_await call<snapshot_device_response>(snapshot_device{device}, false);
    if (r) {
      emit(pbx::resynced{device, to_snapshot(*r)});
    } else if (r.error().is(errc::pbx_link_down)) {
      co_return;
    } else {
      logger("csta")->warn("SnapshotDevice {} failed: {}", device, r.error().message());
    }
  }
}

// ---- the connection's coroutines ----------------------------------------------------------------
asio::awaitable<void> csta_link::read_loop(std::shared_ptr<connection> c) {
  framer frames(config_.max_frame_size);
  std::array<char, 16384> buffer;
  for (;;) {
    const auto [ec, n] = co_await c->read_some(asio::buffer(buffer));
    if (c->closed) co_return;
    if (ec) {
      lose(c, error(errc::pbx_link_down, "read: " + ec.message()));
      co_return;
    }
    c->last_read = std::chrono::steady_clock::now();
    frames.feed(std::string_view(buffer.data(), n));
    for (;;) {
      auto next = frames.next();
      if (!next) {
        lose(c, next.error());
        co_return;
      }
      if (!*next) break;
      const int invoke_id = (*next)->invoke_id;
      auto decoded = decode((*next)->xml);
      if (!decoded) {
        logger("csta")->warn("PBX sent a bad message (invoke {:04}): {}", invoke_id, decoded.error().message());
        if (auto w = pending_.take(invoke_id); w && *w) {
          (*w)->outcome = result<message>(error(errc::pbx_protocol_error, decoded.error().detail));
          (*w)->timer.cancel();
        }
        continue;
      }
      handle(invoke_id, std::move(*decoded));
      if (c->closed) co_return;
    }
  }
}

asio::awaitable<void> csta_link::write_loop(std::shared_ptr<connection> c) {
  std::vector<asio::const_buffer> frames;  // the frames queued when a write starts, in one write
  for (;;) {
    while (!c->outbox.empty() && !c->closed) {
      const auto count = std::min<std::size_t>(c->outbox.size(), 64);
      frames.clear();
      for (std::size_t i = 0; i < count; ++i) frames.push_back(asio::buffer(c->outbox[i]));
      c->write_started = std::chrono::steady_clock::now();
      const auto [ec, n] = co_await c->write(frames);
      c->write_started.reset();
      if (c->closed) co_return;
      if (ec) {
        lose(c, error(errc::pbx_link_down, "write: " + ec.message()));
        co_return;
      }
      c->outbox.erase(c->outbox.begin(), c->outbox.begin() + static_cast<std::ptrdiff_t>(count));
    }
    if (c->closed) co_return;
    c->write_signal.expires_at(asio::steady_timer::time_point::max());
    co_await c->write_signal.async_wait(use_tuple);  // woken by enqueue() or close()
    if (c->closed) co_return;
  }
}

// The connection's deadlines, checked a few times per the shorter one: no byte from the PBX for
// heartbeat_misses heartbeats, or a write it has not taken within write_timeout.
asio::awaitable<void> csta_link::watchdog(std::shared_ptr<connection> c) {
  const auto idle_limit = config_.heartbeat_interval * config_.heartbeat_misses;
  const auto tick =
      std::clamp<std::chrono::milliseconds>(std::min<std::chrono::milliseconds>(idle_limit, config_.write_timeout) / 4,
                                            std::chrono::milliseconds(5), std::chrono::milliseconds(1000));
  while (!c->closed) {
    c->watchdog.expires_after(tick);
    co_await c->watchdog.async_wait(use_tuple);
    if (c->closed) co_return;
    const auto now = std::chrono::steady_clock::now();
    if (c->write_started && now - *c->write_started > config_.write_timeout) {
      lose(c, error(errc::pbx_link_down, "PBX did not take a frame within " + millis(config_.write_timeout)));
      co_return;
    }
    if (now - c->last_read > idle_limit) {
      lose(c, error(errc::pbx_link_down, "no traffic from the PBX for " + millis(idle_limit) + " (" +
                                             std::to_string(config_.heartbeat_misses) + " heartbeats missed)"));
      co_return;
    }
  }
}

asio::awaitable<void> csta_link::heartbeat_loop(std::shared_ptr<connection> c) {
  auto interval = config_.heartbeat_interval;
  if (config_.session == session_style::application_session) {
    interval = std::min<std::chrono::milliseconds>(interval, config_.session_duration / 2);
  }
  for (;;) {
    c->heartbeat.expires_after(interval);
    co_await c->heartbeat.async_wait(use_tuple);
    if (c->closed || c != connection_) co_return;
    // The answer is traffic that keeps the watchdog's read deadline from expiring; a missing one is
    // counted there, so the result itself only matters for the log.
    result<message> r = error(errc::pbx_link_down);
    if (config_.session == session_style::application_session) {
      if (session_id_.empty()) continue;
      r = co_await send_request(reset_application_session_timer{session_id_, config_.session_duration.count()}, false);
    } else {
      r = co_await send_request(request_system_status{}, false);
    }
    if (!r && !r.error().is(errc::pbx_link_down)) logger("csta")->debug("heartbeat: {}", r.error().message());
  }
}

// ---- inbound dispatch ---------------------------------------------------------------------------
void csta_link::handle(int invoke_id, message m) {
  if (from_switch(m)) return handle_from_switch(invoke_id, m);
  if (auto e = to_event(m)) return emit(*e);
  if (auto w = pending_.take(invoke_id); w && *w) {
    (*w)->outcome = result<message>(std::move(m));
    (*w)->timer.cancel();
    return;
  }
  auto log = logger("csta");
  if (const auto* neg = std::get_if<csta_error_code>(&m)) {
    log->warn("PBX rejected request {:04} that nobody waits for: {}", invoke_id, error_text(neg->error));
  } else if (std::holds_alternative<unknown_message>(m)) {
    log->warn("PBX sent {} (invoke {:04}), which Switchboard does not handle", message_name(m), invoke_id);
  } else {
    log->debug("ignored {} (invoke {:04})", message_name(m), invoke_id);
  }
}

void csta_link::handle_from_switch(int invoke_id, message& m) {
  auto log = logger("csta");
  if (auto* status = std::get_if<system_status>(&m)) {
    if (status->status != "normal" && status->status != "enabled") log->warn("PBX system status: {}", status->status);
    (void)enqueue(invoke_id, system_status_response{});
  } else if (std::holds_alternative<request_system_status>(m)) {
    (void)enqueue(invoke_id, request_system_status_response{"normal"});
  } else if (auto* request = std::get_if<route_request>(&m)) {
    auto e = to_event(m);
    auto& offered = std::get<pbx::call_offered>(*e);
    if (const auto rp = route_registrations_.find(request->route_register_req_id); rp != route_registrations_.end()) {
      offered.route_point = rp->second;
    }
    open_dialogs_.insert(offered.dialog);
    emit(*e);
  } else if (std::holds_alternative<re_route>(m)) {
    emit(*to_event(m));
  } else if (auto* end = std::get_if<route_end>(&m)) {
    open_dialogs_.erase(make_dialog_id(end->route_register_req_id, end->cross_ref_identifier));
    emit(*to_event(m));
  } else if (auto* used = std::get_if<route_used>(&m)) {
    log->debug("route {} used {}", make_dialog_id(used->route_register_req_id, used->cross_ref_identifier),
               used->used.id);
  } else if (auto* abort = std::get_if<route_register_abort>(&m)) {
    log->error("PBX aborted route registration {}; routing resumes after the next reconnect",
               abort->route_register_req_id);
    route_registrations_.erase(abort->route_register_req_id);
  } else if (std::holds_alternative<application_session_terminated>(m)) {
    lose(connection_, error(errc::pbx_link_down, "PBX ended the application session"));
  }
}

// ---- outbound -----------------------------------------------------------------------------------
result<void> csta_link::enqueue(int invoke_id, const message& m) {
  const auto c = connection_;
  if (!c || c->closed) return error(errc::pbx_link_down, "not connected");
  if (c->outbox.size() >= config_.outbox_limit) {
    lose(c, error(errc::pbx_link_down, "PBX does not read: " + std::to_string(c->outbox.size()) + " frames queued"));
    return error(errc::pbx_link_down, "outbox full");
  }
  std::string frame;
  if (auto r = encode_frame(m, invoke_id, frame, {config_.emit, true}, config_.max_frame_size); !r) return r.error();
  c->outbox.push_back(std::move(frame));
  c->write_signal.cancel();
  return {};
}

asio::awaitable<result<message>> csta_link::send_request(message m, bool only_when_up) {
  if (!connection_ || connection_->closed || (only_when_up && !is_up())) {
    co_return error(errc::pbx_link_down, "not connected");
  }
  auto w = std::make_shared<waiter>(executor_);
  const auto id = pending_.open(w);
  if (!id) co_return error(errc::pbx_timeout, "every invoke id is in flight");
  if (auto queued = enqueue(*id, m); !queued) {
    pending_.take(*id);
    co_return queued.error();
  }
  w->timer.expires_after(config_.request_timeout);
  co_await w->timer.async_wait(use_tuple);
  if (!w->outcome) {
    pending_.take(*id);
    const std::string what = std::string(message_name(m)) + " (invoke " + std::to_string(*id) +
                             ") got no answer within " + millis(config_.request_timeout);
    logger("csta")->warn("{}", what);
    co_return error(errc::pbx_timeout, what);
  }
  auto outcome = std::move(*w->outcome);
  if (outcome) {
    if (const auto* neg = std::get_if<csta_error_code>(&*outcome)) {
      co_return error(errc::pbx_rejected, error_text(neg->error));
    }
  }
  co_return outcome;
}

template <class Response>
asio::awaitable<result<Response>> csta_link::call(message m, bool only_when_up) {
  const std::string_view asked = message_name(m);
  auto r = co_await send_request(std::move(m), only_when_up);
  if (!r) co_return r.error();
  if (auto* response = std::get_if<Response>(&*r)) co_return std::move(*response);
  co_return error(errc::pbx_protocol_error, std::string(asked) + " answered by " + std::string(message_name(*r)));
}

asio::awaitable<result<message>> csta_link::request(message m) { return send_request(std::move(m), true); }

void csta_link::lose(const std::shared_ptr<connection>& c, error reason) {
  if (!c || c != connection_ || c->closed) return;  // a stale coroutine of an old connection
  logger("csta")->warn("CSTA link lost: {}", reason.message());
  if (!lost_reason_) lost_reason_ = std::move(reason);
  c->close();
  fail_waiters(error(errc::pbx_link_down, lost_reason_->message()));
  wake_->cancel();
}

void csta_link::fail_waiters(const error& reason) {
  for (auto& w : pending_.take_all()) {
    if (!w) continue;
    w->outcome = result<message>(reason);
    w->timer.cancel();
  }
}

void csta_link::emit(const pbx::event& e) {
  if (handler_ && !stopping_) handler_(e);
}

// ---- commands -----------------------------------------------------------------------------------
namespace {
template <class T>
result<void> done(const result<T>& r) {
  if (!r) return r.error();
  return {};
}
}  // namespace

// Routing answers have no response element: send with a fresh invoke id and return; a refusal
// comes as a CSTAErrorCode and is logged by handle().
result<void> csta_link::send_unanswered(const message& m) {
  const auto id = pending_.open(nullptr);
  if (!id) return error(errc::pbx_timeout, "every invoke id is in flight");
  pending_.take(*id);
  return enqueue(*id, m);
}

asio::awaitable<result<void>> csta_link::execute(pbx::route_select cmd) {
  auto m = to_csta(cmd);
  if (!m) co_return m.error();
  if (!is_up()) co_return error(errc::pbx_link_down, "not connected");
  if (!open_dialogs_.count(cmd.dialog))
    co_return error(errc::call_unknown, "routing dialog " + cmd.dialog + " is over");
  co_return send_unanswered(*m);
}

asio::awaitable<result<void>> csta_link::execute(pbx::route_end cmd) {
  auto m = to_csta(cmd);
  if (!m) co_return m.error();
  if (!is_up()) co_return error(errc::pbx_link_down, "not connected");
  if (!open_dialogs_.erase(cmd.dialog))
    co_return error(errc::call_unknown, "routing dialog " + cmd.dialog + " is over");
  co_return send_unanswered(*m);
}

asio::awaitable<result<pbx::connection_id>> csta_link::execute(pbx::make_call cmd) {
  auto r = co_await call<make_call_response>(to_csta(cmd));
  if (!r) co_return r.error();
  co_return to_connection(r->calling_device);
}
asio::awaitable<result<void>> csta_link::execute(pbx::answer_call cmd) {
  co_return done(co_await call<answer_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::clear_connection cmd) {
  co_return done(co_await call<clear_connection_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::hold_call cmd) {
  co_return done(co_await call<hold_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::retrieve_call cmd) {
  co_return done(co_await call<retrieve_call_response>(to_csta(cmd)));
}
asio::awaitable<result<pbx::connection_id>> csta_link::execute(pbx::consult_call cmd) {
  auto r = co_await call<consultation_call_response>(to_csta(cmd));
  if (!r) co_return r.error();
  co_return to_connection(r->initiated_call);
}
asio::awaitable<result<void>> csta_link::execute(pbx::transfer_call cmd) {
  co_return done(co_await call<transfer_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::conference_call cmd) {
  co_return done(co_await call<conference_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::deflect_call cmd) {
  co_return done(co_await call<deflect_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::single_step_transfer cmd) {
  co_return done(co_await call<single_step_transfer_call_response>(to_csta(cmd)));
}
asio::awaitable<result<void>> csta_link::execute(pbx::set_operator_state cmd) {
  auto m = to_csta(cmd);
  if (!m) co_return m.error();
  co_return done(co_await call<set_agent_state_response>(std::move(*m)));
}
asio::awaitable<result<std::vector<pbx::snapshot_entry>>> csta_link::execute(pbx::snapshot_device cmd) {
  auto r = co_await call<snapshot_device_response>(to_csta(cmd));
  if (!r) co_return r.error();
  co_return to_snapshot(*r);
}

}  // namespace switchboard::csta
