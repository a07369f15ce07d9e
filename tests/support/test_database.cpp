// Test support: per-test databases on the throwaway cluster.
#include "test_database.hpp"

#include "switchboard/store/migrations.hpp"
#include "switchboard/store/pool.hpp"

#include <pqxx/pqxx>

#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace switchboard::testing {
namespace {

std::string env_or_die(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) {
    std::fprintf(stderr, "%s is not set: run the tests through ./scripts/test, which starts PostgreSQL\n", name);
    std::abort();
  }
  return value;
}

}  // namespace

std::string admin_url() { return env_or_die("SWITCHBOARD_TEST_DATABASE_URL"); }

test_database::test_database(bool migrated) {
  static std::atomic<int> counter{0};
  name_ = "sbtest_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  {
    pqxx::connection admin(admin_url());
    pqxx::nontransaction q(admin);
    q.exec("DROP DATABASE IF EXISTS " + name_);
    q.exec("CREATE DATABASE " + name_ + " TEMPLATE template0");
  }
  url_ = store::url_with_database(admin_url(), name_);
  if (migrated) {
    auto report = store::migrate(url_);
    if (!report) throw std::runtime_error("migrate failed: " + report.error().message());
  }
}

test_database::~test_database() {
  try {
    pqxx::connection admin(admin_url());
    pqxx::nontransaction q(admin);
    q.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
    // the cluster may be down at the end of a failed restart test; the directory goes anyway
  }
}

void test_database::exec(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::work tx(c);
  tx.exec(sql);
  tx.commit();
}

std::string test_database::scalar(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::work tx(c);
  auto row = tx.exec1(sql);
  tx.commit();
  return row[0].is_null() ? std::string() : row[0].as<std::string>();
}

int run_command(const std::string& command, std::string* output) {
  std::string text;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) text.append(buffer.data(), n);
  int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void stop_cluster() {
  std::string out;
  if (run_command(env_or_die("SWITCHBOARD_TEST_PG_SCRIPT") + " stop " + env_or_die("SWITCHBOARD_TEST_PG_DIR"), &out) !=
      0)
    throw std::runtime_error("stopping the cluster failed: " + out);
}

void start_cluster() {
  std::string out;
  if (run_command(env_or_die("SWITCHBOARD_TEST_PG_SCRIPT") + " start " + env_or_die("SWITCHBOARD_TEST_PG_DIR"), &out) !=
      0)
    throw std::runtime_error("starting the cluster failed: " + out);
}

std::string built_binary(const std::string& relative) {
  const char* dir = std::getenv("SWITCHBOARD_BUILD_DIR");
  return std::string(dir && *dir ? dir : SWITCHBOARD_DEFAULT_BUILD_DIR) + "/" + relative;
}

std::string source_path(const std::string& relative) {
  const char* dir = std::getenv("SWITCHBOARD_SOURCE_DIR");
  return std::string(dir && *dir ? dir : SWITCHBOARD_DEFAULT_SOURCE_DIR) + "/" + relative;
}

}  // namespace switchboard::testing
