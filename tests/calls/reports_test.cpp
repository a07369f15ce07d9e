// Reports and live statistics on a real PostgreSQL: a hand-made day of calls with exact figures
// in every view and live function, tenant sessions that see only their own rows, and live
// figures equal to an independent recount from the calls table.
#include "coro_test.hpp"
#include "switchboard/store/pool.hpp"
#include "switchboard/store/stats_queries.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <pqxx/pqxx>

#include <sstream>

namespace switchboard {
namespace {

namespace asio = boost::asio;

// Acme (Europe/Berlin) on Monday 2026-03-02, seen at 11:00 local; tenant 2 has one call.
// sales: c1 answered in 10 s, c2 in 30 s (over its 20 s target), c3 abandoned after 5 s,
// c4 after 40 s (ringing), c5 overflowed, c6 answered in 15 s then transferred, c9 abandoned
// after 25 s at 00:30, c10 the evening before, c11 and c12 waiting now. support: c7.
constexpr const char* fixture_sql = R"(
      INSERT INTO tenants (code, name, time_zone) VALUES ('acme', 'Acme', 'Europe/Berlin'), ('other', 'Other', 'UTC');
      INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) VALUES
        (1, 'alice', hash_password('pw'), 'Alice A', '2001'), (1, 'bob', hash_password('pw'), 'Bob B', '2002'),
        (2, 'carol', hash_password('pw'), 'Carol C', '3001');
      INSERT INTO queues (tenant_id, name, service_level_seconds) VALUES (1, 'sales', 20), (1, 'support', 30), (2, 'desk', 20);
      INSERT INTO skills (tenant_id, name) VALUES (1, 'tech');
      INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level) VALUES (1, 2, 1, 3);
      INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 1, 1, 2), (1, 2, 1, 5);
      -- (pbx id, tenant, queue, first operator, last operator, offered, wait, answered, disposition, talk, hold, wrap-up)
      INSERT INTO calls (tenant_id, pbx_call_id, queue_id, operator_id, last_operator_id, offered_at, answered_at,
                         ended_at, disposition, wait_seconds, talk_seconds, hold_seconds, wrap_up_seconds)
      SELECT v.tenant, v.pbx, v.queue, v.op, v.last_op, v.offered::timestamptz,
             CASE WHEN v.answered THEN v.offered::timestamptz + make_interval(secs => v.wait) END,
             CASE WHEN v.disp IS NOT NULL
                  THEN v.offered::timestamptz + make_interval(secs => v.wait + coalesce(v.talk, 0) + coalesce(v.hold, 0)) END,
             v.disp::call_disposition, CASE WHEN v.disp IS NOT NULL OR v.answered THEN v.wait END, v.talk, v.hold, v.wrap
        FROM (VALUES
          ('c1', 1, 1, 1, 1, '2026-03-02 09:00:00+01', 10, true, 'answered', 100, 20, 10),
          ('c2', 1, 1, 2, 2, '2026-03-02 09:10:00+01', 30, true, 'answered', 200, 0, 20),
          ('c3', 1, 1, NULL, NULL, '2026-03-02 09:20:00+01', 5, false, 'abandoned_waiting', NULL, NULL, NULL),
          ('c4', 1, 1, NULL, NULL, '2026-03-02 09:30:00+01', 40, false, 'abandoned_ringing', NULL, NULL, NULL),
          ('c5', 1, 1, NULL, NULL, '2026-03-02 10:05:00+01', 60, false, 'overflowed', NULL, NULL, NULL),
          ('c6', 1, 1, 1, 2, '2026-03-02 10:15:00+01', 15, true, 'transferred', 50, 10, 0),
          ('c7', 1, 2, 2, 2, '2026-03-02 10:20:00+01', 25, true, 'answered', 90, 0, 30),
          ('c8', 2, 3, 3, 3, '2026-03-02 09:00:00+00', 5, true, 'answered', 60, 0, 0),
          ('c9', 1, 1, NULL, NULL, '2026-03-02 00:30:00+01', 25, false, 'abandoned_waiting', NULL, NULL, NULL),
          ('c10', 1, 1, 1, 1, '2026-03-01 23:30:00+01', 8, true, 'answered', 40, 0, 0),
          ('c11', 1, 1, NULL, NULL, '2026-03-02 10:58:00+01', 0, false, NULL, NULL, NULL, NULL),
          ('c12', 1, 1, NULL, NULL, '2026-03-02 10:59:30+01', 0, false, NULL, NULL, NULL, NULL)
        ) AS v (pbx, tenant, queue, op, last_op, offered, wait, answered, disp, talk, hold, wrap);
      INSERT INTO waiting_calls (call_id, tenant_id, queue_id, waiting_since, queue_since)
      SELECT call_id, tenant_id, queue_id, offered_at, offered_at FROM calls WHERE pbx_call_id IN ('c11', 'c12');
      -- the day's states before the current one (the current one is logged by the presence trigger)
      INSERT INTO presence_history (tenant_id, operator_id, state, reason, at) VALUES
        (1, 1, 'ready', NULL, '2026-03-01 23:00+01'), (1, 1, 'logged_out', NULL, '2026-03-02 00:30+01'),
        (1, 1, 'ready', NULL, '2026-03-02 09:00+01'), (1, 1, 'talking', NULL, '2026-03-02 09:30+01'),
        (1, 1, 'wrap_up', NULL, '2026-03-02 10:00+01'), (1, 1, 'not_ready', 'break', '2026-03-02 10:10+01'),
        (1, 2, 'ready', NULL, '2026-03-02 09:00+01'), (1, 2, 'talking', NULL, '2026-03-02 10:00+01'),
        (1, 2, 'held', NULL, '2026-03-02 10:40+01'), (1, 2, 'talking', NULL, '2026-03-02 10:45+01');
      UPDATE presence SET state = 'ready', device = '2001', since = '2026-03-02 10:30+01' WHERE operator_id = 1;
      UPDATE presence SET state = 'wrap_up', device = '2002', since = '2026-03-02 10:50+01' WHERE operator_id = 2;
      UPDATE presence SET state = 'ready', device = '3001', since = '2026-03-02 08:00+00' WHERE operator_id = 3;
)";

// 11:00 in Berlin on the fixture's day.
const store::wall_time eleven = std::chrono::sys_days{std::chrono::year{2026} / 3 / 2} + std::chrono::hours{10};

class Reports : public ::testing::Test {
 protected:
  void SetUp() override { db_.exec(fixture_sql); }

  // Rows of `sql` as "a|b|c" lines joined by ";".
  std::string rows(const std::string& sql, const std::string& setup = "") const {
    pqxx::connection c(db_.url());
    pqxx::work tx(c);
    if (!setup.empty()) tx.exec(setup);
    std::ostringstream out;
    bool first_row = true;
    for (const auto& row : tx.exec(sql)) {
      if (!first_row) out << ';';
      first_row = false;
      for (pqxx::row::size_type i = 0; i < row.size(); ++i)
        out << (i ? "|" : "") << (row[i].is_null() ? "" : row[i].c_str());
    }
    return out.str();
  }

  // Same, in a session of tenant `tenant` as its reporting tools connect.
  std::string tenant_rows(int tenant, const std::string& sql) const {
    return rows(sql, "SET LOCAL ROLE switchboard_tenant; SELECT set_config('switchboard.tenant_id', '" +
                         std::to_string(tenant) + "', true)");
  }

  std::vector<store::live_queue_stats> live_queues(std::optional<store::wall_time> at) {
    std::vector<store::live_queue_stats> out;
    asio::io_context loop;
    testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
      auto got = co_await store::queue_live_stats(pool_, 1, at);
      CO_ASSERT_TRUE(got.has_value());
      out = *got;
    });
    return out;
  }

  std::vector<store::live_operator_stats> live_operators(std::optional<store::wall_time> at) {
    std::vector<store::live_operator_stats> out;
    asio::io_context loop;
    testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
      auto got = co_await store::operator_live_stats(pool_, 1, at);
      CO_ASSERT_TRUE(got.has_value());
      out = *got;
    });
    return out;
  }

  testing::test_database db_;
  store::connection_pool pool_{{.url = db_.url(), .size = 1}};
};

TEST_F(Reports, CallsByHourGiveTheExactFiguresOfTheDay) {
  EXPECT_EQ(rows("SELECT queue_id, hour, hour_start AT TIME ZONE 'UTC', offered, answered, answered_within_sl, "
                 "abandoned, abandoned_within_sl, overflowed, transferred, handled, wait_seconds_answered, "
                 "handle_seconds, service_level_percent, asa_seconds, aht_seconds, abandon_rate_percent "
                 "FROM report_calls_by_hour WHERE tenant_id = 1 ORDER BY queue_id, hour"),
            "1|2026-03-01 23:00:00|2026-03-01 22:00:00|1|1|1|0|0|0|0|1|8.000|40.000|100.00|8.00|40.00|0.00;"
            "1|2026-03-02 00:00:00|2026-03-01 23:00:00|1|0|0|1|0|0|0|0|0|0|0.00|||100.00;"
            "1|2026-03-02 09:00:00|2026-03-02 08:00:00|4|2|1|2|1|0|0|2|40.000|350.000|33.33|20.00|175.00|50.00;"
            "1|2026-03-02 10:00:00|2026-03-02 09:00:00|4|1|1|0|0|1|1|1|15.000|60.000|100.00|15.00|60.00|0.00;"
            "2|2026-03-02 10:00:00|2026-03-02 09:00:00|1|1|1|0|0|0|0|1|25.000|120.000|100.00|25.00|120.00|0.00");
}

TEST_F(Reports, RangedReportsReadOnlyTheirRangeAndTenant) {
  EXPECT_EQ(rows("SELECT count(*), sum(offered) FROM report_queue_hours('2026-03-02 00:00 Europe/Berlin', "
                 "'2026-03-03 00:00 Europe/Berlin', 1)"),
            "4|10");
  EXPECT_EQ(rows("SELECT queue_name, day, offered, service_level_percent FROM report_queue_days("
                 "'2026-03-02 00:00 Europe/Berlin', '2026-03-03 00:00 Europe/Berlin', 1) ORDER BY queue_id"),
            "sales|2026-03-02|9|40.00;support|2026-03-02|1|100.00");
  EXPECT_EQ(rows("SELECT login, calls_answered, aht_seconds FROM report_operator_days("
                 "'2026-03-02 00:00 Europe/Berlin', '2026-03-09 00:00 Europe/Berlin', 1) ORDER BY operator_id"),
            "alice|2|95.00;bob|2|170.00");
}

TEST_F(Reports, QueuesByDayAddUpTheHours) {
  EXPECT_EQ(rows("SELECT tenant_id, queue_name, day, offered, answered, answered_within_sl, abandoned, "
                 "abandoned_within_sl, overflowed, transferred, talk_seconds, hold_seconds, wrap_up_seconds, "
                 "service_level_percent, asa_seconds, aht_seconds, abandon_rate_percent "
                 "FROM report_queues ORDER BY tenant_id, queue_id, day"),
            "1|sales|2026-03-01|1|1|1|0|0|0|0|40.000|0.000|0.000|100.00|8.00|40.00|0.00;"
            "1|sales|2026-03-02|9|3|2|3|1|1|1|350.000|30.000|30.000|40.00|18.33|136.67|33.33;"
            "1|support|2026-03-02|1|1|1|0|0|0|0|90.000|0.000|30.000|100.00|25.00|120.00|0.00;"
            "2|desk|2026-03-02|1|1|1|0|0|0|0|60.000|0.000|0.000|100.00|5.00|60.00|0.00");
}

TEST_F(Reports, OperatorsByDayCreditTheOperatorWhoAnswered) {
  EXPECT_EQ(rows("SELECT operator_id, login, day, calls_answered, transferred, handled, talk_seconds, hold_seconds, "
                 "wrap_up_seconds, handle_seconds, aht_seconds FROM report_operators ORDER BY operator_id, day"),
            "1|alice|2026-03-01|1|0|1|40.000|0.000|0.000|40.000|40.00;"
            "1|alice|2026-03-02|2|1|2|150.000|30.000|10.000|190.000|95.00;"
            "2|bob|2026-03-02|2|0|2|290.000|0.000|50.000|340.000|170.00;"
            "3|carol|2026-03-02|1|0|1|60.000|0.000|0.000|60.000|60.00");
}

TEST_F(Reports, LiveQueueStatsAtElevenGiveTheExactFigures) {
  auto queues = live_queues(eleven);
  ASSERT_EQ(queues.size(), 2u);
  const auto& sales = queues[0];
  EXPECT_EQ(sales.queue_id, 1);
  EXPECT_EQ(sales.name, "sales");
  EXPECT_EQ(sales.service_level_seconds, 20);
  EXPECT_EQ(sales.waiting, 2);
  EXPECT_DOUBLE_EQ(sales.longest_wait_seconds, 120);
  EXPECT_EQ(sales.ready, 1);  // alice (no skills needed)
  EXPECT_EQ(sales.busy, 1);   // bob in wrap-up
  EXPECT_EQ(sales.not_ready, 0);
  EXPECT_EQ(sales.logged_in, 2);
  EXPECT_EQ(sales.offered, 9);  // c10 was the day before
  EXPECT_EQ(sales.answered, 3);
  EXPECT_EQ(sales.answered_within_sl, 2);
  EXPECT_EQ(sales.abandoned, 3);
  EXPECT_EQ(sales.abandoned_within_sl, 1);
  EXPECT_EQ(sales.overflowed, 1);
  EXPECT_EQ(sales.transferred, 1);
  EXPECT_EQ(sales.handled, 3);
  EXPECT_EQ(sales.service_level_percent, 40.0);  // 2 / (3 + 3 - 1)
  EXPECT_EQ(sales.asa_seconds, 18.33);           // (10 + 30 + 15) / 3
  EXPECT_EQ(sales.aht_seconds, 136.67);          // (130 + 220 + 60) / 3
  EXPECT_EQ(sales.abandon_rate_percent, 33.33);  // 3 / 9

  const auto& support = queues[1];
  EXPECT_EQ(support.name, "support");
  EXPECT_EQ(support.waiting, 0);
  EXPECT_DOUBLE_EQ(support.longest_wait_seconds, 0);
  EXPECT_EQ(support.ready, 0);  // alice's tech level 2 is under its minimum 3
  EXPECT_EQ(support.busy, 1);
  EXPECT_EQ(support.offered, 1);
  EXPECT_EQ(support.service_level_percent, 100.0);
  EXPECT_EQ(support.asa_seconds, 25.0);
  EXPECT_EQ(support.aht_seconds, 120.0);
  EXPECT_EQ(support.abandon_rate_percent, 0.0);
}

TEST_F(Reports, LiveOperatorStatsAtElevenGiveTheExactFigures) {
  auto ops = live_operators(eleven);
  ASSERT_EQ(ops.size(), 2u);
  const auto& alice = ops[0];
  EXPECT_EQ(alice.login, "alice");
  EXPECT_EQ(alice.full_name, "Alice A");
  EXPECT_EQ(alice.state, "ready");
  EXPECT_EQ(alice.reason, "");
  EXPECT_DOUBLE_EQ(alice.seconds_in_state, 1800);
  EXPECT_EQ(alice.current_call_id, std::nullopt);
  EXPECT_EQ(alice.calls_today, 2);
  EXPECT_EQ(alice.handled, 2);
  EXPECT_DOUBLE_EQ(alice.talk_seconds, 150);
  EXPECT_DOUBLE_EQ(alice.hold_seconds, 30);
  EXPECT_DOUBLE_EQ(alice.wrap_up_seconds, 10);
  EXPECT_DOUBLE_EQ(alice.handle_seconds, 190);
  EXPECT_EQ(alice.aht_seconds, 95.0);
  // ready from the evening before until 00:30, then from 09:00; not ready 10:10-10:30
  EXPECT_DOUBLE_EQ(alice.logged_in_seconds, 9000);
  EXPECT_DOUBLE_EQ(alice.not_ready_seconds, 1200);
  EXPECT_DOUBLE_EQ(alice.busy_seconds, 2400);
  EXPECT_EQ(alice.occupancy_percent, 30.77);  // 2400 / 7800

  const auto& bob = ops[1];
  EXPECT_EQ(bob.state, "wrap_up");
  EXPECT_DOUBLE_EQ(bob.seconds_in_state, 600);
  EXPECT_EQ(bob.calls_today, 2);
  EXPECT_DOUBLE_EQ(bob.handle_seconds, 340);
  EXPECT_EQ(bob.aht_seconds, 170.0);
  EXPECT_DOUBLE_EQ(bob.logged_in_seconds, 7200);
  EXPECT_DOUBLE_EQ(bob.not_ready_seconds, 0);
  EXPECT_DOUBLE_EQ(bob.busy_seconds, 3600);
  EXPECT_EQ(bob.occupancy_percent, 50.0);
}

TEST_F(Reports, LiveStatsEqualARecountFromTheCallsTable) {
  // Independent of the views: the calls of the fixture's Berlin day, counted straight from calls.
  auto recount = rows(R"(
    SELECT q.queue_id,
           count(c.call_id),
           count(c.answered_at),
           count(*) FILTER (WHERE c.disposition IN ('abandoned_waiting', 'abandoned_ringing')),
           count(*) FILTER (WHERE c.answered_at - c.offered_at <= make_interval(secs => q.service_level_seconds)),
           count(*) FILTER (WHERE c.disposition IN ('abandoned_waiting', 'abandoned_ringing')
                              AND c.ended_at - c.offered_at > make_interval(secs => q.service_level_seconds)),
           coalesce(round(avg(extract(epoch FROM c.answered_at - c.offered_at)), 2)::text, ''),
           coalesce(round(avg(c.talk_seconds + c.hold_seconds + c.wrap_up_seconds)
                              FILTER (WHERE c.ended_at IS NOT NULL), 2)::text, ''),
           (SELECT count(*) FROM waiting_calls w WHERE w.queue_id = q.queue_id)
      FROM queues q
      LEFT JOIN calls c ON c.queue_id = q.queue_id
                       AND c.offered_at >= '2026-03-02 00:00 Europe/Berlin'
                       AND c.offered_at < '2026-03-03 00:00 Europe/Berlin'
     WHERE q.tenant_id = 1
     GROUP BY q.queue_id ORDER BY q.queue_id)");
  std::ostringstream live;
  bool first = true;
  auto fixed2 = [](std::optional<double> v) {
    if (!v) return std::string();
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(2);
    s << *v;
    return s.str();
  };
  for (const auto& q : live_queues(eleven)) {
    if (!first) live << ';';
    first = false;
    live << q.queue_id << '|' << q.offered << '|' << q.answered << '|' << q.abandoned << '|' << q.answered_within_sl
         << '|' << (q.abandoned - q.abandoned_within_sl) << '|' << fixed2(q.asa_seconds) << '|' << fixed2(q.aht_seconds)
         << '|' << q.waiting;
  }
  EXPECT_EQ(live.str(), recount);
  EXPECT_EQ(recount, "1|9|3|3|2|2|18.33|136.67|2;2|1|1|0|1|0|25.00|120.00|0");

  // Operators: calls each answered that day and their handle time, straight from calls.
  auto ops_recount = rows(R"(
    SELECT o.operator_id, count(c.call_id), coalesce(sum(c.talk_seconds + c.hold_seconds + c.wrap_up_seconds), 0)
      FROM operators o
      LEFT JOIN calls c ON c.operator_id = o.operator_id
                       AND c.answered_at >= '2026-03-02 00:00 Europe/Berlin'
                       AND c.answered_at < '2026-03-03 00:00 Europe/Berlin'
     WHERE o.tenant_id = 1 GROUP BY o.operator_id ORDER BY o.operator_id)");
  std::ostringstream ops;
  first = true;
  for (const auto& o : live_operators(eleven)) {
    if (!first) ops << ';';
    first = false;
    ops << o.operator_id << '|' << o.calls_today << '|' << o.handle_seconds;
  }
  EXPECT_EQ(ops.str(), "1|2|190;2|2|340");
  EXPECT_EQ(ops_recount, "1|2|190.000;2|2|340.000");
}

TEST_F(Reports, ATenantSessionSeesOnlyItsOwnRows) {
  for (const char* view : {"report_call_facts", "report_calls_by_hour", "report_queues", "report_operators",
                           "report_queue_operators", "presence_history"}) {
    EXPECT_EQ(tenant_rows(2, std::string("SELECT count(*), min(tenant_id), max(tenant_id) FROM ") + view), "1|2|2")
        << view;
    EXPECT_NE(tenant_rows(1, std::string("SELECT count(*) FROM ") + view), "0") << view;
    EXPECT_EQ(tenant_rows(1, std::string("SELECT count(*) FILTER (WHERE tenant_id <> 1) FROM ") + view), "0") << view;
  }
  EXPECT_EQ(tenant_rows(2, "SELECT queue_id, name, offered, answered FROM queue_live_stats(2, '2026-03-02 12:00Z')"),
            "3|desk|1|1");
  EXPECT_EQ(tenant_rows(2, "SELECT count(*) FROM queue_live_stats(1)"), "0");
  EXPECT_EQ(tenant_rows(2, "SELECT login, state, calls_today FROM operator_live_stats(2, '2026-03-02 12:00Z')"),
            "carol|ready|1");
  EXPECT_EQ(tenant_rows(2, "SELECT count(*) FROM operator_live_stats(1)"), "0");
  EXPECT_EQ(tenant_rows(2, "SELECT count(*) FROM report_queue_hours('-infinity', 'infinity', 1)"), "0");
  EXPECT_EQ(tenant_rows(2, "SELECT count(*) FROM report_operator_days('-infinity', 'infinity', 1)"), "0");
  // with no tenant set, a tenant session sees nothing at all
  EXPECT_EQ(rows("SELECT count(*) FROM report_call_facts", "SET LOCAL ROLE switchboard_tenant"), "0");
}

TEST_F(Reports, PresenceChangesAreLoggedAndLiveStatsReadThemNow) {
  db_.exec("UPDATE presence SET state = 'not_ready', reason = 'lunch' WHERE operator_id = 1");
  EXPECT_EQ(rows("SELECT state, reason FROM presence_history WHERE operator_id = 1 ORDER BY at DESC, history_id DESC "
                 "LIMIT 1"),
            "not_ready|lunch");
  db_.exec("UPDATE presence SET reason = 'meeting' WHERE operator_id = 1");
  // break (the fixture's), lunch, meeting
  EXPECT_EQ(rows("SELECT count(*) FROM presence_history WHERE operator_id = 1 AND state = 'not_ready'"), "3");
  db_.exec("UPDATE presence SET device = '2009' WHERE operator_id = 1");  // no change of state: no row
  EXPECT_EQ(rows("SELECT count(*) FROM presence_history WHERE operator_id = 1"), "9");
  // the followed columns named but unchanged: the trigger runs (no WHEN clause since 0053), no row
  db_.exec("UPDATE presence SET state = state, reason = reason, calls_handled = calls_handled WHERE operator_id = 1");
  EXPECT_EQ(rows("SELECT count(*) FROM presence_history WHERE operator_id = 1"), "9");

  auto queues = live_queues(std::nullopt);  // now: the fixture's calls are history, the waiting calls are not
  ASSERT_EQ(queues.size(), 2u);
  EXPECT_EQ(queues[0].waiting, 2);
  EXPECT_GE(queues[0].longest_wait_seconds, 120);
  EXPECT_EQ(queues[0].ready, 0);
  EXPECT_EQ(queues[0].not_ready, 1);
  EXPECT_EQ(queues[0].busy, 1);
  auto ops = live_operators(std::nullopt);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].state, "not_ready");
  EXPECT_EQ(ops[0].reason, "meeting");
  EXPECT_EQ(ops[1].state, "wrap_up");
}

}  // namespace
}  // namespace switchboard
