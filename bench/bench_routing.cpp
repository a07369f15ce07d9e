// Route decisions against PostgreSQL: latency (p50/p99) of one offer_call and decisions per
// second at 1,000 and 10,000 operators (50 queues, 20 skills, 50 rules), beside one plain
// SELECT 1 round trip through the same pool in the same run, so the figures read as "x round
// trips". Beside the wall clock, the server's side of each sequential request: CPU time of its
// backend and time it waited for a CPU, which tell the work PostgreSQL does from the load of a
// shared machine. Needs SWITCHBOARD_BENCH_DATABASE_URL (an admin URL); makes, migrates and
// drops its own database (kept with SWITCHBOARD_BENCH_KEEP=1, for EXPLAIN ANALYZE by hand).
// SWITCHBOARD_BENCH_WITHOUT=0017,0041 leaves those migrations out (a before/after run with one
// binary). With pg_stat_statements loaded in the server (track = all), it also counts what
// PostgreSQL runs per decision and per whole call (route, ringing, answered, ended, wrap-up done,
// ready again), the call's life written through the store queries the calls part uses.
#include "bench_database.hpp"
#include "switchboard/store/call_queries.hpp"
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
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
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
constexpr int counted_calls = 300;

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
// skill at level 1..3; one route point and one IVR-menu rule per queue; 10,000 customers and a
// day of 10,000 finished calls; one queue nobody qualifies for (the queued path).
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
  // a day of finished calls, as a running call centre has: an analyzed empty calls table makes
  // PostgreSQL plan the foreign-key checks into calls as sequential scans for the whole session
  exec(pool,
       "INSERT INTO calls (tenant_id, pbx_call_id, route_point_id, caller, customer_id, queue_id, final_queue_id, "
       "operator_id, last_operator_id, offered_at, queued_at, answered_at, ended_at, disposition, wait_seconds, "
       "talk_seconds, wrap_up_seconds) "
       "SELECT 1, 'history-' || i, 1 + i % 50, '+1' || (1 + i % 10000), 1 + i % 10000, 1 + i % 50, 1 + i % 50, "
       "1 + i % $1, 1 + i % $1, t, t, t + interval '5 s', t + interval '185 s', 'answered', 5, 180, 10 "
       "FROM generate_series(1, 10000) i, LATERAL (SELECT now() - interval '1 day' + i * interval '8 s' AS t) x",
       operators);
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

// The calls part's writes for a reserved call's life, as call_centre.cpp batches them: the PBX
// rings the operator (the router confirms the reservation), he answers, hangs up, his wrap-up
// ends and he is ready again (and asks for a waiting call).
asio::awaitable<void> live_call(store::connection_pool& pool, const store::route_decision& d) {
  if (d.kind != store::route_kind::operator_reserved) co_return;
  const auto op = d.operator_id;
  const auto call = d.call_id;
  const auto now = [] { return std::chrono::system_clock::now(); };
  (void)co_await store::confirm_reservation(pool, op, call);
  (void)co_await store::apply_call_writes(
      pool,
      {store::presence_move{
           .operator_id = op, .from = {"reserved", "ready", "not_ready", "wrap_up"}, .to = "ringing", .call_id = call},
       store::call_journal_entry{
           .call_id = call, .kind = "ringing", .operator_id = op, .device = d.device, .at = now()}});
  (void)co_await store::apply_call_writes(
      pool, {store::presence_move{.operator_id = op,
                                  .from = {"ringing", "reserved", "ready", "not_ready", "wrap_up", "held"},
                                  .to = "talking",
                                  .call_id = call},
             store::call_answered{.call_id = call, .operator_id = op, .at = now()}});
  (void)co_await store::apply_call_writes(
      pool, {store::presence_move{.operator_id = op,
                                  .from = {"talking", "held", "ringing", "reserved"},
                                  .to = "wrap_up",
                                  .call_id = call,
                                  .call_finished = true},
             store::call_finished{.call_id = call, .disposition = "answered", .at = now()}});
  (void)co_await store::apply_call_writes(
      pool, {store::wrap_up_finished{.call_id = call, .at = now()},
             store::presence_move{.operator_id = op, .from = {"wrap_up"}, .to = "ready"}});
  (void)co_await store::pick_call(pool, op, std::chrono::seconds(10));
}

// pg_stat_statements of this database: statements run (top level: sent by the client; all:
// with those inside functions, triggers and foreign-key checks), their server time, WAL, buffers.
struct statement_totals {
  double top = 0;
  double all = 0;
  double top_ms = 0;
  double wal_records = 0;
  double wal_bytes = 0;
  double buffers = 0;
};

constexpr const char* this_database = "dbid = (SELECT oid FROM pg_database WHERE datname = current_database())";

bool reset_statements(store::connection_pool& pool) {
  auto done = pool.run_blocking([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec("SELECT pg_stat_statements_reset()");
  });
  return done.has_value();
}

statement_totals read_statements(store::connection_pool& pool) {
  auto totals = pool.run_blocking([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    // A foreign-key check deferred to commit (presence -> calls, 0052) shows as a top-level
    // statement: its time counts, but nobody sent it.
    auto row = tx.exec(fmt::format(
        "SELECT coalesce(sum(calls) FILTER (WHERE toplevel AND query NOT LIKE 'SELECT 1 FROM ONLY %'), 0), "
        "coalesce(sum(calls), 0), "
        "coalesce(sum(total_exec_time) FILTER (WHERE toplevel), 0), "
        "coalesce(sum(wal_records) FILTER (WHERE toplevel), 0), coalesce(sum(wal_bytes) FILTER (WHERE toplevel), 0), "
        "coalesce(sum(shared_blks_hit + shared_blks_read) FILTER (WHERE toplevel), 0) "
        "FROM pg_stat_statements WHERE {} AND query NOT LIKE '%pg_stat_statements%'",
        this_database))[0];
    return statement_totals{row[0].as<double>(), row[1].as<double>(), row[2].as<double>(),
                            row[3].as<double>(), row[4].as<double>(), row[5].as<double>()};
  });
  return totals ? *totals : statement_totals{};
}

void print_statements(const char* what, const statement_totals& t, int per) {
  std::printf(
      "  %-24s %5.1f statements sent, %5.1f run in all; server time %6.0f us; WAL %5.1f records, %6.0f bytes; %5.0f "
      "buffers (per call, %d calls)\n",
      what, t.top / per, t.all / per, t.top_ms * 1000 / per, t.wal_records / per, t.wal_bytes / per, t.buffers / per,
      per);
}

// The statements behind the figures, the costliest first, per call.
void print_top_statements(store::connection_pool& pool, int per) {
  auto rows = pool.run_blocking([](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec(
        fmt::format("SELECT toplevel, calls, total_exec_time, regexp_replace(left(query, 200), '\\s+', ' ', 'g') "
                    "FROM pg_stat_statements WHERE {} AND query NOT LIKE '%pg_stat_statements%' "
                    "ORDER BY total_exec_time DESC LIMIT 25",
                    this_database));
  });
  if (!rows) return;
  for (const auto& row : *rows)
    std::printf("    %s %5.2f x %6.1f us  %.110s\n", row[0].as<bool>() ? "top " : "    ", row[1].as<double>() / per,
                row[2].as<double>() * 1000 / row[1].as<double>(), row[3].c_str());
}

// Counts what a decision and the rest of a call's life cost PostgreSQL (pg_stat_statements).
void count_statements(asio::io_context& loop, store::connection_pool& solo, int first_offer) {
  // the queued path's calls leave, or each operator made ready would walk them (pick_call)
  exec(solo, "SELECT withdraw_waiting_call(call_id, 'bench') FROM waiting_calls");
  if (!reset_statements(solo)) {
    std::printf("  (pg_stat_statements is not loaded: no statement counts)\n");
    return;
  }
  std::vector<store::route_decision> served;
  for (int i = 0; i < counted_calls; ++i) {
    auto d = run_on(loop, store::offer_call(solo, offer_for(first_offer + i)));
    if (!d || d->kind != store::route_kind::operator_reserved)
      throw std::runtime_error("a counted call was not served");
    served.push_back(*d);
  }
  const auto decisions_only = read_statements(solo);
  const bool details = std::getenv("SWITCHBOARD_BENCH_STATEMENTS") != nullptr;
  if (details) print_top_statements(solo, counted_calls);
  reset_statements(solo);
  for (const auto& d : served) run_on(loop, live_call(solo, d));
  const auto rest = read_statements(solo);
  if (details) print_top_statements(solo, counted_calls);
  print_statements("decision (offer_call)", decisions_only, counted_calls);
  print_statements("rest of the call", rest, counted_calls);
  statement_totals whole = decisions_only;
  whole.top += rest.top;
  whole.all += rest.all;
  whole.top_ms += rest.top_ms;
  whole.wal_records += rest.wal_records;
  whole.wal_bytes += rest.wal_bytes;
  whole.buffers += rest.buffers;
  print_statements("whole call", whole, counted_calls);
}

void run(const std::string& admin_url, int operators, bool keep) {
  const std::string name = fmt::format("sbbench_routing_{}_{}", ::getpid(), operators);
  std::vector<store::migration> migrations;
  const std::string without = std::getenv("SWITCHBOARD_BENCH_WITHOUT") ? std::getenv("SWITCHBOARD_BENCH_WITHOUT") : "";
  for (const auto& m : store::bundled_migrations())
    if (without.find(fmt::format("{:04}", m.version)) == std::string::npos) migrations.push_back(m);
  const auto url = switchboard::bench::create_migrated_database(admin_url, name, migrations);
  {
    pqxx::connection conn(url);
    pqxx::nontransaction tx(conn);
    tx.exec("DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_stat_statements; EXCEPTION WHEN OTHERS THEN NULL; END $$");
    // an experiment on top of the migrations (a schema change tried before it becomes one)
    if (const char* extra = std::getenv("SWITCHBOARD_BENCH_EXTRA_SQL"); extra && *extra) {
      std::ifstream file(extra);
      if (!file) throw std::runtime_error(fmt::format("cannot read {}", extra));
      tx.exec(std::string(std::istreambuf_iterator<char>(file), {}));
    }
  }
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
  // SWITCHBOARD_BENCH_PACE_MS: decisions that many ms apart instead of back to back, as a call
  // centre offers them: the backend's code and data are no longer in the CPU's caches
  const char* pace_env = std::getenv("SWITCHBOARD_BENCH_PACE_MS");
  const auto pace = std::chrono::milliseconds(pace_env ? std::atoi(pace_env) : 0);
  for (int i = 0; i < decisions; ++i) {
    if (pace.count() > 0) std::this_thread::sleep_for(pace);
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
  count_statements(loop, solo, decisions + queued_decisions + concurrent_decisions);
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
  switchboard::bench::drop_database(admin_url, name);
}

}  // namespace

int main() {
  const auto url = switchboard::bench::admin_url_from_environment();
  if (url.empty()) return 2;
  const char* keep = std::getenv("SWITCHBOARD_BENCH_KEEP");
  try {
    // SWITCHBOARD_BENCH_OPERATORS=10000: that size only
    const char* only = std::getenv("SWITCHBOARD_BENCH_OPERATORS");
    std::vector<int> sizes{1000, 10000};
    if (only && *only) sizes = {std::atoi(only)};
    for (int operators : sizes) {
      if (operators <= 0) throw std::runtime_error("SWITCHBOARD_BENCH_OPERATORS must be a positive number");
      run(url, operators, keep && std::string(keep) == "1");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_routing: %s\n", e.what());
    return 1;
  }
  return 0;
}
