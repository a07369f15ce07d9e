// The simulator's call model step by step: each request and timer with the events and routing
// messages a PBX sends, in order, so the link tests can trust what pbxsim tells them.
#include "switchboard/pbxsim/model.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchboard::pbxsim {
namespace {

using namespace std::chrono_literals;
using lcs = csta::local_connection_state;

model_config config(std::optional<std::chrono::milliseconds> auto_answer = std::nullopt) {
  return model_config{.operators = {"4711", "4712", "4713", "4799"},
                      .route_points = {"800", "801"},
                      .default_device = "4799",
                      .route_timeout = 3000ms,
                      .auto_answer_delay = auto_answer,
                      .external_answer_delay = 2000ms,
                      .external_talk_time = 10000ms};
}

inbound_call caller(std::string dialled = "800", std::optional<std::chrono::milliseconds> patience = std::nullopt) {
  return inbound_call{.caller = "+49305550001",
                      .dialled = std::move(dialled),
                      .correlator = "1234",
                      .talk_time = 60000ms,
                      .patience = patience};
}

// "target:MessageName" per output, the order the simulator sends them in.
std::vector<std::string> names(const std::vector<output>& outs) {
  std::vector<std::string> v;
  for (const auto& o : outs) v.push_back(o.target + ":" + std::string(csta::message_name(o.message)));
  return v;
}

template <class T>
const T& first(const std::vector<output>& outs) {
  for (const auto& o : outs) {
    if (const auto* m = std::get_if<T>(&o.message)) return *m;
  }
  throw std::runtime_error("no such message");
}

template <class T>
T response(const std::optional<csta::message>& m) {
  if (!m) throw std::runtime_error("no response");
  if (const auto* e = std::get_if<csta::csta_error_code>(&*m)) {
    throw std::runtime_error("CSTAErrorCode " + e->error.choice + " " + e->error.value);
  }
  return std::get<T>(*m);
}

csta::choice_value error_of(const std::optional<csta::message>& m) {
  if (!m) return {"none", {}};
  const auto* e = std::get_if<csta::csta_error_code>(&*m);
  return e ? e->error : csta::choice_value{"positive", {}};
}

struct model_test : ::testing::Test {
  call_model model{config()};

  std::string reg_;
  // One registration for every route point, made on first use.
  std::string register_all() {
    if (reg_.empty()) {
      reg_ = response<csta::route_register_response>(model.handle(csta::route_register{}, 0ms)).route_register_req_id;
    }
    return reg_;
  }
  void monitor(std::initializer_list<const char*> devices) {
    for (const auto* d : devices) model.add_monitor(d);
  }
  // Offers a call to 800 and routes it to `to`; returns the call id (unchanged by routing).
  std::string routed_call(const std::string& to, std::chrono::milliseconds now = 0ms) {
    const auto reg = register_all();
    const auto id = model.offer_call(caller(), now).value();
    const auto request = first<csta::route_request>(model.take_outputs());
    EXPECT_FALSE(model.handle(
        csta::route_select{
            .cross_ref_identifier = request.cross_ref_identifier, .route_register_req_id = reg, .route_selected = to},
        now));
    model.take_outputs();
    return id;
  }
  // 4711 talks to the caller, consults 4712 and 4712 answers: {held call, consultation call}.
  std::pair<std::string, std::string> consulted() {
    const auto held = answered_call("4711");
    monitor({"4711", "4712"});
    const auto consult = response<csta::consultation_call_response>(
        model.handle(csta::consultation_call{.existing_call = {held, "4711"}, .consulted_device = "4712"}, 0ms));
    const auto names_seen = names(model.take_outputs());
    response<csta::answer_call_response>(
        model.handle(csta::answer_call{{consult.initiated_call.call_id, "4712"}}, 0ms));
    model.take_outputs();
    consult_events_ = names_seen;
    return {held, consult.initiated_call.call_id};
  }
  std::vector<std::string> consult_events_;

  std::string answered_call(const std::string& to) {
    const auto id = routed_call(to);
    response<csta::answer_call_response>(model.handle(csta::answer_call{{id, to}}, 0ms));
    model.take_outputs();
    return id;
  }
};

TEST_F(model_test, route_request_select_ring_answer_clear_in_order) {
  monitor({"800", "4711"});
  const auto reg = register_all();
  const auto id = model.offer_call(caller(), 0ms).value();
  auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"800:DeliveredEvent", reg + ":RouteRequest"}));
  const auto request = first<csta::route_request>(outs);
  EXPECT_EQ(request.route_register_req_id, reg);
  EXPECT_EQ(request.calling_device.id, "+49305550001");
  EXPECT_EQ(request.current_route.id, "800");
  EXPECT_EQ(request.routed_call, (csta::connection_ref{id, "800"}));
  EXPECT_EQ(request.correlator_data, "1234");
  EXPECT_EQ(request.reply_timeout, 3000);

  EXPECT_FALSE(model.handle(csta::route_select{.cross_ref_identifier = request.cross_ref_identifier,
                                               .route_register_req_id = reg,
                                               .route_selected = "4711",
                                               .route_used_req = true},
                            100ms));
  outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{reg + ":RouteUsed", reg + ":RouteEnd", "800:DivertedEvent",
                                                   "4711:DivertedEvent", "4711:DeliveredEvent"}));
  const auto delivered = first<csta::delivered_event>(outs);
  EXPECT_EQ(delivered.connection, (csta::connection_ref{id, "4711"}));
  EXPECT_EQ(delivered.calling_device.id, "+49305550001");
  EXPECT_EQ(delivered.local_connection_info, lcs::alerting);
  EXPECT_EQ(delivered.correlator_data, "1234");
  EXPECT_EQ(model.state_of(id, "4711"), lcs::alerting);

  response<csta::answer_call_response>(model.handle(csta::answer_call{{id, "4711"}}, 2000ms));
  outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:EstablishedEvent"}));
  EXPECT_EQ(first<csta::established_event>(outs).answering_device.id, "4711");

  model.advance(61999ms);
  EXPECT_TRUE(model.take_outputs().empty());
  model.advance(62000ms);  // the caller hangs up after the 60 s talk time
  outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:ConnectionClearedEvent", "4711:ConnectionClearedEvent",
                                                   "4711:CallClearedEvent"}));
  EXPECT_EQ(first<csta::connection_cleared_event>(outs).releasing_device.id, "+49305550001");
  EXPECT_TRUE(model.calls_at("4711").empty());
  const auto& s = model.stats();
  EXPECT_EQ(s.offered, 1u);
  EXPECT_EQ(s.route_requests, 1u);
  EXPECT_EQ(s.routed_by_cti, 1u);
  EXPECT_EQ(s.answered, 1u);
  EXPECT_EQ(s.completed, 1u);
  EXPECT_EQ(s.active_calls, 0u);
}

TEST_F(model_test, no_answer_inside_the_route_timeout_goes_to_the_default_device) {
  monitor({"800", "4799"});
  const auto reg = register_all();
  const auto id = model.offer_call(caller(), 1000ms).value();
  const auto request = first<csta::route_request>(model.take_outputs());
  model.advance(3999ms);
  EXPECT_TRUE(model.take_outputs().empty());
  model.advance(4000ms);
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{reg + ":RouteEnd", "800:DivertedEvent", "4799:DivertedEvent",
                                                   "4799:DeliveredEvent"}));
  EXPECT_EQ(first<csta::route_end>(outs).error_value, (csta::choice_value{"operation", "routeingTimerExpired"}));
  EXPECT_EQ(model.state_of(id, "4799"), lcs::alerting);
  EXPECT_EQ(model.stats().default_routed, 1u);
  EXPECT_EQ(model.stats().route_timeouts, 1u);
  // A late RouteSelect finds no dialog.
  EXPECT_EQ(error_of(model.handle(csta::route_select{.cross_ref_identifier = request.cross_ref_identifier,
                                                     .route_register_req_id = reg,
                                                     .route_selected = "4711"},
                                  4100ms)),
            (csta::choice_value{"operation", "invalidRouteingCrossRefID"}));
}

TEST_F(model_test, without_a_registered_link_calls_go_to_the_default_device_at_once) {
  monitor({"4799"});
  const auto id = model.offer_call(caller(), 0ms).value();
  EXPECT_EQ(names(model.take_outputs()), (std::vector<std::string>{"4799:DivertedEvent", "4799:DeliveredEvent"}));
  EXPECT_EQ(model.state_of(id, "4799"), lcs::alerting);
  EXPECT_EQ(model.stats().route_requests, 0u);
  EXPECT_EQ(model.stats().default_routed, 1u);
}

TEST_F(model_test, a_lost_registration_sends_its_open_dialogs_to_the_default_device) {
  const auto reg = register_all();
  const auto id = model.offer_call(caller(), 0ms).value();
  model.take_outputs();
  model.cancel_registration(reg, 500ms);
  EXPECT_EQ(model.state_of(id, "4799"), lcs::alerting);
  EXPECT_FALSE(model.state_of(id, "800"));
  model.take_outputs();
  model.advance(10000ms);  // the route timer died with the dialog
  EXPECT_EQ(model.stats().route_timeouts, 0u);
  // The next call finds no registration.
  model.offer_call(caller("801"), 11000ms);
  EXPECT_EQ(model.stats().route_requests, 1u);
  EXPECT_EQ(model.stats().default_routed, 2u);
}

TEST(model, the_call_log_tells_each_inbound_calls_routing_fate) {
  auto with_log = config();
  with_log.keep_call_log = true;
  call_model model(with_log);
  const auto unrouted = model.offer_call(caller(), 0ms).value();  // no link registered yet
  const auto reg = response<csta::route_register_response>(model.handle(csta::route_register{}, 0ms));
  model.take_outputs();
  const auto routed = model.offer_call(caller(), 10ms).value();
  const auto request = first<csta::route_request>(model.take_outputs());
  EXPECT_FALSE(model.handle(csta::route_select{.cross_ref_identifier = request.cross_ref_identifier,
                                               .route_register_req_id = reg.route_register_req_id,
                                               .route_selected = "4711"},
                            20ms));
  response<csta::answer_call_response>(model.handle(csta::answer_call{{routed, "4711"}}, 30ms));
  response<csta::clear_connection_response>(model.handle(csta::clear_connection{{routed, "4711"}}, 40ms));
  const auto log = model.call_log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].call, unrouted);
  EXPECT_FALSE(log[0].route_requested);
  EXPECT_TRUE(log[0].default_routed);
  EXPECT_FALSE(log[0].ended);
  EXPECT_EQ(log[1].call, routed);
  EXPECT_TRUE(log[1].route_requested);
  EXPECT_TRUE(log[1].routed_by_cti);
  EXPECT_FALSE(log[1].default_routed);
  EXPECT_TRUE(log[1].answered);
  EXPECT_TRUE(log[1].ended);
  EXPECT_TRUE(call_model(config()).call_log().empty());  // off unless asked for
}

TEST_F(model_test, route_end_from_the_application_uses_the_default_treatment) {
  const auto reg = register_all();
  const auto id = model.offer_call(caller(), 0ms).value();
  const auto request = first<csta::route_request>(model.take_outputs());
  EXPECT_FALSE(model.handle(
      csta::route_end{.cross_ref_identifier = request.cross_ref_identifier, .route_register_req_id = reg}, 10ms));
  const auto outs = model.take_outputs();
  for (const auto& o : outs) EXPECT_NE(o.what, output::kind::routing) << "no RouteEnd echoed back";
  EXPECT_EQ(model.state_of(id, "4799"), lcs::alerting);
}

TEST_F(model_test, a_busy_default_device_queues_calls_and_delivers_them_when_free) {
  model.add_monitor("4799");
  const auto first_call = model.offer_call(caller(), 0ms).value();
  response<csta::answer_call_response>(model.handle(csta::answer_call{{first_call, "4799"}}, 10ms));
  model.take_outputs();
  const auto second_call = model.offer_call(caller(), 20ms).value();
  auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4799:DivertedEvent", "4799:QueuedEvent"}));
  EXPECT_EQ(first<csta::queued_event>(outs).queue.id, "4799");
  EXPECT_EQ(first<csta::queued_event>(outs).number_queued, 1);
  EXPECT_EQ(model.state_of(second_call, "4799"), lcs::queued);
  const auto snap = response<csta::snapshot_device_response>(model.handle(csta::snapshot_device{"4799"}, 25ms));
  ASSERT_EQ(snap.items.size(), 2u);
  EXPECT_EQ(snap.items[1].connection, (csta::connection_ref{second_call, "4799"}));
  EXPECT_EQ(snap.items[1].states, (std::vector<lcs>{lcs::queued}));
  EXPECT_FALSE(model.is_busy("4711"));
  EXPECT_TRUE(model.is_busy("4799"));

  response<csta::clear_connection_response>(model.handle(csta::clear_connection{{first_call, "4799"}}, 30ms));
  outs = model.take_outputs();
  EXPECT_EQ(names(outs).back(), "4799:DeliveredEvent");
  EXPECT_EQ(first<csta::delivered_event>(outs).connection, (csta::connection_ref{second_call, "4799"}));
  EXPECT_EQ(model.state_of(second_call, "4799"), lcs::alerting);
}

TEST(model, operators_answer_by_themselves_after_the_configured_delay) {
  call_model model(config(1500ms));
  model.add_monitor("4799");
  const auto id = model.offer_call(caller(), 0ms).value();
  model.take_outputs();
  model.advance(1499ms);
  EXPECT_EQ(model.state_of(id, "4799"), lcs::alerting);
  model.advance(1500ms);
  EXPECT_EQ(names(model.take_outputs()), (std::vector<std::string>{"4799:EstablishedEvent"}));
  EXPECT_EQ(model.state_of(id, "4799"), lcs::connected);
  EXPECT_EQ(model.stats().answered, 1u);
}

TEST_F(model_test, a_caller_who_runs_out_of_patience_abandons_and_ends_the_dialog) {
  model.add_monitor("800");
  const auto reg = register_all();
  model.offer_call(caller("800", 2000ms), 0ms);
  model.take_outputs();
  model.advance(2000ms);
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{reg + ":RouteEnd", "800:ConnectionClearedEvent",
                                                   "800:ConnectionClearedEvent", "800:CallClearedEvent"}));
  EXPECT_EQ(model.stats().abandoned, 1u);
  EXPECT_EQ(model.stats().active_calls, 0u);
}

TEST_F(model_test, patience_ends_once_the_call_is_answered) {
  const auto id = model.offer_call(caller("4711", 2000ms), 0ms).value();
  response<csta::answer_call_response>(model.handle(csta::answer_call{{id, "4711"}}, 1000ms));
  model.advance(5000ms);
  EXPECT_EQ(model.state_of(id, "4711"), lcs::connected);
  EXPECT_EQ(model.stats().abandoned, 0u);
}

TEST_F(model_test, make_call_between_extensions_reports_to_both_monitors) {
  monitor({"4711", "4712"});
  const auto made = response<csta::make_call_response>(
      model.handle(csta::make_call{.calling_device = "4711", .called_directory_number = "4712"}, 0ms));
  EXPECT_EQ(made.calling_device.device_id, "4711");
  auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:ServiceInitiatedEvent", "4711:OriginatedEvent",
                                                   "4711:DeliveredEvent", "4712:DeliveredEvent"}));
  EXPECT_EQ(first<csta::service_initiated_event>(outs).cause, "makeCall");
  EXPECT_EQ(first<csta::originated_event>(outs).called_device.id, "4712");
  response<csta::answer_call_response>(model.handle(csta::answer_call{{made.calling_device.call_id, "4712"}}, 10ms));
  EXPECT_EQ(names(model.take_outputs()), (std::vector<std::string>{"4711:EstablishedEvent", "4712:EstablishedEvent"}));
  response<csta::clear_connection_response>(
      model.handle(csta::clear_connection{{made.calling_device.call_id, "4711"}}, 20ms));
  EXPECT_EQ(names(model.take_outputs()),
            (std::vector<std::string>{"4711:ConnectionClearedEvent", "4712:ConnectionClearedEvent",
                                      "4712:ConnectionClearedEvent", "4712:CallClearedEvent"}));
}

TEST_F(model_test, make_call_to_a_busy_phone_fails_with_cause_busy) {
  answered_call("4712");
  model.add_monitor("4711");
  const auto made = response<csta::make_call_response>(
      model.handle(csta::make_call{.calling_device = "4711", .called_directory_number = "4712"}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs).back(), "4711:FailedEvent");
  EXPECT_EQ(first<csta::failed_event>(outs).cause, "busy");
  EXPECT_EQ(first<csta::failed_event>(outs).failing_device.id, "4712");
  EXPECT_EQ(model.state_of(made.calling_device.call_id, "4711"), lcs::fail);
}

TEST_F(model_test, make_call_to_an_outside_number_is_answered_and_hung_up_by_the_network) {
  model.add_monitor("4711");
  const auto made = response<csta::make_call_response>(
      model.handle(csta::make_call{.calling_device = "4711", .called_directory_number = "+4930123"}, 0ms));
  const auto& id = made.calling_device.call_id;
  model.take_outputs();
  EXPECT_EQ(model.state_of(id, "+4930123"), lcs::alerting);
  model.advance(2000ms);
  EXPECT_EQ(names(model.take_outputs()), (std::vector<std::string>{"4711:EstablishedEvent"}));
  model.advance(12000ms);
  EXPECT_EQ(names(model.take_outputs()),
            (std::vector<std::string>{"4711:ConnectionClearedEvent", "4711:ConnectionClearedEvent",
                                      "4711:CallClearedEvent"}));
}

TEST_F(model_test, hold_and_retrieve) {
  const auto id = answered_call("4711");
  model.add_monitor("4711");
  response<csta::hold_call_response>(model.handle(csta::hold_call{{id, "4711"}}, 0ms));
  auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:HeldEvent"}));
  EXPECT_EQ(first<csta::held_event>(outs).held_connection, (csta::connection_ref{id, "4711"}));
  EXPECT_EQ(model.state_of(id, "4711"), lcs::hold);
  EXPECT_EQ(error_of(model.handle(csta::hold_call{{id, "4711"}}, 0ms)),
            (csta::choice_value{"stateIncompatibility", "noActiveCall"}));
  response<csta::retrieve_call_response>(model.handle(csta::retrieve_call{{id, "4711"}}, 0ms));
  EXPECT_EQ(names(model.take_outputs()), (std::vector<std::string>{"4711:RetrievedEvent"}));
  EXPECT_EQ(model.state_of(id, "4711"), lcs::connected);
  EXPECT_EQ(error_of(model.handle(csta::retrieve_call{{id, "4711"}}, 0ms)),
            (csta::choice_value{"stateIncompatibility", "noHeldCall"}));
}

TEST_F(model_test, consult_then_transfer_moves_the_caller_to_a_new_call) {
  const auto [first_call, second_call] = consulted();
  EXPECT_NE(second_call, first_call);
  EXPECT_EQ(consult_events_,
            (std::vector<std::string>{"4711:HeldEvent", "4711:ServiceInitiatedEvent", "4711:OriginatedEvent",
                                      "4711:DeliveredEvent", "4712:DeliveredEvent"}));
  EXPECT_EQ(model.state_of(first_call, "4711"), lcs::hold);

  const auto transferred = response<csta::transfer_call_response>(
      model.handle(csta::transfer_call{.held_call = {first_call, "4711"}, .active_call = {second_call, "4711"}}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:TransferedEvent", "4712:TransferedEvent"}));
  const auto event = first<csta::transfered_event>(outs);
  EXPECT_EQ(event.primary_old_call, (csta::connection_ref{first_call, "4711"}));
  EXPECT_EQ(event.secondary_old_call, (csta::connection_ref{second_call, "4711"}));
  EXPECT_EQ(event.transferring_device.id, "4711");
  EXPECT_EQ(event.transferred_to_device.id, "4712");
  EXPECT_EQ(event.cause, "transfer");
  const auto new_call = transferred.transferred_call->call_id;
  EXPECT_NE(new_call, first_call);
  EXPECT_NE(new_call, second_call);
  ASSERT_EQ(event.transferred_connections.size(), 2u);
  EXPECT_EQ(event.transferred_connections[0].old_connection, (csta::connection_ref{first_call, "+49305550001"}));
  EXPECT_EQ(event.transferred_connections[0].new_connection, (csta::connection_ref{new_call, "+49305550001"}));
  EXPECT_EQ(event.transferred_connections[1].old_connection, (csta::connection_ref{second_call, "4712"}));
  EXPECT_EQ(event.transferred_connections[1].new_connection, (csta::connection_ref{new_call, "4712"}));
  EXPECT_TRUE(model.calls_at("4711").empty());
  EXPECT_EQ(model.calls_at("4712"), (std::vector<std::string>{new_call}));
  EXPECT_EQ(model.state_of(new_call, "4712"), lcs::connected);
  EXPECT_EQ(model.stats().active_calls, 1u);
  // The caller still hangs up after his talk time, now on the new call.
  model.advance(60000ms);
  EXPECT_EQ(model.stats().active_calls, 0u);
}

TEST_F(model_test, conference_keeps_the_conferencing_device_in_the_new_call) {
  const auto [first_call, second_call] = consulted();
  const auto conferenced = response<csta::conference_call_response>(model.handle(
      csta::conference_call{.held_call = {first_call, "4711"}, .active_call = {second_call, "4711"}}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:ConferencedEvent", "4712:ConferencedEvent"}));
  const auto event = first<csta::conferenced_event>(outs);
  EXPECT_EQ(event.added_party.id, "4712");
  EXPECT_EQ(event.conferencing_device.id, "4711");
  ASSERT_EQ(event.conference_connections.size(), 3u);
  const auto new_call = conferenced.conference_call->call_id;
  EXPECT_EQ(event.conference_connections[1].old_connection, (csta::connection_ref{first_call, "4711"}));
  EXPECT_EQ(event.conference_connections[1].new_connection, (csta::connection_ref{new_call, "4711"}));
  for (const auto* d : {"+49305550001", "4711", "4712"}) EXPECT_EQ(model.state_of(new_call, d), lcs::connected) << d;
  // One party leaves: the other two go on talking.
  response<csta::clear_connection_response>(model.handle(csta::clear_connection{{new_call, "4712"}}, 0ms));
  EXPECT_EQ(names(model.take_outputs()),
            (std::vector<std::string>{"4711:ConnectionClearedEvent", "4712:ConnectionClearedEvent"}));
  EXPECT_EQ(model.state_of(new_call, "4711"), lcs::connected);
}

TEST_F(model_test, transfer_needs_a_held_and_an_active_call_at_one_device) {
  const auto id = answered_call("4711");
  EXPECT_EQ(error_of(model.handle(csta::transfer_call{.held_call = {id, "4711"}, .active_call = {id, "4711"}}, 0ms)),
            (csta::choice_value{"operation", "invalidConnectionID"}));
}

TEST_F(model_test, deflect_sends_a_ringing_call_elsewhere) {
  monitor({"4711", "4712"});
  const auto id = routed_call("4711");
  response<csta::deflect_call_response>(
      model.handle(csta::deflect_call{.call_to_be_diverted = {id, "4711"}, .new_destination = "4712"}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:DivertedEvent", "4712:DivertedEvent", "4712:DeliveredEvent"}));
  EXPECT_EQ(first<csta::diverted_event>(outs).new_destination.id, "4712");
  EXPECT_FALSE(model.state_of(id, "4711"));
  EXPECT_EQ(model.state_of(id, "4712"), lcs::alerting);
  // Only an alerting call can be deflected.
  response<csta::answer_call_response>(model.handle(csta::answer_call{{id, "4712"}}, 0ms));
  EXPECT_EQ(
      error_of(model.handle(csta::deflect_call{.call_to_be_diverted = {id, "4712"}, .new_destination = "4713"}, 0ms)),
      (csta::choice_value{"stateIncompatibility", "invalidConnectionState"}));
}

TEST_F(model_test, single_step_transfer_lists_the_new_connections) {
  const auto id = answered_call("4711");
  monitor({"4711", "4712"});
  const auto done = response<csta::single_step_transfer_call_response>(
      model.handle(csta::single_step_transfer_call{.active_call = {id, "4711"}, .transferred_to = "4712"}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs),
            (std::vector<std::string>{"4711:TransferedEvent", "4712:TransferedEvent", "4712:DeliveredEvent"}));
  const auto event = first<csta::transfered_event>(outs);
  EXPECT_EQ(event.cause, "singleStepTransfer");
  EXPECT_EQ(event.transferred_to_device.id, "4712");
  const auto new_call = done.transferred_call->call_id;
  ASSERT_EQ(event.transferred_connections.size(), 2u);
  EXPECT_EQ(event.transferred_connections[0].old_connection, (csta::connection_ref{id, "+49305550001"}));
  EXPECT_EQ(event.transferred_connections[1].new_connection, (csta::connection_ref{new_call, "4712"}));
  EXPECT_FALSE(event.transferred_connections[1].old_connection);
  EXPECT_EQ(model.state_of(new_call, "4712"), lcs::alerting);
  EXPECT_TRUE(model.calls_at("4711").empty());
}

TEST_F(model_test, single_step_transfer_to_a_busy_phone_is_refused) {
  answered_call("4712");
  const auto id = answered_call("4711");
  EXPECT_EQ(error_of(model.handle(
                csta::single_step_transfer_call{.active_call = {id, "4711"}, .transferred_to = "4712"}, 0ms)),
            (csta::choice_value{"systemResourceAvailibility", "resourceBusy"}));
  EXPECT_EQ(model.state_of(id, "4711"), lcs::connected);
}

TEST_F(model_test, agent_states_with_their_events) {
  model.add_monitor("4711");
  EXPECT_EQ(error_of(model.handle(csta::set_agent_state{.device = "4711", .requested_agent_state = "ready"}, 0ms)),
            (csta::choice_value{"stateIncompatibility", "invalidObjectState"}));
  response<csta::set_agent_state_response>(model.handle(
      csta::set_agent_state{.device = "4711", .requested_agent_state = "loggedOn", .agent_id = "A1", .group = "800"},
      0ms));
  response<csta::set_agent_state_response>(
      model.handle(csta::set_agent_state{.device = "4711", .requested_agent_state = "ready"}, 0ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{"4711:AgentLoggedOnEvent", "4711:AgentReadyEvent"}));
  EXPECT_EQ(first<csta::agent_logged_on_event>(outs).agent_id, "A1");
  EXPECT_EQ(model.agent_state_of("4711"), agent_state::ready);
  auto state = response<csta::get_agent_state_response>(model.handle(csta::get_agent_state{.device = "4711"}, 0ms));
  ASSERT_EQ(state.agent_state_list.size(), 1u);
  EXPECT_TRUE(state.agent_state_list[0].logged_on_state);
  EXPECT_EQ(state.agent_state_list[0].agent_info.at(0).agent_state, "agentReady");
  answered_call("4711");
  state = response<csta::get_agent_state_response>(model.handle(csta::get_agent_state{.device = "4711"}, 0ms));
  EXPECT_EQ(state.agent_state_list[0].agent_info.at(0).agent_state, "agentBusy");
  EXPECT_EQ(error_of(model.handle(csta::set_agent_state{.device = "4711", .requested_agent_state = "dancing"}, 0ms)),
            (csta::choice_value{"operation", "valueOutOfRange"}));
  EXPECT_EQ(error_of(model.handle(csta::get_agent_state{.device = "800"}, 0ms)),
            (csta::choice_value{"operation", "requestIncompatibleWithObject"}));
}

TEST_F(model_test, snapshot_lists_the_calls_at_a_device) {
  const auto held = answered_call("4711");
  response<csta::hold_call_response>(model.handle(csta::hold_call{{held, "4711"}}, 0ms));
  const auto made = response<csta::make_call_response>(
      model.handle(csta::make_call{.calling_device = "4711", .called_directory_number = "4712"}, 0ms));
  const auto snap = response<csta::snapshot_device_response>(model.handle(csta::snapshot_device{"4711"}, 0ms));
  ASSERT_EQ(snap.items.size(), 2u);
  EXPECT_EQ(snap.items[0].connection, (csta::connection_ref{held, "4711"}));
  EXPECT_EQ(snap.items[0].states, (std::vector<lcs>{lcs::hold}));
  EXPECT_EQ(snap.items[1].connection, made.calling_device);
  EXPECT_EQ(snap.items[1].states, (std::vector<lcs>{lcs::connected}));
  EXPECT_TRUE(response<csta::snapshot_device_response>(model.handle(csta::snapshot_device{"4713"}, 0ms)).items.empty());
}

TEST_F(model_test, impossible_requests_get_negative_responses) {
  const auto id = answered_call("4711");
  EXPECT_EQ(error_of(model.handle(csta::answer_call{{id, "4711"}}, 0ms)),
            (csta::choice_value{"stateIncompatibility", "noCallToAnswer"}));
  EXPECT_EQ(error_of(model.handle(csta::answer_call{{"999999", "4711"}}, 0ms)),
            (csta::choice_value{"operation", "invalidCallID"}));
  EXPECT_EQ(error_of(model.handle(csta::answer_call{{id, "4712"}}, 0ms)),
            (csta::choice_value{"operation", "invalidConnectionID"}));
  EXPECT_EQ(error_of(model.handle(csta::make_call{.calling_device = "9999", .called_directory_number = "4712"}, 0ms)),
            (csta::choice_value{"operation", "invalidDeviceID"}));
  EXPECT_EQ(error_of(model.handle(csta::make_call{.calling_device = "4711", .called_directory_number = "4712"}, 0ms)),
            (csta::choice_value{"stateIncompatibility", "invalidObjectState"}));
  EXPECT_EQ(error_of(model.handle(csta::snapshot_device{"9999"}, 0ms)),
            (csta::choice_value{"operation", "invalidDeviceID"}));
  EXPECT_EQ(error_of(model.handle(csta::route_register{.routeing_device = "4711"}, 0ms)),
            (csta::choice_value{"operation", "invalidDeviceID"}));
  EXPECT_EQ(error_of(model.handle(csta::route_register_cancel{"77"}, 0ms)),
            (csta::choice_value{"operation", "invalidRouteRegistrationCrossRefID"}));
  EXPECT_EQ(error_of(model.handle(csta::system_register{}, 0ms)),
            (csta::choice_value{"operation", "serviceNotSupported"}));
}

TEST_F(model_test, route_select_to_a_busy_phone_asks_again_with_reroute) {
  answered_call("4712");
  const auto reg = register_all();
  const auto id = model.offer_call(caller(), 0ms).value();
  const auto request = first<csta::route_request>(model.take_outputs());
  EXPECT_FALSE(model.handle(
      csta::route_select{
          .cross_ref_identifier = request.cross_ref_identifier, .route_register_req_id = reg, .route_selected = "4712"},
      100ms));
  const auto outs = model.take_outputs();
  EXPECT_EQ(names(outs), (std::vector<std::string>{reg + ":ReRoute"}));
  EXPECT_EQ(first<csta::re_route>(outs).cross_ref_identifier, request.cross_ref_identifier);
  EXPECT_EQ(error_of(model.handle(csta::route_select{.cross_ref_identifier = request.cross_ref_identifier,
                                                     .route_register_req_id = reg,
                                                     .route_selected = "nobody"},
                                  200ms)),
            (csta::choice_value{"operation", "invalidDeviceID"}));
  EXPECT_FALSE(model.handle(
      csta::route_select{
          .cross_ref_identifier = request.cross_ref_identifier, .route_register_req_id = reg, .route_selected = "4713"},
      300ms));
  EXPECT_EQ(model.state_of(id, "4713"), lcs::alerting);
  // The route timer was restarted by the ReRoute and stopped by the second select.
  model.advance(10000ms);
  EXPECT_EQ(model.stats().route_timeouts, 0u);
}

TEST_F(model_test, events_are_built_only_for_monitored_devices) {
  answered_call("4711");
  EXPECT_FALSE(model.has_outputs());
  model.advance(100000ms);
  EXPECT_FALSE(model.has_outputs());
  EXPECT_EQ(model.stats().completed, 1u);
}

TEST(model_config_check, the_default_device_must_be_an_operator) {
  auto c = config();
  c.default_device = "800";
  EXPECT_THROW(call_model{c}, std::invalid_argument);
  c.default_device = "4711";
  c.route_points.push_back("4711");
  EXPECT_THROW(call_model{c}, std::invalid_argument);
}

}  // namespace
}  // namespace switchboard::pbxsim
