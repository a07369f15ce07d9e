#include "measure.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
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

std::optional<std::chrono::microseconds> cpu_wait_of(int pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return std::nullopt;
  std::uint64_t waited_ns = 0;
  for (const auto& task : tasks) {
    std::ifstream schedstat(task.path() / "schedstat");
    std::uint64_t on_cpu = 0, waiting = 0;
    if (schedstat >> on_cpu >> waiting) waited_ns += waiting;
  }
  return std::chrono::microseconds(waited_ns / 1000);
}

// The lines of `text` that start with `prefix`, each given to `take` (which returns false to stop).
template <class Take>
void lines_starting_with(std::string_view text, std::string_view prefix, Take take) {
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    const auto line = text.substr(at, end - at);
    at = end + 1;
    if (line.starts_with(prefix) && !take(line)) return;
  }
}

std::optional<double> metric_value(std::string_view text, std::string_view name) {
  std::optional<double> value;
  lines_starting_with(text, std::string(name) + " ", [&](std::string_view line) {
    try {
      value = std::stod(std::string(line.substr(name.size() + 1)));
    } catch (const std::exception&) {
    }
    return false;
  });
  return value;
}

histogram_snapshot histogram_snapshot::parse(std::string_view text, std::string_view name) {
  histogram_snapshot out;
  const std::string prefix = std::string(name) + "_bucket{";
  lines_starting_with(text, prefix, [&](std::string_view line) {
    const auto le = line.find("le=\"");
    const auto close = line.rfind('}');
    if (le == std::string_view::npos || close == std::string_view::npos) return true;
    const auto bound_text = line.substr(le + 4, line.find('"', le + 4) - (le + 4));
    try {  // a line that does not parse is skipped, not the run
      const double bound =
          bound_text == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(std::string(bound_text));
      out.buckets_[bound] += std::stod(std::string(line.substr(close + 1)));
    } catch (const std::exception&) {
    }
    return true;
  });
  return out;
}

histogram_snapshot histogram_snapshot::since(const histogram_snapshot& earlier) const {
  histogram_snapshot out = *this;
  for (auto& [bound, count] : out.buckets_)
    if (auto it = earlier.buckets_.find(bound); it != earlier.buckets_.end()) count -= it->second;
  return out;
}

double histogram_snapshot::quantile_ms(double q) const {
  const double total = count();
  if (total <= 0) return 0;
  const double rank = q * total;
  double lower = 0, below = 0;
  for (const auto& [bound, cumulative] : buckets_) {
    if (cumulative >= rank) {
      if (std::isinf(bound)) return lower * 1000;  // past the last bound: its value is all we know
      const double in_bucket = cumulative - below;
      const double fraction = in_bucket > 0 ? (rank - below) / in_bucket : 1;
      return (lower + (bound - lower) * fraction) * 1000;
    }
    lower = bound;
    below = cumulative;
  }
  return lower * 1000;
}

}  // namespace switchboard::bench
