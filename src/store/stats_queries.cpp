// Live statistics: one prepared call of the SQL function per request, mapped to plain structs.
#include "switchboard/store/stats_queries.hpp"

#include "prepared.hpp"
#include "switchboard/store/pool.hpp"

namespace switchboard::store {
namespace {

using detail::epoch_seconds;
using detail::exec_prepared_in;

constexpr const char* queue_sql = R"(
SELECT queue_id, name, waiting, longest_wait_seconds, ready, busy, answered, abandoned, service_level_percent,
       service_level_seconds, not_ready, logged_in, offered, answered_within_sl, abandoned_within_sl, overflowed,
       transferred, handled, asa_seconds, aht_seconds, abandon_rate_percent
  FROM queue_live_stats($1, coalesce(to_timestamp($2), now())))";

constexpr const char* operator_sql = R"(
SELECT operator_id, login, full_name, state, coalesce(reason, ''), seconds_in_state, current_call_id, calls_today,
       handled, talk_seconds, hold_seconds, wrap_up_seconds, handle_seconds, aht_seconds, logged_in_seconds,
       not_ready_seconds, busy_seconds, occupancy_percent
  FROM operator_live_stats($1, coalesce(to_timestamp($2), now())))";

std::optional<double> epoch_of(const std::optional<wall_time>& at) {
  if (!at) return std::nullopt;
  return epoch_seconds(*at);
}

}  // namespace

boost::asio::awaitable<result<std::vector<live_queue_stats>>> queue_live_stats(connection_pool& pool,
                                                                               std::int64_t tenant_id,
                                                                               std::optional<wall_time> at) {
  auto work = [tenant_id, at = epoch_of(at)](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::vector<live_queue_stats> out;
    for (const auto& row : exec_prepared_in(tx, conn, "stats_queues", queue_sql, tenant_id, at)) {
      live_queue_stats s;
      s.queue_id = row[0].as<std::int64_t>();
      s.name = row[1].as<std::string>();
      s.waiting = row[2].as<int>();
      s.longest_wait_seconds = row[3].as<double>();
      s.ready = row[4].as<int>();
      s.busy = row[5].as<int>();
      s.answered = row[6].as<int>();
      s.abandoned = row[7].as<int>();
      s.service_level_percent = row[8].as<std::optional<double>>();
      s.service_level_seconds = row[9].as<int>();
      s.not_ready = row[10].as<int>();
      s.logged_in = row[11].as<int>();
      s.offered = row[12].as<int>();
      s.answered_within_sl = row[13].as<int>();
      s.abandoned_within_sl = row[14].as<int>();
      s.overflowed = row[15].as<int>();
      s.transferred = row[16].as<int>();
      s.handled = row[17].as<int>();
      s.asa_seconds = row[18].as<std::optional<double>>();
      s.aht_seconds = row[19].as<std::optional<double>>();
      s.abandon_rate_percent = row[20].as<std::optional<double>>();
      out.push_back(std::move(s));
    }
    return out;
  };
  co_return co_await pool.run(std::move(work));
}

boost::asio::awaitable<result<std::vector<live_operator_stats>>> operator_live_stats(connection_pool& pool,
                                                                                     std::int64_t tenant_id,
                                                                                     std::optional<wall_time> at) {
  auto work = [tenant_id, at = epoch_of(at)](pqxx::connection& conn) {
    pqxx::read_transaction tx(conn);
    std::vector<live_operator_stats> out;
    for (const auto& row : exec_prepared_in(tx, conn, "stats_operators", operator_sql, tenant_id, at)) {
      live_operator_stats s;
      s.operator_id = row[0].as<std::int64_t>();
      s.login = row[1].as<std::string>();
      s.full_name = row[2].as<std::string>();
      s.state = row[3].as<std::string>();
      s.reason = row[4].as<std::string>();
      s.seconds_in_state = row[5].as<double>();
      s.current_call_id = row[6].as<std::optional<std::int64_t>>();
      s.calls_today = row[7].as<int>();
      s.handled = row[8].as<int>();
      s.talk_seconds = row[9].as<double>();
      s.hold_seconds = row[10].as<double>();
      s.wrap_up_seconds = row[11].as<double>();
      s.handle_seconds = row[12].as<double>();
      s.aht_seconds = row[13].as<std::optional<double>>();
      s.logged_in_seconds = row[14].as<double>();
      s.not_ready_seconds = row[15].as<double>();
      s.busy_seconds = row[16].as<double>();
      s.occupancy_percent = row[17].as<std::optional<double>>();
      out.push_back(std::move(s));
    }
    return out;
  };
  co_return co_await pool.run(std::move(work));
}

}  // namespace switchboard::store
