// Migrations on a real PostgreSQL: apply on empty, second run is a no-op, edits are refused.
#include "switchboard/store/migrations.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>

namespace switchboard {
namespace {

using testing::test_database;

TEST(Migrations, ApplyOnEmptyDatabaseThenSecondRunIsNoOp) {
  test_database db(/*migrated=*/false);
  ASSERT_EQ(store::schema_version(db.url()).value(), 0);

  auto first = store::migrate(db.url());
  ASSERT_TRUE(first.has_value()) << first.error().message();
  const auto& all = store::bundled_migrations();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(first->applied, static_cast<int>(all.size()));
  EXPECT_EQ(first->schema_version, all.back().version);

  for (const char* table :
       {"tenants", "operators", "skills", "operator_skills", "presence", "route_points", "queues", "queue_skills",
        "queue_opening_hours", "waiting_calls", "customers", "calls", "call_events"})
    EXPECT_EQ(db.scalar(std::string("SELECT to_regclass('") + table + "') IS NOT NULL"), "t") << table;

  const auto recorded = db.scalar("SELECT count(*) FROM schema_migrations");
  auto second = store::migrate(db.url());
  ASSERT_TRUE(second.has_value()) << second.error().message();
  EXPECT_EQ(second->applied, 0);
  EXPECT_EQ(second->schema_version, first->schema_version);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM schema_migrations"), recorded);
}

TEST(Migrations, EditedMigrationIsRefused) {
  test_database db(false);
  std::vector<store::migration> original{{1, "first", "CREATE TABLE t1 (x int)"}};
  ASSERT_TRUE(store::migrate(db.url(), original).has_value());
  std::vector<store::migration> edited{{1, "first", "CREATE TABLE t1 (x bigint)"}};
  auto refused = store::migrate(db.url(), edited);
  ASSERT_FALSE(refused.has_value());
  EXPECT_TRUE(refused.error().is(errc::db_migration_failed));
  EXPECT_NE(refused.error().detail.find("0001_first was changed"), std::string::npos) << refused.error().detail;
}

TEST(Migrations, FailingMigrationRollsBackAndNamesItself) {
  test_database db(false);
  std::vector<store::migration> list{{1, "good", "CREATE TABLE good (x int)"},
                                     {2, "bad", "CREATE TABLE half (x int); SELECT no_such_function()"}};
  auto outcome = store::migrate(db.url(), list);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_NE(outcome.error().detail.find("0002_bad"), std::string::npos);
  EXPECT_EQ(db.scalar("SELECT max(version) FROM schema_migrations"), "1");
  EXPECT_EQ(db.scalar("SELECT to_regclass('half') IS NULL"), "t");  // the failed migration left nothing
}

// Migration `version` replaces the default `function` (its new body contains `new_marker`); one
// an admin replaced before it (`admins_own`, a CREATE OR REPLACE whose body contains "the admin's
// own") stays as he wrote it.
void expect_default_replaced_and_admins_own_kept(int version, const std::string& function,
                                                 const std::string& new_marker, const std::string& admins_own) {
  std::vector<store::migration> before;
  for (const auto& m : store::bundled_migrations())
    if (m.version < version) before.push_back(m);
  const std::string body = "SELECT prosrc FROM pg_proc WHERE oid = '" + function + "'::regprocedure";

  test_database untouched(false);
  ASSERT_TRUE(store::migrate(untouched.url(), before).has_value());
  EXPECT_EQ(untouched.scalar(body).find(new_marker), std::string::npos);
  ASSERT_TRUE(store::migrate(untouched.url()).has_value());
  EXPECT_NE(untouched.scalar(body).find(new_marker), std::string::npos) << untouched.scalar(body);

  test_database customised(false);
  ASSERT_TRUE(store::migrate(customised.url(), before).has_value());
  customised.exec(admins_own);
  ASSERT_TRUE(store::migrate(customised.url()).has_value());
  EXPECT_NE(customised.scalar(body).find("the admin''s own"), std::string::npos) << customised.scalar(body);
}

// An admin's own rules as code: every call to voicemail.
std::string admins_own_routing(const std::string& function) {
  return "CREATE OR REPLACE FUNCTION " + function + R"((c calls) RETURNS route_target LANGUAGE plpgsql AS $$
    BEGIN
      RETURN ROW(NULL, 0, '{}'::jsonb, 'voicemail', NULL, 'the admin''s own')::route_target;
    END $$)";
}

// 0053 makes the default route_call an inlinable SQL function.
TEST(Migrations, TheDefaultRouteCallIsReplacedButAnAdminsOwnIsKept) {
  expect_default_replaced_and_admins_own_kept(53, "route_call(calls)", "SELECT route_call_by_rules(c)",
                                              admins_own_routing("route_call"));
}

// 0055 names a rule's skills without a hash join in the default route_call_by_rules.
TEST(Migrations, TheDefaultRouteCallByRulesIsReplacedButAnAdminsOwnIsKept) {
  expect_default_replaced_and_admins_own_kept(55, "route_call_by_rules(calls)",
                                              "SELECT s.name FROM skills s WHERE s.skill_id = rs.skill_id",
                                              admins_own_routing("route_call_by_rules"));
}

// 0056 makes the default pick_call return at once when nobody waits in the operator's tenant.
TEST(Migrations, TheDefaultPickCallIsReplacedButAnAdminsOwnIsKept) {
  expect_default_replaced_and_admins_own_kept(
      56, "pick_call(bigint, integer)", "IF NOT EXISTS (SELECT 1 FROM waiting_calls wc",
      R"(CREATE OR REPLACE FUNCTION pick_call(p_operator_id bigint, p_reserve_seconds integer DEFAULT 10)
    RETURNS TABLE (call_id bigint, queue_id bigint, device text) LANGUAGE plpgsql AS $$
    BEGIN
      RAISE NOTICE 'the admin''s own';
    END $$)");
}

TEST(Migrations, UnreachableDatabaseIsAClearError) {
  auto outcome = store::migrate("postgresql:///nowhere?host=/nonexistent-dir&connect_timeout=1");
  ASSERT_FALSE(outcome.has_value());
  EXPECT_TRUE(outcome.error().is(errc::db_unavailable)) << outcome.error().message();
}

}  // namespace
}  // namespace switchboard
