// Connection pool: stale connections (server restarted) are found before use by a zero-timeout
// poll on the socket, so a restart costs no failed query once the server is back.
#include "switchboard/store/pool.hpp"

#include "switchboard/log.hpp"
#include "switchboard/realtime.hpp"

#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

namespace switchboard::store {
namespace {

bool is_uri(const std::string& url) { return url.rfind("postgresql:", 0) == 0 || url.rfind("postgres:", 0) == 0; }

// An idle connection has nothing to read; readable means the server closed it or sent a
// termination notice (restart, admin kill).
bool is_stale(pqxx::connection& conn) {
  if (!conn.is_open()) return true;
  pollfd fd{conn.sock(), POLLIN, 0};
  if (fd.fd < 0) return true;
  return ::poll(&fd, 1, 0) != 0;
}

// The process `pid` of this host is a PostgreSQL backend (its title, "postgres: user db ..."):
// checked before its scheduling is changed, should the pid name something else here.
bool is_local_backend(int pid) {
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  const std::string title((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  return title.rfind("postgres:", 0) == 0;
}

}  // namespace

std::string connection_string(const pool_config& config) {
  std::string out = config.url;
  const auto timeout = std::to_string(config.connect_timeout.count());
  if (is_uri(out)) {
    out += out.find('?') == std::string::npos ? '?' : '&';
    out += "connect_timeout=" + timeout + "&application_name=" + config.application_name;
  } else {
    out += " connect_timeout=" + timeout + " application_name=" + config.application_name;
  }
  return out;
}

std::string url_with_database(const std::string& url, const std::string& name) {
  if (is_uri(url)) {
    // scheme://[authority]/dbname[?params]
    const auto authority = url.find("//");
    const auto query = url.find('?');
    const auto path = url.find('/', authority == std::string::npos ? 0 : authority + 2);
    const auto end = query == std::string::npos ? url.size() : query;
    if (path == std::string::npos || path > end) return url.substr(0, end) + "/" + name + url.substr(end);
    return url.substr(0, path + 1) + name + url.substr(end);
  }
  // keyword form: replace or add dbname=
  std::string out;
  bool replaced = false;
  std::size_t pos = 0;
  while (pos < url.size()) {
    auto next = url.find(' ', pos);
    if (next == std::string::npos) next = url.size();
    auto word = url.substr(pos, next - pos);
    if (word.rfind("dbname=", 0) == 0) {
      word = "dbname=" + name;
      replaced = true;
    }
    if (!word.empty()) {
      if (!out.empty()) out.push_back(' ');
      out.append(word);
    }
    pos = next + 1;
  }
  if (!replaced) {
    if (!out.empty()) out.push_back(' ');
    out.append("dbname=").append(name);
  }
  return out;
}

std::unique_ptr<pqxx::connection> open_connection(const pool_config& config) {
  auto conn = std::make_unique<pqxx::connection>(connection_string(config));
  pqxx::nontransaction setup(*conn);
  setup.exec0("SET statement_timeout = " + std::to_string(config.statement_timeout.count()));
  return conn;
}

error to_error(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) return {errc::db_unavailable, e.what()};
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e)) return {errc::db_unavailable, e.what()};
  if (dynamic_cast<const pqxx::integrity_constraint_violation*>(&e)) return {errc::db_constraint_violated, e.what()};
  if (dynamic_cast<const pqxx::sql_error*>(&e)) return {errc::db_query_failed, e.what()};
  return {errc::db_query_failed, e.what()};
}

connection_pool::connection_pool(pool_config config)
    : config_(std::move(config)),
      workers_(static_cast<std::size_t>(config_.size > 0 ? config_.size : 1)),
      status_(std::make_shared<std::atomic<bool>>(true)) {
  if (config_.routing_size > 0)
    routing_lane_.reset(new connection_pool(*this, config_.routing_size, pool_lane::routing, "routing"));
  if (config_.writes_size > 0)
    writes_lane_.reset(new connection_pool(*this, config_.writes_size, pool_lane::writes, "writes"));
}

connection_pool::connection_pool(const connection_pool& owner, int size, pool_lane role, const char* name)
    : config_(owner.config_), workers_(static_cast<std::size_t>(size)), status_(owner.status_), role_(role) {
  config_.size = size;
  config_.routing_size = 0;
  config_.writes_size = 0;
  config_.application_name += std::string("-") + name;  // the lane shows in pg_stat_activity
}

connection_pool::~connection_pool() { close(); }

connection_pool& connection_pool::lane(pool_lane which) noexcept {
  if (which == pool_lane::routing && routing_lane_) return *routing_lane_;
  if (which == pool_lane::writes && writes_lane_) return *writes_lane_;
  return *this;
}

void connection_pool::close() {
  if (routing_lane_) routing_lane_->close();
  if (writes_lane_) writes_lane_->close();
  workers_.join();
  {
    std::lock_guard lock(path_mutex_);
    path_workers_.clear();
    path_backends_.clear();
  }
  std::lock_guard lock(idle_mutex_);
  idle_.clear();
}

void connection_pool::prioritize_this_worker() {
  thread_local bool done = false;  // a worker thread serves one lane for its whole life
  if (done) return;
  done = true;
  result<void> made;
  {
    std::lock_guard lock(path_mutex_);
    path_workers_.push_back(::gettid());
    if (path_realtime_) made = make_realtime(config_.routing_realtime_priority);
  }
  if (!made) priority_failed("its worker threads", made.error().message());
}

void connection_pool::prioritize_backend(pqxx::connection& conn) {
  const char* host = conn.hostname();
  // Over TCP the backend may be on another host, where its pid means nothing here.
  if (!host || host[0] != '/')
    return priority_failed("its PostgreSQL backends", "PostgreSQL is reached over TCP, maybe on another host");
  const int pid = conn.backendpid();
  if (!is_local_backend(pid))
    return priority_failed("its PostgreSQL backends", "pid " + std::to_string(pid) + " is no PostgreSQL backend here");
  result<void> made;
  bool realtime = false;
  {
    std::lock_guard lock(path_mutex_);
    path_backends_.emplace_back(&conn, pid);
    realtime = path_realtime_;
    if (realtime) made = make_realtime(config_.routing_realtime_priority, pid);
  }
  if (!made) return priority_failed("its PostgreSQL backends", made.error().message());
  if (realtime && !priority_logged_.exchange(true))
    logger("store")->info("routing lane: worker threads and PostgreSQL backends at SCHED_FIFO priority {}",
                          config_.routing_realtime_priority);
}

void connection_pool::forget_backend(const pqxx::connection& conn) {
  std::lock_guard lock(path_mutex_);
  std::erase_if(path_backends_, [&conn](const auto& backend) { return backend.first == &conn; });
}

std::vector<pid_t> connection_pool::realtime_path() const {
  std::lock_guard lock(path_mutex_);
  std::vector<pid_t> path = path_workers_;
  for (const auto& backend : path_backends_) path.push_back(backend.second);
  return path;
}

result<void> connection_pool::set_realtime(bool on) {
  if (role_ != pool_lane::routing || config_.routing_realtime_priority <= 0) return {};
  std::lock_guard lock(path_mutex_);
  path_realtime_ = on;
  result<void> first;
  const auto apply = [&](pid_t tid) {
    auto done = on ? make_realtime(config_.routing_realtime_priority, tid) : make_normal(tid);
    if (!done && first) first = std::move(done);
  };
  for (const pid_t tid : path_workers_) apply(tid);
  for (const auto& backend : path_backends_)
    if (is_local_backend(backend.second)) apply(backend.second);  // a pid gone (killed) may name another process
  return first;
}

void connection_pool::priority_failed(const std::string& what, const std::string& why) {
  if (priority_logged_.exchange(true)) return;
  logger("store")->warn("routing lane: {} stay at the normal scheduling priority, not SCHED_FIFO {}: {}", what,
                        config_.routing_realtime_priority, why);
}

result<std::unique_ptr<pqxx::connection>> connection_pool::acquire() {
  {
    std::lock_guard lock(idle_mutex_);
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (!is_stale(*conn)) return conn;
      forget_backend(*conn);
    }
  }
  try {
    auto conn = open_connection(config_);
    if (role_ == pool_lane::routing && config_.routing_realtime_priority > 0) prioritize_backend(*conn);
    mark_up();
    return conn;
  } catch (const std::exception& e) {
    mark_down(e.what());
    return error{errc::db_unavailable, e.what()};
  }
}

void connection_pool::release(std::unique_ptr<pqxx::connection> conn) {
  mark_up();
  std::lock_guard lock(idle_mutex_);
  idle_.push_back(std::move(conn));
}

error connection_pool::failed(std::unique_ptr<pqxx::connection> conn, const std::exception& e) {
  auto err = to_error(e);
  if (err.is(errc::db_unavailable) || !conn->is_open()) {
    mark_down(e.what());  // the connection is dropped here; the next use reconnects
    forget_backend(*conn);
    return {errc::db_unavailable, err.detail};
  }
  release(std::move(conn));  // an SQL error leaves the connection usable (its transaction rolled back)
  return err;
}

void connection_pool::mark_up() {
  if (!status_->exchange(true)) logger("store")->info("database reachable again");
}

void connection_pool::mark_down(const std::string& why) {
  // Logged once per outage, not once per query.
  if (status_->exchange(false)) {
    std::string line = why;
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    for (auto& c : line)
      if (c == '\n') c = ' ';
    logger("store")->error("database unavailable: {} (queries fail with db_unavailable; reconnecting on next use)",
                           line);
  }
}

boost::asio::awaitable<result<void>> ping(connection_pool& pool) {
  auto work = [](pqxx::connection& c) {
    pqxx::nontransaction q(c);
    q.exec1("SELECT 1");
  };
  co_return co_await pool.run(std::move(work));
}

}  // namespace switchboard::store
