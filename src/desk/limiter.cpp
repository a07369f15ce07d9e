// Fixed-window failure counting and a token bucket; bounded maps, no clock of their own.
#include "switchboard/desk/limiter.hpp"

#include <algorithm>

namespace switchboard::desk {

bool login_limiter::blocked(const table& t, std::string_view key, int limit, steady_time now) const {
  if (key.empty()) return false;
  auto it = t.find(std::string(key));
  if (it == t.end()) return false;
  if (now - it->second.start >= limits_.window) return false;
  return it->second.failures >= limit;
}

bool login_limiter::allowed(std::string_view address, std::string_view login, steady_time now) const {
  return !blocked(by_address_, address, limits_.max_failures_per_address, now) &&
         !blocked(by_login_, login, limits_.max_failures_per_login, now);
}

void login_limiter::bump(table& t, std::string_view key, steady_time now) {
  if (key.empty()) return;
  auto [it, inserted] = t.try_emplace(std::string(key), window{now, 0});
  if (!inserted && now - it->second.start >= limits_.window) it->second = window{now, 0};
  ++it->second.failures;
  if (t.size() <= limits_.max_entries / 2) return;
  // Over the bound: forget expired windows, then the oldest ones.
  std::erase_if(t, [&](const auto& entry) { return now - entry.second.start >= limits_.window; });
  while (t.size() > limits_.max_entries / 2) {
    auto oldest = std::min_element(t.begin(), t.end(),
                                   [](const auto& a, const auto& b) { return a.second.start < b.second.start; });
    t.erase(oldest);
  }
}

void login_limiter::record_failure(std::string_view address, std::string_view login, steady_time now) {
  bump(by_address_, address, now);
  bump(by_login_, login, now);
}

void login_limiter::record_success(std::string_view login) { by_login_.erase(std::string(login)); }

bool request_bucket::take(steady_time now) {
  const std::chrono::duration<double> elapsed = now - last_;
  last_ = now;
  tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace switchboard::desk
