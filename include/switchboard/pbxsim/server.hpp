// The simulated PBX on the network: a CSTA-XML server (ECMA-323 framing) around the call model
// and the generator, with fault switches, usable in-process from tests and from the executable.
#pragma once

#include "switchboard/csta/codec.hpp"
#include "switchboard/pbxsim/generator.hpp"
#include "switchboard/pbxsim/model.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace switchboard::pbxsim {

// How a CTI client opens its session (see docs/pbxsim.md).
enum class session_style {
  system_status,        // the PBX sends SystemStatus (heartbeat, answered with the same invoke id);
                        // the client may SystemRegister. Siemens/Unify style.
  application_session,  // ECMA-354 StartApplicationSession, kept alive by ResetApplicationSessionTimer.
};

struct server_config {
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see simulator::port())
  session_style style = session_style::system_status;
  csta::edition edition = csta::edition::ed3;
  // system_status style: the PBX's SystemStatus heartbeat, and how many may go unanswered
  // before it drops the link.
  std::chrono::milliseconds heartbeat_interval{5000};
  int heartbeat_misses = 2;
  // application_session style: the longest session duration granted (seconds on the wire).
  std::chrono::seconds max_session_duration{180};
  // Frames queued for one client before it is disconnected as too slow.
  std::size_t outbox_limit = 20000;
  // The longest the simulated clock sleeps while nothing is due (wakes earlier for timers).
  std::chrono::milliseconds max_tick{50};
};

// Observers of the wire for measurements (switchboard-bench): `sent` sees each message when it is
// queued for a client, `received` each message a client sent, when it has been decoded. Both run
// on the simulator's thread and must be quick.
struct wire_tap {
  std::function<void(const csta::message&)> sent;
  std::function<void(const csta::message&)> received;
};

struct simulator_config {
  model_config model;
  std::optional<generator_config> generator;  // std::nullopt: calls only on offer()
  server_config server;
  wire_tap tap;
};

// Counts from the server side, beside model_stats.
struct link_stats {
  std::uint64_t sessions_accepted = 0;
  std::uint64_t sessions_open = 0;
  std::uint64_t requests = 0;
  std::uint64_t events_sent = 0;
  std::uint64_t errors_sent = 0;  // CSTAErrorCode answers
  std::uint64_t slow_consumers = 0;
};

enum class malformed_kind {
  bad_header,  // a header that is not 00 00 <len> <4 digits>: the stream loses sync
  bad_xml,     // a correct header around XML that does not parse
};

// One simulated PBX. Single-threaded: construct, steer and destroy it on the thread that runs
// its executor (an io_context run by one thread).
class simulator {
 public:
  simulator(boost::asio::any_io_executor executor, simulator_config config);
  ~simulator();
  simulator(const simulator&) = delete;
  simulator& operator=(const simulator&) = delete;

  // Binds the listening socket (throws boost::system::system_error when it cannot) and starts
  // accepting clients, the clock and the generator.
  void start();
  // Closes every session and the listener; pending work ends on the executor.
  void stop();
  // The bound port (after start()).
  std::uint16_t port() const;

  const model_stats& stats() const;
  const link_stats& links() const;
  call_model& model();
  // Simulated time now (milliseconds since start()).
  sim_time now() const;

  // ---- steering (tests, control port) --------------------------------------------------------
  void set_rate(double calls_per_second);
  double rate() const;
  // One outside call now; the caller is sampled when `call.caller` is empty. Returns the call id.
  std::optional<std::string> offer(inbound_call call);
  bool hang_up(const std::string& call_id);

  // ---- faults --------------------------------------------------------------------------------
  // Closes every CTI connection and refuses new ones for `how_long`.
  void drop_link(std::chrono::milliseconds how_long);
  // Stops (true) or resumes sending SystemStatus heartbeats and answering the client's
  // SystemStatus, RequestSystemStatus and ResetApplicationSessionTimer.
  void silence_heartbeats(bool silent);
  // Sends every response this much later (events are not delayed).
  void delay_responses(std::chrono::milliseconds delay);
  // Leaves the next `count` requests unanswered; only requests of that XML name if given.
  void withhold_responses(int count, std::string message_name = {});
  // Writes one malformed frame to every client.
  void send_malformed(malformed_kind kind);

 private:
  friend struct session;  // one CTI connection (server.cpp)
  struct state;
  std::shared_ptr<state> state_;
};

namespace detail {
// Opens, binds and listens (throws boost::system::system_error): the CSTA and control ports.
void listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address, std::uint16_t port);
}  // namespace detail

}  // namespace switchboard::pbxsim
