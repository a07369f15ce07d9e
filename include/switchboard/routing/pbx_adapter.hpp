// Between the neutral PBX model (include/switchboard/pbx) and the router's own plain structs:
// a route request in, the answers out. Pure, so the PBX link wiring stays a one-liner.
#pragma once

#include "switchboard/pbx/commands.hpp"
#include "switchboard/pbx/events.hpp"
#include "switchboard/routing/sink.hpp"

namespace switchboard::routing {

// The router's view of a route request. The PBX's correlator data becomes the IVR data:
// "lang=es;account=42" (pairs split on ';' or '&') gives lang and account; anything else is kept
// whole under "correlator".
call_offered from_pbx(const pbx::call_offered& event);

// The IVR pairs of a correlator, as from_pbx reads them (also for the screen pop).
std::vector<std::pair<std::string, std::string>> ivr_pairs(const std::string& correlator);

pbx::route_select to_pbx(const route_select_answer& answer);
pbx::route_end to_pbx(const route_end_answer& answer);

}  // namespace switchboard::routing
