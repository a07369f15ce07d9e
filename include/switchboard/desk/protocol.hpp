// The desktop protocol's messages as C++ types (docs/desktop-protocol.md, version 1): one struct
// per request and per server message, gathered in std::variants so a `switch` on the type is
// checked by the compiler. No I/O here; codec.hpp turns them into lines and back.
#pragma once

#include "switchboard/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace switchboard::desk {

inline constexpr int protocol_version = 1;

// A request's id: a string (≤ 64 bytes) or an integer, echoed unchanged in the reply.
using request_id = std::variant<std::int64_t, std::string>;

// ---- client → server requests ------------------------------------------------------------
namespace req {
struct hello {
  int version = protocol_version;
  std::string client;
};
struct login {
  std::string tenant;
  std::string login;
  std::string password;
  std::string device;  // empty: the operator's usual extension
};
struct resume {
  std::string token;
};
struct logout {};
struct ping {};
struct ready {};
struct not_ready {
  std::string reason;
};
struct end_wrap_up {};
struct answer {};
struct hangup {};
struct hold {};
struct retrieve {};
struct consult {
  std::string number;
};
enum class transfer_mode { blind, complete };
struct transfer {
  transfer_mode mode = transfer_mode::blind;
  std::string number;  // blind only
};
struct conference {};
struct dial {
  std::string number;
};
struct disposition {
  std::string code;
  std::string notes;
};
enum class forced_state { ready, not_ready, logged_out };
struct force_state {
  std::int64_t operator_id = 0;
  forced_state state = forced_state::ready;
  std::string reason;
};
struct tenant_view {};
}  // namespace req

using request_body =
    std::variant<req::hello, req::login, req::resume, req::logout, req::ping, req::ready, req::not_ready,
                 req::end_wrap_up, req::answer, req::hangup, req::hold, req::retrieve, req::consult, req::transfer,
                 req::conference, req::dial, req::disposition, req::force_state, req::tenant_view>;

struct request {
  request_id id;
  request_body body;
};

// The call-control subset of the requests: what `command_handler` carries out with the PBX.
using call_command = std::variant<req::end_wrap_up, req::answer, req::hangup, req::hold, req::retrieve, req::consult,
                                  req::transfer, req::conference, req::dial, req::disposition>;

// ---- shared pieces of server messages -----------------------------------------------------
enum class role { operator_, supervisor, admin };

struct operator_info {
  std::int64_t operator_id = 0;
  std::int64_t tenant_id = 0;
  std::string tenant;
  std::string login;
  std::string name;
  desk::role role = role::operator_;
  std::string device;
};

// The operator's presence as the desktop sees it.
struct state_event {
  std::string state = "logged_out";  // presence_state of sql/migrations/0001_core.sql
  std::optional<std::string> reason;
  std::string since;  // ISO 8601, UTC
  std::optional<std::string> device;
  std::optional<std::string> pending_not_ready;
};

enum class call_state { ringing, talking, held, consulting, conference, ended };

struct call_event {
  std::int64_t call_id = 0;
  call_state state = call_state::ringing;
  std::string caller;
  std::string dialled;
  std::optional<std::string> consult_number;
};

struct offer_call {
  std::int64_t call_id = 0;
  std::string caller;
  std::string dialled;
  std::optional<std::string> queue;
  std::optional<std::int64_t> queue_id;
  double waited_seconds = 0;
};

// The screen pop. `customer` is whatever screen_pop(...) returned (an object) or null.
struct offer_event {
  offer_call call;
  nlohmann::json customer;  // object or null
  nlohmann::json ivr = nlohmann::json::object();
};

struct operator_event {
  std::int64_t operator_id = 0;
  std::string login;
  std::string name;
  std::string state;
  std::optional<std::string> reason;
  std::string since;
  std::optional<std::string> device;
};

struct queue_info {
  std::int64_t queue_id = 0;
  std::string name;
};

struct tenant_event {
  std::vector<operator_event> operators;
  std::vector<queue_info> queues;
};

struct queue_stats {
  std::int64_t queue_id = 0;
  std::string name;
  int waiting = 0;
  double longest_wait_seconds = 0;
  int ready = 0;
  int busy = 0;
  int answered = 0;
  int abandoned = 0;
  double service_level_percent = 100;
  int offered = 0;                             // today
  std::optional<double> asa_seconds;           // average speed of answer today; none before an answer
  std::optional<double> aht_seconds;           // average handle time today
  std::optional<double> abandon_rate_percent;  // abandoned / offered today
};

// One operator of the tenant now, and his day since the tenant's midnight.
struct operator_stats {
  std::int64_t operator_id = 0;
  std::string login;
  std::string state;
  double seconds_in_state = 0;
  int calls_today = 0;  // answered by him
  int handled = 0;      // ... and ended
  std::optional<double> aht_seconds;
  std::optional<double> occupancy_percent;  // talking, holding, wrap-up / logged in and not paused
};

struct stats_event {
  std::string at;  // ISO 8601, UTC
  std::vector<queue_stats> queues;
  std::vector<operator_stats> operators;
};

struct closing_event {
  std::string code;
  std::string message;
};

// ---- replies -------------------------------------------------------------------------------
struct hello_result {
  int version = protocol_version;
  std::string server = "switchboard";
  int heartbeat_seconds = 10;
  int idle_timeout_seconds = 30;
  std::size_t max_line_bytes = 65536;
  int resume_seconds = 60;
};

struct snapshot {
  state_event state;
  std::optional<call_event> call;
  std::optional<offer_event> offer;
};

struct login_result {
  std::string token;
  int resume_seconds = 60;
  operator_info who;
  desk::snapshot snapshot;
};

struct pending_result {
  bool pending = true;
};

using ok_result = std::variant<std::monostate, hello_result, login_result, pending_result>;

struct ok_reply {
  request_id id;
  ok_result result;
};

struct error_reply {
  std::optional<request_id> id;  // nullopt when the request had no usable id
  std::string code;              // stable, see error_code_of
  std::string message;
};

struct pong_reply {
  request_id id;
};

using server_message = std::variant<ok_reply, error_reply, pong_reply, state_event, offer_event, call_event,
                                    operator_event, tenant_event, stats_event, closing_event>;

// ---- names on the wire ---------------------------------------------------------------------
// The stable wire code of an error (e.g. "state_not_allowed"); "internal" for codes the
// protocol does not name.
std::string error_code_of(const error& e);
error_reply make_error_reply(std::optional<request_id> id, const error& e);

const char* to_string(role r) noexcept;
const char* to_string(call_state s) noexcept;
const char* to_string(req::transfer_mode m) noexcept;
const char* to_string(req::forced_state s) noexcept;
// The request's "type" on the wire.
const char* type_name(const request_body& body) noexcept;

}  // namespace switchboard::desk
