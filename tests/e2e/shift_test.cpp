// A simulated shift end to end: the PBX simulator's generator offers a few thousand calls at
// three route points (sales, support, billing: three queues with their own skills, two of them
// overflowing into a general queue) to 50 operators at their desktops, with a stretch of
// overload in the middle, so calls wait, overflow, are default-routed by the PBX, and callers
// give up while waiting and while ringing. Afterwards the records, the journal, the presence
// history, the statistics, the screen pops and the simulator's own counts must all agree.
#include "e2e_fixture.hpp"

#include <cstdio>
#include <map>
#include <set>

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using e2e::asio::awaitable;

constexpr int operators = 50;
constexpr int calls_wanted = 2000;

// Queues: 1 general (anyone with the general skill), 2 sales (also offered to general after 2 s
// of waiting), 3 support (moves to general after 3 s), 4 billing (waits). Operators 1-20 sell,
// 21-35 support, 36-45 bill; 1-5, 21-25, 36-40 and 46-50 also take general calls. Callers
// +49305550001..0500; the first 400 are customers.
constexpr const char* seed_sql = R"(
  INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
  INSERT INTO skills (tenant_id, name) VALUES (1, 'general'), (1, 'sales'), (1, 'support'), (1, 'billing');
  INSERT INTO queues (tenant_id, name, strategy, service_level_seconds, wrap_up_seconds)
    VALUES (1, 'general', 'longest_idle', 10, 1);
  INSERT INTO queues (tenant_id, name, strategy, service_level_seconds, wrap_up_seconds, overflow_queue_id,
                      overflow_after_seconds)
    VALUES (1, 'sales', 'longest_idle', 10, 1, 1, 2);
  INSERT INTO queues (tenant_id, name, strategy, service_level_seconds, wrap_up_seconds, overflow_queue_id,
                      max_wait_seconds)
    VALUES (1, 'support', 'fewest_calls', 10, 1, 1, 3);
  INSERT INTO queues (tenant_id, name, strategy, service_level_seconds, wrap_up_seconds)
    VALUES (1, 'billing', 'best_skill', 10, 1);
  INSERT INTO queue_skills (tenant_id, queue_id, skill_id) VALUES (1, 1, 1), (1, 2, 2), (1, 3, 3), (1, 4, 4);
  INSERT INTO route_points (tenant_id, device, name, default_queue_id)
    VALUES (1, '7001', 'Sales', 2), (1, '7002', 'Support', 3), (1, '7003', 'Billing', 4);
  INSERT INTO operators (tenant_id, login, password_hash, full_name, extension)
    SELECT 1, 'op' || lpad(i::text, 2, '0'), (SELECT hash_password('pw')), 'Operator ' || i, (3000 + i)::text
      FROM generate_series(1, 50) i;
  INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role)
    VALUES (1, 'sam', hash_password('pw'), 'Sam', '3999', 'supervisor');
  INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level)
    SELECT 1, i, 2, 1 + i % 9 FROM generate_series(1, 20) i
    UNION ALL SELECT 1, i, 3, 5 FROM generate_series(21, 35) i
    UNION ALL SELECT 1, i, 4, 1 + i % 7 FROM generate_series(36, 45) i
    UNION ALL SELECT 1, i, 1, 5 FROM generate_series(1, 50) i
               WHERE i <= 5 OR i BETWEEN 21 AND 25 OR i BETWEEN 36 AND 40 OR i >= 46;
  INSERT INTO customers (tenant_id, phone, name, tier)
    SELECT 1, '+4930555' || lpad(i::text, 4, '0'), 'Customer ' || i, CASE WHEN i % 10 = 0 THEN 'gold' ELSE 'standard' END
      FROM generate_series(1, 400) i;
)";

// Calls that leave their route point go to the default device, which is kept busy by a call
// of its own all shift: they queue there until the caller gives up, so the PBX's own routing
// never answers a call and every default-routed call is counted once.
const std::string default_device = "3099";

std::vector<std::string> all_phones() {
  std::vector<std::string> phones;
  for (int i = 1; i <= operators; ++i) phones.push_back(std::to_string(3000 + i));
  phones.push_back(default_device);
  return phones;
}

pbxsim::generator_config callers() {
  pbxsim::generator_config g;
  g.seed = 6;
  g.ivr_digits = {"lang=en", "lang=de", "lang=fr"};
  g.talk = {.kind = pbxsim::duration_dist::shape::uniform, .min = 300ms, .max = 1500ms};
  g.patience = pbxsim::duration_dist{.kind = pbxsim::duration_dist::shape::exponential, .mean = 5s, .max = 20s};
  return g;
}

class Shift : public e2e::end_to_end {
 protected:
  void SetUp() override {
    start(seed_sql, {.phones = all_phones(),
                     .route_points = {"7001", "7002", "7003"},
                     .default_device = default_device,
                     .pbx_route_timeout = 6s,
                     .auto_answer = 250ms,
                     .generator = callers(),
                     .router_route_timeout = 4000ms,
                     .stats_push = 250ms,
                     .database_connections = 4});
  }

  void TearDown() override {
    if (supervisor_) supervisor_->client->close();
    end_to_end::TearDown();
  }

  // The generator's rate per route point while fewer than `until` calls have been offered.
  awaitable<void> offer_at(double rate, std::uint64_t until) {
    sim_->set_rate(rate);
    while (sim_->stats().offered < until) co_await testing::sleep_for(100ms);
  }

  static std::int64_t pushed_answered(const desk::stats_event& stats) {
    std::int64_t answered = 0;
    for (const auto& q : stats.queues) answered += q.answered;
    return answered;
  }

  std::unique_ptr<e2e::desktop> supervisor_;
};

TEST_F(Shift, ThousandsOfCallsWithOverloadKeepRecordsStatisticsAndPopsConsistent) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 30s));
        // The default device is busy all shift with a call nobody routes.
        CO_ASSERT_TRUE(sim_->offer({.caller = "+491000", .dialled = default_device, .talk_time = 24h}).has_value());
        std::vector<std::pair<std::string, std::string>> staff_list;
        for (int i = 1; i <= operators; ++i) {
          char login[8];
          std::snprintf(login, sizeof login, "op%02d", i);
          staff_list.emplace_back(login, std::to_string(3000 + i));
        }
        CO_ASSERT_TRUE(co_await staff(staff_list));
        auto sam = co_await log_in("sam", "3999");
        CO_ASSERT_TRUE(sam.has_value());
        supervisor_ = std::make_unique<e2e::desktop>(std::move(*sam));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM presence WHERE state = 'ready'") == operators; }, 60s));

        // Below capacity, then well above it for a while, then calm again.
        co_await offer_at(8.0, calls_wanted / 4);
        co_await offer_at(18.0, calls_wanted * 7 / 10);
        co_await offer_at(8.0, calls_wanted + 1);  // + the default device's own call
        sim_->set_rate(0);

        // Every call ends (the patient ones at the default device too), every write lands, and
        // every operator finishes his wrap-up.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return sim_->stats().active_calls == 1 &&
                     centre_->counters().calls_ended + 0 == sim_->stats().offered - 1 && settled() &&
                     count("SELECT count(*) FROM presence WHERE state = 'ready'") == operators &&
                     count("SELECT count(*) FROM waiting_calls") == 0;
            },
            120s));
        co_await collect_offers();
        // The supervisor's figures catch up with the end of the shift (pushed when they change).
        for (auto waited = 0ms; waited < 30s; waited += 100ms) {
          co_await drain(*supervisor_);
          if (!supervisor_->received.stats.empty() &&
              pushed_answered(supervisor_->received.stats.back()) ==
                  count("SELECT count(*) FROM calls WHERE answered_at IS NOT NULL"))
            break;
          co_await testing::sleep_for(100ms);
        }
      },
      420s);

  const auto stats = sim_->stats();
  const auto n = count("SELECT count(*) FROM calls");
  std::printf(
      "shift: %lld calls; simulator offered=%llu answered=%llu abandoned=%llu default_routed=%llu "
      "routed_by_cti=%llu route_timeouts=%llu\n",
      static_cast<long long>(n), static_cast<unsigned long long>(stats.offered),
      static_cast<unsigned long long>(stats.answered), static_cast<unsigned long long>(stats.abandoned),
      static_cast<unsigned long long>(stats.default_routed), static_cast<unsigned long long>(stats.routed_by_cti),
      static_cast<unsigned long long>(stats.route_timeouts));
  for (const auto& row : rows("SELECT disposition, count(*) FROM calls GROUP BY 1 ORDER BY 1"))
    std::printf("  %s: %s\n", row[0].c_str(), row[1].c_str());

  if (HasFailure()) return;  // the shift did not finish: the checks below would only repeat it

  // Two writers side by side (the fixture's write_lanes): none lost or refused by PostgreSQL;
  // refused presence moves are allowed (a desktop may get there first).
  const auto& writes = centre_->write_counts();
  std::printf("  writes: %llu applied, %llu moves refused, %llu failed\n",
              static_cast<unsigned long long>(writes.applied), static_cast<unsigned long long>(writes.refused),
              static_cast<unsigned long long>(writes.failed));
  EXPECT_EQ(writes.failed, 0u);
  ASSERT_EQ(writes.batches.size(), 2u);
  std::printf("  batches: %llu on the first connection, %llu on the second\n",
              static_cast<unsigned long long>(writes.batches[0]), static_cast<unsigned long long>(writes.batches[1]));
  EXPECT_GT(writes.batches[1], 0u) << "the second writer was never used";
  // An answered call writes at least ringing, talking, wrap-up and ready, each with its call write.
  EXPECT_GE(writes.applied,
            8u * static_cast<std::uint64_t>(count("SELECT count(*) FROM calls WHERE answered_at IS NOT NULL")));

  // ---- exactly one complete, consistent record per offered call ------------------------------
  EXPECT_GE(n, calls_wanted);
  EXPECT_EQ(static_cast<std::uint64_t>(n), stats.offered - 1);  // all but the default device's own call
  EXPECT_EQ(static_cast<std::uint64_t>(n), stats.route_requests);
  EXPECT_EQ(count("SELECT count(DISTINCT pbx_call_id) FROM calls"), n);
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE ended_at IS NULL OR disposition IS NULL OR queue_id IS NULL"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE NOT (offered_at <= coalesce(queued_at, offered_at) "
                  "AND coalesce(queued_at, offered_at) <= coalesce(answered_at, ended_at) "
                  "AND coalesce(answered_at, ended_at) <= ended_at)"),
            0);
  // Durations are never negative and add up to the times.
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE wait_seconds IS NULL OR wait_seconds < 0 "
                  "OR abs(wait_seconds - extract(epoch FROM coalesce(answered_at, ended_at) - offered_at)) > 0.002"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE answered_at IS NOT NULL AND (talk_seconds IS NULL "
                  "OR hold_seconds IS NULL OR wrap_up_seconds IS NULL OR talk_seconds < 0 OR wrap_up_seconds < 0 "
                  "OR abs(talk_seconds + hold_seconds - extract(epoch FROM ended_at - answered_at)) > 0.002)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE answered_at IS NULL AND (talk_seconds IS NOT NULL "
                  "OR operator_id IS NOT NULL)"),
            0);
  // Answered exactly when an operator answered (nobody transfers in this shift).
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE (disposition = 'answered') <> (answered_at IS NOT NULL)"), 0);

  // ---- the simulator's counts agree with the records -----------------------------------------
  const auto answered = count("SELECT count(*) FROM calls WHERE disposition = 'answered'");
  const auto abandoned_waiting = count("SELECT count(*) FROM calls WHERE disposition = 'abandoned_waiting'");
  const auto abandoned_ringing = count("SELECT count(*) FROM calls WHERE disposition = 'abandoned_ringing'");
  const auto default_routed = count("SELECT count(*) FROM calls WHERE disposition = 'default_routed'");
  EXPECT_EQ(answered + abandoned_waiting + abandoned_ringing + default_routed, n);
  EXPECT_EQ(stats.answered, static_cast<std::uint64_t>(answered) + 1);  // + the default device's own call
  EXPECT_EQ(stats.routed_by_cti, static_cast<std::uint64_t>(answered + abandoned_ringing));
  EXPECT_EQ(stats.default_routed, static_cast<std::uint64_t>(default_routed));
  // Default-routed callers all gave up in the default device's queue.
  EXPECT_EQ(stats.abandoned, static_cast<std::uint64_t>(abandoned_waiting + abandoned_ringing + default_routed));

  // ---- overload did what overload does -------------------------------------------------------
  EXPECT_GT(abandoned_waiting, 0);
  EXPECT_GT(abandoned_ringing, 0);
  EXPECT_GT(default_routed, 0);
  EXPECT_GT(count("SELECT count(*) FROM calls WHERE queued_at IS NOT NULL AND wait_seconds > 2"), 0);
  // Sales calls were also offered to the general queue, support calls moved into it.
  EXPECT_GT(count("SELECT count(*) FROM call_events WHERE kind = 'overflowed' AND queue_id = 2 "
                  "AND detail->>'also_queue_id' = '1'"),
            0);
  EXPECT_GT(count("SELECT count(*) FROM call_events WHERE kind = 'overflowed' AND queue_id = 3 "
                  "AND detail->>'to_queue_id' = '1'"),
            0);
  EXPECT_GT(count("SELECT count(*) FROM calls WHERE queue_id = 3 AND final_queue_id = 1 AND answered_at IS NOT NULL"),
            0);
  // ... and general-only operators helped with them.
  EXPECT_GT(count("SELECT count(*) FROM calls WHERE operator_id > 45 AND queue_id IN (2, 3)"), 0);

  // ---- skills: every answering operator held the skills of the queue he answered for ---------
  // (the call's first queue, or a queue it overflowed to)
  EXPECT_EQ(count(R"(
    WITH qualified AS (
      SELECT c.call_id, q.queue_id
        FROM calls c
        JOIN queues q ON q.queue_id = c.queue_id
            OR q.queue_id IN (SELECT coalesce((e.detail->>'to_queue_id')::bigint, (e.detail->>'also_queue_id')::bigint)
                                FROM call_events e WHERE e.call_id = c.call_id AND e.kind = 'overflowed')
       WHERE c.answered_at IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM queue_skills qs WHERE qs.queue_id = q.queue_id
                            AND NOT EXISTS (SELECT 1 FROM operator_skills os WHERE os.operator_id = c.operator_id
                                               AND os.skill_id = qs.skill_id AND os.level >= qs.min_level)))
    SELECT count(*) FROM calls c WHERE c.answered_at IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM qualified x WHERE x.call_id = c.call_id))"),
            0);

  // ---- no operator was ever offered two calls at once ----------------------------------------
  // The presence history: reserved (picked for a call) only ever straight from ready.
  EXPECT_EQ(
      count("SELECT count(*) FROM (SELECT state, lag(state) OVER (PARTITION BY operator_id ORDER BY history_id) "
            "AS before FROM presence_history) h WHERE h.state = 'reserved' AND h.before IS DISTINCT FROM 'ready'"),
      0);
  // The desktops: after an offer, the next offer comes only once that call ended for him.
  std::map<std::int64_t, std::int64_t> desktop_of_operator;
  std::size_t pops = 0;
  for (const auto& d : desktops_) {
    std::optional<std::int64_t> current;
    for (const auto& step : d.received.timeline) {
      if (step.offer) {
        EXPECT_FALSE(current.has_value())
            << d.login << " offered call " << step.call_id << " while on call " << current.value_or(0);
        current = step.call_id;
        ++pops;
      } else if (step.state == desk::call_state::ended && current == step.call_id) {
        current.reset();
      }
    }
    EXPECT_FALSE(current.has_value()) << d.login << " still has call " << current.value_or(0);
  }

  // ---- screen pops: at the operator whose phone rang, with the right customer ----------------
  struct record {
    std::string caller, customer_name, queue_id, final_queue_id, operator_id, disposition;
  };
  std::map<std::int64_t, record> records;
  for (const auto& r : rows("SELECT c.call_id, c.caller, coalesce(cu.name, ''), c.queue_id, "
                            "coalesce(c.final_queue_id, c.queue_id), coalesce(c.operator_id::text, ''), c.disposition "
                            "FROM calls c LEFT JOIN customers cu ON cu.customer_id = c.customer_id"))
    records[std::stoll(r[0])] = {r[1], r[2], r[3], r[4], r[5], r[6]};
  std::set<std::pair<std::int64_t, std::int64_t>> popped;  // (call, operator)
  for (const auto& d : desktops_) {
    for (const auto& offer : d.received.offers) {
      popped.insert({offer.call.call_id, d.operator_id});
      const auto it = records.find(offer.call.call_id);
      ASSERT_NE(it, records.end()) << "pop of unknown call " << offer.call.call_id;
      const auto& r = it->second;
      EXPECT_EQ(offer.call.caller, r.caller);
      if (r.customer_name.empty()) {
        EXPECT_TRUE(offer.customer.is_null()) << offer.call.caller;
      } else {
        ASSERT_TRUE(offer.customer.is_object()) << offer.call.caller;
        EXPECT_EQ(offer.customer.value("phone", ""), r.caller);
        EXPECT_EQ(offer.customer.value("name", ""), r.customer_name);
      }
      EXPECT_TRUE(offer.ivr.contains("lang")) << offer.ivr.dump();
      const auto queue = std::to_string(offer.call.queue_id.value_or(0));
      EXPECT_TRUE(queue == r.queue_id || queue == r.final_queue_id) << "call " << it->first;
    }
  }
  // Every phone that rang had the pop on its operator's desktop, and every answered call's
  // operator is one who got its pop.
  std::size_t rings = 0;
  for (const auto& r : rows("SELECT call_id, operator_id FROM call_events WHERE kind = 'ringing'")) {
    ++rings;
    EXPECT_TRUE(popped.count({std::stoll(r[0]), std::stoll(r[1])})) << "call " << r[0] << " rang at " << r[1];
  }
  for (const auto& [id, r] : records)
    if (!r.operator_id.empty()) EXPECT_TRUE(popped.count({id, std::stoll(r.operator_id)})) << "call " << id;
  // A pop without a ring: the caller hung up in the moment between the pick and the ring.
  std::size_t unrung = 0;
  const auto rung = rows("SELECT DISTINCT call_id, operator_id FROM call_events WHERE kind = 'ringing'");
  std::set<std::pair<std::int64_t, std::int64_t>> rang;
  for (const auto& r : rung) rang.insert({std::stoll(r[0]), std::stoll(r[1])});
  for (const auto& p : popped) {
    if (rang.count(p)) continue;
    ++unrung;
    EXPECT_NE(records[p.first].disposition, "answered") << "call " << p.first;
  }
  std::printf("  %zu screen pops, %zu rings, %zu pops for calls gone before the ring\n", pops, rings, unrung);
  EXPECT_EQ(pops, popped.size());

  // ---- statistics equal what the records say -------------------------------------------------
  const char* recomputed = R"(
    SELECT q.queue_id, count(c.call_id),
           count(c.answered_at),
           count(*) FILTER (WHERE c.disposition IN ('abandoned_waiting', 'abandoned_ringing')),
           count(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.wait_seconds <= q.service_level_seconds),
           count(*) FILTER (WHERE c.disposition IN ('abandoned_waiting', 'abandoned_ringing')
                              AND c.wait_seconds <= q.service_level_seconds)
      FROM queues q LEFT JOIN calls c ON c.queue_id = q.queue_id
     GROUP BY q.queue_id ORDER BY q.queue_id)";
  const auto expected = rows(recomputed);
  const auto live = rows(
      "SELECT queue_id, offered, answered, abandoned, answered_within_sl, abandoned_within_sl, "
      "waiting, busy, coalesce(service_level_percent::text, '') FROM queue_live_stats(1)");
  const auto report = rows(
      "SELECT queue_id, sum(offered), sum(answered), sum(abandoned), sum(answered_within_sl), "
      "sum(abandoned_within_sl) FROM report_queues GROUP BY queue_id ORDER BY queue_id");
  ASSERT_EQ(live.size(), expected.size());
  std::map<std::string, std::vector<std::string>> reported;
  for (const auto& r : report) reported[r[0]] = r;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& e = expected[i];
    const auto& l = live[i];
    EXPECT_EQ(std::vector<std::string>(l.begin(), l.begin() + 6), e) << "queue " << e[0];
    EXPECT_EQ(l[6], "0");  // nobody waits
    EXPECT_EQ(l[7], "0");  // nobody busy
    if (e[1] != "0") EXPECT_EQ(reported[e[0]], e) << "queue " << e[0];
    // The service level: answered within the target over answered plus abandoned after it.
    const double within = std::stod(e[4]), taken = std::stod(e[2]), late_abandoned = std::stod(e[3]) - std::stod(e[5]);
    if (taken + late_abandoned > 0) EXPECT_NEAR(std::stod(l[8]), 100 * within / (taken + late_abandoned), 0.006);
  }
  // The supervisor's last pushed figures are the live ones.
  ASSERT_FALSE(supervisor_->received.stats.empty());
  const auto& pushed = supervisor_->received.stats.back();
  ASSERT_EQ(pushed.queues.size(), live.size());
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(std::to_string(pushed.queues[i].queue_id), live[i][0]);
    EXPECT_EQ(std::to_string(pushed.queues[i].answered), live[i][2]);
    EXPECT_EQ(std::to_string(pushed.queues[i].abandoned), live[i][3]);
    EXPECT_EQ(pushed.queues[i].waiting, 0);
    if (!live[i][8].empty()) EXPECT_NEAR(pushed.queues[i].service_level_percent, std::stod(live[i][8]), 0.006);
  }
  // Per operator: the report, the presence counter and the records agree.
  EXPECT_EQ(count("SELECT count(*) FROM (SELECT o.operator_id, "
                  "  (SELECT count(*) FROM calls c WHERE c.operator_id = o.operator_id) AS answered, "
                  "  coalesce((SELECT sum(r.calls_answered) FROM report_operators r "
                  "            WHERE r.operator_id = o.operator_id), 0) AS reported, p.calls_handled "
                  "  FROM operators o JOIN presence p USING (operator_id)) x "
                  "WHERE x.answered <> x.reported OR x.answered <> x.calls_handled"),
            0);
  EXPECT_EQ(count("SELECT sum(calls_handled) FROM presence"), answered);
}

}  // namespace
}  // namespace switchboard
