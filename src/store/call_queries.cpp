// Call records and phone-driven presence: prepared statements applied in order, one
// transaction per batch, one savepoint per write.
#include "switchboard/store/call_queries.hpp"

#include "prepared.hpp"
#include "switchboard/store/pool.hpp"

#include <nlohmann/json.hpp>

namespace switchboard::store {
namespace {

using detail::epoch_seconds;
using detail::exec_prepared_in;

// A move to the state the operator is in (a wrap-up that learns its call's record) keeps
// `since`: supervisors see how long he has been in that state, not since the record came.
constexpr const char* presence_move_sql = R"(
UPDATE presence SET state = $2::presence_state,
       reason = $4,
       since = CASE WHEN state = $2::presence_state THEN since ELSE clock_timestamp() END,
       current_call_id = CASE WHEN $2::text IN ('ready', 'not_ready', 'logged_out') THEN NULL
                              ELSE coalesce($3, current_call_id) END,
       reserved_until = NULL,
       last_call_ended = CASE WHEN $5 THEN clock_timestamp() ELSE last_call_ended END,
       calls_handled = calls_handled + CASE WHEN $5 THEN 1 ELSE 0 END
 WHERE operator_id = $1 AND state = ANY ($6::presence_state[])
RETURNING 1)";

// The call writes as CTEs with their parameters from $1: alone each is "WITH <ctes> SELECT 1";
// after a presence move they join its statement (paired_sql). Times are clamped to the
// record's earlier times: node and database clocks may differ a little.
constexpr const char* answered_ctes = R"(
c AS (
  UPDATE calls SET answered_at = coalesce(answered_at, greatest(to_timestamp($3), offered_at)),
         operator_id = coalesce(operator_id, $2),
         last_operator_id = $2,
         wait_seconds = coalesce(wait_seconds,
                                 extract(epoch FROM greatest(to_timestamp($3), offered_at) - offered_at))
   WHERE call_id = $1
  RETURNING tenant_id, call_id, coalesce(final_queue_id, queue_id) AS queue_id),
e AS (
  INSERT INTO call_events (tenant_id, call_id, at, kind, operator_id, queue_id)
  SELECT tenant_id, call_id, to_timestamp($3), 'answered', $2, queue_id FROM c))";

constexpr const char* journal_ctes = R"(
e AS (
  INSERT INTO call_events (tenant_id, call_id, at, kind, operator_id, device, detail)
  SELECT tenant_id, call_id, to_timestamp($2), $3, $4, nullif($5, ''), $6::jsonb FROM calls WHERE call_id = $1))";

constexpr const char* finished_ctes = R"(
c AS (
  UPDATE calls SET ended_at = greatest(to_timestamp($3), offered_at, answered_at),
         disposition = $2::call_disposition,
         wait_seconds = coalesce(wait_seconds,
                                 extract(epoch FROM greatest(to_timestamp($3), offered_at) - offered_at)),
         hold_seconds = $4,
         talk_seconds = CASE WHEN answered_at IS NULL THEN NULL
                             ELSE greatest(extract(epoch FROM greatest(to_timestamp($3), answered_at) - answered_at)
                                           - $4, 0) END
   WHERE call_id = $1 AND ended_at IS NULL
  RETURNING tenant_id, call_id, last_operator_id, disposition),
e AS (
  INSERT INTO call_events (tenant_id, call_id, at, kind, operator_id, detail)
  SELECT tenant_id, call_id, to_timestamp($3), 'ended', last_operator_id, jsonb_build_object('disposition', disposition)
    FROM c))";

constexpr const char* wrap_up_ctes = R"(
w AS (
  UPDATE calls SET wrap_up_seconds = greatest(extract(epoch FROM to_timestamp($2) - ended_at), 0)
   WHERE call_id = $1 AND ended_at IS NOT NULL
  RETURNING 1))";

// `sql` with each parameter $n renumbered $(n + by).
std::string shift_parameters(std::string_view sql, int by) {
  std::string out;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    out += sql[i];
    if (sql[i] != '$') continue;
    std::size_t end = i + 1;
    while (end < sql.size() && sql[end] >= '0' && sql[end] <= '9') ++end;
    if (end == i + 1) continue;
    out += std::to_string(std::stoi(std::string(sql.substr(i + 1, end - i - 1))) + by);
    i = end - 1;
  }
  return out;
}

// One call write on its own.
std::string alone_sql(const char* ctes) { return std::string("WITH") + ctes + "\nSELECT 1"; }

// A presence move and the call write next to it in a batch as one statement: one round trip and
// one statement fewer, and both always run, as one after the other would. The move (parameters
// $1..$6) is the CTE `moved`, the call write's parameters follow from $7; they touch different
// tables, so sharing one snapshot changes nothing. Answers whether the move was applied.
std::string paired_sql(const char* ctes) {
  return std::string("WITH moved AS (") + presence_move_sql + "),\n" + shift_parameters(ctes, 6) +
         "\nSELECT count(*) FROM moved";
}

constexpr const char* create_sql = R"(
WITH c AS (
  INSERT INTO calls (tenant_id, pbx_call_id, direction, caller, dialled, node)
  SELECT tenant_id, $2, $5::call_direction, $3, $4, nullif($6, '') FROM operators WHERE operator_id = $1
  RETURNING tenant_id, call_id),
e AS (INSERT INTO call_events (tenant_id, call_id, kind, operator_id) SELECT tenant_id, call_id, 'offered', $1 FROM c)
SELECT call_id FROM c)";

constexpr const char* wrap_up_code_sql = "UPDATE calls SET wrap_up_code = $2, notes = $3 WHERE call_id = $1";

constexpr const char* queue_settings_sql = "SELECT queue_id, tenant_id, name, wrap_up_seconds FROM queues";

constexpr const char* devices_sql = "SELECT device, operator_id FROM presence WHERE device IS NOT NULL";

constexpr const char* open_record_sql =
    "SELECT call_id FROM calls WHERE pbx_call_id = $1 AND ended_at IS NULL AND node IS NOT DISTINCT FROM $2 "
    "ORDER BY call_id DESC LIMIT 1";

constexpr const char* reconcile_sql = R"(
WITH live AS (SELECT unnest($1::bigint[]) AS call_id),
freed AS (
  UPDATE presence p SET state = 'ready', reason = NULL, current_call_id = NULL, reserved_until = NULL,
         since = clock_timestamp()
   WHERE p.state IN ('reserved', 'ringing', 'talking', 'held', 'wrap_up')
     AND (p.node = $2 OR p.node IS NULL)
     AND (p.current_call_id IS NULL OR p.current_call_id NOT IN (SELECT call_id FROM live))
  RETURNING p.operator_id),
gone AS (
  DELETE FROM waiting_calls w WHERE w.call_id IN (
    SELECT c.call_id FROM calls c WHERE c.ended_at IS NULL AND c.node = $2
       AND c.call_id NOT IN (SELECT call_id FROM live))),
closed AS (
  UPDATE calls c SET ended_at = greatest(clock_timestamp(), c.offered_at, c.answered_at),
         disposition = CASE WHEN c.answered_at IS NULL THEN 'failed' ELSE 'answered' END::call_disposition
   WHERE c.ended_at IS NULL AND c.node = $2 AND c.call_id NOT IN (SELECT call_id FROM live)
  RETURNING c.tenant_id, c.call_id),
journal AS (
  INSERT INTO call_events (tenant_id, call_id, kind, detail)
  SELECT tenant_id, call_id, 'closed_on_reconcile', '{"why": "not live at the PBX after a restart or link loss"}'
    FROM closed)
SELECT (SELECT count(*) FROM freed), (SELECT count(*) FROM closed))";

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    out += item;  // presence_state names: lower-case words, nothing to quote
  }
  return out + "}";
}

std::string array_literal(const std::vector<std::int64_t>& items) {
  std::string out = "{";
  for (auto item : items) {
    if (out.size() > 1) out += ',';
    out += std::to_string(item);
  }
  return out + "}";
}

// Applies one write inside the caller's savepoint; false when a presence move was refused.
bool apply_one(pqxx::transaction_base& tx, pqxx::connection& conn, const call_write& write) {
  return std::visit(
      [&](const auto& w) -> bool {
        using T = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<T, presence_move>) {
          auto rows = exec_prepared_in(tx, conn, "calls_presence_move", presence_move_sql, w.operator_id, w.to,
                                       w.call_id, w.reason, w.call_finished, array_literal(w.from));
          return !rows.empty();
        } else if constexpr (std::is_same_v<T, call_answered>) {
          static const auto answered_sql = alone_sql(answered_ctes);
          exec_prepared_in(tx, conn, "calls_answered", answered_sql.c_str(), w.call_id, w.operator_id,
                           epoch_seconds(w.at));
        } else if constexpr (std::is_same_v<T, call_journal_entry>) {
          nlohmann::json detail = nlohmann::json::object();
          for (const auto& [key, value] : w.detail) detail[key] = value;
          static const auto journal_sql = alone_sql(journal_ctes);
          exec_prepared_in(tx, conn, "calls_journal", journal_sql.c_str(), w.call_id, epoch_seconds(w.at), w.kind,
                           w.operator_id, w.device, detail.dump());
        } else if constexpr (std::is_same_v<T, call_finished>) {
          static const auto finished_sql = alone_sql(finished_ctes);
          exec_prepared_in(tx, conn, "calls_finished", finished_sql.c_str(), w.call_id, w.disposition,
                           epoch_seconds(w.at), std::chrono::duration<double>(w.held).count());
        } else if constexpr (std::is_same_v<T, wrap_up_finished>) {
          static const auto wrap_up_sql = alone_sql(wrap_up_ctes);
          exec_prepared_in(tx, conn, "calls_wrap_up", wrap_up_sql.c_str(), w.call_id, epoch_seconds(w.at));
        } else {
          exec_prepared_in(tx, conn, "calls_wrap_up_code", wrap_up_code_sql, w.call_id, w.code, w.notes);
        }
        return true;
      },
      write);
}

// The fused statement for writes[i] and writes[i + 1], run if they are a presence move and the
// call write that goes with it (see paired_sql); returns how many writes it applied (0: none).
// Without a transaction it only says whether they pair.
std::size_t apply_pair(pqxx::transaction_base* tx, pqxx::connection& conn, const std::vector<call_write>& writes,
                       std::size_t i, write_report& report) {
  if (i + 1 >= writes.size()) return 0;
  const auto* first = &writes[i];
  const auto* second = &writes[i + 1];
  std::size_t move_index = i;
  if (std::holds_alternative<wrap_up_finished>(*first) && std::holds_alternative<presence_move>(*second)) {
    std::swap(first, second);
    move_index = i + 1;
  }
  const auto* move = std::get_if<presence_move>(first);
  if (!move) return 0;
  const auto run = [&](const char* name, const char* ctes, auto&&... more) {
    if (!tx) return std::size_t{2};
    conn.prepare(name, paired_sql(ctes));
    const pqxx::result rows =
        tx->exec_prepared(name, move->operator_id, move->to, move->call_id, move->reason, move->call_finished,
                          array_literal(move->from), std::forward<decltype(more)>(more)...);
    if (rows.at(0)[0].as<int>() == 0) report.refused.push_back(move_index);
    return std::size_t{2};
  };
  if (const auto* a = std::get_if<call_answered>(second); a && move->call_id == a->call_id)
    return run("calls_moved_answered", answered_ctes, a->call_id, a->operator_id, epoch_seconds(a->at));
  if (const auto* j = std::get_if<call_journal_entry>(second); j && j->operator_id == move->operator_id) {
    nlohmann::json detail = nlohmann::json::object();
    for (const auto& [key, value] : j->detail) detail[key] = value;
    return run("calls_moved_journal", journal_ctes, j->call_id, epoch_seconds(j->at), j->kind, j->operator_id,
               j->device, detail.dump());
  }
  if (const auto* f = std::get_if<call_finished>(second); f && move->call_id == f->call_id)
    return run("calls_moved_finished", finished_ctes, f->call_id, f->disposition, epoch_seconds(f->at),
               std::chrono::duration<double>(f->held).count());
  if (const auto* w = std::get_if<wrap_up_finished>(second))
    return run("calls_moved_wrap_up", wrap_up_ctes, w->call_id, epoch_seconds(w->at));
  return 0;
}

}  // namespace

boost::asio::awaitable<result<write_report>> apply_call_writes(connection_pool& pool, std::vector<call_write> writes) {
  auto work = [writes = std::move(writes)](pqxx::connection& conn) {
    // Fast path: the whole batch in one transaction without savepoints, two round trips fewer
    // per write, and a presence move with the call write that goes with it as one statement. A
    // write that fails aborts it; the batch is then replayed below, one savepoint per write, so
    // that one bad write never takes the others with it.
    try {
      write_report report;
      const auto apply_all = [&](pqxx::transaction_base& tx) {
        for (std::size_t i = 0; i < writes.size();) {
          if (auto applied = apply_pair(&tx, conn, writes, i, report)) {
            i += applied;
            continue;
          }
          if (!apply_one(tx, conn, writes[i])) report.refused.push_back(i);
          ++i;
        }
      };
      // A batch that is one statement (one write, or one pair) is atomic on its own: no
      // BEGIN and COMMIT, two round trips fewer.
      if (writes.size() == 1 || (writes.size() == 2 && apply_pair(nullptr, conn, writes, 0, report) == 2)) {
        pqxx::nontransaction tx(conn);
        apply_all(tx);
        return report;
      }
      pqxx::work tx(conn);
      apply_all(tx);
      tx.commit();
      return report;
    } catch (const pqxx::broken_connection&) {
      throw;  // the whole batch is lost with the connection: the pool reports db_unavailable
    } catch (const pqxx::in_doubt_error&) {
      throw;  // the commit may have happened: replaying could write twice
    } catch (const std::exception&) {
      // rolled back (the transaction's destructor): replay write by write
    }
    write_report report;
    pqxx::work tx(conn);
    // A deferred reference (presence -> calls, 0052) would fail only at commit and take the
    // whole batch with it: checked at each write here, so the bad one is refused alone.
    tx.exec0("SET CONSTRAINTS ALL IMMEDIATE");
    for (std::size_t i = 0; i < writes.size(); ++i) {
      // A plain savepoint: libpqxx 6.4's subtransaction does not roll back after a failed
      // prepared statement, which would abort the rest of the batch.
      tx.exec0("SAVEPOINT one_write");
      try {
        if (!apply_one(tx, conn, writes[i])) report.refused.push_back(i);
        tx.exec0("RELEASE SAVEPOINT one_write");
      } catch (const pqxx::broken_connection&) {
        throw;  // the whole batch is lost with the connection: the pool reports db_unavailable
      } catch (const std::exception& e) {
        tx.exec0("ROLLBACK TO SAVEPOINT one_write");
        report.failed.emplace_back(i, to_error(e));
      }
    }
    tx.commit();
    return report;
  };
  co_return co_await pool.run(std::move(work));
}

boost::asio::awaitable<result<std::int64_t>> create_call_record(connection_pool& pool, std::int64_t operator_id,
                                                                std::string pbx_call_id, std::string caller,
                                                                std::string dialled, std::string direction,
                                                                std::string node) {
  auto work = [=](pqxx::connection& conn) {
    pqxx::work tx(conn);
    auto rows = exec_prepared_in(tx, conn, "calls_create", create_sql, operator_id, pbx_call_id, caller, dialled,
                                 direction, node);
    tx.commit();
    return rows.empty() ? std::int64_t{0} : rows[0][0].as<std::int64_t>();
  };
  co_return co_await pool.run(std::move(work));
}

result<monitored_devices> load_monitored_devices(connection_pool& pool) {
  return pool.run_blocking([](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    monitored_devices out;
    for (const auto& row : tx.exec("SELECT device FROM route_points ORDER BY device"))
      out.route_points.push_back(row[0].as<std::string>());
    for (const auto& row : tx.exec("SELECT DISTINCT extension FROM operators WHERE active AND extension IS NOT NULL "
                                   "ORDER BY extension"))
      out.extensions.push_back(row[0].as<std::string>());
    return out;
  });
}

boost::asio::awaitable<result<std::vector<queue_setting>>> load_queue_settings(connection_pool& pool) {
  auto work = [](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::vector<queue_setting> out;
    for (const auto& row : exec_prepared_in(tx, conn, "calls_queue_settings", queue_settings_sql))
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), row[2].as<std::string>(), row[3].as<int>()});
    return out;
  };
  co_return co_await pool.run(std::move(work));
}

boost::asio::awaitable<result<std::vector<std::pair<std::string, std::int64_t>>>> logged_in_devices(
    connection_pool& pool) {
  auto work = [](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& row : exec_prepared_in(tx, conn, "calls_devices", devices_sql))
      out.emplace_back(row[0].as<std::string>(), row[1].as<std::int64_t>());
    return out;
  };
  co_return co_await pool.run(std::move(work));
}

boost::asio::awaitable<result<std::vector<std::pair<std::string, std::int64_t>>>> open_call_records(
    connection_pool& pool, std::vector<std::string> pbx_call_ids, std::string node) {
  auto work = [ids = std::move(pbx_call_ids), node = std::move(node)](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const auto& id : ids) {
      auto rows = exec_prepared_in(tx, conn, "calls_open_record", open_record_sql, id,
                                   node.empty() ? std::optional<std::string>() : std::optional<std::string>(node));
      if (!rows.empty()) out.emplace_back(id, rows[0][0].as<std::int64_t>());
    }
    return out;
  };
  co_return co_await pool.run(std::move(work));
}

boost::asio::awaitable<result<std::pair<int, int>>> reconcile_calls(connection_pool& pool,
                                                                    std::vector<std::int64_t> live_call_ids,
                                                                    std::string node) {
  auto work = [live = array_literal(live_call_ids), node = std::move(node)](pqxx::connection& conn) {
    pqxx::work tx(conn);
    auto row = exec_prepared_in(tx, conn, "calls_reconcile", reconcile_sql, live, node).at(0);
    tx.commit();
    return std::pair<int, int>(row[0].as<int>(), row[1].as<int>());
  };
  co_return co_await pool.run(std::move(work));
}

}  // namespace switchboard::store
