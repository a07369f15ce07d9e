// Call tracker: event-by-event bookkeeping of every open call; two-party semantics (a call ends
// with its last-but-one connection or with CallCleared), consultation calls linked to the call
// they consult about, ids renamed on transfer and conference.
#include "switchboard/calls/call_tracker.hpp"

#include <algorithm>

namespace switchboard::calls {

namespace {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;  // clang 14 has no CTAD for aggregates

}  // namespace

std::string_view to_string(call_phase p) noexcept {
  switch (p) {
    case call_phase::offered:
      return "offered";
    case call_phase::waiting:
      return "waiting";
    case call_phase::ringing:
      return "ringing";
    case call_phase::talking:
      return "talking";
    case call_phase::held:
      return "held";
    case call_phase::consulting:
      return "consulting";
    case call_phase::ended:
      return "ended";
  }
  return "unknown";
}

std::string_view to_string(call_disposition d) noexcept {
  switch (d) {
    case call_disposition::answered:
      return "answered";
    case call_disposition::abandoned_waiting:
      return "abandoned_waiting";
    case call_disposition::abandoned_ringing:
      return "abandoned_ringing";
    case call_disposition::overflowed:
      return "overflowed";
    case call_disposition::transferred:
      return "transferred";
    case call_disposition::default_routed:
      return "default_routed";
    case call_disposition::closed:
      return "closed";
    case call_disposition::failed:
      return "failed";
  }
  return "unknown";
}

void call_tracker::add_operator_device(const pbx::device_id& device) { operator_devices_.insert(device); }
void call_tracker::remove_operator_device(const pbx::device_id& device) { operator_devices_.erase(device); }
bool call_tracker::is_operator_device(const pbx::device_id& device) const {
  return operator_devices_.count(device) > 0;
}

tracked_call* call_tracker::find_mutable(const pbx::call_id& call) {
  auto it = calls_.find(call);
  if (it == calls_.end()) return nullptr;
  changed_.push_back(call);
  return &it->second;
}

std::vector<pbx::device_id> call_tracker::devices_of(const tracked_call& c) {
  std::vector<pbx::device_id> out;
  const auto add = [&](const pbx::device_id& device) {
    if (std::find(out.begin(), out.end(), device) == out.end()) out.push_back(device);
  };
  if (c.ringing_at) add(*c.ringing_at);
  if (c.talking_at) add(*c.talking_at);
  for (const auto& device : c.conferenced) add(device);
  if (c.consulted) add(*c.consulted);
  if (c.dialled_by && c.live.count(*c.dialled_by)) add(*c.dialled_by);
  return out;
}

void call_tracker::reindex() {
  for (const auto& id : changed_) {
    const auto* c = find(id);
    auto now = c ? devices_of(*c) : std::vector<pbx::device_id>{};
    auto was = indexed_at_.find(id);
    if (was != indexed_at_.end()) {
      for (const auto& device : was->second) {
        if (std::find(now.begin(), now.end(), device) != now.end()) continue;
        auto at = calls_at_.find(device);
        std::erase(at->second, id);
        if (at->second.empty()) calls_at_.erase(at);
      }
    }
    for (const auto& device : now)
      if (was == indexed_at_.end() || std::find(was->second.begin(), was->second.end(), device) == was->second.end())
        calls_at_[device].push_back(id);
    if (now.empty()) {
      if (was != indexed_at_.end()) indexed_at_.erase(was);
    } else {
      indexed_at_[id] = std::move(now);
    }
  }
  changed_.clear();
}

const tracked_call* call_tracker::find(const pbx::call_id& call) const {
  auto it = calls_.find(call);
  return it == calls_.end() ? nullptr : &it->second;
}

tracked_call* call_tracker::main_call(const pbx::call_id& call) {
  if (auto it = consultation_of_.find(call); it != consultation_of_.end()) return find_mutable(it->second);
  return find_mutable(call);
}

const tracked_call* call_tracker::find_by_first_id(const pbx::call_id& first) const {
  if (const auto* c = find(first); c && c->first_pbx_id == first) return c;
  for (const auto& [id, c] : calls_)
    if (c.first_pbx_id == first) return &c;
  return nullptr;
}

const tracked_call* call_tracker::call_at(const pbx::device_id& device) const {
  auto at = calls_at_.find(device);
  return at == calls_at_.end() ? nullptr : find(at->second.back());
}

bool call_tracker::in_call(const tracked_call& c, const pbx::device_id& device) {
  return c.talking_at == device || std::find(c.conferenced.begin(), c.conferenced.end(), device) != c.conferenced.end();
}

bool call_tracker::link_consultation(const pbx::call_id& call, const pbx::device_id& calling,
                                     const pbx::device_id& reached, std::vector<call_update>& out) {
  reindex();  // (a call it holds is found at its phone)
  auto at = calls_at_.find(calling);
  if (at == calls_at_.end()) return false;
  for (auto id = at->second.rbegin(); id != at->second.rend(); ++id) {
    auto& main = calls_.at(*id);
    if (main.phase == call_phase::held && main.held_by == calling) {
      main.consultation = call;
      main.consulted_number = reached;
      main.phase = call_phase::consulting;
      consultation_of_[call] = *id;
      changed_.push_back(*id);
      out.push_back({call_update::kind::consultation, main, calling, reached});
      return true;
    }
  }
  return false;
}

void call_tracker::end_consultation(tracked_call& main, std::vector<call_update>& out) {
  if (main.consultation) consultation_of_.erase(*main.consultation);
  main.consultation.reset();
  if (main.phase == call_phase::consulting) main.phase = call_phase::held;
  const auto consulted = main.consulted.value_or("");
  main.consulted.reset();
  main.consulted_answered = false;
  main.consulted_number.clear();
  out.push_back({call_update::kind::consult_left, main, consulted, {}});
}

std::optional<pbx::device_id> call_tracker::consulting_from(const tracked_call& c) {
  if (!c.consultation) return std::nullopt;
  return c.held_by ? c.held_by : c.talking_at;
}

void call_tracker::keep_consultation(tracked_call& main, const pbx::device_id& consulting, time_point now,
                                     std::vector<call_update>& out) {
  const auto consultation = *main.consultation;
  out.push_back({call_update::kind::consult_kept, main, consulting, consultation});
  consultation_of_.erase(consultation);
  auto& kept = open(consultation, now);  // (`main` stays valid: the map's nodes do not move)
  kept.direct = true;
  kept.dialled_by = consulting;
  kept.caller = consulting;
  kept.dialled = main.consulted_number;
  kept.phase = call_phase::ringing;
  kept.live.insert(consulting);
  if (!main.consulted_number.empty()) kept.live.insert(main.consulted_number);
  out.push_back({call_update::kind::direct, kept, consulting, {}});
  out.push_back({call_update::kind::dialling, kept, consulting, {}});
  if (main.consulted && !main.consulted_answered) {
    kept.ringing_at = main.consulted;
    out.push_back({call_update::kind::ringing, kept, *main.consulted, {}});
  } else if (main.consulted_answered) {
    // The colleague talks on it; an outside party's answer has the operator talking on his own call.
    const auto talking = main.consulted.value_or(consulting);
    kept.talking_at = talking;
    kept.answered_at = now;
    kept.operators.push_back(talking);
    kept.phase = call_phase::talking;
    out.push_back({call_update::kind::answered, kept, talking, {}});
  }
  main.consultation.reset();
  main.consulted.reset();
  main.consulted_answered = false;
  main.consulted_number.clear();
  main.phase = call_phase::held;
}

void call_tracker::consultation_event(const pbx::call_id& consultation, const pbx::device_id& device, bool answered,
                                      std::vector<call_update>& out) {
  auto* main = main_call(consultation);
  if (!main || main->talking_at == device || main->held_by == device) return;
  if (!is_operator_device(device)) {
    if (answered && device == main->consulted_number) main->consulted_answered = true;  // an outside party
    return;
  }
  if (!answered && !main->consulted) {
    main->consulted = device;
    out.push_back({call_update::kind::consult_ringing, *main, device, {}});
  } else if (answered && main->consulted == device && !main->consulted_answered) {
    main->consulted_answered = true;  // (every monitor of the call reports the answer)
    out.push_back({call_update::kind::consult_answered, *main, device, {}});
  }
}

std::vector<tracked_call> call_tracker::snapshot() const {
  std::vector<tracked_call> out;
  out.reserve(calls_.size());
  for (const auto& [id, c] : calls_) out.push_back(c);
  return out;
}

tracked_call& call_tracker::open(const pbx::call_id& call, time_point now) {
  auto& c = calls_[call];
  changed_.push_back(call);
  c.pbx_id = call;
  c.first_pbx_id = call;
  c.offered_at = now;
  return c;
}

void call_tracker::rename(const pbx::call_id& from, const pbx::call_id& to) {
  if (from == to) return;
  auto node = calls_.extract(from);
  if (node.empty()) return;
  node.key() = to;
  node.mapped().pbx_id = to;
  calls_.insert(std::move(node));
  changed_.push_back(from);
  changed_.push_back(to);
}

void call_tracker::mark_queued(const pbx::call_id& call, time_point now) {
  if (auto* c = find_mutable(call)) {
    if (!c->queued_at) c->queued_at = now;
    if (c->phase == call_phase::offered) c->phase = call_phase::waiting;
  }
  reindex();
}

void call_tracker::mark_routed_elsewhere(const pbx::call_id& call, call_disposition as) {
  if (auto* c = find_mutable(call)) c->routed_as = as;
  reindex();
}

void call_tracker::set_record_id(const pbx::call_id& call, std::int64_t record_id) {
  if (auto* c = find_mutable(call)) c->record_id = record_id;
  reindex();
}

void call_tracker::forget(const pbx::call_id& call) {
  if (auto* c = find_mutable(call); c && c->consultation) consultation_of_.erase(*c->consultation);
  calls_.erase(call);
  reindex();
}

void call_tracker::stop_hold(tracked_call& c, time_point now) {
  if (!c.held_since) return;
  c.held_total += std::chrono::duration_cast<std::chrono::milliseconds>(now - *c.held_since);
  c.held_since.reset();
}

void call_tracker::merge(const pbx::call_id& primary, const std::optional<pbx::call_id>& secondary,
                         const pbx::party& mover, const pbx::party& target,
                         const std::vector<pbx::connection_change>& connections, bool transfer, time_point now,
                         std::vector<call_update>& out) {
  tracked_call* c = main_call(primary);
  if (!c && secondary) c = main_call(*secondary);
  if (!c) return;
  if (c->consultation) consultation_of_.erase(*c->consultation);
  c->consultation.reset();
  c->consulted.reset();  // the consulted party is in the call now
  c->consulted_answered = false;
  c->consulted_number.clear();
  consultation_of_.erase(primary);
  if (secondary) consultation_of_.erase(*secondary);
  if (auto* other = secondary ? find_mutable(*secondary) : nullptr; other && other != c)
    merge_away(*other, mover.number, transfer, now, out);

  std::optional<pbx::call_id> new_id;
  std::unordered_set<pbx::device_id> live;
  for (const auto& change : connections)
    if (change.new_connection) {
      new_id = change.new_connection->call;
      live.insert(change.new_connection->device);
    }
  stop_hold(*c, now);
  c->held_by.reset();
  const auto& mover_device = mover.number;
  const auto& target_device = target.number;
  if (transfer) {
    c->transferred = true;
    live.erase(mover_device);
    if (c->talking_at == mover_device) {
      c->talking_at.reset();
      out.push_back({call_update::kind::operator_left, *c, mover_device, {}});
    } else if (c->dialled_by == mover_device) {
      // He placed it and hands it on: the colleague he called stays in it, with the party he was given.
      out.push_back({call_update::kind::operator_left, *c, mover_device, {}});
    }
  }
  if (is_operator_device(target_device) && !in_call(*c, target_device)) {
    if (c->talking_at)
      c->conferenced.push_back(target_device);  // beside the operator still in the call
    else
      c->talking_at = target_device;
  }
  if (is_operator_device(target_device) &&
      std::find(c->operators.begin(), c->operators.end(), target_device) == c->operators.end())
    c->operators.push_back(target_device);
  if (live.empty()) {
    if (transfer) c->live.erase(mover_device);
    c->live.insert(target_device);
  } else {
    c->live = std::move(live);
  }
  c->phase = call_phase::talking;
  const auto old_id = c->pbx_id;
  if (new_id && *new_id != old_id) {
    rename(old_id, *new_id);
    c = find_mutable(*new_id);
  }
  out.push_back(
      {transfer ? call_update::kind::transferred : call_update::kind::conferenced, *c, mover_device, target_device});
}

void call_tracker::merge_away(tracked_call& other, const pbx::device_id& mover, bool transfer, time_point now,
                              std::vector<call_update>& out) {
  if (transfer && (other.talking_at == mover || (other.dialled_by == mover && other.live.count(mover))))
    out.push_back({call_update::kind::operator_left, other, mover, {}});
  // Whoever else it reached is in the merged call from now: he does not leave with this one.
  other.ringing_at.reset();
  other.talking_at.reset();
  other.conferenced.clear();
  other.live.clear();
  other.transferred = transfer;
  end_call(other, now, out);
}

void call_tracker::end_call(tracked_call& c, time_point now, std::vector<call_update>& out) {
  stop_hold(c, now);
  if (c.ringing_at) out.push_back({call_update::kind::ring_cancelled, c, *c.ringing_at, {}});
  // The party held for a consultation left: the PBX keeps the consultation, and the operator who
  // made it is on that call, not off the phone.
  const auto consulting = consulting_from(c);
  if (consulting) keep_consultation(c, *consulting, now, out);
  if (c.talking_at && c.talking_at != consulting)
    out.push_back({call_update::kind::operator_left, c, *c.talking_at, {}});
  for (const auto& device : c.conferenced) out.push_back({call_update::kind::operator_left, c, device, {}});
  c.conferenced.clear();
  if (c.dialled_by && c.talking_at != c.dialled_by && c.dialled_by != consulting && c.live.count(*c.dialled_by))
    out.push_back({call_update::kind::operator_left, c, *c.dialled_by, {}});
  const auto consulted = c.consulted;
  if (c.answered_at)
    c.disposition = c.transferred ? call_disposition::transferred : call_disposition::answered;
  else if (c.ringing_at || c.direct)
    c.disposition = call_disposition::abandoned_ringing;
  else if (c.routed_as)
    c.disposition = c.routed_as;
  else if (c.delivered_elsewhere)
    c.disposition = call_disposition::default_routed;
  else
    c.disposition = call_disposition::abandoned_waiting;
  c.ended_at = now;
  c.phase = call_phase::ended;
  if (consulted) out.push_back({call_update::kind::consult_left, c, *consulted, {}});
  c.ringing_at.reset();
  c.talking_at.reset();
  c.consulted.reset();
  c.consulted_answered = false;
  if (c.consultation) consultation_of_.erase(*c.consultation);
  c.consultation.reset();
  c.held_by.reset();
  c.live.clear();
  auto id = c.pbx_id;
  out.push_back({call_update::kind::ended, std::move(c), {}, {}});
  calls_.erase(id);
  changed_.push_back(id);
}

void call_tracker::leave(tracked_call& c, const pbx::device_id& device, time_point now, std::vector<call_update>& out) {
  c.live.erase(device);
  // He dropped the party he held for a consultation: he is still on that one.
  const bool consulting = consulting_from(c) == device;
  if (consulting || c.held_by == device) {
    stop_hold(c, now);
    if (consulting) keep_consultation(c, device, now, out);
    c.held_by.reset();
  }
  if (c.ringing_at == device) {
    c.ringing_at.reset();
    out.push_back({call_update::kind::ring_cancelled, c, device, {}});
  } else if (c.talking_at == device) {
    stop_hold(c, now);
    c.talking_at.reset();
    if (!c.conferenced.empty()) {  // the conference goes on with the next operator
      c.talking_at = c.conferenced.front();
      c.conferenced.erase(c.conferenced.begin());
    }
    if (!consulting) out.push_back({call_update::kind::operator_left, c, device, {}});
  } else if (auto it = std::find(c.conferenced.begin(), c.conferenced.end(), device); it != c.conferenced.end()) {
    c.conferenced.erase(it);
    out.push_back({call_update::kind::operator_left, c, device, {}});
  } else if (c.dialled_by == device && !consulting) {
    out.push_back({call_update::kind::operator_left, c, device, {}});  // the operator who placed it hung up
  }
  if (c.live.size() <= 1) end_call(c, now, out);
}

void call_tracker::adopt(const pbx::snapshot_entry& entry, const pbx::device_id& device, time_point now,
                         std::vector<call_update>& out) {
  auto& c = open(entry.connection.call, now);
  c.found_in_snapshot = true;
  c.live.insert(device);
  if (entry.state == pbx::connection_state::alerting || entry.state == pbx::connection_state::initiated) {
    c.ringing_at = device;
    c.phase = call_phase::ringing;
  } else {
    c.talking_at = device;
    c.answered_at = now;
    c.operators.push_back(device);
    c.phase = entry.state == pbx::connection_state::hold ? call_phase::held : call_phase::talking;
    if (entry.state == pbx::connection_state::hold) {
      c.held_since = now;
      c.held_by = device;
    }
  }
  out.push_back({call_update::kind::found, c, device, {}});
}

void call_tracker::resync(const pbx::resynced& snapshot, time_point now, std::vector<call_update>& out) {
  const auto& device = snapshot.device;
  std::vector<pbx::event> missed;
  std::unordered_set<pbx::call_id> there;
  for (const auto& entry : snapshot.calls) {
    there.insert(entry.connection.call);
    const auto* c = find(entry.connection.call);
    if (!c) {
      // A call at an operator's phone this tracker never saw (it began in the gap, or before a
      // restart): kept from now on, so the operator is not taken for free.
      if (is_operator_device(device) && entry.state != pbx::connection_state::null &&
          entry.state != pbx::connection_state::fail && !consultation_of_.count(entry.connection.call))
        adopt(entry, device, now, out);
      continue;
    }
    if (!c->live.count(device))
      missed.push_back(pbx::call_delivered{.connection = entry.connection,
                                           .alerting = pbx::party::known(device),
                                           .calling = pbx::party::known(c->caller),
                                           .called = pbx::party::known(c->dialled)});
    const bool connected =
        entry.state == pbx::connection_state::connected || entry.state == pbx::connection_state::hold;
    if (connected && c->talking_at != device)
      missed.push_back(pbx::call_established{.connection = entry.connection, .answering = pbx::party::known(device)});
  }
  for (const auto& [id, c] : calls_)
    if (c.live.count(device) && !there.count(id))
      missed.push_back(pbx::connection_cleared{
          .connection = {id, device}, .releasing = pbx::party::known(device), .cause = "resync"});
  for (const auto& event : missed) {
    auto updates = on_event(event, now);
    out.insert(out.end(), std::make_move_iterator(updates.begin()), std::make_move_iterator(updates.end()));
  }
}

std::vector<call_update> call_tracker::on_event(const pbx::event& e, time_point now) {
  std::vector<call_update> out;
  std::visit(overloaded{
                 [&](const pbx::call_offered& ev) {
                   if (find(ev.call.call)) return;  // a second route request for the same call (re-route)
                   auto& c = open(ev.call.call, now);
                   c.route_point = ev.route_point;
                   c.caller = ev.caller.number;
                   c.dialled = ev.dialled.number;
                   c.correlator = ev.correlator;
                   c.live.insert(ev.call.device);
                   if (ev.caller.is_known() && !ev.caller.number.empty()) c.live.insert(ev.caller.number);
                   out.push_back({call_update::kind::offered, c, ev.route_point, {}});
                 },
                 [&](const pbx::call_queued& ev) {
                   mark_queued(ev.connection.call, now);
                   if (auto* c = find_mutable(ev.connection.call)) c->live.insert(ev.connection.device);
                 },
                 [&](const pbx::call_delivered& ev) {
                   const auto& device = ev.connection.device;
                   if (consultation_of_.count(ev.connection.call))
                     return consultation_event(ev.connection.call, device, false, out);
                   auto* c = find_mutable(ev.connection.call);
                   if (!c) {
                     // A new call from an operator who holds another call: his consultation call.
                     if (link_consultation(ev.connection.call, ev.calling.number, device, out))
                       return consultation_event(ev.connection.call, device, false, out);
                     // A direct call to or from an operator (not through a route point).
                     if (!is_operator_device(device) && !is_operator_device(ev.calling.number)) return;
                     c = &open(ev.connection.call, now);
                     c->direct = true;
                     c->caller = ev.calling.number;
                     c->dialled = ev.called.number.empty() ? device : ev.called.number;
                     c->correlator = ev.correlator;
                     if (!ev.calling.number.empty()) c->live.insert(ev.calling.number);
                     out.push_back(
                         {call_update::kind::direct, *c, is_operator_device(device) ? device : ev.calling.number, {}});
                     if (is_operator_device(ev.calling.number)) {  // placed by an operator (no Originated seen)
                       c->dialled_by = ev.calling.number;
                       out.push_back({call_update::kind::dialling, *c, ev.calling.number, {}});
                     }
                   }
                   c->live.insert(device);
                   if (device == c->dialled_by) return;  // the ringback at the operator who placed it
                   if (is_operator_device(device)) {
                     if (c->ringing_at == device || in_call(*c, device)) return;
                     c->ringing_at = device;
                     c->phase = call_phase::ringing;
                     out.push_back({call_update::kind::ringing, *c, device, {}});
                   } else if (device != c->route_point && device != c->caller) {
                     c->delivered_elsewhere = true;
                   }
                 },
                 [&](const pbx::call_established& ev) {
                   const auto& device = ev.connection.device;
                   if (consultation_of_.count(ev.connection.call))
                     return consultation_event(ev.connection.call, device, true, out);
                   auto* c = find_mutable(ev.connection.call);
                   if (!c) return;
                   c->live.insert(device);
                   if (device == c->dialled_by) return;
                   if (c->dialled_by && !is_operator_device(device) && !c->answered_at) {
                     // The far end answered an operator's outgoing call: he talks on it now.
                     c->answered_at = now;
                     c->talking_at = *c->dialled_by;
                     c->operators.push_back(*c->dialled_by);
                     c->phase = call_phase::talking;
                     out.push_back({call_update::kind::answered, *c, *c->dialled_by, {}});
                     return;
                   }
                   if (!is_operator_device(device)) {
                     if (device != c->route_point && device != c->caller) c->delivered_elsewhere = true;
                     return;
                   }
                   if (in_call(*c, device)) return;
                   if (c->ringing_at == device) c->ringing_at.reset();
                   c->talking_at = device;
                   if (!c->answered_at) c->answered_at = now;
                   if (std::find(c->operators.begin(), c->operators.end(), device) == c->operators.end())
                     c->operators.push_back(device);
                   c->phase = call_phase::talking;
                   out.push_back({call_update::kind::answered, *c, device, {}});
                 },
                 [&](const pbx::call_held& ev) {
                   auto* c = find_mutable(ev.connection.call);
                   const auto& device = ev.connection.device;
                   // The operator talking on it, or the one who placed it while a colleague talks on it.
                   if (!c || (c->talking_at != device && !(c->dialled_by == device && c->live.count(device)))) return;
                   if (c->held_by == device) return;  // (every monitor of the call reports the hold)
                   if (!c->held_since) c->held_since = now;
                   c->held_by = device;
                   c->phase = call_phase::held;
                   out.push_back({call_update::kind::held, *c, ev.connection.device, {}});
                 },
                 [&](const pbx::call_retrieved& ev) {
                   auto* c = find_mutable(ev.connection.call);
                   if (!c || c->held_by != ev.connection.device) return;
                   stop_hold(*c, now);
                   c->held_by.reset();
                   c->phase = call_phase::talking;
                   out.push_back({call_update::kind::retrieved, *c, ev.connection.device, {}});
                 },
                 [&](const pbx::call_diverted& ev) {
                   auto* c = find_mutable(ev.connection.call);
                   if (!c) return;
                   c->live.erase(ev.connection.device);
                   if (c->ringing_at == ev.connection.device) {
                     c->ringing_at.reset();
                     c->phase = c->answered_at ? call_phase::talking : call_phase::waiting;
                     out.push_back({call_update::kind::ring_cancelled, *c, ev.connection.device, {}});
                   }
                 },
                 [&](const pbx::call_failed& ev) {
                   auto* c = find_mutable(ev.connection.call);
                   if (!c || c->ringing_at != ev.connection.device) return;
                   c->ringing_at.reset();
                   out.push_back({call_update::kind::ring_cancelled, *c, ev.connection.device, {}});
                 },
                 [&](const pbx::call_transferred& ev) {
                   merge(ev.primary_old_call, ev.secondary_old_call, ev.transferring, ev.transferred_to, ev.connections,
                         true, now, out);
                 },
                 [&](const pbx::call_conferenced& ev) {
                   merge(ev.primary_old_call, ev.secondary_old_call, ev.conferencing, ev.added_party, ev.connections,
                         false, now, out);
                 },
                 [&](const pbx::connection_cleared& ev) {
                   if (auto it = consultation_of_.find(ev.connection.call); it != consultation_of_.end()) {
                     // The consultation ended without a transfer: back to the held main call.
                     if (auto* main = find_mutable(it->second))
                       end_consultation(*main, out);
                     else
                       consultation_of_.erase(it);
                     return;
                   }
                   if (auto* c = find_mutable(ev.connection.call)) leave(*c, ev.connection.device, now, out);
                 },
                 [&](const pbx::call_cleared& ev) {
                   if (auto it = consultation_of_.find(ev.call); it != consultation_of_.end()) {
                     if (auto* main = find_mutable(it->second))
                       end_consultation(*main, out);
                     else
                       consultation_of_.erase(it);
                     return;
                   }
                   if (auto* c = find_mutable(ev.call)) end_call(*c, now, out);
                 },
                 [&](const pbx::call_originated& ev) {
                   const auto& device = ev.connection.device;
                   if (find(ev.connection.call) || consultation_of_.count(ev.connection.call)) return;
                   if (!is_operator_device(device)) return;
                   if (link_consultation(ev.connection.call, device, ev.called.number, out)) return;
                   auto& c = open(ev.connection.call, now);
                   c.direct = true;
                   c.dialled_by = device;
                   c.caller = device;
                   c.dialled = ev.called.number;
                   c.phase = call_phase::ringing;
                   c.live.insert(device);
                   out.push_back({call_update::kind::direct, c, device, {}});
                   out.push_back({call_update::kind::dialling, c, device, {}});
                 },
                 [&](const pbx::resynced& ev) { resync(ev, now, out); },
                 [&](const auto&) {},
             },
             e);
  reindex();
  return out;
}

}  // namespace switchboard::calls
