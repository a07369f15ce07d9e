// A scripted PBX on loopback for csta_link's tests, over plain TCP or TLS, built on the same
// framer and codec: it accepts one connection at a time, reads frames in the background into an
// inbox (answering heartbeats unless told to be silent) and sends what the test scripts.
#pragma once

#include "coro_test.hpp"
#include "switchboard/csta/codec.hpp"
#include "switchboard/csta/framer.hpp"
#include "switchboard/pbx/events.hpp"

#include <gtest/gtest.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace switchboard::csta::testing_pbx {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// The PBX's certificate and key (PEM files).
struct tls_files {
  std::string cert;
  std::string key;
};

class fake_pbx {
 public:
  // With `files`: TLS with that certificate; without: plain TCP.
  explicit fake_pbx(asio::any_io_executor ex, std::optional<tls_files> files = std::nullopt)
      : ex_(ex),
        ssl_(ssl::context::tls_server),
        tls_(files.has_value()),
        acceptor_(ex, {asio::ip::make_address("127.0.0.1"), 0}) {
    if (files) {
      ssl_.use_certificate_chain_file(files->cert);
      ssl_.use_private_key_file(files->key, ssl::context::pem);
    }
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  // Connections accepted from now on take only a few kilobytes before the PBX reads them (and a
  // deaf PBX stops the sender soon).
  void small_receive_buffer() { acceptor_.set_option(asio::socket_base::receive_buffer_size(4096)); }

  // One connection (with its TLS handshake); false on timeout or a failed handshake.
  asio::awaitable<bool> accept(std::chrono::milliseconds limit = 5s) {
    using namespace asio::experimental::awaitable_operators;
    close();
    asio::steady_timer t(ex_, limit);
    auto r = co_await (acceptor_.async_accept(use_tuple) || t.async_wait(use_tuple));
    if (r.index() != 0) co_return false;
    auto [ec, s] = std::move(std::get<0>(r));
    if (ec) co_return false;
    auto stream = std::make_shared<ssl::stream<tcp::socket>>(std::move(s), ssl_);
    if (tls_) {
      t.expires_after(limit);
      auto shaken = co_await (stream->async_handshake(ssl::stream_base::server, use_tuple) || t.async_wait(use_tuple));
      if (shaken.index() != 0 || std::get<0>(std::get<0>(shaken))) {
        handshake_failures++;
        co_return false;
      }
    }
    stream_ = stream;
    inbox_.clear();
    asio::co_spawn(ex_, read_loop(stream_), asio::detached);
    co_return true;
  }

  void close() {
    if (!stream_) return;
    boost::system::error_code ignored;
    stream_->next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->next_layer().close(ignored);
    stream_.reset();
  }

  // Not a coroutine: the message is encoded before anything suspends.
  asio::awaitable<void> send(int invoke_id, const message& m) {
    std::string frame;
    EXPECT_TRUE(encode_frame(m, invoke_id, frame).has_value());
    return write(stream_, tls_, std::move(frame));
  }

  // The first message of type T received (others stay queued), or nothing within `limit`.
  template <class T>
  asio::awaitable<std::optional<std::pair<int, T>>> expect(std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
        if (auto* t = std::get_if<T>(&it->second)) {
          std::pair<int, T> found{it->first, std::move(*t)};
          inbox_.erase(it);
          co_return found;
        }
      }
      co_await testing::sleep_for(5ms);
    }
    co_return std::nullopt;
  }

  // Answers the next T with `response` (same invoke id); false when no T came.
  template <class T>
  asio::awaitable<bool> answer(const message& response) {
    return answer_with<T>(std::make_shared<const message>(response));
  }

  bool silent = false;             // a PBX that stopped answering
  bool deaf = false;               // a PBX that stopped reading its socket (it can still send)
  bool frames_must_decode = true;  // false where a peer may send what is no frame (TLS to plain)
  int heartbeats_seen = 0;         // ResetApplicationSessionTimer requests answered
  int handshake_failures = 0;      // TLS handshakes that failed

 private:
  static constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  using stream_ptr = std::shared_ptr<ssl::stream<tcp::socket>>;

  static asio::awaitable<void> write(stream_ptr s, bool tls, std::string frame) {
    if (!s) co_return;
    if (tls) {
      co_await asio::async_write(*s, asio::buffer(frame), use_tuple);
    } else {
      co_await asio::async_write(s->next_layer(), asio::buffer(frame), use_tuple);
    }
  }

  template <class T>
  asio::awaitable<bool> answer_with(std::shared_ptr<const message> response) {
    auto got = co_await expect<T>();
    if (!got) co_return false;
    co_await send(got->first, *response);
    co_return true;
  }

  asio::awaitable<void> read_loop(stream_ptr s) {
    framer f;
    std::array<char, 4096> buf;
    for (;;) {
      while (deaf && s == stream_) co_await testing::sleep_for(10ms);
      auto [ec, n] = tls_ ? co_await s->async_read_some(asio::buffer(buf), use_tuple)
                          : co_await s->next_layer().async_read_some(asio::buffer(buf), use_tuple);
      if (ec) co_return;
      f.feed(std::string_view(buf.data(), n));
      for (auto next = f.next(); next && *next; next = f.next()) {
        auto m = decode((*next)->xml);
        if (frames_must_decode) EXPECT_TRUE(m.has_value());
        if (!m || silent || s != stream_) continue;
        const int id = (*next)->invoke_id;
        if (std::holds_alternative<request_system_status>(*m)) {
          co_await send(id, request_system_status_response{"normal"});
        } else if (std::holds_alternative<reset_application_session_timer>(*m)) {
          heartbeats_seen++;
          co_await send(id, reset_application_session_timer_pos_response{2});
        } else {
          inbox_.emplace_back(id, std::move(*m));
        }
      }
    }
  }

  asio::any_io_executor ex_;
  ssl::context ssl_;
  bool tls_;
  tcp::acceptor acceptor_;
  stream_ptr stream_;
  std::deque<std::pair<int, message>> inbox_;
};

// Plays the PBX through SystemStatus / SystemRegister, RouteRegister for "800", MonitorStart of
// "800" and "4711" and their snapshots (phones before route points). False at the first step
// that did not come.
inline asio::awaitable<bool> serve_system_status_handshake(fake_pbx& pbx, int status_invoke = 3) {
  if (!co_await pbx.accept()) co_return false;
  co_await pbx.send(status_invoke, system_status{std::nullopt, "normal"});
  auto status_answer = co_await pbx.expect<system_status_response>();
  if (!status_answer || status_answer->first != status_invoke) co_return false;
  if (!co_await pbx.answer<system_register>(system_register_response{"27"})) co_return false;
  auto rr = co_await pbx.expect<route_register>();
  if (!rr || rr->second.routeing_device != "800") co_return false;
  co_await pbx.send(rr->first, route_register_response{"12"});
  const std::array<std::string, 2> devices = {"800", "4711"};
  for (const auto& device : devices) {
    auto ms = co_await pbx.expect<monitor_start>();
    if (!ms || ms->second.device != device) co_return false;
    co_await pbx.send(ms->first, monitor_start_response{"m" + device});
  }
  const std::array<std::string, 2> snapshot_order = {"4711", "800"};
  for (const auto& device : snapshot_order) {
    auto snap = co_await pbx.expect<snapshot_device>();
    if (!snap || snap->second.snapshot_object != device) co_return false;
    snapshot_device_response response;
    response.items.push_back(snapshot_item{{"C1", device}, {local_connection_state::connected}});
    co_await pbx.send(snap->first, response);
  }
  co_return true;
}

// The events a link emitted, for tests to count and wait for.
struct recorder {
  std::vector<pbx::event> events;

  template <class T>
  std::size_t count() const {
    std::size_t n = 0;
    for (const auto& e : events) n += std::holds_alternative<T>(e) ? 1 : 0;
    return n;
  }
  // Waits until at least `n` events of type T were seen; false after `limit`.
  template <class T>
  asio::awaitable<bool> wait_for(std::size_t n = 1, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (count<T>() < n) {
      if (std::chrono::steady_clock::now() >= until) co_return false;
      co_await testing::sleep_for(5ms);
    }
    co_return true;
  }
  template <class T>
  const T& first() const {
    for (const auto& e : events) {
      if (auto* found = std::get_if<T>(&e)) return *found;
    }
    throw std::logic_error("no such event");
  }
  template <class T>
  const T& last() const {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (auto* e = std::get_if<T>(&*it)) return *e;
    }
    throw std::logic_error("no such event");
  }
};

}  // namespace switchboard::csta::testing_pbx
