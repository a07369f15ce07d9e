// write_lanes: the call centre's writes spread over several connections, each operator's and
// each call's writes kept in their order on one lane while any of them is queued or in flight.
#include "switchboard/calls/write_lanes.hpp"

#include <gtest/gtest.h>

#include <map>

namespace switchboard {
namespace {

using calls::write_lanes;
using store::call_write;

call_write move(std::int64_t op, std::optional<std::int64_t> call, std::string to) {
  return store::presence_move{.operator_id = op, .from = {"ready"}, .to = std::move(to), .call_id = call};
}
call_write answered(std::int64_t call, std::int64_t op) {
  return store::call_answered{.call_id = call, .operator_id = op};
}
call_write journal(std::int64_t call, std::optional<std::int64_t> op, std::string kind) {
  return store::call_journal_entry{.call_id = call, .kind = std::move(kind), .operator_id = op};
}
call_write finished(std::int64_t call) { return store::call_finished{.call_id = call, .disposition = "answered"}; }
call_write wrap_up_code(std::int64_t call) { return store::call_wrap_up_code{.call_id = call, .code = "sale"}; }

// What a batch holds, as "kind:operator:call" per write, to compare orders.
std::vector<std::string> names(const std::vector<call_write>& batch) {
  std::vector<std::string> out;
  for (const auto& w : batch) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, store::presence_move>)
            out.push_back("move:" + std::to_string(x.operator_id) + ":" + x.to);
          else if constexpr (std::is_same_v<T, store::call_answered>)
            out.push_back("answered:" + std::to_string(x.call_id));
          else if constexpr (std::is_same_v<T, store::call_journal_entry>)
            out.push_back("journal:" + std::to_string(x.call_id) + ":" + x.kind);
          else if constexpr (std::is_same_v<T, store::call_finished>)
            out.push_back("finished:" + std::to_string(x.call_id));
          else
            out.push_back("other:" + std::to_string(x.call_id));
        },
        w);
  }
  return out;
}

TEST(WriteLanes, OneLaneTakesEveryWriteInOrderAsOneBatch) {
  write_lanes lanes(1);
  EXPECT_EQ(lanes.push(move(1, 10, "ringing")), 0u);
  EXPECT_EQ(lanes.push(move(2, 20, "ringing")), 0u);
  EXPECT_EQ(lanes.push(answered(10, 1)), 0u);
  EXPECT_EQ(lanes.pending(), 3u);
  const auto batch = lanes.take(0);
  EXPECT_EQ(names(batch), (std::vector<std::string>{"move:1:ringing", "move:2:ringing", "answered:10"}));
  EXPECT_TRUE(lanes.in_flight(0));
  EXPECT_EQ(lanes.pending(), 3u);
  EXPECT_EQ(lanes.push(finished(10)), 0u);
  EXPECT_TRUE(lanes.take(0).empty()) << "one batch in flight per lane";
  EXPECT_EQ(lanes.done(0), 0u);
  EXPECT_EQ(lanes.pending(), 1u);
  EXPECT_EQ(names(lanes.take(0)), (std::vector<std::string>{"finished:10"}));
}

TEST(WriteLanes, ZeroLanesIsOne) { EXPECT_EQ(write_lanes(0).lanes(), 1u); }

TEST(WriteLanes, FreeWritesStayOnTheFirstLaneUntilItHasSpillWritesQueued) {
  write_lanes lanes(2);  // write_lanes::default_spill
  for (std::int64_t op = 1; op <= static_cast<std::int64_t>(write_lanes::default_spill); ++op)
    EXPECT_EQ(lanes.push(move(op, 100 + op, "ringing")), 0u);
  EXPECT_EQ(lanes.push(move(99, 999, "ringing")), 1u);
  lanes.take(0);  // in flight: nothing queued there, so the next goes there again
  EXPECT_EQ(lanes.push(move(98, 998, "ringing")), 0u);
}

TEST(WriteLanes, PastTheSpillFreeWritesGoToTheLeastLoadedLane) {
  write_lanes lanes(2, 1);
  EXPECT_EQ(lanes.push(move(1, 10, "ringing")), 0u);
  EXPECT_EQ(lanes.push(move(2, 20, "ringing")), 1u);
  EXPECT_EQ(lanes.push(move(3, 30, "ringing")), 0u);  // equal loads: the first
  EXPECT_EQ(lanes.queued(0), 2u);
  EXPECT_EQ(lanes.queued(1), 1u);
}

TEST(WriteLanes, AnOperatorsAndACallsWritesStayOnTheirLaneWhileAnyIsQueuedOrInFlight) {
  write_lanes lanes(2, 1);
  EXPECT_EQ(lanes.push(move(1, 10, "ringing")), 0u);
  EXPECT_EQ(lanes.push(move(2, 20, "ringing")), 1u);
  const auto first = lanes.take(0);  // operator 1 and call 10 in flight on lane 0
  EXPECT_EQ(lanes.push(move(3, 30, "ringing")), 0u) << "nothing queued on lane 0 (its batch is in flight)";
  // Lane 1 is now lighter, but operator 1 and call 10 are on lane 0.
  EXPECT_EQ(lanes.push(move(1, 10, "talking")), 0u);  // the same operator and call
  EXPECT_EQ(lanes.push(answered(10, 1)), 0u);         // the call, with its operator
  EXPECT_EQ(lanes.push(finished(10)), 0u);            // the call alone
  EXPECT_EQ(lanes.push(wrap_up_code(20)), 1u);        // call 20, queued on lane 1
  EXPECT_EQ(lanes.push(journal(20, std::nullopt, "held")), 1u);
  EXPECT_EQ(names(lanes.take(0)), std::vector<std::string>{}) << "lane 0's batch is still in flight";
  lanes.done(0);
  EXPECT_EQ(names(lanes.take(0)),
            (std::vector<std::string>{"move:3:ringing", "move:1:talking", "answered:10", "finished:10"}));
  EXPECT_EQ(names(lanes.take(1)), (std::vector<std::string>{"move:2:ringing", "other:20", "journal:20:held"}));
}

TEST(WriteLanes, AWriteGoesAnywhereOnceItsOperatorsAndCallsEarlierWritesAreDone) {
  write_lanes lanes(2, 1);
  EXPECT_EQ(lanes.push(move(1, 10, "ringing")), 0u);
  lanes.take(0);
  lanes.done(0);
  EXPECT_EQ(lanes.push(move(2, 20, "ringing")), 0u);
  EXPECT_EQ(lanes.push(move(3, 30, "ringing")), 1u);
  EXPECT_EQ(lanes.push(move(4, 40, "ringing")), 0u);  // equal loads: the first
  // Operator 1's earlier write is applied: his next goes to the least loaded lane, not to lane 0.
  EXPECT_EQ(lanes.push(move(1, 10, "talking")), 1u);
}

// Two lanes, `first` in flight on the first and `second` on the second.
write_lanes both_in_flight(call_write first, call_write second) {
  write_lanes lanes(2, 1);
  EXPECT_EQ(lanes.push(std::move(first)), 0u);
  EXPECT_EQ(lanes.push(std::move(second)), 1u);
  lanes.take(0);
  lanes.take(1);
  return lanes;
}

TEST(WriteLanes, AWriteWhoseOperatorAndCallAreOnTwoLanesWaitsAndNothingOvertakesIt) {
  // A transfer: call 10 was Alice's (operator 1), its writes in flight on lane 0; Bob (operator
  // 2) has his own writes in flight on lane 1 when he answers it.
  auto lanes = both_in_flight(journal(10, 1, "transferred"), move(2, 20, "wrap_up"));
  EXPECT_EQ(lanes.push(answered(10, 2)), std::nullopt);
  EXPECT_EQ(lanes.push(move(3, 30, "ringing")), std::nullopt) << "free of both, but after a waiting write";
  EXPECT_EQ(lanes.waiting(), 2u);
  EXPECT_EQ(lanes.pending(), 4u);
  // Bob's lane is done first: the answer goes to call 10's lane, and the next write after it.
  EXPECT_EQ(lanes.done(1), 2u);
  EXPECT_EQ(lanes.waiting(), 0u);
  EXPECT_EQ(lanes.queued(0), 1u);
  EXPECT_EQ(lanes.queued(1), 1u);
  lanes.done(0);
  EXPECT_EQ(names(lanes.take(0)), (std::vector<std::string>{"answered:10"}));
  EXPECT_EQ(names(lanes.take(1)), (std::vector<std::string>{"move:3:ringing"}));
}

TEST(WriteLanes, AWaitingWriteStaysUntilOneOfItsTwoLanesIsFree) {
  auto lanes = both_in_flight(move(1, 10, "talking"), move(2, 20, "talking"));
  EXPECT_EQ(lanes.push(journal(10, 2, "consulted")), std::nullopt);  // call 10 on lane 0, operator 2 on 1
  EXPECT_EQ(lanes.push(move(2, 20, "held")), std::nullopt);
  EXPECT_EQ(lanes.done(0), 2u) << "call 10 is free: the journal row follows operator 2 to lane 1";
  EXPECT_EQ(names(lanes.take(1)), std::vector<std::string>{}) << "lane 1's batch is still in flight";
  EXPECT_EQ(lanes.queued(1), 2u);
  lanes.done(1);
  EXPECT_EQ(names(lanes.take(1)), (std::vector<std::string>{"journal:10:consulted", "move:2:held"}));
  EXPECT_EQ(lanes.pending(), 2u);
  lanes.done(1);
  EXPECT_EQ(lanes.pending(), 0u);
}

class WriteLanesSpill : public ::testing::TestWithParam<std::size_t> {};

TEST_P(WriteLanesSpill, ManyInterleavedCallsKeepEachOperatorsAndEachCallsOrder) {
  // 40 operators, each taking calls in turn, every third call transferred to a colleague (his
  // writes then name the call too); writes from three lanes applied in whatever order the lanes
  // finish: per operator and per call, the applied order is the order pushed.
  write_lanes lanes(3, GetParam());
  std::vector<call_write> pushed;
  std::int64_t next_call = 100;
  for (int round = 0; round < 5; ++round)
    for (std::int64_t op = 1; op <= 40; ++op) {
      const std::int64_t call = next_call++;
      pushed.push_back(move(op, call, "ringing"));
      pushed.push_back(move(op, call, "talking"));
      pushed.push_back(answered(call, op));
      if (call % 3 == 0) {
        const std::int64_t colleague = op == 1 ? 40 : op - 1;  // his writes just before: often in flight
        pushed.push_back(journal(call, op, "transferred"));
        pushed.push_back(move(op, call, "ready"));
        pushed.push_back(answered(call, colleague));
        pushed.push_back(journal(call, colleague, "answered"));
        pushed.push_back(move(colleague, std::nullopt, "ready"));
      }
      pushed.push_back(move(op, call, "wrap_up"));
      pushed.push_back(finished(call));
      pushed.push_back(move(op, std::nullopt, "ready"));
    }
  // Every idle lane takes its batch at once; the batches in flight end in a scrambled order, so
  // a batch taken later often ends first, as on connections running side by side.
  std::vector<call_write> applied;
  std::vector<std::vector<call_write>> in_flight(lanes.lanes());
  std::vector<std::size_t> taken(lanes.lanes());  // writes each lane applied
  std::size_t waited = 0;                         // pushes that waited behind a conflict
  std::size_t at = 0;
  unsigned scramble = 7;
  while (at < pushed.size() || lanes.pending() > 0) {
    for (int i = 0; i < 5 && at < pushed.size(); ++i)
      if (!lanes.push(pushed[at++])) ++waited;
    for (std::size_t lane = 0; lane < lanes.lanes(); ++lane)
      if (!lanes.in_flight(lane)) in_flight[lane] = lanes.take(lane);
    scramble = scramble * 1103515245u + 12345u;
    const std::size_t lane = (scramble >> 16) % lanes.lanes();
    taken[lane] += in_flight[lane].size();
    for (auto& w : in_flight[lane]) applied.push_back(std::move(w));
    in_flight[lane].clear();
    lanes.done(lane);
  }
  ASSERT_EQ(applied.size(), pushed.size());
  // Each write under its operator (when it names one) and under its call (when it names one).
  const auto order_of = [](const std::vector<call_write>& writes) {
    std::map<std::string, std::vector<std::string>> by_key;
    const auto all = names(writes);
    for (std::size_t i = 0; i < writes.size(); ++i) {
      std::visit(
          [&](const auto& w) {
            using T = std::decay_t<decltype(w)>;
            std::optional<std::int64_t> op;
            std::optional<std::int64_t> call;
            if constexpr (std::is_same_v<T, store::presence_move>) {
              op = w.operator_id;
              call = w.call_id;
            } else if constexpr (std::is_same_v<T, store::call_answered>) {
              op = w.operator_id;
              call = w.call_id;
            } else if constexpr (std::is_same_v<T, store::call_journal_entry>) {
              op = w.operator_id;
              call = w.call_id;
            } else {
              call = w.call_id;
            }
            if (op) by_key["op" + std::to_string(*op)].push_back(all[i] + "#" + std::to_string(i));
            if (call) by_key["call" + std::to_string(*call)].push_back(all[i]);
          },
          writes[i]);
    }
    return by_key;
  };
  const auto strip = [](std::map<std::string, std::vector<std::string>> by_key) {
    for (auto& [key, list] : by_key)
      for (auto& name : list) name = name.substr(0, name.find('#'));
    return by_key;
  };
  EXPECT_EQ(strip(order_of(applied)), strip(order_of(pushed)));
  EXPECT_GT(waited, 0u) << "no write ever waited behind a conflict: the test missed that path";
  for (std::size_t lane = 0; lane < taken.size(); ++lane) EXPECT_GT(taken[lane], 0u) << "lane " << lane;
}

INSTANTIATE_TEST_SUITE_P(WriteLanes, WriteLanesSpill, ::testing::Values(1, 4));

}  // namespace
}  // namespace switchboard
