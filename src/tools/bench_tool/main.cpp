// switchboard-bench: drives a real switchboard process with a simulated PBX (CSTA over TCP) and
// scripted operators' desktops (JSON over TCP) on one PostgreSQL database, ramps the offered
// call rate in steps and reports per step what a call centre engineer asks: calls routed per
// second, route latency (RouteRequest sent by the PBX -> RouteSelect received), screen-pop
// latency (RouteRequest sent -> offer received by the desktop), the server's CPU per call and
// memory, and the PBX's view of double bookings. The PBX and the desktops live in this process
// so both ends of each latency are read from one clock; the server is a separate process so its
// CPU and memory are its own.
#include "measure.hpp"
#include "processes.hpp"
#include "switchboard/desk/scripted.hpp"
#include "switchboard/log.hpp"
#include "switchboard/pbxsim/server.hpp"
#include "switchboard/store/pool.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

namespace switchboard::bench {
namespace {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct options {
  std::string database_url;
  std::string server_path;
  std::string work_dir = "/tmp/switchboard-bench";
  std::string json_path = "switchboard-bench.json";
  int operators = 1000;
  int queues = 50;
  int skills = 20;
  int customers = 10000;
  std::vector<double> rates = {50, 100, 200, 400, 600, 800, 1000, 1200, 1500, 2000};
  int step_seconds = 10;
  double target_p99_ms = 10;
  int answer_ms = 100;
  int talk_min_ms = 200;
  int talk_max_ms = 600;
  int wrap_up_ms = 100;
  int pool_size = 4;
  int routing_pool_size = 2;
  int writes_pool_size = 2;
  int login_wave = 200;
  bool whole_ramp = false;
  int generators_nice = 0;      // the PBX simulator's and the desktops' threads (this process)
  int generators_realtime = 0;  // ... under SCHED_FIFO at this priority (0: not)
  int realtime_priority = 0;    // the server's scheduling.realtime_priority
  std::string samples_path;     // every call's latencies, when given
};

// Extension numbers and route point devices of the seeded call centre.
std::string extension_of(int op) { return std::to_string(100000 + op); }
std::string route_point_of(int q) { return std::to_string(7000 + q); }
constexpr const char* default_device = "99999";  // the PBX's own overflow phone, not an operator

// ---- the database -----------------------------------------------------------------------------

void seed(const std::string& url, const options& o) {
  pqxx::connection c(url);
  pqxx::work t(c);
  t.exec("INSERT INTO tenants (code, name) VALUES ('bench', 'Bench')");
  t.exec(fmt::format("INSERT INTO skills (tenant_id, name) SELECT 1, 'skill' || s FROM generate_series(1, {}) s",
                     o.skills));
  // One bcrypt hash (cost 4) for all: logging 10,000 desktops in must not take minutes.
  t.exec(
      fmt::format("INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) "
                  "SELECT 1, 'op' || i, h.hash, 'Operator ' || i, (100000 + i)::text "
                  "FROM generate_series(1, {}) i, (SELECT crypt('bench', gen_salt('bf', 4)) AS hash) h",
                  o.operators));
  // Four skills per operator, levels 1..9.
  t.exec(
      fmt::format("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) "
                  "SELECT DISTINCT ON (o.operator_id, 1 + (o.operator_id * 7 + k * 3) % {0}) 1, o.operator_id, "
                  "1 + (o.operator_id * 7 + k * 3) % {0}, 1 + (o.operator_id + k) % 9 "
                  "FROM operators o CROSS JOIN generate_series(0, 3) k",
                  o.skills));
  const char* strategies[] = {"longest_idle", "fewest_calls", "round_robin", "best_skill", "sticky"};
  for (int q = 1; q <= o.queues; ++q) {
    t.exec(fmt::format("INSERT INTO queues (tenant_id, name, strategy, wrap_up_seconds) VALUES (1, 'queue{}', '{}', 5)",
                       q, strategies[(q - 1) % 5]));
  }
  t.exec(
      fmt::format("INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level) "
                  "SELECT 1, queue_id, 1 + (queue_id - 1) % {}, 1 FROM queues",
                  o.skills));
  t.exec(
      "INSERT INTO route_points (tenant_id, device, name, default_queue_id) "
      "SELECT 1, (7000 + queue_id)::text, 'RP ' || queue_id, queue_id FROM queues");
  t.exec(
      fmt::format("INSERT INTO customers (tenant_id, phone, name, tier) "
                  "SELECT 1, '+1555' || lpad(i::text, 6, '0'), 'Customer ' || i, "
                  "CASE WHEN i % 10 = 0 THEN 'vip' ELSE 'standard' END FROM generate_series(1, {}) i",
                  o.customers));
  t.commit();
  // The seeded tables only: `calls` analyzed while empty would make the foreign-key checks into it
  // sequential scans for the whole run (autovacuum analyzes it once it has rows).
  pqxx::nontransaction(c).exec(
      "VACUUM ANALYZE tenants, skills, operators, operator_skills, queues, queue_skills, route_points, customers, "
      "presence");
}

// CPU time of each of the server's PostgreSQL backends (same host), and the time each waited for a
// CPU, by process id. Listed afresh each time: the pool opens a lane's connections on first use,
// often during the ramp.
struct backend_time {
  std::chrono::microseconds cpu{0};
  std::chrono::microseconds cpu_wait{0};
};
using backend_cpu = std::unordered_map<int, backend_time>;
backend_cpu backends_cpu(pqxx::connection& c) {
  backend_cpu out;
  pqxx::nontransaction t(c);
  for (const auto& row : t.exec("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'switchboard-%'")) {
    const int pid = row[0].as<int>();
    if (auto u = usage_of(pid)) out[pid] = {u->cpu, cpu_wait_of(pid).value_or(std::chrono::microseconds{0})};
  }
  return out;
}

// The backends' CPU (or CPU wait) between two listings; a backend that is new in `after` spent all
// of it in between (one that ended in between is lost, with what it spent).
std::chrono::microseconds cpu_between(const backend_cpu& before, const backend_cpu& after,
                                      std::chrono::microseconds backend_time::*which = &backend_time::cpu) {
  std::chrono::microseconds sum{0};
  for (const auto& [pid, time] : after) {
    const auto it = before.find(pid);
    sum += time.*which - (it == before.end() ? std::chrono::microseconds{0} : it->second.*which);
  }
  return sum;
}

// ---- what the PBX and the desktops saw ----------------------------------------------------------

struct call_timing {
  int step = 0;
  std::string route_point;  // the queue's, so a tail can be matched to a strategy
  clock::time_point request_sent{};
  std::optional<clock::time_point> select_received;
  std::optional<clock::time_point> pop_received;
};

struct step_counts {
  std::uint64_t offered = 0;
  std::uint64_t route_ends = 0;  // the server sent the call back to the PBX's default
  std::uint64_t re_routes = 0;   // RouteSelect to a phone that was busy: a double booking
};

// Shared by the simulator's thread, the desktops' thread and the main thread.
class recorder {
 public:
  void request_sent(const csta::route_request& r) {
    const auto seq = seq_of(r.correlator_data);
    if (!seq) return;
    std::lock_guard lock(m_);
    auto& c = calls_[*seq];
    c.step = step_;
    c.route_point = r.current_route.id;
    c.request_sent = clock::now();
    xref_[r.cross_ref_identifier] = *seq;
    ++counts_[step_].offered;
  }
  void select_received(const std::string& xref) {
    const auto now = clock::now();
    std::lock_guard lock(m_);
    if (auto it = xref_.find(xref); it != xref_.end()) {
      auto& c = calls_[it->second];
      if (!c.select_received) c.select_received = now;
      xref_.erase(it);
    }
  }
  void route_end(const std::string& xref) {
    std::lock_guard lock(m_);
    if (auto it = xref_.find(xref); it != xref_.end()) {
      ++counts_[calls_[it->second].step].route_ends;
      xref_.erase(it);
    }
  }
  void re_route(const std::string& xref) {
    std::lock_guard lock(m_);
    if (auto it = xref_.find(xref); it != xref_.end()) ++counts_[calls_[it->second].step].re_routes;
  }
  void pop_received(const nlohmann::json& ivr) {
    const auto now = clock::now();
    if (!ivr.is_object() || !ivr.contains("seq") || !ivr["seq"].is_string()) return;
    const auto seq = seq_of(ivr["seq"].get<std::string>());
    if (!seq) return;
    std::lock_guard lock(m_);
    if (auto it = calls_.find(*seq); it != calls_.end() && !it->second.pop_received) it->second.pop_received = now;
  }
  void begin_step(int step) {
    std::lock_guard lock(m_);
    step_ = step;
    counts_[step] = {};
  }
  // Latency samples and counts of the calls offered in `step`.
  void collect(int step, latency_samples& route, latency_samples& pop, step_counts& counts) {
    std::lock_guard lock(m_);
    for (const auto& [seq, c] : calls_) {
      if (c.step != step) continue;
      if (c.select_received) route.add(*c.select_received - c.request_sent);
      if (c.pop_received) pop.add(*c.pop_received - c.request_sent);
    }
    counts = counts_[step];
  }
  // Every call's figures, in the order offered: when it was offered (seconds after `origin`), its
  // step's rate, route and pop latency in ms (-1: none), its route point. Shows whether a tail is
  // steady or comes in bursts (a vacuum, a timer), and whether one queue's strategy makes it.
  void write_samples(const std::string& path, clock::time_point origin, const std::vector<double>& rates) {
    std::lock_guard lock(m_);
    std::vector<const call_timing*> ordered;
    for (const auto& [seq, c] : calls_) ordered.push_back(&c);
    std::sort(ordered.begin(), ordered.end(),
              [](const auto* a, const auto* b) { return a->request_sent < b->request_sent; });
    std::ofstream out(path);
    out << "# offered_s rate route_ms pop_ms route_point\n";
    const auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    for (const auto* c : ordered)
      out << fmt::format("{:.4f} {} {:.3f} {:.3f} {}\n", ms(c->request_sent - origin) / 1000,
                         c->step < static_cast<int>(rates.size()) ? rates[static_cast<std::size_t>(c->step)] : 0.0,
                         c->select_received ? ms(*c->select_received - c->request_sent) : -1.0,
                         c->pop_received ? ms(*c->pop_received - c->request_sent) : -1.0, c->route_point);
  }

 private:
  static std::optional<std::uint64_t> seq_of(const std::optional<std::string>& correlator) {
    if (!correlator) return std::nullopt;
    auto s = std::string_view(*correlator);
    if (s.starts_with("seq=")) s.remove_prefix(4);
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  }

  std::mutex m_;
  int step_ = 0;
  std::unordered_map<std::uint64_t, call_timing> calls_;
  std::unordered_map<std::string, std::uint64_t> xref_;
  std::unordered_map<int, step_counts> counts_;
};

// ---- one step's figures -------------------------------------------------------------------------

struct step_result {
  double rate = 0;
  double offered_per_s = 0;
  double routed_per_s = 0;
  double route_p50_ms = 0, route_p99_ms = 0, route_p999_ms = 0;
  double pop_p50_ms = 0, pop_p99_ms = 0;
  double select1_p50_ms = 0;
  // the server's own view (GET /metrics): request at the router -> answer handed to the PBX
  // link, and the routing SQL's round trip inside it
  double server_answer_p50_ms = 0, server_answer_p99_ms = 0;
  double server_decision_p50_ms = 0, server_decision_p99_ms = 0;
  double server_cpu_us_per_call = 0;
  double db_cpu_us_per_call = 0;
  // runnable but waiting for a CPU, per routed call: what the two cores' queue adds
  double server_cpu_wait_us_per_call = 0;
  double db_cpu_wait_us_per_call = 0;
  double server_rss_mb = 0;
  double generator_cpu_percent = 0;  // this process: the simulated PBX and the desktops
  // --realtime-priority: how often the server's governor gave SCHED_FIFO up during the step,
  // and whether the route's path was real-time at its end (-1: not known)
  int realtime_demotions = 0;
  int realtime_active_at_end = -1;
  // the server's call-record writes queued, waiting or in flight at the step's end (-1: not known):
  // growing from step to step, the writes lane is behind the phones
  double writes_pending_at_end = -1;
  std::uint64_t offered = 0, routed = 0, pops = 0, route_ends = 0, re_routes = 0;

  nlohmann::json to_json() const {
    return {{"rate", rate},
            {"offered_per_s", offered_per_s},
            {"routed_per_s", routed_per_s},
            {"route_ms", {{"p50", route_p50_ms}, {"p99", route_p99_ms}, {"p999", route_p999_ms}}},
            {"pop_ms", {{"p50", pop_p50_ms}, {"p99", pop_p99_ms}}},
            {"select1_p50_ms", select1_p50_ms},
            {"server_answer_ms", {{"p50", server_answer_p50_ms}, {"p99", server_answer_p99_ms}}},
            {"server_decision_ms", {{"p50", server_decision_p50_ms}, {"p99", server_decision_p99_ms}}},
            {"route_p50_over_select1", select1_p50_ms > 0 ? route_p50_ms / select1_p50_ms : 0},
            {"server_cpu_us_per_call", server_cpu_us_per_call},
            {"db_cpu_us_per_call", db_cpu_us_per_call},
            {"server_cpu_wait_us_per_call", server_cpu_wait_us_per_call},
            {"db_cpu_wait_us_per_call", db_cpu_wait_us_per_call},
            {"server_rss_mb", server_rss_mb},
            {"generator_cpu_percent", generator_cpu_percent},
            {"realtime_demotions", realtime_demotions},
            {"realtime_active_at_end", realtime_active_at_end},
            {"writes_pending_at_end", writes_pending_at_end},
            {"offered", offered},
            {"routed", routed},
            {"pops", pops},
            {"route_ends", route_ends},
            {"double_bookings", re_routes}};
  }
};

void print_header() {
  // two header lines, one layout
  constexpr auto columns =
      "{:>6} {:>8} {:>8} | {:>7} {:>7} {:>7} | {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>6} | {:>8} {:>8} "
      "{:>8} {:>8} {:>7} | {:>6} {:>6}\n";
  fmt::print(columns, "rate", "offered", "routed", "rt p50", "rt p99", "p99.9", "pop p50", "pop p99", "srv p50",
             "srv p99", "sql p50", "sql p99", "SELECT1", "ratio", "srv us/c", "db us/c", "srv wait", "db wait",
             "RSS MB", "ends", "double");
  fmt::print(columns, "/s", "/s", "/s", "ms", "ms", "ms", "ms", "ms", "ms", "ms", "ms", "ms", "ms", "x", "", "", "us/c",
             "us/c", "", "", "");
}

void print_row(const step_result& r) {
  fmt::print(
      "{:>6.0f} {:>8.1f} {:>8.1f} | {:>7.2f} {:>7.2f} {:>7.2f} | {:>7.2f} {:>7.2f} | {:>7.2f} {:>7.2f} {:>7.2f} "
      "{:>7.2f} | {:>7.3f} {:>6.1f} | {:>8.0f} {:>8.0f} {:>8.0f} {:>8.0f} {:>7.1f} | {:>6} {:>6}\n",
      r.rate, r.offered_per_s, r.routed_per_s, r.route_p50_ms, r.route_p99_ms, r.route_p999_ms, r.pop_p50_ms,
      r.pop_p99_ms, r.server_answer_p50_ms, r.server_answer_p99_ms, r.server_decision_p50_ms, r.server_decision_p99_ms,
      r.select1_p50_ms, r.select1_p50_ms > 0 ? r.route_p50_ms / r.select1_p50_ms : 0, r.server_cpu_us_per_call,
      r.db_cpu_us_per_call, r.server_cpu_wait_us_per_call, r.db_cpu_wait_us_per_call, r.server_rss_mb, r.route_ends,
      r.re_routes);
  std::fflush(stdout);
}

// Runs `f` on `io`'s thread and waits for it.
template <class F>
auto on(asio::io_context& io, F f) {
  return asio::post(io, asio::use_future(std::move(f))).get();
}

std::string self_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int run(const options& o) {
  raise_fd_limit();
  std::filesystem::create_directories(o.work_dir);
  fmt::print("switchboard-bench: {} operators, {} queues, {} skills, steps of {} s; work dir {}\n", o.operators,
             o.queues, o.skills, o.step_seconds, o.work_dir);

  // 1. A fresh database with the call centre.
  const std::string db_name = "switchboard_bench";
  {
    pqxx::connection admin(o.database_url);
    pqxx::nontransaction t(admin);
    t.exec("DROP DATABASE IF EXISTS " + db_name + " WITH (FORCE)");
    t.exec("CREATE DATABASE " + db_name);
  }
  const auto db_url = store::url_with_database(o.database_url, db_name);
  {
    child_process migrate({o.server_path, "migrate", "--database-url", db_url}, o.work_dir + "/migrate.log");
    if (migrate.wait() != 0) {
      fmt::print(stderr, "migration failed, see {}/migrate.log\n", o.work_dir);
      return 1;
    }
  }
  seed(db_url, o);
  fmt::print("database seeded\n");

  // 2. The simulated PBX, on its own thread.
  recorder rec;
  asio::io_context sim_io;
  pbxsim::simulator_config sim_config;
  for (int i = 1; i <= o.operators; ++i) sim_config.model.operators.push_back(extension_of(i));
  sim_config.model.operators.push_back(default_device);
  for (int q = 1; q <= o.queues; ++q) sim_config.model.route_points.push_back(route_point_of(q));
  sim_config.model.default_device = default_device;
  sim_config.model.route_timeout = 5s;
  sim_config.model.auto_answer_delay = std::chrono::milliseconds(o.answer_ms);
  sim_config.server.outbox_limit = 1'000'000;
  sim_config.server.heartbeat_interval = 5s;
  sim_config.tap.sent = [&rec](const csta::message& m) {
    if (const auto* r = std::get_if<csta::route_request>(&m)) rec.request_sent(*r);
    if (const auto* r = std::get_if<csta::re_route>(&m)) rec.re_route(r->cross_ref_identifier);
  };
  sim_config.tap.received = [&rec](const csta::message& m) {
    if (const auto* r = std::get_if<csta::route_select>(&m)) rec.select_received(r->cross_ref_identifier);
    if (const auto* r = std::get_if<csta::route_end>(&m)) rec.route_end(r->cross_ref_identifier);
  };
  auto sim = std::make_unique<pbxsim::simulator>(sim_io.get_executor(), sim_config);
  sim->start();
  auto sim_work = asio::make_work_guard(sim_io);
  std::thread sim_thread([&] { sim_io.run(); });

  // 3. The server.
  const auto desk_port = free_port();
  const auto health_port = free_port();
  {
    nlohmann::json cfg = {
        {"node_name", "bench"},
        {"log_level", "warn"},
        {"database",
         {{"url", db_url},
          {"pool_size", o.pool_size},
          {"routing_pool_size", o.routing_pool_size},
          {"writes_pool_size", o.writes_pool_size}}},
        {"health", {{"enabled", true}, {"listen", "127.0.0.1"}, {"port", health_port}}},
        {"pbx",
         {{"enabled", true},
          {"host", "127.0.0.1"},
          {"port", sim->port()},
          {"monitor_from_database", true},
          {"heartbeat_interval_ms", 5000},
          {"request_timeout_ms", 10000}}},
        {"desk", {{"enabled", true}, {"listen", "127.0.0.1"}, {"port", desk_port}, {"heartbeat_interval_ms", 10000}}},
        {"routing", {{"route_timeout_ms", 2000}}},
        {"calls", {{"ring_no_answer_seconds", 10}, {"default_wrap_up_seconds", 5}}},
        {"scheduling", {{"realtime_priority", o.realtime_priority}}},
    };
    std::ofstream(o.work_dir + "/switchboard.json") << cfg.dump(2);
  }
  child_process server({o.server_path, "-c", o.work_dir + "/switchboard.json", "run"}, o.work_dir + "/switchboard.log");
  {
    const auto until = clock::now() + 300s;
    bool up = false;
    while (!up && clock::now() < until && server.running()) {
      const auto body = http_get(health_port, "/health");
      up = body && body->find("\"pbx_link\":\"up\"") != std::string::npos;
      if (!up) std::this_thread::sleep_for(200ms);
    }
    if (!up) {
      fmt::print(stderr, "the server did not come up (PBX link up) in time, see {}/switchboard.log\n", o.work_dir);
      sim_work.reset();
      asio::post(sim_io, [&] { sim->stop(); });
      sim_io.stop();
      sim_thread.join();
      return 1;
    }
  }
  fmt::print("switchboard up (pid {}), PBX link up\n", server.pid());

  // 4. The operators' desktops, on their own thread, logged in by waves.
  asio::io_context desk_io;
  auto desk_work = asio::make_work_guard(desk_io);
  std::thread desk_thread([&] { desk_io.run(); });
  // The load generators (the PBX simulator's and the desktops' threads) may yield the CPUs to
  // the system under test (the server, started above at nice 0, and PostgreSQL), as they would
  // on hosts of their own. Their clocks then read late, if anything: route and pop latency are
  // measured on them. This thread (SELECT 1, /metrics, CPU figures) keeps its nice value.
  if (o.generators_nice != 0) {
    if (const int failed = nice_other_threads(o.generators_nice))
      fmt::print(stderr, "could not set nice {} on {} thread(s) of switchboard-bench\n", o.generators_nice, failed);
    fmt::print("load generators (PBX simulator, desktops) at nice {}\n", o.generators_nice);
  }
  if (o.generators_realtime != 0) {
    if (const int failed = realtime_other_threads(o.generators_realtime))
      fmt::print(stderr, "could not set SCHED_FIFO {} on {} thread(s) of switchboard-bench\n", o.generators_realtime,
                 failed);
    fmt::print("load generators (PBX simulator, desktops) at SCHED_FIFO {}\n", o.generators_realtime);
  }
  desk::script_stats desk_stats;
  std::atomic<bool> desks_stop{false};
  desk::script script{.port = desk_port,
                      .tenant = "bench",
                      .password = "bench",
                      .auto_ready = true,
                      .auto_answer = false,  // the phone answers (auto-answer), as a headset would
                      .wrap_up = std::chrono::milliseconds(o.wrap_up_ms)};
  const auto on_desk_event = [&rec](const std::string&, const desk::server_message& m) {
    if (const auto* offer = std::get_if<desk::offer_event>(&m)) rec.pop_received(offer->ivr);
  };
  const auto login_started = clock::now();
  for (int first = 1; first <= o.operators; first += o.login_wave) {
    const int last = std::min(o.operators, first + o.login_wave - 1);
    on(desk_io, [&] {
      for (int i = first; i <= last; ++i)
        asio::co_spawn(desk_io,
                       desk::play_operator(
                           script, "op" + std::to_string(i), desk_stats, [&desks_stop] { return desks_stop.load(); },
                           on_desk_event),
                       asio::detached);
    });
    while (true) {
      const auto [in, errors] = on(desk_io, [&] { return std::pair(desk_stats.logged_in, desk_stats.errors); });
      if (in + errors >= last) break;
      std::this_thread::sleep_for(20ms);
    }
  }
  pqxx::connection probe(db_url);
  {
    const auto until = clock::now() + 120s;
    long ready = 0;
    while (clock::now() < until) {
      ready = pqxx::nontransaction(probe).exec1("SELECT count(*) FROM presence WHERE state = 'ready'")[0].as<long>();
      if (ready >= o.operators) break;
      std::this_thread::sleep_for(200ms);
    }
    fmt::print("{} desktops logged in ({} errors) in {:.1f} s; {} operators ready\n", desk_stats.logged_in,
               desk_stats.errors, std::chrono::duration<double>(clock::now() - login_started).count(), ready);
  }

  // 5. The ramp, after the server's and its backends' idle CPU (heartbeats of the desktops,
  // timers) was measured, so that the per-call figures count the calls only.
  double idle_server_us_per_s = 0, idle_db_us_per_s = 0;
  {
    const auto server_before = usage_of(server.pid());
    const auto db_before = backends_cpu(probe);
    const auto t0 = clock::now();
    std::this_thread::sleep_for(5s);
    const auto server_after = usage_of(server.pid());
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (server_before && server_after)
      idle_server_us_per_s = static_cast<double>((server_after->cpu - server_before->cpu).count()) / seconds;
    idle_db_us_per_s = static_cast<double>(cpu_between(db_before, backends_cpu(probe)).count()) / seconds;
    fmt::print("idle: server {:.1f} % of a core, its database backends {:.1f} %\n", idle_server_us_per_s / 1e4,
               idle_db_us_per_s / 1e4);
  }
  std::vector<step_result> results;
  std::atomic<std::uint64_t> next_seq{1};
  const auto ramp_started = clock::now();
  std::mt19937_64 random(42);
  print_header();
  for (std::size_t step = 0; step < o.rates.size(); ++step) {
    const double rate = o.rates[step];
    rec.begin_step(static_cast<int>(step));
    const auto server_before = usage_of(server.pid());
    const auto server_wait_before = cpu_wait_of(server.pid());
    const auto db_before = backends_cpu(probe);
    const auto generator_before = usage_of(getpid());
    const auto metrics_before = http_get(health_port, "/metrics");
    const auto started = clock::now();
    const auto until = started + std::chrono::seconds(o.step_seconds);
    const auto measured_from = clock::now();
    // Poisson arrivals at `rate`, spread over the route points, on the simulator's thread.
    std::promise<void> paced;
    asio::co_spawn(
        sim_io,
        [&]() -> asio::awaitable<void> {
          asio::steady_timer timer(sim_io);
          std::exponential_distribution<double> gap(rate);
          std::uniform_int_distribution<int> talk(o.talk_min_ms, o.talk_max_ms);
          std::uniform_int_distribution<int> queue(1, o.queues);
          auto next = clock::now();
          while (true) {
            next += std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(gap(random)));
            if (next >= until) break;
            timer.expires_at(next);
            co_await timer.async_wait(asio::use_awaitable);
            const auto seq = next_seq++;
            sim->offer({.caller = fmt::format("+1555{:06d}", 1 + seq % static_cast<std::uint64_t>(o.customers)),
                        .dialled = route_point_of(queue(random)),
                        .correlator = "seq=" + std::to_string(seq),
                        .talk_time = std::chrono::milliseconds(talk(random)),
                        .patience = 30s});
          }
          paced.set_value();
        },
        asio::detached);
    // One plain round trip to PostgreSQL, measured beside the load.
    latency_samples select1;
    while (clock::now() < until) {
      const auto t0 = clock::now();
      pqxx::nontransaction(probe).exec("SELECT 1");
      select1.add(clock::now() - t0);
      std::this_thread::sleep_for(50ms);
    }
    paced.get_future().wait();
    std::this_thread::sleep_for(1s);  // answers to the step's last calls
    const auto server_after = usage_of(server.pid());
    const auto server_wait_after = cpu_wait_of(server.pid());
    const auto db_after = backends_cpu(probe);
    const double measured_seconds = std::chrono::duration<double>(clock::now() - measured_from).count();
    const auto generator_after = usage_of(getpid());
    const auto metrics_after = http_get(health_port, "/metrics");

    step_result r;
    r.rate = rate;
    if (metrics_before && metrics_after) {  // else the server's view stays 0, and says so
      const auto server_view = [&](std::string_view name) {
        return histogram_snapshot::parse(*metrics_after, name).since(histogram_snapshot::parse(*metrics_before, name));
      };
      const auto answered = server_view("switchboard_route_answer_seconds");
      const auto decided = server_view("switchboard_route_decision_seconds");
      r.server_answer_p50_ms = answered.quantile_ms(0.5);
      r.server_answer_p99_ms = answered.quantile_ms(0.99);
      r.server_decision_p50_ms = decided.quantile_ms(0.5);
      r.server_decision_p99_ms = decided.quantile_ms(0.99);
      const auto demotions_before = metric_value(*metrics_before, "switchboard_realtime_demotions_total");
      const auto demotions_after = metric_value(*metrics_after, "switchboard_realtime_demotions_total");
      if (demotions_before && demotions_after)
        r.realtime_demotions = static_cast<int>(*demotions_after - *demotions_before);
      if (const auto active = metric_value(*metrics_after, "switchboard_realtime_active"))
        r.realtime_active_at_end = static_cast<int>(*active);
      if (const auto pending = metric_value(*metrics_after, "switchboard_call_writes_pending"))
        r.writes_pending_at_end = *pending;
    } else {
      fmt::print(stderr, "GET /metrics failed: the server's view of this step is missing (0)\n");
    }
    latency_samples route, pop;
    step_counts counts;
    rec.collect(static_cast<int>(step), route, pop, counts);
    const double seconds = o.step_seconds;
    r.offered = counts.offered;
    r.routed = route.count();
    r.pops = pop.count();
    r.route_ends = counts.route_ends;
    r.re_routes = counts.re_routes;
    r.offered_per_s = static_cast<double>(counts.offered) / seconds;
    r.routed_per_s = static_cast<double>(route.count()) / seconds;
    r.route_p50_ms = route.quantile(0.5) / 1000;
    r.route_p99_ms = route.quantile(0.99) / 1000;
    r.route_p999_ms = route.quantile(0.999) / 1000;
    r.pop_p50_ms = pop.quantile(0.5) / 1000;
    r.pop_p99_ms = pop.quantile(0.99) / 1000;
    r.select1_p50_ms = select1.quantile(0.5) / 1000;
    if (server_before && server_after && r.routed > 0) {
      const auto per_call = [&](double busy_us, double idle_us_per_s) {
        return std::max(0.0, busy_us - idle_us_per_s * measured_seconds) / static_cast<double>(r.routed);
      };
      r.server_cpu_us_per_call =
          per_call(static_cast<double>((server_after->cpu - server_before->cpu).count()), idle_server_us_per_s);
      r.server_rss_mb = static_cast<double>(server_after->rss_bytes) / (1024.0 * 1024.0);
      r.db_cpu_us_per_call = per_call(static_cast<double>(cpu_between(db_before, db_after).count()), idle_db_us_per_s);
      const auto routed = static_cast<double>(r.routed);
      if (server_wait_before && server_wait_after)
        r.server_cpu_wait_us_per_call =
            static_cast<double>((*server_wait_after - *server_wait_before).count()) / routed;
      r.db_cpu_wait_us_per_call =
          static_cast<double>(cpu_between(db_before, db_after, &backend_time::cpu_wait).count()) / routed;
    }
    if (generator_before && generator_after)
      r.generator_cpu_percent =
          static_cast<double>((generator_after->cpu - generator_before->cpu).count()) / measured_seconds / 1e4;
    results.push_back(r);
    print_row(r);
    if (o.realtime_priority > 0 && (r.realtime_demotions > 0 || r.realtime_active_at_end == 0))
      fmt::print("  the server gave SCHED_FIFO up {} time(s) during this step; at its end the route's path was {}\n",
                 r.realtime_demotions, r.realtime_active_at_end == 1 ? "real-time again" : "at the normal priority");
    if (r.writes_pending_at_end > 1000)
      fmt::print("  the server's call-record writes are behind: {:.0f} pending at the step's end\n",
                 r.writes_pending_at_end);
    const bool broke = r.route_p99_ms > o.target_p99_ms || r.routed_per_s < 0.9 * r.offered_per_s;
    if (broke && !o.whole_ramp) {
      fmt::print("target broken at {:.0f} calls/s (route p99 {:.2f} ms, target {:.1f} ms; routed {:.0f} of {:.0f}/s)\n",
                 rate, r.route_p99_ms, o.target_p99_ms, r.routed_per_s, r.offered_per_s);
      break;
    }
    std::this_thread::sleep_for(3s);  // the step's calls end before the next step starts
  }

  // 6. Double bookings as the database saw them: one operator with two answered calls at once.
  std::this_thread::sleep_for(2s);
  const auto overlaps = pqxx::nontransaction(probe)
                            .exec1(
                                "SELECT count(*) FROM (SELECT answered_at, lag(ended_at) OVER "
                                "(PARTITION BY operator_id ORDER BY answered_at) AS previous_end FROM calls "
                                "WHERE operator_id IS NOT NULL AND answered_at IS NOT NULL) x "
                                "WHERE previous_end > answered_at")[0]
                            .as<long>();
  const auto final_usage = usage_of(server.pid());
  fmt::print(
      "double bookings: PBX saw {} RouteSelect to a busy phone; the call records show {} overlapping calls\n",
      [&] {
        std::uint64_t n = 0;
        for (const auto& r : results) n += r.re_routes;
        return n;
      }(),
      overlaps);

  // 7. Stop everything; write the JSON.
  desks_stop = true;
  desk_work.reset();
  server.stop();
  asio::post(sim_io, [&] { sim->stop(); });
  sim_work.reset();
  std::this_thread::sleep_for(200ms);
  desk_io.stop();
  sim_io.stop();
  desk_thread.join();
  sim_thread.join();

  nlohmann::json out = {
      {"machine", {{"nproc", std::thread::hardware_concurrency()}}},
      {"operators", o.operators},
      {"queues", o.queues},
      {"skills", o.skills},
      {"step_seconds", o.step_seconds},
      {"talk_ms", {o.talk_min_ms, o.talk_max_ms}},
      {"answer_ms", o.answer_ms},
      {"wrap_up_ms", o.wrap_up_ms},
      {"pool_size", o.pool_size},
      {"routing_pool_size", o.routing_pool_size},
      {"writes_pool_size", o.writes_pool_size},
      {"generators_nice", o.generators_nice},
      {"generators_realtime", o.generators_realtime},
      {"realtime_priority", o.realtime_priority},
      {"target_p99_ms", o.target_p99_ms},
      {"desktops_logged_in", desk_stats.logged_in},
      {"idle_server_cpu_percent", idle_server_us_per_s / 1e4},
      {"idle_db_cpu_percent", idle_db_us_per_s / 1e4},
      {"final_server_rss_mb", final_usage ? static_cast<double>(final_usage->rss_bytes) / (1024.0 * 1024.0) : 0.0},
      {"overlapping_calls_in_records", overlaps},
      {"steps", nlohmann::json::array()},
  };
  for (const auto& r : results) out["steps"].push_back(r.to_json());
  std::ofstream(o.json_path) << out.dump(2) << "\n";
  // The same steps as columns, for gnuplot (scripts/bench draws docs/bench-latency.png from it).
  const auto tsv_path = std::filesystem::path(o.json_path).replace_extension(".tsv").string();
  std::ofstream tsv(tsv_path);
  tsv << "# rate offered_per_s routed_per_s route_p50_ms route_p99_ms route_p999_ms pop_p50_ms pop_p99_ms "
         "select1_p50_ms server_answer_p50_ms server_answer_p99_ms server_decision_p50_ms server_decision_p99_ms\n";
  for (const auto& r : results)
    tsv << fmt::format("{} {:.1f} {:.1f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f}\n",
                       r.rate, r.offered_per_s, r.routed_per_s, r.route_p50_ms, r.route_p99_ms, r.route_p999_ms,
                       r.pop_p50_ms, r.pop_p99_ms, r.select1_p50_ms, r.server_answer_p50_ms, r.server_answer_p99_ms,
                       r.server_decision_p50_ms, r.server_decision_p99_ms);
  fmt::print("figures written to {} and {}\n", o.json_path, tsv_path);
  if (!o.samples_path.empty()) {
    rec.write_samples(o.samples_path, ramp_started, o.rates);
    fmt::print("every call's latencies written to {}\n", o.samples_path);
  }
  return overlaps == 0 ? 0 : 2;
}

}  // namespace
}  // namespace switchboard::bench

int main(int argc, char** argv) {
  using namespace switchboard::bench;
  options o;
  CLI::App cli{"switchboard-bench: load benchmark of a switchboard server (see docs/benchmarks.md)"};
  if (const char* url = std::getenv("SWITCHBOARD_BENCH_DATABASE_URL")) o.database_url = url;
  o.server_path = self_dir() + "/../../app/switchboard";
  cli.add_option("--database-url", o.database_url,
                 "PostgreSQL server to use (database switchboard_bench is made anew); default "
                 "$SWITCHBOARD_BENCH_DATABASE_URL");
  cli.add_option("--server", o.server_path, "the switchboard executable")->capture_default_str();
  cli.add_option("--operators", o.operators, "operators (each with a logged-in desktop)")->capture_default_str();
  cli.add_option("--queues", o.queues, "queues, one route point each")->capture_default_str();
  cli.add_option("--skills", o.skills, "skills (4 per operator, 1 per queue)")->capture_default_str();
  cli.add_option("--rates", o.rates, "offered calls per second, one step each")->delimiter(',')->capture_default_str();
  cli.add_option("--step-seconds", o.step_seconds, "length of each step")->capture_default_str();
  cli.add_option("--target-p99-ms", o.target_p99_ms, "the ramp stops after the step whose route p99 passes this")
      ->capture_default_str();
  cli.add_flag("--whole-ramp", o.whole_ramp, "run every step even after the target broke");
  cli.add_option("--answer-ms", o.answer_ms, "phones answer after this")->capture_default_str();
  cli.add_option("--talk-min-ms", o.talk_min_ms, "shortest talk time")->capture_default_str();
  cli.add_option("--talk-max-ms", o.talk_max_ms, "longest talk time")->capture_default_str();
  cli.add_option("--wrap-up-ms", o.wrap_up_ms, "desktop ends wrap-up after this")->capture_default_str();
  cli.add_option("--pool-size", o.pool_size, "the server's general database connections")->capture_default_str();
  cli.add_option("--routing-pool-size", o.routing_pool_size, "the router's own connections (0: the general ones)")
      ->capture_default_str();
  cli.add_option("--writes-pool-size", o.writes_pool_size, "the call-record writers' own (0: the general ones)")
      ->capture_default_str();
  cli.add_option("--generators-nice", o.generators_nice,
                 "nice value of the PBX simulator and desktops (this process), after the server started")
      ->capture_default_str();
  cli.add_option("--realtime-priority", o.realtime_priority,
                 "the server's scheduling.realtime_priority: its event loop, routing workers and their backends "
                 "under SCHED_FIFO (0: not)")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();
  cli.add_option("--generators-realtime", o.generators_realtime,
                 "the PBX simulator and desktops (this process) under SCHED_FIFO at this priority once the server "
                 "started, as if they had CPUs of their own (0: not)")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();
  cli.add_option("--work-dir", o.work_dir, "config and logs of the started processes")->capture_default_str();
  cli.add_option("--json", o.json_path, "where the figures go")->capture_default_str();
  cli.add_option("--samples", o.samples_path, "every call's offer time and route and pop latency, as columns");
  CLI11_PARSE(cli, argc, argv);
  if (o.database_url.empty()) {
    fmt::print(stderr, "switchboard-bench: no database: give --database-url or SWITCHBOARD_BENCH_DATABASE_URL\n");
    return 1;
  }
  switchboard::set_log_level("warn");
  try {
    return run(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "switchboard-bench: {}\n", e.what());
    return 1;
  }
}
