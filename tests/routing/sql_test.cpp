// The routing SQL on a real PostgreSQL, through the store queries: every strategy and its
// tie-break, escalation, overflow (time and ratio), opening hours, max length and max wait,
// rules as data, an admin's CREATE OR REPLACE, expected wait, reservations, pick_call order.
#include "routing_world.hpp"

#include <gtest/gtest.h>

#include <map>

namespace switchboard {
namespace {

using store::route_kind;
using testing::offer_at;
using testing::routing_world;
using testing::sync;

store::route_decision decide(store::connection_pool& pool, const store::call_offer& offer) {
  auto d = sync(store::offer_call(pool, offer));
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message());
  return d ? *d : store::route_decision{};
}

store::route_decision recheck(store::connection_pool& pool, std::int64_t call_id) {
  auto d = sync(store::recheck_waiting_call(pool, call_id, std::chrono::seconds(10)));
  EXPECT_TRUE(d.has_value()) << (d ? "" : d.error().message());
  return d ? *d : store::route_decision{};
}

// ---- strategies and tie-breaks ----------------------------------------------------------------

struct op_spec {
  const char* login;
  int level;         // english
  int idle_minutes;  // since his last call ended; -1 = never had one
  int calls = 0;     // calls handled today
  bool ready = true;
};

struct strategy_case {
  const char* name;
  const char* strategy;
  std::vector<op_spec> operators;
  const char* expected;
  const char* served_before = nullptr;  // sticky: who served this caller last
  int served_days_ago = 1;
};

TEST(RoutingSql, EachStrategyPicksItsOperatorAndBreaksTiesByOperatorId) {
  const std::vector<strategy_case> cases = {
      {"longest idle", "longest_idle", {{"a", 5, 10}, {"b", 5, 30}, {"c", 5, 20}}, "b"},
      {"longest idle: never called first", "longest_idle", {{"a", 5, 10}, {"b", 5, -1}}, "b"},
      {"longest idle: tie", "longest_idle", {{"a", 5, 30}, {"b", 5, 30}}, "a"},
      {"fewest calls", "fewest_calls", {{"a", 5, 60, 5}, {"b", 5, 10, 2}, {"c", 5, 30, 2}}, "c"},
      {"fewest calls: tie", "fewest_calls", {{"a", 5, 30, 2}, {"b", 5, 30, 2}}, "a"},
      {"best skill then longest idle", "best_skill", {{"a", 3, 60}, {"b", 9, 10}, {"c", 9, 30}}, "c"},
      {"best skill: tie", "best_skill", {{"a", 9, 30}, {"b", 9, 30}, {"c", 3, 60}}, "a"},
      {"round robin starts at the lowest id", "round_robin", {{"a", 5, 10}, {"b", 5, 60}}, "a"},
      {"sticky: last served this caller", "sticky", {{"a", 5, 60}, {"b", 5, 10}, {"c", 5, 30}}, "b", "b", 1},
      {"sticky: older than sticky_days", "sticky", {{"a", 5, 60}, {"b", 5, 10}}, "a", "b", 10},
      {"sticky: not ready", "sticky", {{"a", 5, 60}, {"b", 5, 10, 0, false}, {"c", 5, 70}}, "c", "b", 1},
      {"not qualified is never picked", "longest_idle", {{"a", 1, 90}, {"b", 5, 10}}, "b"},
  };
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 2});
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto t = w.tenant("s" + std::to_string(++n));
    const auto q = w.queue(t, "q", {{"english", 2}}, "strategy = '" + std::string(c.strategy) + "', sticky_days = 7");
    const std::string rp = "rp-s" + std::to_string(n);
    w.route_point(t, rp, q);
    for (const auto& o : c.operators) {
      const auto id = w.operator_(t, o.login, {{"english", o.level}}, o.ready ? "ready" : "not_ready");
      w.exec(
          "UPDATE presence SET calls_handled = $2, last_call_ended = CASE WHEN $3 < 0 THEN NULL "
          "ELSE now() - make_interval(mins => $3) END WHERE operator_id = $1",
          id, o.calls, o.idle_minutes);
    }
    if (c.served_before) {
      w.exec("INSERT INTO customers (tenant_id, phone, name) VALUES ($1, '+555', 'Known')", t);
      w.exec(
          "INSERT INTO calls (tenant_id, pbx_call_id, caller, customer_id, operator_id, offered_at, answered_at, "
          "ended_at, disposition) SELECT $1, 'old', '+555', cu.customer_id, $2, now() - make_interval(days => $3), "
          "now() - make_interval(days => $3), now() - make_interval(days => $3) + interval '3 min', 'answered' "
          "FROM customers cu WHERE cu.tenant_id = $1",
          t, w.operator_id(c.served_before, t), c.served_days_ago);
    }
    const auto d = decide(pool, offer_at(rp, "+555"));
    EXPECT_EQ(d.kind, route_kind::operator_reserved) << d.reason;
    EXPECT_EQ(w.login_of(d.operator_id), c.expected);
    EXPECT_EQ(d.device, std::string(c.expected) + "-" + std::to_string(t));
  }
}

// A call needing several skills (the queue's two, or the queue's and those a rule adds, the
// higher level winning for a skill named by both) goes only to an operator who has every one at
// its level, whatever the strategy ranks first: the first skill is the index walk, the others are
// tested on each candidate.
TEST(RoutingSql, ACallNeedingSeveralSkillsGoesOnlyToAnOperatorWithAllOfThemInEveryStrategy) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  int n = 0;
  for (const char* strategy : {"longest_idle", "fewest_calls", "best_skill", "round_robin", "sticky"}) {
    SCOPED_TRACE(strategy);
    const auto t = w.tenant("several" + std::to_string(++n));
    const auto q =
        w.queue(t, "billing", {{"english", 3}, {"billing", 2}}, "strategy = '" + std::string(strategy) + "'");
    w.route_point(t, "rp-several" + std::to_string(n), q);
    // longest idle first, lowest ids first: everyone ranked before "both" lacks one of the two
    for (const auto& [login, skills, idle] : std::vector<std::tuple<std::string, testing::skill_levels, int>>{
             {"english_only", {{"english", 9}}, 90},
             {"billing_too_low", {{"english", 9}, {"billing", 1}}, 80},
             {"both", {{"english", 3}, {"billing", 2}}, 10},
             {"billing_only", {{"billing", 9}}, 100}}) {
      const auto id = w.operator_(t, login, skills);
      w.exec("UPDATE presence SET last_call_ended = now() - make_interval(mins => $2) WHERE operator_id = $1", id,
             idle);
    }
    const auto first = decide(pool, offer_at("rp-several" + std::to_string(n)));
    ASSERT_EQ(first.kind, route_kind::operator_reserved) << first.reason;
    EXPECT_EQ(w.login_of(first.operator_id), "both");
    EXPECT_EQ(decide(pool, offer_at("rp-several" + std::to_string(n))).kind, route_kind::queued);
  }

  // skills a rule adds: Spanish besides the queue's English; English at 6 where the queue asks 3
  const auto t = w.tenant("rule-skills");
  const auto q = w.queue(t, "support", {{"english", 3}});
  w.route_point(t, "rp-rule-skills", q);
  const auto rule = [&](int order, const char* lang, const char* skill, int level) {
    const auto id = w.exec(
                         "INSERT INTO routing_rules (tenant_id, rule_order, ivr_match, queue_id) "
                         "VALUES ($1, $2, jsonb_build_object('lang', $3::text), $4) RETURNING rule_id",
                         t, order, lang, q)
                        .at(0)[0]
                        .as<std::int64_t>();
    w.exec("INSERT INTO routing_rule_skills (tenant_id, rule_id, skill_id, min_level) VALUES ($1, $2, $3, $4)", t, id,
           w.skill(t, skill), level);
  };
  rule(10, "es", "spanish", 2);
  rule(20, "en+", "english", 6);
  const auto english = w.operator_(t, "english", {{"english", 5}});
  const auto spanish = w.operator_(t, "spanish", {{"english", 3}, {"spanish", 2}});
  const auto senior = w.operator_(t, "senior", {{"english", 7}});
  w.exec("UPDATE presence SET last_call_ended = now() - make_interval(mins => 100 - operator_id::int % 100)");
  const auto in_spanish = decide(pool, offer_at("rp-rule-skills", "+100", {{"lang", "es"}}));
  EXPECT_EQ(in_spanish.operator_id, spanish) << in_spanish.reason;
  const auto senior_english = decide(pool, offer_at("rp-rule-skills", "+100", {{"lang", "en+"}}));
  EXPECT_EQ(senior_english.operator_id, senior) << senior_english.reason;
  const auto plain = decide(pool, offer_at("rp-rule-skills", "+100", {{"lang", "en"}}));
  EXPECT_EQ(plain.operator_id, english) << plain.reason;
}

TEST(RoutingSql, RoundRobinGoesAroundInOperatorIdOrder) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("rr");
  w.route_point(t, "rp", w.queue(t, "q", {}, "strategy = 'round_robin'"));
  for (const char* login : {"a", "b", "c"}) w.operator_(t, login, {});
  std::vector<std::string> picked;
  for (int i = 0; i < 5; ++i) {
    const auto d = decide(pool, offer_at("rp"));
    picked.push_back(w.login_of(d.operator_id));
    w.finish_call(d.operator_id);
  }
  EXPECT_EQ(picked, (std::vector<std::string>{"a", "b", "c", "a", "b"}));
}

// ---- escalation ---------------------------------------------------------------------------------

TEST(RoutingSql, EscalationStepsDropTheLevelAndAddSkillsWithoutLosingThePlace) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("esc");
  const auto q = w.queue(t, "support", {{"english", 8}});
  w.route_point(t, "rp", q);
  w.exec(
      "INSERT INTO queue_escalation_steps (tenant_id, queue_id, after_seconds, level_drop) VALUES "
      "($1, $2, 30, 3), ($1, $2, 60, 3)",
      t, q);
  w.exec("INSERT INTO queue_escalation_skills (tenant_id, queue_id, after_seconds, skill_id) VALUES ($1, $2, 60, $3)",
         t, q, w.skill(t, "french"));
  const auto junior = w.operator_(t, "junior", {{"english", 5}});
  const auto french = w.operator_(t, "french", {{"french", 1}});

  const auto first = decide(pool, offer_at("rp"));
  const auto second = decide(pool, offer_at("rp"));
  ASSERT_EQ(first.kind, route_kind::queued);
  ASSERT_EQ(second.kind, route_kind::queued);
  EXPECT_EQ(first.position, 1);
  EXPECT_EQ(second.position, 2);

  // 20 s: no step reached, nobody qualifies
  w.backdate_wait(first.call_id, 20);
  w.backdate_wait(second.call_id, 20);
  EXPECT_EQ(recheck(pool, second.call_id).kind, route_kind::queued);

  // 31 s: level 8 - 3 = 5, the junior qualifies; the older caller gets him first
  w.backdate_wait(first.call_id, 11);
  w.backdate_wait(second.call_id, 11);
  const auto picked = sync(store::pick_call(pool, junior, std::chrono::seconds(10)));
  ASSERT_TRUE(picked.has_value());
  ASSERT_TRUE(picked->has_value());
  EXPECT_EQ((*picked)->call_id, first.call_id);

  // still 31 s for the second: the French speaker does not qualify yet; at 61 s he does
  EXPECT_EQ(recheck(pool, second.call_id).kind, route_kind::queued);
  w.backdate_wait(second.call_id, 30);
  const auto later = recheck(pool, second.call_id);
  EXPECT_EQ(later.kind, route_kind::operator_reserved);
  EXPECT_EQ(later.operator_id, french);
}

// ---- overflow -------------------------------------------------------------------------------------

TEST(RoutingSql, OverflowAfterSecondsOffersTheCallToTheSecondGroup) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("ovt");
  const auto second = w.queue(t, "second group", {{"general", 1}});
  const auto first = w.queue(t, "first group", {{"spanish", 5}},
                             "overflow_queue_id = " + std::to_string(second) + ", overflow_after_seconds = 30");
  w.route_point(t, "rp", first);
  const auto general = w.operator_(t, "general", {{"general", 3}});

  const auto d = decide(pool, offer_at("rp"));
  ASSERT_EQ(d.kind, route_kind::queued);
  w.backdate_wait(d.call_id, 29);
  EXPECT_EQ(recheck(pool, d.call_id).kind, route_kind::queued);
  w.backdate_wait(d.call_id, 2);
  const auto after = recheck(pool, d.call_id);
  EXPECT_EQ(after.kind, route_kind::operator_reserved);
  EXPECT_EQ(after.operator_id, general);
  EXPECT_EQ(w.scalar("SELECT detail->>'reason' FROM call_events WHERE call_id = $1 AND kind = 'overflowed'", d.call_id),
            "overflow_after_seconds");
}

TEST(RoutingSql, OverflowRatioOffersTheCallToTheOverflowQueueWhenTooManyWaitPerOperator) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("ovr");
  const auto backup = w.queue(t, "backup", {{"general", 1}});
  const auto main =
      w.queue(t, "main", {{"spanish", 1}}, "overflow_queue_id = " + std::to_string(backup) + ", overflow_ratio = 1.0");
  w.route_point(t, "rp", main);
  w.operator_(t, "busy", {{"spanish", 5}}, "wrap_up");  // staffs main, not free
  const auto general = w.operator_(t, "general", {{"general", 1}});

  const auto one = decide(pool, offer_at("rp"));  // 1 waiting per staffed operator: not past 1.0
  EXPECT_EQ(one.kind, route_kind::queued);
  const auto two = decide(pool, offer_at("rp"));  // 2 per operator: overflow
  EXPECT_EQ(two.kind, route_kind::operator_reserved);
  EXPECT_EQ(two.operator_id, general);
  EXPECT_EQ(w.scalar("SELECT count(*) FROM waiting_calls WHERE call_id = $1", one.call_id), "1");
}

// ---- opening hours, max length, max wait --------------------------------------------------------

TEST(RoutingSql, OpeningHoursInTheTenantsTimeZone) {
  routing_world w;
  // Monday 2026-11-23 15:00 UTC: 10:00 Monday in New York, 00:00 Tuesday in Tokyo
  w.db().exec("ALTER DATABASE " + w.db().name() + " SET switchboard.clock = '2026-11-23 15:00:00+00'");
  store::connection_pool pool({.url = w.url(), .size = 1});
  struct hours_case {
    const char* zone;
    const char* closed_destination;  // nullptr: none
    route_kind expected;
    const char* destination;
  };
  const std::vector<hours_case> cases = {
      {"America/New_York", "voicemail", route_kind::operator_reserved, ""},
      {"Asia/Tokyo", "voicemail", route_kind::closed, "voicemail"},
      {"Asia/Tokyo", nullptr, route_kind::closed, ""},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.zone);
    const auto t = w.tenant("h" + std::to_string(++n), c.zone);
    const auto q = w.queue(t, "office");
    if (c.closed_destination)
      w.exec("UPDATE queues SET closed_destination = $2 WHERE queue_id = $1", q, c.closed_destination);
    w.exec(
        "INSERT INTO queue_opening_hours (tenant_id, queue_id, iso_dow, opens, closes) "
        "SELECT $1, $2, d, '09:00', '17:00' FROM generate_series(1, 5) d",
        t, q);
    const std::string rp = "rp-h" + std::to_string(n);
    w.route_point(t, rp, q);
    w.operator_(t, "a", {});
    const auto d = decide(pool, offer_at(rp));
    EXPECT_EQ(d.kind, c.expected) << d.reason;
    EXPECT_EQ(d.destination, c.destination);
  }
}

TEST(RoutingSql, MaxWaitingCallsSendsTheNextCallToOverflowOrClosedDestination) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("len");
  const auto spill = w.queue(t, "spill");
  const auto full = w.queue(t, "full", {}, "max_waiting_calls = 1, closed_destination = 'busy-tone'");
  const auto with_overflow =
      w.queue(t, "full2", {}, "max_waiting_calls = 1, overflow_queue_id = " + std::to_string(spill));
  w.route_point(t, "rp1", full);
  w.route_point(t, "rp2", with_overflow);

  EXPECT_EQ(decide(pool, offer_at("rp1")).kind, route_kind::queued);
  const auto closed = decide(pool, offer_at("rp1"));
  EXPECT_EQ(closed.kind, route_kind::closed);
  EXPECT_EQ(closed.destination, "busy-tone");

  EXPECT_EQ(decide(pool, offer_at("rp2")).kind, route_kind::queued);
  const auto spilled = decide(pool, offer_at("rp2"));
  EXPECT_EQ(spilled.kind, route_kind::queued);
  EXPECT_EQ(spilled.queue_id, spill);
  EXPECT_EQ(spilled.position, 1);
}

TEST(RoutingSql, MaxWaitMovesTheCallOnKeepingItsAge) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("mw");
  const auto later = w.queue(t, "later");
  const auto first = w.queue(t, "first", {}, "max_wait_seconds = 60, overflow_queue_id = " + std::to_string(later));
  const auto closing = w.queue(t, "closing", {}, "max_wait_seconds = 60, closed_destination = 'voicemail'");
  w.route_point(t, "rp1", first);
  w.route_point(t, "rp2", closing);

  const auto moved = decide(pool, offer_at("rp1"));
  const auto since = w.scalar("SELECT waiting_since FROM waiting_calls WHERE call_id = $1", moved.call_id);
  w.backdate_wait(moved.call_id, 59);
  EXPECT_EQ(recheck(pool, moved.call_id).queue_id, first);
  w.backdate_wait(moved.call_id, 2);
  const auto after = recheck(pool, moved.call_id);
  EXPECT_EQ(after.kind, route_kind::queued);
  EXPECT_EQ(after.queue_id, later);
  EXPECT_EQ(w.scalar("SELECT waiting_since = $2::timestamptz - interval '61 s' FROM waiting_calls WHERE call_id = $1",
                     moved.call_id, since),
            "t");

  const auto closed = decide(pool, offer_at("rp2"));
  w.backdate_wait(closed.call_id, 61);
  const auto gone = recheck(pool, closed.call_id);
  EXPECT_EQ(gone.kind, route_kind::closed);
  EXPECT_EQ(gone.destination, "voicemail");
  EXPECT_EQ(recheck(pool, closed.call_id).kind, route_kind::gone);
}

// ---- rules as data -------------------------------------------------------------------------------

TEST(RoutingSql, RulesMatchInOrderOnEveryCondition) {
  routing_world w;
  // Monday 2026-11-23 10:00 in Madrid
  w.db().exec("ALTER DATABASE " + w.db().name() + " SET switchboard.clock = '2026-11-23 09:00:00+00'");
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("rules", "Europe/Madrid");
  std::map<std::string, std::int64_t> q;
  for (const char* name : {"default", "hotline", "uk", "spanish", "vip", "weekend", "morning", "night", "other_rp"})
    q[name] = w.queue(t, name);
  const auto rp = w.route_point(t, "rp", q["default"]);
  const auto rp2 = w.route_point(t, "rp2", q["default"]);
  w.exec("INSERT INTO customers (tenant_id, phone, tier) VALUES ($1, '+4917', 'vip')", t);
  const std::string insert =
      "INSERT INTO routing_rules (tenant_id, rule_order, route_point_id, dialled, caller_prefix, ivr_match, "
      "customer_match, iso_dows, time_from, time_to, queue_id) VALUES ($1, $2, nullif($3, 0), nullif($4, ''), "
      "nullif($5, ''), nullif($6, '')::jsonb, nullif($7, '')::jsonb, nullif($8, '')::smallint[], nullif($9, '')::time, "
      "nullif($10, '')::time, $11)";
  auto rule = [&](int order, std::int64_t route_point, const char* dialled, const char* prefix, const char* ivr,
                  const char* customer, const char* dows, const char* from, const char* to, const char* queue) {
    w.exec(insert, t, order, route_point, dialled, prefix, ivr, customer, dows, from, to, q[queue]);
  };
  rule(10, 0, "0800", "", "", "", "", "", "", "hotline");
  rule(20, 0, "", "+44", "", "", "", "", "", "uk");
  rule(30, 0, "", "", R"({"lang": "es"})", "", "", "", "", "spanish");
  rule(40, 0, "", "", "", R"({"tier": "vip"})", "", "", "", "vip");
  rule(50, 0, "", "", "", "", "{6,7}", "", "", "weekend");
  rule(60, 0, "", "", R"({"when": "x"})", "", "", "08:00", "12:00", "morning");
  rule(70, 0, "", "", R"({"when": "y"})", "", "", "22:00", "06:00", "night");  // spans midnight: not at 10:00
  rule(80, rp2, "", "", "", "", "", "", "", "other_rp");
  rule(5, 0, "", "+44", R"({"lang": "es"})", "", "", "", "", "spanish");  // first by order wins
  (void)rp;

  struct rule_case {
    const char* name;
    const char* route_point;
    const char* caller;
    std::vector<std::pair<std::string, std::string>> ivr;
    const char* dialled;
    const char* expected;
  };
  const std::vector<rule_case> cases = {
      {"no rule: default queue", "rp", "+100", {}, "800", "default"},
      {"dialled number", "rp", "+100", {}, "0800", "hotline"},
      {"caller prefix", "rp", "+4420", {}, "800", "uk"},
      {"ivr key = value", "rp", "+100", {{"lang", "es"}, {"account", "7"}}, "800", "spanish"},
      {"ivr other value", "rp", "+100", {{"lang", "en"}}, "800", "default"},
      {"customer tier", "rp", "+4917", {}, "800", "vip"},
      {"time window in", "rp", "+100", {{"when", "x"}}, "800", "morning"},
      {"time window across midnight, out", "rp", "+100", {{"when", "y"}}, "800", "default"},
      {"route point", "rp2", "+100", {}, "800", "other_rp"},
      {"lower rule_order first", "rp", "+4420", {{"lang", "es"}}, "800", "spanish"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto d = decide(pool, offer_at(c.route_point, c.caller, c.ivr, c.dialled));
    EXPECT_EQ(d.queue_id, q[c.expected]) << d.reason;
  }
  // Saturday: the weekend rule (day of week in the tenant's zone)
  w.db().exec("ALTER DATABASE " + w.db().name() + " SET switchboard.clock = '2026-11-28 09:00:00+00'");
  store::connection_pool saturday({.url = w.url(), .size = 1});
  EXPECT_EQ(decide(saturday, offer_at("rp")).queue_id, q["weekend"]);
}

TEST(RoutingSql, UnknownRoutePointAndMissingDefaultGiveTheDefaultRoute) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("nodef");
  w.route_point(t, "bare", 0);
  const auto unknown = decide(pool, offer_at("nowhere"));
  EXPECT_EQ(unknown.kind, route_kind::default_route);
  EXPECT_EQ(unknown.call_id, 0);
  const auto bare = decide(pool, offer_at("bare"));
  EXPECT_EQ(bare.kind, route_kind::default_route);
  EXPECT_NE(bare.call_id, 0);
  // one journal row says how the call was decided, with the offer in its detail
  EXPECT_EQ(w.scalar("SELECT string_agg(kind || ' ' || (detail->>'caller'), ',') FROM call_events WHERE call_id = $1",
                     bare.call_id),
            "default_routed " + offer_at("bare").caller);
}

// ---- rules as code ---------------------------------------------------------------------------------

TEST(RoutingSql, AdminsCreateOrReplaceRouteCallChangesTheNextDecision) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("admin");
  const auto q = w.queue(t, "q");
  w.route_point(t, "rp", q);
  EXPECT_EQ(decide(pool, offer_at("rp")).kind, route_kind::queued);  // warms the pooled connection's plans

  w.exec(R"(CREATE OR REPLACE FUNCTION route_call(c calls) RETURNS route_target LANGUAGE plpgsql AS $$
    DECLARE t route_target;
    BEGIN
      IF c.caller LIKE '+34%' THEN
        t.destination := 'spanish-desk';
        t.note := 'admin: Spanish numbers';
        RETURN t;
      END IF;
      RETURN route_call_by_rules(c);
    END $$)");
  const auto spanish = decide(pool, offer_at("rp", "+3491"));
  EXPECT_EQ(spanish.kind, route_kind::destination);
  EXPECT_EQ(spanish.destination, "spanish-desk");
  EXPECT_EQ(spanish.reason, "admin: Spanish numbers");
  EXPECT_EQ(decide(pool, offer_at("rp", "+100")).queue_id, q);
}

TEST(RoutingSql, UnknownSkillFromRouteCallIsAClearError) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("typo");
  const auto q = w.queue(t, "q");
  w.route_point(t, "rp", q);
  w.exec(
      "CREATE OR REPLACE FUNCTION route_call(c calls) RETURNS route_target LANGUAGE sql AS $$ "
      "SELECT ROW(" +
      std::to_string(q) + ", 0, '{\"spansh\": 3}'::jsonb, NULL, NULL, 'typo')::route_target $$");
  auto d = sync(store::offer_call(pool, offer_at("rp")));
  ASSERT_FALSE(d.has_value());
  EXPECT_TRUE(d.error().is(errc::db_query_failed));
  EXPECT_NE(d.error().detail.find("unknown skill \"spansh\""), std::string::npos) << d.error().detail;
}

// ---- expected wait, position, pick_call -------------------------------------------------------------

TEST(RoutingSql, PositionAndExpectedWaitFromRecentHandleTimesAndStaffing) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("ew");
  const auto q = w.queue(t, "q", {}, "wait_destination = 'music'");
  w.route_point(t, "rp", q);
  const auto a = w.operator_(t, "a", {}, "wrap_up");
  w.operator_(t, "b", {}, "wrap_up");
  w.operator_(t, "c", {}, "not_ready");  // not staffing
  for (int talk : {100, 200, 300})
    w.exec(
        "INSERT INTO calls (tenant_id, pbx_call_id, final_queue_id, operator_id, offered_at, answered_at, ended_at, "
        "disposition) VALUES ($1, 'h', $2, $3, now() - interval '1 hour', now() - interval '1 hour', "
        "now() - interval '1 hour' + make_interval(secs => $4), 'answered')",
        t, q, a, talk);
  const auto first = decide(pool, offer_at("rp"));
  EXPECT_EQ(first.kind, route_kind::queued);
  EXPECT_EQ(first.destination, "music");
  EXPECT_EQ(first.position, 1);
  EXPECT_EQ(first.expected_wait_seconds, 100);  // 200 s handle time / 2 operators
  const auto second = decide(pool, offer_at("rp"));
  EXPECT_EQ(second.position, 2);
  EXPECT_EQ(second.expected_wait_seconds, 200);

  // the router's periodic refresh: later decisions read the figures from queue_stats
  EXPECT_EQ(sync(store::refresh_queue_stats(pool)).value(), 1);
  EXPECT_EQ(w.scalar("SELECT staffed || ' ' || handle_seconds FROM queue_stats WHERE queue_id = $1", q), "2 200.000");
  w.exec("UPDATE queue_stats SET staffed = 4 WHERE queue_id = $1", q);
  EXPECT_EQ(recheck(pool, second.call_id).expected_wait_seconds, 100);  // 2 x 200 s / 4

  w.exec("UPDATE presence SET state = 'not_ready', reason = 'break' WHERE tenant_id = $1", t);
  w.exec("DELETE FROM queue_stats");  // no recent figures: the live count
  const auto unstaffed = recheck(pool, second.call_id);
  EXPECT_EQ(unstaffed.position, 2);
  EXPECT_FALSE(unstaffed.expected_wait_seconds.has_value());
}

TEST(RoutingSql, RefreshedStaffingIsTheLiveCountForQueuesWithNoneOneOrSeveralSkills) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("st");
  const auto anyone = w.queue(t, "anyone");
  const auto english = w.queue(t, "english", {{"english", 3}});
  const auto both = w.queue(t, "both", {{"english", 1}, {"french", 2}});
  const auto german = w.queue(t, "german", {{"german", 1}});
  w.operator_(t, "a", {{"english", 5}, {"french", 2}});
  w.operator_(t, "b", {{"english", 3}}, "wrap_up");
  w.operator_(t, "c", {{"english", 2}, {"french", 5}});
  w.operator_(t, "d", {{"french", 4}, {"german", 9}}, "not_ready");  // paused: staffs nothing
  w.operator_(t, "e", {{"english", 9}, {"german", 9}}, "logged_out");
  const auto other = w.tenant("st2");  // a queue without skills counts its own tenant only
  const auto others = w.queue(other, "anyone");
  w.operator_(other, "f", {});

  EXPECT_EQ(sync(store::refresh_queue_stats(pool)).value(), 5);
  const std::vector<std::pair<std::int64_t, std::string>> expected = {
      {anyone, "3"}, {english, "2"}, {both, "2"}, {german, "0"}, {others, "1"}};
  for (const auto& [queue, staffed] : expected) {
    EXPECT_EQ(w.scalar("SELECT staffed FROM queue_stats WHERE queue_id = $1", queue), staffed) << queue;
    EXPECT_EQ(w.scalar("SELECT queue_staffing_count($1)", queue), staffed) << queue;
  }
}

TEST(RoutingSql, PickCallTakesTheBestCallHeMayServePriorityThenAge) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("pc");
  const auto normal = w.queue(t, "normal");
  const auto urgent = w.queue(t, "urgent", {}, "priority = 10");
  const auto french = w.queue(t, "french", {{"french", 1}}, "priority = 20");
  w.route_point(t, "rp-n", normal);
  w.route_point(t, "rp-u", urgent);
  w.route_point(t, "rp-f", french);
  const auto old_normal = decide(pool, offer_at("rp-n"));
  w.backdate_wait(old_normal.call_id, 300);
  const auto not_for_him = decide(pool, offer_at("rp-f"));
  const auto new_urgent = decide(pool, offer_at("rp-u"));
  const auto op = w.operator_(t, "a", {{"english", 5}});
  // an operator of a tenant where nobody waits gets nothing (and 0056 returns before any lock)
  const auto elsewhere = w.operator_(w.tenant("pc-other"), "b", {{"english", 5}});
  const auto nothing = sync(store::pick_call(pool, elsewhere, std::chrono::seconds(10)));
  ASSERT_TRUE(nothing.has_value());
  EXPECT_FALSE(nothing->has_value());
  EXPECT_EQ(w.scalar("SELECT state::text FROM presence WHERE operator_id = $1", elsewhere), "ready");
  std::vector<std::int64_t> taken;
  for (int i = 0; i < 3; ++i) {
    auto picked = sync(store::pick_call(pool, op, std::chrono::seconds(10)));
    ASSERT_TRUE(picked.has_value());
    if (!*picked) break;
    taken.push_back((*picked)->call_id);
    EXPECT_EQ((*picked)->device, "a-" + std::to_string(t));
    w.finish_call(op);
  }
  EXPECT_EQ(taken, (std::vector<std::int64_t>{new_urgent.call_id, old_normal.call_id}));
  EXPECT_EQ(w.scalar("SELECT count(*) FROM waiting_calls WHERE call_id = $1", not_for_him.call_id), "1");
}

// ---- the call record of a decision -------------------------------------------------------------------

TEST(RoutingSql, TheCallsRowSaysItsQueueWhicheverWayTheCallWasServed) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("rec");
  const auto q = w.queue(t, "q", {{"english", 1}});
  const auto backup = w.queue(t, "backup", {{"french", 1}});
  const auto first = w.queue(t, "first", {{"spanish", 1}},
                             "overflow_queue_id = " + std::to_string(backup) + ", overflow_after_seconds = 0");
  w.route_point(t, "rp", q);
  w.route_point(t, "rp-first", first);
  const auto record = [&](std::int64_t call_id) {
    return w.scalar(
        "SELECT queue_id || ' ' || coalesce(final_queue_id::text, '-') || ' ' || (queued_at = offered_at) || ' ' || "
        "(SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events e WHERE e.call_id = c.call_id) "
        "FROM calls c WHERE call_id = $1",
        call_id);
  };
  const auto queue_text = [](std::int64_t id) { return std::to_string(id); };

  // an operator at once: first queue, final queue and queue time written with the reservation
  const auto english = w.operator_(t, "english", {{"english", 3}});
  const auto at_once = decide(pool, offer_at("rp"));
  ASSERT_EQ(at_once.kind, route_kind::operator_reserved);
  EXPECT_EQ(record(at_once.call_id), queue_text(q) + " " + queue_text(q) + " true reserved");
  EXPECT_EQ(w.scalar("SELECT count(*) FROM waiting_calls"), "0");

  // queued, then taken by an operator who became ready
  const auto queued = decide(pool, offer_at("rp"));
  ASSERT_EQ(queued.kind, route_kind::queued);
  EXPECT_EQ(record(queued.call_id), queue_text(q) + " - true offered");
  w.finish_call(english);
  ASSERT_TRUE(sync(store::pick_call(pool, english, std::chrono::seconds(10)))->has_value());
  EXPECT_EQ(record(queued.call_id), queue_text(q) + " " + queue_text(q) + " true offered,reserved");

  // overflow at once: offered to the backup queue from the start, and served from it
  const auto spilled = decide(pool, offer_at("rp-first"));
  ASSERT_EQ(spilled.kind, route_kind::queued);
  EXPECT_EQ(w.scalar("SELECT also_queue_ids::text FROM waiting_calls WHERE call_id = $1", spilled.call_id),
            "{" + queue_text(backup) + "}");
  const auto french = w.operator_(t, "french", {{"french", 2}});
  const auto served = recheck(pool, spilled.call_id);
  EXPECT_EQ(served.kind, route_kind::operator_reserved);
  EXPECT_EQ(served.operator_id, french);
  EXPECT_EQ(record(spilled.call_id), queue_text(first) + " " + queue_text(first) + " true offered,reserved");

  // an admin's pick_operator only chooses and reserves: the call still says its queues, and the
  // journal who was reserved
  w.exec(R"(CREATE OR REPLACE FUNCTION pick_operator(c calls, w waiting_calls, p_reserve_seconds integer DEFAULT 10)
    RETURNS TABLE (operator_id bigint, device text) LANGUAGE plpgsql AS $$
    #variable_conflict use_column
    BEGIN
      RETURN QUERY
      WITH candidate AS (
        SELECT p.operator_id FROM presence p
         WHERE p.tenant_id = w.tenant_id AND p.state = 'ready' ORDER BY p.operator_id DESC LIMIT 1
         FOR UPDATE SKIP LOCKED)
      UPDATE presence p SET state = 'reserved', current_call_id = w.call_id, since = now(),
             reserved_until = now() + make_interval(secs => p_reserve_seconds)
        FROM candidate cand WHERE p.operator_id = cand.operator_id
      RETURNING p.operator_id, p.device;
    END $$)");
  const auto newest = w.operator_(t, "newest", {});
  const auto by_admin = decide(pool, offer_at("rp"));
  ASSERT_EQ(by_admin.kind, route_kind::operator_reserved);
  EXPECT_EQ(by_admin.operator_id, newest);
  EXPECT_EQ(record(by_admin.call_id), queue_text(q) + " " + queue_text(q) + " true reserved");
}

// ---- reservations, screen pop ------------------------------------------------------------------------

TEST(RoutingSql, ReservationsExpireConfirmAndRelease) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("res");
  w.route_point(t, "rp", w.queue(t, "q"));
  const auto op = w.operator_(t, "a", {});
  auto offer = offer_at("rp");
  offer.reservation = std::chrono::seconds(0);  // expires at once
  const auto d = decide(pool, offer);
  ASSERT_EQ(d.kind, route_kind::operator_reserved);
  EXPECT_EQ(w.scalar("SELECT state FROM presence WHERE operator_id = $1", op), "reserved");
  auto expired = sync(store::expire_reservations(pool));
  ASSERT_TRUE(expired.has_value());
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].operator_id, op);
  EXPECT_EQ((*expired)[0].call_id, d.call_id);
  EXPECT_EQ(w.scalar("SELECT state FROM presence WHERE operator_id = $1", op), "ready");
  EXPECT_EQ(sync(store::confirm_reservation(pool, op, d.call_id)).value(), false);  // gone

  const auto again = decide(pool, offer_at("rp"));
  EXPECT_EQ(sync(store::confirm_reservation(pool, op, again.call_id)).value(), true);
  EXPECT_EQ(w.scalar("SELECT state || ' ' || (reserved_until IS NULL) FROM presence WHERE operator_id = $1", op),
            "ringing true");
  EXPECT_TRUE(sync(store::expire_reservations(pool))->empty());
  w.finish_call(op);

  const auto third = decide(pool, offer_at("rp"));
  EXPECT_EQ(sync(store::release_reservation(pool, op, third.call_id)).value(), true);
  EXPECT_EQ(w.scalar("SELECT state FROM presence WHERE operator_id = $1", op), "ready");
}

TEST(RoutingSql, ScreenPopIsTheCallersCustomerRowInTheCallsTenant) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("pop");
  const auto other = w.tenant("other");
  w.route_point(t, "rp", w.queue(t, "q"));
  w.exec("INSERT INTO customers (tenant_id, phone, name, tier) VALUES ($1, '+777', 'Ada', 'vip')", t);
  w.exec("INSERT INTO customers (tenant_id, phone, name) VALUES ($1, '+777', 'Not Ada')", other);
  const auto known = decide(pool, offer_at("rp", "+777", {{"order", "42"}}));
  const auto pop = sync(store::screen_pop(pool, known.call_id));
  ASSERT_TRUE(pop.has_value());
  ASSERT_TRUE(pop->has_value());
  EXPECT_NE((*pop)->find("\"name\": \"Ada\""), std::string::npos) << **pop;
  EXPECT_NE((*pop)->find("\"tier\": \"vip\""), std::string::npos) << **pop;
  const auto stranger = decide(pool, offer_at("rp", "+999"));
  EXPECT_FALSE(sync(store::screen_pop(pool, stranger.call_id))->has_value());
  EXPECT_EQ(w.scalar("SELECT ivr_data->>'order' FROM calls WHERE call_id = $1", known.call_id), "42");
}

// A tenant whose route point "rp" leads to queue "q", with one known caller: +777, Ada.
std::int64_t tenant_with_known_caller(routing_world& w, const std::string& name) {
  const auto t = w.tenant(name);
  w.route_point(t, "rp", w.queue(t, "q"));
  w.exec("INSERT INTO customers (tenant_id, phone, name) VALUES ($1, '+777', 'Ada')", t);
  return t;
}

void expect_pop_of_ada(bool customer_read, const std::optional<std::string>& customer) {
  EXPECT_TRUE(customer_read);
  ASSERT_TRUE(customer.has_value());
  EXPECT_NE(customer->find("\"name\": \"Ada\""), std::string::npos) << *customer;
}

// The admin replaces screen_pop with `body`, which fails: the next call still reserves `op` and is
// stored, and only its pop is missing.
void expect_reserved_without_pop(routing_world& w, store::connection_pool& pool, std::int64_t op,
                                 const std::string& body) {
  w.exec("CREATE OR REPLACE FUNCTION screen_pop(p_call_id bigint) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN " + body +
         " END $$");
  const auto d = decide(pool, offer_at("rp", "+777"));
  EXPECT_EQ(d.kind, store::route_kind::operator_reserved);
  EXPECT_FALSE(d.customer_read);
  EXPECT_EQ(w.scalar("SELECT state || ' ' || current_call_id FROM presence WHERE operator_id = $1", op),
            "reserved " + std::to_string(d.call_id));
  EXPECT_EQ(w.scalar("SELECT count(*) FROM calls WHERE call_id = $1", d.call_id), "1");
}

TEST(RoutingSql, AReservedOperatorsDecisionCarriesTheScreenPopAndABrokenPopNeverCostsTheDecision) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = tenant_with_known_caller(w, "pop");
  const auto ada = w.operator_(t, "ada", {});
  const auto known = decide(pool, offer_at("rp", "+777"));
  ASSERT_EQ(known.kind, store::route_kind::operator_reserved);
  expect_pop_of_ada(known.customer_read, known.customer);
  w.finish_call(ada);
  const auto stranger = decide(pool, offer_at("rp", "+999"));
  ASSERT_EQ(stranger.kind, store::route_kind::operator_reserved);
  EXPECT_TRUE(stranger.customer_read);
  EXPECT_FALSE(stranger.customer.has_value());
  w.finish_call(ada);
  // An admin's screen_pop that fails: the operator is still reserved, the pop is read later.
  expect_reserved_without_pop(w, pool, ada, "RAISE EXCEPTION 'the CRM is down';");
}

// A CRM lookup that runs into statement_timeout is cancelled; the reservation it was asked about
// stands (the pop's subtransaction catches the cancel too).
TEST(RoutingSql, AScreenPopPastTheStatementTimeoutCostsThePopNotTheReservation) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1, .statement_timeout = std::chrono::milliseconds(300)});
  const auto t = tenant_with_known_caller(w, "pop-slow");
  const auto ada = w.operator_(t, "ada", {});
  expect_reserved_without_pop(w, pool, ada, "PERFORM pg_sleep(5); RETURN '{}';");
}

// The other ways a call reaches an operator bring the pop in the same statement too: a waiting
// call taken by an operator who becomes ready (pick_call), and one found at its timer (recheck).
TEST(RoutingSql, AWaitingCallHandedToAnOperatorCarriesItsScreenPop) {
  routing_world w;
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = tenant_with_known_caller(w, "pop-wait");
  const auto waiting = decide(pool, offer_at("rp", "+777"));
  ASSERT_EQ(waiting.kind, store::route_kind::queued);
  EXPECT_FALSE(waiting.customer_read);  // no operator, no pop
  const auto ada = w.operator_(t, "ada", {});
  auto picked = sync(store::pick_call(pool, ada, std::chrono::seconds(10)));
  ASSERT_TRUE(picked.has_value() && picked->has_value());
  EXPECT_EQ((*picked)->call_id, waiting.call_id);
  expect_pop_of_ada((*picked)->customer_read, (*picked)->customer);
  w.finish_call(ada);

  w.exec("UPDATE presence SET state = 'not_ready', reason = 'break' WHERE operator_id = $1", ada);
  const auto later = decide(pool, offer_at("rp", "+777"));
  ASSERT_EQ(later.kind, store::route_kind::queued);
  w.exec("UPDATE presence SET state = 'ready', reason = NULL WHERE operator_id = $1", ada);
  const auto found = recheck(pool, later.call_id);
  ASSERT_EQ(found.kind, store::route_kind::operator_reserved);
  expect_pop_of_ada(found.customer_read, found.customer);
}

}  // namespace
}  // namespace switchboard
