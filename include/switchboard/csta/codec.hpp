// CSTA XML <-> typed messages (messages.hpp). Sans-I/O and stateless: pure functions of their
// arguments, so the link, the simulator and the fuzzers share them.
//
// Decoding parses by local name: the ed2..ed6 ECMA-323 namespaces, the ECMA-354 one, a prefix
// (<csta:MakeCall xmlns:csta="...">) or no namespace at all are all accepted; elements the model
// does not know (extensions, private data, optional CSTA fields) are skipped. Encoding emits
// the children in the schema's order in the configured edition's default namespace
// (ECMA-354 messages in their own namespace).
#pragma once

#include "switchboard/csta/messages.hpp"
#include "switchboard/error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace switchboard::csta {

enum class edition { ed2, ed3, ed4, ed5, ed6 };

// "http://www.ecma-international.org/standards/ecma-323/csta/ed3" for edition::ed3, ...
std::string_view namespace_of(edition e) noexcept;
inline constexpr std::string_view application_session_namespace =
    "http://www.ecma-international.org/standards/ecma-354/appl_session";

// Parses "ed3" (or a full ECMA-323 namespace URI) into an edition.
std::optional<edition> parse_edition(std::string_view text) noexcept;

struct encode_options {
  edition emit = edition::ed3;
  bool xml_declaration = true;  // <?xml version="1.0" encoding="UTF-8"?> first
};

// One XML document to a message.
//   - a root element the model does not know: unknown_message{name} (a value, not an error);
//   - not well-formed XML, or no root element: errc::message_malformed, detail names the cause;
//   - a mandatory element missing or a value of the wrong form: errc::message_malformed, detail
//     names the message and the element ("MakeCall: missing callingDevice").
result<message> decode(std::string_view xml);

// Appends the XML of `m` to `out`. An unknown_message encodes as an empty element of its name.
void encode(const message& m, std::string& out, const encode_options& options = {});
std::string encode(const message& m, const encode_options& options = {});

// Appends one whole frame (header + XML) to `out`; errors as append_frame (framer.hpp).
result<void> encode_frame(const message& m, int invoke_id, std::string& out, const encode_options& options = {},
                          std::size_t max_frame_size = 65535);

}  // namespace switchboard::csta
