// Pure rate limiters for the desktop channel (no clock, no I/O: the caller passes `now`), so
// their edges are unit-tested: failed logins per source address and per login, and a token
// bucket for requests per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace switchboard::desk {

using steady_time = std::chrono::steady_clock::time_point;

class login_limiter {
 public:
  struct limits {
    int max_failures_per_login = 5;
    int max_failures_per_address = 20;
    std::chrono::seconds window{300};
    std::size_t max_entries = 100000;  // memory bound: oldest windows are forgotten first
  };

  explicit login_limiter(limits l) : limits_(l) {}

  // False while `address` or `login` ("" = not counted) has used up its failures in the window.
  bool allowed(std::string_view address, std::string_view login, steady_time now) const;
  void record_failure(std::string_view address, std::string_view login, steady_time now);
  // A good password clears the login's count (not the address's: one address may guess many logins).
  void record_success(std::string_view login);

  std::size_t entries() const noexcept { return by_address_.size() + by_login_.size(); }

 private:
  struct window {
    steady_time start;
    int failures = 0;
  };
  using table = std::unordered_map<std::string, window>;

  bool blocked(const table& t, std::string_view key, int limit, steady_time now) const;
  void bump(table& t, std::string_view key, steady_time now);

  limits limits_;
  table by_address_;
  table by_login_;
};

// A token bucket: `rate` tokens per second up to `burst`; each request takes one.
class request_bucket {
 public:
  request_bucket(double rate, double burst, steady_time now) : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}
  bool take(steady_time now);

 private:
  double rate_;
  double burst_;
  double tokens_;
  steady_time last_;
};

}  // namespace switchboard::desk
