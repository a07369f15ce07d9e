// Pure routing steps: decision -> PBX answer, fallback, next timer of a waiting call.
#include "switchboard/routing/steps.hpp"

#include <algorithm>

namespace switchboard::routing {
namespace {

// A waiting call's timer fires this long after its database threshold, so the database (whose
// clock started the wait a little earlier) already sees the threshold passed.
constexpr std::chrono::milliseconds threshold_margin{50};

route_select_answer select_to(const call_offered& call, const store::route_decision& d, std::string destination) {
  route_select_answer a;
  a.routing_dialog_id = call.routing_dialog_id;
  a.pbx_call_id = call.pbx_call_id;
  a.call_id = d.call_id;
  a.destination = std::move(destination);
  a.queue_id = d.queue_id;
  a.reason = d.reason;
  return a;
}

route_end_answer end_of(const call_offered& call, std::int64_t call_id, std::string reason, bool fallback) {
  return route_end_answer{call.routing_dialog_id, call.pbx_call_id, call_id, fallback, std::move(reason)};
}

}  // namespace

pbx_answer answer_for(const store::route_decision& d, const call_offered& call) {
  switch (d.kind) {
    case store::route_kind::operator_reserved: {
      auto a = select_to(call, d, d.device);
      a.operator_id = d.operator_id;
      return a;
    }
    case store::route_kind::queued: {
      if (d.destination.empty())  // no wait device: the call may wait at its route point
        return route_end_answer{call.routing_dialog_id, call.pbx_call_id, d.call_id, false, d.reason, true};
      auto a = select_to(call, d, d.destination);
      a.position = d.position;
      a.expected_wait_seconds = d.expected_wait_seconds;
      return a;
    }
    case store::route_kind::destination:
    case store::route_kind::closed:
      if (d.destination.empty()) return end_of(call, d.call_id, d.reason, false);
      return select_to(call, d, d.destination);
    case store::route_kind::default_route:
    case store::route_kind::gone:
      break;
  }
  return end_of(call, d.call_id, d.reason, false);
}

pbx_answer fallback_answer(const call_offered& call, const std::string& fallback_destination, std::string reason) {
  if (fallback_destination.empty()) return end_of(call, 0, std::move(reason), true);
  route_select_answer a;
  a.routing_dialog_id = call.routing_dialog_id;
  a.pbx_call_id = call.pbx_call_id;
  a.destination = fallback_destination;
  a.fallback = true;
  a.reason = std::move(reason);
  return a;
}

std::chrono::milliseconds next_check_after(const std::vector<int>& check_after_seconds,
                                           std::chrono::milliseconds waited,
                                           std::chrono::milliseconds recheck_interval) {
  auto next = recheck_interval;
  for (int seconds : check_after_seconds) {
    const auto due = std::chrono::milliseconds(std::chrono::seconds(seconds)) + threshold_margin;
    if (due > waited) {
      next = std::min(next, due - waited);
      break;
    }
  }
  return std::max(next, std::chrono::milliseconds(1));
}

const char* kind_name(store::route_kind kind) {
  switch (kind) {
    case store::route_kind::operator_reserved:
      return "operator";
    case store::route_kind::queued:
      return "queued";
    case store::route_kind::destination:
      return "destination";
    case store::route_kind::closed:
      return "closed";
    case store::route_kind::default_route:
      return "default";
    case store::route_kind::gone:
      return "gone";
  }
  return "unknown";
}

}  // namespace switchboard::routing
