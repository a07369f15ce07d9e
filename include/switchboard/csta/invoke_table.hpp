// Pairs CSTA requests with their responses by invoke id: a pure table, no I/O and no clock, so
// the allocation and wrap-around rules are unit-tested on their own.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace switchboard::csta::detail {

// Invoke ids 0000..9998 are ours, in turn, wrapping around and skipping ids still in flight;
// 9999 belongs to events. `T` is what the link keeps per request (its waiter).
template <class T>
class invoke_table {
 public:
  static constexpr int first_id = 0;
  static constexpr int last_id = 9998;
  static constexpr std::size_t capacity = last_id - first_id + 1;

  // Reserves the next free id for `value`; std::nullopt when every id is in flight.
  std::optional<int> open(T value) {
    if (open_.size() >= capacity) return std::nullopt;
    while (open_.count(next_) != 0) advance();
    const int id = next_;
    advance();
    open_.emplace(id, std::move(value));
    return id;
  }

  // Removes and returns the request waiting on `id`, if any (a response, or a timeout).
  std::optional<T> take(int id) {
    const auto found = open_.find(id);
    if (found == open_.end()) return std::nullopt;
    T value = std::move(found->second);
    open_.erase(found);
    return value;
  }

  bool contains(int id) const { return open_.count(id) != 0; }
  std::size_t size() const noexcept { return open_.size(); }

  // Removes every request (the link is lost) and returns them in id order.
  std::vector<T> take_all() {
    std::vector<T> all;
    all.reserve(open_.size());
    for (auto& [id, value] : open_) all.push_back(std::move(value));
    open_.clear();
    return all;
  }

 private:
  void advance() { next_ = next_ == last_id ? first_id : next_ + 1; }

  int next_ = first_id;
  std::map<int, T> open_;
};

}  // namespace switchboard::csta::detail
