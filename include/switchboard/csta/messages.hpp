// Typed CSTA Phase III messages (ECMA-269 services in ECMA-323 XML, plus the ECMA-354
// application session), one struct per XML element, all in one std::variant. Field names follow
// the XML element names in snake_case; optional elements are std::optional or empty vectors.
// The structs hold data only: codec.hpp turns them into XML and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchboard::csta {

// How a device is given in an event (CSTA ExtendedDeviceID and RedirectionDeviceID choices).
enum class device_presence { known, not_known, restricted, not_required, not_specified };

// A device in an event: <x><deviceIdentifier>4711</deviceIdentifier></x>, or <notKnown/>, ...
struct device_ref {
  std::string id;  // empty unless presence == known
  device_presence presence = device_presence::known;

  static device_ref known(std::string id) { return {std::move(id), device_presence::known}; }
  friend bool operator==(const device_ref&, const device_ref&) = default;
};

// CSTA ConnectionID: <x><callID>..</callID><deviceID>..</deviceID></x>, children in any order,
// either may be absent.
struct connection_ref {
  std::string call_id;
  std::string device_id;
  friend bool operator==(const connection_ref&, const connection_ref&) = default;
};

// CSTA LocalConnectionState.
enum class local_connection_state { null, initiated, alerting, connected, hold, queued, fail };

// An XML choice of one element holding a value: <errorValue><operation>invalidCallID</operation>
// </errorValue>, <unspecified/> (empty value), <retryCount>2</retryCount>.
struct choice_value {
  std::string choice;  // element name: "operation", "unspecified", "definedError", ...
  std::string value;   // its text, empty for an empty element
  friend bool operator==(const choice_value&, const choice_value&) = default;
};

// ---- system status and registration (both directions) -------------------------------------
struct system_status {
  static constexpr std::string_view xml_name = "SystemStatus";
  std::optional<std::string> sys_stat_register_id;
  std::string status;  // <systemStatus>: normal, enabled, disabled, initializing, messagesLost, ...
  friend bool operator==(const system_status&, const system_status&) = default;
};
struct system_status_response {
  static constexpr std::string_view xml_name = "SystemStatusResponse";
  friend bool operator==(const system_status_response&, const system_status_response&) = default;
};
struct system_register {
  static constexpr std::string_view xml_name = "SystemRegister";
  std::optional<bool> system_status = true;  // requestTypes/systemStatus
  std::optional<bool> request_system_status;
  friend bool operator==(const system_register&, const system_register&) = default;
};
struct system_register_response {
  static constexpr std::string_view xml_name = "SystemRegisterResponse";
  std::string sys_stat_register_id;
  friend bool operator==(const system_register_response&, const system_register_response&) = default;
};
struct request_system_status {
  static constexpr std::string_view xml_name = "RequestSystemStatus";
  std::optional<std::string> sys_stat_register_id;
  friend bool operator==(const request_system_status&, const request_system_status&) = default;
};
struct request_system_status_response {
  static constexpr std::string_view xml_name = "RequestSystemStatusResponse";
  std::string system_status;
  friend bool operator==(const request_system_status_response&, const request_system_status_response&) = default;
};

// ---- ECMA-354 application session (Avaya DMCC style) ---------------------------------------
struct start_application_session {
  static constexpr std::string_view xml_name = "StartApplicationSession";
  std::string application_id;                              // applicationInfo/applicationID
  std::vector<std::string> protocol_versions;              // requestedProtocolVersions/protocolVersion
  std::optional<std::int64_t> requested_session_duration;  // seconds
  friend bool operator==(const start_application_session&, const start_application_session&) = default;
};
struct start_application_session_pos_response {
  static constexpr std::string_view xml_name = "StartApplicationSessionPosResponse";
  std::string session_id;
  std::optional<std::string> actual_protocol_version;
  std::optional<std::int64_t> actual_session_duration;
  friend bool operator==(const start_application_session_pos_response&,
                         const start_application_session_pos_response&) = default;
};
struct start_application_session_neg_response {
  static constexpr std::string_view xml_name = "StartApplicationSessionNegResponse";
  choice_value error_code;  // definedError | applError
  friend bool operator==(const start_application_session_neg_response&,
                         const start_application_session_neg_response&) = default;
};
struct reset_application_session_timer {
  static constexpr std::string_view xml_name = "ResetApplicationSessionTimer";
  std::string session_id;
  std::optional<std::int64_t> requested_session_duration;
  friend bool operator==(const reset_application_session_timer&, const reset_application_session_timer&) = default;
};
struct reset_application_session_timer_pos_response {
  static constexpr std::string_view xml_name = "ResetApplicationSessionTimerPosResponse";
  std::optional<std::int64_t> actual_session_duration;
  friend bool operator==(const reset_application_session_timer_pos_response&,
                         const reset_application_session_timer_pos_response&) = default;
};
struct reset_application_session_timer_neg_response {
  static constexpr std::string_view xml_name = "ResetApplicationSessionTimerNegResponse";
  choice_value error_code;
  friend bool operator==(const reset_application_session_timer_neg_response&,
                         const reset_application_session_timer_neg_response&) = default;
};
struct stop_application_session {
  static constexpr std::string_view xml_name = "StopApplicationSession";
  std::string session_id;
  choice_value session_end_reason{"definedEndReason", "normal"};
  friend bool operator==(const stop_application_session&, const stop_application_session&) = default;
};
struct stop_application_session_pos_response {
  static constexpr std::string_view xml_name = "StopApplicationSessionPosResponse";
  friend bool operator==(const stop_application_session_pos_response&,
                         const stop_application_session_pos_response&) = default;
};
struct stop_application_session_neg_response {
  static constexpr std::string_view xml_name = "StopApplicationSessionNegResponse";
  choice_value error_code;
  friend bool operator==(const stop_application_session_neg_response&,
                         const stop_application_session_neg_response&) = default;
};
struct application_session_terminated {
  static constexpr std::string_view xml_name = "ApplicationSessionTerminated";
  std::string session_id;
  std::optional<choice_value> session_term_reason;
  friend bool operator==(const application_session_terminated&, const application_session_terminated&) = default;
};

// ---- monitoring and snapshot ----------------------------------------------------------------
struct monitor_start {
  static constexpr std::string_view xml_name = "MonitorStart";
  std::string device;                       // monitorObject/deviceObject
  std::optional<std::string> monitor_type;  // call | device
  friend bool operator==(const monitor_start&, const monitor_start&) = default;
};
struct monitor_start_response {
  static constexpr std::string_view xml_name = "MonitorStartResponse";
  std::string monitor_cross_ref_id;
  friend bool operator==(const monitor_start_response&, const monitor_start_response&) = default;
};
struct monitor_stop {
  static constexpr std::string_view xml_name = "MonitorStop";
  std::string monitor_cross_ref_id;
  friend bool operator==(const monitor_stop&, const monitor_stop&) = default;
};
struct monitor_stop_response {
  static constexpr std::string_view xml_name = "MonitorStopResponse";
  friend bool operator==(const monitor_stop_response&, const monitor_stop_response&) = default;
};
struct snapshot_device {
  static constexpr std::string_view xml_name = "SnapshotDevice";
  std::string snapshot_object;
  friend bool operator==(const snapshot_device&, const snapshot_device&) = default;
};
// One call at the device: its connection and the local state(s) (compoundCallState).
struct snapshot_item {
  connection_ref connection;
  std::vector<local_connection_state> states;
  friend bool operator==(const snapshot_item&, const snapshot_item&) = default;
};
struct snapshot_device_response {
  static constexpr std::string_view xml_name = "SnapshotDeviceResponse";
  std::optional<std::string> service_cross_ref_id;  // when the data follows in snapshot events
  std::vector<snapshot_item> items;
  friend bool operator==(const snapshot_device_response&, const snapshot_device_response&) = default;
};

// ---- routing --------------------------------------------------------------------------------
struct route_register {
  static constexpr std::string_view xml_name = "RouteRegister";
  std::optional<std::string> routeing_device;  // absent: every routeing device
  friend bool operator==(const route_register&, const route_register&) = default;
};
struct route_register_response {
  static constexpr std::string_view xml_name = "RouteRegisterResponse";
  std::string route_register_req_id;
  friend bool operator==(const route_register_response&, const route_register_response&) = default;
};
struct route_register_cancel {
  static constexpr std::string_view xml_name = "RouteRegisterCancel";
  std::string route_register_req_id;
  friend bool operator==(const route_register_cancel&, const route_register_cancel&) = default;
};
struct route_register_cancel_response {
  static constexpr std::string_view xml_name = "RouteRegisterCancelResponse";
  friend bool operator==(const route_register_cancel_response&, const route_register_cancel_response&) = default;
};
struct route_register_abort {
  static constexpr std::string_view xml_name = "RouteRegisterAbort";
  std::string route_register_req_id;
  friend bool operator==(const route_register_abort&, const route_register_abort&) = default;
};
struct route_request {
  static constexpr std::string_view xml_name = "RouteRequest";
  std::string cross_ref_identifier;
  std::string route_register_req_id;
  device_ref current_route;
  device_ref calling_device;
  std::optional<device_ref> routeing_device;
  connection_ref routed_call;
  std::optional<std::string> route_sel_algorithm;
  std::optional<bool> priority;
  std::optional<std::int64_t> reply_timeout;  // milliseconds
  std::optional<std::string> correlator_data;
  friend bool operator==(const route_request&, const route_request&) = default;
};
struct re_route {
  static constexpr std::string_view xml_name = "ReRoute";
  std::string cross_ref_identifier;
  std::string route_register_req_id;
  std::optional<std::int64_t> reply_timeout;
  std::optional<std::string> correlator_data;
  friend bool operator==(const re_route&, const re_route&) = default;
};
struct route_select {
  static constexpr std::string_view xml_name = "RouteSelect";
  std::string cross_ref_identifier;
  std::string route_register_req_id;
  std::string route_selected;
  std::vector<std::string> alternate_routes;
  std::optional<choice_value> remain_retries;  // retryCount | noListAvailable | noCountAvailable
  std::optional<bool> route_used_req;
  std::optional<std::string> correlator_data;
  friend bool operator==(const route_select&, const route_select&) = default;
};
struct route_used {
  static constexpr std::string_view xml_name = "RouteUsed";
  std::string cross_ref_identifier;
  std::string route_register_req_id;
  device_ref used;  // <routeUsed>
  std::optional<device_ref> calling_device;
  std::optional<bool> domain;
  std::optional<std::string> correlator_data;
  friend bool operator==(const route_used&, const route_used&) = default;
};
struct route_end {
  static constexpr std::string_view xml_name = "RouteEnd";
  std::string cross_ref_identifier;
  std::string route_register_req_id;
  choice_value error_value{"unspecified", {}};
  std::optional<std::string> correlator_data;
  friend bool operator==(const route_end&, const route_end&) = default;
};

// ---- call control ---------------------------------------------------------------------------
struct make_call {
  static constexpr std::string_view xml_name = "MakeCall";
  std::string calling_device;
  std::string called_directory_number;
  std::optional<std::string> auto_originate;  // prompt | doNotPrompt
  std::optional<std::string> correlator_data;
  friend bool operator==(const make_call&, const make_call&) = default;
};
struct make_call_response {
  static constexpr std::string_view xml_name = "MakeCallResponse";
  connection_ref calling_device;
  friend bool operator==(const make_call_response&, const make_call_response&) = default;
};
struct answer_call {
  static constexpr std::string_view xml_name = "AnswerCall";
  connection_ref call_to_be_answered;
  friend bool operator==(const answer_call&, const answer_call&) = default;
};
struct answer_call_response {
  static constexpr std::string_view xml_name = "AnswerCallResponse";
  friend bool operator==(const answer_call_response&, const answer_call_response&) = default;
};
struct clear_connection {
  static constexpr std::string_view xml_name = "ClearConnection";
  connection_ref connection_to_be_cleared;
  friend bool operator==(const clear_connection&, const clear_connection&) = default;
};
struct clear_connection_response {
  static constexpr std::string_view xml_name = "ClearConnectionResponse";
  friend bool operator==(const clear_connection_response&, const clear_connection_response&) = default;
};
struct hold_call {
  static constexpr std::string_view xml_name = "HoldCall";
  connection_ref call_to_be_held;
  friend bool operator==(const hold_call&, const hold_call&) = default;
};
struct hold_call_response {
  static constexpr std::string_view xml_name = "HoldCallResponse";
  friend bool operator==(const hold_call_response&, const hold_call_response&) = default;
};
struct retrieve_call {
  static constexpr std::string_view xml_name = "RetrieveCall";
  connection_ref call_to_be_retrieved;
  friend bool operator==(const retrieve_call&, const retrieve_call&) = default;
};
struct retrieve_call_response {
  static constexpr std::string_view xml_name = "RetrieveCallResponse";
  friend bool operator==(const retrieve_call_response&, const retrieve_call_response&) = default;
};
struct consultation_call {
  static constexpr std::string_view xml_name = "ConsultationCall";
  connection_ref existing_call;
  std::string consulted_device;
  std::optional<std::string> correlator_data;
  friend bool operator==(const consultation_call&, const consultation_call&) = default;
};
struct consultation_call_response {
  static constexpr std::string_view xml_name = "ConsultationCallResponse";
  connection_ref initiated_call;
  friend bool operator==(const consultation_call_response&, const consultation_call_response&) = default;
};
// One party's connection before and after a transfer or conference.
struct connection_list_item {
  std::optional<connection_ref> new_connection;
  std::optional<connection_ref> old_connection;
  std::optional<device_ref> endpoint;  // <endpoint><deviceID>..</deviceID></endpoint> or notKnown/restricted
  friend bool operator==(const connection_list_item&, const connection_list_item&) = default;
};
struct transfer_call {
  static constexpr std::string_view xml_name = "TransferCall";
  connection_ref held_call;
  connection_ref active_call;
  friend bool operator==(const transfer_call&, const transfer_call&) = default;
};
struct transfer_call_response {
  static constexpr std::string_view xml_name = "TransferCallResponse";
  std::optional<connection_ref> transferred_call;
  std::vector<connection_list_item> connections;
  friend bool operator==(const transfer_call_response&, const transfer_call_response&) = default;
};
struct conference_call {
  static constexpr std::string_view xml_name = "ConferenceCall";
  connection_ref held_call;
  connection_ref active_call;
  friend bool operator==(const conference_call&, const conference_call&) = default;
};
struct conference_call_response {
  static constexpr std::string_view xml_name = "ConferenceCallResponse";
  std::optional<connection_ref> conference_call;
  std::vector<connection_list_item> connections;
  friend bool operator==(const conference_call_response&, const conference_call_response&) = default;
};
struct deflect_call {
  static constexpr std::string_view xml_name = "DeflectCall";
  connection_ref call_to_be_diverted;
  std::string new_destination;
  friend bool operator==(const deflect_call&, const deflect_call&) = default;
};
struct deflect_call_response {
  static constexpr std::string_view xml_name = "DeflectCallResponse";
  friend bool operator==(const deflect_call_response&, const deflect_call_response&) = default;
};
struct single_step_transfer_call {
  static constexpr std::string_view xml_name = "SingleStepTransferCall";
  connection_ref active_call;
  std::string transferred_to;
  std::optional<std::string> correlator_data;
  friend bool operator==(const single_step_transfer_call&, const single_step_transfer_call&) = default;
};
struct single_step_transfer_call_response {
  static constexpr std::string_view xml_name = "SingleStepTransferCallResponse";
  std::optional<connection_ref> transferred_call;
  std::vector<connection_list_item> connections;
  friend bool operator==(const single_step_transfer_call_response&,
                         const single_step_transfer_call_response&) = default;
};

// ---- agent state ----------------------------------------------------------------------------
struct set_agent_state {
  static constexpr std::string_view xml_name = "SetAgentState";
  std::string device;
  std::string requested_agent_state;  // loggedOn, loggedOff, notReady, ready, workingAfterCall
  std::optional<std::string> agent_id;
  std::optional<std::string> password;
  std::optional<std::string> group;
  friend bool operator==(const set_agent_state&, const set_agent_state&) = default;
};
struct set_agent_state_response {
  static constexpr std::string_view xml_name = "SetAgentStateResponse";
  std::optional<std::string> pending_agent_state;
  friend bool operator==(const set_agent_state_response&, const set_agent_state_response&) = default;
};
struct get_agent_state {
  static constexpr std::string_view xml_name = "GetAgentState";
  std::string device;
  std::optional<std::string> acd_group;
  friend bool operator==(const get_agent_state&, const get_agent_state&) = default;
};
struct agent_info_item {
  std::optional<std::string> acd_group;
  std::string agent_state;  // agentNotReady, agentNull, agentReady, agentBusy, agentWorkingAfterCall
  std::optional<std::string> pending_agent_state;
  friend bool operator==(const agent_info_item&, const agent_info_item&) = default;
};
struct agent_state_entry {
  std::optional<std::string> agent_id;
  bool logged_on_state = false;
  std::vector<agent_info_item> agent_info;
  friend bool operator==(const agent_state_entry&, const agent_state_entry&) = default;
};
struct get_agent_state_response {
  static constexpr std::string_view xml_name = "GetAgentStateResponse";
  std::vector<agent_state_entry> agent_state_list;
  friend bool operator==(const get_agent_state_response&, const get_agent_state_response&) = default;
};

// ---- negative response to any request -------------------------------------------------------
// <CSTAErrorCode><operation>invalidCallID</operation></CSTAErrorCode>
struct csta_error_code {
  static constexpr std::string_view xml_name = "CSTAErrorCode";
  choice_value error;  // operation | stateIncompatibility | systemResourceAvailibility | ...
  friend bool operator==(const csta_error_code&, const csta_error_code&) = default;
};

// ---- call events (invoke id 9999; first child monitorCrossRefID) ----------------------------
struct service_initiated_event {
  static constexpr std::string_view xml_name = "ServiceInitiatedEvent";
  std::string monitor_cross_ref_id;
  connection_ref initiated_connection;
  device_ref initiating_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const service_initiated_event&, const service_initiated_event&) = default;
};
struct originated_event {
  static constexpr std::string_view xml_name = "OriginatedEvent";
  std::string monitor_cross_ref_id;
  connection_ref originated_connection;
  device_ref calling_device;
  device_ref called_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const originated_event&, const originated_event&) = default;
};
struct delivered_event {
  static constexpr std::string_view xml_name = "DeliveredEvent";
  std::string monitor_cross_ref_id;
  connection_ref connection;
  device_ref alerting_device;
  device_ref calling_device;
  device_ref called_device;
  std::optional<device_ref> last_redirection_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const delivered_event&, const delivered_event&) = default;
};
struct established_event {
  static constexpr std::string_view xml_name = "EstablishedEvent";
  std::string monitor_cross_ref_id;
  connection_ref established_connection;
  device_ref answering_device;
  device_ref calling_device;
  device_ref called_device;
  std::optional<device_ref> last_redirection_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const established_event&, const established_event&) = default;
};
struct connection_cleared_event {
  static constexpr std::string_view xml_name = "ConnectionClearedEvent";
  std::string monitor_cross_ref_id;
  connection_ref dropped_connection;
  device_ref releasing_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const connection_cleared_event&, const connection_cleared_event&) = default;
};
struct call_cleared_event {
  static constexpr std::string_view xml_name = "CallClearedEvent";
  std::string monitor_cross_ref_id;
  connection_ref cleared_call;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const call_cleared_event&, const call_cleared_event&) = default;
};
struct held_event {
  static constexpr std::string_view xml_name = "HeldEvent";
  std::string monitor_cross_ref_id;
  connection_ref held_connection;
  device_ref holding_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const held_event&, const held_event&) = default;
};
struct retrieved_event {
  static constexpr std::string_view xml_name = "RetrievedEvent";
  std::string monitor_cross_ref_id;
  connection_ref retrieved_connection;
  device_ref retrieving_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const retrieved_event&, const retrieved_event&) = default;
};
// The standard's spelling: TransferedEvent.
struct transfered_event {
  static constexpr std::string_view xml_name = "TransferedEvent";
  std::string monitor_cross_ref_id;
  connection_ref primary_old_call;
  std::optional<connection_ref> secondary_old_call;
  device_ref transferring_device;
  device_ref transferred_to_device;
  std::vector<connection_list_item> transferred_connections;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const transfered_event&, const transfered_event&) = default;
};
struct conferenced_event {
  static constexpr std::string_view xml_name = "ConferencedEvent";
  std::string monitor_cross_ref_id;
  connection_ref primary_old_call;
  std::optional<connection_ref> secondary_old_call;
  device_ref conferencing_device;
  device_ref added_party;
  std::vector<connection_list_item> conference_connections;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const conferenced_event&, const conferenced_event&) = default;
};
struct diverted_event {
  static constexpr std::string_view xml_name = "DivertedEvent";
  std::string monitor_cross_ref_id;
  connection_ref connection;
  device_ref diverting_device;
  device_ref new_destination;
  std::optional<device_ref> calling_device;
  std::optional<device_ref> called_device;
  std::optional<device_ref> last_redirection_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const diverted_event&, const diverted_event&) = default;
};
struct queued_event {
  static constexpr std::string_view xml_name = "QueuedEvent";
  std::string monitor_cross_ref_id;
  connection_ref queued_connection;
  device_ref queue;
  device_ref calling_device;
  device_ref called_device;
  std::optional<device_ref> last_redirection_device;
  std::optional<std::int64_t> number_queued;
  std::optional<std::int64_t> calls_in_front;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const queued_event&, const queued_event&) = default;
};
struct failed_event {
  static constexpr std::string_view xml_name = "FailedEvent";
  std::string monitor_cross_ref_id;
  connection_ref failed_connection;
  device_ref failing_device;
  device_ref calling_device;
  device_ref called_device;
  std::optional<device_ref> last_redirection_device;
  std::optional<local_connection_state> local_connection_info;
  std::optional<std::string> correlator_data;
  std::optional<std::string> cause;
  friend bool operator==(const failed_event&, const failed_event&) = default;
};

// ---- agent events: same fields, one type per element ----------------------------------------
struct agent_event_fields {
  std::string monitor_cross_ref_id;
  device_ref agent_device;
  std::optional<std::string> agent_id;
  std::optional<std::string> acd_group;
  std::optional<std::string> pending_agent_state;  // only WorkingAfterCall and Busy carry it
  std::optional<std::string> cause;
  friend bool operator==(const agent_event_fields&, const agent_event_fields&) = default;
};
struct agent_logged_on_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentLoggedOnEvent";
};
struct agent_logged_off_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentLoggedOffEvent";
};
struct agent_ready_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentReadyEvent";
};
struct agent_not_ready_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentNotReadyEvent";
};
struct agent_working_after_call_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentWorkingAfterCallEvent";
};
struct agent_busy_event : agent_event_fields {
  static constexpr std::string_view xml_name = "AgentBusyEvent";
};

// A well-formed message this codec does not model; reported, never dropped silently.
struct unknown_message {
  std::string name;  // local name of the root element
  friend bool operator==(const unknown_message&, const unknown_message&) = default;
};

using message = std::variant<
    system_status, system_status_response, system_register, system_register_response, request_system_status,
    request_system_status_response, start_application_session, start_application_session_pos_response,
    start_application_session_neg_response, reset_application_session_timer,
    reset_application_session_timer_pos_response, reset_application_session_timer_neg_response,
    stop_application_session, stop_application_session_pos_response, stop_application_session_neg_response,
    application_session_terminated, monitor_start, monitor_start_response, monitor_stop, monitor_stop_response,
    snapshot_device, snapshot_device_response, route_register, route_register_response, route_register_cancel,
    route_register_cancel_response, route_register_abort, route_request, re_route, route_select, route_used, route_end,
    make_call, make_call_response, answer_call, answer_call_response, clear_connection, clear_connection_response,
    hold_call, hold_call_response, retrieve_call, retrieve_call_response, consultation_call, consultation_call_response,
    transfer_call, transfer_call_response, conference_call, conference_call_response, deflect_call,
    deflect_call_response, single_step_transfer_call, single_step_transfer_call_response, set_agent_state,
    set_agent_state_response, get_agent_state, get_agent_state_response, csta_error_code, service_initiated_event,
    originated_event, delivered_event, established_event, connection_cleared_event, call_cleared_event, held_event,
    retrieved_event, transfered_event, conferenced_event, diverted_event, queued_event, failed_event,
    agent_logged_on_event, agent_logged_off_event, agent_ready_event, agent_not_ready_event,
    agent_working_after_call_event, agent_busy_event, unknown_message>;

// The XML element name of the message held ("MakeCall"); for unknown_message, its name.
std::string_view message_name(const message& m) noexcept;

// True for the ECMA-354 application-session messages (their own XML namespace).
bool is_application_session(const message& m) noexcept;

}  // namespace switchboard::csta
