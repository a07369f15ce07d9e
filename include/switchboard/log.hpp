// Named loggers, one per part ("csta", "ami", "store", "routing", "calls", "desk", "app").
// Never log passwords.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace switchboard {

// The logger of one part; created on first use with the process-wide level and pattern.
std::shared_ptr<spdlog::logger> logger(const std::string& part);

// Sets the level of every part's logger ("trace", "debug", "info", "warn", "error", "off").
// Returns false when the name is not a level.
bool set_log_level(const std::string& level);

}  // namespace switchboard
