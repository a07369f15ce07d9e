// Why: csta_link's TLS path (handshake, CA verification, plain peer) had no test at all.
#include "coro_test.hpp"
#include "fake_pbx.hpp"
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

using testing_pbx::fake_pbx;
using testing_pbx::tls_files;

// A self-signed certificate for localhost / 127.0.0.1, made once per run with the openssl CLI.
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

// Counts the link's events and keeps the "csta" log lines (where connect failures are reported).
struct csta_link_tls : ::testing::Test, testing_pbx::recorder {
  asio::io_context loop;
  std::shared_ptr<csta_link> link;
  std::optional<fake_pbx> pbx_storage;  // outlives the test body: its read loop ends in TearDown
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_lines =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);

  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(self_signed().cert));
    logger("csta")->sinks().push_back(log_lines);
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
    CO_ASSERT_TRUE(co_await testing_pbx::serve_system_status_handshake(pbx));
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
  pbx.frames_must_decode = false;  // the link's TLS ClientHello is no CSTA frame
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
