// Statements on the event loop with libpq's asynchronous API (see loop_lane.hpp). The socket is
// waited on through a dup() of it in an Asio descriptor; before each wait a zero-timeout poll
// looks for data already there, since the reactor reports a socket's readiness only once.
#include "switchboard/store/loop_lane.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_set>

namespace switchboard::store {
namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct loop_lane::connection {
  PGconn* conn = nullptr;
  std::optional<asio::posix::stream_descriptor> socket;
  std::unordered_set<std::string> prepared;

  void close() {
    socket.reset();  // its own dup() of the socket
    if (conn) PQfinish(conn);
    conn = nullptr;
    prepared.clear();
  }
  ~connection() { close(); }
};

struct loop_lane::waiter {
  explicit waiter(const asio::any_io_executor& loop) : wake(loop, asio::steady_timer::time_point::max()) {}
  asio::steady_timer wake;
  connection* given = nullptr;
};

namespace {

// `events` (POLLIN, POLLOUT) can be had without waiting.
bool ready_now(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 0) > 0;
}

// An idle connection has nothing to read; readable means the server closed it (restart, kill).
bool is_stale(PGconn* conn) { return PQstatus(conn) != CONNECTION_OK || ready_now(PQsocket(conn), POLLIN); }

std::string one_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// An SQL error's SQLSTATE class decides how it is reported (as to_error does for libpqxx's).
error statement_error(const PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const std::string code = state ? state : "";
  const auto message = one_line(PQresultErrorMessage(r));
  if (code.rfind("08", 0) == 0 || code.rfind("57P", 0) == 0) return {errc::db_unavailable, message};
  if (code.rfind("23", 0) == 0) return {errc::db_constraint_violated, message};
  return {errc::db_query_failed, message};
}

// Connects with the pool's session settings; blocking, so never on the loop. The connection
// comes back in non-blocking mode, or with the reason it could not be opened.
std::pair<PGconn*, std::string> open(const pool_config& config) {
  PGconn* conn = PQconnectdb(connection_string(config).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = one_line(PQerrorMessage(conn));
    PQfinish(conn);
    return {nullptr, why};
  }
  const auto setup = "SET statement_timeout = " + std::to_string(config.statement_timeout.count());
  PGresult* r = PQexec(conn, setup.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string why = ok ? "" : one_line(PQresultErrorMessage(r));
  PQclear(r);
  if (ok && PQsetnonblocking(conn, 1) != 0) why = one_line(PQerrorMessage(conn));
  if (!why.empty()) {
    PQfinish(conn);
    return {nullptr, why};
  }
  return {conn, ""};
}

}  // namespace

loop_lane::loop_lane(asio::any_io_executor loop, asio::any_io_executor blocking, connection_pool& pool, int size)
    : loop_(std::move(loop)), blocking_(std::move(blocking)), pool_(pool) {
  for (int i = 0; i < std::max(size, 1); ++i) {
    connections_.push_back(std::make_unique<connection>());
    idle_.push_back(connections_.back().get());
  }
}

loop_lane::~loop_lane() = default;

std::size_t loop_lane::busy() const noexcept { return connections_.size() - idle_.size() + waiters_.size(); }

asio::awaitable<loop_lane::connection*> loop_lane::acquire() {
  if (!idle_.empty()) {
    auto* c = idle_.back();
    idle_.pop_back();
    co_return c;
  }
  auto w = std::make_shared<waiter>(loop_);
  waiters_.push_back(w);
  co_await w->wake.async_wait(use_tuple);  // release() hands over a connection and cancels this
  co_return w->given;
}

void loop_lane::release(connection* c) {
  if (waiters_.empty()) {
    idle_.push_back(c);
    return;
  }
  auto w = std::move(waiters_.front());
  waiters_.pop_front();
  w->given = c;
  w->wake.cancel();
}

asio::awaitable<result<void>> loop_lane::connect(connection& c) {
  auto opened = co_await offload(blocking_, [config = pool_.config()] { return open(config); });
  if (!opened.first) {
    pool_.mark_down(opened.second);
    co_return error{errc::db_unavailable, opened.second};
  }
  c.conn = opened.first;
  c.socket.emplace(loop_, ::dup(PQsocket(c.conn)));
  co_return result<void>{};
}

error loop_lane::lost(connection& c, const std::string& why) {
  const auto line = one_line(why);
  c.close();  // the next statement on it reconnects
  pool_.mark_down(line);
  return {errc::db_unavailable, line};
}

// Reads until libpq has the statement's whole answer; its first error, or its last result.
asio::awaitable<result<PGresult*>> loop_lane::collect(connection& c) {
  const int fd = PQsocket(c.conn);
  for (;;) {
    const int flushed = PQflush(c.conn);
    if (flushed == 0) break;
    if (flushed < 0) co_return lost(c, PQerrorMessage(c.conn));
    if (!ready_now(fd, POLLOUT)) co_await c.socket->async_wait(asio::posix::stream_descriptor::wait_write, use_tuple);
  }
  PGresult* kept = nullptr;
  std::optional<error> failed;
  for (;;) {
    while (PQisBusy(c.conn)) {
      if (!ready_now(fd, POLLIN)) {
        auto [ec] = co_await c.socket->async_wait(asio::posix::stream_descriptor::wait_read, use_tuple);
        if (ec) {
          if (kept) PQclear(kept);
          co_return lost(c, "waiting for the database: " + ec.message());
        }
      }
      if (PQconsumeInput(c.conn) == 0) {
        if (kept) PQclear(kept);
        co_return lost(c, PQerrorMessage(c.conn));
      }
    }
    PGresult* r = PQgetResult(c.conn);
    if (!r) break;
    const auto status = PQresultStatus(r);
    if ((status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE) && !failed) failed = statement_error(r);
    if (kept) PQclear(kept);
    kept = r;
  }
  if (PQstatus(c.conn) != CONNECTION_OK) {
    if (kept) PQclear(kept);
    co_return lost(c, failed ? failed->detail : PQerrorMessage(c.conn));
  }
  if (failed) {
    if (kept) PQclear(kept);
    co_return *failed;
  }
  if (!kept) co_return error{errc::db_query_failed, "the database sent no result"};
  co_return kept;
}

asio::awaitable<result<pg_result>> loop_lane::send_and_wait(connection& c, const char* name, const char* sql,
                                                            const std::vector<std::optional<std::string>>& parameters) {
  const int count = static_cast<int>(parameters.size());
  if (!c.prepared.contains(name)) {
    if (PQsendPrepare(c.conn, name, sql, count, nullptr) == 0) co_return lost(c, PQerrorMessage(c.conn));
    auto prepared = co_await collect(c);
    if (!prepared) co_return prepared.error();
    PQclear(*prepared);
    c.prepared.insert(name);
  }
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const auto& p : parameters) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryPrepared(c.conn, name, count, values.data(), nullptr, nullptr, 0) == 0)
    co_return lost(c, PQerrorMessage(c.conn));
  auto answer = co_await collect(c);
  if (!answer) co_return answer.error();
  co_return pg_result(*answer);
}

asio::awaitable<result<pg_result>> loop_lane::run(const char* name, const char* sql,
                                                  std::vector<std::optional<std::string>> parameters) {
  auto* c = co_await acquire();
  if (c->conn && is_stale(c->conn)) c->close();
  if (!c->conn) {
    if (auto connected = co_await connect(*c); !connected) {
      release(c);
      co_return connected.error();
    }
  }
  auto answer = co_await send_and_wait(*c, name, sql, parameters);
  if (c->conn) pool_.mark_up();
  release(c);
  co_return answer;
}

}  // namespace switchboard::store
