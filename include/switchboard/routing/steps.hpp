// The router's pure steps, apart from any I/O so they are tested table-driven: which answer a
// decision gives the PBX, the fallback answer, and when a waiting call must be looked at again.
#pragma once

#include "switchboard/routing/sink.hpp"
#include "switchboard/store/routing_queries.hpp"

#include <chrono>
#include <string>
#include <variant>
#include <vector>

namespace switchboard::routing {

using pbx_answer = std::variant<route_select_answer, route_end_answer>;

// The PBX's answer for a decision of the routing SQL.
pbx_answer answer_for(const store::route_decision& decision, const call_offered& call);

// The answer when the database cannot decide in time: route select to `fallback_destination`,
// or route end (the PBX default) when it is empty.
pbx_answer fallback_answer(const call_offered& call, const std::string& fallback_destination, std::string reason);

// How long after `waited` (time in its queue) a waiting call must be looked at again: just past
// the next threshold of its queue, and never later than `recheck_interval`.
std::chrono::milliseconds next_check_after(const std::vector<int>& check_after_seconds,
                                           std::chrono::milliseconds waited,
                                           std::chrono::milliseconds recheck_interval);

// "operator", "queued", ... as the SQL names them, for log lines.
const char* kind_name(store::route_kind kind);

}  // namespace switchboard::routing
