// One fully populated value of every CSTA message type, shared by the round-trip and link tests.
#pragma once

#include "switchboard/csta/messages.hpp"

#include <vector>

namespace switchboard::csta::testing {

inline connection_ref conn(std::string call, std::string device) { return {std::move(call), std::move(device)}; }

inline agent_event_fields agent_fields(bool with_pending) {
  agent_event_fields f;
  f.monitor_cross_ref_id = "77";
  f.agent_device = device_ref::known("4711");
  f.agent_id = "A100";
  f.acd_group = "800";
  if (with_pending) f.pending_agent_state = "ready";
  f.cause = "normal";
  return f;
}

template <class T>
T agent_event(bool with_pending = false) {
  T e;
  static_cast<agent_event_fields&>(e) = agent_fields(with_pending);
  return e;
}

inline std::vector<message> every_message() {
  const device_ref caller = device_ref::known("0301234567");
  const device_ref hidden{{}, device_presence::restricted};
  const device_ref unknown{{}, device_presence::not_known};
  const device_ref not_required{{}, device_presence::not_required};
  connection_list_item item{conn("C2", "4712"), conn("C1", "4712"), device_ref::known("4712")};
  connection_list_item hidden_item{conn("C2", "4713"), std::nullopt, hidden};
  return {
      system_status{"27", "normal"},
      system_status_response{},
      system_register{true, false},
      system_register_response{"27"},
      request_system_status{"27"},
      request_system_status_response{"normal"},
      start_application_session{"switchboard",
                                {"http://www.ecma-international.org/standards/ecma-323/csta/ed3",
                                 "http://www.ecma-international.org/standards/ecma-323/csta/ed6"},
                                180},
      start_application_session_pos_response{"009968951",
                                             "http://www.ecma-international.org/standards/ecma-323/csta/ed3", 180},
      start_application_session_neg_response{{"definedError", "invalidApplicationInfo"}},
      reset_application_session_timer{"009968951", 180},
      reset_application_session_timer_pos_response{180},
      reset_application_session_timer_neg_response{{"definedError", "invalidSessionID"}},
      stop_application_session{"009968951", {"definedEndReason", "normal"}},
      stop_application_session_pos_response{},
      stop_application_session_neg_response{{"applError", "busy"}},
      application_session_terminated{"009968951", choice_value{"definedTermReason", "invalidSessionID"}},
      monitor_start{"4711", "device"},
      monitor_start_response{"1169730059"},
      monitor_stop{"1169730059"},
      monitor_stop_response{},
      snapshot_device{"4711"},
      snapshot_device_response{
          std::nullopt,
          {snapshot_item{conn("C1", "4711"), {local_connection_state::connected}},
           snapshot_item{conn("C2", "4711"), {local_connection_state::hold, local_connection_state::alerting}}}},
      route_register{"800"},
      route_register_response{"12"},
      route_register_cancel{"12"},
      route_register_cancel_response{},
      route_register_abort{"12"},
      route_request{"5001", "12", device_ref::known("800"), caller, device_ref::known("800"), conn("C1", "800"),
                    "normal", false, 4000, "1234#"},
      re_route{"5001", "12", 2000, "1234#"},
      route_select{"5001", "12", "4711", {"4712", "4713"}, choice_value{"retryCount", "2"}, true, "1234#"},
      route_used{"5001", "12", device_ref::known("4711"), caller, false, "1234#"},
      route_end{"5001", "12", {"operation", "invalidRouteingCrossRefID"}, "1234#"},
      make_call{"4711", "0049301234567", "doNotPrompt", "ivr=1"},
      make_call_response{conn("C1", "4711")},
      answer_call{conn("C1", "4711")},
      answer_call_response{},
      clear_connection{conn("C1", "4711")},
      clear_connection_response{},
      hold_call{conn("C1", "4711")},
      hold_call_response{},
      retrieve_call{conn("C1", "4711")},
      retrieve_call_response{},
      consultation_call{conn("C1", "4711"), "4712", "x"},
      consultation_call_response{conn("C2", "4711")},
      transfer_call{conn("C1", "4711"), conn("C2", "4711")},
      transfer_call_response{conn("C2", "4712"), {item}},
      conference_call{conn("C1", "4711"), conn("C2", "4711")},
      conference_call_response{conn("C1", "4711"), {item, hidden_item}},
      deflect_call{conn("C1", "4711"), "4712"},
      deflect_call_response{},
      single_step_transfer_call{conn("C1", "4711"), "4712", "abc"},
      single_step_transfer_call_response{conn("C3", "4712"), {}},
      set_agent_state{"4711", "loggedOn", "A100", "secret", "800"},
      set_agent_state_response{"agentReady"},
      get_agent_state{"4711", "800"},
      get_agent_state_response{{agent_state_entry{"A100", true, {agent_info_item{"800", "agentReady", "agentNull"}}},
                                agent_state_entry{std::nullopt, false, {}}}},
      csta_error_code{{"operation", "invalidCallID"}},
      service_initiated_event{"77", conn("C1", "4711"), device_ref::known("4711"), local_connection_state::initiated,
                              std::nullopt, "makeCall"},
      originated_event{"77", conn("C1", "4711"), device_ref::known("4711"), caller, local_connection_state::connected,
                       std::nullopt, "newCall"},
      delivered_event{"77", conn("C1", "4711"), device_ref::known("4711"), caller, device_ref::known("800"),
                      not_required, local_connection_state::alerting, "12#34", "newCall"},
      established_event{"77", conn("C1", "4711"), device_ref::known("4711"), hidden, unknown, std::nullopt,
                        local_connection_state::connected, std::nullopt, "normal"},
      connection_cleared_event{"77", conn("C1", "0301234567"), caller, local_connection_state::null, std::nullopt,
                               "normalClearing"},
      call_cleared_event{"77", conn("C1", ""), std::nullopt, "normalClearing"},
      held_event{"77", conn("C1", "4711"), device_ref::known("4711"), local_connection_state::hold, std::nullopt,
                 "normal"},
      retrieved_event{"77", conn("C1", "4711"), device_ref::known("4711"), local_connection_state::connected,
                      std::nullopt, "normal"},
      transfered_event{"77",
                       conn("C1", "4711"),
                       conn("C2", "4711"),
                       device_ref::known("4711"),
                       device_ref::known("4712"),
                       {item, hidden_item},
                       local_connection_state::null,
                       std::nullopt,
                       "transfer"},
      conferenced_event{"77",
                        conn("C1", "4711"),
                        std::nullopt,
                        device_ref::known("4711"),
                        device_ref::known("4712"),
                        {item},
                        local_connection_state::connected,
                        std::nullopt,
                        "conference"},
      diverted_event{"77", conn("C1", "4711"), device_ref::known("4711"), device_ref::known("4712"), caller,
                     std::nullopt, std::nullopt, local_connection_state::null, std::nullopt, "redirected"},
      queued_event{"77", conn("C1", "800"), device_ref::known("800"), caller, device_ref::known("800"), not_required, 3,
                   2, local_connection_state::queued, "ivr", "enteringDistribution"},
      failed_event{"77", conn("C1", "0049301234567"), device_ref::known("0049301234567"), device_ref::known("4711"),
                   device_ref::known("0049301234567"), not_required, local_connection_state::fail, std::nullopt,
                   "busy"},
      agent_event<agent_logged_on_event>(),
      agent_event<agent_logged_off_event>(),
      agent_event<agent_ready_event>(),
      agent_event<agent_not_ready_event>(),
      agent_event<agent_working_after_call_event>(true),
      agent_event<agent_busy_event>(true),
  };
}

}  // namespace switchboard::csta::testing
