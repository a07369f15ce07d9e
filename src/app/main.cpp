// switchboard: the CTI server's command line (run, migrate, --check-config).
#include "switchboard/app/config.hpp"
#include "switchboard/app/server.hpp"
#include "switchboard/log.hpp"
#include "switchboard/store/migrations.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
  using namespace switchboard;
  CLI::App cli{"Switchboard: a CTI server beside your PBX", "switchboard"};
  cli.set_version_flag("--version", "switchboard 0.1.0");
  std::string config_path = "config/switchboard.json";
  std::string check_path;
  cli.add_option("-c,--config", config_path, "configuration file (JSON)");
  cli.add_option("--check-config", check_path, "validate FILE and exit (0 = valid)");
  cli.fallthrough();  // subcommands inherit it: `switchboard migrate --config FILE` works too
  auto* run = cli.add_subcommand("run", "run the server (the default)");
  auto* migrate = cli.add_subcommand("migrate", "bring the database schema up to date and exit");
  std::string database_url;
  migrate->add_option("--database-url", database_url, "connect here instead of the configuration's database.url");
  cli.require_subcommand(0, 1);
  CLI11_PARSE(cli, argc, argv);
  (void)run;

  if (!check_path.empty()) {
    auto checked = app::load_config(check_path);
    if (!checked) {
      std::fprintf(stderr, "%s: %s\n", check_path.c_str(), checked.error().message().c_str());
      return 2;
    }
    std::printf("%s: configuration is valid\n", check_path.c_str());
    return 0;
  }

  if (migrate->parsed() && !database_url.empty()) {
    auto report = store::migrate(database_url);
    if (!report) {
      std::fprintf(stderr, "migrate: %s\n", report.error().message().c_str());
      return 1;
    }
    std::printf("migrate: applied %d, schema version %d\n", report->applied, report->schema_version);
    return 0;
  }

  auto cfg = app::load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s: %s\n", config_path.c_str(), cfg.error().message().c_str());
    return 2;
  }
  set_log_level(cfg->log_level);

  if (migrate->parsed()) {
    auto report = store::migrate(cfg->database.url);
    if (!report) {
      std::fprintf(stderr, "migrate: %s\n", report.error().message().c_str());
      return 1;
    }
    std::printf("migrate: applied %d, schema version %d\n", report->applied, report->schema_version);
    return 0;
  }

  try {
    app::server server(std::move(*cfg));
    return server.run();
  } catch (const std::exception& e) {
    logger("app")->critical("fatal: {}", e.what());
    return 1;
  }
}
