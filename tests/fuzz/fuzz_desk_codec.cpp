// libFuzzer target for the desktop codec: arbitrary bytes through the framer (split where the
// input says) and every line through both decoders; whatever decodes must re-encode and decode
// to the same line.
#include "switchboard/desk/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace switchboard::desk;

namespace {

void check_line(std::string_view line) {
  if (auto r = decode_request(line)) {
    auto text = encode(*r);
    auto again = decode_request(std::string_view(text).substr(0, text.size() - 1));
    if (!again || encode(*again) != text) std::abort();
  }
  if (auto m = decode_server_message(line)) {
    auto text = encode(*m);
    auto again = decode_server_message(std::string_view(text).substr(0, text.size() - 1));
    if (!again || encode(*again) != text) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // first byte: the line limit (small limits reach the too-long paths) and the split step
  const std::size_t max_line = 16 + static_cast<std::size_t>(data[0]) * 16;
  const std::size_t step = 1 + data[0] % 13;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  line_framer framer(max_line);
  while (!rest.empty()) {
    auto piece = rest.substr(0, step);
    rest.remove_prefix(piece.size());
    while (true) {
      auto f = framer.next(piece);
      if (framer.buffered() > max_line) std::abort();
      if (f.what == line_framer::status::need_more) break;
      if (f.what == line_framer::status::line) {
        if (f.line.size() > max_line) std::abort();
        check_line(f.line);
      }
    }
  }
  return 0;
}
