// Mapping between CSTA messages and the neutral pbx model, kept out of the codec (which knows no
// pbx) and out of the link (which only moves messages), so each mapping is one tested function.
#pragma once

#include "switchboard/csta/messages.hpp"
#include "switchboard/error.hpp"
#include "switchboard/pbx/commands.hpp"
#include "switchboard/pbx/events.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::csta {

// A routing dialog is named by the registration and the PBX's cross reference:
// "<routeRegisterReqID>/<crossRefIdentifier>".
std::string make_dialog_id(std::string_view route_register_req_id, std::string_view cross_ref_identifier);
struct dialog_key {
  std::string route_register_req_id;
  std::string cross_ref_identifier;
};
std::optional<dialog_key> parse_dialog_id(std::string_view dialog);

pbx::party to_party(const device_ref& d);
pbx::party to_party(const std::optional<device_ref>& d);  // absent: not known
pbx::connection_id to_connection(const connection_ref& c);
connection_ref to_csta(const pbx::connection_id& c);
pbx::connection_state to_state(local_connection_state s);

// The PBX's message as a neutral event, or std::nullopt when it is not one (responses,
// session and heartbeat traffic, unknown messages). For RouteRequest the route point is the
// routeingDevice when given, else the currentRoute; a link that knows its registrations may
// correct it.
std::optional<pbx::event> to_event(const message& m);

// Neutral commands as CSTA requests. Routing commands fail with errc::call_unknown when the
// dialog id is not one of ours; set_operator_state with errc::state_not_allowed for `busy`,
// which no CSTA request sets.
result<route_select> to_csta(const pbx::route_select& c);
result<route_end> to_csta(const pbx::route_end& c);
make_call to_csta(const pbx::make_call& c);
answer_call to_csta(const pbx::answer_call& c);
clear_connection to_csta(const pbx::clear_connection& c);
hold_call to_csta(const pbx::hold_call& c);
retrieve_call to_csta(const pbx::retrieve_call& c);
consultation_call to_csta(const pbx::consult_call& c);
transfer_call to_csta(const pbx::transfer_call& c);
conference_call to_csta(const pbx::conference_call& c);
deflect_call to_csta(const pbx::deflect_call& c);
single_step_transfer_call to_csta(const pbx::single_step_transfer& c);
result<set_agent_state> to_csta(const pbx::set_operator_state& c);
snapshot_device to_csta(const pbx::snapshot_device& c);

// The calls of a SnapshotDeviceResponse (a compound state reports its first state).
std::vector<pbx::snapshot_entry> to_snapshot(const snapshot_device_response& r);

// "operation: invalidCallID" — the PBX's error text carried in error::detail.
std::string error_text(const choice_value& c);

}  // namespace switchboard::csta
