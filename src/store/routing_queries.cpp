// Routing queries: one prepared statement each, in autocommit mode, so a call's whole routing
// step (the SQL function is atomic on its own) costs one round trip.
#include "switchboard/store/routing_queries.hpp"

#include "prepared.hpp"
#include "switchboard/store/pool.hpp"

#include <fmt/format.h>

namespace switchboard::store {
namespace {

// A decision that reserves an operator brings his screen pop in the same round trip
// (checked_screen_pop, 0051: an admin's failing screen_pop costs the pop, not the decision).
constexpr const char* offer_sql =
    "SELECT d.*, p.customer, p.customer_read FROM offer_call($1, $2, $3, $4, $5::jsonb, $6, $7) d, "
    "checked_screen_pop(CASE WHEN d.kind = 'operator' THEN d.call_id END) p";
constexpr const char* recheck_sql =
    "SELECT d.*, p.customer, p.customer_read FROM recheck_waiting_call($1, $2) d, "
    "checked_screen_pop(CASE WHEN d.kind = 'operator' THEN d.call_id END) p";
constexpr const char* reroute_sql =
    "SELECT d.*, p.customer, p.customer_read FROM reroute_call($1, $2, $3) d, "
    "checked_screen_pop(CASE WHEN d.kind = 'operator' THEN d.call_id END) p";
constexpr const char* pick_call_sql =
    "SELECT c.call_id, c.queue_id, c.device, p.customer, p.customer_read "
    "FROM pick_call($1, $2) c, checked_screen_pop(c.call_id) p";
constexpr const char* expire_sql = "SELECT operator_id, call_id FROM expire_reservations()";
constexpr const char* confirm_sql = "SELECT confirm_reservation($1, $2)";
constexpr const char* release_sql = "SELECT release_reservation($1, $2)";
constexpr const char* withdraw_sql = "SELECT withdraw_waiting_call($1, $2)";
constexpr const char* timers_sql = "SELECT queue_id, check_after_seconds FROM routing_queue_timers()";
constexpr const char* stats_sql = "SELECT refresh_queue_stats()";
constexpr const char* screen_pop_sql = "SELECT screen_pop($1)::text";

// Runs one prepared statement outside a transaction block: the SQL function is atomic itself.
template <class... Args>
pqxx::result exec_prepared(pqxx::connection& conn, const char* name, const char* sql, Args&&... args) {
  pqxx::nontransaction tx(conn);
  return detail::exec_prepared_in(tx, conn, name, sql, std::forward<Args>(args)...);
}

// A statement whose one row, one column answer is a boolean.
template <class... Args>
boost::asio::awaitable<result<bool>> flag(connection_pool& pool, const char* name, const char* sql, Args... args) {
  return pool.run([name, sql, args...](pqxx::connection& conn) {
    return exec_prepared(conn, name, sql, args...).at(0)[0].template as<bool>();
  });
}

route_kind kind_from(const std::string& text) {
  if (text == "operator") return route_kind::operator_reserved;
  if (text == "queued") return route_kind::queued;
  if (text == "destination") return route_kind::destination;
  if (text == "closed") return route_kind::closed;
  if (text == "gone") return route_kind::gone;
  return route_kind::default_route;
}

// The customer columns that checked_screen_pop adds to a decision's row.
void read_pop(const pqxx::row& row, bool& customer_read, std::optional<std::string>& customer) {
  customer_read = row["customer_read"].as<bool>(false);
  if (customer_read && !row["customer"].is_null()) customer = row["customer"].as<std::string>();
}

route_decision decision_from(const pqxx::row& row) {
  route_decision d;
  d.call_id = row["call_id"].as<std::int64_t>(0);
  d.kind = kind_from(row["kind"].as<std::string>(""));
  d.operator_id = row["operator_id"].as<std::int64_t>(0);
  d.device = row["device"].as<std::string>("");
  d.queue_id = row["queue_id"].as<std::int64_t>(0);
  d.position = row["queue_position"].as<int>(0);
  if (!row["expected_wait_seconds"].is_null()) d.expected_wait_seconds = row["expected_wait_seconds"].as<int>();
  d.destination = row["destination"].as<std::string>("");
  d.reason = row["reason"].as<std::string>("");
  if (d.kind == route_kind::operator_reserved) read_pop(row, d.customer_read, d.customer);
  return d;
}

// Parses a PostgreSQL integer[] literal such as {5,30,60}.
std::vector<int> int_array(const std::string& text) {
  std::vector<int> out;
  int value = 0;
  bool in_number = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      in_number = true;
    } else if (in_number) {
      out.push_back(value);
      value = 0;
      in_number = false;
    }
  }
  return out;
}

void append_json_string(std::string& out, const std::string& text) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        else
          out += static_cast<char>(c);
    }
  }
  out += '"';
}

std::optional<std::string> null_if_empty(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

}  // namespace

std::string ivr_data_json(const std::vector<std::pair<std::string, std::string>>& data) {
  std::string out = "{";
  for (const auto& [key, value] : data) {
    if (out.size() > 1) out += ',';
    append_json_string(out, key);
    out += ':';
    append_json_string(out, value);
  }
  out += '}';
  return out;
}

boost::asio::awaitable<result<route_decision>> offer_call(connection_pool& pool, const call_offer& offer) {
  return pool.run([offer, ivr = ivr_data_json(offer.ivr_data)](pqxx::connection& conn) {
    auto rows =
        exec_prepared(conn, "routing_offer_call", offer_sql, offer.route_point, offer.pbx_call_id, offer.caller,
                      offer.dialled, ivr, null_if_empty(offer.node), static_cast<int>(offer.reservation.count()));
    return decision_from(rows.at(0));
  });
}

boost::asio::awaitable<result<route_decision>> reroute_call(connection_pool& pool, std::int64_t call_id,
                                                            std::string node, std::chrono::seconds reservation) {
  return pool.run(
      [call_id, node = std::move(node), seconds = static_cast<int>(reservation.count())](pqxx::connection& conn) {
        return decision_from(
            exec_prepared(conn, "routing_reroute", reroute_sql, call_id, null_if_empty(node), seconds).at(0));
      });
}

boost::asio::awaitable<result<route_decision>> recheck_waiting_call(connection_pool& pool, std::int64_t call_id,
                                                                    std::chrono::seconds reservation) {
  return pool.run([call_id, seconds = static_cast<int>(reservation.count())](pqxx::connection& conn) {
    return decision_from(exec_prepared(conn, "routing_recheck", recheck_sql, call_id, seconds).at(0));
  });
}

boost::asio::awaitable<result<std::optional<call_assignment>>> pick_call(connection_pool& pool,
                                                                         std::int64_t operator_id,
                                                                         std::chrono::seconds reservation) {
  return pool.run([operator_id, seconds = static_cast<int>(reservation.count())](pqxx::connection& conn) {
    auto rows = exec_prepared(conn, "routing_pick_call", pick_call_sql, operator_id, seconds);
    std::optional<call_assignment> out;
    if (!rows.empty()) {
      out = call_assignment{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::int64_t>(), operator_id,
                            rows[0][2].as<std::string>("")};
      read_pop(rows[0], out->customer_read, out->customer);
    }
    return out;
  });
}

boost::asio::awaitable<result<std::vector<expired_reservation>>> expire_reservations(connection_pool& pool) {
  return pool.run([](pqxx::connection& conn) {
    std::vector<expired_reservation> out;
    for (const auto& row : exec_prepared(conn, "routing_expire", expire_sql))
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(0)});
    return out;
  });
}

boost::asio::awaitable<result<bool>> confirm_reservation(connection_pool& pool, std::int64_t operator_id,
                                                         std::int64_t call_id) {
  return flag(pool, "routing_confirm", confirm_sql, operator_id, call_id);
}

boost::asio::awaitable<result<bool>> release_reservation(connection_pool& pool, std::int64_t operator_id,
                                                         std::int64_t call_id) {
  return flag(pool, "routing_release", release_sql, operator_id, call_id);
}

boost::asio::awaitable<result<bool>> withdraw_waiting_call(connection_pool& pool, std::int64_t call_id,
                                                           std::string reason) {
  return flag(pool, "routing_withdraw", withdraw_sql, call_id, std::move(reason));
}

boost::asio::awaitable<result<std::vector<queue_timers>>> load_queue_timers(connection_pool& pool) {
  return pool.run([](pqxx::connection& conn) {
    std::vector<queue_timers> out;
    for (const auto& row : exec_prepared(conn, "routing_timers", timers_sql))
      out.push_back({row[0].as<std::int64_t>(), int_array(row[1].as<std::string>("{}"))});
    return out;
  });
}

boost::asio::awaitable<result<int>> refresh_queue_stats(connection_pool& pool) {
  return pool.run(
      [](pqxx::connection& conn) { return exec_prepared(conn, "routing_stats", stats_sql).at(0)[0].as<int>(); });
}

boost::asio::awaitable<result<std::optional<std::string>>> screen_pop(connection_pool& pool, std::int64_t call_id) {
  return pool.run([call_id](pqxx::connection& conn) {
    auto rows = exec_prepared(conn, "routing_screen_pop", screen_pop_sql, call_id);
    std::optional<std::string> out;
    if (!rows.empty() && !rows[0][0].is_null()) out = rows[0][0].as<std::string>();
    return out;
  });
}

}  // namespace switchboard::store
