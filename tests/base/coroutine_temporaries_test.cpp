// Regression guard named after what broke: g++ 12 destroyed lambda and aggregate temporaries
// inside a co_await expression twice (GCC PR 100611), corrupting reference counts and strings
// in the store's listener. The project builds with clang++; this fails on a compiler that
// still has the bug.
#include "coro_test.hpp"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <string>

namespace switchboard {
namespace {

namespace asio = boost::asio;

struct command {
  std::string text;
  std::shared_ptr<int> token;
};

asio::awaitable<std::size_t> take_command(command c) { co_return c.text.size() + static_cast<std::size_t>(*c.token); }

template <class Fn>
asio::awaitable<int> take_function(Fn fn) {
  co_return fn();
}

TEST(CoroutineTemporaries, AggregateAndLambdaTemporariesInCoAwaitAreDestroyedOnce) {
  auto token = std::make_shared<int>(1);
  asio::io_context loop;
  testing::run_coroutine(loop, [&]() -> asio::awaitable<void> {
    auto n = co_await take_command(command{std::string(40, 'x'), token});
    EXPECT_EQ(n, 41u);
    auto m = co_await take_function([token]() { return *token; });
    EXPECT_EQ(m, 1);
  });
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace switchboard
