// The CSTA binary-header framer: a length-prefix loop with every size checked before use.
#include "switchboard/csta/framer.hpp"

namespace switchboard::csta {

framer::framer(std::size_t max_frame_size)
    : max_frame_size_(max_frame_size < frame_header_size
                          ? frame_header_size
                          : (max_frame_size > max_frame_size_limit ? max_frame_size_limit : max_frame_size)) {}

void framer::feed(std::string_view bytes) {
  // Drop consumed bytes first so the buffer never holds more than one frame plus this feed.
  if (start_ > 0) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(bytes);
}

void framer::reset() {
  buffer_.clear();
  start_ = 0;
  failure_.reset();
}

result<std::optional<frame>> framer::next() {
  if (failure_) return *failure_;
  const std::size_t available = buffer_.size() - start_;
  if (available < frame_header_size) return std::optional<frame>{};
  const auto* h = reinterpret_cast<const unsigned char*>(buffer_.data() + start_);
  if (h[0] != 0 || h[1] != 0) {
    failure_ = error(errc::frame_malformed, "header does not start with 00 00");
    return *failure_;
  }
  const std::size_t length = (std::size_t{h[2]} << 8) | h[3];
  if (length < frame_header_size) {
    failure_ = error(errc::frame_malformed, "length " + std::to_string(length) + " is shorter than the header");
    return *failure_;
  }
  if (length > max_frame_size_) {
    failure_ =
        error(errc::frame_too_large, std::to_string(length) + " bytes, limit " + std::to_string(max_frame_size_));
    return *failure_;
  }
  int invoke = 0;
  for (std::size_t i = 4; i < 8; ++i) {
    if (h[i] < '0' || h[i] > '9') {
      failure_ = error(errc::frame_malformed, "invoke id is not 4 decimal digits");
      return *failure_;
    }
    invoke = invoke * 10 + (h[i] - '0');
  }
  if (available < length) return std::optional<frame>{};
  frame f{invoke, std::string_view(buffer_).substr(start_ + frame_header_size, length - frame_header_size)};
  start_ += length;
  return std::optional<frame>{f};
}

result<std::array<char, frame_header_size>> frame_header(int invoke_id, std::size_t xml_size,
                                                         std::size_t max_frame_size) {
  if (invoke_id < 0 || invoke_id > 9999) {
    return error(errc::frame_malformed, "invoke id " + std::to_string(invoke_id) + " is outside 0000..9999");
  }
  const std::size_t length = xml_size + frame_header_size;
  const std::size_t limit = max_frame_size > max_frame_size_limit ? max_frame_size_limit : max_frame_size;
  if (length > limit) {
    return error(errc::frame_too_large, std::to_string(length) + " bytes, limit " + std::to_string(limit));
  }
  return std::array<char, frame_header_size>{0,
                                             0,
                                             static_cast<char>((length >> 8) & 0xff),
                                             static_cast<char>(length & 0xff),
                                             static_cast<char>('0' + invoke_id / 1000),
                                             static_cast<char>('0' + invoke_id / 100 % 10),
                                             static_cast<char>('0' + invoke_id / 10 % 10),
                                             static_cast<char>('0' + invoke_id % 10)};
}

result<void> append_frame(std::string& out, int invoke_id, std::string_view xml, std::size_t max_frame_size) {
  auto header = frame_header(invoke_id, xml.size(), max_frame_size);
  if (!header) return header.error();
  out.append(header->data(), header->size());
  out.append(xml);
  return {};
}

}  // namespace switchboard::csta
