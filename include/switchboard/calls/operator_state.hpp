// The operator state machine: one explicit table of allowed transitions, driven by both the
// phone (PBX events) and the desktop. Pure: no clock, no I/O; the owner writes the presence
// row after every change so routing always reads the truth.
#pragma once

#include "switchboard/error.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::calls {

// Mirrors the presence_state enum in sql/migrations/0001_core.sql.
enum class operator_state { logged_out, ready, not_ready, reserved, ringing, talking, held, wrap_up };

enum class operator_trigger {
  log_in,               // desktop logged in: starts not ready ("login")
  go_ready,             // desktop, supervisor, or end of a pending not-ready
  go_not_ready,         // desktop or supervisor, with a reason; during a call it waits for the hang-up
  log_out,              // desktop; during a call it waits for the hang-up
  reserve,              // the router picked him for a call
  reservation_expired,  // the PBX never rang him: back to ready
  ring,                 // his phone rings with the reserved call (or a direct call)
  ring_no_answer,       // he did not answer in time: not ready, reason "no_answer"
  answer,               // his phone answered
  hold,
  retrieve,
  call_ended,   // his connection cleared: wrap-up after talk, back before talk
  end_wrap_up,  // wrap-up timer ran out, or the operator ended it early
};

std::string_view to_string(operator_state s) noexcept;
std::string_view to_string(operator_trigger t) noexcept;
std::optional<operator_state> parse_operator_state(std::string_view text) noexcept;

struct transition {
  operator_state from;
  operator_trigger trigger;
  operator_state to;
};

// Every allowed transition; anything not listed is refused (errc::state_not_allowed).
// Deferred requests (not ready / log out during a call) are handled by operator_state_machine.
inline constexpr std::array allowed_transitions{
    transition{operator_state::logged_out, operator_trigger::log_in, operator_state::not_ready},
    transition{operator_state::not_ready, operator_trigger::go_ready, operator_state::ready},
    transition{operator_state::not_ready, operator_trigger::go_not_ready, operator_state::not_ready},
    transition{operator_state::not_ready, operator_trigger::log_out, operator_state::logged_out},
    transition{operator_state::not_ready, operator_trigger::ring, operator_state::ringing},  // direct call
    transition{operator_state::ready, operator_trigger::go_ready, operator_state::ready},
    transition{operator_state::ready, operator_trigger::go_not_ready, operator_state::not_ready},
    transition{operator_state::ready, operator_trigger::log_out, operator_state::logged_out},
    transition{operator_state::ready, operator_trigger::reserve, operator_state::reserved},
    transition{operator_state::ready, operator_trigger::ring, operator_state::ringing},  // direct call
    transition{operator_state::reserved, operator_trigger::ring, operator_state::ringing},
    transition{operator_state::reserved, operator_trigger::reservation_expired, operator_state::ready},
    transition{operator_state::reserved, operator_trigger::call_ended, operator_state::ready},  // caller hung up
    transition{operator_state::reserved, operator_trigger::answer, operator_state::talking},    // auto-answer
    transition{operator_state::ringing, operator_trigger::answer, operator_state::talking},
    transition{operator_state::ringing, operator_trigger::ring_no_answer, operator_state::not_ready},
    transition{operator_state::ringing, operator_trigger::call_ended, operator_state::ready},  // abandoned ringing
    transition{operator_state::talking, operator_trigger::hold, operator_state::held},
    transition{operator_state::talking, operator_trigger::call_ended, operator_state::wrap_up},
    transition{operator_state::held, operator_trigger::retrieve, operator_state::talking},
    transition{operator_state::held, operator_trigger::call_ended, operator_state::wrap_up},
    transition{operator_state::wrap_up, operator_trigger::end_wrap_up, operator_state::ready},
    transition{operator_state::wrap_up, operator_trigger::ring, operator_state::ringing},  // direct call in wrap-up
};

// The table lookup: the next state, or nothing when the trigger is not allowed in `from`.
std::optional<operator_state> next_state(operator_state from, operator_trigger trigger) noexcept;

// One operator's state with the parts the table alone does not hold: the not-ready reason and
// requests deferred until the current call ends.
class operator_state_machine {
 public:
  struct change {
    operator_state from;
    operator_state to;
    std::string reason;  // set when `to` is not_ready
  };

  operator_state state() const noexcept { return state_; }
  const std::string& reason() const noexcept { return reason_; }
  // A not-ready or log-out asked during a call, applied when wrap-up ends.
  const std::optional<std::string>& pending_not_ready() const noexcept { return pending_not_ready_; }
  bool pending_log_out() const noexcept { return pending_log_out_; }
  bool on_a_call() const noexcept;

  // Applies `trigger`; `reason` is the not-ready reason for go_not_ready. A not-ready or log-out
  // during a call is accepted and deferred (the returned change is then from == to).
  result<change> apply(operator_trigger trigger, std::string reason = {});

  // Sets the state directly (start-up reconciliation from the presence table).
  void restore(operator_state s, std::string reason = {});

 private:
  result<change> move_to(operator_state next, std::string reason);

  operator_state state_ = operator_state::logged_out;
  std::string reason_;
  std::optional<std::string> pending_not_ready_;
  bool pending_log_out_ = false;
};

}  // namespace switchboard::calls
