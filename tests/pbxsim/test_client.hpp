// A tiny CSTA client for the simulator's loopback tests, built on the csta framer and codec:
// send a message with an invoke id, wait for a frame of a given type. Deadlines only keep a
// broken test from hanging; no test asserts on time.
#pragma once

#include "switchboard/csta/codec.hpp"
#include "switchboard/csta/framer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace switchboard::pbxsim::testing {

struct received {
  int invoke = 0;
  csta::message message;
};

class test_client {
 public:
  explicit test_client(boost::asio::any_io_executor ex) : socket_(ex) {}

  boost::asio::awaitable<void> connect(std::uint16_t port) {
    co_await socket_.async_connect({boost::asio::ip::make_address("127.0.0.1"), port}, boost::asio::use_awaitable);
  }

  boost::asio::awaitable<void> send(const csta::message& m, int invoke) {
    std::string frame;
    if (!csta::encode_frame(m, invoke, frame)) throw std::runtime_error("cannot encode");
    co_await boost::asio::async_write(socket_, boost::asio::buffer(frame), boost::asio::use_awaitable);
  }

  // Raw bytes, for the tests that send what a codec would not.
  boost::asio::awaitable<void> send_bytes(std::string bytes) {
    co_await boost::asio::async_write(socket_, boost::asio::buffer(bytes), boost::asio::use_awaitable);
  }

  // The next frame, or std::nullopt when the connection closed, the stream is broken or nothing
  // came within `limit`.
  boost::asio::awaitable<std::optional<received>> next(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    if (!backlog_.empty()) {
      auto r = std::move(backlog_.front());
      backlog_.pop_front();
      co_return r;
    }
    co_return co_await read_frame(limit);
  }

  // The first message of type T (others stay queued for later), or std::nullopt as next().
  template <class T>
  boost::asio::awaitable<std::optional<std::pair<int, T>>> wait_for(
      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    for (auto it = backlog_.begin(); it != backlog_.end(); ++it) {
      if (auto* m = std::get_if<T>(&it->message)) {
        std::pair<int, T> out{it->invoke, std::move(*m)};
        backlog_.erase(it);
        co_return out;
      }
    }
    while (auto r = co_await read_frame(limit)) {
      if (auto* m = std::get_if<T>(&r->message)) co_return std::pair<int, T>{r->invoke, std::move(*m)};
      backlog_.push_back(std::move(*r));
    }
    co_return std::nullopt;
  }

  // Sends a request and waits for the frame with its invoke id.
  boost::asio::awaitable<std::optional<csta::message>> request(const csta::message& m, int invoke) {
    co_await send(m, invoke);
    for (auto it = backlog_.begin(); it != backlog_.end(); ++it) {
      if (it->invoke == invoke) {
        auto out = std::move(it->message);
        backlog_.erase(it);
        co_return out;
      }
    }
    while (auto r = co_await read_frame(std::chrono::seconds(10))) {
      if (r->invoke == invoke) co_return std::move(r->message);
      backlog_.push_back(std::move(*r));
    }
    co_return std::nullopt;
  }

  // Waits until the server closes the connection (true), or `limit` passes (false).
  boost::asio::awaitable<bool> closed_by_peer(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    while (!broken_) {
      if (!co_await read_frame(limit) && !broken_) co_return false;
    }
    co_return true;
  }

  bool broken() const noexcept { return broken_; }
  const std::optional<error>& stream_error() const noexcept { return stream_error_; }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }
  std::deque<received>& backlog() { return backlog_; }

 private:
  boost::asio::awaitable<std::optional<received>> read_frame(std::chrono::milliseconds limit) {
    using namespace boost::asio::experimental::awaitable_operators;
    constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
    while (!broken_) {
      auto f = framer_.next();
      if (!f) {
        stream_error_ = f.error();
        broken_ = true;
        co_return std::nullopt;
      }
      if (*f) {
        auto decoded = csta::decode((*f)->xml);
        if (!decoded) {
          stream_error_ = decoded.error();
          co_return std::nullopt;
        }
        co_return received{(*f)->invoke_id, std::move(*decoded)};
      }
      boost::asio::steady_timer timer(socket_.get_executor(), limit);
      auto result =
          co_await (socket_.async_read_some(boost::asio::buffer(buffer_), nothrow) || timer.async_wait(nothrow));
      if (result.index() == 1) co_return std::nullopt;  // nothing within the limit
      const auto [ec, n] = std::get<0>(result);
      if (ec) {
        broken_ = true;
        co_return std::nullopt;
      }
      framer_.feed(std::string_view(buffer_.data(), n));
    }
    co_return std::nullopt;
  }

  boost::asio::ip::tcp::socket socket_;
  csta::framer framer_;
  std::array<char, 16384> buffer_{};
  std::deque<received> backlog_;
  bool broken_ = false;
  std::optional<error> stream_error_;
};

}  // namespace switchboard::pbxsim::testing
