// Why: csta_link's TLS path (handshake, CA verification, plain peer) had no test at all.
#include "coro_test.hpp"
#include "switchboard/csta/framer.hpp"
#include "switchboard/csta/link.hpp"
#include "switchboard/log.hpp"

#include <spdlog/sinks/ringbuffer_sink.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>
#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <filesystem>

namespace switchboard::csta {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A self-signed certificate for localhost / 127.0.0.1, made once per run with the openssl CLI.
struct tls_files {
  std::string cert;
  std::string key;
};

const tls_files& self_signed() {
  static const tls_files files = [] {
    const auto dir = std::filesystem::path(::testing::TempDir()) / ("csta-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    tls_files f{(dir / "cert.pem").string(), (dir / "key.pem").string()};
    const std::string command =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
        f.key + " -out " + f.cert + " 2>&1";
    std::string output;
    if (FILE* p = ::popen(command.c_str(), "r")) {
      std::array<char, 512> buf;
      while (std::fgets(buf.data(), buf.size(), p)) output += buf.data();
      if (::pclose(p) != 0) ADD_FAILURE() << "openssl failed: " << output;
    } else {
      ADD_FAILURE() << "cannot run openssl";
    }
    return f;
  }();
  return files;
}

// The PBX side, over TLS (with `files`) or plain TCP: accepts one connection at a time, reads
// frames into an inbox (answering heartbeats), and sends what the test scripts.
class fake_pbx {
 public:
  fake_pbx(asio::any_io_executor ex, std::optional<tls_files> files)
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

  // One connection (with its TLS handshake); false on timeout or a failed handshake.
  asio::awaitable<bool> accept(std::chrono::milliseconds limit = 5s) {
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

  template <class T>
  asio::awaitable<bool> answer(const message& response) {
    return answer_with<T>(std::make_shared<const message>(response));
  }

  int handshake_failures = 0;

 private:
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
      auto [ec, n] = tls_ ? co_await s->async_read_some(asio::buffer(buf), use_tuple)
                          : co_await s->next_layer().async_read_some(asio::buffer(buf), use_tuple);
      if (ec) co_return;
      f.feed(std::string_view(buf.data(), n));
      for (auto next = f.next(); next && *next; next = f.next()) {
        auto m = decode((*next)->xml);
        if (!m || s != stream_) continue;  // a TLS ClientHello on the plain PBX is no frame
        const int id = (*next)->invoke_id;
        if (std::holds_alternative<request_system_status>(*m)) {
          const message pong = request_system_status_response{"normal"};
          co_await send(id, pong);
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

link_config tls_config(std::uint16_t port) {
  link_config c;
  c.port = port;
  c.tls = true;
  c.tls_verify = true;
  c.devices = {"4711"};
  c.route_points = {"800"};
  c.connect_timeout = 1000ms;
  c.request_timeout = 1000ms;
  c.write_timeout = 1000ms;
  c.heartbeat_interval = 200ms;
  c.heartbeat_misses = 5;
  c.reconnect_initial = 20ms;
  c.reconnect_max = 100ms;
  return c;
}

// The system_status session: SystemStatus / SystemRegister, RouteRegister, MonitorStart and the
// snapshots (the same script as link_test). False at the first step that did not come.
asio::awaitable<bool> serve_handshake(fake_pbx& pbx) {
  if (!co_await pbx.accept()) co_return false;
  const message status = system_status{std::nullopt, "normal"};
  co_await pbx.send(3, status);
  auto status_answer = co_await pbx.expect<system_status_response>();
  if (!status_answer || status_answer->first != 3) co_return false;
  const message registered = system_register_response{"27"};
  if (!co_await pbx.answer<system_register>(registered)) co_return false;
  auto rr = co_await pbx.expect<route_register>();
  if (!rr || rr->second.routeing_device != "800") co_return false;
  const message rr_response = route_register_response{"12"};
  co_await pbx.send(rr->first, rr_response);
  const std::array<std::string, 2> devices = {"800", "4711"};
  for (const auto& device : devices) {
    auto ms = co_await pbx.expect<monitor_start>();
    if (!ms || ms->second.device != device) co_return false;
    const message started = monitor_start_response{"m" + device};
    co_await pbx.send(ms->first, started);
  }
  const std::array<std::string, 2> snapshot_order = {"4711", "800"};  // phones before route points
  for (const auto& device : snapshot_order) {
    auto snap = co_await pbx.expect<snapshot_device>();
    if (!snap || snap->second.snapshot_object != device) co_return false;
    snapshot_device_response response;
    response.items.push_back(snapshot_item{{"C1", device}, {local_connection_state::connected}});
    const message answer = response;
    co_await pbx.send(snap->first, answer);
  }
  co_return true;
}

// Counts the link's events and keeps the "csta" log lines (where connect failures are reported).
struct csta_link_tls : ::testing::Test {
  asio::io_context loop;
  std::vector<pbx::event> events;
  std::shared_ptr<csta_link> link;
  std::optional<fake_pbx> pbx_storage;  // outlives the test body: its read loop ends in TearDown
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_lines =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(self_signed().cert));
    logger("csta")->sinks().push_back(log_lines);
  }

  template <class T>
  std::size_t count() const {
    std::size_t n = 0;
    for (const auto& e : events) n += std::holds_alternative<T>(e) ? 1 : 0;
    return n;
  }
  template <class T>
  asio::awaitable<bool> wait_for(std::size_t n = 1, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (count<T>() < n) {
      if (std::chrono::steady_clock::now() >= until) co_return false;
      co_await testing::sleep_for(5ms);
    }
    co_return true;
  }
  bool logged(const std::string& text) const {
    for (const auto& line : log_lines->last_formatted()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  fake_pbx& make_pbx(std::optional<tls_files> files) { return pbx_storage.emplace(loop.get_executor(), files); }

  void start(link_config config) {
    link = csta_link::create(loop.get_executor(), std::move(config));
    link->on_event([this](const pbx::event& e) { events.push_back(e); });
    link->start();
  }
  void TearDown() override {
    if (link) link->stop();
    if (pbx_storage) pbx_storage->close();
    loop.run_for(200ms);  // let the link's and the PBX's coroutines finish
    pbx_storage.reset();
    auto& sinks = logger("csta")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), log_lines), sinks.end());
  }
};

TEST_F(csta_link_tls, TlsTrustedCertificateLinksUpAndCarriesRequests) {
  auto& pbx = make_pbx(self_signed());
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto config = tls_config(pbx.port());
    config.tls_ca_file = self_signed().cert;
    start(config);
    CO_ASSERT_TRUE(co_await serve_handshake(pbx));
    CO_ASSERT_TRUE(co_await wait_for<pbx::link_up>());
    CO_ASSERT_TRUE(co_await wait_for<pbx::resynced>(2));
    EXPECT_TRUE(link->is_up());
    EXPECT_EQ(pbx.handshake_failures, 0);
    // One request and its response over the TLS session.
    pbx::hold_call hold{{"C1", "4711"}};
    auto held_op = link->execute(std::move(hold));
    const message hold_answer = hold_call_response{};
    auto answer_op = pbx.answer<hold_call>(hold_answer);
    auto [held, answered] = co_await (std::move(held_op) && std::move(answer_op));
    CO_ASSERT_TRUE(answered);
    EXPECT_TRUE(held.has_value());
    EXPECT_TRUE(link->is_up());
    EXPECT_EQ(count<pbx::link_down>(), 0u);
  });
}

TEST_F(csta_link_tls, TlsUntrustedCertificateNeverLinksUp) {
  auto& pbx = make_pbx(self_signed());
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    start(tls_config(pbx.port()));  // verify on, no CA file: the self-signed certificate is unknown
    for (int attempt = 0; attempt < 3; ++attempt) {
      CO_ASSERT_FALSE(co_await pbx.accept());  // the link reconnects, and refuses the certificate each time
    }
    EXPECT_EQ(pbx.handshake_failures, 3);
    EXPECT_FALSE(link->is_up());
    EXPECT_NE(link->state(), link_state::up);
    EXPECT_EQ(count<pbx::link_up>(), 0u);
    EXPECT_TRUE(logged("TLS: certificate verify failed")) << "the handshake failure is reported";
    pbx::hold_call hold{{"C1", "4711"}};
    auto r = co_await link->execute(std::move(hold));
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::pbx_link_down));
  });
}

TEST_F(csta_link_tls, TlsAgainstAPlainPbxFailsCleanly) {
  auto& pbx = make_pbx(std::nullopt);
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto config = tls_config(pbx.port());
    config.tls_ca_file = self_signed().cert;
    start(config);
    for (int attempt = 0; attempt < 2; ++attempt) {
      // The plain PBX opens with SystemStatus in clear text where the link expects a ServerHello.
      CO_ASSERT_TRUE(co_await pbx.accept());
      const message status = system_status{std::nullopt, "normal"};
      co_await pbx.send(3, status);
    }
    CO_ASSERT_TRUE(co_await pbx.accept());  // and it keeps trying after each failed handshake
    EXPECT_FALSE(link->is_up());
    EXPECT_EQ(count<pbx::link_up>(), 0u);
    EXPECT_TRUE(logged("TLS: wrong version number")) << "the handshake failure is reported";
    pbx::hold_call hold{{"C1", "4711"}};
    auto r = co_await link->execute(std::move(hold));
    CO_ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::pbx_link_down));
  });
}

}  // namespace
}  // namespace switchboard::csta
