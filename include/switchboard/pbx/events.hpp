// Neutral events a PBX driver reports, one std::variant for the single-threaded owner of call
// state to visit; each driver maps its wire messages onto these.
#pragma once

#include "switchboard/error.hpp"
#include "switchboard/pbx/model.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace switchboard::pbx {

// A call waits at a route point and the PBX asks where to send it. Answer with route_select
// or route_end carrying the same `dialog` (opaque to everyone but the driver).
struct call_offered {
  std::string dialog;
  device_id route_point;
  connection_id call;
  party caller;
  party dialled;
  std::string correlator;  // IVR digits or other data the PBX attached (CSTA correlatorData)
  std::optional<std::chrono::milliseconds> reply_timeout;
};

// The destination chosen for a dialog failed; choose again (or end the dialog).
struct route_retry {
  std::string dialog;
};

// The PBX closed a routing dialog (call routed, abandoned, or routed by its default treatment).
struct route_ended {
  std::string dialog;
  std::string reason;
};

// A device started a call (off hook or a make-call request).
struct call_initiated {
  connection_id connection;
  connection_state state = connection_state::initiated;
  std::string cause;
};

// The PBX is trying to reach the called party of an outgoing call.
struct call_originated {
  connection_id connection;
  party calling;
  party called;
  std::string cause;
};

// A device is alerted (rings), or the caller hears ringback.
struct call_delivered {
  connection_id connection;
  party alerting;
  party calling;
  party called;
  connection_state state = connection_state::alerting;
  std::string correlator;
  std::string cause;
};

struct call_established {
  connection_id connection;
  party answering;
  party calling;
  party called;
  connection_state state = connection_state::connected;
  std::string correlator;
  std::string cause;
};

struct call_held {
  connection_id connection;
  party holding;
  connection_state state = connection_state::hold;
  std::string cause;
};

struct call_retrieved {
  connection_id connection;
  party retrieving;
  connection_state state = connection_state::connected;
  std::string cause;
};

// How one party's connection changed when calls were merged by a transfer or conference.
struct connection_change {
  std::optional<connection_id> old_connection;
  std::optional<connection_id> new_connection;
  party endpoint;
};

struct call_transferred {
  call_id primary_old_call;
  std::optional<call_id> secondary_old_call;
  party transferring;
  party transferred_to;
  std::vector<connection_change> connections;
  std::string cause;
};

struct call_conferenced {
  call_id primary_old_call;
  std::optional<call_id> secondary_old_call;
  party conferencing;
  party added_party;
  std::vector<connection_change> connections;
  std::string cause;
};

// The call left `diverting` for `new_destination` (deflect, forward, pickup).
struct call_diverted {
  connection_id connection;
  party diverting;
  party new_destination;
  std::string cause;
};

struct call_queued {
  connection_id connection;
  party queue;
  party calling;
  party called;
  std::optional<std::int64_t> calls_queued;
  std::string cause;
};

struct call_failed {
  connection_id connection;
  party failing;
  party calling;
  party called;
  std::string cause;
};

struct connection_cleared {
  connection_id connection;
  party releasing;
  std::string cause;
};

struct call_cleared {
  call_id call;
  std::string cause;
};

// An operator's ACD state changed at his device (logged on/off, ready, not ready, after-call
// work, busy).
struct operator_changed {
  device_id device;
  std::string agent_id;
  std::string group;
  operator_state state = operator_state::logged_on;
};

// The link is up and every device is monitored.
struct link_up {
  std::string peer;
};

// The link is lost; every command in flight has failed with pbx_link_down. The driver
// reconnects by itself and reports link_up, then one `resynced` per device.
struct link_down {
  error reason;
};

// One call a device takes part in, as a snapshot reports it.
struct snapshot_entry {
  connection_id connection;
  connection_state state = connection_state::null;

  friend bool operator==(const snapshot_entry&, const snapshot_entry&) = default;
};

// After a reconnect: the calls at `device` now. Forget what the device did during the gap and
// start again from this list.
struct resynced {
  device_id device;
  std::vector<snapshot_entry> calls;
};

using event = std::variant<call_offered, route_retry, route_ended, call_initiated, call_originated, call_delivered,
                           call_established, call_held, call_retrieved, call_transferred, call_conferenced,
                           call_diverted, call_queued, call_failed, connection_cleared, call_cleared, operator_changed,
                           link_up, link_down, resynced>;

// The event's name for logs ("call_delivered").
std::string_view event_name(const event& e) noexcept;

}  // namespace switchboard::pbx
