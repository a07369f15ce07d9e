// Call records and phone-driven presence on a real PostgreSQL: ordered batches, refused moves,
// a refused write that loses nothing else, durations, and reconciliation after a restart.
#include "coro_test.hpp"
#include "switchboard/store/call_queries.hpp"
#include "switchboard/store/pool.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

namespace switchboard {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using store::call_write;

class CallRecords : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(R"(
      INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
      INSERT INTO operators (tenant_id, login, password_hash, extension) VALUES
        (1, 'alice', hash_password('pw'), '2001'), (1, 'bob', hash_password('pw'), '2002');
      INSERT INTO queues (tenant_id, name) VALUES (1, 'sales');
      INSERT INTO calls (tenant_id, pbx_call_id, caller, queue_id, node, offered_at)
        VALUES (1, 'C1', '+4930555001', 1, 'node-1', now() - interval '100 s'),
               (1, 'C2', '+4930555002', 1, 'node-1', now() - interval '50 s');
      UPDATE presence SET state = 'reserved', device = '2001', current_call_id = 1,
             reserved_until = now() + interval '10 s' WHERE operator_id = 1;
      UPDATE presence SET state = 'ready', device = '2002' WHERE operator_id = 2;
    )");
  }

  store::write_report apply(std::vector<call_write> writes) {
    store::write_report report;
    asio::io_context loop;
    testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
      auto done = co_await store::apply_call_writes(pool_, std::move(writes));
      CO_ASSERT_TRUE(done.has_value());
      report = *done;
    });
    return report;
  }

  store::presence_move move(std::int64_t op, std::vector<std::string> from, std::string to,
                            std::optional<std::int64_t> call = std::nullopt) {
    return store::presence_move{.operator_id = op, .from = std::move(from), .to = std::move(to), .call_id = call};
  }

  std::string state_of(int op) {
    return db_.scalar("SELECT state FROM presence WHERE operator_id = " + std::to_string(op));
  }

  testing::test_database db_;
  store::connection_pool pool_{{.url = db_.url(), .size = 1}};
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

TEST_F(CallRecords, AnAnsweredCallLeavesACompleteRecordAndJournal) {
  auto report = apply({
      move(1, {"reserved"}, "ringing", 1),
      move(1, {"ringing", "reserved"}, "talking", 1),
      store::call_answered{.call_id = 1, .operator_id = 1, .at = now_ - 90s},
      move(1, {"talking"}, "held"),
      move(1, {"held"}, "talking"),
      store::call_finished{.call_id = 1, .disposition = "answered", .held = 15s, .at = now_ - 30s},
      store::presence_move{.operator_id = 1, .from = {"talking", "held"}, .to = "wrap_up", .call_finished = true},
  });
  EXPECT_TRUE(report.refused.empty());
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(state_of(1), "wrap_up");
  EXPECT_EQ(db_.scalar("SELECT current_call_id FROM presence WHERE operator_id = 1"), "1");
  EXPECT_EQ(db_.scalar("SELECT calls_handled FROM presence WHERE operator_id = 1"), "1");
  EXPECT_EQ(db_.scalar("SELECT last_call_ended IS NOT NULL FROM presence WHERE operator_id = 1"), "t");

  apply({store::wrap_up_finished{.call_id = 1, .at = now_ - 20s}, move(1, {"wrap_up"}, "ready")});
  EXPECT_EQ(state_of(1), "ready");
  EXPECT_EQ(db_.scalar("SELECT current_call_id IS NULL FROM presence WHERE operator_id = 1"), "t");

  EXPECT_EQ(db_.scalar("SELECT disposition FROM calls WHERE call_id = 1"), "answered");
  EXPECT_EQ(db_.scalar("SELECT operator_id FROM calls WHERE call_id = 1"), "1");
  EXPECT_EQ(db_.scalar("SELECT round(wait_seconds) FROM calls WHERE call_id = 1"), "10");
  EXPECT_EQ(db_.scalar("SELECT round(talk_seconds) FROM calls WHERE call_id = 1"), "45");  // 60 s answered, 15 s held
  EXPECT_EQ(db_.scalar("SELECT round(hold_seconds) FROM calls WHERE call_id = 1"), "15");
  EXPECT_EQ(db_.scalar("SELECT round(wrap_up_seconds) FROM calls WHERE call_id = 1"), "10");
  EXPECT_EQ(db_.scalar("SELECT string_agg(kind, ',' ORDER BY event_id) FROM call_events WHERE call_id = 1"),
            "answered,ended");
}

TEST_F(CallRecords, AMoveFromAStateHeNoLongerHasIsRefusedNotApplied) {
  auto report = apply({move(2, {"ringing"}, "talking", 2)});
  EXPECT_EQ(report.refused, std::vector<std::size_t>{0});
  EXPECT_EQ(state_of(2), "ready");
}

// presence -> calls is checked at commit (0052): a move naming a call that is not there must
// still be refused alone, not fail the batch's commit with every other write in it.
TEST_F(CallRecords, AMoveToACallThatDoesNotExistIsRefusedAloneThoughItsReferenceIsCheckedAtCommit) {
  auto report = apply({
      move(2, {"ready"}, "ringing", 999),
      store::call_journal_entry{.call_id = 2, .kind = "note", .detail = {{"why", "still written"}}, .at = now_},
      move(1, {"reserved"}, "ringing", 1),
  });
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].first, 0u);
  EXPECT_TRUE(report.failed[0].second.is(errc::db_constraint_violated)) << report.failed[0].second.message();
  EXPECT_EQ(state_of(2), "ready");
  EXPECT_EQ(state_of(1), "ringing");
  EXPECT_EQ(db_.scalar("SELECT detail->>'why' FROM call_events WHERE kind = 'note'"), "still written");
}

TEST_F(CallRecords, ARefusedWriteLosesNothingElseInTheBatch) {
  auto report = apply({
      move(2, {"ready"}, "not_ready"),  // no reason: PostgreSQL refuses it
      store::call_journal_entry{.call_id = 2, .kind = "note", .detail = {{"why", "still written"}}, .at = now_},
      store::call_finished{.call_id = 2, .disposition = "abandoned_waiting", .at = now_},
  });
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].first, 0u);
  EXPECT_TRUE(report.failed[0].second.is(errc::db_constraint_violated)) << report.failed[0].second.message();
  EXPECT_EQ(db_.scalar("SELECT detail->>'why' FROM call_events WHERE kind = 'note'"), "still written");
  EXPECT_EQ(db_.scalar("SELECT disposition FROM calls WHERE call_id = 2"), "abandoned_waiting");
  EXPECT_EQ(db_.scalar("SELECT talk_seconds IS NULL FROM calls WHERE call_id = 2"), "t");
}

TEST_F(CallRecords, AFailureLateInABatchWritesTheEarlierOnesOnce) {
  // The batch first runs without savepoints; the failure rolls it back and it is replayed.
  auto report = apply({
      store::call_journal_entry{.call_id = 2, .kind = "note", .detail = {{"why", "before"}}, .at = now_},
      store::call_finished{.call_id = 2, .disposition = "abandoned_waiting", .at = now_},
      move(2, {"ready"}, "not_ready"),  // no reason: PostgreSQL refuses it
  });
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].first, 2u);
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events WHERE call_id = 2 AND kind = 'note'"), "1");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events WHERE call_id = 2 AND kind = 'ended'"), "1");
  EXPECT_EQ(state_of(2), "ready");
}

TEST_F(CallRecords, EndingTwiceKeepsTheFirstEnd) {
  apply({store::call_finished{.call_id = 2, .disposition = "abandoned_waiting", .at = now_}});
  apply({store::call_finished{.call_id = 2, .disposition = "answered", .at = now_ + 5s}});
  EXPECT_EQ(db_.scalar("SELECT disposition FROM calls WHERE call_id = 2"), "abandoned_waiting");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events WHERE call_id = 2 AND kind = 'ended'"), "1");
}

TEST_F(CallRecords, ReconciliationFreesOperatorsAndClosesRecordsOfCallsThePbxNoLongerHas) {
  db_.exec(
      "UPDATE presence SET state = 'talking', reserved_until = NULL, node = 'node-1' WHERE operator_id = 1;"
      "UPDATE calls SET answered_at = offered_at + interval '5 s', operator_id = 1 WHERE call_id = 1");
  asio::io_context loop;
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto done = co_await store::reconcile_calls(pool_, {2}, "node-1");  // C2 is still live at the PBX
    CO_ASSERT_TRUE(done.has_value());
    EXPECT_EQ(done->first, 1);   // alice freed
    EXPECT_EQ(done->second, 1);  // C1 closed
  });
  EXPECT_EQ(state_of(1), "ready");
  EXPECT_EQ(db_.scalar("SELECT disposition FROM calls WHERE call_id = 1"), "answered");
  EXPECT_EQ(db_.scalar("SELECT ended_at IS NULL FROM calls WHERE call_id = 2"), "t");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events WHERE kind = 'closed_on_reconcile'"), "1");
}

TEST_F(CallRecords, DirectCallsGetARecordAndDevicesAreKnown) {
  asio::io_context loop;
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto id = co_await store::create_call_record(pool_, 2, "D9", "+4930999", "2002", "inbound", "node-1");
    CO_ASSERT_TRUE(id.has_value());
    EXPECT_GT(*id, 2);
    auto devices = co_await store::logged_in_devices(pool_);
    CO_ASSERT_TRUE(devices.has_value());
    EXPECT_EQ(devices->size(), 2u);
  });
  EXPECT_EQ(db_.scalar("SELECT tenant_id FROM calls WHERE pbx_call_id = 'D9'"), "1");
}

}  // namespace
}  // namespace switchboard
