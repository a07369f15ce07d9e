// libFuzzer target: arbitrary text as CSTA XML; decoding must give a message or a defined error,
// and whatever decodes must survive encode -> decode unchanged.
#include "switchboard/csta/codec.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard;
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  auto decoded = csta::decode(xml);
  if (!decoded) {
    if (!decoded.error().is(errc::message_malformed)) std::abort();
    return 0;
  }
  if (std::holds_alternative<csta::unknown_message>(*decoded)) return 0;
  auto again = csta::decode(csta::encode(*decoded));
  if (!again || !(*again == *decoded)) std::abort();
  return 0;
}
