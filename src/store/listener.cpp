// LISTEN/NOTIFY listener: connect off the loop, then wait on a dup() of the socket in the loop.
#include "switchboard/store/listener.hpp"

#include "switchboard/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <optional>

namespace switchboard::store {

namespace asio = boost::asio;

namespace {

class receiver final : public pqxx::notification_receiver {
 public:
  receiver(pqxx::connection_base& conn, const std::string& channel, std::vector<notification>& inbox)
      : pqxx::notification_receiver(conn, channel), inbox_(inbox) {}
  void operator()(const std::string& payload, int) override { inbox_.push_back({channel(), payload}); }

 private:
  std::vector<notification>& inbox_;
};

// A live LISTEN session: the connection and its receivers (destroyed before the connection).
struct session {
  std::unique_ptr<pqxx::connection> conn;
  std::vector<notification> inbox;
  std::vector<std::unique_ptr<receiver>> receivers;
  ~session() { receivers.clear(); }
};

}  // namespace

struct notification_listener::state : std::enable_shared_from_this<notification_listener::state> {
  asio::any_io_executor loop;
  asio::any_io_executor blocking;
  pool_config config;
  std::vector<std::string> channels;
  notify_handler on_notify;
  reconnect_handler on_reconnected;
  bool stopped = false;
  bool listening = false;
  std::optional<asio::posix::stream_descriptor> socket;
  std::optional<asio::steady_timer> backoff;

  // Connects and issues LISTEN on a blocking-capable executor; resumes on the loop.
  asio::awaitable<result<std::shared_ptr<session>>> open_session() {
    auto self = shared_from_this();
    return offload(blocking, [self]() -> result<std::shared_ptr<session>> {
      try {
        auto s = std::make_shared<session>();
        s->conn = open_connection(self->config);
        for (const auto& channel : self->channels)
          s->receivers.push_back(std::make_unique<receiver>(*s->conn, channel, s->inbox));
        return s;
      } catch (const std::exception& e) {
        return to_error(e);
      }
    });
  }

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    auto log = logger("store");
    bool had_session = false;
    bool reported_down = false;
    auto delay = std::chrono::milliseconds(200);
    while (!stopped) {
      auto opened = co_await open_session();
      if (stopped) break;
      if (!opened) {
        if (!reported_down) log->error("LISTEN connection unavailable: {} (retrying)", opened.error().message());
        reported_down = true;
        backoff.emplace(loop, delay);
        co_await backoff->async_wait(asio::as_tuple(asio::use_awaitable));
        delay = std::min(delay * 2, std::chrono::milliseconds(5000));
        continue;
      }
      auto sess = *opened;
      delay = std::chrono::milliseconds(200);
      if (reported_down || had_session) log->info("LISTEN connection established again; state is re-read");
      reported_down = false;
      listening = true;
      if (had_session && on_reconnected) on_reconnected();
      had_session = true;

      socket.emplace(loop, ::dup(sess->conn->sock()));
      for (;;) {
        auto [ec] =
            co_await socket->async_wait(asio::posix::stream_descriptor::wait_read, asio::as_tuple(asio::use_awaitable));
        if (ec || stopped) break;
        try {
          sess->conn->get_notifs();
        } catch (const std::exception& e) {
          log->error("LISTEN connection lost: {} (notifications in the gap are lost; reconnecting)", e.what());
          reported_down = true;
          break;
        }
        auto inbox = std::move(sess->inbox);
        sess->inbox.clear();
        for (const auto& n : inbox) on_notify(n);
      }
      listening = false;
      socket.reset();
    }
    listening = false;
  }
};

notification_listener::notification_listener(asio::any_io_executor loop, asio::any_io_executor blocking,
                                             pool_config config, std::vector<std::string> channels,
                                             notify_handler on_notify, reconnect_handler on_reconnected)
    : state_(std::make_shared<state>()) {
  state_->loop = std::move(loop);
  state_->blocking = std::move(blocking);
  state_->config = std::move(config);
  state_->channels = std::move(channels);
  state_->on_notify = std::move(on_notify);
  state_->on_reconnected = std::move(on_reconnected);
}

notification_listener::~notification_listener() { stop(); }

void notification_listener::start() {
  auto s = state_;
  asio::co_spawn(
      s->loop, [s]() { return s->run(); }, asio::detached);
}

void notification_listener::stop() {
  auto s = state_;
  asio::dispatch(s->loop, [s] {
    s->stopped = true;
    if (s->socket) s->socket->cancel();
    if (s->backoff) s->backoff->cancel();
  });
}

bool notification_listener::listening() const noexcept { return state_->listening; }

}  // namespace switchboard::store
