// CSTA <-> neutral pbx mapping: events, commands, dialogs and snapshots.
#include "switchboard/csta/translate.hpp"
#include "switchboard/csta/codec.hpp"

#include <gtest/gtest.h>

namespace switchboard::csta {
namespace {

TEST(csta_translate, route_request_becomes_call_offered) {
  route_request r{"5001",
                  "12",
                  device_ref::known("800"),
                  {{}, device_presence::restricted},
                  std::nullopt,
                  connection_ref{"C1", "800"},
                  std::nullopt,
                  std::nullopt,
                  3000,
                  "4711#"};
  auto e = to_event(r);
  ASSERT_TRUE(e.has_value());
  const auto& offered = std::get<pbx::call_offered>(*e);
  EXPECT_EQ(offered.dialog, "12/5001");
  EXPECT_EQ(offered.route_point, "800");
  EXPECT_EQ(offered.call, (pbx::connection_id{"C1", "800"}));
  EXPECT_EQ(offered.caller.shown, pbx::presentation::restricted);
  EXPECT_EQ(offered.dialled, pbx::party::known("800"));
  EXPECT_EQ(offered.correlator, "4711#");
  EXPECT_EQ(offered.reply_timeout, std::chrono::milliseconds(3000));
}

TEST(csta_translate, route_select_round_trips_the_dialog) {
  auto r = to_csta(pbx::route_select{"12/5001", "4711", "cust=42", true});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->route_register_req_id, "12");
  EXPECT_EQ(r->cross_ref_identifier, "5001");
  EXPECT_EQ(r->route_selected, "4711");
  EXPECT_EQ(r->route_used_req, true);
  EXPECT_EQ(r->correlator_data, "cust=42");
  auto bad = to_csta(pbx::route_end{"nonsense"});
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().is(errc::call_unknown));
}

TEST(csta_translate, reroute_and_route_end_name_the_dialog) {
  auto retry = to_event(re_route{"5001", "12", std::nullopt, std::nullopt});
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(std::get<pbx::route_retry>(*retry).dialog, "12/5001");
  auto ended = to_event(route_end{"5001", "12", {"operation", "routeingTimerExpired"}, std::nullopt});
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(std::get<pbx::route_ended>(*ended).reason, "operation: routeingTimerExpired");
}

TEST(csta_translate, call_events_map_to_neutral_events) {
  auto delivered = decode(
      R"(<DeliveredEvent><monitorCrossRefID>1</monitorCrossRefID><connection><callID>C</callID><deviceID>4711</deviceID></connection><alertingDevice><deviceIdentifier>4711</deviceIdentifier></alertingDevice><callingDevice><deviceIdentifier>030</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>800</deviceIdentifier></calledDevice><localConnectionInfo>alerting</localConnectionInfo><correlatorData><string>12#</string></correlatorData><cause>newCall</cause></DeliveredEvent>)");
  ASSERT_TRUE(delivered.has_value());
  auto e = to_event(*delivered);
  ASSERT_TRUE(e.has_value());
  const auto& d = std::get<pbx::call_delivered>(*e);
  EXPECT_EQ(d.connection, (pbx::connection_id{"C", "4711"}));
  EXPECT_EQ(d.calling, pbx::party::known("030"));
  EXPECT_EQ(d.state, pbx::connection_state::alerting);
  EXPECT_EQ(d.correlator, "12#");
  EXPECT_EQ(d.cause, "newCall");

  auto cleared = to_event(connection_cleared_event{
      "1", {"C", "4711"}, device_ref::known("4711"), std::nullopt, std::nullopt, "normalClearing"});
  ASSERT_TRUE(cleared.has_value());
  EXPECT_EQ(std::get<pbx::connection_cleared>(*cleared).cause, "normalClearing");

  transfered_event t;
  t.primary_old_call = {"C1", "4711"};
  t.secondary_old_call = connection_ref{"C2", "4711"};
  t.transferring_device = device_ref::known("4711");
  t.transferred_to_device = device_ref::known("4712");
  t.transferred_connections = {{connection_ref{"C2", "4712"}, connection_ref{"C1", "4712"}, std::nullopt}};
  auto transferred = to_event(t);
  ASSERT_TRUE(transferred.has_value());
  const auto& tr = std::get<pbx::call_transferred>(*transferred);
  EXPECT_EQ(tr.primary_old_call, "C1");
  EXPECT_EQ(tr.secondary_old_call, "C2");
  ASSERT_EQ(tr.connections.size(), 1u);
  EXPECT_EQ(tr.connections[0].new_connection, (pbx::connection_id{"C2", "4712"}));
  EXPECT_EQ(tr.connections[0].endpoint.shown, pbx::presentation::not_known);
}

TEST(csta_translate, agent_events_become_operator_states) {
  agent_working_after_call_event a;
  a.agent_device = device_ref::known("4711");
  a.agent_id = "A1";
  auto e = to_event(a);
  ASSERT_TRUE(e.has_value());
  const auto& op = std::get<pbx::operator_changed>(*e);
  EXPECT_EQ(op.device, "4711");
  EXPECT_EQ(op.agent_id, "A1");
  EXPECT_EQ(op.state, pbx::operator_state::after_call_work);
}

TEST(csta_translate, responses_and_session_traffic_are_not_events) {
  EXPECT_FALSE(to_event(make_call_response{{"C", "4711"}}).has_value());
  EXPECT_FALSE(to_event(system_status{std::nullopt, "normal"}).has_value());
  EXPECT_FALSE(to_event(unknown_message{"X"}).has_value());
}

TEST(csta_translate, operator_state_commands) {
  auto on = to_csta(pbx::set_operator_state{"4711", pbx::operator_state::logged_on, "A1", "800", "pw"});
  ASSERT_TRUE(on.has_value());
  EXPECT_EQ(on->requested_agent_state, "loggedOn");
  EXPECT_EQ(on->password, "pw");
  auto ready = to_csta(pbx::set_operator_state{"4711", pbx::operator_state::ready, "A1", "", "pw"});
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->requested_agent_state, "ready");
  EXPECT_FALSE(ready->password.has_value());  // the password only travels with a log on
  EXPECT_FALSE(ready->group.has_value());
  auto busy = to_csta(pbx::set_operator_state{"4711", pbx::operator_state::busy, "", "", ""});
  ASSERT_FALSE(busy.has_value());
  EXPECT_TRUE(busy.error().is(errc::state_not_allowed));
}

TEST(csta_translate, call_control_commands) {
  const pbx::connection_id c{"C1", "4711"};
  EXPECT_EQ(to_csta(pbx::make_call{"4711", "0301", ""}).called_directory_number, "0301");
  EXPECT_EQ(to_csta(pbx::answer_call{c}).call_to_be_answered, (connection_ref{"C1", "4711"}));
  EXPECT_EQ(to_csta(pbx::consult_call{c, "4712"}).consulted_device, "4712");
  EXPECT_EQ(to_csta(pbx::deflect_call{c, "4713"}).new_destination, "4713");
  EXPECT_EQ(to_csta(pbx::single_step_transfer{c, "4714"}).transferred_to, "4714");
  EXPECT_EQ(to_csta(pbx::transfer_call{c, {"C2", "4711"}}).active_call.call_id, "C2");
  EXPECT_EQ(to_csta(pbx::snapshot_device{"4711"}).snapshot_object, "4711");
}

TEST(csta_translate, snapshot_lists_calls_with_their_first_state) {
  snapshot_device_response r{std::nullopt, {{{"C1", "4711"}, {local_connection_state::hold}}, {{"C2", "4711"}, {}}}};
  const auto calls = to_snapshot(r);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], (pbx::snapshot_entry{{"C1", "4711"}, pbx::connection_state::hold}));
  EXPECT_EQ(calls[1].state, pbx::connection_state::null);
  EXPECT_EQ(error_text({"unspecified", ""}), "unspecified");
}

}  // namespace
}  // namespace switchboard::csta
