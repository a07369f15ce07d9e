// The neutral call model shared by every PBX driver: devices, calls, connections and their
// states, with no trace of a wire protocol (CSTA and AMI both map onto these).
#pragma once

#include <compare>
#include <string>
#include <string_view>

namespace switchboard::pbx {

// A directory number as the PBX names it: an extension, a route point, an external number.
using device_id = std::string;
// The PBX's identifier of one call; unique while the call lives.
using call_id = std::string;

// One party's leg in one call (CSTA ConnectionID, AMI channel).
struct connection_id {
  call_id call;
  device_id device;

  friend auto operator<=>(const connection_id&, const connection_id&) = default;
};

// Whether the PBX told us who a party is.
enum class presentation { known, not_known, restricted };

// A party of a call as reported in an event: its number when known.
struct party {
  device_id number;
  presentation shown = presentation::known;

  static party known(device_id n) { return party{std::move(n), presentation::known}; }
  static party unknown() { return party{{}, presentation::not_known}; }
  static party hidden() { return party{{}, presentation::restricted}; }
  bool is_known() const noexcept { return shown == presentation::known; }

  friend bool operator==(const party&, const party&) = default;
};

// The state of one connection as seen at its device (CSTA LocalConnectionState, JTAPI
// Connection state).
enum class connection_state { null, initiated, alerting, connected, hold, queued, fail };

// The ACD state of an operator at his device.
enum class operator_state { logged_off, logged_on, ready, not_ready, after_call_work, busy };

std::string_view to_string(connection_state s) noexcept;
std::string_view to_string(operator_state s) noexcept;

}  // namespace switchboard::pbx
