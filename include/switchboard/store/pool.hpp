// A small pool of PostgreSQL connections on worker threads. The event loop co_awaits `run`,
// so it never blocks on the database: the work runs on a worker thread and the coroutine
// resumes on its own executor with the result. The pool has lanes: the general one and, when
// configured, a routing lane and a writes lane with connections and workers of their own, so a
// route decision never queues behind a batch of call-record writes. Store-internal: only
// src/store includes this (and the wiring that hands each part its lane).
#pragma once

#include "switchboard/error.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <pqxx/pqxx>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::store {

// Which connections a part of the server uses. A lane without connections of its own
// (size 0) is served by the general lane.
enum class pool_lane { general, routing, writes };

struct pool_config {
  std::string url;                                    // libpq URI or keyword string
  int size = 4;                                       // general lane: worker threads = connections
  int routing_size = 0;                               // routing lane (the router's decisions); 0: general
  int writes_size = 0;                                // writes lane (call-record batches); 0: general
  std::chrono::seconds connect_timeout{5};            // a dead server fails fast, never hangs
  std::chrono::milliseconds statement_timeout{5000};  // a stuck query fails, never hangs
  std::string application_name = "switchboard";
  // 1-99: the routing lane's worker threads, and its PostgreSQL backends when PostgreSQL is on
  // this host (a Unix socket), run under SCHED_FIFO at this priority (switchboard/realtime.hpp);
  // 0: the normal policy.
  int routing_realtime_priority = 0;
};

// `url` with libpq's connect_timeout and application_name added, in URI or keyword form.
std::string connection_string(const pool_config& config);

// `url` naming database `name` instead of its own (URI or keyword form).
std::string url_with_database(const std::string& url, const std::string& name);

// Opens one connection with the pool's session settings (statement timeout). Blocking.
std::unique_ptr<pqxx::connection> open_connection(const pool_config& config);

// Maps a libpqxx exception to the project's error (db_unavailable, db_constraint_violated, ...).
error to_error(const std::exception& e);

// Runs `fn()` on `where` (a thread pool) and resumes the awaiting coroutine on its own
// executor with the value: blocking calls stay off the event loop. (Plain handlers, not a
// coroutine lambda under co_spawn: g++ 12 destroys such a lambda's captures twice.)
template <class Executor, class Fn>
auto offload(Executor where, Fn fn) -> boost::asio::awaitable<std::invoke_result_t<Fn&>> {
  using value_type = std::invoke_result_t<Fn&>;
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(value_type)>(
      [where](auto handler, Fn f) {
        boost::asio::post(where, [handler = std::move(handler), f = std::move(f)]() mutable {
          value_type done = f();
          auto home = boost::asio::get_associated_executor(handler);
          boost::asio::post(home, [handler = std::move(handler), done = std::move(done)]() mutable {
            std::move(handler)(std::move(done));
          });
        });
      },
      boost::asio::use_awaitable, std::move(fn));
}

class connection_pool {
 public:
  explicit connection_pool(pool_config config);
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  // Runs `work(pqxx::connection&)` on a worker thread with a healthy connection and resumes
  // the caller on its executor. A lost server gives errc::db_unavailable (never a hang); the
  // next call reconnects. `work` owns its transaction.
  template <class Work>
  auto run(Work work) -> boost::asio::awaitable<result<std::invoke_result_t<Work&, pqxx::connection&>>> {
    using value_type = std::invoke_result_t<Work&, pqxx::connection&>;
    return offload(workers_.get_executor(), [this, work = std::move(work)]() mutable {
      if (role_ == pool_lane::routing && config_.routing_realtime_priority > 0) prioritize_this_worker();
      return execute<value_type>(work);
    });
  }

  // Blocking variant for start-up and command-line tools (never on the event loop).
  template <class Work>
  auto run_blocking(Work work) -> result<std::invoke_result_t<Work&, pqxx::connection&>> {
    return execute<std::invoke_result_t<Work&, pqxx::connection&>>(work);
  }

  // The lane `which`: its own connections, or this (general) lane when it has none. A lane is
  // a connection_pool itself, so every store function runs on whichever lane it is given.
  connection_pool& lane(pool_lane which) noexcept;

  // One flag for the database, whichever lane saw it last.
  bool database_up() const noexcept { return status_->load(); }
  const pool_config& config() const noexcept { return config_; }

  // The routing lane's real-time path (routing_realtime_priority): the thread ids of the worker
  // threads that took the priority and the process ids of its connections' local backends; empty
  // for the other lanes. Their CPU time: switchboard/realtime.hpp's cpu_meter.
  std::vector<pid_t> realtime_path() const;
  // Puts the routing lane's path at its real-time priority (true) or under the normal policy
  // (false); workers and backends that join it later follow. Every thread is switched; the first
  // failure is returned. Nothing for the other lanes.
  result<void> set_realtime(bool on);

  // Stops taking work and joins the workers of every lane; pending work still completes.
  void close();

 private:
  // The lane `name` of `owner` with `size` connections, sharing its database status.
  connection_pool(const connection_pool& owner, int size, pool_lane role, const char* name);

  template <class Value, class Work>
  result<Value> execute(Work& work) {
    auto conn = acquire();
    if (!conn) return conn.error();
    try {
      if constexpr (std::is_void_v<Value>) {
        work(**conn);
        release(std::move(*conn));
        return {};
      } else {
        Value value = work(**conn);
        release(std::move(*conn));
        return value;
      }
    } catch (const std::exception& e) {
      return failed(std::move(*conn), e);
    }
  }

  // The routing lane's real-time priority: for the calling worker thread (once per thread; never
  // for a caller of run_blocking), and for the backend of a connection it has just opened; each
  // joins the lane's path (realtime_path), and gets the priority while the path has it. A
  // failure is logged once per lane. A dropped connection's backend leaves the path.
  void prioritize_this_worker();
  void prioritize_backend(pqxx::connection& conn);
  void priority_failed(const std::string& what, const std::string& why);
  void forget_backend(const pqxx::connection& conn);

  result<std::unique_ptr<pqxx::connection>> acquire();
  void release(std::unique_ptr<pqxx::connection> conn);
  error failed(std::unique_ptr<pqxx::connection> conn, const std::exception& e);
  void mark_up();
  void mark_down(const std::string& why);

  pool_config config_;
  boost::asio::thread_pool workers_;
  std::mutex idle_mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::shared_ptr<std::atomic<bool>> status_;  // database up; shared by the lanes (one log per outage)
  pool_lane role_ = pool_lane::general;
  std::atomic<bool> priority_logged_{false};
  mutable std::mutex path_mutex_;  // the routing lane's real-time path: workers record themselves
  std::vector<pid_t> path_workers_;
  std::vector<std::pair<const pqxx::connection*, pid_t>> path_backends_;
  bool path_realtime_ = true;
  std::unique_ptr<connection_pool> routing_lane_;
  std::unique_ptr<connection_pool> writes_lane_;
};

// One round trip (SELECT 1): is the database there?
boost::asio::awaitable<result<void>> ping(connection_pool& pool);

}  // namespace switchboard::store
