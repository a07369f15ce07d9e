// The seam between the desktop channel and call control: the desk part checks who asks and
// whether his state allows it, then hands the command here; the call-control layer implements
// it with the PBX link (answer, hold, transfer, ...), so the desk never knows a PBX protocol.
#pragma once

#include "switchboard/desk/protocol.hpp"
#include "switchboard/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace switchboard::desk {

// Who asks, as the desk knows him at the moment of the request.
struct operator_context {
  std::int64_t operator_id = 0;
  std::int64_t tenant_id = 0;
  std::string device;                   // his phone for this session
  std::string state;                    // presence state the desk last saw
  std::optional<std::int64_t> call_id;  // his current call, or (disposition) the call just ended
};

class command_handler {
 public:
  virtual ~command_handler() = default;
  // Carries out one command; an expected failure (PBX refused: pbx_rejected, link down:
  // pbx_link_down, call gone: call_unknown) is returned, and its message reaches the desktop.
  virtual boost::asio::awaitable<result<void>> execute(const operator_context& who, const call_command& command) = 0;
};

}  // namespace switchboard::desk
