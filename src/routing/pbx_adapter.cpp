// Route request in, answers out, between the neutral PBX model and the router's structs.
#include "switchboard/routing/pbx_adapter.hpp"

namespace switchboard::routing {
std::vector<std::pair<std::string, std::string>> ivr_pairs(const std::string& correlator) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t pos = 0;
  while (pos <= correlator.size() && !correlator.empty()) {
    const auto end = correlator.find_first_of(";&", pos);
    const auto token = correlator.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    const auto eq = token.find('=');
    if (eq == std::string::npos || eq == 0) return {{"correlator", correlator}};  // not key=value data
    pairs.emplace_back(token.substr(0, eq), token.substr(eq + 1));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return pairs;
}

call_offered from_pbx(const pbx::call_offered& event) {
  return call_offered{event.route_point,           event.call.call, event.caller.number, event.dialled.number,
                      ivr_pairs(event.correlator), event.dialog};
}

pbx::route_select to_pbx(const route_select_answer& answer) { return {answer.routing_dialog_id, answer.destination}; }

pbx::route_end to_pbx(const route_end_answer& answer) { return {answer.routing_dialog_id}; }

}  // namespace switchboard::routing
