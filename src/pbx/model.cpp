// Names of the neutral model's enums and events, for logs and the desktop protocol.
#include "switchboard/pbx/model.hpp"
#include "switchboard/pbx/events.hpp"

namespace switchboard::pbx {

std::string_view to_string(connection_state s) noexcept {
  switch (s) {
    case connection_state::null:
      return "null";
    case connection_state::initiated:
      return "initiated";
    case connection_state::alerting:
      return "alerting";
    case connection_state::connected:
      return "connected";
    case connection_state::hold:
      return "hold";
    case connection_state::queued:
      return "queued";
    case connection_state::fail:
      return "fail";
  }
  return "unknown";
}

std::string_view to_string(operator_state s) noexcept {
  switch (s) {
    case operator_state::logged_off:
      return "logged_off";
    case operator_state::logged_on:
      return "logged_on";
    case operator_state::ready:
      return "ready";
    case operator_state::not_ready:
      return "not_ready";
    case operator_state::after_call_work:
      return "after_call_work";
    case operator_state::busy:
      return "busy";
  }
  return "unknown";
}

namespace {
template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;
}  // namespace

std::string_view event_name(const event& e) noexcept {
  return std::visit(overloaded{
                        [](const call_offered&) { return std::string_view("call_offered"); },
                        [](const route_retry&) { return std::string_view("route_retry"); },
                        [](const route_ended&) { return std::string_view("route_ended"); },
                        [](const call_initiated&) { return std::string_view("call_initiated"); },
                        [](const call_originated&) { return std::string_view("call_originated"); },
                        [](const call_delivered&) { return std::string_view("call_delivered"); },
                        [](const call_established&) { return std::string_view("call_established"); },
                        [](const call_held&) { return std::string_view("call_held"); },
                        [](const call_retrieved&) { return std::string_view("call_retrieved"); },
                        [](const call_transferred&) { return std::string_view("call_transferred"); },
                        [](const call_conferenced&) { return std::string_view("call_conferenced"); },
                        [](const call_diverted&) { return std::string_view("call_diverted"); },
                        [](const call_queued&) { return std::string_view("call_queued"); },
                        [](const call_failed&) { return std::string_view("call_failed"); },
                        [](const connection_cleared&) { return std::string_view("connection_cleared"); },
                        [](const call_cleared&) { return std::string_view("call_cleared"); },
                        [](const operator_changed&) { return std::string_view("operator_changed"); },
                        [](const link_up&) { return std::string_view("link_up"); },
                        [](const link_down&) { return std::string_view("link_down"); },
                        [](const resynced&) { return std::string_view("resynced"); },
                    },
                    e);
}

}  // namespace switchboard::pbx
