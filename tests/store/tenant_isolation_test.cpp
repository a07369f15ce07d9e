// Tenant isolation is enforced by PostgreSQL (row-level security), not only by the server.
#include "test_database.hpp"

#include <pqxx/pqxx>

#include <gtest/gtest.h>

namespace switchboard {
namespace {

class TenantIsolation : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(R"(
      INSERT INTO tenants (code, name) VALUES ('acme', 'Acme'), ('globex', 'Globex');
      INSERT INTO operators (tenant_id, login, password_hash) VALUES
        (1, 'alice', hash_password('pw')), (1, 'bob', hash_password('pw')), (2, 'carol', hash_password('pw'));
      INSERT INTO customers (tenant_id, phone, name) VALUES (1, '111', 'Acme customer'), (2, '222', 'Globex customer');
      INSERT INTO calls (tenant_id, pbx_call_id) VALUES (1, 'A'), (2, 'G1'), (2, 'G2');
    )");
  }

  // Counts rows of `table` visible to a tenant session for `tenant` ("" = no tenant set).
  std::string visible(const std::string& table, const std::string& tenant) {
    pqxx::connection c(db_.url());
    pqxx::work tx(c);
    tx.exec("SET LOCAL ROLE switchboard_tenant");
    if (!tenant.empty()) tx.exec("SET LOCAL switchboard.tenant_id = '" + tenant + "'");
    return tx.exec1("SELECT count(*) FROM " + table)[0].as<std::string>();
  }

  testing::test_database db_;
};

TEST_F(TenantIsolation, ATenantSessionSeesOnlyItsOwnRows) {
  EXPECT_EQ(visible("operators", "1"), "2");
  EXPECT_EQ(visible("operators", "2"), "1");
  EXPECT_EQ(visible("customers", "1"), "1");
  EXPECT_EQ(visible("calls", "2"), "2");
  EXPECT_EQ(visible("presence", "1"), "2");
  EXPECT_EQ(visible("tenants", "2"), "1");
}

TEST_F(TenantIsolation, NoTenantSetSeesNothing) {
  EXPECT_EQ(visible("operators", ""), "0");
  EXPECT_EQ(visible("calls", ""), "0");
}

TEST_F(TenantIsolation, ATenantSessionCannotWriteIntoAnotherTenant) {
  pqxx::connection c(db_.url());
  pqxx::work tx(c);
  tx.exec("SET LOCAL ROLE switchboard_tenant");
  tx.exec("SET LOCAL switchboard.tenant_id = '1'");
  EXPECT_THROW(tx.exec("INSERT INTO customers (tenant_id, phone) VALUES (2, '333')"), pqxx::sql_error);
}

TEST_F(TenantIsolation, PasswordHashesAreNotReadableByTenantSessions) {
  pqxx::connection c(db_.url());
  pqxx::work tx(c);
  tx.exec("SET LOCAL ROLE switchboard_tenant");
  tx.exec("SET LOCAL switchboard.tenant_id = '1'");
  EXPECT_THROW(tx.exec("SELECT password_hash FROM operators"), pqxx::sql_error);
}

}  // namespace
}  // namespace switchboard
