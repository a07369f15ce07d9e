// Routing's access to PostgreSQL: each function is one prepared call of a routing SQL function
// (sql/migrations/0010_routing.sql), run off the event loop on the pool. Plain structs only, so
// callers never see pqxx.
#pragma once

#include "switchboard/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::store {

class connection_pool;

// A call the PBX offers at a route point.
struct call_offer {
  std::string route_point;  // the route point's device
  std::string pbx_call_id;
  std::string caller;
  std::string dialled;
  std::vector<std::pair<std::string, std::string>> ivr_data;  // key = value, as the IVR collected them
  std::string node;                                           // this Switchboard node ("" = unnamed)
  std::chrono::seconds reservation{10};                       // an unconfirmed reservation expires after this
};

enum class route_kind {
  operator_reserved,  // ring `device`: the operator is reserved for the call
  queued,             // wait (at `destination` when the queue has a wait device)
  destination,        // a rule sent the call to `destination`
  closed,             // the queue is closed or full: `destination` is its closed destination ("" = none)
  default_route,      // the PBX's own default (route end)
  gone,               // the call no longer waits (taken by an operator, or ended)
};

// What the routing SQL decided for one call.
struct route_decision {
  route_kind kind = route_kind::default_route;
  std::int64_t call_id = 0;  // 0 when no call row was made (unknown route point)
  std::int64_t operator_id = 0;
  std::string device;  // the reserved operator's phone
  std::int64_t queue_id = 0;
  int position = 0;                          // 1 = next (queued only)
  std::optional<int> expected_wait_seconds;  // none when nobody staffs the queue
  std::string destination;                   // wait, rule or closed destination ("" = none)
  std::string reason;                        // why, for logs and call_events
  // With an operator reserved: what screen_pop(call_id) returned, read in the same trip to the
  // database so the pop leaves with the route select (customer_read false: it failed, read later).
  bool customer_read = false;
  std::optional<std::string> customer;
};

// A waiting call handed to an operator who became ready.
struct call_assignment {
  std::int64_t call_id = 0;
  std::int64_t queue_id = 0;
  std::int64_t operator_id = 0;
  std::string device;
  bool customer_read = false;  // as in route_decision
  std::optional<std::string> customer;
};

struct expired_reservation {
  std::int64_t operator_id = 0;
  std::int64_t call_id = 0;
};

// When the router must look at a waiting call again: seconds after it entered the queue.
struct queue_timers {
  std::int64_t queue_id = 0;
  std::vector<int> check_after_seconds;  // ascending: escalation steps, overflow, max wait
};

// One round trip: route_call's decision, the reservation, the calls row and its journal row, and
// the reserved operator's screen pop.
boost::asio::awaitable<result<route_decision>> offer_call(connection_pool& pool, const call_offer& offer);

// A call that came back to its route point (its operator did not answer): route_call decides
// again for the same record, which gets a 'rerouted' event.
boost::asio::awaitable<result<route_decision>> reroute_call(connection_pool& pool, std::int64_t call_id,
                                                            std::string node, std::chrono::seconds reservation);

// A waiting call's timer fired: escalation, overflow, max wait, closing time, or an operator now.
boost::asio::awaitable<result<route_decision>> recheck_waiting_call(connection_pool& pool, std::int64_t call_id,
                                                                    std::chrono::seconds reservation);

// An operator became ready: the best waiting call he may serve, reserved for him, or none.
boost::asio::awaitable<result<std::optional<call_assignment>>> pick_call(connection_pool& pool,
                                                                         std::int64_t operator_id,
                                                                         std::chrono::seconds reservation);

// Frees operators whose reservation was not confirmed in time.
boost::asio::awaitable<result<std::vector<expired_reservation>>> expire_reservations(connection_pool& pool);

// The PBX rang the operator (true) or the reservation was already gone (false).
boost::asio::awaitable<result<bool>> confirm_reservation(connection_pool& pool, std::int64_t operator_id,
                                                         std::int64_t call_id);

// Gives back a reservation that will not be used; false when it was already gone.
boost::asio::awaitable<result<bool>> release_reservation(connection_pool& pool, std::int64_t operator_id,
                                                         std::int64_t call_id);

// Takes a call off the waiting list (caller hung up, or answered with the fallback); false when
// it was not waiting.
boost::asio::awaitable<result<bool>> withdraw_waiting_call(connection_pool& pool, std::int64_t call_id,
                                                           std::string reason);

// Every queue's wait thresholds, for the router's cache (refreshed on NOTIFY routing_rules).
boost::asio::awaitable<result<std::vector<queue_timers>>> load_queue_timers(connection_pool& pool);

// Recomputes every queue's staffing and handle time (queue_stats); returns the queues refreshed.
boost::asio::awaitable<result<int>> refresh_queue_stats(connection_pool& pool);

// screen_pop(call) as JSON text; none when it returns NULL (unknown caller).
boost::asio::awaitable<result<std::optional<std::string>>> screen_pop(connection_pool& pool, std::int64_t call_id);

// The IVR pairs as a JSON object (later keys win), as the SQL functions take them.
std::string ivr_data_json(const std::vector<std::pair<std::string, std::string>>& data);

}  // namespace switchboard::store
