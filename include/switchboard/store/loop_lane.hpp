// Connections whose statements run on the event loop itself with libpq's asynchronous API: the
// loop sends a prepared statement and waits on the connection's socket like on any other, so a
// statement costs no hand-off to a worker thread and back (two thread wake-ups, 0.3 ms of a route
// decision's median and ~2 ms of its p99 at 200 calls/s; docs/benchmarks.md). Connecting is the
// one blocking step and runs on the `blocking` executor. The router's decisions use it; results
// are read like libpqxx rows, so one parser serves both kinds of lane. Store-internal.
#pragma once

#include "switchboard/error.hpp"
#include "switchboard/store/pool.hpp"

#include <libpq-fe.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <charconv>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace switchboard::store {

// One value of a result, converted on demand like pqxx::field (`as<T>()` throws on NULL).
class pg_field {
 public:
  pg_field(const PGresult* result, int row, int column) : result_(result), row_(row), column_(column) {}
  bool is_null() const { return PQgetisnull(result_, row_, column_) != 0; }

  template <class T>
  T as() const {
    if (is_null()) throw std::domain_error(std::string("NULL in column ") + PQfname(result_, column_));
    const char* text = PQgetvalue(result_, row_, column_);
    const auto length = static_cast<std::size_t>(PQgetlength(result_, row_, column_));
    if constexpr (std::is_same_v<T, std::string>) {
      return std::string(text, length);
    } else if constexpr (std::is_same_v<T, bool>) {
      return length > 0 && text[0] == 't';
    } else {
      static_assert(std::is_integral_v<T>, "pg_field converts to strings, booleans and integers");
      T value{};
      const auto [end, ec] = std::from_chars(text, text + length, value);
      if (ec != std::errc{} || end != text + length)
        throw std::invalid_argument("not an integer in column " + std::string(PQfname(result_, column_)));
      return value;
    }
  }

  template <class T>
  T as(T fallback) const {
    return is_null() ? fallback : as<T>();
  }

 private:
  const PGresult* result_;
  int row_;
  int column_;
};

class pg_row {
 public:
  pg_row(const PGresult* result, int row) : result_(result), row_(row) {}
  pg_field operator[](int column) const {
    if (column < 0 || column >= PQnfields(result_)) throw std::out_of_range("no column " + std::to_string(column));
    return {result_, row_, column};
  }
  pg_field operator[](const char* name) const {
    const int column = PQfnumber(result_, name);
    if (column < 0) throw std::out_of_range(std::string("no column ") + name);
    return {result_, row_, column};
  }

 private:
  const PGresult* result_;
  int row_;
};

// A statement's rows; keeps libpq's result alive while rows and fields are read.
class pg_result {
 public:
  explicit pg_result(PGresult* result) : result_(result, &PQclear) {}
  std::size_t size() const { return static_cast<std::size_t>(PQntuples(result_.get())); }
  bool empty() const { return size() == 0; }
  pg_row operator[](std::size_t row) const { return {result_.get(), static_cast<int>(row)}; }
  pg_row at(std::size_t row) const {
    if (row >= size()) throw std::out_of_range("no row " + std::to_string(row));
    return (*this)[row];
  }

 private:
  std::shared_ptr<PGresult> result_;
};

class loop_lane {
 public:
  // `size` connections to `pool`'s database with its session settings, opened on first use;
  // `pool` also shares its database-up flag (one outage is logged once, whichever lane saw it).
  loop_lane(boost::asio::any_io_executor loop, boost::asio::any_io_executor blocking, connection_pool& pool, int size);
  ~loop_lane();
  loop_lane(const loop_lane&) = delete;
  loop_lane& operator=(const loop_lane&) = delete;

  // Runs prepared statement `name` (prepared from `sql` on first use per connection) outside a
  // transaction block. Waits for a free connection when all are busy, in the order asked. A lost
  // server gives errc::db_unavailable and the next statement reconnects; an SQL error
  // db_query_failed (db_constraint_violated for a violated constraint), the connection kept.
  template <class... Args>
  boost::asio::awaitable<result<pg_result>> exec_prepared(const char* name, const char* sql, const Args&... args) {
    return run(name, sql, {parameter(args)...});
  }

  // Statements running or waiting now (for tests and the health of a stop).
  std::size_t busy() const noexcept;

 private:
  struct connection;
  struct waiter;

  static std::optional<std::string> parameter(const std::string& text) { return text; }
  static std::optional<std::string> parameter(const char* text) { return std::string(text); }
  static std::optional<std::string> parameter(const std::optional<std::string>& text) { return text; }
  static std::optional<std::string> parameter(bool flag) { return std::string(flag ? "t" : "f"); }
  template <class Number>
  requires std::is_arithmetic_v<Number>
  static std::optional<std::string> parameter(Number number) { return std::to_string(number); }

  boost::asio::awaitable<result<pg_result>> run(const char* name, const char* sql,
                                                std::vector<std::optional<std::string>> parameters);
  boost::asio::awaitable<connection*> acquire();
  void release(connection* c);
  boost::asio::awaitable<result<void>> connect(connection& c);
  boost::asio::awaitable<result<pg_result>> send_and_wait(connection& c, const char* name, const char* sql,
                                                          const std::vector<std::optional<std::string>>& parameters);
  boost::asio::awaitable<result<PGresult*>> collect(connection& c);
  error lost(connection& c, const std::string& why);

  boost::asio::any_io_executor loop_;
  boost::asio::any_io_executor blocking_;
  connection_pool& pool_;
  std::vector<std::unique_ptr<connection>> connections_;
  std::vector<connection*> idle_;
  std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace switchboard::store
