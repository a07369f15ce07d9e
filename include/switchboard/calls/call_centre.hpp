// The call-control layer: ties the PBX link, the router and the desktops together on the event
// loop. PBX events go through the call tracker and become presence moves, call records, desktop
// updates and router notifications; the router's decisions become PBX commands and screen pops;
// operators' desktop commands become PBX commands. Database writes are queued in order and
// applied in batches off the loop.
#pragma once

#include "switchboard/calls/call_tracker.hpp"
#include "switchboard/calls/call_writer.hpp"
#include "switchboard/calls/write_lanes.hpp"
#include "switchboard/desk/command_handler.hpp"
#include "switchboard/desk/hub.hpp"
#include "switchboard/pbx/link.hpp"
#include "switchboard/routing/router.hpp"
#include "switchboard/routing/sink.hpp"
#include "switchboard/store/call_queries.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace switchboard::store {
class connection_pool;
}

namespace switchboard::calls {

struct call_centre_config {
  std::string node;                            // this node, as in presence.node and calls.node
  std::chrono::seconds ring_no_answer{20};     // a ringing operator who does not answer: not ready
  std::chrono::seconds default_wrap_up{10};    // when the call's queue is unknown
  std::size_t max_queued_writes = 200'000;     // beyond this the database is far behind: log loudly
  std::chrono::milliseconds stats_push{1000};  // supervisors' queue figures: at most this often, when changed
  // Batches of writes applied at once, each on its own connection of the writes lane (see
  // write_lanes.hpp); at most the lane's connections, or they wait for one another.
  std::size_t write_lanes = 1;
  std::size_t write_spill = write_lanes::default_spill;  // queued on the first lane before the next is used
};

// Counters for tests, logs and /health.
struct call_centre_counters {
  std::uint64_t pbx_events = 0;
  std::uint64_t calls_ended = 0;
  std::uint64_t pbx_command_errors = 0;
};

class call_centre final : public routing::decision_sink, public desk::command_handler {
 public:
  call_centre(boost::asio::any_io_executor loop, store::connection_pool& pool, pbx::pbx_link& link,
              call_centre_config config);
  ~call_centre() override;
  call_centre(const call_centre&) = delete;
  call_centre& operator=(const call_centre&) = delete;

  // The router and the desk hub are built with this object (as sink and command handler), so
  // they are attached afterwards, before start().
  void attach(routing::router& router, desk::hub& hub);
  // Subscribes to PBX events, loads logged-in devices and queue settings, starts the writer.
  void start();
  void stop();

  // Start-up after a stop or crash, in this order: hold_offers() before the PBX link starts
  // (route requests wait; the operators' phones are known when it returns); once the link's snapshots are in,
  // resume_calls() gives the calls still live at the PBX their records (the open ones of this node, else new ones) and
  // their operators back, and returns those records, for the reconciliation that closes the rest; then release_offers()
  // routes the requests that waited.
  boost::asio::awaitable<void> hold_offers();
  boost::asio::awaitable<std::vector<std::int64_t>> resume_calls();
  void release_offers();

  // NOTIFY presence (any node): refresh the operator's device, tell his desktop, and hand him a
  // waiting call when he became ready.
  void presence_changed(std::int64_t operator_id, const std::string& state);
  // The payload of NOTIFY presence (the row, or at least {"operator_id": .., "state": ..});
  // ignores anything else.
  void presence_notification(const std::string& payload);

  // routing::decision_sink
  void route_select(const routing::route_select_answer& answer) override;
  void route_end(const routing::route_end_answer& answer) override;
  void offer_to_operator(const routing::operator_offer& offer) override;
  void redirect_waiting(const routing::waiting_redirect& redirect) override;
  void adopt_late_record(const routing::late_record& record) override;

  // desk::command_handler
  boost::asio::awaitable<result<void>> execute(const desk::operator_context& who,
                                               const desk::call_command& command) override;

  const call_tracker& tracker() const noexcept;
  const call_centre_counters& counters() const noexcept;
  // Writes queued and not yet applied (tests wait for 0).
  std::size_t pending_writes() const noexcept;
  // After stop(): waits until every write made is applied (or failed), at most `limit`;
  // answers whether none is left. The process ends after it, so that nothing queued is lost.
  boost::asio::awaitable<bool> drained(std::chrono::milliseconds limit);
  const write_counters& write_counts() const noexcept;

 private:
  // What follows an operator's new state here: his device, and a waiting call when ready.
  void follow_presence(std::int64_t operator_id, const std::string& state);

  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::calls
