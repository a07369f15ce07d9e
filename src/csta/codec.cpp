// CSTA XML codec: one field list per message (describe) drives both the pugixml reader and the
// string writer, so decode and encode cannot drift apart and element order follows the schema.
#include "switchboard/csta/codec.hpp"
#include "switchboard/csta/framer.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace switchboard::csta {
namespace {

// ---- value tables -------------------------------------------------------------------------
constexpr std::array<std::string_view, 7> lcs_names = {"null", "initiated", "alerting", "connected",
                                                       "hold", "queued",    "fail"};

constexpr std::array<std::string_view, 5> edition_names = {"ed2", "ed3", "ed4", "ed5", "ed6"};

std::string_view local_name(const char* qualified) {
  std::string_view s(qualified);
  const auto colon = s.rfind(':');
  return colon == std::string_view::npos ? s : s.substr(colon + 1);
}

// An NCName as far as we emit them: a letter or '_' first, then letters, digits, '-', '_', '.'.
bool is_xml_name(std::string_view s) {
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !letter(s.front())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; });
}

pugi::xml_node find_child(pugi::xml_node parent, std::string_view name) {
  for (auto c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
  }
  return {};
}

pugi::xml_node first_element(pugi::xml_node parent) {
  for (auto c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) return c;
  }
  return {};
}

std::string_view trimmed_text(pugi::xml_node n) {
  std::string_view s(n.child_value());
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// ---- reader: pugixml node -> struct ---------------------------------------------------------
class reader {
 public:
  reader(pugi::xml_node node, std::string_view message, std::optional<error>& failure)
      : node_(node), message_(message), failure_(failure) {}

  // A mandatory element.
  template <class T>
  void operator()(std::string_view name, T& out) {
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) return missing(name);
    read_value(c, out);
  }

  // An optional element.
  template <class T>
  void operator()(std::string_view name, std::optional<T>& out) {
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) {
      out.reset();
      return;
    }
    T value{};
    read_value(c, value);
    out = std::move(value);
  }

  // <name><item/>...<item/></name>; absent: empty.
  template <class T>
  void list(std::string_view name, std::string_view item, std::vector<T>& out) {
    out.clear();
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) return;
    for (auto i = c.first_child(); i && !failure_; i = i.next_sibling()) {
      if (i.type() != pugi::node_element || local_name(i.name()) != item) continue;
      T value{};
      read_value(i, value);
      out.push_back(std::move(value));
    }
  }

  // Children of a wrapper element that must be present (<monitorObject><deviceObject>).
  template <class F>
  void group(std::string_view name, F&& body) {
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) return missing(name);
    reader inner(c, message_, failure_);
    body(inner);
  }

  // Children of a wrapper element that may be absent; fields keep their defaults then.
  template <class F>
  void optional_group(std::string_view name, F&& body) {
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) return;
    reader inner(c, message_, failure_);
    body(inner);
  }

  // <correlatorData><string>..</string></correlatorData> (text directly inside accepted too).
  void correlator(std::string_view name, std::optional<std::string>& out) {
    out.reset();
    if (failure_) return;
    const auto c = find_child(node_, name);
    if (!c) return;
    const auto s = first_element(c);
    out = std::string(trimmed_text(s ? s : c));
  }

  // ConnectionListItem endpoint: same choice as a device_ref, with <deviceID> for the number.
  void endpoint(std::string_view name, std::optional<device_ref>& out) { (*this)(name, out); }

  // The message element itself is the choice (CSTAErrorCode).
  void here(choice_value& out) { read_value(node_, out); }

 private:
  void missing(std::string_view name) {
    std::string detail(message_);
    detail += ": missing ";
    detail += name;
    const auto parent = local_name(node_.name());
    if (parent != message_) {
      detail += " in ";
      detail += parent;
    }
    failure_ = error(errc::message_malformed, std::move(detail));
  }

  void bad_value(pugi::xml_node n, std::string_view what) {
    std::string detail(message_);
    detail += ": ";
    detail += local_name(n.name());
    detail += " is not ";
    detail += what;
    failure_ = error(errc::message_malformed, std::move(detail));
  }

  template <class T>
  void read_value(pugi::xml_node n, T& out);

  pugi::xml_node node_;
  std::string_view message_;
  std::optional<error>& failure_;
};

// ---- writer: struct -> XML text -------------------------------------------------------------
class writer {
 public:
  explicit writer(std::string& out) : out_(out) {}

  template <class T>
  void operator()(std::string_view name, const T& value) {
    write_value(name, value);
  }
  template <class T>
  void operator()(std::string_view name, const std::optional<T>& value) {
    if (value) write_value(name, *value);
  }
  template <class T>
  void list(std::string_view name, std::string_view item, const std::vector<T>& values) {
    if (values.empty()) return;
    open(name);
    for (const auto& v : values) write_value(item, v);
    close(name);
  }
  template <class F>
  void group(std::string_view name, F&& body) {
    open(name);
    body(*this);
    close(name);
  }
  template <class F>
  void optional_group(std::string_view name, F&& body) {
    group(name, std::forward<F>(body));
  }
  void correlator(std::string_view name, const std::optional<std::string>& value) {
    if (!value) return;
    open(name);
    write_value("string", *value);
    close(name);
  }
  void endpoint(std::string_view name, const std::optional<device_ref>& value) {
    if (value) write_device(name, *value, "deviceID");
  }
  void here(const choice_value& value) { write_choice(value); }

  void open(std::string_view name) {
    out_ += '<';
    out_ += name;
    out_ += '>';
  }
  void close(std::string_view name) {
    out_ += "</";
    out_ += name;
    out_ += '>';
  }
  void empty(std::string_view name) {
    out_ += '<';
    out_ += name;
    out_ += "/>";
  }
  void text(std::string_view s) {
    for (const char ch : s) {
      switch (ch) {
        case '<':
          out_ += "&lt;";
          break;
        case '>':
          out_ += "&gt;";
          break;
        case '&':
          out_ += "&amp;";
          break;
        default:
          out_ += ch;
      }
    }
  }

 private:
  void write_device(std::string_view name, const device_ref& d, std::string_view id_element) {
    open(name);
    switch (d.presence) {
      case device_presence::known:
        open(id_element);
        text(d.id);
        close(id_element);
        break;
      case device_presence::not_known:
        empty("notKnown");
        break;
      case device_presence::restricted:
        empty("restricted");
        break;
      case device_presence::not_required:
        empty("notRequired");
        break;
      case device_presence::not_specified:
        empty("notSpecified");
        break;
    }
    close(name);
  }
  void write_choice(const choice_value& c) {
    if (c.value.empty()) return empty(c.choice);
    open(c.choice);
    text(c.value);
    close(c.choice);
  }

  template <class T>
  void write_value(std::string_view name, const T& value);

  std::string& out_;
};

// ---- field lists: one per message, in schema order ------------------------------------------
#define SB_DESCRIBE(T)                               \
  template <class M, class V>                        \
  requires std::is_same_v<std::remove_const_t<M>, T> \
  void describe(M& m, V& v)

SB_DESCRIBE(system_status) {
  v("sysStatRegisterID", m.sys_stat_register_id);
  v("systemStatus", m.status);
}
SB_DESCRIBE(system_register) {
  v.group("requestTypes", [&](auto& g) {
    g("systemStatus", m.system_status);
    g("requestSystemStatus", m.request_system_status);
  });
}
SB_DESCRIBE(system_register_response) { v("sysStatRegisterID", m.sys_stat_register_id); }
SB_DESCRIBE(request_system_status) { v("sysStatRegisterID", m.sys_stat_register_id); }
SB_DESCRIBE(request_system_status_response) { v("systemStatus", m.system_status); }
SB_DESCRIBE(start_application_session) {
  v.group("applicationInfo", [&](auto& g) { g("applicationID", m.application_id); });
  v.list("requestedProtocolVersions", "protocolVersion", m.protocol_versions);
  v("requestedSessionDuration", m.requested_session_duration);
}
SB_DESCRIBE(start_application_session_pos_response) {
  v("sessionID", m.session_id);
  v("actualProtocolVersion", m.actual_protocol_version);
  v("actualSessionDuration", m.actual_session_duration);
}
SB_DESCRIBE(start_application_session_neg_response) { v("errorCode", m.error_code); }
SB_DESCRIBE(reset_application_session_timer) {
  v("sessionID", m.session_id);
  v("requestedSessionDuration", m.requested_session_duration);
}
SB_DESCRIBE(reset_application_session_timer_pos_response) { v("actualSessionDuration", m.actual_session_duration); }
SB_DESCRIBE(reset_application_session_timer_neg_response) { v("errorCode", m.error_code); }
SB_DESCRIBE(stop_application_session) {
  v("sessionID", m.session_id);
  v("sessionEndReason", m.session_end_reason);
}
SB_DESCRIBE(stop_application_session_neg_response) { v("errorCode", m.error_code); }
SB_DESCRIBE(application_session_terminated) {
  v("sessionID", m.session_id);
  v("sessionTermReason", m.session_term_reason);
}
SB_DESCRIBE(monitor_start) {
  v.group("monitorObject", [&](auto& g) { g("deviceObject", m.device); });
  v("monitorType", m.monitor_type);
}
SB_DESCRIBE(monitor_start_response) { v("monitorCrossRefID", m.monitor_cross_ref_id); }
SB_DESCRIBE(monitor_stop) { v("monitorCrossRefID", m.monitor_cross_ref_id); }
SB_DESCRIBE(snapshot_device) { v("snapshotObject", m.snapshot_object); }
SB_DESCRIBE(snapshot_item) {
  v("connectionIdentifier", m.connection);
  v.optional_group("localCallState", [&](auto& g) { g.list("compoundCallState", "localConnectionState", m.states); });
}
SB_DESCRIBE(snapshot_device_response) {
  v.group("crossRefIDorSnapshotData", [&](auto& g) {
    g("serviceCrossRefID", m.service_cross_ref_id);
    g.list("snapshotData", "snapshotDeviceResponseInfo", m.items);
  });
}
SB_DESCRIBE(route_register) { v("routeingDevice", m.routeing_device); }
SB_DESCRIBE(route_register_response) { v("routeRegisterReqID", m.route_register_req_id); }
SB_DESCRIBE(route_register_cancel) { v("routeRegisterReqID", m.route_register_req_id); }
SB_DESCRIBE(route_register_abort) { v("routeRegisterReqID", m.route_register_req_id); }
SB_DESCRIBE(route_request) {
  v("crossRefIdentifier", m.cross_ref_identifier);
  v("routeRegisterReqID", m.route_register_req_id);
  v("currentRoute", m.current_route);
  v("callingDevice", m.calling_device);
  v("routeingDevice", m.routeing_device);
  v("routedCall", m.routed_call);
  v("routeSelAlgorithm", m.route_sel_algorithm);
  v("priority", m.priority);
  v("replyTimeout", m.reply_timeout);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(re_route) {
  v("crossRefIdentifier", m.cross_ref_identifier);
  v("routeRegisterReqID", m.route_register_req_id);
  v("replyTimeout", m.reply_timeout);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(route_select) {
  v("crossRefIdentifier", m.cross_ref_identifier);
  v("routeRegisterReqID", m.route_register_req_id);
  v("routeSelected", m.route_selected);
  v.list("alternateRoutes", "deviceID", m.alternate_routes);
  v("remainRetries", m.remain_retries);
  v("routeUsedReq", m.route_used_req);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(route_used) {
  v("crossRefIdentifier", m.cross_ref_identifier);
  v("routeRegisterReqID", m.route_register_req_id);
  v("routeUsed", m.used);
  v("callingDevice", m.calling_device);
  v("domain", m.domain);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(route_end) {
  v("crossRefIdentifier", m.cross_ref_identifier);
  v("routeRegisterReqID", m.route_register_req_id);
  v("errorValue", m.error_value);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(make_call) {
  v("callingDevice", m.calling_device);
  v("calledDirectoryNumber", m.called_directory_number);
  v("autoOriginate", m.auto_originate);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(make_call_response) { v("callingDevice", m.calling_device); }
SB_DESCRIBE(answer_call) { v("callToBeAnswered", m.call_to_be_answered); }
SB_DESCRIBE(clear_connection) { v("connectionToBeCleared", m.connection_to_be_cleared); }
SB_DESCRIBE(hold_call) { v("callToBeHeld", m.call_to_be_held); }
SB_DESCRIBE(retrieve_call) { v("callToBeRetrieved", m.call_to_be_retrieved); }
SB_DESCRIBE(consultation_call) {
  v("existingCall", m.existing_call);
  v("consultedDevice", m.consulted_device);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(consultation_call_response) { v("initiatedCall", m.initiated_call); }
SB_DESCRIBE(connection_list_item) {
  v("newConnection", m.new_connection);
  v("oldConnection", m.old_connection);
  v.endpoint("endpoint", m.endpoint);
}
SB_DESCRIBE(transfer_call) {
  v("heldCall", m.held_call);
  v("activeCall", m.active_call);
}
SB_DESCRIBE(transfer_call_response) {
  v("transferredCall", m.transferred_call);
  v.list("connections", "connectionListItem", m.connections);
}
SB_DESCRIBE(conference_call) {
  v("heldCall", m.held_call);
  v("activeCall", m.active_call);
}
SB_DESCRIBE(conference_call_response) {
  v("conferenceCall", m.conference_call);
  v.list("connections", "connectionListItem", m.connections);
}
SB_DESCRIBE(deflect_call) {
  v("callToBeDiverted", m.call_to_be_diverted);
  v("newDestination", m.new_destination);
}
SB_DESCRIBE(single_step_transfer_call) {
  v("activeCall", m.active_call);
  v("transferredTo", m.transferred_to);
  v.correlator("correlatorData", m.correlator_data);
}
SB_DESCRIBE(single_step_transfer_call_response) {
  v("transferredCall", m.transferred_call);
  v.list("connections", "connectionListItem", m.connections);
}
SB_DESCRIBE(set_agent_state) {
  v("device", m.device);
  v("requestedAgentState", m.requested_agent_state);
  v("agentID", m.agent_id);
  v("password", m.password);
  v("group", m.group);
}
SB_DESCRIBE(set_agent_state_response) { v("pendingAgentState", m.pending_agent_state); }
SB_DESCRIBE(get_agent_state) {
  v("device", m.device);
  v("acdGroup", m.acd_group);
}
SB_DESCRIBE(agent_info_item) {
  v("acdGroup", m.acd_group);
  v("agentState", m.agent_state);
  v("pendingAgentState", m.pending_agent_state);
}
SB_DESCRIBE(agent_state_entry) {
  v("agentID", m.agent_id);
  v("loggedOnState", m.logged_on_state);
  v.list("agentInfo", "agentInfoItem", m.agent_info);
}
SB_DESCRIBE(get_agent_state_response) { v.list("agentStateList", "agentStateEntry", m.agent_state_list); }
SB_DESCRIBE(csta_error_code) { v.here(m.error); }
SB_DESCRIBE(service_initiated_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("initiatedConnection", m.initiated_connection);
  v("initiatingDevice", m.initiating_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(originated_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("originatedConnection", m.originated_connection);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(delivered_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("connection", m.connection);
  v("alertingDevice", m.alerting_device);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("lastRedirectionDevice", m.last_redirection_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(established_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("establishedConnection", m.established_connection);
  v("answeringDevice", m.answering_device);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("lastRedirectionDevice", m.last_redirection_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(connection_cleared_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("droppedConnection", m.dropped_connection);
  v("releasingDevice", m.releasing_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(call_cleared_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("clearedCall", m.cleared_call);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(held_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("heldConnection", m.held_connection);
  v("holdingDevice", m.holding_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(retrieved_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("retrievedConnection", m.retrieved_connection);
  v("retrievingDevice", m.retrieving_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(transfered_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("primaryOldCall", m.primary_old_call);
  v("secondaryOldCall", m.secondary_old_call);
  v("transferringDevice", m.transferring_device);
  v("transferredToDevice", m.transferred_to_device);
  v.list("transferredConnections", "connectionListItem", m.transferred_connections);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(conferenced_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("primaryOldCall", m.primary_old_call);
  v("secondaryOldCall", m.secondary_old_call);
  v("conferencingDevice", m.conferencing_device);
  v("addedParty", m.added_party);
  v.list("conferenceConnections", "connectionListItem", m.conference_connections);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(diverted_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("connection", m.connection);
  v("divertingDevice", m.diverting_device);
  v("newDestination", m.new_destination);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("lastRedirectionDevice", m.last_redirection_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(queued_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("queuedConnection", m.queued_connection);
  v("queue", m.queue);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("lastRedirectionDevice", m.last_redirection_device);
  v("numberQueued", m.number_queued);
  v("callsInFront", m.calls_in_front);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
SB_DESCRIBE(failed_event) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("failedConnection", m.failed_connection);
  v("failingDevice", m.failing_device);
  v("callingDevice", m.calling_device);
  v("calledDevice", m.called_device);
  v("lastRedirectionDevice", m.last_redirection_device);
  v("localConnectionInfo", m.local_connection_info);
  v.correlator("correlatorData", m.correlator_data);
  v("cause", m.cause);
}
template <class M, class V>
requires std::is_base_of_v<agent_event_fields, std::remove_const_t<M>>
void describe(M& m, V& v) {
  v("monitorCrossRefID", m.monitor_cross_ref_id);
  v("agentDevice", m.agent_device);
  v("agentID", m.agent_id);
  v("acdGroup", m.acd_group);
  v("pendingAgentState", m.pending_agent_state);
  v("cause", m.cause);
}
#undef SB_DESCRIBE

// Every struct that is not a plain value is described; empty responses have no fields.
template <class M, class V>
void visit_fields(M& m, V& v) {
  if constexpr (!std::is_empty_v<std::remove_const_t<M>>) describe(m, v);
}

template <class T>
void reader::read_value(pugi::xml_node n, T& out) {
  if constexpr (std::is_same_v<T, std::string>) {
    out.assign(trimmed_text(n));
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    const auto s = trimmed_text(n);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) bad_value(n, "a number");
  } else if constexpr (std::is_same_v<T, bool>) {
    const auto s = trimmed_text(n);
    if (s == "true" || s == "1") {
      out = true;
    } else if (s == "false" || s == "0") {
      out = false;
    } else {
      bad_value(n, "true or false");
    }
  } else if constexpr (std::is_same_v<T, local_connection_state>) {
    const auto s = trimmed_text(n);
    for (std::size_t i = 0; i < lcs_names.size(); ++i) {
      if (lcs_names[i] == s) {
        out = static_cast<local_connection_state>(i);
        return;
      }
    }
    bad_value(n, "a local connection state");
  } else if constexpr (std::is_same_v<T, device_ref>) {
    const auto c = first_element(n);
    if (!c) {
      // Some switches put the number straight inside; accept it.
      out = device_ref::known(std::string(trimmed_text(n)));
      if (out.id.empty()) bad_value(n, "a device");
      return;
    }
    const auto name = local_name(c.name());
    if (name == "deviceIdentifier" || name == "deviceID" || name == "numberDialed") {
      out = device_ref::known(std::string(trimmed_text(c)));
    } else if (name == "notKnown") {
      out = {{}, device_presence::not_known};
    } else if (name == "restricted") {
      out = {{}, device_presence::restricted};
    } else if (name == "notRequired") {
      out = {{}, device_presence::not_required};
    } else if (name == "notSpecified") {
      out = {{}, device_presence::not_specified};
    } else {
      bad_value(n, "a device");
    }
  } else if constexpr (std::is_same_v<T, connection_ref>) {
    const auto call = find_child(n, "callID");
    const auto device = find_child(n, "deviceID");
    if (!call && !device) return bad_value(n, "a connection (callID, deviceID)");
    out.call_id = call ? std::string(trimmed_text(call)) : std::string();
    out.device_id = device ? std::string(trimmed_text(device)) : std::string();
  } else if constexpr (std::is_same_v<T, choice_value>) {
    const auto c = first_element(n);
    if (!c) return bad_value(n, "a choice of one element");
    // The choice is written back as an element name, so it must be one (pugixml accepts <:/>).
    if (!is_xml_name(local_name(c.name()))) return bad_value(n, "a choice of one element");
    out.choice.assign(local_name(c.name()));
    out.value.assign(trimmed_text(c));
  } else {
    reader inner(n, message_, failure_);
    visit_fields(out, inner);
  }
}

template <class T>
void writer::write_value(std::string_view name, const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    open(name);
    text(value);
    close(name);
  } else if constexpr (std::is_same_v<T, std::int64_t>) {
    open(name);
    out_ += std::to_string(value);
    close(name);
  } else if constexpr (std::is_same_v<T, bool>) {
    open(name);
    out_ += value ? "true" : "false";
    close(name);
  } else if constexpr (std::is_same_v<T, local_connection_state>) {
    open(name);
    out_ += lcs_names[static_cast<std::size_t>(value)];
    close(name);
  } else if constexpr (std::is_same_v<T, device_ref>) {
    write_device(name, value, "deviceIdentifier");
  } else if constexpr (std::is_same_v<T, connection_ref>) {
    open(name);
    // Keep an empty callID rather than an empty element, which would not decode.
    if (!value.call_id.empty() || value.device_id.empty()) write_value("callID", value.call_id);
    if (!value.device_id.empty()) write_value("deviceID", value.device_id);
    close(name);
  } else if constexpr (std::is_same_v<T, choice_value>) {
    open(name);
    write_choice(value);
    close(name);
  } else {
    open(name);
    visit_fields(value, *this);
    close(name);
  }
}

// ---- dispatch by root element name ----------------------------------------------------------
using decode_fn = result<message> (*)(pugi::xml_node);

template <class T>
result<message> decode_as(pugi::xml_node root) {
  std::optional<error> failure;
  T m{};
  reader r(root, T::xml_name, failure);
  visit_fields(m, r);
  if (failure) return *failure;
  return message(std::in_place_type<T>, std::move(m));
}

constexpr std::size_t modelled_count = std::variant_size_v<message> - 1;  // all but unknown_message

template <std::size_t... I>
std::unordered_map<std::string_view, decode_fn> make_table(std::index_sequence<I...>) {
  return {{std::variant_alternative_t<I, message>::xml_name, &decode_as<std::variant_alternative_t<I, message>>}...};
}

const std::unordered_map<std::string_view, decode_fn>& decoders() {
  static const auto table = make_table(std::make_index_sequence<modelled_count>{});
  return table;
}

template <class T>
constexpr bool application_session_type =
    std::is_same_v<T, start_application_session> || std::is_same_v<T, start_application_session_pos_response> ||
    std::is_same_v<T, start_application_session_neg_response> || std::is_same_v<T, reset_application_session_timer> ||
    std::is_same_v<T, reset_application_session_timer_pos_response> ||
    std::is_same_v<T, reset_application_session_timer_neg_response> || std::is_same_v<T, stop_application_session> ||
    std::is_same_v<T, stop_application_session_pos_response> ||
    std::is_same_v<T, stop_application_session_neg_response> || std::is_same_v<T, application_session_terminated>;

}  // namespace

std::string_view message_name(const message& m) noexcept {
  return std::visit(
      [](const auto& msg) -> std::string_view {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, unknown_message>) {
          return msg.name;
        } else {
          return T::xml_name;
        }
      },
      m);
}

bool is_application_session(const message& m) noexcept {
  return std::visit([](const auto& msg) { return application_session_type<std::decay_t<decltype(msg)>>; }, m);
}

std::string_view namespace_of(edition e) noexcept {
  switch (e) {
    case edition::ed2:
      return "http://www.ecma-international.org/standards/ecma-323/csta/ed2";
    case edition::ed3:
      return "http://www.ecma-international.org/standards/ecma-323/csta/ed3";
    case edition::ed4:
      return "http://www.ecma-international.org/standards/ecma-323/csta/ed4";
    case edition::ed5:
      return "http://www.ecma-international.org/standards/ecma-323/csta/ed5";
    case edition::ed6:
      return "http://www.ecma-international.org/standards/ecma-323/csta/ed6";
  }
  return "http://www.ecma-international.org/standards/ecma-323/csta/ed3";
}

std::optional<edition> parse_edition(std::string_view text) noexcept {
  for (std::size_t i = 0; i < edition_names.size(); ++i) {
    const auto e = static_cast<edition>(i);
    if (text == edition_names[i] || text == namespace_of(e)) return e;
  }
  return std::nullopt;
}

result<message> decode(std::string_view xml) {
  pugi::xml_document doc;
  const auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return error(errc::message_malformed,
                 std::string("invalid XML: ") + parsed.description() + " at offset " + std::to_string(parsed.offset));
  }
  const auto root = doc.document_element();
  if (!root) return error(errc::message_malformed, "no root element");
  const auto name = local_name(root.name());
  const auto& table = decoders();
  const auto found = table.find(name);
  if (found == table.end()) return message(unknown_message{std::string(name)});
  return found->second(root);
}

void encode(const message& m, std::string& out, const encode_options& options) {
  if (options.xml_declaration) out += R"(<?xml version="1.0" encoding="UTF-8"?>)";
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        writer w(out);
        if constexpr (std::is_same_v<T, unknown_message>) {
          w.empty(msg.name);
        } else {
          const auto ns = application_session_type<T> ? application_session_namespace : namespace_of(options.emit);
          out += '<';
          out += T::xml_name;
          out += R"( xmlns=")";
          out += ns;
          if constexpr (std::is_empty_v<T>) {
            out += R"("/>)";
          } else {
            out += R"(">)";
            visit_fields(msg, w);
            w.close(T::xml_name);
          }
        }
      },
      m);
}

std::string encode(const message& m, const encode_options& options) {
  std::string out;
  encode(m, out, options);
  return out;
}

result<void> encode_frame(const message& m, int invoke_id, std::string& out, const encode_options& options,
                          std::size_t max_frame_size) {
  // Encode in place after room for the header, then fill the header in: no second copy.
  const std::size_t begin = out.size();
  out.append(frame_header_size, '\0');
  encode(m, out, options);
  auto header = frame_header(invoke_id, out.size() - begin - frame_header_size, max_frame_size);
  if (!header) {
    out.resize(begin);
    return header.error();
  }
  out.replace(begin, frame_header_size, header->data(), header->size());
  return {};
}

}  // namespace switchboard::csta
