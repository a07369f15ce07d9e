// Shared set-up of the desk tests: a migrated database with two tenants and their operators,
// the desk server on a loopback port with short timeouts, and a recording call-control fake.
#pragma once

#include "coro_test.hpp"
#include "switchboard/desk/client.hpp"
#include "switchboard/desk/server.hpp"
#include "switchboard/store/pool.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace switchboard::desk {

namespace asio = boost::asio;
using asio::ip::tcp;

// Records what the desk hands to call control; answers with `next`.
class recording_calls final : public command_handler {
 public:
  asio::awaitable<result<void>> execute(const operator_context& who, const call_command& command) override {
    seen.emplace_back(who, command);
    co_return next;
  }
  std::vector<std::pair<operator_context, call_command>> seen;
  result<void> next;
};

inline std::string error_code(const server_message& m) {
  if (auto* e = std::get_if<error_reply>(&m)) return e->code;
  return "not an error";
}

struct desk_fixture {
  testing::test_database db;
  store::connection_pool pool{{.url = db.url(), .size = 4}};
  asio::io_context loop;
  recording_calls calls;
  std::unique_ptr<server> server;
  std::int64_t acme = 0, beta = 0, support = 0;
  std::int64_t alice = 0, bob = 0, sue = 0, carl = 0;

  desk_fixture() {
    db.exec(
        "INSERT INTO tenants (code, name) VALUES ('acme', 'Acme'), ('beta', 'Beta');"
        "INSERT INTO operators (tenant_id, login, password_hash, full_name, extension, role) VALUES "
        "((SELECT tenant_id FROM tenants WHERE code = 'acme'), 'alice', crypt('alice-pw', gen_salt('bf', 4)), "
        "  'Alice Martin', '2001', 'operator'),"
        "((SELECT tenant_id FROM tenants WHERE code = 'acme'), 'bob', crypt('bob-pw', gen_salt('bf', 4)), "
        "  'Bob Stone', '2002', 'operator'),"
        "((SELECT tenant_id FROM tenants WHERE code = 'acme'), 'sue', crypt('sue-pw', gen_salt('bf', 4)), "
        "  'Sue Head', '2003', 'supervisor'),"
        "((SELECT tenant_id FROM tenants WHERE code = 'beta'), 'carl', crypt('carl-pw', gen_salt('bf', 4)), "
        "  'Carl Beta', '3001', 'operator');"
        "INSERT INTO queues (tenant_id, name) VALUES ((SELECT tenant_id FROM tenants WHERE code = 'acme'), 'Support');"
        "INSERT INTO customers (tenant_id, phone, name, tier) VALUES "
        "((SELECT tenant_id FROM tenants WHERE code = 'acme'), '+4930111', 'Jane Doe', 'gold');");
    acme = id("SELECT tenant_id FROM tenants WHERE code = 'acme'");
    beta = id("SELECT tenant_id FROM tenants WHERE code = 'beta'");
    support = id("SELECT queue_id FROM queues WHERE name = 'Support'");
    alice = id("SELECT operator_id FROM operators WHERE login = 'alice'");
    bob = id("SELECT operator_id FROM operators WHERE login = 'bob'");
    sue = id("SELECT operator_id FROM operators WHERE login = 'sue'");
    carl = id("SELECT operator_id FROM operators WHERE login = 'carl'");
  }

  ~desk_fixture() {
    if (server) server->stop();
    loop.run_for(std::chrono::milliseconds(200));  // let connections say goodbye
  }

  std::int64_t id(const std::string& sql) const { return std::stoll(db.scalar(sql)); }

  server_config config() const {
    server_config c;
    c.listen_address = "127.0.0.1";
    c.port = 0;
    c.node_name = "test-node";
    c.heartbeat_interval = std::chrono::milliseconds(2000);
    c.idle_timeout = std::chrono::milliseconds(20000);
    c.login_timeout = std::chrono::milliseconds(20000);
    c.resume_grace = std::chrono::milliseconds(20000);
    c.write_timeout = std::chrono::milliseconds(2000);
    return c;
  }

  void start() { start(config()); }
  void start(server_config c) {
    server = std::make_unique<desk::server>(loop.get_executor(), std::move(c), pool, calls);
    auto ok = server->start();
    ASSERT_TRUE(ok.has_value()) << ok.error().message();
  }

  // A call row of tenant acme from `caller` (for screen pops and busy presence).
  std::int64_t make_call(const std::string& caller) const {
    return id("INSERT INTO calls (tenant_id, pbx_call_id, caller, dialled, queue_id, ivr_data) VALUES (" +
              std::to_string(acme) + ", 'pbx-1', '" + caller + "', '800', " + std::to_string(support) +
              ", '{\"contract\":\"A-1\"}') RETURNING call_id");
  }

  // The offer as the router builds it: the customer from screen_pop(call_id).
  offer_event make_offer(std::int64_t call_id) const {
    offer_event o;
    o.call = {call_id, "+4930111", "800", "Support", support, 3.5};
    o.customer = nlohmann::json::parse(db.scalar("SELECT screen_pop(" + std::to_string(call_id) + ")::text"));
    o.ivr = nlohmann::json{{"contract", "A-1"}};
    return o;
  }

  asio::awaitable<result<server_message>> hello(client& c) {
    if (!c.connected()) {
      auto up = co_await c.connect("127.0.0.1", server->local_endpoint().port());
      if (!up) co_return up.error();
    }
    co_return co_await c.request(req::hello{protocol_version, "desk-test"});
  }

  asio::awaitable<result<login_result>> log_in(client& c, std::string tenant, std::string login, std::string password,
                                               std::string device = {}) {
    auto h = co_await hello(c);
    if (!h) co_return h.error();
    auto r =
        co_await c.request(req::login{std::move(tenant), std::move(login), std::move(password), std::move(device)});
    if (!r) co_return r.error();
    if (auto* ok = std::get_if<ok_reply>(&*r))
      if (auto* l = std::get_if<login_result>(&ok->result)) co_return *l;
    co_return error{errc::desk_login_failed, error_code(*r)};
  }

  // Polls `done` on the loop (a hang guard, not a timing assertion).
  asio::awaitable<void> until(std::function<bool()> done) {
    for (int i = 0; i < 3000 && !done(); ++i) co_await testing::sleep_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(done());
  }
};

}  // namespace switchboard::desk
