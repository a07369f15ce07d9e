// Desktop channel figures (not a test): (1) many idle desktops logged in and pinging — the
// server's RSS and CPU; (2) the time to deliver one statistics update to 1,000 supervisors.
// The idle desktops run in a child process so the server's own RSS and CPU are measured.
//   SWITCHBOARD_BENCH_DATABASE_URL=postgresql://... bench_desk [idle_desktops=20000] [supervisors=1000]
#include "bench_database.hpp"
#include "switchboard/desk/client.hpp"
#include "switchboard/desk/scripted.hpp"
#include "switchboard/desk/server.hpp"
#include "switchboard/log.hpp"
#include "switchboard/store/pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <pqxx/pqxx>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <thread>

namespace asio = boost::asio;
using namespace switchboard;
using namespace switchboard::desk;
using steady = std::chrono::steady_clock;

namespace {

// Calls of this bench never reach the PBX.
class no_calls final : public command_handler {
 public:
  asio::awaitable<result<void>> execute(const operator_context&, const call_command&) override {
    co_return error{errc::pbx_link_down, "benchmark"};
  }
};

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// As many descriptors as allowed (root may raise the hard limit too).
rlim_t raise_fd_limit(rlim_t wanted) {
  rlimit l{};
  getrlimit(RLIMIT_NOFILE, &l);
  rlimit want{wanted, std::max(wanted, l.rlim_max)};
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  getrlimit(RLIMIT_NOFILE, &l);
  return l.rlim_cur;
}

// The database URL and the supervisors' tenant.
std::pair<std::string, std::int64_t> create_database(const std::string& admin_url, int idle, int supervisors) {
  const std::string name = "bench_desk_" + std::to_string(::getpid());
  const auto url = switchboard::bench::create_migrated_database(admin_url, name);
  pqxx::connection c(url);
  pqxx::work tx(c);
  tx.exec(
      "INSERT INTO tenants (code, name) VALUES ('idle', 'Idle desktops'), ('sup', 'Supervisors');"
      "CREATE TEMP TABLE h AS SELECT crypt('pw', gen_salt('bf', 4)) AS hash;"
      "INSERT INTO operators (tenant_id, login, password_hash, extension, role) "
      "SELECT (SELECT tenant_id FROM tenants WHERE code = 'idle'), 'op' || i, (SELECT hash FROM h), 'e' || i, "
      "'operator' FROM generate_series(1, " +
      std::to_string(idle) +
      ") i;"
      "INSERT INTO operators (tenant_id, login, password_hash, extension, role) "
      "SELECT (SELECT tenant_id FROM tenants WHERE code = 'sup'), 'sv' || i, (SELECT hash FROM h), 's' || i, "
      "'supervisor' FROM generate_series(1, " +
      std::to_string(supervisors) + ") i;");
  const auto tenant = tx.exec1("SELECT tenant_id FROM tenants WHERE code = 'sup'")[0].as<std::int64_t>();
  tx.commit();
  return {url, tenant};
}

// The child: idle desktops that log in (in waves) and ping every heartbeat until killed.
[[noreturn]] void run_idle_desktops(int read_fd, int count) {
  std::uint16_t port = 0;
  if (::read(read_fd, &port, sizeof port) != sizeof port) _exit(3);
  asio::io_context loop(1);
  script s;
  s.port = port;
  s.tenant = "idle";
  s.password = "pw";
  s.auto_ready = false;
  s.connection.max_line_bytes = 1 << 16;
  script_stats stats;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        for (int i = 1; i <= count; ++i) {
          asio::co_spawn(loop, play_operator(s, "op" + std::to_string(i), stats, [] { return false; }), asio::detached);
          if (i % 500 == 0)  // a wave: let the accept backlog and the logins catch up
            while (stats.logged_in + stats.errors + stats.disconnected < i) {
              asio::steady_timer t(loop, std::chrono::milliseconds(20));
              co_await t.async_wait(asio::use_awaitable);
            }
        }
      },
      asio::detached);
  loop.run();
  _exit(0);
}

template <class F>
auto on_loop(asio::io_context& loop, F f) {
  std::promise<decltype(f())> p;
  auto fut = p.get_future();
  asio::post(loop, [&] { p.set_value(f()); });
  return fut.get();
}

}  // namespace

int main(int argc, char** argv) {
  int idle = argc > 1 ? std::atoi(argv[1]) : 20000;
  const int supervisors = argc > 2 ? std::atoi(argv[2]) : 1000;
  const char* url_env = std::getenv("SWITCHBOARD_BENCH_DATABASE_URL");
  if (!url_env) url_env = std::getenv("SWITCHBOARD_TEST_DATABASE_URL");
  if (!url_env) {
    std::fprintf(stderr, "set SWITCHBOARD_BENCH_DATABASE_URL (e.g. scripts/pg start DIR prints one)\n");
    return 2;
  }
  set_log_level("warn");
  const auto limit = raise_fd_limit(static_cast<rlim_t>(idle + 2 * supervisors + 1000));
  // the server holds one descriptor per desktop plus a few hundred of its own (pool, logs)
  idle = std::min(idle, static_cast<int>(limit) - 300);
  const auto [url, sup_tenant] = create_database(url_env, idle, supervisors);

  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 3;
  const pid_t child = ::fork();  // before any thread exists
  if (child == 0) run_idle_desktops(pipe_fds[0], idle);

  const long rss_start = rss_kib();
  asio::io_context loop(1);
  store::connection_pool pool({.url = url, .size = 4});
  no_calls calls;
  server_config config;
  config.listen_address = "127.0.0.1";
  config.port = 0;
  config.max_connections = static_cast<std::size_t>(idle + supervisors + 100);
  config.resume_grace = std::chrono::minutes(10);  // no presence storm when the bench ends
  config.outbox_max_messages = 1 << 20;            // supervisors logging in tell each other
  config.outbox_max_bytes = 1 << 30;
  config.max_failed_logins_per_address = 1 << 30;
  config.idle_timeout = std::chrono::minutes(10);   // the supervisor clients below do not ping
  config.write_timeout = std::chrono::seconds(60);  // 1,000 supervisors logging in read 150 MB of tenant views
  server srv(loop.get_executor(), config, pool, calls);
  if (auto ok = srv.start(); !ok) {
    std::fprintf(stderr, "%s\n", ok.error().message().c_str());
    return 1;
  }
  const std::uint16_t port = srv.local_endpoint().port();
  if (::write(pipe_fds[1], &port, sizeof port) != sizeof port) return 3;
  auto work = asio::make_work_guard(loop);
  std::thread server_thread([&] { loop.run(); });

  // (1) idle desktops
  const auto t0 = steady::now();
  std::size_t sessions = 0;
  while (steady::now() - t0 < std::chrono::minutes(10)) {
    sessions = on_loop(loop, [&] { return srv.session_count(); });
    if (sessions >= static_cast<std::size_t>(idle)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const double login_seconds = std::chrono::duration<double>(steady::now() - t0).count();
  const long rss_idle = rss_kib();
  const double cpu0 = cpu_seconds();
  const int window = 30;
  std::this_thread::sleep_for(std::chrono::seconds(window));
  const double cpu1 = cpu_seconds();
  const auto connections = on_loop(loop, [&] { return srv.connection_count(); });
  std::printf("fd limit %llu\n", static_cast<unsigned long long>(limit));
  std::printf("idle desktops: %zu logged in (%zu connections) in %.1f s\n", sessions, connections, login_seconds);
  std::printf("server RSS: %ld MiB before, %ld MiB with them (%.1f KiB per desktop)\n", rss_start / 1024,
              rss_idle / 1024,
              sessions ? static_cast<double>(rss_idle - rss_start) / static_cast<double>(sessions) : 0.0);
  std::printf("server CPU while idle (10 s heartbeats): %.2f %% of one core over %d s\n",
              100.0 * (cpu1 - cpu0) / window, window);
  std::fflush(stdout);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);

  // (2) one statistics update to many supervisors
  asio::io_context desks(1);
  std::vector<std::unique_ptr<client>> sups;
  std::atomic<int> ready{0}, got{0};
  for (int i = 1; i <= supervisors; ++i)
    sups.push_back(std::make_unique<client>(desks.get_executor(), client_options{.max_line_bytes = 64 << 20}));
  // supervisors log in by waves of 50, each waiting for its tenant view
  asio::co_spawn(
      desks,
      [&]() -> asio::awaitable<void> {
        for (int i = 1; i <= supervisors; ++i) {
          asio::co_spawn(
              desks,
              [&, c = sups[static_cast<std::size_t>(i - 1)].get(), i]() -> asio::awaitable<void> {
                if (!co_await c->connect("127.0.0.1", port)) co_return;
                co_await c->request(req::hello{});
                auto in = co_await c->request(req::login{"sup", "sv" + std::to_string(i), "pw", ""});
                if (!in || !std::holds_alternative<ok_reply>(*in)) co_return;
                if (!co_await c->expect<tenant_event>()) co_return;
                ++ready;
                for (;;) {
                  auto st = co_await c->expect<stats_event>(std::chrono::minutes(10));
                  if (!st) co_return;
                  ++got;
                }
              },
              asio::detached);
          if (i % 50 == 0)
            while (ready < i) {
              asio::steady_timer t(desks, std::chrono::milliseconds(20));
              co_await t.async_wait(asio::use_awaitable);
            }
        }
      },
      asio::detached);
  auto desk_work = asio::make_work_guard(desks);
  std::thread desk_thread([&] { desks.run(); });
  const auto login_start = steady::now();
  while (ready < supervisors && steady::now() - login_start < std::chrono::minutes(3))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const int listening = ready.load();
  std::printf("supervisors logged in: %d of %d in %.1f s\n", listening, supervisors,
              std::chrono::duration<double>(steady::now() - login_start).count());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the login chatter settles
  std::vector<double> ms;
  for (int round = 1; round <= 20; ++round) {
    got = 0;
    stats_event ev{"bench", {{1, "Support", round, 12.5, 10, 20, 300, 4, 91.5}}};
    const auto start = steady::now();
    asio::post(loop, [&srv, ev, tenant = sup_tenant] { srv.publish_stats(tenant, ev); });
    while (got < listening && steady::now() - start < std::chrono::seconds(30))
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    ms.push_back(std::chrono::duration<double, std::milli>(steady::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("stats update to %d supervisors: median %.2f ms, min %.2f ms, max %.2f ms (20 rounds)\n", listening,
              ms[ms.size() / 2], ms.front(), ms.back());
  desks.stop();
  desk_thread.join();
  asio::post(loop, [&] { srv.stop(); });
  work.reset();
  loop.stop();
  server_thread.join();
  return 0;
}
