// How many calls' writes the writes lane applies per second, with one connection and with two
// (calls::call_writer, as the call centre uses it). Each call writes what switchboard-bench's
// calls write after their decision (call_centre.cpp batches the same): ringing with its journal
// row, talking with the answer, wrap-up with the call's end, ready with the wrap-up's end; eight
// writes in four statements, the stages 100, 300 and 100 ms apart. The offered rate goes up in
// steps; per step: calls/s offered and applied, the most writes pending and the writes lane's
// backends' CPU per call. A step whose pending writes keep growing is past the lane's capacity.
// Needs SWITCHBOARD_BENCH_DATABASE_URL (an admin URL); makes, migrates and drops its own
// database. SWITCHBOARD_BENCH_LANES=1,2 (default) and SWITCHBOARD_BENCH_RATES=500,1000,...
#include "bench_database.hpp"
#include "switchboard/calls/call_writer.hpp"
#include "switchboard/realtime.hpp"
#include "switchboard/store/pool.hpp"

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace store = switchboard::store;
namespace calls = switchboard::calls;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int operators = 5000;  // an operator's next call starts after his last one ended, up to 5,000 calls/s
constexpr auto step_length = 6s;
constexpr int warm_up_rate = 200;  // a first step, not shown: connections opened, caches warm

std::vector<int> numbers(const char* text, std::vector<int> fallback) {
  if (!text || !*text) return fallback;
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

// CPU seconds so far of each backend of the writes lane, by pid.
std::map<int, double> backend_cpu(const std::string& url) {
  pqxx::connection conn(url);
  pqxx::nontransaction q(conn);
  std::map<int, double> out;
  for (const auto& row : q.exec("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                "AND application_name = 'switchboard-writes'"))
    if (const auto cpu = switchboard::cpu_time_of(row[0].as<int>()))  // a backend is one thread
      out[row[0].as<int>()] = std::chrono::duration<double>(*cpu).count();
  return out;
}

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::work tx(conn);
  tx.exec(sql);
  tx.commit();
}

// One call's writes at its stages (0: rung, 1: answered, 2: ended, 3: wrap-up over).
std::vector<store::call_write> stage_writes(int stage, std::int64_t op, std::int64_t call) {
  const auto now = std::chrono::system_clock::now();
  switch (stage) {
    case 0:
      return {store::presence_move{.operator_id = op, .from = {"ready", "reserved"}, .to = "ringing", .call_id = call},
              store::call_journal_entry{.call_id = call, .kind = "ringing", .operator_id = op, .at = now}};
    case 1:
      return {store::presence_move{.operator_id = op, .from = {"ringing"}, .to = "talking", .call_id = call},
              store::call_answered{.call_id = call, .operator_id = op, .at = now}};
    case 2:
      return {store::presence_move{
                  .operator_id = op, .from = {"talking"}, .to = "wrap_up", .call_id = call, .call_finished = true},
              store::call_finished{.call_id = call, .disposition = "answered", .at = now}};
    default:
      return {store::wrap_up_finished{.call_id = call, .at = now},
              store::presence_move{.operator_id = op, .from = {"wrap_up"}, .to = "ready"}};
  }
}

void run(const std::string& admin_url, int lanes, const std::vector<int>& rates) {
  const std::string name = fmt::format("sbbench_writes_{}_{}", ::getpid(), lanes);
  const auto url = switchboard::bench::create_migrated_database(admin_url, name);
  std::int64_t total_calls = 0;
  for (int rate : rates) total_calls += static_cast<std::int64_t>(rate) * step_length.count();
  total_calls += warm_up_rate * step_length.count();
  // Operators ready, and every call's row as its decision wrote it (a day of calls before them,
  // so that the foreign-key checks into calls are planned as index scans).
  exec(url, "INSERT INTO tenants (code, name) VALUES ('bench', 'Bench')");
  exec(url, fmt::format("INSERT INTO operators (tenant_id, login, password_hash) "
                        "SELECT 1, 'op' || i, '$2a$08$' || repeat('a', 53) FROM generate_series(1, {}) i",
                        operators));
  exec(url, "UPDATE presence SET state = 'ready', device = 'd' || operator_id");
  exec(url, "INSERT INTO queues (tenant_id, name) VALUES (1, 'q')");
  exec(url, fmt::format("INSERT INTO calls (tenant_id, pbx_call_id, caller, queue_id, offered_at, node) "
                        "SELECT 1, 'bench-' || i, '+1' || i, 1, now(), 'bench' FROM generate_series(1, {}) i",
                        total_calls + 10000));
  exec(url, "ANALYZE");

  asio::io_context loop;
  store::connection_pool pool(store::pool_config{.url = url, .size = 1, .writes_size = lanes});
  calls::call_writer writer(loop.get_executor(), pool, static_cast<std::size_t>(lanes), 10'000'000);
  writer.start();

  fmt::print("lanes {} ({} connection{}), {} operators\n", lanes, lanes, lanes > 1 ? "s" : "", operators);
  fmt::print("  offered/s  applied/s  max pending  pending at end  backends CPU us/call  refused  failed\n");
  constexpr std::chrono::milliseconds stage_at[] = {0ms, 100ms, 400ms, 500ms};
  std::int64_t next_call = 1;
  std::vector<int> steps = rates;
  steps.insert(steps.begin(), warm_up_rate);
  for (std::size_t step = 0; step < steps.size(); ++step) {
    const int rate = steps[step];
    const auto step_start = clock_type::now();
    const std::int64_t first_call = next_call;
    const std::int64_t calls_in_step = static_cast<std::int64_t>(rate) * step_length.count();
    const auto applied_before = writer.counters().applied;
    const auto before = backend_cpu(url);
    std::size_t max_pending = 0;
    // Every 1 ms: the stages now due, of every call of the step.
    std::int64_t due[4] = {first_call, first_call, first_call, first_call};
    asio::steady_timer tick(loop);
    const auto end = step_start + step_length + stage_at[3] + 1ms;
    while (clock_type::now() < end) {
      const auto now = clock_type::now();
      for (int stage = 0; stage < 4; ++stage) {
        const auto since = now - step_start - stage_at[stage];
        if (since < 0ms) continue;
        const auto until = std::min<std::int64_t>(
            first_call + calls_in_step,
            first_call + static_cast<std::int64_t>(std::chrono::duration<double>(since).count() * rate) + 1);
        for (; due[stage] < until; ++due[stage])
          for (auto& w : stage_writes(stage, 1 + (due[stage] - 1) % operators, due[stage])) writer.write(std::move(w));
      }
      max_pending = std::max(max_pending, writer.pending());
      tick.expires_after(1ms);
      tick.async_wait([](boost::system::error_code) {});
      loop.run_one();  // the tick, or a writer's step
      while (loop.poll_one()) {
      }
    }
    const auto pending_at_end = writer.pending();
    // The step's writes all applied before the next step starts.
    while (writer.pending() > 0) loop.run_one();
    const double seconds = std::chrono::duration<double>(clock_type::now() - step_start).count();
    double cpu = 0;  // a backend opened during the step counts from its start
    for (const auto& [pid, seconds] : backend_cpu(url)) cpu += seconds - (before.contains(pid) ? before.at(pid) : 0.0);
    const double applied_calls = static_cast<double>(writer.counters().applied - applied_before) / 8.0;
    if (step > 0)
      fmt::print("  {:9}  {:9.0f}  {:11}  {:14}  {:20.0f}  {:7}  {:6}\n", rate, applied_calls / seconds, max_pending,
                 pending_at_end, cpu * 1e6 / std::max(applied_calls, 1.0), writer.counters().refused,
                 writer.counters().failed);
    next_call = first_call + calls_in_step;
  }
  writer.stop();
  loop.run();
  pool.close();
  switchboard::bench::drop_database(admin_url, name);
}

}  // namespace

int main() {
  const auto url = switchboard::bench::admin_url_from_environment();
  if (url.empty()) return 2;
  try {
    const auto rates = numbers(std::getenv("SWITCHBOARD_BENCH_RATES"), {250, 500, 1000, 1500, 2000, 3000});
    for (int lanes : numbers(std::getenv("SWITCHBOARD_BENCH_LANES"), {1, 2})) {
      if (lanes <= 0) throw std::runtime_error("SWITCHBOARD_BENCH_LANES: positive numbers");
      run(url, lanes, rates);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_writes: %s\n", e.what());
    return 1;
  }
  return 0;
}
