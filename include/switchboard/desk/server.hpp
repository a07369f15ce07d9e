// The desktop server: an acceptor (TCP, optionally TLS), one connection coroutine per desktop
// with a bounded outbox drained by its writer, login against PostgreSQL, resumable sessions,
// and the hub that fans events out to desktops. Every limit lives in `server_config`.
#pragma once

#include "switchboard/desk/command_handler.hpp"
#include "switchboard/desk/hub.hpp"
#include "switchboard/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace switchboard::store {
class connection_pool;
}

namespace switchboard::desk {

enum class second_login_policy { refuse, take_over };

struct tls_config {
  bool enabled = false;
  std::string certificate_file;  // PEM, chain first
  std::string private_key_file;  // PEM
};

struct server_config {
  std::string listen_address = "0.0.0.0";
  std::uint16_t port = 8490;                            // 0: any free port (tests)
  std::string node_name;                                // written to presence.node
  std::size_t max_connections = 25000;                  // more are accepted and closed at once
  std::size_t max_line_bytes = 64 * 1024;               // longest request line
  std::size_t read_buffer_bytes = 2048;                 // per connection
  std::chrono::milliseconds heartbeat_interval{10000};  // told to clients in the hello reply
  std::chrono::milliseconds idle_timeout{30000};        // silent that long: disconnected
  std::chrono::milliseconds login_timeout{15000};       // connected that long without a login: disconnected
  std::chrono::milliseconds resume_grace{60000};        // a lost session may resume within this
  std::chrono::milliseconds write_timeout{10000};       // one write blocked that long: slow consumer
  std::size_t outbox_max_messages = 1024;               // queued and unsent: slow consumer past either
  std::size_t outbox_max_bytes = 1024 * 1024;
  int socket_send_buffer = 0;       // SO_SNDBUF; 0: the system's default
  double requests_per_second = 50;  // per connection, token bucket
  double request_burst = 100;
  int max_consecutive_errors = 20;  // bad requests in a row: disconnected
  second_login_policy second_login = second_login_policy::take_over;
  int max_failed_logins_per_login = 5;  // in failed_login_window
  int max_failed_logins_per_address = 20;
  std::chrono::seconds failed_login_window{300};
  std::string lost_desktop_reason = "desktop_lost";  // not-ready reason after the grace period
  tls_config tls;
};

// Checks ranges and that TLS files are named; the error's detail names the key.
result<void> validate(const server_config& config);

class server final : public hub {
 public:
  // `loop` is the event loop that owns desk state (single-threaded); `pool` and `calls` must
  // outlive the server.
  server(boost::asio::any_io_executor loop, server_config config, store::connection_pool& pool, command_handler& calls);
  ~server() override;
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and starts accepting; fails on a bad config, TLS files or a taken port.
  result<void> start();
  // Stops accepting, tells every desktop "shutdown" and closes; presence is left as it is so
  // operators log in again (or to another node) without losing their state.
  void stop();

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  std::size_t connection_count() const noexcept;
  std::size_t session_count() const noexcept;  // logged-in operators, attached or in their grace period

  void offer(std::int64_t operator_id, offer_event offer) override;
  void call_update(std::int64_t operator_id, call_event call) override;
  void publish_stats(std::int64_t tenant_id, stats_event stats) override;
  bool watched(std::int64_t tenant_id) const override;
  void presence_changed(std::int64_t operator_id) override;
  void presence_notified(store::operator_presence row) override;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace switchboard::desk
