// The benchmarks' own databases: each bench makes one on the server its admin URL names,
// migrates it, and drops it at the end, so runs never share state.
#pragma once

#include "switchboard/store/migrations.hpp"
#include "switchboard/store/pool.hpp"

#include <pqxx/pqxx>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchboard::bench {

// Database `name` made anew on admin_url's server and migrated; its URL.
inline std::string create_migrated_database(
    const std::string& admin_url, const std::string& name,
    const std::vector<store::migration>& migrations = store::bundled_migrations()) {
  {
    pqxx::connection admin(admin_url);
    pqxx::nontransaction q(admin);
    q.exec("DROP DATABASE IF EXISTS " + name);
    q.exec("CREATE DATABASE " + name + " TEMPLATE template0");
  }
  auto url = store::url_with_database(admin_url, name);
  if (auto m = store::migrate(url, migrations); !m) throw std::runtime_error(m.error().message());
  return url;
}

// SWITCHBOARD_BENCH_DATABASE_URL (an admin URL), or empty after saying how to set it.
inline std::string admin_url_from_environment() {
  const char* url = std::getenv("SWITCHBOARD_BENCH_DATABASE_URL");
  if (url && *url) return url;
  std::fprintf(stderr,
               "SWITCHBOARD_BENCH_DATABASE_URL is not set (e.g. scripts/pg start /tmp/sbpg.bench, then its URL)\n");
  return {};
}

inline void drop_database(const std::string& admin_url, const std::string& name) {
  pqxx::connection admin(admin_url);
  pqxx::nontransaction q(admin);
  q.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

}  // namespace switchboard::bench
