// The invoke id table: allocation order, wrap-around, skipping ids in flight, and draining.
#include "switchboard/csta/invoke_table.hpp"

#include <gtest/gtest.h>

#include <string>

namespace switchboard::csta::detail {
namespace {

TEST(csta_invoke_table, ids_start_at_zero_and_pair_once) {
  invoke_table<std::string> t;
  EXPECT_EQ(t.open("a"), 0);
  EXPECT_EQ(t.open("b"), 1);
  EXPECT_EQ(t.take(1), "b");
  EXPECT_FALSE(t.take(1).has_value());  // a second response to the same id pairs with nothing
  EXPECT_FALSE(t.take(9999).has_value());
  EXPECT_TRUE(t.contains(0));
  EXPECT_EQ(t.size(), 1u);
}

TEST(csta_invoke_table, wraps_before_9999_and_skips_ids_in_flight) {
  invoke_table<int> t;
  ASSERT_EQ(t.open(0), 0);  // stays in flight
  for (int i = 1; i <= 9998; ++i) {
    auto id = t.open(i);
    ASSERT_EQ(id, i);
    t.take(*id);
  }
  EXPECT_EQ(t.open(1), 1);  // wrapped past 9998, skipped 0 which is still open
  EXPECT_EQ(t.size(), 2u);
}

TEST(csta_invoke_table, full_table_refuses_more) {
  invoke_table<int> t;
  for (std::size_t i = 0; i < invoke_table<int>::capacity; ++i) ASSERT_TRUE(t.open(1).has_value());
  EXPECT_FALSE(t.open(1).has_value());
  t.take(4711);
  EXPECT_EQ(t.open(2), 4711);
}

TEST(csta_invoke_table, take_all_releases_every_waiter) {
  invoke_table<std::string> t;
  t.open("x");
  t.open("y");
  const auto all = t.take_all();
  EXPECT_EQ(all, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.open("z"), 2);  // numbering continues: a late response to 0 or 1 pairs with nothing
}

}  // namespace
}  // namespace switchboard::csta::detail
