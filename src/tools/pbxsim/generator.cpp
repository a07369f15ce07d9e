// Poisson arrivals and sampled callers for the simulated PBX, reproducible from a seed.
#include "switchboard/pbxsim/generator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace switchboard::pbxsim {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

std::chrono::milliseconds duration_dist::sample(std::mt19937_64& rng) const {
  using ms = std::chrono::milliseconds;
  switch (kind) {
    case shape::fixed:
      return mean;
    case shape::uniform: {
      const auto span = static_cast<double>((max - min).count());
      return min + ms(static_cast<ms::rep>(uniform01(rng) * span));
    }
    case shape::exponential: {
      auto v = ms(static_cast<ms::rep>(-std::log1p(-uniform01(rng)) * static_cast<double>(mean.count())));
      if (max.count() > 0) v = std::min(v, max);
      return v;
    }
  }
  return mean;
}

call_generator::call_generator(generator_config config, sim_time start)
    : config_(std::move(config)), rng_(config_.seed) {
  if (config_.route_points.empty()) throw std::invalid_argument("pbxsim: the generator needs a route point");
  if (config_.callers.empty() && config_.pattern.last < config_.pattern.first) {
    throw std::invalid_argument("pbxsim: the caller pattern's last number is below its first");
  }
  if (config_.rate < 0) throw std::invalid_argument("pbxsim: the call rate must not be negative");
  schedule_next(static_cast<double>(start.count()));
}

void call_generator::schedule_next(double from_ms) {
  // The route points' Poisson streams together are one stream at the summed rate.
  const double total_per_ms = config_.rate * static_cast<double>(config_.route_points.size()) / 1000.0;
  if (total_per_ms <= 0) {
    next_ms_.reset();
    return;
  }
  next_ms_ = from_ms - std::log1p(-uniform01(rng_)) / total_per_ms;
}

void call_generator::set_rate(double rate, sim_time now) {
  if (rate < 0) throw std::invalid_argument("pbxsim: the call rate must not be negative");
  config_.rate = rate;
  schedule_next(static_cast<double>(now.count()));  // memoryless: restarting the wait is exact
}

std::optional<sim_time> call_generator::next_arrival() const {
  if (!next_ms_) return std::nullopt;
  return sim_time(static_cast<sim_time::rep>(std::ceil(*next_ms_)));
}

inbound_call call_generator::sample_call(const std::string& route_point) {
  inbound_call call;
  if (!config_.callers.empty()) {
    call.caller =
        config_.callers[static_cast<std::size_t>(uniform01(rng_) * static_cast<double>(config_.callers.size()))];
  } else {
    const auto& p = config_.pattern;
    const auto n = p.first + static_cast<int>(uniform01(rng_) * (p.last - p.first + 1));
    char digits[32];
    std::snprintf(digits, sizeof digits, "%0*d", std::clamp(p.digits, 1, 18), n);
    call.caller = p.prefix + digits;
  }
  call.dialled = route_point;
  if (!config_.ivr_digits.empty()) {
    call.correlator =
        config_.ivr_digits[static_cast<std::size_t>(uniform01(rng_) * static_cast<double>(config_.ivr_digits.size()))];
  }
  call.talk_time = config_.talk.sample(rng_);
  if (config_.patience) call.patience = config_.patience->sample(rng_);
  return call;
}

std::size_t call_generator::run_until(call_model& model, sim_time now) {
  std::size_t offered = 0;
  while (const auto at = next_arrival()) {
    if (*at > now) break;
    model.advance(*at);  // timers before this arrival fire first
    const auto& rp =
        config_
            .route_points[static_cast<std::size_t>(uniform01(rng_) * static_cast<double>(config_.route_points.size()))];
    model.offer_call(sample_call(rp), *at);
    ++offered;
    schedule_next(*next_ms_);
  }
  model.advance(now);
  return offered;
}

}  // namespace switchboard::pbxsim
