// The worked examples of docs/routing.md, read from the file itself, so the page cannot drift
// from what the SQL does: VIP to senior operators, Spanish speakers, a second group after 30 s,
// after hours to voicemail.
#include "routing_world.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

namespace switchboard {
namespace {

using store::route_kind;
using testing::offer_at;
using testing::sync;

// The SQL block that follows "<!-- example: name -->" in docs/routing.md.
std::string example(const std::string& name) {
  std::ifstream in(testing::source_path("docs/routing.md"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto marker = text.find("<!-- example: " + name + " -->");
  if (marker == std::string::npos) throw std::runtime_error("docs/routing.md has no example " + name);
  const auto start = text.find("```sql\n", marker) + 7;
  return text.substr(start, text.find("```", start) - start);
}

TEST(RoutingDocs, TheWorkedExamplesDoWhatThePageSays) {
  testing::routing_world w;
  // Monday 2026-11-23, 10:00 in Madrid
  w.db().exec("ALTER DATABASE " + w.db().name() + " SET switchboard.clock = '2026-11-23 09:00:00+00'");
  store::connection_pool pool({.url = w.url(), .size = 1});
  const auto t = w.tenant("acme", "Europe/Madrid");
  const auto support = w.queue(t, "support", {{"support", 1}});
  w.queue(t, "second line", {{"general", 1}});
  w.route_point(t, "7000", support);
  w.skill(t, "spanish");
  const auto junior = w.operator_(t, "junior", {{"support", 3}});
  const auto senior = w.operator_(t, "senior", {{"support", 9}});
  const auto hablo = w.operator_(t, "hablo", {{"support", 2}, {"spanish", 6}});
  for (auto [op, idle] : {std::pair{junior, 60}, {hablo, 30}, {senior, 10}})
    w.exec("UPDATE presence SET last_call_ended = now() - make_interval(mins => $2) WHERE operator_id = $1", op, idle);
  w.exec("INSERT INTO customers (tenant_id, phone, tier) VALUES ($1, '+4930111', 'vip')", t);

  // Who gets a call from `caller`; the reservation is given back so the idle order stays.
  auto who = [&](const std::string& caller, std::vector<std::pair<std::string, std::string>> ivr = {}) {
    const auto d = sync(store::offer_call(pool, offer_at("7000", caller, std::move(ivr))));
    EXPECT_TRUE(d.has_value());
    if (!d || d->kind != route_kind::operator_reserved) return std::string("(") + (d ? d->reason : "error") + ")";
    EXPECT_TRUE(sync(store::release_reservation(pool, d->operator_id, d->call_id)).value());
    return w.login_of(d->operator_id);
  };
  EXPECT_EQ(who("+4930111"), "junior");  // before any example: longest idle

  w.db().exec(example("vip"));
  EXPECT_EQ(who("+4930111"), "senior");
  EXPECT_EQ(who("+100"), "junior");

  w.db().exec(example("spanish"));
  EXPECT_EQ(who("+34911234567"), "hablo");
  EXPECT_EQ(who("+100", {{"lang", "es"}}), "hablo");
  EXPECT_EQ(who("+100", {{"lang", "en"}}), "junior");

  w.db().exec(example("second-group"));
  w.exec("UPDATE presence SET state = 'not_ready', reason = 'meeting' WHERE tenant_id = $1", t);
  const auto backup = w.operator_(t, "backup", {{"general", 1}});
  const auto waiting = sync(store::offer_call(pool, offer_at("7000"))).value();
  ASSERT_EQ(waiting.kind, route_kind::queued);
  w.backdate_wait(waiting.call_id, 29);
  EXPECT_EQ(sync(store::recheck_waiting_call(pool, waiting.call_id, std::chrono::seconds(10)))->kind,
            route_kind::queued);
  w.backdate_wait(waiting.call_id, 2);
  const auto second = sync(store::recheck_waiting_call(pool, waiting.call_id, std::chrono::seconds(10))).value();
  EXPECT_EQ(second.kind, route_kind::operator_reserved);
  EXPECT_EQ(second.operator_id, backup);

  w.db().exec(example("after-hours"));
  w.exec("UPDATE presence SET state = 'ready', reason = NULL WHERE operator_id = $1", junior);
  EXPECT_EQ(who("+100"), "junior");  // Monday 10:00: open
  w.db().exec("ALTER DATABASE " + w.db().name() + " SET switchboard.clock = '2026-11-23 17:30:00+00'");
  store::connection_pool evening({.url = w.url(), .size = 1});  // 18:30 in Madrid: closed
  const auto closed = sync(store::offer_call(evening, offer_at("7000"))).value();
  EXPECT_EQ(closed.kind, route_kind::closed);
  EXPECT_EQ(closed.destination, "8999");
}

}  // namespace
}  // namespace switchboard
