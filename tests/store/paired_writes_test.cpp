// A presence move and the call write next to it in a batch run as one statement
// (store/call_queries.cpp): both are applied as they would be one after the other, a refused move
// is reported at its own index, and a pair PostgreSQL refuses is replayed one write at a time.
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

class PairedWrites : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(R"(
      INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
      INSERT INTO skills (tenant_id, name) VALUES (1, 'sales');
      INSERT INTO operators (tenant_id, login, password_hash, extension) VALUES
        (1, 'alice', hash_password('pw'), '2001'), (1, 'bob', hash_password('pw'), '2002');
      INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 1, 1, 4);
      INSERT INTO queues (tenant_id, name) VALUES (1, 'sales');
      INSERT INTO calls (tenant_id, pbx_call_id, caller, queue_id, final_queue_id, node, offered_at, queued_at)
        VALUES (1, 'C1', '+4930555001', 1, 1, 'node-1', now() - interval '100 s', now() - interval '100 s'),
               (1, 'C2', '+4930555002', 1, NULL, 'node-1', now() - interval '50 s', now() - interval '50 s');
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

  static store::presence_move move(std::int64_t op, std::vector<std::string> from, std::string to,
                                   std::optional<std::int64_t> call = std::nullopt, bool finished = false) {
    return store::presence_move{
        .operator_id = op, .from = std::move(from), .to = std::move(to), .call_id = call, .call_finished = finished};
  }

  std::string scalar(const std::string& sql) { return db_.scalar(sql); }

  testing::test_database db_;
  store::connection_pool pool_{{.url = db_.url(), .size = 1}};
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

TEST_F(PairedWrites, AWholeCallWrittenInPairsLeavesTheSameRowsAsOneWriteAtATime) {
  for (auto batch : std::vector<std::vector<call_write>>{
           {move(1, {"reserved"}, "ringing", 1),
            store::call_journal_entry{.call_id = 1, .kind = "ringing", .operator_id = 1, .device = "2001", .at = now_}},
           {move(1, {"ringing"}, "talking", 1), store::call_answered{.call_id = 1, .operator_id = 1, .at = now_}},
           {move(1, {"talking"}, "wrap_up", 1, true),
            store::call_finished{.call_id = 1, .disposition = "answered", .at = now_ + 60s}},
           {store::wrap_up_finished{.call_id = 1, .at = now_ + 70s}, move(1, {"wrap_up"}, "ready")},
       }) {
    const auto report = apply(std::move(batch));
    EXPECT_TRUE(report.refused.empty());
    EXPECT_TRUE(report.failed.empty());
  }
  EXPECT_EQ(scalar("SELECT state || ' ' || calls_handled || ' ' || (current_call_id IS NULL) || ' ' || "
                   "(last_call_ended IS NOT NULL) FROM presence WHERE operator_id = 1"),
            "ready 1 true true");
  EXPECT_EQ(scalar("SELECT string_agg(kind || ':' || coalesce(device, '-') || ':' || coalesce(queue_id::text, '-'), "
                   "',' ORDER BY event_id) FROM call_events WHERE call_id = 1"),
            "ringing:2001:-,answered:-:1,ended:-:-");
  EXPECT_EQ(scalar("SELECT disposition || ' ' || operator_id || ' ' || round(talk_seconds) || ' ' || "
                   "round(wrap_up_seconds) FROM calls WHERE call_id = 1"),
            "answered 1 60 10");
  EXPECT_EQ(scalar("SELECT string_agg(state::text, ',' ORDER BY history_id) FROM presence_history "
                   "WHERE operator_id = 1 AND history_id > (SELECT min(history_id) FROM presence_history "
                   "WHERE operator_id = 1 AND state = 'reserved')"),
            "ringing,talking,wrap_up,ready");
  // ready again: routable by his skill (and as anyone), with his new call count
  EXPECT_EQ(scalar("SELECT string_agg(skill_id || ':' || calls_handled, ',' ORDER BY skill_id) FROM ready_skills "
                   "WHERE operator_id = 1"),
            "0:1,1:1");
}

TEST_F(PairedWrites, ARefusedMoveInAPairIsReportedAtItsIndexAndItsPartnerStillWritten) {
  auto report = apply({
      store::wrap_up_finished{.call_id = 2, .at = now_},  // C2 has not ended: nothing to write
      move(2, {"wrap_up"}, "ready"),                      // bob is ready, not in wrap-up: refused
      move(2, {"ringing"}, "talking", 2),                 // refused too
      store::call_journal_entry{.call_id = 2, .kind = "note", .operator_id = 2, .at = now_},
  });
  EXPECT_EQ(report.refused, (std::vector<std::size_t>{1, 2}));
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(scalar("SELECT state FROM presence WHERE operator_id = 2"), "ready");
  EXPECT_EQ(scalar("SELECT count(*) FROM call_events WHERE call_id = 2 AND kind = 'note' AND operator_id = 2"), "1");
}

TEST_F(PairedWrites, APairPostgresqlRefusesIsReplayedOneWriteAtATime) {
  auto report = apply({
      move(1, {"reserved"}, "ringing", 1),
      store::call_finished{.call_id = 1, .disposition = "no_such_disposition", .at = now_},
  });
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].first, 1u);
  EXPECT_EQ(scalar("SELECT state FROM presence WHERE operator_id = 1"), "ringing");
  EXPECT_EQ(scalar("SELECT ended_at IS NULL FROM calls WHERE call_id = 1"), "t");
}

// A wrap-up that began before its call had a record learns the call later (call_centre.cpp):
// the move names the call and keeps the time he entered wrap-up; a move to another state dates it.
TEST_F(PairedWrites, AMoveToTheStateHeIsInNamesTheCallAndKeepsTheTimeHeEnteredIt) {
  db_.exec(
      "UPDATE presence SET state = 'wrap_up', current_call_id = NULL, reserved_until = NULL, "
      "since = now() - interval '30 s' WHERE operator_id = 1");
  auto report = apply({move(1, {"wrap_up"}, "wrap_up", 1)});
  EXPECT_TRUE(report.refused.empty());
  EXPECT_EQ(scalar("SELECT current_call_id FROM presence WHERE operator_id = 1"), "1");
  EXPECT_EQ(scalar("SELECT since < now() - interval '29 s' FROM presence WHERE operator_id = 1"), "t");
  const auto entered = scalar("SELECT since FROM presence WHERE operator_id = 1");
  apply({move(1, {"wrap_up"}, "ready")});
  EXPECT_EQ(scalar("SELECT since > '" + entered + "'::timestamptz FROM presence WHERE operator_id = 1"), "t");
}

}  // namespace
}  // namespace switchboard
