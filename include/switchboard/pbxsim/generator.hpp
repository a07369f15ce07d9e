// Outside callers for the simulated PBX: Poisson arrivals per route point, caller numbers, IVR
// digits, talk and patience times, all from one seeded RNG so a test gets the same calls each run.
#pragma once

#include "switchboard/pbxsim/model.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace switchboard::pbxsim {

// A sampled duration: fixed, exponential around `mean`, or uniform in [min, max].
struct duration_dist {
  enum class shape { fixed, exponential, uniform };
  shape kind = shape::exponential;
  std::chrono::milliseconds mean{60000};
  std::chrono::milliseconds min{0};
  std::chrono::milliseconds max{0};  // uniform: upper bound; exponential: cap when > 0

  std::chrono::milliseconds sample(std::mt19937_64& rng) const;
};

// Caller numbers "<prefix><number, zero padded to digits>" for number in [first, last]: the demo
// customers are +4930555 0001..0500.
struct caller_pattern {
  std::string prefix = "+4930555";
  int digits = 4;
  int first = 1;
  int last = 500;
};

struct generator_config {
  double rate = 1.0;  // calls per second at each route point
  std::vector<std::string> route_points;
  std::vector<std::string> callers;  // picked uniformly when given, else `pattern`
  caller_pattern pattern;
  std::vector<std::string> ivr_digits = {"1", "2", "3"};  // correlator data, picked uniformly; empty: none
  duration_dist talk{duration_dist::shape::exponential, std::chrono::milliseconds(60000)};
  std::optional<duration_dist> patience =
      duration_dist{duration_dist::shape::exponential, std::chrono::milliseconds(30000)};
  std::uint64_t seed = 1;
};

// A uniform double in [0, 1) from 53 random bits: the same on every standard library.
double uniform01(std::mt19937_64& rng);

class call_generator {
 public:
  explicit call_generator(generator_config config, sim_time start = sim_time{0});

  // Offers to `model` every call arriving up to `now`, firing the model's timers in time order
  // in between, then advances the model to `now`. Returns how many calls were offered.
  std::size_t run_until(call_model& model, sim_time now);

  // Changes the rate from `now` on (0 stops arrivals).
  void set_rate(double rate, sim_time now);
  double rate() const noexcept { return config_.rate; }
  // When the next call arrives; std::nullopt while the rate is 0.
  std::optional<sim_time> next_arrival() const;

  // One caller for `route_point`, sampled now (also used by the control port's "offer").
  inbound_call sample_call(const std::string& route_point);

 private:
  void schedule_next(double from_ms);

  generator_config config_;
  std::mt19937_64 rng_;
  std::optional<double> next_ms_;  // fractional ms keep the long-run rate exact
};

}  // namespace switchboard::pbxsim
