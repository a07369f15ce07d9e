// Scripted operators (the engine of switchboard-desk --script) against the real server: they
// log in, go ready, answer an offered call after their delay, wrap up, and log out at the end.
#include "switchboard/desk/scripted.hpp"
#include "desk_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <thread>

namespace switchboard::desk {
namespace {

TEST(ScriptedOperators, LogInAnswerWrapUpAndLogOut) {
  desk_fixture f;
  f.start();
  const auto call_id = f.make_call("+4930111");
  script s;
  s.port = f.server->local_endpoint().port();
  s.tenant = "acme";
  s.password = "alice-pw";
  s.answer_delay = std::chrono::milliseconds(20);
  s.wrap_up = std::chrono::milliseconds(20);
  s.heartbeat = std::chrono::milliseconds(100);
  script_stats stats;
  bool stop = false;
  int finished = 0;
  asio::co_spawn(f.loop, play_operator(s, "alice", stats, [&] { return stop; }),
                 [&](std::exception_ptr) { ++finished; });
  testing::run_coroutine(f.loop, [&]() -> asio::awaitable<void> {
    const auto who = std::to_string(f.alice);
    co_await f.until([&] { return f.db.scalar("SELECT state FROM presence WHERE operator_id = " + who) == "ready"; });
    // the router reserves her and the PBX rings her phone
    f.db.exec("UPDATE presence SET state = 'ringing', current_call_id = " + std::to_string(call_id) +
              " WHERE operator_id = " + who);
    f.server->presence_changed(f.alice);
    f.server->offer(f.alice, f.make_offer(call_id));
    co_await f.until([&] { return f.calls.seen.size() == 1; });
    CO_ASSERT_TRUE(f.calls.seen.size() == 1);
    EXPECT_TRUE(std::holds_alternative<req::answer>(f.calls.seen[0].second));
    // the call tracker: talking, then the caller hangs up and she wraps up
    f.server->call_update(f.alice, call_event{call_id, call_state::talking, "+4930111", "800", std::nullopt});
    f.db.exec("UPDATE presence SET state = 'wrap_up', current_call_id = NULL WHERE operator_id = " + who);
    f.server->presence_changed(f.alice);
    f.server->call_update(f.alice, call_event{call_id, call_state::ended, "+4930111", "800", std::nullopt});
    co_await f.until([&] { return f.calls.seen.size() == 3; });
    CO_ASSERT_TRUE(f.calls.seen.size() == 3);
    EXPECT_TRUE(std::holds_alternative<req::disposition>(f.calls.seen[1].second));
    EXPECT_TRUE(std::holds_alternative<req::end_wrap_up>(f.calls.seen[2].second));
    stop = true;
    co_await f.until([&] { return finished == 1; });
    EXPECT_EQ(f.db.scalar("SELECT state FROM presence WHERE operator_id = " + who), "logged_out");
    EXPECT_EQ(stats.logged_in, 1);
    EXPECT_EQ(stats.offers, 1);
    EXPECT_EQ(stats.answered, 1);
    EXPECT_EQ(stats.calls_ended, 1);
    EXPECT_EQ(stats.errors, 0);
  });
}

TEST(ScriptedOperators, TheToolPlaysOperatorsForAGivenTime) {
  desk_fixture f;
  f.db.exec(
      "UPDATE operators SET password_hash = crypt('shared-pw', gen_salt('bf', 4)) WHERE login IN ('alice', 'bob')");
  f.start();
  const auto port = std::to_string(f.server->local_endpoint().port());
  // the tool runs in a child process while this loop serves it
  std::string output;
  int status = -1;
  std::thread tool([&] {
    status = testing::run_command(testing::built_binary("src/tools/desk_client/switchboard-desk") + " --port " + port +
                                      " --tenant acme --password shared-pw --duration 1 --script alice bob",
                                  &output);
  });
  testing::run_coroutine(f.loop, [&]() -> asio::awaitable<void> { co_await f.until([&] { return status != -1; }); });
  tool.join();
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("operators 2 logged_in 2"), std::string::npos) << output;
  EXPECT_EQ(f.db.scalar("SELECT count(*) FROM presence WHERE state = 'logged_out'"), "4");
}

}  // namespace
}  // namespace switchboard::desk
