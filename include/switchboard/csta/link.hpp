// csta_link: the pbx_link over CSTA XML on TCP (optionally TLS). A state machine (link_state)
// run by one coroutine; a reader and a writer coroutine per connection alone touch the socket.
#pragma once

#include "switchboard/csta/codec.hpp"
#include "switchboard/csta/invoke_table.hpp"
#include "switchboard/csta/messages.hpp"
#include "switchboard/pbx/link.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace switchboard::csta {

// How the link opens its session with the PBX.
enum class session_style {
  // The PBX sends SystemStatus (answered with its own invoke id); we send SystemRegister. Our
  // heartbeat is RequestSystemStatus. OpenScape Voice, most CSTA-XML switches.
  system_status,
  // ECMA-354: StartApplicationSession, then ResetApplicationSessionTimer as the keep-alive
  // (every half session duration or heartbeat_interval, whichever is shorter). Avaya DMCC.
  application_session,
};

// Every setting of a CSTA link, with working defaults; the app maps its JSON onto it.
struct link_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 1040;
  bool tls = false;
  bool tls_verify = true;   // check the PBX's certificate against the system CAs / tls_ca_file
  std::string tls_ca_file;  // extra CA bundle (PEM); empty: system default paths only

  session_style session = session_style::system_status;
  edition emit = edition::ed3;                 // namespace of what we send
  std::string application_id = "switchboard";  // ECMA-354 applicationID
  std::chrono::seconds session_duration{180};  // ECMA-354 requestedSessionDuration

  std::vector<std::string> devices;       // operator extensions: MonitorStart + SnapshotDevice
  std::vector<std::string> route_points;  // RouteRegister + MonitorStart + SnapshotDevice

  std::chrono::milliseconds connect_timeout{5000};      // TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{5000};      // any request waiting for its response
  std::chrono::milliseconds write_timeout{5000};        // one frame onto the socket
  std::chrono::milliseconds heartbeat_interval{15000};  // we send a heartbeat request this often
  int heartbeat_misses = 3;                             // no byte from the PBX for misses x interval: link down
  std::chrono::milliseconds reconnect_initial{500};     // first backoff; doubles per failure
  std::chrono::milliseconds reconnect_max{30000};       // backoff cap
  std::size_t max_frame_size = 65535;                   // larger inbound frames drop the link
  std::size_t outbox_limit = 1024;                      // frames queued for the writer at most

  // A problem with the values ("heartbeat_misses must be at least 1"), or empty when valid.
  std::string validate() const;
};

// The link's life; one coroutine switches over it.
enum class link_state { connecting, opening_session, registering, resyncing, up, lost, backing_off, stopped };
std::string_view to_string(link_state s) noexcept;

class csta_link final : public pbx::pbx_link, public std::enable_shared_from_this<csta_link> {
 public:
  // Links live in a shared_ptr: their coroutines keep them alive until stop() ends them.
  static std::shared_ptr<csta_link> create(boost::asio::any_io_executor executor, link_config config);
  ~csta_link() override;

  boost::asio::any_io_executor get_executor() const override { return executor_; }
  void on_event(event_handler handler) override { handler_ = std::move(handler); }
  void start() override;
  void stop() override;
  bool is_up() const noexcept override { return state_ == link_state::up || state_ == link_state::resyncing; }
  link_state state() const noexcept { return state_; }
  const link_config& config() const noexcept { return config_; }

  boost::asio::awaitable<result<void>> execute(pbx::route_select cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::route_end cmd) override;
  boost::asio::awaitable<result<pbx::connection_id>> execute(pbx::make_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::answer_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::clear_connection cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::hold_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::retrieve_call cmd) override;
  boost::asio::awaitable<result<pbx::connection_id>> execute(pbx::consult_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::transfer_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::conference_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::deflect_call cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::single_step_transfer cmd) override;
  boost::asio::awaitable<result<void>> execute(pbx::set_operator_state cmd) override;
  boost::asio::awaitable<result<std::vector<pbx::snapshot_entry>>> execute(pbx::snapshot_device cmd) override;

  // Sends any CSTA request and waits for its response (or CSTAErrorCode -> pbx_rejected).
  boost::asio::awaitable<result<message>> request(message m);

 private:
  struct connection;
  struct waiter;

  csta_link(boost::asio::any_io_executor executor, link_config config);

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<result<void>> connect();
  boost::asio::awaitable<result<void>> open_session();
  boost::asio::awaitable<result<void>> register_devices();
  boost::asio::awaitable<void> resync();
  boost::asio::awaitable<void> read_loop(std::shared_ptr<connection> c);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<connection> c);
  boost::asio::awaitable<void> heartbeat_loop(std::shared_ptr<connection> c);
  boost::asio::awaitable<void> watchdog(std::shared_ptr<connection> c);
  boost::asio::awaitable<result<message>> send_request(message m, bool only_when_up);
  template <class Response>
  boost::asio::awaitable<result<Response>> call(message m, bool only_when_up = true);

  void handle(int invoke_id, message m);
  void handle_from_switch(int invoke_id, message& m);
  result<void> enqueue(int invoke_id, const message& m);
  result<void> send_unanswered(const message& m);
  void lose(const std::shared_ptr<connection>& c, error reason);
  void fail_waiters(const error& reason);
  void emit(const pbx::event& e);
  std::vector<std::string> monitored_devices() const;

  boost::asio::any_io_executor executor_;
  link_config config_;
  event_handler handler_;
  link_state state_ = link_state::stopped;
  bool stopping_ = false;
  std::shared_ptr<connection> connection_;
  std::unique_ptr<boost::asio::steady_timer> wake_;  // backoff and "link lost" wake-up of run()
  std::optional<error> lost_reason_;
  std::chrono::milliseconds backoff_;
  detail::invoke_table<std::shared_ptr<waiter>> pending_;
  std::map<std::string, std::string> route_registrations_;  // routeRegisterReqID -> route point
  std::set<std::string> open_dialogs_;                      // routing dialogs the PBX has not ended
  std::string session_id_;
  bool announced_up_ = false;
};

}  // namespace switchboard::csta
