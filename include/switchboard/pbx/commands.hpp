// Neutral commands to a PBX; each driver encodes them in its own protocol. Every command is
// answered by the PBX (a result or an error), see pbx_link::execute.
#pragma once

#include "switchboard/pbx/model.hpp"

#include <string>

namespace switchboard::pbx {

// Answer to call_offered: send the call of `dialog` to `destination`.
struct route_select {
  std::string dialog;
  device_id destination;
  std::string correlator;        // data for the destination (empty: none)
  bool want_route_used = false;  // ask the PBX to confirm where the call went
};

// Answer to call_offered: give up; the PBX applies its default treatment.
struct route_end {
  std::string dialog;
};

// Calls `to` from `from` (the operator's own phone rings first or goes off hook).
struct make_call {
  device_id from;
  device_id to;
  std::string correlator;
};

struct answer_call {
  connection_id connection;
};

struct clear_connection {
  connection_id connection;
};

struct hold_call {
  connection_id connection;
};

struct retrieve_call {
  connection_id connection;
};

// Puts `existing` on hold and calls `to` from the same device.
struct consult_call {
  connection_id existing;
  device_id to;
};

// Joins the held and the active call and drops the transferring device.
struct transfer_call {
  connection_id held;
  connection_id active;
};

struct conference_call {
  connection_id held;
  connection_id active;
};

// Sends an alerting call elsewhere before it is answered.
struct deflect_call {
  connection_id connection;
  device_id to;
};

// Transfers an active call to `to` without consultation.
struct single_step_transfer {
  connection_id active;
  device_id to;
};

// Logs an operator on or off, or sets ready / not ready / after-call work.
struct set_operator_state {
  device_id device;
  operator_state state = operator_state::ready;
  std::string agent_id;
  std::string group;
  std::string password;  // only for log on; never logged
};

// Asks which calls a device takes part in now.
struct snapshot_device {
  device_id device;
};

}  // namespace switchboard::pbx
