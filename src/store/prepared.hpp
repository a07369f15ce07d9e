// Store-internal: prepared statements on a pool connection. Preparing again with the same text
// is a no-op in libpqxx, so callers prepare on first use per connection.
#pragma once

#include <pqxx/pqxx>

#include <chrono>
#include <utility>

namespace switchboard::store::detail {

// Runs one prepared statement in `tx`.
template <class Transaction, class... Args>
pqxx::result exec_prepared_in(Transaction& tx, pqxx::connection& conn, const char* name, const char* sql,
                              Args&&... args) {
  conn.prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// Seconds since the epoch, for to_timestamp() in SQL.
inline double epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace switchboard::store::detail
