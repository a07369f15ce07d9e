// The router: answers each route request through the routing SQL within the route timeout
// (fallback on timeout or database error, never a stuck call), keeps the calls that wait with
// their escalation / overflow / max-wait timers, hands waiting calls to operators who become
// ready, sweeps expired reservations, and refreshes its cache on NOTIFY routing_rules.
// Everything runs on one event loop; the SQL runs on the pool's worker threads.
#pragma once

#include "switchboard/error.hpp"
#include "switchboard/routing/sink.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace switchboard::store {
class connection_pool;
}
namespace switchboard::metrics {
class registry;
}

namespace switchboard::routing {

// Every deadline of the router, in one place (the app config exposes them as routing.*).
struct router_config {
  std::chrono::milliseconds route_timeout{2000};     // answer the PBX before its own route timeout
  std::chrono::seconds reservation_timeout{10};      // an operator reserved but not rung by then is freed
  std::chrono::milliseconds expiry_interval{1000};   // how often expired reservations are swept
  std::chrono::milliseconds recheck_interval{5000};  // the longest a waiting call goes unchecked
  std::chrono::milliseconds stats_interval{5000};    // how often queue staffing / handle time are recomputed
  std::string fallback_destination;                  // timeout / database error: route here ("" = route end)
  std::string node;                                  // this node's name, recorded with calls
  bool listen_for_rule_changes = true;               // LISTEN routing_rules (off only in tests)
};

// Checks the values (positive deadlines, a route timeout below the reservation timeout).
result<void> validate(const router_config& config);

class router {
 public:
  // `loop` runs the router; `blocking` connects the LISTEN session (never the loop). Decisions
  // run on the pool's routing lane, the queue figures and timers on its general lane. The pool,
  // the sink and `metrics` (none: not counted) must outlive the loop's last run.
  router(boost::asio::any_io_executor loop, boost::asio::any_io_executor blocking, store::connection_pool& pool,
         decision_sink& sink, router_config config, metrics::registry* metrics = nullptr);
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // Loads the queue timers; starts the reservation sweep, the queue statistics refresh and the
  // LISTEN session.
  void start();
  // Cancels every timer and the LISTEN session; waiting calls stay in the database.
  void stop();

  // Answers the route request through the sink, within route_timeout.
  boost::asio::awaitable<void> route(call_offered call);
  // The call came back to its route point (its operator did not answer): decides again for its
  // record `call_id`, answered like a route request.
  boost::asio::awaitable<void> reroute(call_offered call, std::int64_t call_id);
  // An operator became ready: he gets the best waiting call he may serve, if any.
  boost::asio::awaitable<void> operator_ready(std::int64_t operator_id);
  // The caller hung up (or the call was answered elsewhere): it stops waiting.
  boost::asio::awaitable<void> call_ended(std::int64_t call_id);
  // Re-reads the cached queue timers (done on NOTIFY routing_rules; callable directly).
  boost::asio::awaitable<void> refresh();

  // Calls this node keeps waiting with timers.
  std::size_t waiting_calls() const noexcept;
  // Times the cache was (re)loaded: lets tests wait for a NOTIFY to arrive.
  std::size_t refreshes() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::routing
