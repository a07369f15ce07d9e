#include "switchboard/calls/write_lanes.hpp"

#include <algorithm>
#include <type_traits>
#include <variant>

namespace switchboard::calls {

write_lanes::write_lanes(std::size_t lanes, std::size_t spill)
    : lanes_(std::max<std::size_t>(lanes, 1)), spill_at(std::max<std::size_t>(spill, 1)) {}

write_lanes::keys write_lanes::keys_of(const store::call_write& write) {
  return std::visit(
      [](const auto& w) -> keys {
        using T = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<T, store::presence_move>)
          return {.operator_id = w.operator_id, .call_id = w.call_id.value_or(0)};
        else if constexpr (std::is_same_v<T, store::call_answered>)
          return {.operator_id = w.operator_id, .call_id = w.call_id};
        else if constexpr (std::is_same_v<T, store::call_journal_entry>)
          return {.operator_id = w.operator_id.value_or(0), .call_id = w.call_id};
        else
          return {.operator_id = 0, .call_id = w.call_id};
      },
      write);
}

std::optional<std::size_t> write_lanes::lane_for(const keys& k) const {
  std::optional<std::size_t> by_operator;
  std::optional<std::size_t> by_call;
  if (auto it = operators_.find(k.operator_id); k.operator_id != 0 && it != operators_.end())
    by_operator = it->second.lane;
  if (auto it = calls_.find(k.call_id); k.call_id != 0 && it != calls_.end()) by_call = it->second.lane;
  if (by_operator && by_call && *by_operator != *by_call) return std::nullopt;
  if (by_operator) return by_operator;
  if (by_call) return by_call;
  // Free of both: the first lane with fewer than spill_at writes queued, so that a quiet call
  // centre keeps one connection warm and its batches whole (spreading its writes over two
  // connections cost each call 11-69 % more of PostgreSQL's CPU in bench_writes); past that,
  // the least loaded.
  std::size_t least = 0;
  const auto load = [this](std::size_t l) { return lanes_[l].queued.size() + lanes_[l].in_flight_writes; };
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i].queued.size() < spill_at) return i;
    if (load(i) < load(least)) least = i;
  }
  return least;
}

void write_lanes::hold(std::unordered_map<std::int64_t, holder>& holders, std::int64_t id, std::size_t lane) {
  if (id == 0) return;
  auto& h = holders[id];
  h.lane = lane;
  ++h.writes;
}

void write_lanes::release(std::unordered_map<std::int64_t, holder>& holders, std::int64_t id) {
  if (id == 0) return;
  auto it = holders.find(id);
  if (it != holders.end() && --it->second.writes == 0) holders.erase(it);
}

void write_lanes::queue(std::size_t lane, store::call_write write, const keys& k) {
  hold(operators_, k.operator_id, lane);
  hold(calls_, k.call_id, lane);
  lanes_[lane].queued.push_back(std::move(write));
  lanes_[lane].queued_keys.push_back(k);
}

std::optional<std::size_t> write_lanes::push(store::call_write write) {
  const keys k = keys_of(write);
  const auto lane = waiting_.empty() ? lane_for(k) : std::nullopt;  // nothing overtakes a waiting write
  if (!lane) {
    waiting_.push_back({std::move(write), k});
    return std::nullopt;
  }
  queue(*lane, std::move(write), k);
  return lane;
}

std::vector<store::call_write> write_lanes::take(std::size_t lane) {
  auto& l = lanes_.at(lane);
  if (l.in_flight_writes > 0) return {};
  std::vector<store::call_write> batch = std::move(l.queued);
  l.queued.clear();
  l.in_flight_keys = std::move(l.queued_keys);
  l.queued_keys.clear();
  l.in_flight_writes = batch.size();
  return batch;
}

std::size_t write_lanes::done(std::size_t lane) {
  auto& l = lanes_.at(lane);
  for (const auto& k : l.in_flight_keys) {
    release(operators_, k.operator_id);
    release(calls_, k.call_id);
  }
  l.in_flight_keys.clear();
  l.in_flight_writes = 0;
  std::size_t moved = 0;
  while (!waiting_.empty()) {
    auto& front = waiting_.front();
    const auto to = lane_for(front.k);
    if (!to) break;
    queue(*to, std::move(front.write), front.k);
    waiting_.pop_front();
    ++moved;
  }
  return moved;
}

std::size_t write_lanes::pending() const noexcept {
  std::size_t n = waiting_.size();
  for (const auto& l : lanes_) n += l.queued.size() + l.in_flight_writes;
  return n;
}

}  // namespace switchboard::calls
