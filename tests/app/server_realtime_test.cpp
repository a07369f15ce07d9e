// The real-time governor in a running server (app/server.cpp): with a limit of 1 % of the host's
// CPUs, an event loop kept busy answering /metrics gives SCHED_FIFO up, and takes it again once
// left alone. Nothing here depends on speed: the load goes on until the server says it gave the
// priority up, and the wait for it to come back ends when it does (a limit only catches a hang).
#include "switchboard/app/server.hpp"
#include "switchboard/realtime.hpp"
#include "test_database.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace switchboard {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// GET /metrics: the text, or nothing while the server does not answer.
std::optional<std::string> metrics_of(std::uint16_t port) {
  try {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::write(s, asio::buffer(std::string("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")));
    std::string response;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(response), ec);
    const auto body = response.find("\r\n\r\n");
    if (body == std::string::npos) return std::nullopt;
    return response.substr(body + 4);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool shows(const std::optional<std::string>& text, const std::string& line) {
  return text && text->find("\n" + line + "\n") != std::string::npos;
}

// Polls `done` until it holds or `limit` passes (then false): a guard against a hang, not a timing.
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit, std::chrono::milliseconds pause) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(pause);
  }
  return done();
}

bool may_use_realtime() {
  result<void> made;
  std::thread([&] { made = make_realtime(1); }).join();
  return made.has_value();
}

TEST(ServerRealtime, AServerOverItsRealtimeCpuLimitGivesSchedFifoUpAndTakesItAgainWhenLeftAlone) {
  if (!may_use_realtime()) GTEST_SKIP() << "needs root or CAP_SYS_NICE";
  testing::test_database db;
  app::config cfg;
  cfg.database.url = db.url();
  cfg.database.routing_pool_size = 1;
  cfg.health.port = free_port();
  cfg.pbx.enabled = false;
  cfg.desk.enabled = false;
  cfg.scheduling.realtime_priority = 10;
  cfg.scheduling.realtime_cpu_limit = 1;  // 1 % of the host's CPUs: a busy loop is far above it
  app::server server(cfg);
  std::thread running([&] { server.run(); });
  const auto port = cfg.health.port;

  EXPECT_TRUE(eventually([&] { return metrics_of(port).has_value(); }, 120s, 50ms)) << "the server answers";
  // Keeps its loop busy, back to back, until it says it gave the priority up.
  EXPECT_TRUE(eventually([&] { return shows(metrics_of(port), "switchboard_realtime_demotions_total 1"); }, 300s, 0ms));
  const auto demoted = metrics_of(port);
  EXPECT_TRUE(shows(demoted, "switchboard_realtime_active 0")) << demoted.value_or("");
  // Left alone (a look every two seconds), its path goes quiet and takes the priority again.
  EXPECT_TRUE(eventually([&] { return shows(metrics_of(port), "switchboard_realtime_active 1"); }, 300s, 2000ms));

  server.stop();
  running.join();
}

}  // namespace
}  // namespace switchboard
