// The call tracker on scripted PBX event sequences: each way a call can go, with the record it
// leaves (times, operators, disposition).
#include "switchboard/calls/call_tracker.hpp"

#include <gtest/gtest.h>

namespace switchboard::calls {
namespace {

using namespace std::chrono_literals;
using kind = call_update::kind;

class CallTracker : public ::testing::Test {
 protected:
  void SetUp() override {
    tracker_.add_operator_device("2001");
    tracker_.add_operator_device("2002");
  }

  // Feeds `e` at t0 + `at` and returns the kinds of the updates.
  std::vector<kind> feed(const pbx::event& e, std::chrono::seconds at) {
    last_ = tracker_.on_event(e, t0_ + at);
    std::vector<kind> kinds;
    for (const auto& u : last_) kinds.push_back(u.what);
    return kinds;
  }

  void offer(const pbx::call_id& call, std::chrono::seconds at) {
    EXPECT_EQ(feed(pbx::call_offered{.dialog = "d-" + call,
                                     .route_point = "5000",
                                     .call = {call, "5000"},
                                     .caller = pbx::party::known("+4930555001"),
                                     .dialled = pbx::party::known("5000"),
                                     .correlator = "lang=en"},
                   at),
              std::vector{kind::offered});
  }
  pbx::event delivered(const pbx::call_id& call, const pbx::device_id& at_device,
                       const std::string& calling = "+4930555001") {
    return pbx::call_delivered{.connection = {call, at_device},
                               .alerting = pbx::party::known(at_device),
                               .calling = pbx::party::known(calling)};
  }
  pbx::event established(const pbx::call_id& call, const pbx::device_id& at_device) {
    return pbx::call_established{.connection = {call, at_device}, .answering = pbx::party::known(at_device)};
  }
  // Operator `from` dials `to` (a call of his own, or a consultation while he holds one).
  pbx::event originated(const pbx::call_id& call, const pbx::device_id& from, const std::string& to) {
    return pbx::call_originated{
        .connection = {call, from}, .calling = pbx::party::known(from), .called = pbx::party::known(to)};
  }
  pbx::event cleared(const pbx::call_id& call, const pbx::device_id& device) {
    return pbx::connection_cleared{.connection = {call, device}, .releasing = pbx::party::known(device)};
  }
  // Alice (2001) calls her colleague bob (2002), whose phone answers: I1, a call she placed.
  void alice_calls_bob() {
    feed(originated("I1", "2001", "2002"), 0s);
    feed(delivered("I1", "2002", "2001"), 1s);
    feed(established("I1", "2002"), 3s);
  }
  // Alice hands I1 on to `to` with a single-step transfer: bob and `to` are on I2 from then.
  std::vector<kind> alice_transfers_to(const pbx::device_id& to, std::chrono::seconds at) {
    return feed(
        pbx::call_transferred{.primary_old_call = "I1",
                              .transferring = pbx::party::known("2001"),
                              .transferred_to = pbx::party::known(to),
                              .connections = {{pbx::connection_id{"I1", "2002"}, pbx::connection_id{"I2", "2002"},
                                               pbx::party::known("2002")},
                                              {std::nullopt, pbx::connection_id{"I2", to}, pbx::party::known(to)}}},
        at);
  }
  // Alice completes the transfer of I1 to carol (2003), whom she consulted on I2: bob and carol
  // are on I3 from then.
  static pbx::event alice_transfers_bob_to_carol() {
    return pbx::call_transferred{
        .primary_old_call = "I1",
        .secondary_old_call = "I2",
        .transferring = pbx::party::known("2001"),
        .transferred_to = pbx::party::known("2003"),
        .connections = {
            {pbx::connection_id{"I1", "2002"}, pbx::connection_id{"I3", "2002"}, pbx::party::known("2002")},
            {pbx::connection_id{"I2", "2003"}, pbx::connection_id{"I3", "2003"}, pbx::party::known("2003")}}};
  }
  const tracked_call& ended_call() {
    EXPECT_FALSE(last_.empty());
    EXPECT_EQ(last_.back().what, kind::ended);
    return last_.back().call;
  }

  call_tracker tracker_;
  time_point t0_ = time_point(std::chrono::seconds(1'700'000'000));
  std::vector<call_update> last_;
};

TEST_F(CallTracker, RoutedAnsweredAndHungUpByTheOperator) {
  offer("C1", 0s);
  tracker_.set_record_id("C1", 42);
  EXPECT_EQ(feed(pbx::call_diverted{.connection = {"C1", "5000"}}, 1s), std::vector<kind>{});
  EXPECT_EQ(feed(delivered("C1", "2001"), 1s), std::vector{kind::ringing});
  EXPECT_EQ(tracker_.call_at("2001")->phase, call_phase::ringing);
  EXPECT_EQ(feed(established("C1", "2001"), 4s), std::vector{kind::answered});
  EXPECT_EQ(feed(cleared("C1", "2001"), 64s), (std::vector{kind::operator_left, kind::ended}));
  const auto& c = ended_call();
  EXPECT_EQ(c.record_id, 42);
  EXPECT_EQ(c.disposition, call_disposition::answered);
  EXPECT_EQ(c.operators, std::vector<pbx::device_id>{"2001"});
  EXPECT_EQ(*c.answered_at - c.offered_at, 4s);
  EXPECT_EQ(*c.ended_at - c.offered_at, 64s);
  EXPECT_EQ(c.correlator, "lang=en");
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

TEST_F(CallTracker, CallerHangsUpWhileWaiting) {
  offer("C1", 0s);
  tracker_.mark_queued("C1", t0_ + 1s);
  EXPECT_EQ(tracker_.find("C1")->phase, call_phase::waiting);
  EXPECT_EQ(feed(cleared("C1", "+4930555001"), 30s), std::vector{kind::ended});
  EXPECT_EQ(ended_call().disposition, call_disposition::abandoned_waiting);
  EXPECT_EQ(*ended_call().queued_at - ended_call().offered_at, 1s);
}

TEST_F(CallTracker, CallerHangsUpWhileTheOperatorRings) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 1s);
  EXPECT_EQ(feed(pbx::call_cleared{.call = "C1"}, 5s), (std::vector{kind::ring_cancelled, kind::ended}));
  EXPECT_EQ(last_.front().device, "2001");
  EXPECT_EQ(ended_call().disposition, call_disposition::abandoned_ringing);
}

TEST_F(CallTracker, HoldTimeIsSummed) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 0s);
  feed(established("C1", "2001"), 1s);
  EXPECT_EQ(feed(pbx::call_held{.connection = {"C1", "2001"}}, 10s), std::vector{kind::held});
  EXPECT_EQ(feed(pbx::call_retrieved{.connection = {"C1", "2001"}}, 25s), std::vector{kind::retrieved});
  feed(pbx::call_held{.connection = {"C1", "2001"}}, 30s);
  feed(pbx::call_cleared{.call = "C1"}, 35s);  // hung up while holding
  EXPECT_EQ(ended_call().held_total, 20s);
}

TEST_F(CallTracker, ConsultationThenTransferToASpecialist) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 0s);
  feed(established("C1", "2001"), 2s);
  feed(pbx::call_held{.connection = {"C1", "2001"}}, 10s);
  EXPECT_EQ(feed(delivered("C2", "2002", "2001"), 11s), (std::vector{kind::consultation, kind::consult_ringing}));
  EXPECT_EQ(last_[0].other, "2002");
  EXPECT_EQ(last_[1].device, "2002");  // the specialist is busy with the call from now
  EXPECT_EQ(tracker_.find("C1")->phase, call_phase::consulting);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "C1");
  // The consultation leg is not a new call; the specialist talks on it.
  EXPECT_EQ(feed(established("C2", "2002"), 13s), std::vector{kind::consult_answered});
  auto transfer = pbx::call_transferred{
      .primary_old_call = "C1",
      .secondary_old_call = "C2",
      .transferring = pbx::party::known("2001"),
      .transferred_to = pbx::party::known("2002"),
      .connections = {{pbx::connection_id{"C1", "+4930555001"}, pbx::connection_id{"C3", "+4930555001"},
                       pbx::party::known("+4930555001")},
                      {pbx::connection_id{"C2", "2002"}, pbx::connection_id{"C3", "2002"}, pbx::party::known("2002")}}};
  EXPECT_EQ(feed(transfer, 20s), (std::vector{kind::operator_left, kind::transferred}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(tracker_.find("C1"), nullptr);
  ASSERT_NE(tracker_.find("C3"), nullptr);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "C3");
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(feed(cleared("C3", "2002"), 80s), (std::vector{kind::operator_left, kind::ended}));
  const auto& c = ended_call();
  EXPECT_EQ(c.disposition, call_disposition::transferred);
  EXPECT_EQ(c.operators, (std::vector<pbx::device_id>{"2001", "2002"}));
  EXPECT_EQ(c.first_pbx_id, "C1");
  EXPECT_EQ(c.held_total, 10s);  // held from 10 s until the transfer at 20 s
}

TEST_F(CallTracker, ConsultationAbandonedReturnsToTheHeldCall) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 0s);
  feed(established("C1", "2001"), 1s);
  feed(pbx::call_held{.connection = {"C1", "2001"}}, 5s);
  feed(delivered("C2", "2002", "2001"), 6s);
  EXPECT_EQ(feed(cleared("C2", "2002"), 9s), std::vector{kind::consult_left});  // the specialist is free again
  EXPECT_EQ(last_[0].device, "2002");
  EXPECT_EQ(tracker_.call_at("2002"), nullptr);
  EXPECT_EQ(tracker_.find("C1")->phase, call_phase::held);
  EXPECT_FALSE(tracker_.find("C1")->consultation);
  EXPECT_EQ(feed(pbx::call_retrieved{.connection = {"C1", "2001"}}, 10s), std::vector{kind::retrieved});
}

TEST_F(CallTracker, ConferenceKeepsTheCallUntilTheLastOperatorLeaves) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 0s);
  feed(established("C1", "2001"), 1s);
  feed(pbx::call_held{.connection = {"C1", "2001"}}, 5s);
  feed(delivered("C2", "2002", "2001"), 6s);
  feed(established("C2", "2002"), 7s);
  auto conference = pbx::call_conferenced{
      .primary_old_call = "C1",
      .secondary_old_call = "C2",
      .conferencing = pbx::party::known("2001"),
      .added_party = pbx::party::known("2002"),
      .connections = {{pbx::connection_id{"C1", "+4930555001"}, pbx::connection_id{"C1", "+4930555001"}, {}},
                      {pbx::connection_id{"C1", "2001"}, pbx::connection_id{"C1", "2001"}, {}},
                      {pbx::connection_id{"C2", "2002"}, pbx::connection_id{"C1", "2002"}, {}}}};
  EXPECT_EQ(feed(conference, 8s), std::vector{kind::conferenced});
  EXPECT_EQ(feed(cleared("C1", "2001"), 20s), std::vector{kind::operator_left});
  EXPECT_EQ(tracker_.call_at("2002")->phase, call_phase::talking);
  EXPECT_EQ(feed(cleared("C1", "2002"), 30s), (std::vector{kind::operator_left, kind::ended}));
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
  EXPECT_EQ(ended_call().operators, (std::vector<pbx::device_id>{"2001", "2002"}));
}

TEST_F(CallTracker, PbxDefaultRoutingIsRecordedAsSuch) {
  offer("C1", 0s);
  EXPECT_EQ(feed(delivered("C1", "9000"), 5s), std::vector<kind>{});
  feed(established("C1", "9000"), 6s);
  EXPECT_EQ(feed(pbx::call_cleared{.call = "C1"}, 60s), std::vector{kind::ended});
  EXPECT_EQ(ended_call().disposition, call_disposition::default_routed);
}

TEST_F(CallTracker, RouterSentItToTheClosedDestination) {
  offer("C1", 0s);
  tracker_.mark_routed_elsewhere("C1", call_disposition::closed);
  feed(delivered("C1", "6000"), 1s);
  feed(pbx::call_cleared{.call = "C1"}, 20s);
  EXPECT_EQ(ended_call().disposition, call_disposition::closed);
}

TEST_F(CallTracker, RingNoAnswerDeflectedToAnotherOperator) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 1s);
  EXPECT_EQ(feed(pbx::call_diverted{.connection = {"C1", "2001"}, .new_destination = pbx::party::known("2002")}, 16s),
            std::vector{kind::ring_cancelled});
  EXPECT_EQ(feed(delivered("C1", "2002"), 16s), std::vector{kind::ringing});
  EXPECT_EQ(feed(established("C1", "2002"), 18s), std::vector{kind::answered});
  EXPECT_EQ(tracker_.find("C1")->operators, std::vector<pbx::device_id>{"2002"});
}

TEST_F(CallTracker, DirectCallToAnOperatorIsTracked) {
  EXPECT_EQ(feed(delivered("D1", "2001", "+4930999"), 0s), (std::vector{kind::direct, kind::ringing}));
  EXPECT_TRUE(tracker_.find("D1")->direct);
  feed(established("D1", "2001"), 2s);
  EXPECT_EQ(feed(cleared("D1", "+4930999"), 9s), (std::vector{kind::operator_left, kind::ended}));
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
}

TEST_F(CallTracker, AnOperatorsOutgoingCallKeepsHimBusyUntilHeHangsUp) {
  EXPECT_EQ(feed(originated("O1", "2001", "+4930777"), 0s), (std::vector{kind::direct, kind::dialling}));
  EXPECT_EQ(last_[1].device, "2001");
  EXPECT_EQ(tracker_.call_at("2001")->pbx_id, "O1");
  EXPECT_EQ(feed(delivered("O1", "+4930777", "2001"), 1s), std::vector<kind>{});
  EXPECT_EQ(feed(established("O1", "+4930777"), 5s), std::vector{kind::answered});  // the far end answered
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(feed(pbx::call_held{.connection = {"O1", "2001"}}, 6s), std::vector{kind::held});
  EXPECT_EQ(feed(pbx::call_retrieved{.connection = {"O1", "2001"}}, 8s), std::vector{kind::retrieved});
  EXPECT_EQ(feed(cleared("O1", "2001"), 30s), (std::vector{kind::operator_left, kind::ended}));
  const auto& c = ended_call();
  EXPECT_EQ(c.disposition, call_disposition::answered);
  EXPECT_EQ(c.answered_at, t0_ + 5s);
  EXPECT_EQ(c.dialled, "+4930777");
  EXPECT_EQ(c.held_total, 2s);
}

TEST_F(CallTracker, AnUnansweredOutgoingCallEndsAbandoned) {
  feed(originated("O2", "2001", "+4930777"), 0s);
  feed(delivered("O2", "+4930777", "2001"), 1s);
  EXPECT_EQ(feed(cleared("O2", "2001"), 20s), (std::vector{kind::operator_left, kind::ended}));
  EXPECT_EQ(ended_call().disposition, call_disposition::abandoned_ringing);
}

TEST_F(CallTracker, ACallBetweenTwoOperatorsBusiesBoth) {
  feed(originated("I1", "2001", "2002"), 0s);
  EXPECT_EQ(feed(delivered("I1", "2002", "2001"), 1s), std::vector{kind::ringing});
  EXPECT_EQ(feed(established("I1", "2002"), 3s), std::vector{kind::answered});
  EXPECT_EQ(last_[0].device, "2002");
  // The callee hangs up: he leaves, and the call ends with the operator who placed it.
  EXPECT_EQ(feed(cleared("I1", "2002"), 9s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2002");
  EXPECT_EQ(last_[1].device, "2001");
}

TEST_F(CallTracker, AConsultationSeenFromItsOriginatedEventIsNotAnOutgoingCall) {
  offer("C1", 0s);
  feed(delivered("C1", "2001"), 0s);
  feed(established("C1", "2001"), 1s);
  feed(pbx::call_held{.connection = {"C1", "2001"}}, 5s);
  EXPECT_EQ(feed(originated("C2", "2001", "2002"), 6s), std::vector{kind::consultation});
  EXPECT_EQ(feed(delivered("C2", "2002", "2001"), 6s), std::vector{kind::consult_ringing});
  EXPECT_EQ(tracker_.open_calls(), 1u);
  // The caller hangs up while the specialist's phone rings: the consultation goes on (it rings).
  EXPECT_EQ(feed(pbx::call_cleared{.call = "C1"}, 7s),
            (std::vector{kind::consult_kept, kind::direct, kind::dialling, kind::ringing, kind::ended}));
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "C2");
}

// The caller held for a consultation leaves: the PBX keeps the consultation call.
class ConsultationKept : public CallTracker {
 protected:
  // Alice (2001) holds C1 and consults `to` on C2, which answers when `answered`.
  void consulting(const pbx::device_id& to, bool answered) {
    offer("C1", 0s);
    tracker_.set_record_id("C1", 42);
    feed(pbx::call_diverted{.connection = {"C1", "5000"}}, 0s);
    feed(delivered("C1", "2001"), 0s);
    feed(established("C1", "2001"), 1s);
    feed(pbx::call_held{.connection = {"C1", "2001"}}, 5s);
    feed(delivered("C2", to, "2001"), 6s);
    if (answered) feed(established("C2", to), 7s);
  }
};

TEST_F(ConsultationKept, TheCallerWhoHangsUpEndsHisCallAndTheConsultationGoesOnAsACallAliceMade) {
  consulting("2002", true);
  EXPECT_EQ(feed(cleared("C1", "+4930555001"), 30s),
            (std::vector{kind::consult_kept, kind::direct, kind::dialling, kind::answered, kind::ended}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[0].other, "C2");
  EXPECT_EQ(last_[0].call.consulted, "2002");  // as it was when he left
  EXPECT_EQ(last_[3].device, "2002");
  const auto& ended = ended_call();
  EXPECT_EQ(ended.pbx_id, "C1");
  EXPECT_EQ(ended.disposition, call_disposition::answered);
  EXPECT_EQ(ended.held_total, 25s);
  EXPECT_EQ(ended.operators, std::vector<pbx::device_id>{"2001"});
  // C2 is a call of its own between the two, which neither leaves for routing.
  const auto* kept = tracker_.find("C2");
  ASSERT_NE(kept, nullptr);
  EXPECT_TRUE(kept->direct);
  EXPECT_EQ(kept->record_id, 0);
  EXPECT_EQ(kept->dialled_by, "2001");
  EXPECT_EQ(kept->caller + ">" + kept->dialled, "2001>2002");
  EXPECT_EQ(kept->talking_at, "2002");
  EXPECT_EQ(kept->phase, call_phase::talking);
  EXPECT_EQ(kept->answered_at, t0_ + 30s);
  EXPECT_EQ(tracker_.call_at("2001"), kept);
  EXPECT_EQ(tracker_.call_at("2002"), kept);
  // The PBX's end of C1 changes nothing more; C2 ends when either hangs up, freeing both.
  EXPECT_EQ(feed(cleared("C1", "2001"), 30s), std::vector<kind>{});
  EXPECT_EQ(feed(pbx::call_cleared{.call = "C1"}, 30s), std::vector<kind>{});
  EXPECT_EQ(feed(cleared("C2", "2002"), 90s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2002");
  EXPECT_EQ(last_[1].device, "2001");
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
  EXPECT_EQ(ended_call().first_pbx_id, "C2");
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

TEST_F(ConsultationKept, AliceDroppingTheHeldCallerIsOnTheConsultationStillRinging) {
  consulting("2002", false);
  EXPECT_EQ(feed(cleared("C1", "2001"), 10s),
            (std::vector{kind::consult_kept, kind::direct, kind::dialling, kind::ringing, kind::ended}));
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
  EXPECT_EQ(tracker_.call_at("2002")->ringing_at, "2002");
  EXPECT_EQ(feed(established("C2", "2002"), 12s), std::vector{kind::answered});
  EXPECT_EQ(feed(cleared("C2", "2001"), 40s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[1].device, "2002");
}

TEST_F(ConsultationKept, AConsultationOfAnOutsideNumberIsAlicesOwnCallOnceAnswered) {
  consulting("+4930777", true);
  EXPECT_EQ(feed(pbx::call_cleared{.call = "C1"}, 20s),
            (std::vector{kind::consult_kept, kind::direct, kind::dialling, kind::answered, kind::ended}));
  EXPECT_EQ(last_[3].device, "2001");
  EXPECT_EQ(tracker_.call_at("2001")->dialled, "+4930777");
  EXPECT_EQ(feed(cleared("C2", "+4930777"), 50s), (std::vector{kind::operator_left, kind::ended}));
}

TEST_F(CallTracker, TheOperatorWhoPlacedACallAndTransfersItLeavesIt) {
  alice_calls_bob();
  EXPECT_EQ(alice_transfers_to("+4930777", 9s), (std::vector{kind::operator_left, kind::transferred}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "I2");
}

// Alice (2001) called her colleague bob (2002) and hands him on to carol (2003) with a
// single-step transfer: bob was left out of the call and stayed busy after it ended.
TEST_F(CallTracker, AColleagueBlindTransferredByTheOperatorWhoCalledHimStaysInTheCallAndLeavesItAtTheEnd) {
  tracker_.add_operator_device("2003");
  alice_calls_bob();
  EXPECT_EQ(alice_transfers_to("2003", 9s), (std::vector{kind::operator_left, kind::transferred}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[1].other, "2003");
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  ASSERT_NE(tracker_.call_at("2002"), nullptr);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "I2");
  ASSERT_NE(tracker_.call_at("2003"), nullptr);
  EXPECT_EQ(tracker_.call_at("2003")->pbx_id, "I2");
  // Carol's phone rings and answers the call she was given: nothing new, bob is still in it.
  EXPECT_EQ(feed(delivered("I2", "2003", "2001"), 9s), std::vector<kind>{});
  EXPECT_EQ(feed(established("I2", "2003"), 10s), std::vector<kind>{});
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "I2");
  // Carol hangs up: both leave, and the call ends.
  EXPECT_EQ(feed(cleared("I2", "2003"), 40s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2003");
  EXPECT_EQ(last_[1].device, "2002");
  EXPECT_EQ(ended_call().disposition, call_disposition::transferred);
  EXPECT_EQ(ended_call().operators, (std::vector<pbx::device_id>{"2002", "2003"}));
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

TEST_F(CallTracker, ABlindTransferredColleagueWhoHangsUpFirstLeavesTheCallToTheOneHeWasGiven) {
  tracker_.add_operator_device("2003");
  alice_calls_bob();
  alice_transfers_to("2003", 9s);
  feed(established("I2", "2003"), 10s);
  EXPECT_EQ(feed(cleared("I2", "2002"), 40s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2002");
  EXPECT_EQ(last_[1].device, "2003");
}

// The same after she consulted carol from her phone, a hold this tracker did not see (the PBX did
// not report it): her consultation was a call of its own (I2), which stayed open after the
// transfer with alice and carol in it: both were taken for busy on it, and its record never ended.
TEST_F(CallTracker, AColleagueTransferredAfterAConsultationByTheOperatorWhoCalledHimEndsHerConsultationCall) {
  tracker_.add_operator_device("2003");
  alice_calls_bob();
  EXPECT_EQ(feed(originated("I2", "2001", "2003"), 6s), (std::vector{kind::direct, kind::dialling}));
  feed(delivered("I2", "2003", "2001"), 6s);
  EXPECT_EQ(feed(established("I2", "2003"), 7s), std::vector{kind::answered});
  EXPECT_EQ(feed(alice_transfers_bob_to_carol(), 9s),
            (std::vector{kind::operator_left, kind::ended, kind::operator_left, kind::transferred}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[1].call.pbx_id, "I2");
  EXPECT_EQ(last_[1].call.disposition, call_disposition::transferred);
  EXPECT_EQ(last_[2].device, "2001");
  EXPECT_EQ(last_[3].call.pbx_id, "I3");
  EXPECT_EQ(tracker_.open_calls(), 1u);
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "I3");
  EXPECT_EQ(tracker_.call_at("2003")->pbx_id, "I3");
  EXPECT_EQ(feed(cleared("I3", "2003"), 40s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2003");
  EXPECT_EQ(last_[1].device, "2002");
  EXPECT_EQ(ended_call().operators, (std::vector<pbx::device_id>{"2002", "2003"}));
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

// Alice (2001) holds I1, the call she placed to bob (2002), and consults carol (2003) on I2. Her
// hold was not followed (only the operator talking on a call could hold it), so her desktop could
// not complete a transfer or conference, and I2 was a second call at her phone.
class ConsultingOnACallSheplaced : public CallTracker {
 protected:
  void SetUp() override {
    CallTracker::SetUp();
    tracker_.add_operator_device("2003");
    alice_calls_bob();
    ASSERT_EQ(feed(pbx::call_held{.connection = {"I1", "2001"}}, 5s), std::vector{kind::held});
    EXPECT_EQ(last_[0].device, "2001");
    ASSERT_NE(tracker_.call_at("2001"), nullptr);
    EXPECT_EQ(tracker_.call_at("2001")->phase, call_phase::held);
    EXPECT_EQ(tracker_.call_at("2001")->held_by, "2001");
    EXPECT_EQ(feed(pbx::call_held{.connection = {"I1", "2001"}}, 5s), std::vector<kind>{});  // bob's monitor's report
    ASSERT_EQ(feed(originated("I2", "2001", "2003"), 6s), std::vector{kind::consultation});
    EXPECT_EQ(last_[0].device, "2001");
    EXPECT_EQ(last_[0].other, "2003");
    ASSERT_EQ(feed(delivered("I2", "2003", "2001"), 6s), std::vector{kind::consult_ringing});
    EXPECT_EQ(last_[0].device, "2003");
  }
  void carol_answers() { EXPECT_EQ(feed(established("I2", "2003"), 7s), std::vector{kind::consult_answered}); }
};

TEST_F(ConsultingOnACallSheplaced, IsHerConsultationAndTheTransferHandsBobToCarol) {
  carol_answers();
  EXPECT_EQ(tracker_.open_calls(), 1u);
  for (const auto* phone : {"2001", "2002", "2003"}) {
    ASSERT_NE(tracker_.call_at(phone), nullptr) << phone;
    EXPECT_EQ(tracker_.call_at(phone)->pbx_id, "I1") << phone;
  }
  EXPECT_EQ(tracker_.find("I1")->consultation, "I2");
  EXPECT_EQ(tracker_.find("I1")->phase, call_phase::consulting);
  EXPECT_EQ(feed(alice_transfers_bob_to_carol(), 9s), (std::vector{kind::operator_left, kind::transferred}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[1].other, "2003");
  EXPECT_EQ(tracker_.open_calls(), 1u);
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "I3");
  EXPECT_EQ(tracker_.call_at("2003")->pbx_id, "I3");
  EXPECT_FALSE(tracker_.find("I3")->held_by);
  EXPECT_EQ(feed(cleared("I3", "2003"), 40s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2003");
  EXPECT_EQ(last_[1].device, "2002");
  EXPECT_EQ(ended_call().disposition, call_disposition::transferred);
  EXPECT_EQ(ended_call().operators, (std::vector<pbx::device_id>{"2002", "2003"}));
  EXPECT_EQ(ended_call().held_total, 4s);  // held from 5 s until the transfer at 9 s
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

TEST_F(ConsultingOnACallSheplaced, AConferenceKeepsAllThreeUntilEachHangsUp) {
  carol_answers();
  auto conference =
      pbx::call_conferenced{.primary_old_call = "I1",
                            .secondary_old_call = "I2",
                            .conferencing = pbx::party::known("2001"),
                            .added_party = pbx::party::known("2003"),
                            .connections = {{pbx::connection_id{"I1", "2001"}, pbx::connection_id{"I1", "2001"}, {}},
                                            {pbx::connection_id{"I1", "2002"}, pbx::connection_id{"I1", "2002"}, {}},
                                            {pbx::connection_id{"I2", "2003"}, pbx::connection_id{"I1", "2003"}, {}}}};
  EXPECT_EQ(feed(conference, 9s), std::vector{kind::conferenced});
  EXPECT_EQ(tracker_.find("I1")->phase, call_phase::talking);
  for (const auto* phone : {"2001", "2002", "2003"}) EXPECT_EQ(tracker_.call_at(phone)->pbx_id, "I1") << phone;
  EXPECT_EQ(feed(cleared("I1", "2001"), 20s), std::vector{kind::operator_left});
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(feed(cleared("I1", "2003"), 30s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2003");
  EXPECT_EQ(last_[1].device, "2002");
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
}

TEST_F(ConsultingOnACallSheplaced, WhenCarolHangsUpAliceRetrievesBob) {
  carol_answers();
  EXPECT_EQ(feed(cleared("I2", "2003"), 8s), std::vector{kind::consult_left});
  EXPECT_EQ(last_[0].device, "2003");
  EXPECT_EQ(tracker_.call_at("2003"), nullptr);
  EXPECT_EQ(tracker_.call_at("2001")->phase, call_phase::held);
  EXPECT_EQ(feed(pbx::call_retrieved{.connection = {"I1", "2001"}}, 10s), std::vector{kind::retrieved});
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(tracker_.call_at("2001")->phase, call_phase::talking);
  EXPECT_EQ(feed(cleared("I1", "2001"), 20s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
  EXPECT_EQ(last_[0].device, "2001");
  EXPECT_EQ(last_[1].device, "2002");
  EXPECT_EQ(ended_call().held_total, 5s);
}

// Bob hangs up while alice holds him: she talks on with carol, on the consultation kept as a call
// she placed; bob leaves, she does not.
TEST_F(ConsultingOnACallSheplaced, WhenBobHangsUpTheConsultationGoesOnAsACallAlicePlaced) {
  carol_answers();
  EXPECT_EQ(feed(cleared("I1", "2002"), 8s), (std::vector{kind::operator_left, kind::consult_kept, kind::direct,
                                                          kind::dialling, kind::answered, kind::ended}));
  EXPECT_EQ(last_[0].device, "2002");
  EXPECT_EQ(last_[1].device, "2001");
  EXPECT_EQ(last_[1].other, "I2");
  EXPECT_EQ(last_[4].device, "2003");
  EXPECT_EQ(tracker_.call_at("2001")->pbx_id, "I2");
  EXPECT_EQ(tracker_.call_at("2003")->pbx_id, "I2");
  EXPECT_EQ(tracker_.call_at("2002"), nullptr);
  EXPECT_EQ(feed(cleared("I2", "2001"), 30s), (std::vector{kind::operator_left, kind::operator_left, kind::ended}));
}

// call_at finds calls through an index of the devices they are at (before, a scan of every open
// call on every desktop command and consultation). Fifty groups of phones, each with a routed call
// at its own stage and an outgoing call: each phone finds its call, through consultations,
// conferences, transfers (the call's id changes) and ends, and nothing once the call left it.
TEST_F(CallTracker, EachPhoneFindsItsCallAmongManyOpenCallsAndNoneOnceTheCallLeftIt) {
  constexpr int groups = 50;
  // Group i: phones a (the routed call's operator), b (consulted), c (dialling out).
  const auto phone = [](int i, int k) { return std::to_string(3000 + 3 * i + k); };
  const auto id = [](const char* prefix, int i) { return prefix + std::to_string(i); };
  for (int i = 0; i < groups; ++i)
    for (int k = 0; k < 3; ++k) tracker_.add_operator_device(phone(i, k));
  const auto at = [&](const pbx::device_id& device) -> std::string {
    const auto* c = tracker_.call_at(device);
    return c ? c->pbx_id + ":" + std::string(to_string(c->phase)) : "-";
  };
  // Stage i % 4 of the routed call R<i>: ringing, talking, held, consulting b.
  for (int i = 0; i < groups; ++i) {
    const auto a = phone(i, 0);
    offer(id("R", i), 0s);
    feed(pbx::call_diverted{.connection = {id("R", i), "5000"}}, 1s);
    feed(delivered(id("R", i), a), 1s);
    if (i % 4 >= 1) feed(established(id("R", i), a), 2s);
    if (i % 4 >= 2) feed(pbx::call_held{.connection = {id("R", i), a}}, 3s);
    if (i % 4 >= 3) feed(delivered(id("C", i), phone(i, 1), a), 4s);
    feed(originated(id("O", i), phone(i, 2), "+4930777"), 5s);
  }
  EXPECT_EQ(tracker_.open_calls(), 2u * groups);
  const char* stages[] = {"ringing", "talking", "held", "consulting"};
  for (int i = 0; i < groups; ++i) {
    EXPECT_EQ(at(phone(i, 0)), id("R", i) + ":" + stages[i % 4]);
    EXPECT_EQ(at(phone(i, 1)), i % 4 == 3 ? id("R", i) + ":consulting" : "-");
    EXPECT_EQ(at(phone(i, 2)), id("O", i) + ":ringing");
  }
  // Stage 0: the caller gives up; 1: the operator hangs up; 2: she consults b and makes a
  // conference; 3: b answers and she transfers the caller to him (the call is T<i> from then).
  // Every other outgoing call ends.
  for (int i = 0; i < groups; ++i) {
    const auto a = phone(i, 0);
    const auto b = phone(i, 1);
    const auto r = id("R", i);
    const auto c = id("C", i);
    if (i % 4 == 0) feed(pbx::call_cleared{.call = r}, 6s);
    if (i % 4 == 1) feed(cleared(r, a), 6s);
    if (i % 4 == 2) {
      feed(delivered(c, b, a), 6s);
      feed(established(c, b), 7s);
      feed(pbx::call_conferenced{.primary_old_call = r,
                                 .secondary_old_call = c,
                                 .conferencing = pbx::party::known(a),
                                 .added_party = pbx::party::known(b),
                                 .connections = {{pbx::connection_id{r, a}, pbx::connection_id{r, a}, {}},
                                                 {pbx::connection_id{c, b}, pbx::connection_id{r, b}, {}}}},
           8s);
    }
    if (i % 4 == 3) {
      feed(established(c, b), 6s);
      feed(
          pbx::call_transferred{
              .primary_old_call = r,
              .secondary_old_call = c,
              .transferring = pbx::party::known(a),
              .transferred_to = pbx::party::known(b),
              .connections = {{pbx::connection_id{r, "+4930555001"}, pbx::connection_id{id("T", i), "+4930555001"}, {}},
                              {pbx::connection_id{c, b}, pbx::connection_id{id("T", i), b}, {}}}},
          8s);
    }
    if (i % 2 == 0) feed(cleared(id("O", i), phone(i, 2)), 9s);
  }
  for (int i = 0; i < groups; ++i) {
    const auto r = id("R", i);
    const std::string after[] = {"-", "-", r + ":talking", "-"};
    EXPECT_EQ(at(phone(i, 0)), after[i % 4]);
    const std::string consulted[] = {"-", "-", r + ":talking", id("T", i) + ":talking"};
    EXPECT_EQ(at(phone(i, 1)), consulted[i % 4]);
    EXPECT_EQ(at(phone(i, 2)), i % 2 == 0 ? "-" : id("O", i) + ":ringing");
    EXPECT_EQ(tracker_.find(r) != nullptr, i % 4 == 2);
  }
  // Everything ends: no phone finds a call.
  for (int i = 0; i < groups; ++i) {
    feed(pbx::call_cleared{.call = id(i % 4 == 3 ? "T" : "R", i)}, 10s);
    feed(pbx::call_cleared{.call = id("O", i)}, 10s);
  }
  EXPECT_EQ(tracker_.open_calls(), 0u);
  for (int i = 0; i < groups; ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(at(phone(i, k)), "-") << phone(i, k);
}

// Two calls at one phone: alice (2001) holds her call H, and bob (2002) consults her about his
// call M, older than H. Her desktop's commands (answer) go to the call that reached her phone
// last, M, then back to H once the consultation ends (before, to whichever call a scan of the
// open calls met first: H, whose answer the PBX refuses).
TEST_F(CallTracker, OfTwoCallsAtAPhoneTheOneThatReachedItLastIsFound) {
  for (const auto& [call, phone] : {std::pair{"M", "2002"}, std::pair{"H", "2001"}}) {
    offer(call, 0s);
    feed(pbx::call_diverted{.connection = {call, "5000"}}, 0s);
    feed(delivered(call, phone), 1s);
    feed(established(call, phone), 2s);
    feed(pbx::call_held{.connection = {call, phone}}, 3s);
  }
  EXPECT_EQ(feed(delivered("M2", "2001", "2002"), 4s), (std::vector{kind::consultation, kind::consult_ringing}));
  ASSERT_NE(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(tracker_.call_at("2001")->pbx_id, "M");
  EXPECT_EQ(tracker_.call_at("2001")->consulted, "2001");
  EXPECT_EQ(feed(cleared("M2", "2001"), 5s), std::vector{kind::consult_left});
  ASSERT_NE(tracker_.call_at("2001"), nullptr);
  EXPECT_EQ(tracker_.call_at("2001")->pbx_id, "H");
  EXPECT_EQ(tracker_.call_at("2002")->pbx_id, "M");
}

TEST_F(CallTracker, CallsBetweenOtherDevicesAreIgnored) {
  EXPECT_EQ(feed(delivered("X1", "3001", "3002"), 0s), std::vector<kind>{});
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

// After a lost PBX link: the operator's snapshot no longer shows his call, so it ended in the gap.
TEST_F(CallTracker, ResyncEndsACallTheOperatorLeftWhileTheLinkWasDown) {
  offer("C1", 0s);
  feed(pbx::call_diverted{.connection = {"C1", "5000"}}, 1s);
  feed(delivered("C1", "2001"), 1s);
  feed(established("C1", "2001"), 3s);
  EXPECT_EQ(feed(pbx::resynced{.device = "2002", .calls = {}}, 40s), std::vector<kind>{});
  EXPECT_EQ(feed(pbx::resynced{.device = "2001", .calls = {}}, 40s), (std::vector{kind::operator_left, kind::ended}));
  EXPECT_EQ(last_.front().device, "2001");
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
  EXPECT_EQ(tracker_.open_calls(), 0u);
}

// The call rang at the operator when the link went; the snapshot shows him talking on it, and a
// call that went to another device in the gap is found there (phones are snapshotted first).
TEST_F(CallTracker, ResyncCatchesUpWithAnswersAndMovesInTheGap) {
  offer("C1", 0s);
  feed(pbx::call_diverted{.connection = {"C1", "5000"}}, 1s);
  feed(delivered("C1", "2001"), 1s);
  offer("C2", 2s);
  EXPECT_EQ(feed(pbx::resynced{.device = "2001",
                               .calls = {{.connection = {"C1", "2001"}, .state = pbx::connection_state::connected}}},
                 20s),
            std::vector{kind::answered});
  EXPECT_EQ(tracker_.call_at("2001")->pbx_id, "C1");
  EXPECT_EQ(feed(pbx::resynced{.device = "2999",
                               .calls = {{.connection = {"C2", "2999"}, .state = pbx::connection_state::queued}}},
                 20s),
            std::vector<kind>{});
  EXPECT_EQ(feed(pbx::resynced{.device = "5000", .calls = {}}, 20s), std::vector<kind>{});
  EXPECT_EQ(tracker_.open_calls(), 2u);
  EXPECT_EQ(feed(cleared("C2", "2999"), 30s), std::vector{kind::ended});
  EXPECT_EQ(ended_call().disposition, call_disposition::default_routed);
}

// After a restart the tracker knows nothing: calls the snapshots show at operators' phones are
// kept (talking, held or ringing) and end like any other.
TEST_F(CallTracker, ASnapshotAfterARestartAdoptsTheCallsAtOperatorsPhones) {
  EXPECT_EQ(feed(pbx::resynced{.device = "2001",
                               .calls = {{.connection = {"K1", "2001"}, .state = pbx::connection_state::connected}}},
                 0s),
            std::vector{kind::found});
  EXPECT_EQ(feed(pbx::resynced{.device = "2002",
                               .calls = {{.connection = {"K2", "2002"}, .state = pbx::connection_state::alerting}}},
                 0s),
            std::vector{kind::found});
  EXPECT_EQ(feed(pbx::resynced{.device = "5000",
                               .calls = {{.connection = {"K3", "5000"}, .state = pbx::connection_state::queued}}},
                 0s),
            std::vector<kind>{});  // waiting at a route point: the PBX asks again if it wants
  EXPECT_EQ(tracker_.open_calls(), 2u);
  EXPECT_EQ(tracker_.call_at("2001")->phase, call_phase::talking);
  EXPECT_EQ(tracker_.call_at("2002")->phase, call_phase::ringing);
  EXPECT_TRUE(tracker_.find("K1")->found_in_snapshot);
  // The caller hangs up: the operator leaves and the call ends, answered.
  EXPECT_EQ(feed(cleared("K1", "+4930555001"), 9s), (std::vector{kind::operator_left, kind::ended}));
  EXPECT_EQ(ended_call().disposition, call_disposition::answered);
  EXPECT_EQ(feed(established("K2", "2002"), 10s), std::vector{kind::answered});
}

TEST_F(CallTracker, DispositionNamesAreTheOnesPostgresqlStores) {
  for (auto d : {call_disposition::answered, call_disposition::abandoned_waiting, call_disposition::abandoned_ringing,
                 call_disposition::overflowed, call_disposition::transferred, call_disposition::default_routed,
                 call_disposition::closed, call_disposition::failed})
    EXPECT_NE(to_string(d), "unknown");
}

}  // namespace
}  // namespace switchboard::calls
