// Call control end to end: each step goes from an operator's desktop command through the desk
// server and the call centre to a CSTA request to the simulated PBX, and back as CSTA events,
// presence moves, desktop events, the call record and its journal.
#include "e2e_fixture.hpp"

namespace switchboard {
namespace {

using namespace std::chrono_literals;
using desk::call_state;
using e2e::asio::awaitable;

constexpr const char* seed_sql = R"(
  INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
  INSERT INTO queues (tenant_id, name, strategy, wrap_up_seconds) VALUES (1, 'support', 'longest_idle', 1);
  INSERT INTO route_points (tenant_id, device, name, default_queue_id) VALUES (1, '5000', 'Support', 1);
  INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) VALUES
    (1, 'alice', hash_password('pw'), 'Alice', '2001'),
    (1, 'bob', hash_password('pw'), 'Bob the specialist', '2002');
  INSERT INTO customers (tenant_id, phone, name, tier) VALUES (1, '+4930555001', 'Miller', 'gold');
)";

const std::vector<std::string> phones = {"2001", "2002", "2099"};

class CallControl : public e2e::end_to_end {
 protected:
  void SetUp() override {
    // hold_call_records() keeps record writes waiting on a lock for a few steps
    start(seed_sql, {.phones = phones,
                     .route_points = {"5000"},
                     .default_device = "2099",
                     .auto_answer = 300ms,
                     .statement_timeout = 2min});
  }

  // Alice alone is ready and gets a call from Miller, which her phone answers.
  awaitable<bool> alice_talks_to_miller() {
    if (!co_await wait_until([&] { return link_->is_up(); }, 30s)) co_return false;
    if (!co_await staff({{"alice", "2001"}})) co_return false;
    if (!co_await wait_until([&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready"; },
                             30s))
      co_return false;
    if (!sim_->offer({.caller = "+4930555001", .dialled = "5000", .correlator = "lang=en", .talk_time = 10min}))
      co_return false;
    co_return co_await until_call(at("alice"), call_state::talking);
  }

  // Alice alone is logged in and ready, her phone known.
  awaitable<bool> alice_alone_is_ready() {
    if (!co_await wait_until([&] { return link_->is_up(); }, 30s)) co_return false;
    if (!co_await staff({{"alice", "2001"}})) co_return false;
    if (!co_await wait_until([&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready"; },
                             30s))
      co_return false;
    co_return co_await phone_known("2001");
  }

  // The specialist logs in and is ready (after the call went to alice).
  awaitable<bool> bob_is_ready() {
    if (!co_await staff({{"bob", "2002"}})) co_return false;
    if (!co_await wait_until([&] { return scalar("SELECT state FROM presence WHERE operator_id = 2") == "ready"; },
                             30s))
      co_return false;
    co_return co_await phone_known("2002");
  }

  // Alice consults bob about Miller's call, bob's phone answers, and Miller hangs up while held:
  // the PBX keeps the consultation, here a call of its own (record 2) that keeps both busy.
  awaitable<bool> miller_leaves_while_alice_consults_bob() {
    if (!co_await alice_talks_to_miller()) co_return false;
    if (!co_await bob_is_ready()) co_return false;
    if (!ok(co_await at("alice").client->request(desk::req::consult{.number = "2002"}))) co_return false;
    if (!co_await until_call(at("bob"), call_state::talking)) co_return false;
    if (!co_await wait_until([&] { return presence_of_both() == "held,1;talking,1"; }, 30s)) co_return false;
    const auto at_alice = sim_->model().calls_at("2001");  // Miller's call, then the consultation
    if (at_alice.size() != 2u || !sim_->hang_up(at_alice[0])) co_return false;
    co_return co_await wait_until([&] { return presence_of_both() == "talking,2;talking,2"; }, 30s);
  }

  void TearDown() override {
    release_call_records();
    end_to_end::TearDown();
  }

  // No call record is written (the calls table is locked) until release_call_records().
  void hold_call_records() {
    locker_.emplace(db_.url());
    lock_.emplace(*locker_);
    lock_->exec("LOCK TABLE calls IN SHARE MODE");
  }
  void release_call_records() {
    if (lock_) lock_->commit();
    lock_.reset();
    locker_.reset();
  }
  std::optional<pqxx::connection> locker_;
  std::optional<pqxx::work> lock_;

  // Alice and bob are ready; no call record can be written (hold_call_records()).
  // Miller dials alice's extension and her phone answers; she consults bob from her phone (her
  // desktop knows no call without a record), bob's phone answers, and Miller hangs up. Returns
  // the consultation's pbx call id ("" when a step failed).
  awaitable<std::string> miller_leaves_while_alice_consults_bob_before_his_record() {
    const auto miller = sim_->offer({.caller = "+4930555001", .dialled = "2001", .talk_time = 10min});
    if (!miller) co_return "";
    if (!co_await wait_until(
            [&] {
              const auto* c = centre_->tracker().call_at("2001");
              return c && c->talking_at == "2001";
            },
            30s))
      co_return "";
    if (!co_await link_->execute(pbx::consult_call{.existing = {*miller, "2001"}, .to = "2002"})) co_return "";
    std::string consultation;
    if (!co_await wait_until(
            [&] {
              const auto at_bob = sim_->model().calls_at("2002");
              if (at_bob.size() != 1u) return false;
              consultation = at_bob[0];
              return sim_->model().state_of(consultation, "2002") == csta::local_connection_state::connected;
            },
            30s))
      co_return "";
    if (!sim_->hang_up(*miller)) co_return "";
    if (!co_await wait_until([&] { return centre_->counters().calls_ended == 1; }, 30s)) co_return "";
    co_return count("SELECT count(*) FROM calls") == 0 ? consultation : "";  // he left before his call had a record
  }

  // Alice and bob are ready, their phones known.
  awaitable<bool> alice_and_bob_are_ready() {
    if (!co_await wait_until([&] { return link_->is_up(); }, 30s)) co_return false;
    if (!co_await staff({{"alice", "2001"}, {"bob", "2002"}})) co_return false;
    if (!co_await wait_until([&] { return presence_of_both() == "ready,-;ready,-"; }, 30s)) co_return false;
    co_return co_await phone_known("2001") && co_await phone_known("2002");
  }

  // Each operator's presence state and current call: "state,call;state,call".
  std::string presence_of_both() const {
    return scalar(
        "SELECT string_agg(state || ',' || coalesce(current_call_id::text, '-'), ';' ORDER BY operator_id) "
        "FROM presence");
  }

  // The calls are over, every write applied, and the operators are ready again after wrap-up.
  awaitable<bool> all_done(std::uint64_t calls = 1) {
    co_return co_await wait_until(
        [&] {
          return centre_->counters().calls_ended == calls && settled() &&
                 count("SELECT count(*) FROM presence WHERE state = 'ready'") ==
                     static_cast<std::int64_t>(desktops_.size());
        },
        60s);
  }

  // The one call record: answered by alice, then by bob, times in order, each credited with it.
  std::int64_t one_record_by_alice_then_bob(const std::string& disposition) {
    EXPECT_EQ(count("SELECT count(*) FROM calls"), 1);
    EXPECT_EQ(scalar("SELECT disposition FROM calls"), disposition);
    EXPECT_EQ(scalar("SELECT operator_id || ',' || last_operator_id FROM calls"), "1,2");
    EXPECT_EQ(count("SELECT count(*) FROM calls WHERE offered_at <= answered_at AND answered_at <= ended_at "
                    "AND talk_seconds >= 0 AND wait_seconds >= 0"),
              1);
    EXPECT_EQ(scalar("SELECT string_agg(operator_id::text, ',' ORDER BY event_id) FROM call_events "
                     "WHERE kind = 'answered'"),
              "1,2");
    EXPECT_EQ(scalar("SELECT string_agg(calls_handled::text, ',' ORDER BY operator_id) FROM presence"), "1,1");
    return count("SELECT min(call_id) FROM calls");
  }

  // The calls a desktop was told about, in order, for one call record.
  static std::vector<call_state> story(const e2e::desktop& d, std::int64_t call_id) {
    std::vector<call_state> out;
    for (const auto& c : d.received.calls)
      if (c.call_id == call_id && (out.empty() || out.back() != c.state)) out.push_back(c.state);
    return out;
  }
};

TEST_F(CallControl, BlindTransferToASpecialist) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_miller());
        CO_ASSERT_TRUE(co_await bob_is_ready());
        auto transfer = co_await at("alice").client->request(
            desk::req::transfer{.mode = desk::req::transfer_mode::blind, .number = "2002"});
        CO_ASSERT_TRUE(ok(transfer));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::talking));
        // Bob's phone answered: he is connected to the caller at the PBX.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              auto at_bob = sim_->model().calls_at("2002");
              return at_bob.size() == 1u &&
                     sim_->model().state_of(at_bob[0], "2002") == csta::local_connection_state::connected;
            },
            30s));
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  const auto call_id = one_record_by_alice_then_bob("transferred");
  // The journal: alice transferred to the specialist's phone.
  EXPECT_EQ(count("SELECT count(*) FROM call_events WHERE kind = 'transferred' AND operator_id = 1 "
                  "AND detail->>'to' = '2002'"),
            1);
  // Both are ready again.
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY operator_id) FROM presence"), "ready,ready");
  // Each desktop followed its part of the call; the screen pop went to alice only.
  EXPECT_EQ(story(at("alice"), call_id), (std::vector{call_state::ringing, call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("bob"), call_id), (std::vector{call_state::talking, call_state::ended}));
  ASSERT_EQ(at("alice").received.offers.size(), 1u);
  EXPECT_EQ(at("alice").received.offers[0].call.call_id, call_id);
  EXPECT_EQ(at("alice").received.offers[0].customer.value("name", ""), "Miller");
  EXPECT_TRUE(at("bob").received.offers.empty());
  EXPECT_EQ(sim_->stats().answered, 1u);
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

TEST_F(CallControl, ConsultationThenConferenceThenEachHangsUp) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_miller());
        CO_ASSERT_TRUE(co_await bob_is_ready());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "2002"})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::consulting));
        // The specialist's phone answers the consultation; the caller is held meanwhile.
        std::string consultation;
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              auto at_bob = sim_->model().calls_at("2002");
              if (at_bob.size() != 1u) return false;
              consultation = at_bob[0];
              return sim_->model().state_of(consultation, "2002") == csta::local_connection_state::connected;
            },
            30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::conference{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::conference));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::conference));
        // Three parties in one call at the PBX.
        std::string conference;
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              auto at_alice = sim_->model().calls_at("2001");
              auto at_bob = sim_->model().calls_at("2002");
              if (at_alice.size() != 1u || at_bob != at_alice) return false;
              conference = at_alice[0];
              return true;
            },
            30s));
        // Each hangs up in turn: alice, then the caller; bob is then alone and the call ends.
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(sim_->hang_up(conference));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  const auto call_id = one_record_by_alice_then_bob("answered");
  // The journal tells the consultation and the conference, in that order.
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events "
                   "WHERE kind IN ('consultation', 'conferenced') AND operator_id = 1 AND detail->>'to' = '2002'"),
            "consultation,conferenced");
  EXPECT_EQ(story(at("alice"), call_id),
            (std::vector{call_state::ringing, call_state::talking, call_state::held, call_state::consulting,
                         call_state::conference, call_state::ended}));
  // Bob's phone rang and he talked on the consultation, then joined the conference.
  EXPECT_EQ(story(at("bob"), call_id),
            (std::vector{call_state::ringing, call_state::talking, call_state::conference, call_state::ended}));
  // Alice held the caller to consult and talked again in the conference; bob joined talking.
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history "
                   "WHERE operator_id = 1 AND state IN ('talking', 'held', 'wrap_up')"),
            "talking,held,talking,wrap_up");
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history "
                   "WHERE operator_id = 2 AND state IN ('talking', 'held', 'wrap_up')"),
            "talking,wrap_up");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

TEST_F(CallControl, HoldAndRetrieveAreTimedInTheRecord) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_miller());
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "talking"));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hold{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::held));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "held"));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::retrieve{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
      },
      180s);

  ASSERT_EQ(count("SELECT count(*) FROM calls"), 1);
  EXPECT_EQ(scalar("SELECT disposition FROM calls"), "answered");
  // The held time is in the record, within the call, and matches the journal's hold and retrieve.
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE hold_seconds > 0 AND talk_seconds >= 0 "
                  "AND abs(talk_seconds + hold_seconds - extract(epoch FROM ended_at - answered_at)) < 0.002"),
            1);
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events "
                   "WHERE kind IN ('held', 'retrieved') AND operator_id = 1"),
            "held,retrieved");
  EXPECT_EQ(count("SELECT count(*) FROM calls c WHERE abs(c.hold_seconds - extract(epoch FROM "
                  "(SELECT at FROM call_events WHERE kind = 'retrieved') - (SELECT at FROM call_events WHERE kind = "
                  "'held'))) < 0.25"),
            1);
  // Presence went talking -> held -> talking -> wrap-up -> ready.
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history "
                   "WHERE operator_id = 1 AND state IN ('talking', 'held', 'wrap_up')"),
            "talking,held,talking,wrap_up");
}

// A server being stopped keeps its loop until the call centre's writes are applied
// (app/server.cpp waits on drained()): the hang-up's presence move and call record, held back
// by a lock when the call centre stops, reach PostgreSQL once it is released.
TEST_F(CallControl, WritesQueuedWhenTheCallCentreStopsAreAppliedBeforeItIsDrained) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_miller());
        CO_ASSERT_TRUE(co_await wait_until([&] { return settled(); }, 30s));
        hold_call_records();
        const auto at_alice = sim_->model().calls_at("2001");
        CO_ASSERT_TRUE(at_alice.size() == 1u);
        CO_ASSERT_TRUE(sim_->hang_up(at_alice[0]));
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1; }, 30s));
        CO_ASSERT_TRUE(centre_->pending_writes() > 0u);
        centre_->stop();
        // Held by the lock: not drained, whatever the wait.
        CO_ASSERT_FALSE(co_await centre_->drained(200ms));
        CO_ASSERT_TRUE(centre_->pending_writes() > 0u);
        release_call_records();
        CO_ASSERT_TRUE(co_await centre_->drained(60s));
      },
      180s);

  EXPECT_EQ(centre_->pending_writes(), 0u);
  EXPECT_EQ(centre_->write_counts().failed, 0u);
  EXPECT_EQ(scalar("SELECT disposition || ',' || (ended_at IS NOT NULL) FROM calls"), "answered,true");
  EXPECT_EQ(scalar("SELECT state || ',' || calls_handled FROM presence WHERE operator_id = 1"), "wrap_up,1");
}

// The presence states an operator went through, in order, as one string.
std::string presence_history_sql(int operator_id) {
  return "SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history WHERE operator_id = " +
         std::to_string(operator_id);
}

TEST_F(CallControl, TheConsultedSpecialistIsBusyUntilHeHangsUpAndOnlyThenGetsTheNextCall) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_miller());
        CO_ASSERT_TRUE(co_await bob_is_ready());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "2002"})));
        // Bob's phone rings and answers the consultation: he is busy with alice's call.
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::talking));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return scalar("SELECT state FROM presence WHERE operator_id = 2") == "talking"; }, 30s));
        // A second caller comes while nobody is ready: he waits, bob is not offered the call.
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555002", .dialled = "5000", .talk_time = 2s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 30s));
        // Bob ends the consultation from his desktop: free, and the waiting call is his.
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await until(
            at("bob"), [](const desk::server_message& m) { return std::holds_alternative<desk::offer_event>(m); },
            30s));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::held));  // back on the held caller
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::retrieve{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await all_done(2));
        co_await collect_offers();
      },
      180s);

  // Two records: alice's call (bob never credited: he only consulted) and the second, bob's.
  EXPECT_EQ(scalar("SELECT string_agg(operator_id || ':' || disposition, ',' ORDER BY call_id) FROM calls"),
            "1:answered,2:answered");
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events WHERE call_id = 1 AND kind LIKE "
                   "'consultation%'"),
            "consultation,consultation_ringing,consultation_answered,consultation_ended");
  // Bob: ringing and talking on the consultation, ready, and only then reserved for the waiting call.
  EXPECT_EQ(scalar(presence_history_sql(2)),
            "not_ready,ready,ringing,talking,ready,reserved,ringing,talking,wrap_up,ready");
  EXPECT_EQ(scalar("SELECT calls_handled FROM presence WHERE operator_id = 2"), "1");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

TEST_F(CallControl, ACustomerWhoHangsUpDuringAConsultationLeavesBothOperatorsBusyUntilTheConsultationEnds) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await miller_leaves_while_alice_consults_bob());
        // Miller's record ended; at the PBX alice and bob still talk on the consultation.
        CO_ASSERT_TRUE(scalar("SELECT disposition || ',' || (ended_at IS NOT NULL) FROM calls WHERE call_id = 1") ==
                       "answered,true");
        const auto at_alice = sim_->model().calls_at("2001");
        CO_ASSERT_TRUE(at_alice.size() == 1u && sim_->model().calls_at("2002") == at_alice);
        // A customer calls meanwhile: he waits; neither busy phone is selected.
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555002", .dialled = "5000", .talk_time = 2s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 30s));
        CO_ASSERT_TRUE(presence_of_both() == "talking,2;talking,2");
        // Bob hangs up: the consultation ends, both are free as the rules say, and one of them
        // gets the waiting customer.
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM calls WHERE call_id = 3 AND answered_at IS NOT NULL") == 1; },
            30s));
        CO_ASSERT_TRUE(co_await all_done(3));
        co_await collect_offers();
      },
      180s);

  // Miller's call, answered by alice; the consultation that outlived it, an internal call alice
  // placed and bob answered; the waiting customer's call, answered by one of them.
  EXPECT_EQ(scalar("SELECT string_agg(direction || ':' || caller || ':' || dialled || ':' || operator_id || ':' || "
                   "disposition, ',' ORDER BY call_id) FROM calls WHERE call_id IN (1, 2)"),
            "inbound:+4930555001:5000:1:answered,internal:2001:2002:2:answered");
  const auto third =
      scalar("SELECT coalesce((SELECT operator_id || ':' || disposition FROM calls WHERE call_id = 3), 'none')");
  ASSERT_TRUE(third == "1:answered" || third == "2:answered") << third;
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events WHERE call_id = 1 AND kind LIKE "
                   "'consultation%'"),
            "consultation,consultation_ringing,consultation_answered,consultation_kept");
  // Alice: held for the consultation, talking on it once Miller left, then the wrap-up of
  // Miller's call; bob: talking on the consultation until he hung up, then ready (no wrap-up
  // after a call between colleagues).
  const std::string next_call = ",reserved,ringing,talking,wrap_up,ready";
  EXPECT_EQ(scalar(presence_history_sql(1)),
            "not_ready,ready,reserved,ringing,talking,held,talking,wrap_up,ready" + (third[0] == '1' ? next_call : ""));
  EXPECT_EQ(scalar(presence_history_sql(2)),
            "not_ready,ready,ringing,talking,ready" + (third[0] == '2' ? next_call : ""));
  EXPECT_EQ(scalar("SELECT string_agg((wrap_up_seconds IS NOT NULL)::text, ',' ORDER BY call_id) FROM calls "
                   "WHERE call_id IN (1, 2)"),
            "true,false");
  EXPECT_EQ(scalar("SELECT string_agg(calls_handled::text, ',' ORDER BY operator_id) FROM presence"),
            third[0] == '1' ? "2,0" : "1,1");
  // Each desktop was done with Miller's call when he left, then followed the consultation's call.
  EXPECT_EQ(story(at("alice"), 1), (std::vector{call_state::ringing, call_state::talking, call_state::held,
                                                call_state::consulting, call_state::ended}));
  EXPECT_EQ(story(at("bob"), 1), (std::vector{call_state::ringing, call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("alice"), 2), (std::vector{call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("bob"), 2), (std::vector{call_state::talking, call_state::ended}));
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// Miller's call has no record yet when he leaves during the consultation (its record write
// waits here behind a lock on the calls table; in life, a slow database or a call the PBX
// routed by itself). Before the fix alice went back to ready with no wrap-up for his call.
TEST_F(CallControl, AfterAConsultationThatOutlivedACallerWhoseCallHadNoRecordYetTheOperatorStillWrapsUpHisCall) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_and_bob_are_ready());
        hold_call_records();
        CO_ASSERT_FALSE((co_await miller_leaves_while_alice_consults_bob_before_his_record()).empty());
        release_call_records();
        // The records are written; bob, talking on the consultation, hangs up.
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::talking));
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await all_done(2));
      },
      180s);

  // Miller's call, answered by alice and wrapped up by her; the consultation, internal, none.
  EXPECT_EQ(scalar("SELECT string_agg(direction || ':' || caller || ':' || dialled || ':' || "
                   "coalesce(operator_id::text, '-') || ':' || disposition || ':' || (wrap_up_seconds IS NOT NULL), "
                   "',' ORDER BY direction) FROM calls"),
            "inbound:+4930555001:2001:1:answered:true,internal:2001:2002:2:answered:false");
  // Alice: talking on the consultation once its record was there, then the wrap-up of Miller's
  // call; bob: ready after a call between colleagues.
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,talking,wrap_up,ready");
  EXPECT_EQ(scalar(presence_history_sql(2)), "not_ready,ready,talking,ready");
  EXPECT_EQ(scalar("SELECT string_agg(calls_handled::text, ',' ORDER BY operator_id) FROM presence"), "1,0");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// A minute of wrap-up after calls not through a queue.
class CallControlWithLongDefaultWrapUp : public CallControl {
 protected:
  void SetUp() override {
    start(seed_sql, {.phones = phones,
                     .route_points = {"5000"},
                     .default_device = "2099",
                     .auto_answer = 300ms,
                     .default_wrap_up = 60s,
                     .statement_timeout = 2min});
  }
};

// Neither record is written before the consultation ends: alice's wrap-up starts without one,
// and is Miller's call's once its record comes (her desktop learns that call then, and her
// presence names it: before the fix its current_call_id stayed empty).
TEST_F(CallControlWithLongDefaultWrapUp, TheWrapUpOfACallerWhoseRecordCameAfterTheConsultationEndedIsHisCalls) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_and_bob_are_ready());
        hold_call_records();
        const auto consultation = co_await miller_leaves_while_alice_consults_bob_before_his_record();
        CO_ASSERT_FALSE(consultation.empty());
        // Bob hangs up at his phone (his desktop knows no call without a record either).
        CO_ASSERT_TRUE(co_await link_->execute(pbx::clear_connection{.connection = {consultation, "2002"}}));
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 2; }, 30s));
        release_call_records();
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));  // Miller's call, with its record
        // Her presence names Miller's call once its record is there, as in any wrap-up.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              const auto miller =
                  scalar("SELECT coalesce(min(call_id)::text, '?') FROM calls WHERE direction = 'inbound'");
              return presence_of_both() == "wrap_up," + miller + ";ready,-";
            },
            30s));
        CO_ASSERT_TRUE(
            ok(co_await at("alice").client->request(desk::req::disposition{.code = "callback", .notes = "asked bob"})));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::end_wrap_up{})));
        CO_ASSERT_TRUE(co_await all_done(2));
      },
      180s);

  EXPECT_EQ(
      scalar("SELECT string_agg(direction || ':' || coalesce(operator_id::text, '-') || ':' || disposition || "
             "':' || coalesce(wrap_up_code, '-') || ':' || (wrap_up_seconds IS NOT NULL), ',' ORDER BY direction) "
             "FROM calls"),
      "inbound:1:answered:callback:true,internal:2:answered:-:false");
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,wrap_up,ready");
  EXPECT_EQ(scalar(presence_history_sql(2)), "not_ready,ready");
  EXPECT_EQ(scalar("SELECT string_agg(calls_handled::text, ',' ORDER BY operator_id) FROM presence"), "1,0");
  const auto miller = count("SELECT call_id FROM calls WHERE direction = 'inbound'");
  EXPECT_EQ(story(at("alice"), miller), std::vector{call_state::ended});
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// A call dialled straight to alice's extension is answered and ended before its record is written
// (the calls table is locked meanwhile). Before the fix she got no wrap-up and no handled call,
// unlike the same call whose record came in time; the record itself was complete.
TEST_F(CallControlWithLongDefaultWrapUp, ADirectCallThatEndedBeforeItsRecordStillGivesTheOperatorItsWrapUp) {
  const std::string alice =
      "SELECT state || ',' || coalesce(current_call_id::text, '-') || ',' || calls_handled FROM presence "
      "WHERE operator_id = 1";
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_alone_is_ready());
        hold_call_records();
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555009", .dialled = "2001", .talk_time = 1s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1; }, 30s));
        CO_ASSERT_TRUE(count("SELECT count(*) FROM calls") == 0);  // it ended before its record
        // Her wrap-up starts now; it is the record's once the record is written.
        CO_ASSERT_TRUE(co_await wait_until([&] { return scalar(alice) == "wrap_up,-,1"; }, 30s));
        release_call_records();
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return scalar(alice) == "wrap_up," + scalar("SELECT min(call_id)::text FROM calls") + ",1"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::disposition{.code = "sold"})));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::end_wrap_up{})));
        CO_ASSERT_TRUE(co_await wait_until([&] { return settled() && scalar(alice) == "ready,-,1"; }, 30s));
      },
      180s);

  // The record: answered by alice, then ended, with her wrap-up and its disposition.
  EXPECT_EQ(scalar("SELECT direction || ':' || caller || ':' || dialled || ':' || operator_id || ':' || disposition "
                   "|| ':' || (offered_at <= answered_at AND answered_at <= ended_at) || ':' || wrap_up_code || ':' "
                   "|| (wrap_up_seconds IS NOT NULL) FROM calls"),
            "inbound:+4930555009:2001:1:answered:true:sold:true");
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,wrap_up,ready");
  const auto call_id = count("SELECT min(call_id) FROM calls");
  EXPECT_EQ(story(at("alice"), call_id), std::vector{call_state::ended});
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// The same call centre with a minute of wrap-up: the operator ends it from his desktop.
class CallControlWithLongWrapUp : public CallControl {
 protected:
  void SetUp() override {
    std::string seed = seed_sql;
    const std::string one_second = "'longest_idle', 1)";
    seed.replace(seed.find(one_second), one_second.size(), "'longest_idle', 60)");
    start(seed, {.phones = phones, .route_points = {"5000"}, .default_device = "2099", .auto_answer = 300ms});
  }
};

TEST_F(CallControlWithLongWrapUp, AfterAConsultationThatOutlivedItsCallerTheOperatorWrapsUpTheCallersCall) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await miller_leaves_while_alice_consults_bob());
        // Alice ends the consultation: her wrap-up is Miller's call's, and so is her disposition.
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "wrap_up"));
        CO_ASSERT_TRUE(
            ok(co_await at("alice").client->request(desk::req::disposition{.code = "callback", .notes = "asked bob"})));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::end_wrap_up{})));
        CO_ASSERT_TRUE(co_await all_done(2));
      },
      180s);

  EXPECT_EQ(scalar("SELECT string_agg(coalesce(wrap_up_code || ':' || notes, '-') || ':' || "
                   "(wrap_up_seconds IS NOT NULL), ',' ORDER BY call_id) FROM calls"),
            "callback:asked bob:true,-:false");
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,reserved,ringing,talking,held,talking,wrap_up,ready");
  EXPECT_EQ(scalar(presence_history_sql(2)), "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

TEST_F(CallControl, AnOperatorsOutgoingCallHasItsRecordAndKeepsHerBusy) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_alone_is_ready());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::dial{.number = "+4930777"})));
        // Busy from the dialling; the far end answers after the simulator's delay.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM calls WHERE answered_at IS NOT NULL") == 1; }, 30s));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "talking"; }, 30s));
        // A caller comes meanwhile: he waits for her.
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 1s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        // After her wrap-up the waiting caller is hers.
        CO_ASSERT_TRUE(co_await until(
            at("alice"), [](const desk::server_message& m) { return std::holds_alternative<desk::offer_event>(m); },
            30s));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 2 && settled() &&
                     scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready";
            },
            60s));
      },
      180s);

  EXPECT_EQ(scalar("SELECT direction || ',' || caller || ',' || dialled || ',' || operator_id || ',' || disposition "
                   "FROM calls WHERE call_id = 1"),
            "outbound,2001,+4930777,1,answered");
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE call_id = 1 AND offered_at <= answered_at "
                  "AND answered_at <= ended_at AND talk_seconds >= 0"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM call_events WHERE call_id = 1 AND kind = 'dialling' AND operator_id = 1"), 1);
  EXPECT_EQ(scalar(presence_history_sql(1)),
            "not_ready,ready,talking,wrap_up,ready,reserved,ringing,talking,wrap_up,ready");
}

TEST_F(CallControl, ADirectCallToAnOperatorsExtensionHasItsRecord) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_alone_is_ready());
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "2001", .talk_time = 1s}).has_value());
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ringing));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 1 && settled() &&
                     scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready";
            },
            60s));
      },
      180s);

  EXPECT_EQ(scalar("SELECT direction || ',' || caller || ',' || dialled || ',' || operator_id || ',' || disposition "
                   "|| ',' || (route_point_id IS NULL) FROM calls"),
            "inbound,+4930555001,2001,1,answered,true");
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,ringing,talking,wrap_up,ready");
  EXPECT_EQ(scalar("SELECT calls_handled FROM presence WHERE operator_id = 1"), "1");
}

TEST_F(CallControl, AnOperatorWhoGoesReadyDuringADirectCallIsBusyWithItAndGetsTheNextCallOnlyAfterIt) {
  const std::string alice =
      "SELECT state || ',' || coalesce(current_call_id::text, '-') FROM presence "
      "WHERE operator_id = 1";
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_alone_is_ready());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::not_ready{.reason = "paperwork"})));
        CO_ASSERT_TRUE(co_await wait_until([&] { return scalar(alice) == "not_ready,-"; }, 30s));
        // A call dialled straight to her extension while she is not ready: she takes it, still
        // not ready (routing does not offer her anything anyway).
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555009", .dialled = "2001", .talk_time = 10min}).has_value());
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM calls") == 1 && settled(); }, 30s));
        CO_ASSERT_TRUE(scalar(alice) == "not_ready,-");
        // She clicks ready during it: busy with that call, not free for routing.
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::ready{})));
        CO_ASSERT_TRUE(co_await wait_until([&] { return scalar(alice) == "talking,1"; }, 30s));
        // A customer calls meanwhile: he waits; her busy phone is not selected.
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 10min}).has_value());
        CO_ASSERT_TRUE(co_await wait_until([&] { return count("SELECT count(*) FROM waiting_calls") == 1; }, 30s));
        CO_ASSERT_TRUE(scalar(alice) == "talking,1");
        // The direct call ends: wrap-up, then ready, and the waiting customer is hers.
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await wait_until([&] { return scalar(alice) == "talking,2"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return centre_->counters().calls_ended == 2 && settled() && scalar(alice) == "ready,-"; }, 60s));
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT string_agg(dialled || ':' || operator_id || ':' || disposition, ',' ORDER BY call_id) "
                   "FROM calls"),
            "2001:1:answered,5000:1:answered");
  EXPECT_EQ(scalar(presence_history_sql(1)),
            "not_ready,ready,not_ready,ready,talking,wrap_up,ready,reserved,ringing,talking,wrap_up,ready");
  EXPECT_EQ(scalar("SELECT detail->>'state' FROM call_events WHERE call_id = 1 AND kind = 'ready_during_call'"),
            "talking");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

TEST_F(CallControl, ADecisionLaterThanTheRouteTimeoutIsUndoneAndItsRecordClosedWithTheCall) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 30s));
        CO_ASSERT_TRUE(co_await staff({{"alice", "2001"}}));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready"; }, 30s));
        // route_call takes longer than routing.route_timeout (2 s here): the PBX gets the fallback
        // (its default device, 2099) and the late reservation of alice is given back.
        db_.exec(R"(CREATE OR REPLACE FUNCTION route_call(c calls) RETURNS route_target
                    LANGUAGE plpgsql VOLATILE AS $$
                    BEGIN
                      PERFORM pg_sleep(3);
                      RETURN route_call_by_rules(c);
                    END $$)");
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 6s}).has_value());
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM call_events WHERE kind = 'reservation_released'") == 1; }, 30s));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 1 && settled() &&
                     count(
                         "SELECT count(*) FROM calls "
                         "WHERE ended_at IS NOT NULL") == 1;
            },
            60s));
      },
      180s);

  EXPECT_EQ(scalar("SELECT disposition FROM calls"), "default_routed");
  EXPECT_EQ(scalar("SELECT state FROM presence WHERE operator_id = 1"), "ready");
  EXPECT_EQ(sim_->stats().answered, 1u);  // at the default device
}

// Phones ring until answered from the desktop, so the caller can give up while it rings.
class CallClearedWhileRinging : public e2e::end_to_end {
 protected:
  void SetUp() override {
    start(seed_sql,
          {.phones = phones, .route_points = {"5000"}, .default_device = "2099", .auto_answer = std::nullopt});
  }
};

TEST_F(CallClearedWhileRinging, IsAbandonedRingingAndTheOperatorIsFreeForTheNextCall) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 30s));
        CO_ASSERT_TRUE(co_await staff({{"alice", "2001"}}));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready"; }, 30s));
        auto first = sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 10min});
        CO_ASSERT_TRUE(first.has_value());
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ringing));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "ringing"));
        CO_ASSERT_TRUE(sim_->hang_up(*first));  // the caller gives up before alice answers
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "ready"));
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1 && settled(); }, 30s));

        // Not stuck: the next call rings at alice and she answers it from her desktop.
        auto second = sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 1s});
        CO_ASSERT_TRUE(second.has_value());
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ringing));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::answer{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));  // the caller hangs up after 1 s
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              return centre_->counters().calls_ended == 2 && settled() &&
                     scalar("SELECT state FROM presence WHERE operator_id = 1") == "ready";
            },
            60s));
      },
      180s);

  EXPECT_EQ(scalar("SELECT string_agg(coalesce(disposition::text, 'open'), ',' ORDER BY call_id) FROM calls"),
            "abandoned_ringing,answered");
  // The abandoned call: never answered, nobody's call, the ring cancelled in the journal.
  EXPECT_EQ(count("SELECT count(*) FROM calls WHERE disposition = 'abandoned_ringing' AND answered_at IS NULL "
                  "AND operator_id IS NULL AND offered_at <= ended_at"),
            1);
  EXPECT_EQ(count("SELECT count(*) FROM call_events e JOIN calls c USING (call_id) "
                  "WHERE c.disposition = 'abandoned_ringing' AND e.kind = 'ring_cancelled' AND e.operator_id = 1"),
            1);
  // Presence went ringing -> ready (no wrap-up for a call she never had), then the second call.
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history "
                   "WHERE operator_id = 1"),
            "not_ready,ready,reserved,ringing,ready,reserved,ringing,talking,wrap_up,ready");
  EXPECT_EQ(scalar("SELECT calls_handled FROM presence WHERE operator_id = 1"), "1");
  EXPECT_EQ(sim_->stats().abandoned, 1u);
  EXPECT_EQ(sim_->stats().answered, 1u);
}

// Phones ring until answered from the desktop, and a ringing operator has 2 s to answer.
// Phones that ring until answered from the desktop; the operator has `ring_no_answer` to answer.
e2e::scenario unanswered_phones(std::chrono::seconds ring_no_answer) {
  return {.phones = phones,
          .route_points = {"5000"},
          .default_device = "2099",
          .pbx_route_timeout = 10s,
          .auto_answer = std::nullopt,
          .ring_no_answer = ring_no_answer};
}

class RingNoAnswer : public e2e::end_to_end {
 protected:
  void SetUp() override { start(seed_sql, unanswered_phones(2s)); }
};

TEST_F(RingNoAnswer, TheCallIsRoutedAgainToTheNextOperatorAndTheFirstIsNotReady) {
  std::string first;
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 30s));
        CO_ASSERT_TRUE(co_await staff({{"alice", "2001"}, {"bob", "2002"}}));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM presence WHERE state = 'ready'") == 2; }, 30s));
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 1s}).has_value());
        // Whoever rings first does not answer; the call comes back and rings at the other.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM call_events WHERE kind = 'ring_no_answer'") == 1; }, 60s));
        first =
            scalar("SELECT login FROM operators JOIN call_events USING (operator_id) WHERE kind = 'ring_no_answer'");
        const auto second = first == "alice" ? std::string("bob") : std::string("alice");
        CO_ASSERT_TRUE(co_await until_call(at(second), call_state::ringing, 60s));
        CO_ASSERT_TRUE(ok(co_await at(second).client->request(desk::req::answer{})));
        CO_ASSERT_TRUE(co_await until_call(at(second), call_state::talking));
        CO_ASSERT_TRUE(co_await until_call(at(second), call_state::ended));  // the caller hangs up after 1 s
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1 && settled(); }, 60s));
      },
      180s);

  // One record, answered by the second operator; the journal tells the no-answer and the re-route.
  // Two connections write it (the call-record writer's batches, the router's reroute_call), so
  // the order of events is their time, not their row ids: the re-route's row may be inserted
  // before the no-answer's batch commits.
  ASSERT_EQ(count("SELECT count(*) FROM calls"), 1);
  EXPECT_EQ(scalar("SELECT o.login || ',' || c.disposition FROM calls c JOIN operators o USING (operator_id)"),
            (first == "alice" ? "bob" : "alice") + std::string(",answered"));
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY at, event_id) FROM call_events WHERE kind IN "
                   "('ringing', 'ring_no_answer', 'rerouted', 'answered')"),
            "ringing,ring_no_answer,rerouted,ringing,answered");
  // The one who did not answer is not ready (no answer), never logged out.
  EXPECT_EQ(scalar("SELECT state || ',' || reason FROM presence JOIN operators USING (operator_id) WHERE login = '" +
                   first + "'"),
            "not_ready,no_answer");
  EXPECT_EQ(sim_->stats().answered, 1u);
  EXPECT_EQ(sim_->stats().route_timeouts, 0u);  // routed by us both times, not by the PBX's default
}

// The PBX link drops while a phone rings unanswered: nothing can be moved meanwhile, so the
// no-answer step waits for the link, then routes the call again as usual.
class RingNoAnswerDuringALinkDrop : public e2e::end_to_end {
 protected:
  void SetUp() override { start(seed_sql, unanswered_phones(3s)); }
};

TEST_F(RingNoAnswerDuringALinkDrop, WaitsForTheLinkThenRoutesTheCallAgain) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 30s));
        CO_ASSERT_TRUE(co_await staff({{"alice", "2001"}}));
        CO_ASSERT_TRUE(co_await until_state(at("alice"), "ready"));
        CO_ASSERT_TRUE(sim_->offer({.caller = "+4930555001", .dialled = "5000", .talk_time = 1s}).has_value());
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ringing));
        sim_->drop_link(6s);  // longer than the ring-no-answer time
        CO_ASSERT_TRUE(co_await wait_until([&] { return !link_->is_up(); }, 30s));
        CO_ASSERT_TRUE(co_await staff({{"bob", "2002"}}));
        CO_ASSERT_TRUE(co_await wait_until([&] { return link_->is_up(); }, 60s));
        // Back: alice did not answer, the call rings at bob, who answers.
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ringing, 60s));
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::answer{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until([&] { return centre_->counters().calls_ended == 1 && settled(); }, 60s));
      },
      180s);

  EXPECT_EQ(scalar("SELECT o.login || ',' || c.disposition FROM calls c JOIN operators o USING (operator_id)"),
            "bob,answered");
  EXPECT_EQ(count("SELECT count(*) FROM call_events WHERE kind = 'ring_no_answer' AND operator_id = 1"), 1);
  EXPECT_EQ(scalar("SELECT state || ',' || reason FROM presence WHERE operator_id = 1"), "not_ready,no_answer");
  EXPECT_EQ(centre_->counters().pbx_command_errors, 0u);  // no deflect was sent into the dropped link
}

// Three colleagues: alice called bob, and hands him on to carol.
class CallControlBetweenColleagues : public CallControl {
 protected:
  void SetUp() override {
    const std::string seed = std::string(seed_sql) +
                             "INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) VALUES "
                             "(1, 'carol', hash_password('pw'), 'Carol', '2003');";
    start(seed, {.phones = {"2001", "2002", "2003", "2099"},
                 .route_points = {"5000"},
                 .default_device = "2099",
                 .auto_answer = 300ms});
  }

  // Alice, bob and carol are ready; alice calls bob, whose phone answers.
  awaitable<bool> alice_talks_to_bob() {
    if (!co_await wait_until([&] { return link_->is_up(); }, 30s)) co_return false;
    if (!co_await staff({{"alice", "2001"}, {"bob", "2002"}, {"carol", "2003"}})) co_return false;
    if (!co_await wait_until([&] { return presence() == "ready,ready,ready"; }, 30s)) co_return false;
    for (const auto* phone : {"2001", "2002", "2003"})
      if (!co_await phone_known(phone)) co_return false;
    if (!ok(co_await at("alice").client->request(desk::req::dial{.number = "2002"}))) co_return false;
    if (!co_await until_call(at("bob"), call_state::talking)) co_return false;
    co_return co_await wait_until([&] { return presence() == "talking,talking,ready" && settled(); }, 30s);
  }

  std::string presence() const {
    return scalar("SELECT string_agg(state::text, ',' ORDER BY operator_id) FROM presence");
  }

  // The presence states alice, bob and carol went through, in order: "alice's | bob's | carol's".
  std::string histories() const {
    return scalar(presence_history_sql(1)) + " | " + scalar(presence_history_sql(2)) + " | " +
           scalar(presence_history_sql(3));
  }
};

// Bob was replaced by carol in the tracker without leaving the call, so he stayed talking after it.
TEST_F(CallControlBetweenColleagues,
       BlindTransferByTheOperatorWhoCalledLeavesHerColleagueTalkingToTheNewPartyUntilTheEnd) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(
            desk::req::transfer{.mode = desk::req::transfer_mode::blind, .number = "2003"})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::talking));
        // Carol's phone answered: bob and carol talk at the PBX; alice is out of it and free.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              const auto at_carol = sim_->model().calls_at("2003");
              return at_carol.size() == 1u && sim_->model().calls_at("2002") == at_carol &&
                     sim_->model().state_of(at_carol[0], "2003") == csta::local_connection_state::connected;
            },
            30s));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "ready,talking,talking"; }, 30s));
        // Carol hangs up from her desktop: the call ends, and both are free.
        CO_ASSERT_TRUE(ok(co_await at("carol").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::ended));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT direction || ':' || caller || ':' || dialled || ':' || operator_id || ':' || "
                   "last_operator_id || ':' || disposition || ':' || (wrap_up_seconds IS NULL) FROM calls"),
            "internal:2001:2002:2:3:transferred:true");
  // No wrap-up after a call between colleagues.
  EXPECT_EQ(scalar(presence_history_sql(1)), "not_ready,ready,talking,ready");
  EXPECT_EQ(scalar(presence_history_sql(2)), "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(scalar(presence_history_sql(3)), "not_ready,ready,talking,ready");
  EXPECT_EQ(story(at("alice"), 1), (std::vector{call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("bob"), 1), (std::vector{call_state::ringing, call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("carol"), 1), (std::vector{call_state::talking, call_state::ended}));
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// The same after a consultation from alice's phone. Before the fix her hold of the call she
// placed was not followed, so her consultation call to carol was a call of its own: before
// 16de37c it stayed open after the transfer, its record too; then it ended with it, recorded as a
// second call.
TEST_F(CallControlBetweenColleagues, TransferAfterAConsultationFromThePhoneOfTheOperatorWhoCalledEndsHerConsultation) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        const auto at_alice = sim_->model().calls_at("2001");
        CO_ASSERT_TRUE(at_alice.size() == 1u);
        const auto bobs = at_alice[0];
        CO_ASSERT_TRUE(co_await link_->execute(pbx::consult_call{.existing = {bobs, "2001"}, .to = "2003"}));
        std::string consultation;
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              const auto at_carol = sim_->model().calls_at("2003");
              if (at_carol.size() != 1u) return false;
              consultation = at_carol[0];
              return sim_->model().state_of(consultation, "2003") == csta::local_connection_state::connected;
            },
            30s));
        CO_ASSERT_TRUE(
            co_await link_->execute(pbx::transfer_call{.held = {bobs, "2001"}, .active = {consultation, "2001"}}));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "ready,talking,talking"; }, 30s));
        CO_ASSERT_TRUE(centre_->tracker().call_at("2001") == nullptr);
        // Carol hangs up from her desktop: the call ends, and both are free.
        CO_ASSERT_TRUE(ok(co_await at("carol").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  // Alice's call to bob, handed on to carol; her consultation of carol was part of it.
  EXPECT_EQ(scalar("SELECT string_agg(caller || ':' || dialled || ':' || operator_id || ':' || last_operator_id || "
                   "':' || disposition || ':' || (hold_seconds > 0), ',' ORDER BY call_id) FROM calls"),
            "2001:2002:2:3:transferred:true");
  EXPECT_EQ(histories(),
            "not_ready,ready,talking,held,ready | not_ready,ready,ringing,talking,ready | "
            "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// From her desktop, alice holds the call she placed to bob, consults carol, and completes the
// transfer. Before the fix her hold was not followed: the desk answered "no consultation call to
// transfer to", and her consultation was a second call at her phone.
TEST_F(CallControlBetweenColleagues, FromHerDesktopTheOperatorWhoCalledAColleagueHoldsConsultsAndTransfersHim) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hold{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::held));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "held,talking,ready"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "2003"})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::consulting));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::talking));
        CO_ASSERT_TRUE(
            ok(co_await at("alice").client->request(desk::req::transfer{.mode = desk::req::transfer_mode::complete})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "ready,talking,talking"; }, 30s));
        // Bob and carol talk at the PBX; alice is out of it.
        const auto at_carol = sim_->model().calls_at("2003");
        CO_ASSERT_TRUE(at_carol.size() == 1u && sim_->model().calls_at("2002") == at_carol &&
                       sim_->model().calls_at("2001").empty());
        CO_ASSERT_TRUE(ok(co_await at("carol").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT direction || ':' || caller || ':' || dialled || ':' || operator_id || ':' || "
                   "last_operator_id || ':' || disposition || ':' || (hold_seconds > 0) || ':' || "
                   "(wrap_up_seconds IS NULL) FROM calls"),
            "internal:2001:2002:2:3:transferred:true:true");
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events WHERE kind IN ('held', "
                   "'consultation', 'consultation_ringing', 'consultation_answered', 'transferred')"),
            "held,consultation,consultation_ringing,consultation_answered,transferred");
  EXPECT_EQ(histories(),
            "not_ready,ready,talking,held,ready | not_ready,ready,ringing,talking,ready | "
            "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(story(at("alice"), 1),
            (std::vector{call_state::talking, call_state::held, call_state::consulting, call_state::ended}));
  EXPECT_EQ(story(at("bob"), 1), (std::vector{call_state::ringing, call_state::talking, call_state::ended}));
  EXPECT_EQ(story(at("carol"), 1), (std::vector{call_state::ringing, call_state::talking, call_state::ended}));
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// From her desktop, alice consults an outside number about the call she placed to bob and makes
// a conference of the three; bob's desktop learns it is one.
TEST_F(CallControlBetweenColleagues, FromHerDesktopTheOperatorWhoCalledAColleagueConferencesAnOutsideNumberIn) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "+4930777"})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::consulting));
        // The outside party answers after the simulator's delay.
        CO_ASSERT_TRUE(co_await wait_until(
            [&] {
              const auto* c = centre_->tracker().call_at("2001");
              return c && c->consulted_answered;
            },
            30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::conference{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::conference));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::conference));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "talking,talking,ready"; }, 30s));
        // Alice leaves the conference, then bob: the outside party is alone and the call ends.
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::ended));
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT direction || ':' || operator_id || ':' || disposition || ':' || (ended_at IS NOT NULL) "
                   "FROM calls"),
            "internal:2:answered:true");
  EXPECT_EQ(scalar("SELECT string_agg(kind || '>' || coalesce(detail->>'to', ''), ',' ORDER BY event_id) "
                   "FROM call_events WHERE kind IN ('consultation', 'conferenced')"),
            "consultation>+4930777,conferenced>+4930777");
  EXPECT_EQ(histories(),
            "not_ready,ready,talking,held,talking,ready | not_ready,ready,ringing,talking,ready | "
            "not_ready,ready");
  EXPECT_EQ(story(at("alice"), 1), (std::vector{call_state::talking, call_state::held, call_state::consulting,
                                                call_state::conference, call_state::ended}));
  EXPECT_EQ(story(at("bob"), 1),
            (std::vector{call_state::ringing, call_state::talking, call_state::conference, call_state::ended}));
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// Carol hangs up the consultation: alice's desktop is back on her held call to bob, which she
// retrieves from it.
TEST_F(CallControlBetweenColleagues, FromHerDesktopTheOperatorWhoCalledAColleagueRetrievesHimAfterAConsultation) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "2003"})));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::talking));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "held,talking,talking"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("carol").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::ended));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::held));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::retrieve{})));
        CO_ASSERT_TRUE(co_await until_call(at("alice"), call_state::talking));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "talking,talking,ready"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await all_done());
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT operator_id || ':' || disposition || ':' || (hold_seconds > 0) FROM calls"),
            "2:answered:true");
  EXPECT_EQ(scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events WHERE kind IN ('held', "
                   "'retrieved', 'consultation', 'consultation_ended')"),
            "held,consultation,consultation_ended,retrieved");
  EXPECT_EQ(histories(),
            "not_ready,ready,talking,held,talking,ready | not_ready,ready,ringing,talking,ready | "
            "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(story(at("alice"), 1), (std::vector{call_state::talking, call_state::held, call_state::consulting,
                                                call_state::held, call_state::talking, call_state::ended}));
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

// Bob hangs up while alice holds him to consult carol: alice and carol talk on, on the
// consultation kept as a call alice placed; a call between colleagues owes no wrap-up and counts
// for nobody.
TEST_F(CallControlBetweenColleagues, TheColleagueHeldForAConsultationHangsUpAndTheConsultationGoesOnWithoutWrapUp) {
  testing::run_coroutine(
      loop_,
      [&]() -> awaitable<void> {
        CO_ASSERT_TRUE(co_await alice_talks_to_bob());
        CO_ASSERT_TRUE(ok(co_await at("alice").client->request(desk::req::consult{.number = "2003"})));
        CO_ASSERT_TRUE(co_await until_call(at("carol"), call_state::talking));
        CO_ASSERT_TRUE(co_await wait_until([&] { return presence() == "held,talking,talking"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("bob").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await until_call(at("bob"), call_state::ended));
        CO_ASSERT_TRUE(co_await wait_until(
            [&] { return count("SELECT count(*) FROM calls") == 2 && presence() == "talking,ready,talking"; }, 30s));
        CO_ASSERT_TRUE(ok(co_await at("carol").client->request(desk::req::hangup{})));
        CO_ASSERT_TRUE(co_await all_done(2));
        co_await collect_offers();
      },
      180s);

  EXPECT_EQ(scalar("SELECT string_agg(direction || ':' || caller || ':' || dialled || ':' || operator_id || ':' || "
                   "disposition || ':' || (wrap_up_seconds IS NULL), ',' ORDER BY call_id) FROM calls"),
            "internal:2001:2002:2:answered:true,internal:2001:2003:3:answered:true");
  EXPECT_EQ(histories(),
            "not_ready,ready,talking,held,talking,ready | not_ready,ready,ringing,talking,ready | "
            "not_ready,ready,ringing,talking,ready");
  EXPECT_EQ(scalar("SELECT string_agg(calls_handled::text, ',' ORDER BY operator_id) FROM presence"), "0,0,0");
  EXPECT_EQ(sim_->stats().active_calls, 0u);
}

}  // namespace
}  // namespace switchboard
