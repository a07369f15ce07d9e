// What the rest of the server tells desktops: the screen pop, call progress, presence changes
// and supervisor statistics. The desk server implements it; the router and the call tracker
// hold a `hub&`. All methods are called on the event loop and return at once (no I/O waits).
#pragma once

#include "switchboard/desk/protocol.hpp"
#include "switchboard/store/operator_queries.hpp"

#include <cstdint>

namespace switchboard::desk {

class hub {
 public:
  virtual ~hub() = default;

  // The screen pop, sent when the router picks the operator, at the moment the PBX is told to
  // ring him. `offer.customer` is what store::screen_pop(call_id) returned (parsed), or null.
  // The operator's current call becomes this call (ringing) for the desk's state checks.
  virtual void offer(std::int64_t operator_id, offer_event offer) = 0;

  // Progress of the operator's call (ringing, talking, held, consulting, conference, ended).
  virtual void call_update(std::int64_t operator_id, call_event call) = 0;

  // Live queue statistics for the supervisors of one tenant: serialised once, shared by all.
  virtual void publish_stats(std::int64_t tenant_id, stats_event stats) = 0;
  // Whether a supervisor of the tenant is connected: figures nobody sees are not computed.
  virtual bool watched(std::int64_t tenant_id) const = 0;

  // The presence row of an operator changed (LISTEN presence, on any node): the desk re-reads
  // it, updates his desktop and his tenant's supervisors, and applies a pending not-ready.
  virtual void presence_changed(std::int64_t operator_id) = 0;
  // The same with the row the NOTIFY carried (login and full name empty): applied as it is when
  // the desk knows the operator's names, else read back.
  virtual void presence_notified(store::operator_presence row) = 0;
};

}  // namespace switchboard::desk
