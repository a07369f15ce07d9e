// What the router says and to whom, as plain values through an abstract sink, so the router
// knows no wire format: the PBX link and the desktop hub implement it later; tests record it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::routing {

// A call the PBX offers at a route point (its route request), in neutral form.
struct call_offered {
  std::string route_point;  // the route point's device
  std::string pbx_call_id;
  std::string caller;
  std::string dialled;
  std::vector<std::pair<std::string, std::string>> ivr_data;  // key = value, as the IVR collected them
  std::string routing_dialog_id;                              // the PBX's id of this route request
};

// Answer to a route request: send the call to `destination`.
struct route_select_answer {
  std::string routing_dialog_id;
  std::string pbx_call_id;
  std::int64_t call_id = 0;      // 0 when the database made no call row (fallback, unknown route point)
  std::string destination;       // operator's phone, queue wait device, rule or closed destination, fallback
  std::int64_t operator_id = 0;  // set when an operator is reserved
  std::int64_t queue_id = 0;
  int position = 0;                          // queued calls: 1 = next
  std::optional<int> expected_wait_seconds;  // queued calls, for the PBX's announcement
  bool fallback = false;                     // the database did not answer in time or failed
  std::string reason;
};

// Answer to a route request: the PBX routes the call by its own default.
struct route_end_answer {
  std::string routing_dialog_id;
  std::string pbx_call_id;
  std::int64_t call_id = 0;
  bool fallback = false;
  std::string reason;
  bool queued = false;  // it waits in a queue without a wait device: the dialog may stay open meanwhile
};

// An operator is reserved for a call: his desktop gets the offer (screen pop). When the call
// was waiting (`from_queue`), the PBX link also moves it from the queue to his phone.
struct operator_offer {
  std::int64_t call_id = 0;
  std::string pbx_call_id;  // "" when this node never saw the route request (another node queued it)
  std::int64_t operator_id = 0;
  std::string device;
  std::int64_t queue_id = 0;
  bool from_queue = false;
  // screen_pop(call_id), read with the decision (customer_read false: not read yet).
  bool customer_read = false;
  std::optional<std::string> customer;
};

// A waiting call leaves the queue without an operator (closed, max wait): the PBX link moves it
// to `destination`, or leaves it to the PBX default when that is empty.
struct waiting_redirect {
  std::int64_t call_id = 0;
  std::string pbx_call_id;
  std::string destination;
  std::string reason;
};

// The database decided after the PBX got the fallback answer: the decision is undone, but the
// call row it made is the call's record all the same, to be closed when the call ends.
struct late_record {
  std::string pbx_call_id;
  std::int64_t call_id = 0;
};

class decision_sink {
 public:
  virtual ~decision_sink() = default;
  virtual void route_select(const route_select_answer& answer) = 0;
  virtual void route_end(const route_end_answer& answer) = 0;
  virtual void offer_to_operator(const operator_offer& offer) = 0;
  virtual void redirect_waiting(const waiting_redirect& redirect) = 0;
  virtual void adopt_late_record(const late_record& record) = 0;
};

}  // namespace switchboard::routing
