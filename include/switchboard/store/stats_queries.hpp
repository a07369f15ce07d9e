// Live queue and operator statistics for supervisors, read from PostgreSQL's queue_live_stats
// and operator_live_stats (sql/migrations/0020_reports.sql, docs/reports.md). Plain structs
// only, so the calls and desk parts never see pqxx.
#pragma once

#include "switchboard/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::store {

class connection_pool;

using wall_time = std::chrono::system_clock::time_point;

// One queue now, and its calls since the tenant's midnight (counted at their first queue). The
// first fields map 1:1 onto desk::queue_stats (service_level_percent: value_or(100)).
struct live_queue_stats {
  std::int64_t queue_id = 0;
  std::string name;
  int waiting = 0;                              // calls waiting in it now
  double longest_wait_seconds = 0;              // the longest of them, since the caller started waiting
  int ready = 0;                                // operators who may take its calls, ready
  int busy = 0;                                 // ... reserved, ringing, talking, holding or in wrap-up
  int answered = 0;                             // today
  int abandoned = 0;                            // today, while waiting or ringing
  std::optional<double> service_level_percent;  // today; none when no call counts yet
  int service_level_seconds = 0;                // the queue's target
  int not_ready = 0;                            // its operators in a not-ready pause
  int logged_in = 0;                            // its operators logged in (any state but logged_out)
  int offered = 0;                              // today
  int answered_within_sl = 0;                   // today, waited at most the target
  int abandoned_within_sl = 0;                  // today, hung up within the target
  int overflowed = 0;                           // today, sent to an overflow destination
  int transferred = 0;                          // today, answered then transferred
  int handled = 0;                              // today, answered and ended
  std::optional<double> asa_seconds;            // average speed of answer today
  std::optional<double> aht_seconds;            // average handle time (talk + hold + wrap-up) today
  std::optional<double> abandon_rate_percent;   // abandoned / offered today
};

// One operator now, and his day since the tenant's midnight.
struct live_operator_stats {
  std::int64_t operator_id = 0;
  std::string login;
  std::string full_name;
  std::string state;   // presence_state name
  std::string reason;  // not-ready reason, else empty
  double seconds_in_state = 0;
  std::optional<std::int64_t> current_call_id;
  int calls_today = 0;  // answered by him (first answer) today
  int handled = 0;      // ... and ended
  double talk_seconds = 0;
  double hold_seconds = 0;
  double wrap_up_seconds = 0;
  double handle_seconds = 0;
  std::optional<double> aht_seconds;
  double logged_in_seconds = 0;  // today, from the state history
  double not_ready_seconds = 0;
  double busy_seconds = 0;                  // talking, holding or in wrap-up
  std::optional<double> occupancy_percent;  // busy / (logged in - not ready)
};

// Every queue of the tenant, by queue id. `at` replaces now() (a supervisor's "as of", tests).
boost::asio::awaitable<result<std::vector<live_queue_stats>>> queue_live_stats(
    connection_pool& pool, std::int64_t tenant_id, std::optional<wall_time> at = std::nullopt);

// Every operator of the tenant, by operator id.
boost::asio::awaitable<result<std::vector<live_operator_stats>>> operator_live_stats(
    connection_pool& pool, std::int64_t tenant_id, std::optional<wall_time> at = std::nullopt);

}  // namespace switchboard::store
