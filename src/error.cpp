// Messages of the project error enum: each says what an admin should check.
#include "switchboard/error.hpp"

#include <stdexcept>

namespace switchboard {
namespace {

class category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "switchboard"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok:
        return "ok";
      case errc::config_unreadable:
        return "configuration file cannot be read (check the path and permissions)";
      case errc::config_invalid:
        return "configuration is invalid";
      case errc::db_unavailable:
        return "database unavailable (check that PostgreSQL is running and database.url)";
      case errc::db_query_failed:
        return "database query failed";
      case errc::db_constraint_violated:
        return "database refused an impossible state";
      case errc::db_migration_failed:
        return "schema migration failed (the database is left at the last good version)";
      case errc::db_pool_closed:
        return "database pool is shut down";
      case errc::pbx_link_down:
        return "PBX link is down (check pbx.host, pbx.port and the PBX's CTI licence)";
      case errc::pbx_timeout:
        return "PBX did not answer in time";
      case errc::pbx_rejected:
        return "PBX rejected the request";
      case errc::pbx_protocol_error:
        return "PBX sent something the protocol does not allow";
      case errc::frame_too_large:
        return "frame larger than the configured limit";
      case errc::frame_malformed:
        return "malformed frame";
      case errc::message_malformed:
        return "malformed message";
      case errc::message_unknown:
        return "unknown message";
      case errc::desk_line_too_long:
        return "desktop line longer than the configured limit";
      case errc::desk_json_malformed:
        return "desktop sent malformed JSON";
      case errc::desk_bad_request:
        return "desktop request is missing a field or has a wrong type";
      case errc::desk_unknown_type:
        return "unknown desktop message type";
      case errc::desk_not_logged_in:
        return "log in first";
      case errc::desk_login_failed:
        return "wrong login or password";
      case errc::desk_rate_limited:
        return "too many attempts, wait and retry";
      case errc::desk_not_allowed:
        return "not allowed";
      case errc::desk_slow_consumer:
        return "desktop did not read its messages in time";
      case errc::desk_hello_required:
        return "say hello (with the protocol version) first";
      case errc::desk_version_unsupported:
        return "desktop protocol version not supported";
      case errc::desk_already_logged_in:
        return "operator is already logged in from another desktop";
      case errc::desk_resume_failed:
        return "session cannot be resumed (unknown token or grace period over): log in again";
      case errc::desk_device_in_use:
        return "device is in use by another logged-in operator";
      case errc::desk_taken_over:
        return "the operator logged in from another desktop";
      case errc::desk_idle_timeout:
        return "desktop silent past the idle timeout";
      case errc::desk_too_many_errors:
        return "too many bad requests in a row";
      case errc::no_operator_available:
        return "no operator available";
      case errc::call_unknown:
        return "no such call";
      case errc::operator_unknown:
        return "no such operator";
      case errc::state_not_allowed:
        return "not allowed in the current state";
      case errc::cancelled:
        return "cancelled";
      case errc::internal:
        return "internal error (a bug: please report it with the log)";
    }
    return "unknown error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& switchboard_category() noexcept {
  static const category_impl instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), switchboard_category()}; }

std::string error::message() const {
  std::string text = code.message();
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return text;
}

void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw std::runtime_error(e.message());
}

}  // namespace switchboard
