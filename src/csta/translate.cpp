// CSTA <-> neutral pbx mapping: events in, commands out, one small function each.
#include "switchboard/csta/translate.hpp"

#include <type_traits>

namespace switchboard::csta {

std::string make_dialog_id(std::string_view route_register_req_id, std::string_view cross_ref_identifier) {
  std::string id;
  id.reserve(route_register_req_id.size() + 1 + cross_ref_identifier.size());
  id.append(route_register_req_id).append("/").append(cross_ref_identifier);
  return id;
}

std::optional<dialog_key> parse_dialog_id(std::string_view dialog) {
  const auto slash = dialog.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == dialog.size()) return std::nullopt;
  return dialog_key{std::string(dialog.substr(0, slash)), std::string(dialog.substr(slash + 1))};
}

pbx::party to_party(const device_ref& d) {
  switch (d.presence) {
    case device_presence::known:
      return pbx::party::known(d.id);
    case device_presence::restricted:
      return pbx::party::hidden();
    case device_presence::not_known:
    case device_presence::not_required:
    case device_presence::not_specified:
      break;
  }
  return pbx::party::unknown();
}

pbx::party to_party(const std::optional<device_ref>& d) { return d ? to_party(*d) : pbx::party::unknown(); }

pbx::connection_id to_connection(const connection_ref& c) { return {c.call_id, c.device_id}; }
connection_ref to_csta(const pbx::connection_id& c) { return {c.call, c.device}; }

pbx::connection_state to_state(local_connection_state s) {
  switch (s) {
    case local_connection_state::null:
      return pbx::connection_state::null;
    case local_connection_state::initiated:
      return pbx::connection_state::initiated;
    case local_connection_state::alerting:
      return pbx::connection_state::alerting;
    case local_connection_state::connected:
      return pbx::connection_state::connected;
    case local_connection_state::hold:
      return pbx::connection_state::hold;
    case local_connection_state::queued:
      return pbx::connection_state::queued;
    case local_connection_state::fail:
      return pbx::connection_state::fail;
  }
  return pbx::connection_state::null;
}

namespace {

pbx::connection_state state_or(const std::optional<local_connection_state>& s, pbx::connection_state fallback) {
  return s ? to_state(*s) : fallback;
}

std::vector<pbx::connection_change> to_changes(const std::vector<connection_list_item>& items) {
  std::vector<pbx::connection_change> out;
  out.reserve(items.size());
  for (const auto& i : items) {
    pbx::connection_change c;
    if (i.old_connection) c.old_connection = to_connection(*i.old_connection);
    if (i.new_connection) c.new_connection = to_connection(*i.new_connection);
    c.endpoint = to_party(i.endpoint);
    out.push_back(std::move(c));
  }
  return out;
}

pbx::operator_changed to_operator(const agent_event_fields& a, pbx::operator_state state) {
  return {a.agent_device.id, a.agent_id.value_or(""), a.acd_group.value_or(""), state};
}

}  // namespace

std::optional<pbx::event> to_event(const message& m) {
  return std::visit(
      [](const auto& msg) -> std::optional<pbx::event> {
        using T = std::decay_t<decltype(msg)>;
        const auto cause = [&] {
          if constexpr (requires { msg.cause; }) {
            return msg.cause.value_or("");
          } else {
            return std::string();
          }
        };
        if constexpr (std::is_same_v<T, route_request>) {
          pbx::call_offered e;
          e.dialog = make_dialog_id(msg.route_register_req_id, msg.cross_ref_identifier);
          e.route_point = msg.routeing_device ? msg.routeing_device->id : msg.current_route.id;
          e.call = to_connection(msg.routed_call);
          e.caller = to_party(msg.calling_device);
          e.dialled = to_party(msg.current_route);
          e.correlator = msg.correlator_data.value_or("");
          if (msg.reply_timeout) e.reply_timeout = std::chrono::milliseconds(*msg.reply_timeout);
          return e;
        } else if constexpr (std::is_same_v<T, re_route>) {
          return pbx::route_retry{make_dialog_id(msg.route_register_req_id, msg.cross_ref_identifier)};
        } else if constexpr (std::is_same_v<T, route_end>) {
          return pbx::route_ended{make_dialog_id(msg.route_register_req_id, msg.cross_ref_identifier),
                                  error_text(msg.error_value)};
        } else if constexpr (std::is_same_v<T, service_initiated_event>) {
          return pbx::call_initiated{to_connection(msg.initiated_connection),
                                     state_or(msg.local_connection_info, pbx::connection_state::initiated), cause()};
        } else if constexpr (std::is_same_v<T, originated_event>) {
          return pbx::call_originated{to_connection(msg.originated_connection), to_party(msg.calling_device),
                                      to_party(msg.called_device), cause()};
        } else if constexpr (std::is_same_v<T, delivered_event>) {
          return pbx::call_delivered{to_connection(msg.connection),
                                     to_party(msg.alerting_device),
                                     to_party(msg.calling_device),
                                     to_party(msg.called_device),
                                     state_or(msg.local_connection_info, pbx::connection_state::alerting),
                                     msg.correlator_data.value_or(""),
                                     cause()};
        } else if constexpr (std::is_same_v<T, established_event>) {
          return pbx::call_established{to_connection(msg.established_connection),
                                       to_party(msg.answering_device),
                                       to_party(msg.calling_device),
                                       to_party(msg.called_device),
                                       state_or(msg.local_connection_info, pbx::connection_state::connected),
                                       msg.correlator_data.value_or(""),
                                       cause()};
        } else if constexpr (std::is_same_v<T, held_event>) {
          return pbx::call_held{to_connection(msg.held_connection), to_party(msg.holding_device),
                                state_or(msg.local_connection_info, pbx::connection_state::hold), cause()};
        } else if constexpr (std::is_same_v<T, retrieved_event>) {
          return pbx::call_retrieved{to_connection(msg.retrieved_connection), to_party(msg.retrieving_device),
                                     state_or(msg.local_connection_info, pbx::connection_state::connected), cause()};
        } else if constexpr (std::is_same_v<T, transfered_event>) {
          pbx::call_transferred e;
          e.primary_old_call = msg.primary_old_call.call_id;
          if (msg.secondary_old_call) e.secondary_old_call = msg.secondary_old_call->call_id;
          e.transferring = to_party(msg.transferring_device);
          e.transferred_to = to_party(msg.transferred_to_device);
          e.connections = to_changes(msg.transferred_connections);
          e.cause = cause();
          return e;
        } else if constexpr (std::is_same_v<T, conferenced_event>) {
          pbx::call_conferenced e;
          e.primary_old_call = msg.primary_old_call.call_id;
          if (msg.secondary_old_call) e.secondary_old_call = msg.secondary_old_call->call_id;
          e.conferencing = to_party(msg.conferencing_device);
          e.added_party = to_party(msg.added_party);
          e.connections = to_changes(msg.conference_connections);
          e.cause = cause();
          return e;
        } else if constexpr (std::is_same_v<T, diverted_event>) {
          return pbx::call_diverted{to_connection(msg.connection), to_party(msg.diverting_device),
                                    to_party(msg.new_destination), cause()};
        } else if constexpr (std::is_same_v<T, queued_event>) {
          return pbx::call_queued{
              to_connection(msg.queued_connection), to_party(msg.queue), to_party(msg.calling_device),
              to_party(msg.called_device),          msg.number_queued,   cause()};
        } else if constexpr (std::is_same_v<T, failed_event>) {
          return pbx::call_failed{to_connection(msg.failed_connection), to_party(msg.failing_device),
                                  to_party(msg.calling_device), to_party(msg.called_device), cause()};
        } else if constexpr (std::is_same_v<T, connection_cleared_event>) {
          return pbx::connection_cleared{to_connection(msg.dropped_connection), to_party(msg.releasing_device),
                                         cause()};
        } else if constexpr (std::is_same_v<T, call_cleared_event>) {
          return pbx::call_cleared{msg.cleared_call.call_id, cause()};
        } else if constexpr (std::is_same_v<T, agent_logged_on_event>) {
          return to_operator(msg, pbx::operator_state::logged_on);
        } else if constexpr (std::is_same_v<T, agent_logged_off_event>) {
          return to_operator(msg, pbx::operator_state::logged_off);
        } else if constexpr (std::is_same_v<T, agent_ready_event>) {
          return to_operator(msg, pbx::operator_state::ready);
        } else if constexpr (std::is_same_v<T, agent_not_ready_event>) {
          return to_operator(msg, pbx::operator_state::not_ready);
        } else if constexpr (std::is_same_v<T, agent_working_after_call_event>) {
          return to_operator(msg, pbx::operator_state::after_call_work);
        } else if constexpr (std::is_same_v<T, agent_busy_event>) {
          return to_operator(msg, pbx::operator_state::busy);
        } else {
          return std::nullopt;
        }
      },
      m);
}

result<route_select> to_csta(const pbx::route_select& c) {
  auto key = parse_dialog_id(c.dialog);
  if (!key) return error(errc::call_unknown, "routing dialog '" + c.dialog + "' is not a CSTA dialog");
  route_select r;
  r.cross_ref_identifier = std::move(key->cross_ref_identifier);
  r.route_register_req_id = std::move(key->route_register_req_id);
  r.route_selected = c.destination;
  if (c.want_route_used) r.route_used_req = true;
  if (!c.correlator.empty()) r.correlator_data = c.correlator;
  return r;
}

result<route_end> to_csta(const pbx::route_end& c) {
  auto key = parse_dialog_id(c.dialog);
  if (!key) return error(errc::call_unknown, "routing dialog '" + c.dialog + "' is not a CSTA dialog");
  route_end r;
  r.cross_ref_identifier = std::move(key->cross_ref_identifier);
  r.route_register_req_id = std::move(key->route_register_req_id);
  return r;
}

make_call to_csta(const pbx::make_call& c) {
  make_call r;
  r.calling_device = c.from;
  r.called_directory_number = c.to;
  r.auto_originate = "doNotPrompt";
  if (!c.correlator.empty()) r.correlator_data = c.correlator;
  return r;
}
answer_call to_csta(const pbx::answer_call& c) { return {to_csta(c.connection)}; }
clear_connection to_csta(const pbx::clear_connection& c) { return {to_csta(c.connection)}; }
hold_call to_csta(const pbx::hold_call& c) { return {to_csta(c.connection)}; }
retrieve_call to_csta(const pbx::retrieve_call& c) { return {to_csta(c.connection)}; }
consultation_call to_csta(const pbx::consult_call& c) { return {to_csta(c.existing), c.to, std::nullopt}; }
transfer_call to_csta(const pbx::transfer_call& c) { return {to_csta(c.held), to_csta(c.active)}; }
conference_call to_csta(const pbx::conference_call& c) { return {to_csta(c.held), to_csta(c.active)}; }
deflect_call to_csta(const pbx::deflect_call& c) { return {to_csta(c.connection), c.to}; }
single_step_transfer_call to_csta(const pbx::single_step_transfer& c) {
  return {to_csta(c.active), c.to, std::nullopt};
}

result<set_agent_state> to_csta(const pbx::set_operator_state& c) {
  set_agent_state r;
  r.device = c.device;
  switch (c.state) {
    case pbx::operator_state::logged_on:
      r.requested_agent_state = "loggedOn";
      break;
    case pbx::operator_state::logged_off:
      r.requested_agent_state = "loggedOff";
      break;
    case pbx::operator_state::ready:
      r.requested_agent_state = "ready";
      break;
    case pbx::operator_state::not_ready:
      r.requested_agent_state = "notReady";
      break;
    case pbx::operator_state::after_call_work:
      r.requested_agent_state = "workingAfterCall";
      break;
    case pbx::operator_state::busy:
      return error(errc::state_not_allowed, "CSTA cannot set an agent busy");
  }
  if (!c.agent_id.empty()) r.agent_id = c.agent_id;
  if (!c.password.empty() && c.state == pbx::operator_state::logged_on) r.password = c.password;
  if (!c.group.empty()) r.group = c.group;
  return r;
}

snapshot_device to_csta(const pbx::snapshot_device& c) { return {c.device}; }

std::vector<pbx::snapshot_entry> to_snapshot(const snapshot_device_response& r) {
  std::vector<pbx::snapshot_entry> out;
  out.reserve(r.items.size());
  for (const auto& i : r.items) {
    out.push_back(
        {to_connection(i.connection), i.states.empty() ? pbx::connection_state::null : to_state(i.states.front())});
  }
  return out;
}

std::string error_text(const choice_value& c) {
  if (c.value.empty()) return c.choice;
  return c.choice + ": " + c.value;
}

}  // namespace switchboard::csta
