// Schema migrations: sql/migrations/NNNN_name.sql, bundled into the binary, applied in order,
// each in its own transaction and recorded in schema_migrations; a second run does nothing.
#pragma once

#include "switchboard/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace switchboard::store {

struct migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Every migration in sql/migrations, in version order (generated at build time).
const std::vector<migration>& bundled_migrations();

struct migrate_report {
  int applied = 0;         // migrations applied by this run
  int schema_version = 0;  // highest version now recorded
};

// Applies what is missing to the database at `url`. Blocking: for `switchboard migrate`,
// start-up and tests, never on the event loop. Two nodes migrating at once serialise on an
// advisory lock. A migration whose text changed after it was applied is refused.
result<migrate_report> migrate(const std::string& url, const std::vector<migration>& migrations = bundled_migrations());

// Highest applied version, 0 on an empty database.
result<int> schema_version(const std::string& url);

}  // namespace switchboard::store
