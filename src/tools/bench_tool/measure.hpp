// Figures for switchboard-bench: latency samples and their percentiles, and what /proc says
// about a process's CPU time and memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::bench {

// Latencies of one load step, in microseconds.
class latency_samples {
 public:
  void add(std::chrono::steady_clock::duration d) {
    samples_.push_back(std::chrono::duration<double, std::micro>(d).count());
  }
  std::size_t count() const { return samples_.size(); }
  // The q-quantile (0..1), nearest rank; 0 when empty.
  double quantile(double q) const;
  void clear() { samples_.clear(); }

 private:
  mutable std::vector<double> samples_;  // sorted by quantile()
};

// CPU time (user + system) and resident memory of one process, from /proc/<pid>.
struct process_usage {
  std::chrono::microseconds cpu{0};
  std::uint64_t rss_bytes = 0;
};
std::optional<process_usage> usage_of(int pid);

// Time the threads of process `pid` were runnable but waiting for a CPU (the scheduler's
// run_delay, /proc/<pid>/task/*/schedstat), summed over its threads that live now.
std::optional<std::chrono::microseconds> cpu_wait_of(int pid);

// The value of the unlabelled gauge or counter `name` in GET /metrics' text; none when absent.
std::optional<double> metric_value(std::string_view metrics_text, std::string_view name);

// One Prometheus histogram read from the server's GET /metrics, its label sets summed:
// cumulative counts by upper bound in seconds (+Inf included).
class histogram_snapshot {
 public:
  static histogram_snapshot parse(std::string_view metrics_text, std::string_view name);
  // The observations made between `earlier` and this snapshot.
  histogram_snapshot since(const histogram_snapshot& earlier) const;
  double count() const { return buckets_.empty() ? 0 : buckets_.rbegin()->second; }
  // The q-quantile in milliseconds, interpolated inside its bucket (as Prometheus'
  // histogram_quantile does); 0 when empty.
  double quantile_ms(double q) const;

 private:
  std::map<double, double> buckets_;  // le -> cumulative count
};

}  // namespace switchboard::bench
