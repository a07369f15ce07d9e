// The desktop channel's access to PostgreSQL: login against the pgcrypto hash, presence changes
// that only an idle operator may make (ready, not ready, logged out), and a supervisor's view
// of his tenant. Plain structs only, so the desk part never sees pqxx.
#pragma once

#include "switchboard/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::store {

class connection_pool;

// Who logged in (check_login() of sql/migrations/0001_core.sql).
struct operator_identity {
  std::int64_t operator_id = 0;
  std::int64_t tenant_id = 0;
  std::string role;  // operator_role: "operator", "supervisor", "admin"
  std::string full_name;
  std::optional<std::string> extension;
};

// One operator's presence row with his login and name.
struct operator_presence {
  std::int64_t operator_id = 0;
  std::int64_t tenant_id = 0;
  std::string login;
  std::string full_name;
  std::string state;  // presence_state
  std::optional<std::string> reason;
  std::string since;  // ISO 8601, UTC, milliseconds
  std::optional<std::string> device;
  std::optional<std::int64_t> current_call_id;
};

enum class presence_request { ready, not_ready, logged_out };

struct presence_change {
  bool changed = false;  // false: his state did not allow it (he is on a call); `now` says why
  operator_presence now;
};

struct queue_row {
  std::int64_t queue_id = 0;
  std::string name;
};

struct tenant_view {
  std::vector<operator_presence> operators;
  std::vector<queue_row> queues;
};

// The operator if tenant code, login and password match an active operator; none otherwise.
boost::asio::awaitable<result<std::optional<operator_identity>>> check_login(connection_pool& pool,
                                                                             std::string tenant_code, std::string login,
                                                                             std::string password);

// Marks him logged in on `device` at `node`: a logged-out operator becomes not ready (reason
// "login"); a logged-in one keeps his state. A device held by another logged-in operator gives
// db_constraint_violated naming presence_one_operator_per_device.
boost::asio::awaitable<result<operator_presence>> log_in(connection_pool& pool, std::int64_t operator_id,
                                                         std::string device, std::string node);

// His presence; none when he does not exist (in `tenant_id`, when given).
boost::asio::awaitable<result<std::optional<operator_presence>>> load_presence(
    connection_pool& pool, std::int64_t operator_id, std::optional<std::int64_t> tenant_id = std::nullopt);

// The presence row a `presence` NOTIFY carries (migration 0040), without login and full name
// (left empty). Nothing when the payload is not such a row (e.g. from an older schema).
std::optional<operator_presence> presence_from_notification(std::string_view payload);

// Ready (from not ready), not ready with `reason` (from ready, not ready, wrap-up) or logged out
// (from the same), in one conditional UPDATE so a concurrent reservation by the router wins
// cleanly. None when he does not exist (in `tenant_id`, when given).
boost::asio::awaitable<result<std::optional<presence_change>>> change_presence(
    connection_pool& pool, std::int64_t operator_id, presence_request to, std::string reason = {},
    std::optional<std::int64_t> tenant_id = std::nullopt);

// The operators (by login) and queues (by name) of one tenant.
boost::asio::awaitable<result<tenant_view>> load_tenant_view(connection_pool& pool, std::int64_t tenant_id);

}  // namespace switchboard::store
