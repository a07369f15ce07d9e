// The simulated PBX's call model: what a switch does with calls and which CSTA events and
// routing messages it reports, as a pure function of requests and the time passed in.
#include "switchboard/pbxsim/model.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace switchboard::pbxsim {
namespace {

using lcs = csta::local_connection_state;

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc{} || p != end || text.empty()) return std::nullopt;
  return v;
}

csta::device_ref dev(std::string_view number) { return csta::device_ref::known(std::string(number)); }

std::optional<std::string> opt(std::string_view s) {
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

void erase_value(std::vector<std::uint64_t>& v, std::uint64_t x) {
  const auto it = std::find(v.begin(), v.end(), x);
  if (it != v.end()) v.erase(it);
}

// A connection that keeps a phone from taking another call (a held call does not).
bool occupies(lcs s) { return s == lcs::alerting || s == lcs::connected || s == lcs::initiated || s == lcs::fail; }

}  // namespace

csta::message csta_error(std::string_view choice, std::string_view value) {
  return csta::csta_error_code{csta::choice_value{std::string(choice), std::string(value)}};
}

call_fate* call_model::fate_of(const call& c) {
  if (!config_.keep_call_log) return nullptr;
  auto it = call_log_.find(c.id);
  return it == call_log_.end() ? nullptr : &it->second;
}

std::vector<call_fate> call_model::call_log() const {
  std::vector<call_fate> out;
  out.reserve(call_log_.size());
  for (const auto& [id, fate] : call_log_) out.push_back(fate);
  return out;
}

call_model::call_model(model_config config) : config_(std::move(config)) {
  auto add = [&](const std::string& id, device_kind kind) {
    if (id.empty()) throw std::invalid_argument("pbxsim: empty device id");
    if (device_index_.contains(id)) throw std::invalid_argument("pbxsim: device " + id + " configured twice");
    device_index_.emplace(id, static_cast<std::uint32_t>(devices_.size()));
    devices_.push_back(device{.id = id, .kind = kind});
  };
  for (const auto& id : config_.operators) add(id, device_kind::operator_phone);
  for (const auto& id : config_.route_points) add(id, device_kind::route_point);
  const auto d = find_device(config_.default_device);
  if (!d || devices_[*d].kind != device_kind::operator_phone) {
    throw std::invalid_argument("pbxsim: the default device '" + config_.default_device +
                                "' must be one of the operator extensions");
  }
  default_device_ = *d;
}

// ---- lookups ------------------------------------------------------------------------------------

std::optional<std::uint32_t> call_model::find_device(std::string_view id) const {
  const auto it = device_index_.find(std::string(id));
  if (it == device_index_.end()) return std::nullopt;
  return it->second;
}

bool call_model::has_device(std::string_view id) const { return find_device(id).has_value(); }

call_model::call* call_model::find_call(std::uint64_t id) {
  const auto it = calls_.find(id);
  return it == calls_.end() ? nullptr : &it->second;
}

call_model::call* call_model::find_call(std::string_view id) {
  const auto n = parse_number(id);
  return n ? find_call(*n) : nullptr;
}

const call_model::call* call_model::find_call(std::string_view id) const {
  return const_cast<call_model*>(this)->find_call(id);
}

call_model::connection* call_model::find_connection(call& c, std::uint32_t device) {
  for (auto& p : c.parties) {
    if (p.device == device) return &p;
  }
  return nullptr;
}

call_model::connection* call_model::find_connection(call& c, std::string_view number) {
  for (auto& p : c.parties) {
    if (p.number == number) return &p;
  }
  return nullptr;
}

bool call_model::is_busy(std::uint32_t device) const {
  for (const auto id : devices_[device].calls) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) continue;
    for (const auto& p : it->second.parties) {
      if (p.device == device && occupies(p.state)) return true;
    }
  }
  return false;
}

bool call_model::is_busy(std::string_view device) const {
  const auto d = find_device(device);
  return d && is_busy(*d);
}

csta::connection_ref call_model::ref(const call& c, const connection& p) const { return ref(c, p.number); }

csta::connection_ref call_model::ref(const call& c, std::string_view number) const {
  return csta::connection_ref{call_text(c.id), std::string(number)};
}

std::optional<agent_state> call_model::agent_state_of(std::string_view device) const {
  const auto d = find_device(device);
  if (!d || devices_[*d].kind != device_kind::operator_phone) return std::nullopt;
  return devices_[*d].agent;
}

std::optional<csta::local_connection_state> call_model::state_of(std::string_view call_id,
                                                                 std::string_view device) const {
  const auto* c = find_call(call_id);
  if (!c) return std::nullopt;
  for (const auto& p : c->parties) {
    if (p.number == device) return p.state;
  }
  return std::nullopt;
}

std::vector<std::uint64_t> call_model::call_ids_at(std::uint32_t device) const {
  std::vector<std::uint64_t> out(devices_[device].calls.begin(), devices_[device].calls.end());
  for (const auto id : devices_[device].waiting) {
    const auto it = calls_.find(id);
    if (it == calls_.end()) continue;  // gave up while waiting
    for (const auto& p : it->second.parties) {
      if (p.device == device && p.state == lcs::queued) out.push_back(id);
    }
  }
  return out;
}

std::vector<std::string> call_model::calls_at(std::string_view device) const {
  std::vector<std::string> out;
  if (const auto d = find_device(device)) {
    for (const auto id : call_ids_at(*d)) out.push_back(call_text(id));
  }
  return out;
}

std::vector<output> call_model::take_outputs() { return std::exchange(outputs_, {}); }

void call_model::add_monitor(std::string_view device) {
  if (const auto d = find_device(device)) ++devices_[*d].monitors;
}

void call_model::remove_monitor(std::string_view device) {
  if (const auto d = find_device(device); d && devices_[*d].monitors > 0) --devices_[*d].monitors;
}

// ---- mechanics ----------------------------------------------------------------------------------

call_model::call& call_model::new_call() {
  const auto id = next_call_++;
  auto& c = calls_[id];
  c.id = id;
  c.parties.reserve(3);
  ++stats_.active_calls;
  return c;
}

void call_model::add_party(call& c, std::uint32_t device, std::string number, lcs state) {
  c.parties.push_back(connection{device, std::move(number), state});
  // A queued call waits in the device's queue, not among its calls: a long queue must not slow
  // down is_busy() and remove_party().
  if (device != external && state != lcs::queued) devices_[device].calls.push_back(c.id);
}

void call_model::remove_party(call& c, std::string_view number) {
  const auto it = std::find_if(c.parties.begin(), c.parties.end(), [&](const auto& p) { return p.number == number; });
  if (it == c.parties.end()) return;
  if (it->device != external) erase_value(devices_[it->device].calls, c.id);
  c.parties.erase(it);
}

void call_model::arm(call& c, timer_kind k, sim_time due) {
  const auto i = static_cast<std::size_t>(k);
  c.due[i] = due;
  timers_.push(timer_entry{due, next_seq_++, c.id, k, ++c.token[i]});
}

void call_model::disarm(call& c, timer_kind k) {
  const auto i = static_cast<std::size_t>(k);
  c.due[i].reset();
  ++c.token[i];
}

std::optional<sim_time> call_model::next_due() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.top().due;
}

void call_model::advance(sim_time now) {
  while (!timers_.empty() && timers_.top().due <= now) {
    const auto e = timers_.top();
    timers_.pop();
    auto* c = find_call(e.call);
    const auto i = static_cast<std::size_t>(e.kind);
    if (!c || c->token[i] != e.token || !c->due[i]) continue;  // cancelled or re-armed since
    c->due[i].reset();
    fire(*c, e.kind, e.due);
  }
}

bool call_model::monitored(const call& c, std::uint32_t extra) const {
  if (extra != external && devices_[extra].monitors > 0) return true;
  return std::any_of(c.parties.begin(), c.parties.end(),
                     [&](const auto& p) { return p.device != external && devices_[p.device].monitors > 0; });
}

template <class Make>
void call_model::emit(const call& c, std::uint32_t extra, Make&& make) {
  if (!monitored(c, extra)) return;
  const csta::message m = make();
  bool extra_seen = extra == external;
  for (const auto& p : c.parties) {
    if (p.device == external) continue;
    extra_seen = extra_seen || p.device == extra;
    if (devices_[p.device].monitors > 0)
      outputs_.push_back(output{output::kind::device_event, devices_[p.device].id, m});
  }
  if (!extra_seen && devices_[extra].monitors > 0) {
    outputs_.push_back(output{output::kind::device_event, devices_[extra].id, m});
  }
}

void call_model::send_routing(std::uint32_t registration, csta::message m) {
  outputs_.push_back(output{output::kind::routing, std::to_string(registration), std::move(m)});
}

// ---- timers -------------------------------------------------------------------------------------

void call_model::fire(call& c, timer_kind k, sim_time now) {
  switch (k) {
    case timer_kind::answer:
      if (auto* p = find_connection(c, c.answer_device); p && p->state == lcs::alerting)
        answer(c, c.answer_device, now);
      return;
    case timer_kind::route_timeout:
      ++stats_.route_timeouts;
      close_dialog(c, csta::choice_value{"operation", "routeingTimerExpired"});
      route_to_default(c, now);
      return;
    case timer_kind::patience:
      if (c.answered) return;
      ++stats_.abandoned;
      close_dialog(c, csta::choice_value{"unspecified", {}});
      release(c, c.calling, "normalClearing", now);
      return;
    case timer_kind::hang_up:
      release(c, c.external_number, "normalClearing", now);
      return;
    case timer_kind::external_answer: {
      auto* p = find_connection(c, std::string_view(c.external_number));
      if (!p || p->state != lcs::alerting) return;
      p->state = lcs::connected;
      emit(c, external, [&] {
        return csta::established_event{.established_connection = ref(c, c.external_number),
                                       .answering_device = dev(c.external_number),
                                       .calling_device = dev(c.calling),
                                       .called_device = dev(c.called),
                                       .local_connection_info = lcs::connected,
                                       .correlator_data = opt(c.correlator),
                                       .cause = "newCall"};
      });
      arm(c, timer_kind::hang_up, now + config_.external_talk_time);
      return;
    }
    case timer_kind::count:
      return;
  }
}

// ---- call behaviour -----------------------------------------------------------------------------

std::optional<std::string> call_model::offer_call(const inbound_call& in, sim_time now) {
  ++stats_.offered;
  const auto target = find_device(in.dialled);
  if (!target) return std::nullopt;
  auto& c = new_call();
  c.inbound = true;
  if (config_.keep_call_log) call_log_[c.id].call = call_text(c.id);
  c.calling = in.caller;
  c.called = in.dialled;
  c.correlator = in.correlator;
  c.talk_time = in.talk_time;
  c.external_number = in.caller;  // the outside party ends the talk
  add_party(c, external, in.caller, lcs::connected);
  auto id = call_text(c.id);
  if (in.patience) arm(c, timer_kind::patience, now + *in.patience);
  arrive(c, in.dialled, "newCall", now);
  return id;
}

void call_model::arrive(call& c, std::string_view target, std::string_view cause, sim_time now) {
  const auto d = find_device(target);
  if (!d) {
    // An outside number: the network rings it (ringback at the caller) and it answers later.
    c.external_number = std::string(target);
    add_party(c, external, std::string(target), lcs::alerting);
    emit(c, external, [&] {
      return csta::delivered_event{.connection = ref(c, target),
                                   .alerting_device = dev(target),
                                   .calling_device = dev(c.calling),
                                   .called_device = dev(c.called),
                                   .local_connection_info = lcs::alerting,
                                   .correlator_data = opt(c.correlator),
                                   .cause = std::string(cause)};
    });
    arm(c, timer_kind::external_answer, now + config_.external_answer_delay);
    return;
  }
  if (devices_[*d].kind == device_kind::route_point) {
    start_routing(c, *d, now);
    return;
  }
  if (is_busy(*d)) {
    emit(c, *d, [&] {
      return csta::failed_event{.failed_connection = ref(c, target),
                                .failing_device = dev(target),
                                .calling_device = dev(c.calling),
                                .called_device = dev(c.called),
                                .local_connection_info = lcs::fail,
                                .correlator_data = opt(c.correlator),
                                .cause = "busy"};
    });
    if (c.inbound) {
      clear_call(c, "busy", now);  // the outside caller hears busy tone and hangs up
    } else if (auto* origin = find_connection(c, std::string_view(c.calling))) {
      origin->state = lcs::fail;  // the operator hears busy tone until he hangs up
    }
    return;
  }
  ring(c, *d, cause, now);
}

void call_model::ring(call& c, std::uint32_t device, std::string_view cause, sim_time now) {
  add_party(c, device, devices_[device].id, lcs::alerting);
  emit(c, external, [&] {
    return csta::delivered_event{.connection = ref(c, devices_[device].id),
                                 .alerting_device = dev(devices_[device].id),
                                 .calling_device = dev(c.calling),
                                 .called_device = dev(c.called),
                                 .local_connection_info = lcs::alerting,
                                 .correlator_data = opt(c.correlator),
                                 .cause = std::string(cause)};
  });
  if (config_.auto_answer_delay && devices_[device].kind == device_kind::operator_phone) {
    c.answer_device = device;
    arm(c, timer_kind::answer, now + *config_.auto_answer_delay);
  }
}

void call_model::answer(call& c, std::uint32_t device, sim_time now) {
  auto* p = find_connection(c, device);
  p->state = lcs::connected;
  if (c.answer_device == device) disarm(c, timer_kind::answer);
  emit(c, external, [&] {
    return csta::established_event{.established_connection = ref(c, *p),
                                   .answering_device = dev(p->number),
                                   .calling_device = dev(c.calling),
                                   .called_device = dev(c.called),
                                   .local_connection_info = lcs::connected,
                                   .correlator_data = opt(c.correlator),
                                   .cause = "newCall"};
  });
  if (c.inbound && !c.answered) {
    c.answered = true;
    ++stats_.answered;
    if (auto* f = fate_of(c)) f->answered = true;
    disarm(c, timer_kind::patience);
    arm(c, timer_kind::hang_up, now + c.talk_time);
  }
}

std::optional<call_model::registration> call_model::registration_for(std::uint32_t route_point) const {
  std::optional<registration> any;
  for (const auto& r : registrations_) {
    if (r.device == route_point) return r;
    if (!r.device && !any) any = r;
  }
  return any;
}

void call_model::start_routing(call& c, std::uint32_t rp, sim_time now) {
  add_party(c, rp, devices_[rp].id, lcs::alerting);
  c.route_point = rp;
  emit(c, external, [&] {
    return csta::delivered_event{.connection = ref(c, devices_[rp].id),
                                 .alerting_device = dev(devices_[rp].id),
                                 .calling_device = dev(c.calling),
                                 .called_device = dev(c.called),
                                 .local_connection_info = lcs::alerting,
                                 .correlator_data = opt(c.correlator),
                                 .cause = "newCall"};
  });
  const auto reg = registration_for(rp);
  if (!reg) {
    route_to_default(c, now);  // no routing application: the PBX's own treatment
    return;
  }
  c.route_xref = next_xref_++;
  c.route_registration = reg->id;
  dialogs_.emplace(c.route_xref, c.id);
  ++stats_.route_requests;
  if (auto* f = fate_of(c)) f->route_requested = true;
  send_routing(reg->id, csta::route_request{.cross_ref_identifier = std::to_string(c.route_xref),
                                            .route_register_req_id = std::to_string(reg->id),
                                            .current_route = dev(devices_[rp].id),
                                            .calling_device = dev(c.calling),
                                            .routeing_device = dev(devices_[rp].id),
                                            .routed_call = ref(c, devices_[rp].id),
                                            .route_sel_algorithm = "normal",
                                            .priority = false,
                                            .reply_timeout = config_.route_timeout.count(),
                                            .correlator_data = opt(c.correlator)});
  arm(c, timer_kind::route_timeout, now + config_.route_timeout);
}

void call_model::close_dialog(call& c, std::optional<csta::choice_value> end_reason) {
  if (c.route_xref == 0) return;
  disarm(c, timer_kind::route_timeout);
  dialogs_.erase(c.route_xref);
  if (end_reason) {
    send_routing(c.route_registration, csta::route_end{.cross_ref_identifier = std::to_string(c.route_xref),
                                                       .route_register_req_id = std::to_string(c.route_registration),
                                                       .error_value = std::move(*end_reason)});
  }
  c.route_xref = 0;
  c.route_registration = 0;
}

void call_model::divert(call& c, std::uint32_t from, std::string_view to, std::string_view cause, sim_time now) {
  const auto to_device = find_device(to).value_or(external);
  emit(c, to_device, [&] {
    return csta::diverted_event{.connection = ref(c, devices_[from].id),
                                .diverting_device = dev(devices_[from].id),
                                .new_destination = dev(to),
                                .calling_device = dev(c.calling),
                                .called_device = dev(c.called),
                                .local_connection_info = lcs::null,
                                .correlator_data = opt(c.correlator),
                                .cause = std::string(cause)};
  });
  if (c.answer_device == from) disarm(c, timer_kind::answer);
  remove_party(c, devices_[from].id);
  if (from == c.route_point) c.route_point = external;
  arrive(c, to, cause, now);
  if (devices_[from].kind == device_kind::operator_phone) device_freed(from, now);
}

void call_model::route_to_default(call& c, sim_time now) {
  ++stats_.default_routed;
  if (auto* f = fate_of(c)) f->default_routed = true;
  const auto target = default_device_;
  const auto& target_id = devices_[target].id;
  if (!is_busy(target)) {
    if (c.route_point != external) {
      divert(c, c.route_point, target_id, "redirected", now);
    } else {
      ring(c, target, "redirected", now);
    }
    return;
  }
  // The default device is busy: the call waits in its queue until the phone is free.
  if (c.route_point != external) {
    const auto rp = c.route_point;
    emit(c, target, [&] {
      return csta::diverted_event{.connection = ref(c, devices_[rp].id),
                                  .diverting_device = dev(devices_[rp].id),
                                  .new_destination = dev(target_id),
                                  .calling_device = dev(c.calling),
                                  .called_device = dev(c.called),
                                  .local_connection_info = lcs::null,
                                  .correlator_data = opt(c.correlator),
                                  .cause = "redirected"};
    });
    remove_party(c, devices_[rp].id);
    c.route_point = external;
  }
  add_party(c, target, target_id, lcs::queued);
  auto& waiting = devices_[target].waiting;
  waiting.push_back(c.id);
  emit(c, external, [&] {
    return csta::queued_event{.queued_connection = ref(c, target_id),
                              .queue = dev(target_id),
                              .calling_device = dev(c.calling),
                              .called_device = dev(c.called),
                              .number_queued = static_cast<std::int64_t>(waiting.size()),
                              .local_connection_info = lcs::queued,
                              .correlator_data = opt(c.correlator),
                              .cause = "noAvailableAgents"};
  });
}

void call_model::device_freed(std::uint32_t device, sim_time now) {
  auto& d = devices_[device];
  while (!d.waiting.empty() && !is_busy(device)) {
    const auto id = d.waiting.front();
    d.waiting.pop_front();
    auto* c = find_call(id);
    if (!c) continue;  // the caller gave up meanwhile
    auto* p = find_connection(*c, device);
    if (!p || p->state != lcs::queued) continue;
    remove_party(*c, d.id);
    ring(*c, device, "redirected", now);
    return;
  }
}

void call_model::release(call& c, std::string_view number, std::string_view cause, sim_time now) {
  auto* p = find_connection(c, number);
  if (!p) return;
  if (c.route_xref != 0 && (number == c.calling || p->device == c.route_point)) {
    close_dialog(c, csta::choice_value{"unspecified", {}});  // the call left the route point
  }
  const auto device = p->device;
  const std::string released = p->number;
  emit(c, external, [&] {
    return csta::connection_cleared_event{.dropped_connection = ref(c, released),
                                          .releasing_device = dev(released),
                                          .local_connection_info = lcs::null,
                                          .correlator_data = opt(c.correlator),
                                          .cause = std::string(cause)};
  });
  if (device == c.answer_device) disarm(c, timer_kind::answer);
  if (released == c.external_number) {
    disarm(c, timer_kind::hang_up);
    disarm(c, timer_kind::external_answer);
  }
  remove_party(c, released);
  if (device == c.route_point) c.route_point = external;
  if (c.parties.size() <= 1) {
    clear_call(c, cause, now);  // nobody left to talk to
  }
  if (device != external) device_freed(device, now);
}

void call_model::clear_call(call& c, std::string_view cause, sim_time now) {
  close_dialog(c, csta::choice_value{"unspecified", {}});
  // Each remaining party is released, then the call itself; monitors see every step.
  std::vector<std::uint32_t> freed;  // phones that may take their next queued call afterwards
  while (!c.parties.empty()) {
    const auto& p = c.parties.back();
    emit(c, external, [&] {
      return csta::connection_cleared_event{.dropped_connection = ref(c, p),
                                            .releasing_device = dev(p.number),
                                            .local_connection_info = lcs::null,
                                            .correlator_data = opt(c.correlator),
                                            .cause = std::string(cause)};
    });
    if (c.parties.size() == 1) {
      emit(c, external, [&] {
        return csta::call_cleared_event{.cleared_call = csta::connection_ref{call_text(c.id), {}},
                                        .correlator_data = opt(c.correlator),
                                        .cause = std::string(cause)};
      });
    }
    const auto device = p.device;
    c.parties.pop_back();
    if (device != external) {
      erase_value(devices_[device].calls, c.id);
      freed.push_back(device);
    }
  }
  if (auto* f = fate_of(c)) f->ended = true;
  calls_.erase(c.id);
  --stats_.active_calls;
  ++stats_.completed;
  for (const auto device : freed) {
    if (devices_[device].kind == device_kind::operator_phone) device_freed(device, now);
  }
}

bool call_model::hang_up_caller(std::string_view call_id, sim_time now) {
  auto* c = find_call(call_id);
  if (!c || !c->inbound) return false;
  if (!c->answered) {
    ++stats_.abandoned;
    disarm(*c, timer_kind::patience);
  }
  release(*c, c->calling, "normalClearing", now);
  return true;
}

void call_model::cancel_registration(std::string_view route_register_req_id, sim_time now) {
  const auto id = parse_number(route_register_req_id);
  if (!id) return;
  const auto it =
      std::find_if(registrations_.begin(), registrations_.end(), [&](const auto& r) { return r.id == *id; });
  if (it == registrations_.end()) return;
  registrations_.erase(it);
  std::vector<std::uint64_t> orphaned;
  for (const auto& [xref, call_id] : dialogs_) {
    const auto* c = find_call(call_id);
    if (c && c->route_registration == *id) orphaned.push_back(call_id);
  }
  std::sort(orphaned.begin(), orphaned.end());  // oldest call first, whatever the hash order
  for (const auto call_id : orphaned) {
    auto* c = find_call(call_id);
    if (!c) continue;
    close_dialog(*c, std::nullopt);  // nobody left to tell
    route_to_default(*c, now);
  }
}

}  // namespace switchboard::pbxsim

// ---- requests -----------------------------------------------------------------------------------

namespace switchboard::pbxsim {

std::optional<csta::message> call_model::handle(const csta::message& request, sim_time now) {
  return std::visit(
      [&](const auto& r) -> reply {
        if constexpr (requires { this->on(r, now); }) {
          return on(r, now);
        } else {
          return csta_error("operation", "serviceNotSupported");
        }
      },
      request);
}

// The connection a request names, or the CSTAErrorCode to answer with.
#define PBXSIM_LOOKUP(c, p, conn)                                                         \
  auto* c = find_call((conn).call_id);                                                    \
  if (!c) return csta_error("operation", "invalidCallID");                                \
  auto* p = find_connection(*c, std::string_view((conn).device_id));                      \
  if (!p) return csta_error("operation", "invalidConnectionID");                          \
  if (p->device == external || devices_[p->device].kind != device_kind::operator_phone) { \
    return csta_error("operation", "requestIncompatibleWithObject");                      \
  }

call_model::call& call_model::originate(std::uint32_t device, std::string_view called, std::string_view correlator,
                                        std::string_view cause) {
  auto& c = new_call();
  c.calling = devices_[device].id;
  c.called = std::string(called);
  c.correlator = std::string(correlator);
  add_party(c, device, c.calling, lcs::initiated);
  emit(c, external, [&] {
    return csta::service_initiated_event{.initiated_connection = ref(c, c.calling),
                                         .initiating_device = dev(c.calling),
                                         .local_connection_info = lcs::initiated,
                                         .correlator_data = opt(c.correlator),
                                         .cause = std::string(cause)};
  });
  c.parties.front().state = lcs::connected;
  emit(c, external, [&] {
    return csta::originated_event{.originated_connection = ref(c, c.calling),
                                  .calling_device = dev(c.calling),
                                  .called_device = dev(c.called),
                                  .local_connection_info = lcs::connected,
                                  .correlator_data = opt(c.correlator),
                                  .cause = std::string(cause)};
  });
  return c;
}

call_model::reply call_model::on(const csta::make_call& r, sim_time now) {
  const auto d = find_device(r.calling_device);
  if (!d) return csta_error("operation", "invalidDeviceID");
  if (devices_[*d].kind != device_kind::operator_phone) return csta_error("operation", "requestIncompatibleWithObject");
  if (r.called_directory_number.empty() || r.called_directory_number == r.calling_device) {
    return csta_error("operation", "invalidDestination");
  }
  if (is_busy(*d)) return csta_error("stateIncompatibility", "invalidObjectState");
  auto& c = originate(*d, r.called_directory_number, r.correlator_data.value_or(""), "makeCall");
  csta::make_call_response response{.calling_device = ref(c, c.calling)};
  arrive(c, r.called_directory_number, "newCall", now);
  return response;
}

call_model::reply call_model::on(const csta::answer_call& r, sim_time now) {
  PBXSIM_LOOKUP(c, p, r.call_to_be_answered)
  if (p->state != lcs::alerting) return csta_error("stateIncompatibility", "noCallToAnswer");
  answer(*c, p->device, now);
  return csta::answer_call_response{};
}

call_model::reply call_model::on(const csta::clear_connection& r, sim_time now) {
  auto* c = find_call(r.connection_to_be_cleared.call_id);
  if (!c) return csta_error("operation", "invalidCallID");
  if (!find_connection(*c, std::string_view(r.connection_to_be_cleared.device_id))) {
    return csta_error("operation", "invalidConnectionID");
  }
  release(*c, r.connection_to_be_cleared.device_id, "normalClearing", now);
  return csta::clear_connection_response{};
}

call_model::reply call_model::on(const csta::hold_call& r, sim_time) {
  PBXSIM_LOOKUP(c, p, r.call_to_be_held)
  if (p->state != lcs::connected) return csta_error("stateIncompatibility", "noActiveCall");
  p->state = lcs::hold;
  emit(*c, external, [&] {
    return csta::held_event{.held_connection = ref(*c, *p),
                            .holding_device = dev(p->number),
                            .local_connection_info = lcs::hold,
                            .correlator_data = opt(c->correlator),
                            .cause = "normal"};
  });
  return csta::hold_call_response{};
}

call_model::reply call_model::on(const csta::retrieve_call& r, sim_time) {
  PBXSIM_LOOKUP(c, p, r.call_to_be_retrieved)
  if (p->state != lcs::hold) return csta_error("stateIncompatibility", "noHeldCall");
  if (is_busy(p->device)) return csta_error("stateIncompatibility", "invalidObjectState");
  p->state = lcs::connected;
  emit(*c, external, [&] {
    return csta::retrieved_event{.retrieved_connection = ref(*c, *p),
                                 .retrieving_device = dev(p->number),
                                 .local_connection_info = lcs::connected,
                                 .correlator_data = opt(c->correlator),
                                 .cause = "normal"};
  });
  return csta::retrieve_call_response{};
}

call_model::reply call_model::on(const csta::consultation_call& r, sim_time now) {
  PBXSIM_LOOKUP(existing, p, r.existing_call)
  if (p->state != lcs::connected && p->state != lcs::hold) return csta_error("stateIncompatibility", "noActiveCall");
  if (r.consulted_device.empty() || r.consulted_device == p->number) {
    return csta_error("operation", "invalidDestination");
  }
  const auto device = p->device;
  if (p->state == lcs::connected) {
    p->state = lcs::hold;
    emit(*existing, external, [&] {
      return csta::held_event{.held_connection = ref(*existing, *p),
                              .holding_device = dev(p->number),
                              .local_connection_info = lcs::hold,
                              .correlator_data = opt(existing->correlator),
                              .cause = "consultation"};
    });
  }
  auto& c = originate(device, r.consulted_device, r.correlator_data.value_or(""),
                      "consultation");  // `existing` stays valid: calls_ is node-based
  csta::consultation_call_response response{.initiated_call = ref(c, c.calling)};
  arrive(c, r.consulted_device, "consultation", now);
  return response;
}

call_model::merge_result call_model::merge(std::initializer_list<call*> olds, std::uint32_t device, bool keep_device,
                                           sim_time now) {
  auto& n = new_call();
  const auto& first = *olds.begin();
  n.calling = first->calling;
  n.called = first->called;
  n.correlator = first->correlator;
  merge_result out{.new_call = n.id, .recipients = {}, .items = {}};
  bool device_kept = false;
  for (auto* old : olds) {
    n.inbound = n.inbound || old->inbound;
    n.answered = n.answered || old->answered;
    if (n.talk_time.count() == 0) n.talk_time = old->talk_time;
    if (n.external_number.empty() || !find_connection(*old, std::string_view(n.external_number))) {
      if (!old->external_number.empty() && find_connection(*old, std::string_view(old->external_number))) {
        n.external_number = old->external_number;
      }
    }
    if (old->answer_device != external && old->due[static_cast<std::size_t>(timer_kind::answer)]) {
      n.answer_device = old->answer_device;
    }
    // Timers keep their due times under the new id; the earliest wins if both calls had one.
    for (std::size_t k = 0; k < timer_kinds; ++k) {
      if (old->due[k] && (!n.due[k] || *old->due[k] < *n.due[k])) n.due[k] = old->due[k];
    }
    if (old->route_xref != 0) {  // a consultation to a route point is still being routed
      n.route_xref = old->route_xref;
      n.route_registration = old->route_registration;
      dialogs_[old->route_xref] = n.id;
    }
    if (old->route_point != external) n.route_point = old->route_point;
    for (const auto& p : old->parties) {
      if (p.device != external) {
        out.recipients.push_back(p.device);
        erase_value(devices_[p.device].calls, old->id);
      }
      if (p.device == device && (!keep_device || device_kept)) continue;
      auto state = p.state;
      if (p.device == device) {
        device_kept = true;
        state = lcs::connected;
      }
      out.items.push_back(csta::connection_list_item{
          .new_connection = ref(n, p.number), .old_connection = ref(*old, p.number), .endpoint = dev(p.number)});
      add_party(n, p.device, p.number, state);
    }
  }
  for (std::size_t k = 0; k < timer_kinds; ++k) {
    if (const auto due = std::exchange(n.due[k], std::nullopt)) arm(n, static_cast<timer_kind>(k), std::max(*due, now));
  }
  for (auto* old : olds) {
    if (auto* f = fate_of(*old)) {
      f->continued_as = call_text(n.id);
      if (n.inbound) call_log_[n.id].call = call_text(n.id);
    }
    calls_.erase(old->id);
    --stats_.active_calls;
  }
  std::sort(out.recipients.begin(), out.recipients.end());
  out.recipients.erase(std::unique(out.recipients.begin(), out.recipients.end()), out.recipients.end());
  return out;
}

template <class Make>
void call_model::emit_to(const std::vector<std::uint32_t>& recipients, Make&& make) {
  const bool any = std::any_of(recipients.begin(), recipients.end(), [&](auto d) { return devices_[d].monitors > 0; });
  if (!any) return;
  const csta::message m = make();
  for (const auto d : recipients) {
    if (devices_[d].monitors > 0) outputs_.push_back(output{output::kind::device_event, devices_[d].id, m});
  }
}

call_model::reply call_model::on(const csta::transfer_call& r, sim_time now) {
  return join(r.held_call, r.active_call, false, now);
}

call_model::reply call_model::on(const csta::conference_call& r, sim_time now) {
  return join(r.held_call, r.active_call, true, now);
}

call_model::reply call_model::join(const csta::connection_ref& held_ref, const csta::connection_ref& active_ref,
                                   bool conference, sim_time now) {
  PBXSIM_LOOKUP(held, hp, held_ref)
  PBXSIM_LOOKUP(active, ap, active_ref)
  if (held == active || hp->device != ap->device) return csta_error("operation", "invalidConnectionID");
  if (hp->state != lcs::hold) return csta_error("stateIncompatibility", "noHeldCall");
  if (ap->state != lcs::connected) return csta_error("stateIncompatibility", "noActiveCall");
  if (held->parties.size() < 2 || active->parties.size() < 2) {
    return csta_error("stateIncompatibility", "invalidObjectState");
  }
  const auto device = hp->device;
  const auto& device_id = devices_[device].id;
  // The party the active (consultation) call reached: the transferred-to or added party.
  std::string other;
  for (const auto& p : active->parties) {
    if (p.device != device) {
      other = p.number;
      break;
    }
  }
  const auto primary = ref(*held, device_id);
  const auto secondary = ref(*active, device_id);
  auto merged = merge({held, active}, device, conference, now);
  auto& n = calls_.at(merged.new_call);
  if (conference) {
    emit_to(merged.recipients, [&] {
      return csta::conferenced_event{.primary_old_call = primary,
                                     .secondary_old_call = secondary,
                                     .conferencing_device = dev(device_id),
                                     .added_party = dev(other),
                                     .conference_connections = merged.items,
                                     .local_connection_info = lcs::connected,
                                     .correlator_data = opt(n.correlator),
                                     .cause = "conference"};
    });
    return csta::conference_call_response{.conference_call = ref(n, device_id), .connections = merged.items};
  }
  emit_to(merged.recipients, [&] {
    return csta::transfered_event{.primary_old_call = primary,
                                  .secondary_old_call = secondary,
                                  .transferring_device = dev(device_id),
                                  .transferred_to_device = dev(other),
                                  .transferred_connections = merged.items,
                                  .local_connection_info = lcs::null,
                                  .correlator_data = opt(n.correlator),
                                  .cause = "transfer"};
  });
  csta::transfer_call_response response{.transferred_call = ref(n, other), .connections = merged.items};
  device_freed(device, now);
  return response;
}

call_model::reply call_model::on(const csta::deflect_call& r, sim_time now) {
  PBXSIM_LOOKUP(c, p, r.call_to_be_diverted)
  if (p->state != lcs::alerting) return csta_error("stateIncompatibility", "invalidConnectionState");
  if (r.new_destination.empty() || r.new_destination == p->number) {
    return csta_error("operation", "invalidDestination");
  }
  if (const auto to = find_device(r.new_destination);
      to && devices_[*to].kind == device_kind::operator_phone && is_busy(*to)) {
    return csta_error("systemResourceAvailibility", "resourceBusy");
  }
  divert(*c, p->device, r.new_destination, "redirected", now);
  return csta::deflect_call_response{};
}

call_model::reply call_model::on(const csta::single_step_transfer_call& r, sim_time now) {
  PBXSIM_LOOKUP(c, p, r.active_call)
  if (p->state != lcs::connected) return csta_error("stateIncompatibility", "noActiveCall");
  if (r.transferred_to.empty() || r.transferred_to == p->number) return csta_error("operation", "invalidDestination");
  const auto to = find_device(r.transferred_to);
  if (to && devices_[*to].kind == device_kind::operator_phone && is_busy(*to)) {
    return csta_error("systemResourceAvailibility", "resourceBusy");
  }
  if (c->parties.size() < 2) return csta_error("stateIncompatibility", "invalidObjectState");
  const auto device = p->device;
  const auto& device_id = devices_[device].id;
  const auto primary = ref(*c, device_id);
  auto merged = merge({c}, device, false, now);
  auto& n = calls_.at(merged.new_call);
  merged.items.push_back(csta::connection_list_item{
      .new_connection = ref(n, r.transferred_to), .old_connection = std::nullopt, .endpoint = dev(r.transferred_to)});
  if (to) merged.recipients.push_back(*to);
  emit_to(merged.recipients, [&] {
    return csta::transfered_event{.primary_old_call = primary,
                                  .transferring_device = dev(device_id),
                                  .transferred_to_device = dev(r.transferred_to),
                                  .transferred_connections = merged.items,
                                  .local_connection_info = lcs::null,
                                  .correlator_data = opt(n.correlator),
                                  .cause = "singleStepTransfer"};
  });
  csta::single_step_transfer_call_response response{.transferred_call = ref(n, r.transferred_to),
                                                    .connections = merged.items};
  arrive(n, r.transferred_to, "singleStepTransfer", now);
  device_freed(device, now);
  return response;
}

call_model::reply call_model::on(const csta::set_agent_state& r, sim_time) {
  const auto d = find_device(r.device);
  if (!d) return csta_error("operation", "invalidDeviceID");
  auto& phone = devices_[*d];
  if (phone.kind != device_kind::operator_phone) return csta_error("operation", "requestIncompatibleWithObject");
  const auto& want = r.requested_agent_state;
  agent_state next{};
  if (want == "loggedOn") {
    next = phone.agent == agent_state::logged_off ? agent_state::not_ready : phone.agent;
  } else if (want == "loggedOff") {
    next = agent_state::logged_off;
  } else if (want == "ready") {
    next = agent_state::ready;
  } else if (want == "notReady") {
    next = agent_state::not_ready;
  } else if (want == "workingAfterCall") {
    next = agent_state::working_after_call;
  } else {
    return csta_error("operation", "valueOutOfRange");
  }
  if (phone.agent == agent_state::logged_off && want != "loggedOn" && want != "loggedOff") {
    return csta_error("stateIncompatibility", "invalidObjectState");  // log on first
  }
  if (r.agent_id) phone.agent_id = *r.agent_id;
  if (r.group) phone.group = *r.group;
  phone.agent = next;
  if (phone.monitors > 0) {
    csta::agent_event_fields f{
        .agent_device = dev(phone.id), .agent_id = opt(phone.agent_id), .acd_group = opt(phone.group)};
    csta::message m;
    if (want == "loggedOn") {
      m = csta::agent_logged_on_event{f};
    } else if (want == "loggedOff") {
      m = csta::agent_logged_off_event{f};
    } else if (want == "ready") {
      m = csta::agent_ready_event{f};
    } else if (want == "notReady") {
      m = csta::agent_not_ready_event{f};
    } else {
      m = csta::agent_working_after_call_event{f};
    }
    outputs_.push_back(output{output::kind::device_event, phone.id, std::move(m)});
  }
  return csta::set_agent_state_response{};
}

call_model::reply call_model::on(const csta::get_agent_state& r, sim_time) {
  const auto d = find_device(r.device);
  if (!d) return csta_error("operation", "invalidDeviceID");
  const auto& phone = devices_[*d];
  if (phone.kind != device_kind::operator_phone) return csta_error("operation", "requestIncompatibleWithObject");
  std::string state = "agentNull";
  if (phone.agent != agent_state::logged_off) {
    if (is_busy(*d)) {
      state = "agentBusy";
    } else if (phone.agent == agent_state::ready) {
      state = "agentReady";
    } else if (phone.agent == agent_state::working_after_call) {
      state = "agentWorkingAfterCall";
    } else {
      state = "agentNotReady";
    }
  }
  csta::agent_state_entry entry{
      .agent_id = opt(phone.agent_id),
      .logged_on_state = phone.agent != agent_state::logged_off,
      .agent_info = {csta::agent_info_item{.acd_group = opt(phone.group), .agent_state = state}}};
  return csta::get_agent_state_response{.agent_state_list = {std::move(entry)}};
}

call_model::reply call_model::on(const csta::snapshot_device& r, sim_time) {
  const auto d = find_device(r.snapshot_object);
  if (!d) return csta_error("operation", "invalidDeviceID");
  csta::snapshot_device_response response;
  for (const auto id : call_ids_at(*d)) {
    auto* c = find_call(id);
    if (!c) continue;
    if (const auto* p = find_connection(*c, *d)) {
      response.items.push_back(csta::snapshot_item{.connection = ref(*c, *p), .states = {p->state}});
    }
  }
  return response;
}

call_model::reply call_model::on(const csta::route_register& r, sim_time) {
  std::optional<std::uint32_t> device;
  if (r.routeing_device) {
    device = find_device(*r.routeing_device);
    if (!device || devices_[*device].kind != device_kind::route_point)
      return csta_error("operation", "invalidDeviceID");
  }
  const auto id = next_registration_++;
  registrations_.push_back(registration{id, device});
  return csta::route_register_response{.route_register_req_id = std::to_string(id)};
}

call_model::reply call_model::on(const csta::route_register_cancel& r, sim_time now) {
  const auto id = parse_number(r.route_register_req_id);
  if (!id || std::none_of(registrations_.begin(), registrations_.end(), [&](const auto& x) { return x.id == *id; })) {
    return csta_error("operation", "invalidRouteRegistrationCrossRefID");
  }
  cancel_registration(r.route_register_req_id, now);
  return csta::route_register_cancel_response{};
}

call_model::call* call_model::find_dialog(std::string_view xref, std::string_view registration) {
  const auto x = parse_number(xref);
  if (!x) return nullptr;
  const auto it = dialogs_.find(*x);
  if (it == dialogs_.end()) return nullptr;
  auto* c = find_call(it->second);
  if (!c || std::to_string(c->route_registration) != registration) return nullptr;
  return c;
}

call_model::reply call_model::on(const csta::route_select& r, sim_time now) {
  auto* c = find_dialog(r.cross_ref_identifier, r.route_register_req_id);
  if (!c) return csta_error("operation", "invalidRouteingCrossRefID");
  const auto to = find_device(r.route_selected);
  if (!to || devices_[*to].kind != device_kind::operator_phone) return csta_error("operation", "invalidDeviceID");
  if (is_busy(*to)) {
    // The chosen phone cannot take the call: ask the routing application again.
    send_routing(c->route_registration, csta::re_route{.cross_ref_identifier = r.cross_ref_identifier,
                                                       .route_register_req_id = r.route_register_req_id,
                                                       .reply_timeout = config_.route_timeout.count(),
                                                       .correlator_data = opt(c->correlator)});
    arm(*c, timer_kind::route_timeout, now + config_.route_timeout);
    return std::nullopt;
  }
  ++stats_.routed_by_cti;
  if (auto* f = fate_of(*c)) f->routed_by_cti = true;
  if (r.route_used_req.value_or(false)) {
    send_routing(c->route_registration, csta::route_used{.cross_ref_identifier = r.cross_ref_identifier,
                                                         .route_register_req_id = r.route_register_req_id,
                                                         .used = dev(r.route_selected),
                                                         .calling_device = dev(c->calling)});
  }
  close_dialog(*c, csta::choice_value{"unspecified", {}});
  if (r.correlator_data) c->correlator = *r.correlator_data;
  divert(*c, c->route_point, r.route_selected, "redirected", now);
  return std::nullopt;
}

call_model::reply call_model::on(const csta::route_end& r, sim_time now) {
  auto* c = find_dialog(r.cross_ref_identifier, r.route_register_req_id);
  if (!c) return csta_error("operation", "invalidRouteingCrossRefID");
  close_dialog(*c, std::nullopt);  // the application ended it: no RouteEnd back
  route_to_default(*c, now);
  return std::nullopt;
}

#undef PBXSIM_LOOKUP

}  // namespace switchboard::pbxsim
