// Test support: a fresh database per test on the throwaway cluster that ./scripts/test starts
// (SWITCHBOARD_TEST_DATABASE_URL), and a way to stop and start that cluster.
#pragma once

#include <string>

namespace switchboard::testing {

// The cluster's admin URL; fails the test run loudly when the variable is missing.
std::string admin_url();

// A new, empty database that is dropped at the end of its scope; optionally migrated.
class test_database {
 public:
  explicit test_database(bool migrated = true);
  ~test_database();
  test_database(const test_database&) = delete;
  test_database& operator=(const test_database&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }

  // Runs SQL (several statements allowed) in its own transaction; throws on error.
  void exec(const std::string& sql) const;
  // First column of the first row as text ("" for NULL); throws on error or no row.
  std::string scalar(const std::string& sql) const;

 private:
  std::string name_;
  std::string url_;
};

// Stops and starts the whole throwaway cluster (scripts/pg). Tests that use these are
// registered RUN_SERIAL so no other test sees the outage.
void stop_cluster();
void start_cluster();

// Path of a built tool (e.g. "src/app/switchboard") under the build tree.
std::string built_binary(const std::string& relative);
std::string source_path(const std::string& relative);

// Runs a shell command; returns its exit status and fills `output` with stdout+stderr.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace switchboard::testing
