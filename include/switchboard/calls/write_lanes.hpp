// The call centre's database writes spread over several connections ("lanes"), each operator's
// and each call's writes still applied in the order they were made. One connection applying
// every write is a serial limit near 1,000 calls/s (docs/benchmarks.md); the rows a write
// touches are its operator's presence row and its call's record, so writes that share neither
// may run at once. Pure: no I/O, no clock; the call centre's writer coroutines drive it.
#pragma once

#include "switchboard/store/call_queries.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <vector>

namespace switchboard::calls {

class write_lanes {
 public:
  // A write free of other lanes goes to the first lane with fewer than `spill` writes queued.
  explicit write_lanes(std::size_t lanes, std::size_t spill = default_spill);
  static constexpr std::size_t default_spill = 32;

  // Queues `write` on the lane that has writes of its operator or its call queued or in flight,
  // else on the first lane with fewer than `spill` queued, else on the least loaded; answers
  // that lane. When its operator is on one lane and its
  // call on another (a transfer's writes, while the first operator's are still in flight), it
  // waits until one of them is done, and every later write waits behind it: nothing overtakes.
  std::optional<std::size_t> push(store::call_write write);

  // The lane's queued writes as one batch, in their order, now in flight until done(lane).
  // Empty when nothing is queued there or its last batch is still in flight.
  std::vector<store::call_write> take(std::size_t lane);

  // The lane's batch is applied (or lost with its connection): its operators and calls are free
  // for any lane, and writes waiting behind a conflict are queued where they now can go (answers
  // how many: their lanes have work).
  std::size_t done(std::size_t lane);

  std::size_t lanes() const noexcept { return lanes_.size(); }
  std::size_t queued(std::size_t lane) const { return lanes_.at(lane).queued.size(); }
  bool in_flight(std::size_t lane) const { return lanes_.at(lane).in_flight_writes > 0; }
  std::size_t waiting() const noexcept { return waiting_.size(); }  // behind a conflict
  std::size_t pending() const noexcept;                             // queued, waiting and in flight

 private:
  struct keys {
    std::int64_t operator_id = 0;  // 0: none
    std::int64_t call_id = 0;      // 0: none
  };
  struct holder {
    std::size_t lane = 0;
    std::size_t writes = 0;  // queued or in flight there
  };
  struct lane {
    std::vector<store::call_write> queued;
    std::vector<keys> queued_keys;
    std::vector<keys> in_flight_keys;
    std::size_t in_flight_writes = 0;
  };

  static keys keys_of(const store::call_write& write);
  // The lane `k` must go to (nullopt: its operator and call are on two lanes).
  std::optional<std::size_t> lane_for(const keys& k) const;
  void hold(std::unordered_map<std::int64_t, holder>& holders, std::int64_t id, std::size_t lane);
  static void release(std::unordered_map<std::int64_t, holder>& holders, std::int64_t id);
  void queue(std::size_t lane, store::call_write write, const keys& k);

  std::vector<lane> lanes_;
  std::size_t spill_at;
  std::unordered_map<std::int64_t, holder> operators_;
  std::unordered_map<std::int64_t, holder> calls_;
  struct waiting_write {
    store::call_write write;
    keys k;  // computed once, looked at again at every done()
  };
  std::deque<waiting_write> waiting_;
};

}  // namespace switchboard::calls
