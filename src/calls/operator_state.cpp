// Operator state machine: the table lookup plus deferred not-ready/log-out requests.
#include "switchboard/calls/operator_state.hpp"

#include <algorithm>

namespace switchboard::calls {

std::string_view to_string(operator_state s) noexcept {
  switch (s) {
    case operator_state::logged_out:
      return "logged_out";
    case operator_state::ready:
      return "ready";
    case operator_state::not_ready:
      return "not_ready";
    case operator_state::reserved:
      return "reserved";
    case operator_state::ringing:
      return "ringing";
    case operator_state::talking:
      return "talking";
    case operator_state::held:
      return "held";
    case operator_state::wrap_up:
      return "wrap_up";
  }
  return "unknown";
}

std::string_view to_string(operator_trigger t) noexcept {
  switch (t) {
    case operator_trigger::log_in:
      return "log_in";
    case operator_trigger::go_ready:
      return "go_ready";
    case operator_trigger::go_not_ready:
      return "go_not_ready";
    case operator_trigger::log_out:
      return "log_out";
    case operator_trigger::reserve:
      return "reserve";
    case operator_trigger::reservation_expired:
      return "reservation_expired";
    case operator_trigger::ring:
      return "ring";
    case operator_trigger::ring_no_answer:
      return "ring_no_answer";
    case operator_trigger::answer:
      return "answer";
    case operator_trigger::hold:
      return "hold";
    case operator_trigger::retrieve:
      return "retrieve";
    case operator_trigger::call_ended:
      return "call_ended";
    case operator_trigger::end_wrap_up:
      return "end_wrap_up";
  }
  return "unknown";
}

std::optional<operator_state> parse_operator_state(std::string_view text) noexcept {
  for (auto s : {operator_state::logged_out, operator_state::ready, operator_state::not_ready, operator_state::reserved,
                 operator_state::ringing, operator_state::talking, operator_state::held, operator_state::wrap_up})
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::optional<operator_state> next_state(operator_state from, operator_trigger trigger) noexcept {
  auto it = std::find_if(allowed_transitions.begin(), allowed_transitions.end(),
                         [&](const transition& t) { return t.from == from && t.trigger == trigger; });
  if (it == allowed_transitions.end()) return std::nullopt;
  return it->to;
}

bool operator_state_machine::on_a_call() const noexcept {
  switch (state_) {
    case operator_state::reserved:
    case operator_state::ringing:
    case operator_state::talking:
    case operator_state::held:
    case operator_state::wrap_up:
      return true;
    default:
      return false;
  }
}

result<operator_state_machine::change> operator_state_machine::apply(operator_trigger trigger, std::string reason) {
  // Requests the current call must not be cut by: remember them, apply when wrap-up ends.
  if (on_a_call() && (trigger == operator_trigger::go_not_ready || trigger == operator_trigger::log_out)) {
    if (trigger == operator_trigger::go_not_ready) {
      if (reason.empty()) return error{errc::state_not_allowed, "not ready needs a reason"};
      pending_not_ready_ = std::move(reason);
    } else {
      pending_log_out_ = true;
    }
    return change{state_, state_, reason_};
  }
  if (trigger == operator_trigger::go_ready && on_a_call()) {
    // "ready" during a call cancels a pending not-ready; it does not cut wrap-up short.
    pending_not_ready_.reset();
    pending_log_out_ = false;
    return change{state_, state_, reason_};
  }
  auto next = next_state(state_, trigger);
  if (!next)
    return error{errc::state_not_allowed,
                 std::string(to_string(trigger)) + " is not allowed while " + std::string(to_string(state_))};

  if (trigger == operator_trigger::log_in) return move_to(*next, "login");
  if (trigger == operator_trigger::ring_no_answer) return move_to(*next, "no_answer");
  if (trigger == operator_trigger::go_not_ready) {
    if (reason.empty()) return error{errc::state_not_allowed, "not ready needs a reason"};
    return move_to(*next, std::move(reason));
  }
  if (trigger == operator_trigger::end_wrap_up) {
    if (pending_log_out_) return move_to(operator_state::logged_out, {});
    if (pending_not_ready_) {
      auto why = std::move(*pending_not_ready_);
      return move_to(operator_state::not_ready, std::move(why));
    }
  }
  // A call that ended before it was answered: pending requests apply at once.
  if (trigger == operator_trigger::call_ended && *next == operator_state::ready) {
    if (pending_log_out_) return move_to(operator_state::logged_out, {});
    if (pending_not_ready_) {
      auto why = std::move(*pending_not_ready_);
      return move_to(operator_state::not_ready, std::move(why));
    }
  }
  return move_to(*next, {});
}

result<operator_state_machine::change> operator_state_machine::move_to(operator_state next, std::string reason) {
  change done{state_, next, next == operator_state::not_ready ? std::move(reason) : std::string()};
  state_ = next;
  reason_ = done.reason;
  if (!on_a_call()) {
    pending_not_ready_.reset();
    pending_log_out_ = false;
  }
  return done;
}

void operator_state_machine::restore(operator_state s, std::string reason) {
  state_ = s;
  reason_ = s == operator_state::not_ready ? std::move(reason) : std::string();
  pending_not_ready_.reset();
  pending_log_out_ = false;
}

}  // namespace switchboard::calls
