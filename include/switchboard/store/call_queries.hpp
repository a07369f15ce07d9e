// The calls part's access to PostgreSQL: presence moves driven by the phone (ringing, talking,
// held, wrap-up), call records and the call events journal, written in order as batches (one
// transaction per batch, one savepoint per write, so one refused write loses nothing else).
// Plain structs only, so the calls part never sees pqxx.
#pragma once

#include "switchboard/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace switchboard::store {

class connection_pool;

using wall_time = std::chrono::system_clock::time_point;

// Moves an operator's presence from one of `from` to `to`, in one conditional UPDATE; refused
// (not an error) when his state is not in `from` any more (the desk or a router got there first).
struct presence_move {
  std::int64_t operator_id = 0;
  std::vector<std::string> from;  // presence_state names
  std::string to;                 // presence_state name
  // His call in `to` (kept when absent). Ignored for the idle states, which clear it; named there
  // all the same when he leaves a call, so that his move keeps its place among the call's writes
  // (calls::write_lanes): another operator's reservation of it must come after.
  std::optional<std::int64_t> call_id;
  std::optional<std::string> reason;  // for not_ready
  bool call_finished = false;         // his call ended: last_call_ended and calls_handled move
};

// An operator answered the call: answered_at (first answer only), operator_id, last_operator_id,
// final_queue_id, wait_seconds; and the 'answered' journal row.
struct call_answered {
  std::int64_t call_id = 0;
  std::int64_t operator_id = 0;
  wall_time at{};
};

// One row of the call events journal.
struct call_journal_entry {
  std::int64_t call_id = 0;
  std::string kind;  // lower_case
  std::optional<std::int64_t> operator_id;
  std::string device;
  std::vector<std::pair<std::string, std::string>> detail;  // becomes a jsonb object of strings
  wall_time at{};
};

// The call is over: ended_at, disposition, talk and hold seconds, and the 'ended' journal row.
struct call_finished {
  std::int64_t call_id = 0;
  std::string disposition;  // call_disposition name
  std::chrono::milliseconds held{0};
  wall_time at{};
};

// The operator's wrap-up of the call ended: wrap_up_seconds.
struct wrap_up_finished {
  std::int64_t call_id = 0;
  wall_time at{};
};

// The operator's disposition code and notes on his call.
struct call_wrap_up_code {
  std::int64_t call_id = 0;
  std::string code;
  std::string notes;
};

using call_write =
    std::variant<presence_move, call_answered, call_journal_entry, call_finished, wrap_up_finished, call_wrap_up_code>;

struct write_report {
  std::vector<std::size_t> refused;                   // indexes of presence moves whose `from` did not match
  std::vector<std::pair<std::size_t, error>> failed;  // indexes of writes PostgreSQL refused, with why
};

// Applies `writes` in order in one transaction; each write in its own savepoint.
boost::asio::awaitable<result<write_report>> apply_call_writes(connection_pool& pool, std::vector<call_write> writes);

// A call that did not come through a route point (a direct or outbound call): its record.
boost::asio::awaitable<result<std::int64_t>> create_call_record(connection_pool& pool, std::int64_t operator_id,
                                                                std::string pbx_call_id, std::string caller,
                                                                std::string dialled, std::string direction,
                                                                std::string node);

struct queue_setting {
  std::int64_t queue_id = 0;
  std::int64_t tenant_id = 0;
  std::string name;
  int wrap_up_seconds = 0;
};

// Every queue's name and wrap-up time.
boost::asio::awaitable<result<std::vector<queue_setting>>> load_queue_settings(connection_pool& pool);

// Devices the PBX link should monitor: every route point and every active operator's extension.
struct monitored_devices {
  std::vector<std::string> route_points;
  std::vector<std::string> extensions;
};
result<monitored_devices> load_monitored_devices(connection_pool& pool);  // blocking: start-up only

// Logged-in operators' devices (device, operator id).
boost::asio::awaitable<result<std::vector<std::pair<std::string, std::int64_t>>>> logged_in_devices(
    connection_pool& pool);

// The open records of this node for calls the PBX still has (after a restart): pbx call id ->
// record; calls without one are left out.
boost::asio::awaitable<result<std::vector<std::pair<std::string, std::int64_t>>>> open_call_records(
    connection_pool& pool, std::vector<std::string> pbx_call_ids, std::string node);

// Start-up and link-return reconciliation: operators left reserved, ringing, talking or held
// whose call is not in `live_call_ids` go back to ready; open call records not in it are closed
// as failed. Returns (operators freed, records closed).
boost::asio::awaitable<result<std::pair<int, int>>> reconcile_calls(connection_pool& pool,
                                                                    std::vector<std::int64_t> live_call_ids,
                                                                    std::string node);

}  // namespace switchboard::store
