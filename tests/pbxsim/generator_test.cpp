// The call generator with fixed seeds: arrival counts, callers, IVR digits and patience are
// checked as counts over simulated time, never against the wall clock.
#include "switchboard/pbxsim/generator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace switchboard::pbxsim {
namespace {

using namespace std::chrono_literals;

model_config model_cfg(std::optional<std::chrono::milliseconds> auto_answer) {
  return model_config{.operators = {"4711", "4799"},
                      .route_points = {"800", "801"},
                      .default_device = "4799",
                      .route_timeout = 3000ms,
                      .auto_answer_delay = auto_answer};
}

generator_config gen_cfg(double rate, std::uint64_t seed) {
  return generator_config{.rate = rate,
                          .route_points = {"800", "801"},
                          .talk = {duration_dist::shape::fixed, 1000ms},
                          .patience = duration_dist{duration_dist::shape::fixed, 3000ms},
                          .seed = seed};
}

TEST(generator, offers_calls_at_the_poisson_rate_per_route_point) {
  call_model model(model_cfg(1000ms));
  call_generator gen(gen_cfg(10.0, 7));
  const auto offered = gen.run_until(model, 100000ms);  // 2 route points x 10/s x 100 s
  EXPECT_EQ(offered, model.stats().offered);
  EXPECT_GT(offered, 1800u);  // 2000 expected, sd 45
  EXPECT_LT(offered, 2200u);
}

TEST(generator, the_same_seed_gives_the_same_calls) {
  call_generator a(gen_cfg(5.0, 42));
  call_generator b(gen_cfg(5.0, 42));
  call_generator c(gen_cfg(5.0, 43));
  EXPECT_EQ(a.next_arrival(), b.next_arrival());
  EXPECT_NE(a.next_arrival(), c.next_arrival());
  for (int i = 0; i < 50; ++i) {
    const auto x = a.sample_call("800");
    const auto y = b.sample_call("800");
    EXPECT_EQ(x.caller, y.caller);
    EXPECT_EQ(x.correlator, y.correlator);
  }
  call_model ma(model_cfg(1000ms)), mb(model_cfg(1000ms));
  EXPECT_EQ(a.run_until(ma, 60000ms), b.run_until(mb, 60000ms));
}

TEST(generator, callers_follow_the_demo_pattern_and_carry_ivr_digits) {
  call_generator gen(gen_cfg(1.0, 3));
  std::set<std::string> ivr;
  for (int i = 0; i < 2000; ++i) {
    const auto call = gen.sample_call("801");
    ASSERT_EQ(call.caller.size(), 12u) << call.caller;
    ASSERT_EQ(call.caller.substr(0, 8), "+4930555");
    const auto tail = call.caller.substr(8);
    ASSERT_TRUE(std::all_of(tail.begin(), tail.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) << call.caller;
    const auto n = std::stoi(tail);
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 500);
    EXPECT_EQ(call.dialled, "801");
    ivr.insert(call.correlator);
  }
  EXPECT_EQ(ivr, (std::set<std::string>{"1", "2", "3"}));
}

TEST(generator, callers_from_a_list) {
  auto cfg = gen_cfg(1.0, 3);
  cfg.callers = {"+111", "+222"};
  cfg.ivr_digits.clear();
  call_generator gen(cfg);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const auto call = gen.sample_call("800");
    seen.insert(call.caller);
    EXPECT_TRUE(call.correlator.empty());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"+111", "+222"}));
}

TEST(generator, unanswered_callers_all_give_up_after_their_patience) {
  call_model model(model_cfg(std::nullopt));  // nobody answers
  call_generator gen(gen_cfg(2.0, 11));
  const auto offered = gen.run_until(model, 60000ms);
  gen.set_rate(0, 60000ms);
  EXPECT_FALSE(gen.next_arrival());
  gen.run_until(model, 63000ms);  // every patience (3 s) has run out
  EXPECT_GT(offered, 0u);
  EXPECT_EQ(model.stats().abandoned, offered);
  EXPECT_EQ(model.stats().active_calls, 0u);
  EXPECT_EQ(model.stats().answered, 0u);
}

TEST(generator, patience_shorter_than_the_answer_delay_abandons_in_proportion) {
  call_model model(model_cfg(1000ms));
  auto cfg = gen_cfg(0.01, 5);  // calls far apart: the default phone is free for each
  cfg.patience = duration_dist{duration_dist::shape::exponential, 1000ms};
  call_generator gen(cfg);
  gen.run_until(model, 25000000ms);
  const auto& s = model.stats();
  // P(patience < 1 s) = 1 - 1/e = 0.63 of about 500 calls.
  EXPECT_GT(s.offered, 400u);
  const double share = static_cast<double>(s.abandoned) / static_cast<double>(s.offered);
  EXPECT_GT(share, 0.55);
  EXPECT_LT(share, 0.71);
  EXPECT_EQ(s.abandoned + s.answered, s.offered);
}

TEST(duration, samples_stay_in_their_bounds) {
  std::mt19937_64 rng(1);
  const duration_dist uniform{duration_dist::shape::uniform, 0ms, 2000ms, 4000ms};
  const duration_dist capped{duration_dist::shape::exponential, 1000ms, 0ms, 1500ms};
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const auto u = uniform.sample(rng);
    EXPECT_GE(u, 2000ms);
    EXPECT_LT(u, 4000ms);
    EXPECT_LE(capped.sample(rng), 1500ms);
    sum += static_cast<double>(duration_dist{duration_dist::shape::exponential, 1000ms}.sample(rng).count());
  }
  EXPECT_NEAR(sum / 10000, 1000, 50);
  EXPECT_EQ((duration_dist{duration_dist::shape::fixed, 1234ms}.sample(rng)), 1234ms);
}

}  // namespace
}  // namespace switchboard::pbxsim
