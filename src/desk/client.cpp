// The desktop-side connection: a reader that frames and decodes into a queue, and a writer that
// drains an unbounded send queue (the client is ours; the server bounds what it queues).
#include "switchboard/desk/client.hpp"

#include "transport.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>

namespace switchboard::desk {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using detail::use_tuple;

struct client::state : std::enable_shared_from_this<client::state> {
  asio::any_io_executor executor;
  client_options options;
  std::optional<ssl::context> tls;
  std::optional<detail::transport> stream;
  std::deque<std::string> outbox;
  std::deque<server_message> inbox;
  std::optional<error> failure;  // why the connection ended
  asio::steady_timer wake_writer;
  asio::steady_timer wake_reader;  // signals a waiting receive()
  bool open = false;
  std::int64_t next_id = 0;

  state(asio::any_io_executor ex, client_options o)
      : executor(ex), options(std::move(o)), wake_writer(ex), wake_reader(ex) {}

  void end(error why) {
    if (!failure) failure = std::move(why);
    open = false;
    if (stream) stream->close();
    wake_writer.cancel();
    wake_reader.cancel();
  }

  asio::awaitable<void> reader() {
    auto self = shared_from_this();
    line_framer framer(options.max_line_bytes);
    std::vector<char> storage(16384);
    while (open) {
      auto [ec, n] = co_await stream->read_some(asio::buffer(storage));
      if (ec) {
        end({errc::cancelled, "connection closed: " + ec.message()});
        break;
      }
      std::string_view input(storage.data(), n);
      for (;;) {
        auto f = framer.next(input);
        if (f.what == line_framer::status::need_more) break;
        if (f.what == line_framer::status::too_long) {
          end({errc::desk_line_too_long, "from the server"});
          break;
        }
        auto m = decode_server_message(f.line);
        if (!m) {
          end(m.error().err);
          break;
        }
        inbox.push_back(std::move(*m));
      }
      wake_reader.cancel();
    }
  }

  asio::awaitable<void> writer() {
    auto self = shared_from_this();
    std::vector<std::string> batch;
    std::vector<asio::const_buffer> pieces;
    while (open) {
      if (outbox.empty()) {
        wake_writer.expires_at(asio::steady_timer::time_point::max());
        co_await wake_writer.async_wait(use_tuple);
        continue;
      }
      batch.assign(std::make_move_iterator(outbox.begin()), std::make_move_iterator(outbox.end()));
      outbox.clear();
      pieces.clear();
      for (const auto& b : batch) pieces.emplace_back(asio::buffer(b));
      auto [ec, n] = co_await stream->write(pieces);
      if (ec) {
        end({errc::cancelled, "write failed: " + ec.message()});
        break;
      }
    }
  }
};

client::client(asio::any_io_executor executor, client_options options)
    : state_(std::make_shared<state>(std::move(executor), std::move(options))) {}

client::~client() { close(); }

asio::awaitable<result<void>> client::connect(const std::string& host, std::uint16_t port) {
  auto s = state_;
  tcp::resolver resolver(s->executor);
  auto [rec, endpoints] = co_await resolver.async_resolve(host, std::to_string(port), use_tuple);
  if (rec) co_return error{errc::cancelled, "resolve " + host + ": " + rec.message()};
  tcp::socket socket(s->executor);
  auto [cec, at] = co_await asio::async_connect(socket, endpoints, use_tuple);
  if (cec) co_return error{errc::cancelled, "connect " + host + ":" + std::to_string(port) + ": " + cec.message()};
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (s->options.receive_buffer > 0)
    socket.set_option(asio::socket_base::receive_buffer_size(s->options.receive_buffer), ignored);
  if (s->options.tls) {
    s->tls.emplace(ssl::context::tls_client);
    if (s->options.verify_peer) {
      boost::system::error_code ec;
      if (s->options.ca_file.empty())
        s->tls->set_default_verify_paths(ec);
      else
        s->tls->load_verify_file(s->options.ca_file, ec);
      if (ec) co_return error{errc::config_invalid, "CA file " + s->options.ca_file + ": " + ec.message()};
      s->tls->set_verify_mode(ssl::verify_peer);
    }
    s->stream.emplace(std::move(socket), *s->tls);
    if (s->options.verify_peer) s->stream->tls()->set_verify_callback(ssl::host_name_verification(host));
    SSL_set_tlsext_host_name(s->stream->tls()->native_handle(), host.c_str());
    if (auto ec = co_await s->stream->handshake(ssl::stream_base::client))
      co_return error{errc::cancelled, "TLS handshake: " + ec.message()};
  } else {
    s->stream.emplace(std::move(socket));
  }
  s->open = true;
  asio::co_spawn(
      s->executor, [s] { return s->reader(); }, asio::detached);
  asio::co_spawn(
      s->executor, [s] { return s->writer(); }, asio::detached);
  co_return result<void>{};
}

request_id client::send(request_body body, std::optional<request_id> id) {
  request_id chosen = id ? *id : request_id{++state_->next_id};
  send_raw(encode(desk::request{chosen, std::move(body)}));
  return chosen;
}

void client::send_raw(std::string bytes) {
  state_->outbox.push_back(std::move(bytes));
  state_->wake_writer.cancel();
}

asio::awaitable<result<server_message>> client::receive(std::chrono::milliseconds timeout) {
  auto s = state_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (s->inbox.empty()) {
    if (s->failure && !s->open) co_return *s->failure;
    if (!s->open) co_return error{errc::cancelled, "not connected"};
    if (std::chrono::steady_clock::now() >= deadline) co_return error{errc::cancelled, "timed out"};
    s->wake_reader.expires_at(deadline);
    co_await s->wake_reader.async_wait(use_tuple);
  }
  auto m = std::move(s->inbox.front());
  s->inbox.pop_front();
  co_return m;
}

asio::awaitable<result<server_message>> client::request(request_body body, std::chrono::milliseconds timeout) {
  auto id = send(std::move(body));
  std::deque<server_message> events;
  result<server_message> out = error{errc::cancelled};
  for (;;) {
    auto m = co_await receive(timeout);
    if (!m) {
      out = m.error();
      break;
    }
    const request_id* reply_id = nullptr;
    if (auto* ok = std::get_if<ok_reply>(&*m)) reply_id = &ok->id;
    if (auto* pong = std::get_if<pong_reply>(&*m)) reply_id = &pong->id;
    if (auto* err = std::get_if<error_reply>(&*m); err && err->id) reply_id = &*err->id;
    if (reply_id && *reply_id == id) {
      out = std::move(*m);
      break;
    }
    events.push_back(std::move(*m));
  }
  // events seen while waiting go back in front, in order
  state_->inbox.insert(state_->inbox.begin(), std::make_move_iterator(events.begin()),
                       std::make_move_iterator(events.end()));
  co_return out;
}

bool client::connected() const noexcept { return state_->open; }

void client::close() {
  if (state_->stream) state_->end({errc::cancelled, "closed by the client"});
}

}  // namespace switchboard::desk
