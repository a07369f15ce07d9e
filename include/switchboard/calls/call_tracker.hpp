// The call tracker: correlates neutral PBX events into calls and knows, for every call, where
// it is (offered, waiting, ringing an operator, talking, held, in consultation, ended) and which
// operators took part. Call ids that change on transfer and conference follow the call. Pure:
// time is passed in, nothing is written; the owner turns the returned updates into presence
// changes, call records and desktop events.
#pragma once

#include "switchboard/pbx/events.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace switchboard::calls {

using time_point = std::chrono::system_clock::time_point;

enum class call_phase { offered, waiting, ringing, talking, held, consulting, ended };

// How a call ended; mirrors the call_disposition enum in sql/migrations/0001_core.sql.
enum class call_disposition {
  answered,
  abandoned_waiting,
  abandoned_ringing,
  overflowed,
  transferred,
  default_routed,
  closed,
  failed
};

std::string_view to_string(call_phase p) noexcept;
std::string_view to_string(call_disposition d) noexcept;

struct tracked_call {
  std::int64_t record_id = 0;  // calls.call_id in PostgreSQL; 0 until the owner sets it
  pbx::call_id pbx_id;         // the PBX's id now (changes on transfer and conference)
  pbx::call_id first_pbx_id;   // the id it was offered with
  pbx::device_id route_point;
  std::string caller;
  std::string dialled;
  std::string correlator;
  call_phase phase = call_phase::offered;
  std::optional<pbx::device_id> ringing_at;   // operator device alerting now
  std::optional<pbx::device_id> talking_at;   // operator device connected now
  std::vector<pbx::device_id> conferenced;    // further operator devices connected by a conference
  std::vector<pbx::device_id> operators;      // operator devices that answered, in order
  std::optional<pbx::call_id> consultation;   // the consultation call while one is open
  std::optional<call_disposition> routed_as;  // the router sent it to an overflow/closed destination
  // Not through a route point: a direct call to an operator, or one an operator placed.
  bool direct = false;
  bool found_in_snapshot = false;            // adopted from a snapshot: what came before is not known here
  std::optional<pbx::device_id> dialled_by;  // the operator device that placed it
  std::optional<pbx::device_id> consulted;   // the operator device the open consultation reached
  bool consulted_answered = false;           // ... and it answered (or the outside party it dialled did)
  pbx::device_id consulted_number;           // what the open consultation dialled, an operator or not
  bool delivered_elsewhere = false;          // the PBX sent it to a non-operator device by itself
  bool transferred = false;
  std::unordered_set<pbx::device_id> live;  // devices with a connection in the call now
  time_point offered_at{};
  std::optional<time_point> queued_at;
  std::optional<time_point> answered_at;
  std::optional<time_point> ended_at;
  std::optional<time_point> held_since;
  // The operator device holding the call: the one talking on it, or the one who placed it (she
  // holds it while her colleague talks on it). A consultation is made from there.
  std::optional<pbx::device_id> held_by;
  std::chrono::milliseconds held_total{0};
  std::optional<call_disposition> disposition;
};

// What one event changed, for the owner to act on.
struct call_update {
  enum class kind {
    offered,   // a new call at a route point
    ringing,   // `device` (an operator) is alerted
    answered,  // `device` (an operator) answered
    held,
    retrieved,
    consultation,      // `device` opened a consultation call (to `other`)
    transferred,       // `device` transferred the call to `other`
    conferenced,       // `device` conferenced `other` in
    operator_left,     // `device` (an operator) left the call: wrap-up starts for him
    ring_cancelled,    // `device` stopped ringing without answering (caller gone, deflected)
    direct,            // a call not through a route point reached (or was placed by) an operator
    dialling,          // `device` (an operator) placed the call: busy from now
    consult_ringing,   // `device` (an operator) is alerted by the consultation about this call
    consult_answered,  // `device` answered the consultation
    consult_left,      // the consultation ended without a transfer or conference; `device`: the
                       // consulted operator ("" when not an operator)
    consult_kept,      // the held caller left during the consultation (`call` as it was then): the
                       // PBX keeps the consultation call `other`, which goes on as a call `device`
                       // placed (`direct` and the rest follow); he is off this call, not off the phone
    found,             // a call this tracker did not know is at operator `device` (a snapshot
                       // after a restart): the owner finds or makes its record
    ended              // the call is over; the record is complete
  };
  kind what;
  tracked_call call;  // the call after the change
  pbx::device_id device;
  pbx::device_id other;
};

class call_tracker {
 public:
  // Devices of logged-in operators; anything else is a route point, trunk or outside party.
  void add_operator_device(const pbx::device_id& device);
  void remove_operator_device(const pbx::device_id& device);
  bool is_operator_device(const pbx::device_id& device) const;

  // Feeds one PBX event; returns what changed (often nothing, e.g. for route points' echoes).
  // A `resynced` snapshot after a reconnect counts as the events the link lost: calls the
  // device left meanwhile are left (and end with their last party), known calls found there
  // arrived or were answered there.
  std::vector<call_update> on_event(const pbx::event& e, time_point now);

  // The router put the call in a queue / sent it to a non-operator destination.
  void mark_queued(const pbx::call_id& call, time_point now);
  // The router sent it to a destination that is not an operator; `as` is overflowed or closed.
  void mark_routed_elsewhere(const pbx::call_id& call, call_disposition as);
  void set_record_id(const pbx::call_id& call, std::int64_t record_id);

  const tracked_call* find(const pbx::call_id& call) const;
  // The call that was offered (or placed) with this id, whatever its id is now.
  const tracked_call* find_by_first_id(const pbx::call_id& first) const;
  // The call an operator device is ringing, talking, dialling or consulted on; of two (a call
  // held at his phone and one that reached it since), the one that reached it last.
  const tracked_call* call_at(const pbx::device_id& device) const;
  std::size_t open_calls() const noexcept { return calls_.size(); }
  std::vector<tracked_call> snapshot() const;

  // Forgets a call without an `ended` update (after a reconciliation closed it elsewhere).
  void forget(const pbx::call_id& call);

 private:
  // The call, to change: it is indexed again (reindex) before the entry point returns.
  tracked_call* find_mutable(const pbx::call_id& call);
  // The operator devices call_at finds `c` at.
  static std::vector<pbx::device_id> devices_of(const tracked_call& c);
  // Brings the device index up to date for the calls changed since it last ran.
  void reindex();
  // Operator `device` is connected in `c`: the one talking, or one of a conference.
  static bool in_call(const tracked_call& c, const pbx::device_id& device);
  tracked_call& open(const pbx::call_id& call, time_point now);
  void rename(const pbx::call_id& from, const pbx::call_id& to);
  void end_call(tracked_call& c, time_point now, std::vector<call_update>& out);
  void stop_hold(tracked_call& c, time_point now);
  // A device's connection ended: operator bookkeeping, and the call ends with its last party.
  void leave(tracked_call& c, const pbx::device_id& device, time_point now, std::vector<call_update>& out);
  // Transfer (`mover` leaves) or conference (`mover` stays): the calls become one.
  void merge(const pbx::call_id& primary, const std::optional<pbx::call_id>& secondary, const pbx::party& mover,
             const pbx::party& target, const std::vector<pbx::connection_change>& connections, bool transfer,
             time_point now, std::vector<call_update>& out);
  // The other call of a transfer or conference, tracked as a call of its own rather than as a
  // consultation (its operator held a call he had placed to a colleague, a hold this tracker
  // does not follow): it ends, merged into the other; the mover leaves it on a transfer.
  void merge_away(tracked_call& other, const pbx::device_id& mover, bool transfer, time_point now,
                  std::vector<call_update>& out);
  // The main call a consultation call belongs to, or the call itself.
  tracked_call* main_call(const pbx::call_id& call);
  // A new call placed by `calling` while it holds another call is its consultation: linked,
  // reported, true. `reached` is the consulted device.
  bool link_consultation(const pbx::call_id& call, const pbx::device_id& calling, const pbx::device_id& reached,
                         std::vector<call_update>& out);
  // The consultation of `main` ended without a transfer or conference.
  void end_consultation(tracked_call& main, std::vector<call_update>& out);
  // The operator device that made the open consultation of `c` (none without one).
  static std::optional<pbx::device_id> consulting_from(const tracked_call& c);
  // `main` ends (or `consulting`, its operator, leaves it) while he consults: the PBX keeps the
  // consultation call, which is tracked from now on as a call of its own that he placed.
  void keep_consultation(tracked_call& main, const pbx::device_id& consulting, time_point now,
                         std::vector<call_update>& out);
  // A connection of a consultation call: the consulted operator's ringing and answer.
  void consultation_event(const pbx::call_id& consultation, const pbx::device_id& device, bool answered,
                          std::vector<call_update>& out);
  // A call first seen in a snapshot, at operator `device`.
  void adopt(const pbx::snapshot_entry& entry, const pbx::device_id& device, time_point now,
             std::vector<call_update>& out);
  // After a reconnect, one device's snapshot: replays what the gap swallowed as events.
  void resync(const pbx::resynced& snapshot, time_point now, std::vector<call_update>& out);

  std::unordered_map<pbx::call_id, tracked_call> calls_;
  std::unordered_map<pbx::call_id, pbx::call_id> consultation_of_;  // consultation call -> main call
  // The device index (call_at, link_consultation): device -> the calls found there, in the
  // order they reached it; call -> the devices it is indexed at. Exact after each entry point:
  // every call changed goes through find_mutable, open, rename or end_call, which note it in
  // changed_, and reindex() indexes the noted calls again.
  std::unordered_map<pbx::device_id, std::vector<pbx::call_id>> calls_at_;
  std::unordered_map<pbx::call_id, std::vector<pbx::device_id>> indexed_at_;
  std::vector<pbx::call_id> changed_;
  std::unordered_set<pbx::device_id> operator_devices_;
};

}  // namespace switchboard::calls
