// A TCP socket or a TLS stream over one, behind one small interface: the only code in the desk
// part (server and client) that knows which.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <tuple>
#include <variant>
#include <vector>

namespace switchboard::desk::detail {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

class transport {
 public:
  explicit transport(tcp::socket s) : stream_(std::move(s)) {}
  transport(tcp::socket s, ssl::context& ctx)
      : stream_(std::in_place_type<ssl::stream<tcp::socket>>, std::move(s), ctx) {}

  tcp::socket& socket() {
    if (auto* plain = std::get_if<tcp::socket>(&stream_)) return *plain;
    return std::get<ssl::stream<tcp::socket>>(stream_).next_layer();
  }

  ssl::stream<tcp::socket>* tls() { return std::get_if<ssl::stream<tcp::socket>>(&stream_); }

  asio::awaitable<boost::system::error_code> handshake(ssl::stream_base::handshake_type side) {
    if (auto* t = tls()) {
      auto [ec] = co_await t->async_handshake(side, use_tuple);
      co_return ec;
    }
    co_return boost::system::error_code{};
  }

  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    return std::visit([&](auto& s) { return s.async_read_some(b, use_tuple); }, stream_);
  }

  asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write(const std::vector<asio::const_buffer>& b) {
    return std::visit([&](auto& s) { return asio::async_write(s, b, use_tuple); }, stream_);
  }

  void close() {
    boost::system::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

 private:
  std::variant<tcp::socket, ssl::stream<tcp::socket>> stream_;
};

}  // namespace switchboard::desk::detail
