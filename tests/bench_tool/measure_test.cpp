// The figures switchboard-bench prints from the server's GET /metrics: a plain gauge or counter,
// and a histogram's quantiles between two snapshots (interpolated in the bucket, as Prometheus').
#include "measure.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace switchboard::bench {
namespace {

// GET /metrics as the server writes it: two gauges of the governor and one histogram of route
// answers with two label sets, cumulative counts at 1 ms, 2 ms and +Inf.
std::string metrics_text(int active, int demotions, const int (&operator_counts)[3], const int (&queued_counts)[3]) {
  // _since first: a reader that matched a name's prefix would take its line
  std::string text =
      "switchboard_realtime_active_since 5\n# TYPE switchboard_realtime_active gauge\n"
      "switchboard_realtime_active " +
      std::to_string(active) + "\nswitchboard_realtime_demotions_total " + std::to_string(demotions) + "\n";
  const char* bounds[] = {"0.001", "0.002", "+Inf"};
  for (const auto& [outcome, counts] : {std::pair{"operator", operator_counts}, std::pair{"queued", queued_counts}})
    for (int i = 0; i < 3; ++i)
      text += std::string("switchboard_route_answer_seconds_bucket{outcome=\"") + outcome + "\",le=\"" + bounds[i] +
              "\"} " + std::to_string(counts[i]) + "\n";
  return text;
}

const std::string before = metrics_text(1, 2, {10, 20, 20}, {0, 0, 0});
const std::string after = metrics_text(0, 3, {60, 110, 120}, {50, 100, 100});

TEST(BenchMetrics, APlainMetricIsReadByItsWholeNameAndIsAbsentWhenNotThere) {
  EXPECT_EQ(metric_value(before, "switchboard_realtime_active"), 1.0);  // not _since's 5
  EXPECT_EQ(metric_value(before, "switchboard_realtime_demotions_total"), 2.0);
  EXPECT_EQ(metric_value(after, "switchboard_realtime_active"), 0.0);
  EXPECT_FALSE(metric_value(before, "switchboard_realtime").has_value());
  EXPECT_FALSE(metric_value("", "switchboard_realtime_active").has_value());
  EXPECT_FALSE(metric_value("switchboard_realtime_active one\n", "switchboard_realtime_active").has_value());
}

TEST(BenchMetrics, AHistogramsQuantilesAreThoseOfTheObservationsBetweenTwoSnapshotsOverAllLabels) {
  const auto step = histogram_snapshot::parse(after, "switchboard_route_answer_seconds")
                        .since(histogram_snapshot::parse(before, "switchboard_route_answer_seconds"));
  // In the step: 100 within 1 ms (50 + 50), 90 in (1, 2 ms] (40 + 50), 10 above 2 ms.
  EXPECT_EQ(step.count(), 200);
  EXPECT_DOUBLE_EQ(step.quantile_ms(0.25), 0.5);               // rank 50 of the 100 in [0, 1 ms]
  EXPECT_DOUBLE_EQ(step.quantile_ms(0.5), 1.0);                // rank 100: the first bucket's top
  EXPECT_DOUBLE_EQ(step.quantile_ms(0.9), 1.0 + 80.0 / 90.0);  // rank 180: 80 of the 90 in (1, 2 ms]
  EXPECT_DOUBLE_EQ(step.quantile_ms(0.99), 2.0);               // past the last bound: its value is all that is known
  EXPECT_EQ(histogram_snapshot::parse(before, "switchboard_none").quantile_ms(0.5), 0);
}

TEST(BenchLatency, AQuantileIsTheSampleAtItsRank) {
  latency_samples samples;
  for (int i = 100; i >= 1; --i) samples.add(std::chrono::microseconds(i));
  EXPECT_EQ(samples.count(), 100u);
  EXPECT_EQ(samples.quantile(0.5), 50);
  EXPECT_EQ(samples.quantile(0.99), 99);
  EXPECT_EQ(samples.quantile(1.0), 100);
  EXPECT_EQ(latency_samples{}.quantile(0.5), 0);
}

}  // namespace
}  // namespace switchboard::bench
