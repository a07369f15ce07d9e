// Health endpoint: one coroutine per HTTP connection, a deadline on every read.
#include "switchboard/app/health.hpp"

#include "switchboard/log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace switchboard::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct health_endpoint::state : std::enable_shared_from_this<health_endpoint::state> {
  tcp::acceptor acceptor;
  reporter report;
  metrics_reporter metrics;

  state(asio::any_io_executor loop, const tcp::endpoint& where, reporter r, metrics_reporter m)
      : acceptor(loop, where), report(std::move(r)), metrics(std::move(m)) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      stream.expires_after(std::chrono::seconds(10));
      auto [ec, n] = co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      http::response<http::string_body> response;
      response.version(request.version());
      response.set(http::field::server, "switchboard");
      response.set(http::field::content_type, "application/json");
      if (request.target() == "/health" || request.target() == "/") {
        auto h = report();
        response.result(h.healthy ? http::status::ok : http::status::service_unavailable);
        response.body() = h.body + "\n";
      } else if (request.target() == "/metrics" && metrics) {
        response.result(http::status::ok);
        response.set(http::field::content_type, "text/plain; version=0.0.4");
        response.body() = metrics();
      } else {
        response.result(http::status::not_found);
        response.body() = R"({"error":"not found","try":["/health","/metrics"]})"
                          "\n";
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      auto [wec, w] = co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
      if (wec || !response.keep_alive()) co_return;
    }
  }

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(
          acceptor.get_executor(), [self, s = std::move(socket)]() mutable { return self->serve(std::move(s)); },
          asio::detached);
    }
  }
};

health_endpoint::health_endpoint(asio::any_io_executor loop, const tcp::endpoint& where, reporter report,
                                 metrics_reporter metrics)
    : state_(std::make_shared<state>(loop, where, std::move(report), std::move(metrics))) {
  auto s = state_;
  asio::co_spawn(
      loop, [s] { return s->accept_loop(); }, asio::detached);
}

health_endpoint::~health_endpoint() { stop(); }

tcp::endpoint health_endpoint::local_endpoint() const { return state_->acceptor.local_endpoint(); }

void health_endpoint::stop() {
  auto s = state_;
  asio::dispatch(s->acceptor.get_executor(), [s] {
    boost::system::error_code ignored;
    s->acceptor.close(ignored);
  });
}

}  // namespace switchboard::app
