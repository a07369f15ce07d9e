// The project's one error enum. Messages tell the admin what to check; the peer's own text
// (SQL error, PBX error) travels beside the code in `error::detail`.
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <system_error>

namespace switchboard {

enum class errc {
  ok = 0,
  // configuration
  config_unreadable = 1,
  config_invalid,
  // database
  db_unavailable = 100,
  db_query_failed,
  db_constraint_violated,
  db_migration_failed,
  db_pool_closed,
  // PBX link
  pbx_link_down = 200,
  pbx_timeout,
  pbx_rejected,
  pbx_protocol_error,
  frame_too_large,
  frame_malformed,
  message_malformed,
  message_unknown,
  // desktop channel
  desk_line_too_long = 300,
  desk_json_malformed,
  desk_bad_request,
  desk_unknown_type,
  desk_not_logged_in,
  desk_login_failed,
  desk_rate_limited,
  desk_not_allowed,
  desk_slow_consumer,
  desk_hello_required,
  desk_version_unsupported,
  desk_already_logged_in,
  desk_resume_failed,
  desk_device_in_use,
  desk_taken_over,
  desk_idle_timeout,
  desk_too_many_errors,
  // routing and calls
  no_operator_available = 400,
  call_unknown,
  operator_unknown,
  state_not_allowed,
  // general
  cancelled = 900,
  internal,
};

const std::error_category& switchboard_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// An expected failure: a code from `errc` plus the peer's text or the name of what failed.
struct error {
  std::error_code code;
  std::string detail;

  error() = default;
  error(errc e, std::string detail_text = {}) : code(make_error_code(e)), detail(std::move(detail_text)) {}
  error(std::error_code ec, std::string detail_text = {}) : code(ec), detail(std::move(detail_text)) {}

  bool is(errc e) const noexcept { return code == make_error_code(e); }
  // "<what to check>: <peer's text>" — one line, fit for a log or a desktop reply.
  std::string message() const;
};

[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

// Expected failures are values; exceptions are for lost infrastructure and bugs.
template <class T>
using result = boost::system::result<T, error>;

}  // namespace switchboard

template <>
struct std::is_error_code_enum<switchboard::errc> : std::true_type {};
