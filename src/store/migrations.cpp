// Migration runner: advisory lock, one transaction per migration, checksums against edits.
#include "switchboard/store/migrations.hpp"

#include "switchboard/log.hpp"
#include "switchboard/store/pool.hpp"

#include <fmt/format.h>

namespace switchboard::store {
namespace {

constexpr long long migration_lock_key = 0x5377'6974'6368;  // "Switch"

std::string checksum(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a, 64 bit
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return fmt::format("{:016x}", hash);
}

constexpr const char* create_journal = R"(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))";

}  // namespace

result<migrate_report> migrate(const std::string& url, const std::vector<migration>& migrations) {
  auto log = logger("store");
  migrate_report report;
  std::unique_ptr<pqxx::connection> conn;
  try {
    conn = open_connection(pool_config{.url = url});
  } catch (const std::exception& e) {
    return to_error(e);
  }
  try {
    pqxx::nontransaction session(*conn);
    session.exec("SET client_min_messages = warning");
    session.exec("SELECT pg_advisory_lock(" + std::to_string(migration_lock_key) + ")");
    session.exec(create_journal);
    session.commit();
  } catch (const std::exception& e) {
    return to_error(e);
  }
  for (const auto& m : migrations) {
    const std::string label = fmt::format("{:04d}_{}", m.version, m.name);
    try {
      pqxx::work tx(*conn);
      auto row = tx.exec_params("SELECT checksum FROM schema_migrations WHERE version = $1", m.version);
      if (!row.empty()) {
        if (row[0][0].as<std::string>() != checksum(m.sql))
          return error{errc::db_migration_failed,
                       label + " was changed after it was applied; add a new migration instead of editing it"};
        continue;
      }
      tx.exec(std::string(m.sql));
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", m.version,
                     std::string(m.name), checksum(m.sql));
      tx.commit();
      ++report.applied;
      log->info("applied migration {}", label);
    } catch (const std::exception& e) {
      auto err = to_error(e);
      return error{errc::db_migration_failed, label + ": " + err.detail};
    }
  }
  try {
    pqxx::nontransaction session(*conn);
    report.schema_version = session.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
    session.exec("SELECT pg_advisory_unlock(" + std::to_string(migration_lock_key) + ")");
  } catch (const std::exception& e) {
    return to_error(e);
  }
  return report;
}

result<int> schema_version(const std::string& url) {
  try {
    auto conn = open_connection(pool_config{.url = url});
    pqxx::nontransaction q(*conn);
    if (q.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>()) return 0;
    return q.exec("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0].as<int>();
  } catch (const std::exception& e) {
    return to_error(e);
  }
}

}  // namespace switchboard::store
