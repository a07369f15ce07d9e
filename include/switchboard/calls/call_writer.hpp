// The call centre's database writes (presence moves driven by the phone, call records, the
// journal), applied in batches by one writer coroutine per lane of write_lanes, each on its own
// connection of the pool's writes lane: each operator's and each call's writes in their order,
// the others side by side. Lives on the event loop; never blocks it.
#pragma once

#include "switchboard/calls/write_lanes.hpp"
#include "switchboard/store/call_queries.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace switchboard::store {
class connection_pool;
}

namespace switchboard::calls {

// Each write counted once: applied, refused or failed.
struct write_counters {
  std::uint64_t applied = 0;
  std::uint64_t refused = 0;           // presence moves whose `from` no longer matched (not an error)
  std::uint64_t failed = 0;            // refused by PostgreSQL, or lost with the connection
  std::vector<std::uint64_t> batches;  // applied (not lost) by each lane's writer
};

class call_writer {
 public:
  // `lanes` writers (at least one; more than the pool's writes lane has connections only wait),
  // the next used once `spill` writes are queued on those before it (write_lanes). Beyond
  // `max_queued` writes pending the database is far behind: logged loudly, once.
  call_writer(boost::asio::any_io_executor loop, store::connection_pool& pool, std::size_t lanes,
              std::size_t max_queued, std::size_t spill = write_lanes::default_spill);

  void start();  // spawns the writers
  void write(store::call_write write);
  void stop();  // the writers end once every write is applied (or lost)

  std::size_t pending() const noexcept;  // queued, waiting or in flight
  const write_counters& counters() const noexcept;

 private:
  struct state;
  std::shared_ptr<state> state_;  // shared with the writer coroutines, which may outlive this object
};

}  // namespace switchboard::calls
