// LISTEN/NOTIFY delivered into the event loop. One dedicated connection (no transactions on
// it); the loop waits for its socket to be readable, never blocking. When the server goes away
// the listener reconnects with backoff and says so through `on_reconnected`, because
// notifications sent in the gap are lost and the owner must re-read its state.
#pragma once

#include "switchboard/store/pool.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace switchboard::store {

struct notification {
  std::string channel;
  std::string payload;
};

class notification_listener {
 public:
  using notify_handler = std::function<void(const notification&)>;
  using reconnect_handler = std::function<void()>;

  // `loop` is the event loop that receives the callbacks; `blocking` runs the connect
  // (never the loop); the listener is idle until `start`.
  notification_listener(boost::asio::any_io_executor loop, boost::asio::any_io_executor blocking, pool_config config,
                        std::vector<std::string> channels, notify_handler on_notify,
                        reconnect_handler on_reconnected = {});
  ~notification_listener();
  notification_listener(const notification_listener&) = delete;
  notification_listener& operator=(const notification_listener&) = delete;

  void start();
  void stop();

  // True while LISTEN is active on a live connection.
  bool listening() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::store
