// What the server counts for operations (GET /metrics, Prometheus text format): how fast and how
// each route request was answered, and how long the routing SQL took, so an admin can tell the
// database's share of the route latency from the server's. Thread-safe (prometheus-cpp).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::metrics {

class registry {
 public:
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // A route request answered: `outcome` is operator, queued, destination, closed, default, gone
  // (the call ended before it was decided again) or fallback (any other name counts as fallback); `answered` runs from
  // the request reaching the router to the answer handed to the PBX link (and the offer to the operator's desktop).
  void route_answered(std::string_view outcome, std::chrono::nanoseconds answered);
  // One routing SQL round trip as the event loop sees it (hand-off to the pool's worker, the
  // statement, the result back on the loop), whether or not the answer was still waiting for it.
  void route_decided(std::chrono::nanoseconds decided);

  // The route's path under SCHED_FIFO now (scheduling.realtime_priority and its governor), and
  // one more time it was given up for using too much of the host's CPUs.
  void realtime_active(bool active);
  void realtime_demoted();

  // The call-record writers (calls::call_writer): writes pending now (queued, waiting or in
  // flight), and the totals so far of writes applied, presence moves refused (his state had
  // moved on) and writes failed (each write in one of the three), and batches applied by each
  // writer. Totals only grow.
  void call_writes(std::size_t pending, std::uint64_t applied, std::uint64_t refused, std::uint64_t failed,
                   const std::vector<std::uint64_t>& batches_by_writer);

  // Every metric in the Prometheus text exposition format (version 0.0.4).
  std::string text() const;

 private:
  struct families;
  std::unique_ptr<families> families_;
};

}  // namespace switchboard::metrics
