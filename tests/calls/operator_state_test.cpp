// The operator state machine: the transition table, deferred requests, and its agreement with
// the presence_state enum in PostgreSQL.
#include "switchboard/calls/operator_state.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>

#include <set>

namespace switchboard::calls {
namespace {

constexpr std::array all_states{operator_state::logged_out, operator_state::ready,   operator_state::not_ready,
                                operator_state::reserved,   operator_state::ringing, operator_state::talking,
                                operator_state::held,       operator_state::wrap_up};
constexpr std::array all_triggers{
    operator_trigger::log_in,     operator_trigger::go_ready,       operator_trigger::go_not_ready,
    operator_trigger::log_out,    operator_trigger::reserve,        operator_trigger::reservation_expired,
    operator_trigger::ring,       operator_trigger::ring_no_answer, operator_trigger::answer,
    operator_trigger::hold,       operator_trigger::retrieve,       operator_trigger::call_ended,
    operator_trigger::end_wrap_up};

TEST(OperatorStateTable, EachStateTriggerPairHasAtMostOneRow) {
  std::set<std::pair<int, int>> seen;
  for (const auto& t : allowed_transitions)
    EXPECT_TRUE(seen.insert({static_cast<int>(t.from), static_cast<int>(t.trigger)}).second)
        << to_string(t.from) << " + " << to_string(t.trigger);
}

TEST(OperatorStateTable, NoOperatorIsEverStuck) {
  // From every state there is a way back to ready or logged out.
  for (auto s : all_states) {
    std::set<operator_state> reached{s};
    bool grew = true;
    while (grew) {
      grew = false;
      for (const auto& t : allowed_transitions)
        if (reached.count(t.from) && reached.insert(t.to).second) grew = true;
    }
    EXPECT_TRUE(reached.count(operator_state::ready)) << to_string(s);
    EXPECT_TRUE(reached.count(operator_state::logged_out)) << to_string(s);
  }
}

TEST(OperatorStateMachine, EveryPairNotInTheTableIsRefusedWithAClearMessage) {
  for (auto s : all_states)
    for (auto trigger : all_triggers) {
      operator_state_machine m;
      m.restore(s, s == operator_state::not_ready ? "lunch" : "");
      auto outcome = m.apply(trigger, "break");
      const bool deferred =
          m.on_a_call() && (trigger == operator_trigger::go_not_ready || trigger == operator_trigger::log_out ||
                            trigger == operator_trigger::go_ready);
      if (next_state(s, trigger) || deferred) {
        EXPECT_TRUE(outcome.has_value()) << to_string(s) << " + " << to_string(trigger);
      } else {
        ASSERT_FALSE(outcome.has_value()) << to_string(s) << " + " << to_string(trigger);
        EXPECT_TRUE(outcome.error().is(errc::state_not_allowed));
        EXPECT_EQ(outcome.error().detail,
                  std::string(to_string(trigger)) + " is not allowed while " + std::string(to_string(s)));
        EXPECT_EQ(m.state(), s) << "a refused trigger changes nothing";
      }
    }
}

TEST(OperatorStateMachine, AWholeInboundCall) {
  operator_state_machine m;
  EXPECT_EQ(m.apply(operator_trigger::log_in)->to, operator_state::not_ready);
  EXPECT_EQ(m.reason(), "login");
  EXPECT_EQ(m.apply(operator_trigger::go_ready)->to, operator_state::ready);
  EXPECT_EQ(m.apply(operator_trigger::reserve)->to, operator_state::reserved);
  EXPECT_EQ(m.apply(operator_trigger::ring)->to, operator_state::ringing);
  EXPECT_EQ(m.apply(operator_trigger::answer)->to, operator_state::talking);
  EXPECT_EQ(m.apply(operator_trigger::hold)->to, operator_state::held);
  EXPECT_EQ(m.apply(operator_trigger::retrieve)->to, operator_state::talking);
  EXPECT_EQ(m.apply(operator_trigger::call_ended)->to, operator_state::wrap_up);
  EXPECT_EQ(m.apply(operator_trigger::end_wrap_up)->to, operator_state::ready);
}

TEST(OperatorStateMachine, NotReadyDuringACallAppliesAtTheEndOfWrapUp) {
  operator_state_machine m;
  m.restore(operator_state::talking);
  auto asked = m.apply(operator_trigger::go_not_ready, "lunch");
  ASSERT_TRUE(asked.has_value());
  EXPECT_EQ(asked->to, operator_state::talking);
  EXPECT_EQ(m.pending_not_ready(), "lunch");
  EXPECT_EQ(m.apply(operator_trigger::call_ended)->to, operator_state::wrap_up);
  auto after = m.apply(operator_trigger::end_wrap_up);
  EXPECT_EQ(after->to, operator_state::not_ready);
  EXPECT_EQ(after->reason, "lunch");
  EXPECT_FALSE(m.pending_not_ready());
}

TEST(OperatorStateMachine, ReadyDuringACallCancelsAPendingNotReady) {
  operator_state_machine m;
  m.restore(operator_state::talking);
  ASSERT_TRUE(m.apply(operator_trigger::go_not_ready, "lunch"));
  ASSERT_TRUE(m.apply(operator_trigger::go_ready));
  ASSERT_TRUE(m.apply(operator_trigger::call_ended));
  EXPECT_EQ(m.apply(operator_trigger::end_wrap_up)->to, operator_state::ready);
}

TEST(OperatorStateMachine, LogOutDuringACallWaitsForTheHangUp) {
  operator_state_machine m;
  m.restore(operator_state::ringing);
  ASSERT_TRUE(m.apply(operator_trigger::log_out));
  EXPECT_TRUE(m.pending_log_out());
  EXPECT_EQ(m.apply(operator_trigger::call_ended)->to, operator_state::logged_out);  // abandoned while ringing
}

TEST(OperatorStateMachine, NoAnswerMakesHimNotReadyNeverLoggedOut) {
  operator_state_machine m;
  m.restore(operator_state::ringing);
  auto done = m.apply(operator_trigger::ring_no_answer);
  EXPECT_EQ(done->to, operator_state::not_ready);
  EXPECT_EQ(done->reason, "no_answer");
  EXPECT_EQ(m.apply(operator_trigger::go_ready)->to, operator_state::ready);
}

TEST(OperatorStateMachine, NotReadyNeedsAReason) {
  operator_state_machine m;
  m.restore(operator_state::ready);
  EXPECT_FALSE(m.apply(operator_trigger::go_not_ready, "").has_value());
  EXPECT_EQ(m.state(), operator_state::ready);
}

TEST(OperatorStateMachine, StatesAreTheOnesPostgresqlStores) {
  testing::test_database db;
  const auto labels = db.scalar(
      "SELECT string_agg(e::text, ',' ORDER BY n) FROM unnest(enum_range(NULL::presence_state)) "
      "WITH ORDINALITY AS x(e, n)");
  std::string ours;
  for (auto s : all_states) ours += (ours.empty() ? "" : ",") + std::string(to_string(s));
  EXPECT_EQ(labels, ours);
  for (auto s : all_states) EXPECT_EQ(parse_operator_state(to_string(s)), s);
  EXPECT_FALSE(parse_operator_state("dancing"));
}

}  // namespace
}  // namespace switchboard::calls
