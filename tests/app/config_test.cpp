// Configuration: each error is one line naming the key; the binary exits non-zero on it.
#include "switchboard/app/config.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace switchboard {
namespace {

struct bad_config {
  const char* text;
  const char* expected_line;
  friend void PrintTo(const bad_config& c, std::ostream* os) { *os << c.text; }
};

class ConfigErrors : public ::testing::TestWithParam<bad_config> {};

TEST_P(ConfigErrors, GiveOneLineNamingTheKey) {
  auto parsed = app::parse_config_text(GetParam().text);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_TRUE(parsed.error().is(errc::config_invalid));
  EXPECT_EQ(parsed.error().detail, GetParam().expected_line);
  EXPECT_EQ(parsed.error().detail.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Each, ConfigErrors,
    ::testing::Values(
        bad_config{R"({"databse": {}})",
                   "config key 'databse': unknown key (check the spelling; see docs/configuration.md)"},
        bad_config{R"({"database": {"pool_size": "four"}})",
                   "config key 'database.pool_size': expected an integer, got a string"},
        bad_config{R"({"database": {"pool_size": 0}})",
                   "config key 'database.pool_size': must be between 1 and 64, got 0"},
        bad_config{R"({"database": {"url": 5}})", "config key 'database.url': expected a string, got an integer"},
        bad_config{R"({"health": {"enabled": "yes"}})",
                   "config key 'health.enabled': expected true or false, got a string"},
        bad_config{R"({"health": {"port": 70000}})",
                   "config key 'health.port': must be between 0 and 65535, got 70000"},
        bad_config{R"({"health": {"prot": 1}})",
                   "config key 'health.prot': unknown key (check the spelling; see docs/configuration.md)"},
        bad_config{R"({"database": []})", "config key 'database': must be an object, got an array"},
        bad_config{R"({"log_level": "loud"})",
                   "config key 'log_level': expected one of trace, debug, info, warn, error, critical, off"},
        bad_config{R"([1, 2])", "config: the document must be a JSON object, got an array"},
        bad_config{R"({"pbx": {"session": "dmcc"}})",
                   "config key 'pbx.session': expected one of system_status, application_session, got \"dmcc\""},
        bad_config{R"({"pbx": {"route_points": ["5000", 5001]}})",
                   "config key 'pbx.route_points': expected an array of non-empty strings"},
        bad_config{R"({"desk": {"second_login": "maybe"}})",
                   "config key 'desk.second_login': expected one of refuse, take_over, got \"maybe\""},
        bad_config{R"({"desk": {"tls": {"enabled": true}}})",
                   "config section 'desk': desk.tls needs certificate_file and private_key_file"},
        bad_config{R"({"routing": {"route_timeout_ms": 5}})",
                   "config key 'routing.route_timeout_ms': must be between 10 and 60000, got 5"},
        bad_config{R"({"calls": {"wrap_up": 5}})",
                   "config key 'calls.wrap_up': unknown key (check the spelling; see docs/configuration.md)"}));

TEST(Config, NotJsonIsOneLine) {
  auto parsed = app::parse_config_text("{ \"node_name\": ");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().detail.rfind("config is not valid JSON", 0), 0u) << parsed.error().detail;
}

TEST(Config, ExampleFileIsValid) {
  auto loaded = app::load_config(testing::source_path("config/switchboard.example.json"));
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message();
}

TEST(Config, MissingDatabaseUrlNamesTheKeyAndTheVariable) {
  const std::string path = ::testing::TempDir() + "/no-url.json";
  std::ofstream(path) << R"({"node_name": "n1"})";
  ::unsetenv("SWITCHBOARD_DATABASE_URL");
  auto loaded = app::load_config(path);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_EQ(loaded.error().detail,
            "config key 'database.url': missing (set it in the file or in SWITCHBOARD_DATABASE_URL)");
  ::setenv("SWITCHBOARD_DATABASE_URL", "postgresql:///x", 1);
  auto with_env = app::load_config(path);
  ASSERT_TRUE(with_env.has_value());
  EXPECT_EQ(with_env->database.url, "postgresql:///x");
  ::unsetenv("SWITCHBOARD_DATABASE_URL");
}

TEST(Config, DefaultsAreSensible) {
  auto parsed = app::parse_config_text(R"({"database": {"url": "postgresql:///sb"}})");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->database.pool_size, 4);
  EXPECT_EQ(parsed->database.routing_pool_size, 2) << "decisions have connections of their own by default";
  EXPECT_EQ(parsed->database.writes_pool_size, 2);
  EXPECT_EQ(parsed->health.port, 8480);
  EXPECT_EQ(parsed->log_level, "info");
}

TEST(Config, PoolLanesAreReadAndZeroSharesTheGeneralLane) {
  auto parsed = app::parse_config_text(
      R"({"database": {"url": "postgresql:///sb", "pool_size": 3, "routing_pool_size": 0, "writes_pool_size": 3}})");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message();
  EXPECT_EQ(parsed->database.pool_size, 3);
  EXPECT_EQ(parsed->database.routing_pool_size, 0);
  EXPECT_EQ(parsed->database.writes_pool_size, 3);
  auto bad = app::parse_config_text(R"({"database": {"url": "postgresql:///sb", "routing_pool_size": -1}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().detail, "config key 'database.routing_pool_size': must be between 0 and 64, got -1");
}

// A configuration with this "scheduling" section (or none).
result<app::config> with_scheduling(const std::string& section) {
  return app::parse_config_text(R"({"database": {"url": "postgresql:///sb"})" +
                                (section.empty() ? std::string() : R"(, "scheduling": )" + section) + "}");
}

TEST(Config, TheRoutePathsRealtimePriorityIsOffUnlessGivenAndWithinOneToNinetyNine) {
  auto plain = with_scheduling("");
  ASSERT_TRUE(plain.has_value()) << plain.error().message();
  EXPECT_EQ(plain->scheduling.realtime_priority, 0);
  auto given = with_scheduling(R"({"realtime_priority": 10})");
  ASSERT_TRUE(given.has_value()) << given.error().message();
  EXPECT_EQ(given->scheduling.realtime_priority, 10);
  auto bad = with_scheduling(R"({"realtime_priority": 100})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().detail, "config key 'scheduling.realtime_priority': must be between 0 and 99, got 100");
  auto typo = with_scheduling(R"({"priority": 10})");
  ASSERT_FALSE(typo.has_value());
  EXPECT_EQ(typo.error().detail,
            "config key 'scheduling.priority': unknown key (check the spelling; see docs/configuration.md)");
}

TEST(Config, TheRealtimeCpuLimitIsThirtyPercentUnlessGivenAndWithinOneToAHundred) {
  EXPECT_EQ(with_scheduling("")->scheduling.realtime_cpu_limit, 30);
  auto given = with_scheduling(R"({"realtime_cpu_limit": 60})");
  ASSERT_TRUE(given.has_value()) << given.error().message();
  EXPECT_EQ(given->scheduling.realtime_cpu_limit, 60);
  for (const std::string limit : {"0", "101"}) {
    auto bad = with_scheduling(R"({"realtime_cpu_limit": )" + limit + "}");
    ASSERT_FALSE(bad.has_value()) << limit;
    EXPECT_EQ(bad.error().detail,
              "config key 'scheduling.realtime_cpu_limit': must be between 1 and 100, got " + limit);
  }
}

// The binary: --check-config prints one line naming the key and exits non-zero.
TEST(SwitchboardBinary, CheckConfigRejectsABadFileWithOneLine) {
  const std::string path = ::testing::TempDir() + "/bad.json";
  std::ofstream(path) << R"({"database": {"url": "postgresql:///sb", "pool_size": -1}})";
  std::string output;
  int status = testing::run_command(testing::built_binary("src/app/switchboard") + " --check-config " + path, &output);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(output,
            path + ": configuration is invalid: config key 'database.pool_size': must be between 1 and 64, got -1\n");
}

TEST(SwitchboardBinary, CheckConfigAcceptsTheExample) {
  std::string output;
  int status = testing::run_command(testing::built_binary("src/app/switchboard") + " --check-config " +
                                        testing::source_path("config/switchboard.example.json"),
                                    &output);
  EXPECT_EQ(status, 0) << output;
}

TEST(SwitchboardBinary, UnreadableFileIsOneLine) {
  std::string output;
  int status =
      testing::run_command(testing::built_binary("src/app/switchboard") + " --check-config /nonexistent.json", &output);
  EXPECT_EQ(status, 2);
  EXPECT_EQ(
      output,
      "/nonexistent.json: configuration file cannot be read (check the path and permissions): /nonexistent.json\n");
}

TEST(SwitchboardBinary, MigrateBuildsTheSchemaOnAnEmptyDatabase) {
  testing::test_database db(/*migrated=*/false);
  std::string output;
  const auto command = testing::built_binary("src/app/switchboard") + " migrate --database-url '" + db.url() + "'";
  ASSERT_EQ(testing::run_command(command, &output), 0) << output;
  EXPECT_NE(output.find("schema version"), std::string::npos) << output;
  EXPECT_EQ(db.scalar("SELECT to_regclass('presence') IS NOT NULL"), "t");
  ASSERT_EQ(testing::run_command(command, &output), 0) << output;
  EXPECT_NE(output.find("applied 0"), std::string::npos) << output;
}

}  // namespace
}  // namespace switchboard
