// The data model refuses impossible states: each constraint named in the foundation issue.
#include "test_database.hpp"

#include <pqxx/pqxx>

#include <gtest/gtest.h>

namespace switchboard {
namespace {

class Constraints : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(R"(
      INSERT INTO tenants (code, name) VALUES ('acme', 'Acme'), ('globex', 'Globex');
      INSERT INTO operators (tenant_id, login, password_hash, extension)
        VALUES (1, 'alice', hash_password('pw'), '2001'), (1, 'bob', hash_password('pw'), '2002'),
               (2, 'carol', hash_password('pw'), '3001');
      INSERT INTO queues (tenant_id, name) VALUES (1, 'sales'), (2, 'support');
      INSERT INTO calls (tenant_id, pbx_call_id, caller) VALUES (1, 'C1', '555'), (1, 'C2', '556'), (2, 'C3', '557');
    )");
  }

  // Runs `sql` and expects PostgreSQL to refuse it.
  void expect_refused(const std::string& sql) {
    try {
      db_.exec(sql);
    } catch (const pqxx::sql_error&) {
      return;
    }
    ADD_FAILURE() << "accepted: " << sql;
  }

  // Runs `sql` and expects PostgreSQL to refuse it as a check violation naming `rule`.
  void expect_broken_rule(const std::string& sql, const std::string& rule) {
    try {
      db_.exec(sql);
    } catch (const pqxx::check_violation& e) {
      EXPECT_NE(std::string(e.what()).find('"' + rule + '"'), std::string::npos) << e.what();
      return;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "refused, but not as a check violation naming " << rule << ": " << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << sql;
  }

  testing::test_database db_;
};

TEST_F(Constraints, EveryOperatorHasExactlyOnePresenceRow) {
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM presence"), "3");
  EXPECT_EQ(db_.scalar("SELECT state FROM presence WHERE operator_id = 1"), "logged_out");
  expect_refused("INSERT INTO presence (operator_id, tenant_id) VALUES (1, 1)");
}

TEST_F(Constraints, TalkingOperatorHasACurrentCall) {
  expect_refused("UPDATE presence SET state = 'talking', device = '2001' WHERE operator_id = 1");
  expect_refused("UPDATE presence SET state = 'ringing', device = '2001' WHERE operator_id = 1");
  db_.exec("UPDATE presence SET state = 'talking', device = '2001', current_call_id = 1 WHERE operator_id = 1");
  EXPECT_EQ(db_.scalar("SELECT state FROM presence WHERE operator_id = 1"), "talking");
}

TEST_F(Constraints, ReadyOperatorHasNoCall) {
  expect_refused("UPDATE presence SET state = 'ready', device = '2001', current_call_id = 1 WHERE operator_id = 1");
}

TEST_F(Constraints, NotReadyNeedsAReasonAndOnlyNotReadyHasOne) {
  expect_refused("UPDATE presence SET state = 'not_ready', device = '2001' WHERE operator_id = 1");
  expect_refused("UPDATE presence SET state = 'ready', device = '2001', reason = 'lunch' WHERE operator_id = 1");
  db_.exec("UPDATE presence SET state = 'not_ready', device = '2001', reason = 'lunch' WHERE operator_id = 1");
}

TEST_F(Constraints, LoggedInOperatorHasADeviceAndLoggedOutHasNone) {
  expect_refused("UPDATE presence SET state = 'ready' WHERE operator_id = 1");
  expect_refused("UPDATE presence SET device = '2001' WHERE operator_id = 1");
}

TEST_F(Constraints, ADeviceBelongsToAtMostOneLoggedInOperator) {
  db_.exec("UPDATE presence SET state = 'ready', device = '2001' WHERE operator_id = 1");
  expect_refused("UPDATE presence SET state = 'ready', device = '2001' WHERE operator_id = 2");
  db_.exec("UPDATE presence SET state = 'logged_out', device = NULL WHERE operator_id = 1");
  db_.exec("UPDATE presence SET state = 'ready', device = '2001' WHERE operator_id = 2");
}

TEST_F(Constraints, ACallIsOfferedToOneOperatorAtATime) {
  db_.exec("UPDATE presence SET state = 'ringing', device = '2001', current_call_id = 1 WHERE operator_id = 1");
  expect_refused("UPDATE presence SET state = 'ringing', device = '2002', current_call_id = 1 WHERE operator_id = 2");
  // Once answered, a conference (or a transfer, the first operator in wrap-up) has it at two.
  db_.exec("UPDATE presence SET state = 'talking' WHERE operator_id = 1");
  db_.exec("UPDATE presence SET state = 'talking', device = '2002', current_call_id = 1 WHERE operator_id = 2");
}

TEST_F(Constraints, ReservationHasADeadline) {
  expect_refused("UPDATE presence SET state = 'reserved', device = '2001', current_call_id = 1 WHERE operator_id = 1");
  db_.exec(
      "UPDATE presence SET state = 'reserved', device = '2001', current_call_id = 1, "
      "reserved_until = now() + interval '5 s' WHERE operator_id = 1");
}

// One CHECK per table calls a rule function (0052); the refusal still names the broken rule.
TEST_F(Constraints, ABrokenRuleIsRefusedByName) {
  expect_broken_rule("UPDATE presence SET state = 'talking', device = '2001' WHERE operator_id = 1",
                     "presence_busy_has_call");
  expect_broken_rule("UPDATE presence SET state = 'ready', device = '2001', current_call_id = 1 WHERE operator_id = 1",
                     "presence_idle_has_no_call");
  expect_broken_rule("UPDATE presence SET state = 'not_ready', device = '2001' WHERE operator_id = 1",
                     "presence_reason_iff_not_ready");
  expect_broken_rule("UPDATE presence SET state = 'ready' WHERE operator_id = 1", "presence_device_iff_logged_in");
  expect_broken_rule(
      "UPDATE presence SET state = 'reserved', device = '2001', current_call_id = 1 WHERE operator_id = 1",
      "presence_reservation_has_deadline");
  expect_broken_rule("UPDATE presence SET calls_handled = -1 WHERE operator_id = 1", "presence_calls_handled_check");
  expect_broken_rule("UPDATE calls SET queued_at = offered_at - interval '1 s' WHERE call_id = 1",
                     "calls_queued_after_offered");
  expect_broken_rule("UPDATE calls SET answered_at = offered_at - interval '1 s', operator_id = 1 WHERE call_id = 1",
                     "calls_answered_after_offered");
  expect_broken_rule(
      "UPDATE calls SET ended_at = offered_at - interval '1 s', disposition = 'abandoned_waiting' WHERE call_id = 1",
      "calls_ended_after_offered");
  expect_broken_rule(
      "UPDATE calls SET answered_at = offered_at + interval '10 s', operator_id = 1, "
      "ended_at = offered_at + interval '5 s', disposition = 'answered' WHERE call_id = 1",
      "calls_ended_after_answered");
  expect_broken_rule("UPDATE calls SET ended_at = now() WHERE call_id = 1", "calls_finished_has_disposition");
  expect_broken_rule("UPDATE calls SET answered_at = now() WHERE call_id = 1", "calls_answered_has_operator");
  expect_broken_rule("UPDATE calls SET ended_at = now(), disposition = 'answered' WHERE call_id = 1",
                     "calls_answered_disposition_was_answered");
  expect_broken_rule("UPDATE calls SET talk_seconds = -1 WHERE call_id = 1", "calls_durations_not_negative");
  // a rule that is NULL passes, as in a CHECK: ended, never answered (ended >= answered is NULL)
  db_.exec("UPDATE calls SET ended_at = now(), disposition = 'abandoned_waiting' WHERE call_id = 2");
  EXPECT_EQ(db_.scalar("SELECT disposition FROM calls WHERE call_id = 2"), "abandoned_waiting");
}

TEST_F(Constraints, RowsCannotPointIntoAnotherTenant) {
  // operator 3 belongs to tenant 2; call 1 to tenant 1
  expect_refused("UPDATE presence SET state = 'talking', device = '3001', current_call_id = 1 WHERE operator_id = 3");
  db_.exec("INSERT INTO skills (tenant_id, name) VALUES (1, 'english')");
  expect_refused("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 3, 1, 5)");
  expect_refused("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (2, 3, 1, 5)");
  expect_refused("INSERT INTO waiting_calls (call_id, tenant_id, queue_id) VALUES (3, 2, 1)");
}

TEST_F(Constraints, LoginIsUniquePerTenantOnly) {
  expect_refused("INSERT INTO operators (tenant_id, login, password_hash) VALUES (1, 'alice', hash_password('x'))");
  db_.exec("INSERT INTO operators (tenant_id, login, password_hash) VALUES (2, 'alice', hash_password('x'))");
}

TEST_F(Constraints, PasswordsAreStoredOnlyAsBcryptHashes) {
  expect_refused("INSERT INTO operators (tenant_id, login, password_hash) VALUES (1, 'dave', 'secret')");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM check_login('acme', 'alice', 'pw')"), "1");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM check_login('acme', 'alice', 'wrong')"), "0");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM check_login('globex', 'alice', 'pw')"), "0");
}

TEST_F(Constraints, SkillLevelsAreOneToTen) {
  db_.exec("INSERT INTO skills (tenant_id, name) VALUES (1, 'english')");
  expect_refused("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 1, 1, 0)");
  expect_refused("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 1, 1, 11)");
  db_.exec("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES (1, 1, 1, 10)");
}

TEST_F(Constraints, FinishedCallSaysHowItEndedAndAnsweredCallHasAnOperator) {
  expect_refused("UPDATE calls SET ended_at = now() WHERE call_id = 1");
  expect_refused("UPDATE calls SET ended_at = now(), disposition = 'answered' WHERE call_id = 1");
  expect_refused("UPDATE calls SET answered_at = now() WHERE call_id = 1");
  expect_refused(
      "UPDATE calls SET ended_at = offered_at - interval '1 s', disposition = 'abandoned_waiting' WHERE call_id = 1");
  db_.exec("UPDATE calls SET ended_at = now(), disposition = 'abandoned_waiting' WHERE call_id = 1");
}

TEST_F(Constraints, CallEventsAreAppendOnly) {
  db_.exec("INSERT INTO call_events (tenant_id, call_id, kind) VALUES (1, 1, 'offered')");
  expect_refused("UPDATE call_events SET kind = 'answered'");
  expect_refused("DELETE FROM call_events");
  expect_refused("TRUNCATE call_events");
  EXPECT_EQ(db_.scalar("SELECT count(*) FROM call_events"), "1");
}

TEST_F(Constraints, QueueCannotOverflowIntoItself) {
  expect_refused("UPDATE queues SET overflow_queue_id = queue_id, overflow_after_seconds = 30 WHERE queue_id = 1");
  expect_refused("UPDATE queues SET overflow_after_seconds = 30 WHERE queue_id = 1");  // no target
}

}  // namespace
}  // namespace switchboard
