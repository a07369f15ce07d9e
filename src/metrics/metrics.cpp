// The registry is prometheus-cpp's; this file only names the product's metrics and their buckets.
#include "switchboard/metrics/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <string>
#include <vector>

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
  prometheus::Gauge& writes_pending =
      prometheus::BuildGauge()
          .Name("switchboard_call_writes_pending")
          .Help("Call-record and presence writes queued, waiting or in flight: grows when PostgreSQL falls behind")
          .Register(*registry)
          .Add({});
  prometheus::Family<prometheus::Counter>& writes =
      prometheus::BuildCounter()
          .Name("switchboard_call_writes_total")
          .Help(
              "Call-record and presence writes by result: applied, refused (a presence move whose state had "
              "moved on), failed (refused by PostgreSQL or lost with the connection)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& batches =
      prometheus::BuildCounter()
          .Name("switchboard_call_write_batches_total")
          .Help("Batches of writes applied, by writer (one per connection of database.writes_pool_size)")
          .Register(*registry);
  std::array<prometheus::Counter*, 3> by_result{};
  std::vector<prometheus::Counter*> by_writer;
  std::array<std::uint64_t, 3> results_seen{};
  std::vector<std::uint64_t> batches_seen;
  std::array<prometheus::Histogram*, outcomes.size()> by_outcome{};
  prometheus::Histogram* decisions = nullptr;

  families() {
    for (std::size_t i = 0; i < outcomes.size(); ++i)
      by_outcome[i] = &answered.Add({{"outcome", std::string(outcomes[i])}}, latency_buckets);
    decisions = &decided.Add({}, latency_buckets);
    by_result = {&writes.Add({{"result", "applied"}}), &writes.Add({{"result", "refused"}}),
                 &writes.Add({{"result", "failed"}})};
  }

  // A counter brought up to `total` (a total kept elsewhere), from the last total it was given.
  static void count_up_to(prometheus::Counter& counter, std::uint64_t& seen, std::uint64_t total) {
    if (total > seen) counter.Increment(static_cast<double>(total - seen));
    seen = total;
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

void registry::call_writes(std::size_t pending, std::uint64_t applied, std::uint64_t refused, std::uint64_t failed,
                           const std::vector<std::uint64_t>& batches_by_writer) {
  auto& f = *families_;
  f.writes_pending.Set(static_cast<double>(pending));
  const std::array<std::uint64_t, 3> totals{applied, refused, failed};
  for (std::size_t i = 0; i < totals.size(); ++i) families::count_up_to(*f.by_result[i], f.results_seen[i], totals[i]);
  for (std::size_t i = 0; i < batches_by_writer.size(); ++i) {
    if (i == f.by_writer.size()) {
      f.by_writer.push_back(&f.batches.Add({{"writer", std::to_string(i + 1)}}));
      f.batches_seen.push_back(0);
    }
    families::count_up_to(*f.by_writer[i], f.batches_seen[i], batches_by_writer[i]);
  }
}

std::string registry::text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(families_->registry->Collect());
}

}  // namespace switchboard::metrics
