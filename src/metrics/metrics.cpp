// The registry is prometheus-cpp's; this file only names the product's metrics and their buckets.
#include "switchboard/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>

namespace switchboard::metrics {
namespace {

// Seconds, from a quarter millisecond to the longest a PBX waits: fine where the goals are
// (route p99 ≤ 2 ms), coarse past the route timeout.
const prometheus::Histogram::BucketBoundaries latency_buckets{
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01,
    0.015,   0.02,   0.03,    0.05,  0.075,  0.1,   0.2,   0.5,   1.0,   2.0,    5.0};

// "fallback" last: a name not listed counts as one.
constexpr std::array<std::string_view, 7> outcomes{"operator", "queued", "destination", "closed",
                                                   "default",  "gone",   "fallback"};

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

struct registry::families {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Histogram>& answered =
      prometheus::BuildHistogram()
          .Name("switchboard_route_answer_seconds")
          .Help("Route requests: from the request reaching the router to the answer handed to the PBX link")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& decided =
      prometheus::BuildHistogram()
          .Name("switchboard_route_decision_seconds")
          .Help("The routing SQL's round trip as the event loop sees it (pool hand-off included)")
          .Register(*registry);
  prometheus::Gauge& realtime_active =
      prometheus::BuildGauge()
          .Name("switchboard_realtime_active")
          .Help("1 while the route's path runs under SCHED_FIFO (scheduling.realtime_priority)")
          .Register(*registry)
          .Add({});
  prometheus::Counter& realtime_demotions =
      prometheus::BuildCounter()
          .Name("switchboard_realtime_demotions_total")
          .Help("Times the route's path gave SCHED_FIFO up for using more than scheduling.realtime_cpu_limit")
          .Register(*registry)
          .Add({});
  std::array<prometheus::Histogram*, outcomes.size()> by_outcome{};
  prometheus::Histogram* decisions = nullptr;

  families() {
    for (std::size_t i = 0; i < outcomes.size(); ++i)
      by_outcome[i] = &answered.Add({{"outcome", std::string(outcomes[i])}}, latency_buckets);
    decisions = &decided.Add({}, latency_buckets);
  }
};

registry::registry() : families_(std::make_unique<families>()) {}
registry::~registry() = default;

void registry::route_answered(std::string_view outcome, std::chrono::nanoseconds answered) {
  std::size_t i = 0;
  while (i + 1 < outcomes.size() && outcomes[i] != outcome) ++i;  // an unknown name counts as fallback
  families_->by_outcome[i]->Observe(seconds(answered));
}

void registry::route_decided(std::chrono::nanoseconds decided) { families_->decisions->Observe(seconds(decided)); }

void registry::realtime_active(bool active) { families_->realtime_active.Set(active ? 1 : 0); }

void registry::realtime_demoted() { families_->realtime_demotions.Increment(); }

std::string registry::text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(families_->registry->Collect());
}

}  // namespace switchboard::metrics
