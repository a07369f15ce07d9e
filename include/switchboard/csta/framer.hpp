// CSTA-XML over TCP framing (ECMA-323 Annex J style): an 8-byte header, then the XML. Sans-I/O:
// bytes in, frames out, no sockets or clocks, so it is tested byte by byte and fuzzed.
//
//   offset 0-1: 0x00 0x00   2-3: total length incl. header, big-endian   4-7: invoke id, 4 ASCII digits
#pragma once

#include "switchboard/error.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::csta {

inline constexpr std::size_t frame_header_size = 8;
// The largest frame the 16-bit length can describe.
inline constexpr std::size_t max_frame_size_limit = 65535;
// Invoke id of unsolicited events; requests use 0000..9998.
inline constexpr int event_invoke_id = 9999;

struct frame {
  int invoke_id = 0;
  std::string_view xml;  // valid until the next feed(), reset() or the framer's destruction
};

// Splits a byte stream into frames. Feed bytes as they arrive, in any split, then call next()
// until it returns no frame. A bad header is an error after which the stream has lost sync:
// every later next() returns the same error until reset(); a link drops the connection.
class framer {
 public:
  // Frames longer than `max_frame_size` (header included) are rejected with frame_too_large.
  explicit framer(std::size_t max_frame_size = max_frame_size_limit);

  // Appends received bytes. Memory stays bounded when next() is drained after each feed: at most
  // one incomplete frame (<= max_frame_size) plus the bytes of one feed are held.
  void feed(std::string_view bytes);

  // The next complete frame; std::nullopt when more bytes are needed; errc::frame_malformed
  // (header not 00 00, length below 8, invoke id not 4 digits) or errc::frame_too_large.
  result<std::optional<frame>> next();

  // Forgets buffered bytes and any error (for a new connection).
  void reset();

  std::size_t buffered() const noexcept { return buffer_.size() - start_; }
  std::size_t max_frame_size() const noexcept { return max_frame_size_; }

 private:
  std::string buffer_;
  std::size_t start_ = 0;  // first unconsumed byte
  std::size_t max_frame_size_;
  std::optional<error> failure_;
};

// The 8-byte header of a frame carrying `xml_size` bytes of XML; errors as append_frame.
result<std::array<char, frame_header_size>> frame_header(int invoke_id, std::size_t xml_size,
                                                         std::size_t max_frame_size = max_frame_size_limit);

// Appends one frame (header + xml) to `out`. errc::frame_too_large when the frame would exceed
// `max_frame_size`; errc::frame_malformed when invoke_id is outside 0..9999.
result<void> append_frame(std::string& out, int invoke_id, std::string_view xml,
                          std::size_t max_frame_size = max_frame_size_limit);

}  // namespace switchboard::csta
