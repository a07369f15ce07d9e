// A desktop-side connection (the terminal client, its scripted operators, tests and the
// benchmark): connect (optionally TLS), send requests, read replies and events. A reader and a
// writer coroutine run behind it, so sending never waits for the peer to read.
#pragma once

#include "switchboard/desk/codec.hpp"
#include "switchboard/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace switchboard::desk {

struct client_options {
  bool tls = false;
  bool verify_peer = true;                // with tls: check the server's certificate against ca_file
  std::string ca_file;                    // PEM; empty: the system's trust store
  std::size_t max_line_bytes = 16 << 20;  // a supervisor's tenant view can be large
  int receive_buffer = 0;                 // SO_RCVBUF; 0: the system's default
};

class client {
 public:
  explicit client(boost::asio::any_io_executor executor, client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  boost::asio::awaitable<result<void>> connect(const std::string& host, std::uint16_t port);

  // Queues one request (an id is chosen when `id` is empty); returns the id.
  request_id send(request_body body, std::optional<request_id> id = std::nullopt);
  // Queues raw bytes (tests of bad input).
  void send_raw(std::string bytes);

  // The next message from the server; an error when the connection is closed or `timeout`
  // passes (errc::cancelled).
  boost::asio::awaitable<result<server_message>> receive(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

  // Sends `body` and waits for its reply (ok, error or pong); events read meanwhile are kept
  // for `receive`.
  boost::asio::awaitable<result<server_message>> request(
      request_body body, std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

  // Reads until a message of type T arrives (others are dropped); error when closed/timed out.
  template <class T>
  boost::asio::awaitable<result<T>> expect(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    for (;;) {
      auto m = co_await receive(timeout);
      if (!m) co_return m.error();
      if (auto* t = std::get_if<T>(&*m)) co_return std::move(*t);
    }
  }

  bool connected() const noexcept;
  void close();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::desk
