// Names on the wire: stable error codes and enum spellings of the desktop protocol.
#include "switchboard/desk/protocol.hpp"

namespace switchboard::desk {

std::string error_code_of(const error& e) {
  if (e.code.category() != switchboard_category()) return "internal";
  switch (static_cast<errc>(e.code.value())) {
    case errc::desk_line_too_long:
      return "line_too_long";
    case errc::desk_json_malformed:
      return "malformed_json";
    case errc::desk_bad_request:
      return "bad_request";
    case errc::desk_unknown_type:
      return "unknown_type";
    case errc::desk_hello_required:
      return "hello_required";
    case errc::desk_version_unsupported:
      return "unsupported_version";
    case errc::desk_not_logged_in:
      return "not_logged_in";
    case errc::desk_login_failed:
      return "login_failed";
    case errc::desk_rate_limited:
      return "rate_limited";
    case errc::desk_already_logged_in:
      return "already_logged_in";
    case errc::desk_resume_failed:
      return "resume_failed";
    case errc::desk_device_in_use:
      return "device_in_use";
    case errc::desk_not_allowed:
      return "not_allowed";
    case errc::desk_slow_consumer:
      return "slow_consumer";
    case errc::desk_taken_over:
      return "taken_over";
    case errc::desk_idle_timeout:
      return "idle_timeout";
    case errc::desk_too_many_errors:
      return "too_many_errors";
    case errc::state_not_allowed:
      return "state_not_allowed";
    case errc::call_unknown:
      return "no_call";
    case errc::operator_unknown:
      return "unknown_operator";
    case errc::pbx_rejected:
      return "rejected";
    case errc::db_unavailable:
    case errc::db_pool_closed:
    case errc::pbx_link_down:
    case errc::pbx_timeout:
      return "unavailable";
    default:
      return "internal";
  }
}

error_reply make_error_reply(std::optional<request_id> id, const error& e) {
  return {std::move(id), error_code_of(e), e.message()};
}

const char* to_string(role r) noexcept {
  switch (r) {
    case role::operator_:
      return "operator";
    case role::supervisor:
      return "supervisor";
    case role::admin:
      return "admin";
  }
  return "operator";
}

const char* to_string(call_state s) noexcept {
  switch (s) {
    case call_state::ringing:
      return "ringing";
    case call_state::talking:
      return "talking";
    case call_state::held:
      return "held";
    case call_state::consulting:
      return "consulting";
    case call_state::conference:
      return "conference";
    case call_state::ended:
      return "ended";
  }
  return "ended";
}

const char* to_string(req::transfer_mode m) noexcept { return m == req::transfer_mode::blind ? "blind" : "complete"; }

const char* to_string(req::forced_state s) noexcept {
  switch (s) {
    case req::forced_state::ready:
      return "ready";
    case req::forced_state::not_ready:
      return "not_ready";
    case req::forced_state::logged_out:
      return "logged_out";
  }
  return "ready";
}

namespace {
template <class>
constexpr const char* name_of = "";
#define SWITCHBOARD_DESK_NAME(T, text) \
  template <>                          \
  constexpr const char* name_of<req::T> = text;
SWITCHBOARD_DESK_NAME(hello, "hello")
SWITCHBOARD_DESK_NAME(login, "login")
SWITCHBOARD_DESK_NAME(resume, "resume")
SWITCHBOARD_DESK_NAME(logout, "logout")
SWITCHBOARD_DESK_NAME(ping, "ping")
SWITCHBOARD_DESK_NAME(ready, "ready")
SWITCHBOARD_DESK_NAME(not_ready, "not_ready")
SWITCHBOARD_DESK_NAME(end_wrap_up, "end_wrap_up")
SWITCHBOARD_DESK_NAME(answer, "answer")
SWITCHBOARD_DESK_NAME(hangup, "hangup")
SWITCHBOARD_DESK_NAME(hold, "hold")
SWITCHBOARD_DESK_NAME(retrieve, "retrieve")
SWITCHBOARD_DESK_NAME(consult, "consult")
SWITCHBOARD_DESK_NAME(transfer, "transfer")
SWITCHBOARD_DESK_NAME(conference, "conference")
SWITCHBOARD_DESK_NAME(dial, "dial")
SWITCHBOARD_DESK_NAME(disposition, "disposition")
SWITCHBOARD_DESK_NAME(force_state, "force_state")
SWITCHBOARD_DESK_NAME(tenant_view, "tenant_view")
#undef SWITCHBOARD_DESK_NAME
}  // namespace

const char* type_name(const request_body& body) noexcept {
  return std::visit([](const auto& r) { return name_of<std::decay_t<decltype(r)>>; }, body);
}

}  // namespace switchboard::desk
