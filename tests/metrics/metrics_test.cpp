// The registry's text for the call-record writers: a gauge of what is pending now, and counters
// brought up to the writers' own totals each time /metrics is read.
#include "switchboard/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <string>

namespace switchboard {
namespace {

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, CallWritesArePendingNowAndCountedUpToTheWritersTotals) {
  metrics::registry registry;
  registry.call_writes(5, 10, 2, 1, {3, 4});
  auto text = registry.text();
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_pending 5")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"applied\"} 10")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"refused\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"failed\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_write_batches_total{writer=\"1\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_write_batches_total{writer=\"2\"} 4")) << text;

  // Read again later: the totals grew, nothing is pending; read twice, nothing counted twice.
  registry.call_writes(0, 15, 2, 1, {6, 4});
  registry.call_writes(0, 15, 2, 1, {6, 4});
  text = registry.text();
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_pending 0")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"applied\"} 15")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"refused\"} 2")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_write_batches_total{writer=\"1\"} 6")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_write_batches_total{writer=\"2\"} 4")) << text;
}

TEST(Metrics, NoWriterYetShowsNothingPendingAndNoBatches) {
  metrics::registry registry;
  const auto text = registry.text();
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_pending 0")) << text;
  EXPECT_TRUE(has_line(text, "switchboard_call_writes_total{result=\"applied\"} 0")) << text;
  EXPECT_EQ(text.find("switchboard_call_write_batches_total{"), std::string::npos) << text;
}

}  // namespace
}  // namespace switchboard
