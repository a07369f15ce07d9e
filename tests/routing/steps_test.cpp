// The router's pure steps, table-driven: decision -> PBX answer, fallback, timers, config.
#include "switchboard/routing/steps.hpp"
#include "switchboard/routing/pbx_adapter.hpp"
#include "switchboard/routing/router.hpp"

#include <gtest/gtest.h>

namespace switchboard::routing {
namespace {

using namespace std::chrono_literals;
using store::route_kind;

TEST(RoutingSteps, EachDecisionGivesItsPbxAnswer) {
  const call_offered call{"rp", "pbx-1", "+100", "800", {}, "dialog-7"};
  struct answer_case {
    const char* name;
    store::route_decision decision;
    bool select;
    const char* destination;
  };
  auto decision = [](route_kind kind, const char* device, const char* destination) {
    store::route_decision d;
    d.kind = kind;
    d.call_id = 42;
    d.operator_id = kind == route_kind::operator_reserved ? 9 : 0;
    d.device = device;
    d.queue_id = 3;
    d.position = 2;
    d.expected_wait_seconds = 60;
    d.destination = destination;
    d.reason = "why";
    return d;
  };
  const std::vector<answer_case> cases = {
      {"operator: his phone", decision(route_kind::operator_reserved, "ext-9", ""), true, "ext-9"},
      {"queued at a wait device", decision(route_kind::queued, "", "music"), true, "music"},
      {"queued, no wait device: PBX default", decision(route_kind::queued, "", ""), false, ""},
      {"rule destination", decision(route_kind::destination, "", "desk"), true, "desk"},
      {"closed destination", decision(route_kind::closed, "", "voicemail"), true, "voicemail"},
      {"closed, none: PBX default", decision(route_kind::closed, "", ""), false, ""},
      {"default", decision(route_kind::default_route, "", ""), false, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto answer = answer_for(c.decision, call);
    ASSERT_EQ(std::holds_alternative<route_select_answer>(answer), c.select);
    if (c.select) {
      const auto& s = std::get<route_select_answer>(answer);
      EXPECT_EQ(s.destination, c.destination);
      EXPECT_EQ(s.routing_dialog_id, "dialog-7");
      EXPECT_EQ(s.pbx_call_id, "pbx-1");
      EXPECT_EQ(s.call_id, 42);
      EXPECT_FALSE(s.fallback);
      EXPECT_EQ(s.operator_id, c.decision.kind == route_kind::operator_reserved ? 9 : 0);
      const bool queued = c.decision.kind == route_kind::queued;
      EXPECT_EQ(s.position, queued ? 2 : 0);
      EXPECT_EQ(s.expected_wait_seconds, queued ? std::optional<int>(60) : std::nullopt);
    } else {
      const auto& e = std::get<route_end_answer>(answer);
      EXPECT_EQ(e.routing_dialog_id, "dialog-7");
      EXPECT_EQ(e.call_id, 42);
      EXPECT_FALSE(e.fallback);
      EXPECT_NE(e.reason.find("why"), std::string::npos);
    }
  }
}

TEST(RoutingSteps, FallbackIsRouteSelectToTheFallbackOrRouteEnd) {
  const call_offered call{"rp", "pbx-1", "+100", "800", {}, "dialog-7"};
  const auto to_operator_desk = fallback_answer(call, "reception", "database down");
  ASSERT_TRUE(std::holds_alternative<route_select_answer>(to_operator_desk));
  EXPECT_EQ(std::get<route_select_answer>(to_operator_desk).destination, "reception");
  EXPECT_TRUE(std::get<route_select_answer>(to_operator_desk).fallback);
  const auto to_default = fallback_answer(call, "", "database down");
  ASSERT_TRUE(std::holds_alternative<route_end_answer>(to_default));
  EXPECT_TRUE(std::get<route_end_answer>(to_default).fallback);
  EXPECT_EQ(std::get<route_end_answer>(to_default).reason, "database down");
}

TEST(RoutingSteps, NextCheckIsJustPastTheNextThresholdAndNeverLaterThanTheInterval) {
  struct timer_case {
    std::vector<int> thresholds;
    std::chrono::milliseconds waited;
    std::chrono::milliseconds expected;
  };
  const std::vector<timer_case> cases = {
      {{}, 0ms, 5000ms},         // no threshold: the interval
      {{30}, 0ms, 5000ms},       // far threshold: the interval first
      {{3}, 0ms, 3050ms},        // just past the threshold
      {{3, 4}, 3100ms, 950ms},   // the next one after a passed one
      {{3, 4}, 4100ms, 5000ms},  // all passed: the interval (ratio overflow, late operators)
      {{1}, 1049ms, 1ms},        // due now: soon, never zero
  };
  for (const auto& c : cases) EXPECT_EQ(next_check_after(c.thresholds, c.waited, 5000ms), c.expected);
}

TEST(RoutingSteps, ConfigValidation) {
  struct config_case {
    const char* name;
    router_config config;
    bool valid;
  };
  auto with = [](auto change) {
    router_config c;
    change(c);
    return c;
  };
  const std::vector<config_case> cases = {
      {"defaults", router_config{}, true},
      {"zero route timeout", with([](router_config& c) { c.route_timeout = 0ms; }), false},
      {"route timeout not below reservation", with([](router_config& c) {
         c.route_timeout = 2000ms;
         c.reservation_timeout = 2s;
       }),
       false},
      {"zero sweep", with([](router_config& c) { c.expiry_interval = 0ms; }), false},
      {"zero recheck", with([](router_config& c) { c.recheck_interval = 0ms; }), false},
      {"zero stats", with([](router_config& c) { c.stats_interval = 0ms; }), false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto checked = validate(c.config);
    EXPECT_EQ(checked.has_value(), c.valid);
    if (!checked) {
      EXPECT_TRUE(checked.error().is(errc::config_invalid));
    }
  }
}

TEST(RoutingSteps, IvrDataBecomesAJsonObject) {
  EXPECT_EQ(store::ivr_data_json({}), "{}");
  EXPECT_EQ(store::ivr_data_json({{"lang", "es"}, {"q\"uote", "back\\slash\n"}}),
            R"({"lang":"es","q\"uote":"back\\slash\n"})");
  EXPECT_EQ(store::ivr_data_json({{"ctl", std::string(1, '\x01')}}), R"({"ctl":"\u0001"})");
}

TEST(RoutingSteps, PbxRouteRequestsAndAnswersTranslate) {
  struct correlator_case {
    const char* correlator;
    std::vector<std::pair<std::string, std::string>> ivr;
  };
  const std::vector<correlator_case> cases = {
      {"", {}},
      {"lang=es", {{"lang", "es"}}},
      {"lang=es;account=42&x=", {{"lang", "es"}, {"account", "42"}, {"x", ""}}},
      {"12345", {{"correlator", "12345"}}},
      {"lang=es;oops", {{"correlator", "lang=es;oops"}}},
      {"=1", {{"correlator", "=1"}}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.correlator);
    pbx::call_offered event;
    event.dialog = "d-1";
    event.route_point = "7000";
    event.call = {"c-9", "7000"};
    event.caller = pbx::party::known("+3491");
    event.dialled = pbx::party::known("800");
    event.correlator = c.correlator;
    const auto call = from_pbx(event);
    EXPECT_EQ(call.route_point, "7000");
    EXPECT_EQ(call.pbx_call_id, "c-9");
    EXPECT_EQ(call.caller, "+3491");
    EXPECT_EQ(call.dialled, "800");
    EXPECT_EQ(call.routing_dialog_id, "d-1");
    EXPECT_EQ(call.ivr_data, c.ivr);
  }
  route_select_answer select;
  select.routing_dialog_id = "d-1";
  select.destination = "ext-9";
  EXPECT_EQ(to_pbx(select).dialog, "d-1");
  EXPECT_EQ(to_pbx(select).destination, "ext-9");
  EXPECT_EQ(to_pbx(route_end_answer{"d-2", "c", 0, true, "why"}).dialog, "d-2");
}

}  // namespace
}  // namespace switchboard::routing
