// libFuzzer target: arbitrary bytes through the CSTA framer, fed in two arbitrary pieces; it must
// never crash, never return a frame longer than the limit, and stop at the first error.
#include "switchboard/csta/framer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard::csta;
  if (size == 0) return 0;
  const std::size_t cut = data[0] % size;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  framer f(1024);
  for (const auto piece : {bytes.substr(0, cut), bytes.substr(cut)}) {
    f.feed(piece);
    for (;;) {
      auto next = f.next();
      if (!next) return 0;  // a defined error: the link would drop the connection
      if (!*next) break;
      if ((*next)->xml.size() + frame_header_size > f.max_frame_size()) std::abort();
      if ((*next)->invoke_id < 0 || (*next)->invoke_id > 9999) std::abort();
    }
  }
  return 0;
}
