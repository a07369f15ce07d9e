// Desktop queries: each is one prepared statement (or two in one transaction), run off the
// event loop on the pool. Conditional UPDATEs keep the presence table the only arbiter.
#include "switchboard/store/operator_queries.hpp"

#include "switchboard/store/pool.hpp"

#include <nlohmann/json.hpp>

namespace switchboard::store {
namespace {

namespace asio = boost::asio;

constexpr const char* login_sql =
    "SELECT operator_id, tenant_id, role::text, full_name, extension FROM check_login($1, $2, $3)";

// The columns of an operator_presence, from presence `p` joined with operators `o`.
#define SWITCHBOARD_PRESENCE_COLUMNS                                            \
  "p.operator_id, p.tenant_id, o.login, o.full_name, p.state::text, p.reason, " \
  "to_char(p.since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), p.device, p.current_call_id "

constexpr const char* load_sql = "SELECT " SWITCHBOARD_PRESENCE_COLUMNS
                                 "FROM presence p JOIN operators o USING (operator_id) "
                                 "WHERE p.operator_id = $1 AND ($2::bigint IS NULL OR p.tenant_id = $2)";

constexpr const char* log_in_sql =
    "WITH u AS (UPDATE presence SET "
    "  state = CASE WHEN state = 'logged_out' THEN 'not_ready'::presence_state ELSE state END, "
    "  reason = CASE WHEN state = 'logged_out' THEN 'login' ELSE reason END, "
    "  since = CASE WHEN state = 'logged_out' THEN now() ELSE since END, "
    "  device = $2, node = nullif($3, '') "
    "  WHERE operator_id = $1 RETURNING *) "
    "SELECT " SWITCHBOARD_PRESENCE_COLUMNS "FROM u p JOIN operators o USING (operator_id)";

constexpr const char* ready_sql =
    "WITH u AS (UPDATE presence SET state = 'ready', reason = NULL, "
    "  since = CASE WHEN state = 'ready' THEN since ELSE now() END "
    "  WHERE operator_id = $1 AND ($2::bigint IS NULL OR tenant_id = $2) AND state IN ('not_ready', 'ready') "
    "  RETURNING *) "
    "SELECT " SWITCHBOARD_PRESENCE_COLUMNS "FROM u p JOIN operators o USING (operator_id)";

constexpr const char* not_ready_sql =
    "WITH u AS (UPDATE presence SET state = 'not_ready', reason = $3, "
    "  since = CASE WHEN state = 'not_ready' THEN since ELSE now() END "
    "  WHERE operator_id = $1 AND ($2::bigint IS NULL OR tenant_id = $2) "
    "    AND state IN ('ready', 'not_ready', 'wrap_up') RETURNING *) "
    "SELECT " SWITCHBOARD_PRESENCE_COLUMNS "FROM u p JOIN operators o USING (operator_id)";

constexpr const char* log_out_sql =
    "WITH u AS (UPDATE presence SET state = 'logged_out', reason = NULL, device = NULL, node = NULL, since = now() "
    "  WHERE operator_id = $1 AND ($2::bigint IS NULL OR tenant_id = $2) "
    "    AND state IN ('ready', 'not_ready', 'wrap_up', 'logged_out') RETURNING *) "
    "SELECT " SWITCHBOARD_PRESENCE_COLUMNS "FROM u p JOIN operators o USING (operator_id)";

constexpr const char* tenant_operators_sql =
    "SELECT " SWITCHBOARD_PRESENCE_COLUMNS
    "FROM presence p JOIN operators o USING (operator_id) WHERE p.tenant_id = $1 AND o.active ORDER BY o.login";

constexpr const char* tenant_queues_sql = "SELECT queue_id, name FROM queues WHERE tenant_id = $1 ORDER BY name";

#undef SWITCHBOARD_PRESENCE_COLUMNS

operator_presence presence_from(const pqxx::row& row) {
  operator_presence p;
  p.operator_id = row[0].as<std::int64_t>();
  p.tenant_id = row[1].as<std::int64_t>();
  p.login = row[2].as<std::string>();
  p.full_name = row[3].as<std::string>();
  p.state = row[4].as<std::string>();
  p.reason = row[5].get<std::string>();
  p.since = row[6].as<std::string>();
  p.device = row[7].get<std::string>();
  p.current_call_id = row[8].get<std::int64_t>();
  return p;
}

template <class Tx, class... Args>
pqxx::result exec(Tx& tx, const char* name, const char* sql, Args&&... args) {
  tx.conn().prepare(name, sql);  // a no-op once this connection knows the statement
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

}  // namespace

asio::awaitable<result<std::optional<operator_identity>>> check_login(connection_pool& pool, std::string tenant_code,
                                                                      std::string login, std::string password) {
  co_return co_await pool.run([tenant_code = std::move(tenant_code), login = std::move(login),
                               password = std::move(password)](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    auto rows = exec(tx, "desk_check_login", login_sql, tenant_code, login, password);
    std::optional<operator_identity> who;
    if (rows.empty()) return who;
    const auto& row = rows[0];
    who = operator_identity{row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>(),
                            row[3].as<std::string>(), row[4].get<std::string>()};
    return who;
  });
}

asio::awaitable<result<operator_presence>> log_in(connection_pool& pool, std::int64_t operator_id, std::string device,
                                                  std::string node) {
  co_return co_await pool.run(
      [operator_id, device = std::move(device), node = std::move(node)](pqxx::connection& conn) {
        pqxx::work tx(conn);
        auto row = exec(tx, "desk_log_in", log_in_sql, operator_id, device, node).at(0);
        auto p = presence_from(row);
        tx.commit();
        return p;
      });
}

asio::awaitable<result<std::optional<operator_presence>>> load_presence(connection_pool& pool, std::int64_t operator_id,
                                                                        std::optional<std::int64_t> tenant_id) {
  co_return co_await pool.run([operator_id, tenant_id](pqxx::connection& conn) {
    pqxx::nontransaction tx(conn);
    auto rows = exec(tx, "desk_load_presence", load_sql, operator_id, tenant_id);
    std::optional<operator_presence> p;
    if (!rows.empty()) p = presence_from(rows[0]);
    return p;
  });
}

asio::awaitable<result<std::optional<presence_change>>> change_presence(connection_pool& pool, std::int64_t operator_id,
                                                                        presence_request to, std::string reason,
                                                                        std::optional<std::int64_t> tenant_id) {
  co_return co_await pool.run([=](pqxx::connection& conn) {
    pqxx::work tx(conn);
    pqxx::result rows;
    switch (to) {
      case presence_request::ready:
        rows = exec(tx, "desk_ready", ready_sql, operator_id, tenant_id);
        break;
      case presence_request::not_ready:
        rows = exec(tx, "desk_not_ready", not_ready_sql, operator_id, tenant_id, reason);
        break;
      case presence_request::logged_out:
        rows = exec(tx, "desk_log_out", log_out_sql, operator_id, tenant_id);
        break;
    }
    std::optional<presence_change> out;
    if (!rows.empty()) {
      out = presence_change{true, presence_from(rows[0])};
    } else {
      auto current = exec(tx, "desk_load_presence", load_sql, operator_id, tenant_id);
      if (!current.empty()) out = presence_change{false, presence_from(current[0])};
    }
    tx.commit();
    return out;
  });
}

asio::awaitable<result<tenant_view>> load_tenant_view(connection_pool& pool, std::int64_t tenant_id) {
  co_return co_await pool.run([tenant_id](pqxx::connection& conn) {
    pqxx::work tx(conn, "desk_tenant_view");
    tenant_view view;
    for (const auto& row : exec(tx, "desk_tenant_operators", tenant_operators_sql, tenant_id))
      view.operators.push_back(presence_from(row));
    for (const auto& row : exec(tx, "desk_tenant_queues", tenant_queues_sql, tenant_id))
      view.queues.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>()});
    tx.commit();
    return view;
  });
}

std::optional<operator_presence> presence_from_notification(std::string_view payload) {
  const auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  const auto integer = [&](const char* key) { return j.contains(key) && j[key].is_number_integer(); };
  const auto text = [&](const char* key) { return j.contains(key) && j[key].is_string(); };
  const auto text_or_null = [&](const char* key) {
    return j.contains(key) && (j[key].is_string() || j[key].is_null());
  };
  if (!integer("operator_id") || !integer("tenant_id") || !text("state") || !text("since") || !text_or_null("reason") ||
      !text_or_null("device") || !j.contains("current_call_id") ||
      !(j["current_call_id"].is_null() || j["current_call_id"].is_number_integer()))
    return std::nullopt;
  operator_presence p;
  p.operator_id = j["operator_id"].get<std::int64_t>();
  p.tenant_id = j["tenant_id"].get<std::int64_t>();
  p.state = j["state"].get<std::string>();
  if (j["reason"].is_string()) p.reason = j["reason"].get<std::string>();
  p.since = j["since"].get<std::string>();
  if (j["device"].is_string()) p.device = j["device"].get<std::string>();
  if (j["current_call_id"].is_number_integer()) p.current_call_id = j["current_call_id"].get<std::int64_t>();
  return p;
}

}  // namespace switchboard::store
