// The simulated PBX's call model: devices, calls and connections as a switch keeps them, driven
// by CSTA requests and a clock passed in, so every step is unit-tested without sockets or time.
#pragma once

#include "switchboard/csta/messages.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace switchboard::pbxsim {

// Simulated time: milliseconds since the simulator started. The model never reads a clock.
using sim_time = std::chrono::milliseconds;

struct model_config {
  std::vector<std::string> operators;     // operator extensions (phones with an agent)
  std::vector<std::string> route_points;  // devices that ask the CTI link where calls go
  // Where a route point's call goes when no CTI link is registered, the link ends the dialog or
  // does not answer in time. Must be one of `operators`.
  std::string default_device;
  std::chrono::milliseconds route_timeout{5000};
  // Operators' phones answer by themselves after this delay; std::nullopt: only on AnswerCall.
  std::optional<std::chrono::milliseconds> auto_answer_delay = std::chrono::milliseconds(1000);
  // An outside number called by an operator answers after this delay and talks this long.
  std::chrono::milliseconds external_answer_delay{2000};
  std::chrono::milliseconds external_talk_time{30000};
  // Remember every inbound call's routing fate (call_log()): tests match it against call records.
  bool keep_call_log = false;
};

// An outside caller dialling into the PBX (what the generator produces).
struct inbound_call {
  std::string caller;                                 // "+49305550001"
  std::string dialled;                                // a route point or an operator extension
  std::string correlator;                             // IVR digits; empty: none
  std::chrono::milliseconds talk_time{60000};         // from answer until the caller hangs up
  std::optional<std::chrono::milliseconds> patience;  // hangs up if not answered by then
};

// Something the PBX sends. `target` is the device whose monitors receive an event (the
// server fills in each monitor's cross reference id), or for routing messages the
// routeRegisterReqID of the registration that owns the dialog.
struct output {
  enum class kind { device_event, routing };
  kind what = kind::device_event;
  std::string target;
  csta::message message;
};

struct model_stats {
  std::uint64_t offered = 0;         // inbound calls from outside
  std::uint64_t route_requests = 0;  // RouteRequests sent
  std::uint64_t routed_by_cti = 0;   // delivered where a RouteSelect said
  std::uint64_t default_routed = 0;  // sent to the default device (no link, timeout, RouteEnd)
  std::uint64_t route_timeouts = 0;
  std::uint64_t abandoned = 0;  // outside callers who hung up before an answer
  std::uint64_t answered = 0;   // inbound calls answered by an operator
  std::uint64_t completed = 0;  // calls cleared
  std::uint64_t active_calls = 0;
};

// What became of one inbound call, as far as routing goes (model_config::keep_call_log).
struct call_fate {
  std::string call;
  bool route_requested = false;  // a RouteRequest went to a CTI link
  bool routed_by_cti = false;    // delivered where a RouteSelect said
  bool default_routed = false;   // went to the default device (no link, timeout, RouteEnd)
  bool answered = false;
  bool ended = false;
  std::string continued_as;  // transfer or conference: the call's new id
};

enum class device_kind { operator_phone, route_point };

// Agent state at an operator device, as GetAgentState reports it (busy is derived from calls).
enum class agent_state { logged_off, not_ready, ready, working_after_call };

class call_model {
 public:
  explicit call_model(model_config config);

  // ---- inputs ---------------------------------------------------------------------------------
  // An outside caller dials in. Returns the new call's id, or std::nullopt when `dialled` is no
  // device of this PBX (counted as offered, nothing else happens).
  std::optional<std::string> offer_call(const inbound_call& call, sim_time now);

  // Fires every timer due at or before `now` (answers, route timeouts, hang-ups, abandons).
  void advance(sim_time now);
  // When the next timer is due; std::nullopt: none pending.
  std::optional<sim_time> next_due() const;

  // A CTI request (call control, routing, agent state, snapshot). Returns the response to send
  // with the request's invoke id (a positive response or CSTAErrorCode), or std::nullopt for
  // messages the schema answers with nothing (RouteSelect, RouteEnd accepted).
  std::optional<csta::message> handle(const csta::message& request, sim_time now);

  // Monitors counted per device: events are only built for devices somebody watches.
  bool has_device(std::string_view id) const;
  void add_monitor(std::string_view device);
  void remove_monitor(std::string_view device);

  // A CTI link went away: its route registrations end and their open dialogs go to the default
  // device at once, as a PBX does when the routing application is lost.
  void cancel_registration(std::string_view route_register_req_id, sim_time now);

  // The outside party of a call hangs up now (tests, control port).
  bool hang_up_caller(std::string_view call_id, sim_time now);

  // ---- outputs --------------------------------------------------------------------------------
  // Everything sent since the last take, in order.
  std::vector<output> take_outputs();
  bool has_outputs() const noexcept { return !outputs_.empty(); }

  const model_stats& stats() const noexcept { return stats_; }
  const model_config& config() const noexcept { return config_; }
  // Every inbound call so far, oldest first (empty unless config().keep_call_log).
  std::vector<call_fate> call_log() const;
  std::optional<agent_state> agent_state_of(std::string_view device) const;
  // The local connection state of `device` in `call_id`, std::nullopt when it has none.
  std::optional<csta::local_connection_state> state_of(std::string_view call_id, std::string_view device) const;
  // True while the phone rings, talks or dials (a held call leaves it free for another).
  bool is_busy(std::string_view device) const;
  // Ids of the calls `device` takes part in, oldest first.
  std::vector<std::string> calls_at(std::string_view device) const;

 private:
  static constexpr std::uint32_t external = UINT32_MAX;  // a party outside the PBX

  enum class timer_kind : std::uint8_t { answer, route_timeout, hang_up, patience, external_answer, count };
  static constexpr std::size_t timer_kinds = static_cast<std::size_t>(timer_kind::count);

  struct connection {
    std::uint32_t device = external;  // index into devices_, or external
    std::string number;
    csta::local_connection_state state = csta::local_connection_state::null;
  };

  struct call {
    std::uint64_t id = 0;
    std::vector<connection> parties;  // the outside caller (if any) first
    std::string calling;              // who started the call
    std::string called;               // the number first dialled
    std::string correlator;
    bool inbound = false;  // offered from outside (counted in the stats)
    bool answered = false;
    // The open routing dialog, if any.
    std::uint64_t route_xref = 0;
    std::uint32_t route_registration = 0;
    std::uint32_t route_point = external;
    std::chrono::milliseconds talk_time{0};
    // Timers: the armed due time per kind and a token that invalidates older heap entries.
    std::array<std::optional<sim_time>, timer_kinds> due{};
    std::array<std::uint32_t, timer_kinds> token{};
    // Which connection the answer/external_answer timer is for.
    std::uint32_t answer_device = external;
    std::string external_number;
  };

  struct device {
    std::string id;
    device_kind kind = device_kind::operator_phone;
    int monitors = 0;
    std::vector<std::uint64_t> calls;   // calls with a connection here, except queued ones
    std::deque<std::uint64_t> waiting;  // calls queued here (the default device when busy)
    agent_state agent = agent_state::logged_off;
    std::string agent_id;
    std::string group;
  };

  struct registration {
    std::uint32_t id = 0;
    std::optional<std::uint32_t> device;  // std::nullopt: every route point
  };

  struct timer_entry {
    sim_time due;
    std::uint64_t seq;
    std::uint64_t call;
    timer_kind kind;
    std::uint32_t token;
    bool operator>(const timer_entry& o) const noexcept { return due != o.due ? due > o.due : seq > o.seq; }
  };

  // -- lookups
  std::optional<std::uint32_t> find_device(std::string_view id) const;
  call* find_call(std::string_view id);
  const call* find_call(std::string_view id) const;
  call* find_call(std::uint64_t id);
  connection* find_connection(call& c, std::uint32_t device);
  connection* find_connection(call& c, std::string_view number);
  bool is_busy(std::uint32_t device) const;
  // The calls at `device`: its active ones, then those waiting in its queue.
  std::vector<std::uint64_t> call_ids_at(std::uint32_t device) const;
  std::string call_text(std::uint64_t id) const { return std::to_string(id); }
  csta::connection_ref ref(const call& c, const connection& p) const;
  csta::connection_ref ref(const call& c, std::string_view number) const;

  // -- mechanics
  call& new_call();
  void add_party(call& c, std::uint32_t device, std::string number, csta::local_connection_state state);
  void remove_party(call& c, std::string_view number);
  void arm(call& c, timer_kind k, sim_time due);
  void disarm(call& c, timer_kind k);
  void fire(call& c, timer_kind k, sim_time now);
  bool monitored(const call& c, std::uint32_t extra) const;
  // Sends `make()` to the monitors of every device in `c` and of `extra`.
  template <class Make>
  void emit(const call& c, std::uint32_t extra, Make&& make);
  void send_routing(std::uint32_t registration, csta::message m);

  // -- call behaviour
  void arrive(call& c, std::string_view target, std::string_view cause, sim_time now);
  void start_routing(call& c, std::uint32_t route_point, sim_time now);
  void close_dialog(call& c, std::optional<csta::choice_value> end_reason);
  void route_to_default(call& c, sim_time now);
  void divert(call& c, std::uint32_t from, std::string_view to, std::string_view cause, sim_time now);
  void ring(call& c, std::uint32_t device, std::string_view cause, sim_time now);
  void answer(call& c, std::uint32_t device, sim_time now);
  void release(call& c, std::string_view number, std::string_view cause, sim_time now);
  void clear_call(call& c, std::string_view cause, sim_time now);
  void device_freed(std::uint32_t device, sim_time now);
  std::optional<registration> registration_for(std::uint32_t route_point) const;

  // A phone goes off hook and dials `called` (make call, consultation): ServiceInitiated, Originated.
  call& originate(std::uint32_t device, std::string_view called, std::string_view correlator, std::string_view cause);

  // -- requests
  using reply = std::optional<csta::message>;
  reply on(const csta::make_call& r, sim_time now);
  reply on(const csta::answer_call& r, sim_time now);
  reply on(const csta::clear_connection& r, sim_time now);
  reply on(const csta::hold_call& r, sim_time now);
  reply on(const csta::retrieve_call& r, sim_time now);
  reply on(const csta::consultation_call& r, sim_time now);
  reply on(const csta::transfer_call& r, sim_time now);
  reply on(const csta::conference_call& r, sim_time now);
  reply on(const csta::deflect_call& r, sim_time now);
  reply on(const csta::single_step_transfer_call& r, sim_time now);
  reply on(const csta::set_agent_state& r, sim_time now);
  reply on(const csta::get_agent_state& r, sim_time now);
  reply on(const csta::snapshot_device& r, sim_time now);
  reply on(const csta::route_register& r, sim_time now);
  reply on(const csta::route_register_cancel& r, sim_time now);
  reply on(const csta::route_select& r, sim_time now);
  reply on(const csta::route_end& r, sim_time now);
  reply join(const csta::connection_ref& held, const csta::connection_ref& active, bool conference, sim_time now);
  call* find_dialog(std::string_view xref, std::string_view registration);
  // Transfer, conference and single-step transfer: the parties of `olds` move into a new call
  // (the ids change, as CSTA reports them); `device` stays only when `keep_device`.
  struct merge_result {
    std::uint64_t new_call = 0;
    std::vector<std::uint32_t> recipients;  // every device of the old calls
    std::vector<csta::connection_list_item> items;
  };
  merge_result merge(std::initializer_list<call*> olds, std::uint32_t device, bool keep_device, sim_time now);
  template <class Make>
  void emit_to(const std::vector<std::uint32_t>& recipients, Make&& make);

  model_config config_;
  std::vector<device> devices_;
  std::unordered_map<std::string, std::uint32_t> device_index_;
  std::uint32_t default_device_ = external;
  std::unordered_map<std::uint64_t, call> calls_;
  std::unordered_map<std::uint64_t, std::uint64_t> dialogs_;  // route xref -> call
  std::vector<registration> registrations_;
  std::priority_queue<timer_entry, std::vector<timer_entry>, std::greater<>> timers_;
  std::vector<output> outputs_;
  model_stats stats_;
  std::map<std::uint64_t, call_fate> call_log_;
  call_fate* fate_of(const call& c);
  std::uint64_t next_call_ = 1;
  std::uint64_t next_xref_ = 5001;
  std::uint32_t next_registration_ = 1;
  std::uint64_t next_seq_ = 0;
};

// The CSTA negative response with one choice: error("operation", "invalidCallID").
csta::message csta_error(std::string_view choice, std::string_view value);

}  // namespace switchboard::pbxsim
