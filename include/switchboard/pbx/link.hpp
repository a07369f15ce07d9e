// The one interface between Switchboard and a PBX: commands are awaitables that return a
// result, events arrive through one handler on the event loop. CSTA and AMI implement it.
#pragma once

#include "switchboard/error.hpp"
#include "switchboard/pbx/commands.hpp"
#include "switchboard/pbx/events.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <vector>

namespace switchboard::pbx {

// A live link to one PBX.
//
// Threading: the link runs on one executor (the event loop that owns call state). The event
// handler is called on that executor, one event at a time, in the order the PBX sent them;
// commands must be awaited from coroutines on that same executor.
//
// Events: a plain handler, set once before start(). It must not block; it may co_spawn work.
// The handler sees link_up when the link is ready, link_down when it is lost (every command in
// flight has then failed with errc::pbx_link_down), and after each reconnect one `resynced`
// per monitored device. A handler is simpler for a single-threaded owner than a channel: no
// reader coroutine, no back-pressure to tune, and events cannot pile up unseen.
//
// Commands: each `execute` overload sends one request and waits for the PBX's answer, within
// the driver's configured deadline. Errors: errc::pbx_link_down (not connected, or lost while
// waiting), errc::pbx_timeout (no answer in time), errc::pbx_rejected (the PBX said no; its
// error text is in error::detail).
class pbx_link {
 public:
  using event_handler = std::function<void(const event&)>;

  virtual ~pbx_link() = default;

  virtual boost::asio::any_io_executor get_executor() const = 0;

  // Sets the one event handler; call before start().
  virtual void on_event(event_handler handler) = 0;
  // Connects in the background and keeps reconnecting until stop().
  virtual void start() = 0;
  // Closes the link; commands in flight fail with pbx_link_down. No events after this.
  virtual void stop() = 0;
  // True between link_up and link_down.
  virtual bool is_up() const noexcept = 0;

  virtual boost::asio::awaitable<result<void>> execute(route_select cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(route_end cmd) = 0;
  // The new call's connection at `from`.
  virtual boost::asio::awaitable<result<connection_id>> execute(make_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(answer_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(clear_connection cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(hold_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(retrieve_call cmd) = 0;
  // The consultation call's connection at the consulting device.
  virtual boost::asio::awaitable<result<connection_id>> execute(consult_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(transfer_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(conference_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(deflect_call cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(single_step_transfer cmd) = 0;
  virtual boost::asio::awaitable<result<void>> execute(set_operator_state cmd) = 0;
  virtual boost::asio::awaitable<result<std::vector<snapshot_entry>>> execute(snapshot_device cmd) = 0;
};

}  // namespace switchboard::pbx
