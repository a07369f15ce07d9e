// Named loggers sharing one stderr sink, so lines from all parts interleave in order.
#include "switchboard/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace switchboard {
namespace {

std::mutex registry_mutex;

spdlog::sink_ptr shared_sink() {
  static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string& part) {
  std::lock_guard lock(registry_mutex);
  if (auto existing = spdlog::get(part)) return existing;
  auto created = std::make_shared<spdlog::logger>(part, shared_sink());
  created->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
  created->set_level(spdlog::get_level());
  spdlog::register_logger(created);
  return created;
}

bool set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  std::lock_guard lock(registry_mutex);
  spdlog::set_level(parsed);  // applies to every registered logger and to those created later
  return true;
}

}  // namespace switchboard
