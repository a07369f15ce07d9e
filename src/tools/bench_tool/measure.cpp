#include "measure.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

namespace switchboard::bench {

double latency_samples::quantile(double q) const {
  if (samples_.empty()) return 0;
  std::sort(samples_.begin(), samples_.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples_.size())));
  return samples_[std::clamp<std::size_t>(rank, 1, samples_.size()) - 1];
}

std::optional<process_usage> usage_of(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return std::nullopt;
  // The command name is in parentheses and may hold spaces: fields count from the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0, rss_pages = 0;
  // Field 3 (state) is the first after ')'; utime and stime are fields 14 and 15, rss field 24.
  for (int i = 3; i <= 24 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
    if (i == 24) rss_pages = std::stoull(field);
  }
  const auto ticks = static_cast<std::uint64_t>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  return process_usage{.cpu = std::chrono::microseconds((utime + stime) * 1'000'000 / ticks),
                       .rss_bytes = rss_pages * page};
}

}  // namespace switchboard::bench
