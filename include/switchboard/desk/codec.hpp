// The desktop codec, sans I/O: bytes → lines (with a hard cap, never buffering an oversized
// line) and lines ↔ typed messages. Sessions, the client tool, tests and the fuzzer share it.
#pragma once

#include "switchboard/desk/protocol.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::desk {

inline constexpr std::size_t default_max_line_bytes = 64 * 1024;
inline constexpr int max_json_depth = 32;
inline constexpr std::size_t max_id_bytes = 64;

// Splits a byte stream into lines. A line longer than `max_line` bytes (without its "\n") is
// reported once as `too_long` as soon as the limit is passed; the rest of it is skipped without
// being buffered. Blank lines are skipped; a "\r" before the "\n" is removed.
class line_framer {
 public:
  enum class status { need_more, line, too_long };
  struct frame {
    status what = status::need_more;
    std::string_view line;  // valid until the next call to `next`
  };

  explicit line_framer(std::size_t max_line = default_max_line_bytes) : max_line_(max_line) {}

  // Consumes bytes from the front of `input` until one frame is complete or `input` is empty.
  // Call again with the rest of `input` until it says need_more.
  frame next(std::string_view& input);

  std::size_t max_line() const noexcept { return max_line_; }
  // Bytes held for an unfinished line (never more than max_line).
  std::size_t buffered() const noexcept { return partial_.size(); }

 private:
  std::size_t max_line_;
  std::string partial_;
  bool discarding_ = false;
  bool clear_partial_ = false;
};

// A line that could not be decoded: the error and, when the line had one, the request id.
struct decode_failure {
  error err;
  std::optional<request_id> id;
};
[[noreturn]] void throw_exception_from_error(const decode_failure& f, const boost::source_location& loc);

template <class T>
using decoded = boost::system::result<T, decode_failure>;

// One line (without "\n") to a request. Unknown fields are ignored; an unknown type, a missing
// id or a field of the wrong type is a decode_failure whose error names the field.
decoded<request> decode_request(std::string_view line);
// One request to its line, "\n" included.
std::string encode(const request& r);

// One server line to a message (the client side).
decoded<server_message> decode_server_message(std::string_view line);
// One server message to its line, "\n" included.
std::string encode(const server_message& m);

}  // namespace switchboard::desk
