// Route decisions against PostgreSQL: latency (p50/p99) of one offer_call and decisions per
// second at 1,000 and 10,000 operators (50 queues, 20 skills, 50 rules), beside one plain
// SELECT 1 round trip through the same pool in the same run, so the figures read as "x round
// trips". Beside the wall clock, the server's side of each sequential request: CPU time of its
// backend and time it waited for a CPU, which tell the work PostgreSQL does from the load of a
// shared machine. Needs SWITCHBOARD_BENCH_DATABASE_URL (an admin URL); makes, migrates and
// drops its own database (kept with SWITCHBOARD_BENCH_KEEP=1, for EXPLAIN ANALYZE by hand).
#include "switchboard/store/migrations.hpp"
#include "switchboard/store/pool.hpp"
#include "switchboard/store/routing_queries.hpp"

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace store = switchboard::store;
using clock_type = std::chrono::steady_clock;

constexpr int queues = 50;
constexpr int skills = 20;
constexpr int decisions = 3000;
constexpr int queued_decisions = 500;
constexpr int round_trips = 3000;
constexpr int concurrent_decisions = 3000;
constexpr int concurrency = 16;

struct figures {
  double p50_us = 0;
  double p99_us = 0;
  double mean_us = 0;
};

figures summarise(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  figures f;
  f.p50_us = us[us.size() / 2];
  f.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  double sum = 0;
  for (double v : us) sum += v;
  f.mean_us = sum / static_cast<double>(us.size());
  return f;
}

// Runs one awaitable on the loop to completion; returns its value.
template <class T>
T run_on(asio::io_context& loop, asio::awaitable<T> task) {
  auto future = asio::co_spawn(loop, std::move(task), asio::use_future);
  loop.run();
  loop.restart();
  return future.get();
}

// Where the backend of a one-connection pool has spent its life so far: on a CPU, and runnable
// but waiting for one (Linux /proc/self/schedstat, read by the backend itself; superuser only).
struct backend_clock {
  double cpu_us = 0;
  double wait_us = 0;
};

std::optional<backend_clock> read_backend_clock(asio::io_context& loop, store::connection_pool& solo) {
  auto text = run_on(loop, solo.run([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec("SELECT pg_read_file('/proc/self/schedstat')")[0][0].as<std::string>();
  }));
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  double cpu_ns = 0;
  double wait_ns = 0;
  if (!(in >> cpu_ns >> wait_ns)) return std::nullopt;
  return backend_clock{cpu_ns / 1000, wait_ns / 1000};
}

// Wall time of each request, and its backend's CPU and CPU-wait time when they can be read.
struct samples {
  std::vector<double> wall_us;
  std::vector<double> cpu_us;
  std::vector<double> wait_us;
};

// Times one request on the one-connection pool; the backend clock is read outside the timed part.
template <class Request>
auto timed(asio::io_context& loop, store::connection_pool& solo, samples& out, Request request) {
  const auto before = read_backend_clock(loop, solo);
  const auto start = clock_type::now();
  auto answer = run_on(loop, request());
  out.wall_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - start).count());
  const auto after = before ? read_backend_clock(loop, solo) : std::nullopt;
  if (before && after) {
    out.cpu_us.push_back(after->cpu_us - before->cpu_us);
    out.wait_us.push_back(after->wait_us - before->wait_us);
  }
  return answer;
}

void print_server_side(const char* what, const samples& s) {
  if (s.cpu_us.empty()) return;
  const auto cpu = summarise(s.cpu_us);
  const auto wait = summarise(s.wait_us);
  std::printf(
      "    server side: backend CPU p50 %5.0f us  p99 %5.0f us  mean %5.0f us;  waiting for a CPU p50 %5.0f us  p99 "
      "%5.0f us  mean %5.0f us  (%s)\n",
      cpu.p50_us, cpu.p99_us, cpu.mean_us, wait.p50_us, wait.p99_us, wait.mean_us, what);
}

void exec(store::connection_pool& pool, const std::string& sql, int operators = 0) {
  auto done = pool.run_blocking([&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (operators > 0)
      tx.exec_params(sql, operators);
    else
      tx.exec(sql);
    tx.commit();
  });
  if (!done) throw std::runtime_error(done.error().message());
}

// 20 skills; each operator holds 4 at levels 1..9; 50 queues (strategies in turn) needing one
// skill at level 1..3; one route point and one IVR-menu rule per queue; 10,000 customers; one
// queue nobody qualifies for (the queued path).
void seed(store::connection_pool& pool, int operators) {
  exec(pool, "INSERT INTO tenants (code, name) VALUES ('bench', 'Bench')");
  exec(pool, fmt::format("INSERT INTO skills (tenant_id, name) SELECT 1, 'skill' || s FROM generate_series(1, {}) s",
                         skills));
  exec(pool,
       "INSERT INTO operators (tenant_id, login, password_hash) "
       "SELECT 1, 'op' || i, '$2a$08$' || repeat('a', 53) FROM generate_series(1, $1) i",
       operators);
  exec(pool, fmt::format("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) "
                         "SELECT DISTINCT ON (o.operator_id, s.skill_id) 1, o.operator_id, s.skill_id, "
                         "1 + (o.operator_id * 7 + k) % 9 FROM operators o CROSS JOIN generate_series(0, 3) k "
                         "JOIN skills s ON s.name = 'skill' || (1 + (o.operator_id * 3 + k * 5) % {})",
                         skills));
  exec(pool,
       "UPDATE presence SET state = 'ready', device = 'd' || operator_id, "
       "last_call_ended = now() - (operator_id % 600) * interval '1 s'");
  exec(pool, fmt::format("INSERT INTO queues (tenant_id, name, strategy) SELECT 1, 'q' || q, "
                         "(ARRAY['longest_idle', 'fewest_calls', 'round_robin', 'best_skill', 'sticky'])[1 + q % 5]"
                         "::queue_strategy FROM generate_series(1, {}) q",
                         queues));
  exec(pool, fmt::format("INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level) "
                         "SELECT 1, q.queue_id, s.skill_id, 1 + q.queue_id % 3 FROM queues q "
                         "JOIN skills s ON s.name = 'skill' || (1 + q.queue_id % {})",
                         skills));
  exec(pool,
       "INSERT INTO route_points (tenant_id, device, default_queue_id) SELECT 1, 'rp' || queue_id, queue_id FROM "
       "queues");
  exec(pool,
       "INSERT INTO routing_rules (tenant_id, rule_order, ivr_match, queue_id) "
       "SELECT 1, queue_id, jsonb_build_object('menu', queue_id::text), queue_id FROM queues");
  exec(pool,
       "INSERT INTO customers (tenant_id, phone, tier) SELECT 1, '+1' || i, "
       "CASE WHEN i % 10 = 0 THEN 'vip' ELSE 'standard' END FROM generate_series(1, 10000) i");
  exec(pool, "INSERT INTO queues (tenant_id, name) VALUES (1, 'nobody')");
  exec(pool,
       "INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level) SELECT 1, q.queue_id, s.skill_id, 10 "
       "FROM queues q, skills s WHERE q.name = 'nobody' AND s.name = 'skill1'");
  exec(pool,
       "INSERT INTO route_points (tenant_id, device, default_queue_id) SELECT 1, 'rp-wait', queue_id FROM queues "
       "WHERE name = 'nobody'");
  exec(pool, "ANALYZE");
  exec(pool, "SELECT refresh_queue_stats()");
}

store::call_offer offer_for(int i, const std::string& route_point = "") {
  store::call_offer o;
  o.route_point = route_point.empty() ? "rp" + std::to_string(1 + i % queues) : route_point;
  o.pbx_call_id = "bench-" + std::to_string(i);
  o.caller = "+1" + std::to_string(1 + (i * 7919) % 10000);
  o.dialled = "800";
  o.ivr_data = {{"account", std::to_string(i)}};
  if (route_point.empty()) o.ivr_data.emplace_back("menu", std::to_string(1 + (i * 13) % queues));  // a rule per menu
  o.reservation = std::chrono::seconds(60);
  return o;
}

// The calls part's work after a decision, untimed: the operator answered and hung up.
asio::awaitable<void> finish(store::connection_pool& pool, const store::route_decision& d) {
  if (d.kind != store::route_kind::operator_reserved) co_return;
  (void)co_await pool.run([op = d.operator_id, call = d.call_id](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(
        "UPDATE calls SET operator_id = $1, answered_at = now(), ended_at = now() + interval '2 min', "
        "disposition = 'answered' WHERE call_id = $2",
        op, call);
    tx.exec_params(
        "UPDATE presence SET state = 'ready', current_call_id = NULL, reserved_until = NULL, last_call_ended = now(), "
        "calls_handled = calls_handled + 1 WHERE operator_id = $1",
        op);
    tx.commit();
  });
}

void run(const std::string& admin_url, int operators, bool keep) {
  const std::string name = fmt::format("sbbench_routing_{}_{}", ::getpid(), operators);
  {
    pqxx::connection admin(admin_url);
    pqxx::nontransaction q(admin);
    q.exec("DROP DATABASE IF EXISTS " + name);
    q.exec("CREATE DATABASE " + name + " TEMPLATE template0");
  }
  const auto url = store::url_with_database(admin_url, name);
  if (auto m = store::migrate(url); !m) throw std::runtime_error(m.error().message());
  // the seed makes every operator ready at once (a trigger per row): minutes on a loaded machine
  const store::pool_config options{.url = url, .size = 4, .statement_timeout = std::chrono::minutes(10)};
  store::connection_pool pool(options);
  seed(pool, operators);
  asio::io_context loop;
  // the sequential requests: one connection, so its backend's clock is the one read
  auto solo_options = options;
  solo_options.size = 1;
  store::connection_pool solo(solo_options);

  samples trips;
  for (int i = 0; i < round_trips; ++i) {
    auto one = timed(loop, solo, trips, [&] {
      return solo.run([](pqxx::connection& c) {
        pqxx::nontransaction tx(c);
        return tx.exec("SELECT 1")[0][0].as<int>();
      });
    });
    if (!one) throw std::runtime_error(one.error().message());
  }

  samples decided;
  int reserved = 0;
  for (int i = 0; i < decisions; ++i) {
    const auto offer = offer_for(i);
    auto d = timed(loop, solo, decided, [&] { return store::offer_call(solo, offer); });
    if (!d) throw std::runtime_error(d.error().message());
    if (d->kind == store::route_kind::operator_reserved) ++reserved;
    run_on(loop, finish(solo, *d));
    if (i % 1000 == 999) exec(pool, "SELECT refresh_queue_stats()");  // the router does this every 5 s
  }

  samples queued_samples;
  for (int i = 0; i < queued_decisions; ++i) {
    const auto offer = offer_for(decisions + i, "rp-wait");
    auto d = timed(loop, solo, queued_samples, [&] { return store::offer_call(solo, offer); });
    if (!d || d->kind != store::route_kind::queued) throw std::runtime_error("the queued path did not queue");
  }
  solo.close();

  // Throughput: 16 callers on one loop share the pool's 4 connections, each finishing its call.
  int next = 0;
  const auto wall_start = clock_type::now();
  for (int c = 0; c < concurrency; ++c)
    asio::co_spawn(
        loop,
        [&]() -> asio::awaitable<void> {
          for (int i = next++; i < concurrent_decisions; i = next++) {
            auto d = co_await store::offer_call(pool, offer_for(decisions + queued_decisions + i));
            if (d) co_await finish(pool, *d);
          }
        },
        asio::detached);
  loop.run();
  loop.restart();
  const double wall_s = std::chrono::duration<double>(clock_type::now() - wall_start).count();

  const auto trip = summarise(trips.wall_us);
  const auto decision = summarise(decided.wall_us);
  const auto queued = summarise(queued_samples.wall_us);
  std::printf("operators %d, queues %d, skills %d, rules %d\n", operators, queues + 1, skills, queues);
  std::printf("  SELECT 1 round trip     p50 %7.0f us  p99 %7.0f us  mean %7.0f us  (%d trips)\n", trip.p50_us,
              trip.p99_us, trip.mean_us, round_trips);
  print_server_side("SELECT 1: what reading the clock itself costs", trips);
  std::printf(
      "  route decision          p50 %7.0f us  p99 %7.0f us  mean %7.0f us  (%d, %d reserved) = %.1fx / %.1fx a round "
      "trip (p50 / p99); %.0f decisions/s on one connection\n",
      decision.p50_us, decision.p99_us, decision.mean_us, decisions, reserved, decision.p50_us / trip.p50_us,
      decision.p99_us / trip.p99_us, 1e6 / decision.mean_us);
  print_server_side("route decision", decided);
  std::printf("  queued decision         p50 %7.0f us  p99 %7.0f us  mean %7.0f us  (%d, queue grows to %d)\n",
              queued.p50_us, queued.p99_us, queued.mean_us, queued_decisions, queued_decisions);
  print_server_side("queued decision", queued_samples);
  std::printf("  throughput              %.0f decisions/s (%d callers, 4 connections, each call also finished)\n",
              concurrent_decisions / wall_s, concurrency);
  std::fflush(stdout);

  pool.close();
  if (keep) {
    std::printf("  database kept: %s\n", url.c_str());
    return;
  }
  pqxx::connection admin(admin_url);
  pqxx::nontransaction q(admin);
  q.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

}  // namespace

int main() {
  const char* url = std::getenv("SWITCHBOARD_BENCH_DATABASE_URL");
  if (!url || !*url) {
    std::fprintf(stderr,
                 "SWITCHBOARD_BENCH_DATABASE_URL is not set (e.g. scripts/pg start /tmp/sbpg.bench, then its URL)\n");
    return 2;
  }
  const char* keep = std::getenv("SWITCHBOARD_BENCH_KEEP");
  try {
    for (int operators : {1000, 10000}) run(url, operators, keep && std::string(keep) == "1");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_routing: %s\n", e.what());
    return 1;
  }
  return 0;
}
