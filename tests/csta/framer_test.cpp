// The CSTA framer on whole, split and malformed byte streams.
#include "switchboard/csta/framer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchboard::csta {
namespace {

std::string framed(int invoke, std::string_view xml) {
  std::string out;
  EXPECT_TRUE(append_frame(out, invoke, xml).has_value());
  return out;
}

// Drains every complete frame; fails the test on an error.
std::vector<std::pair<int, std::string>> drain(framer& f) {
  std::vector<std::pair<int, std::string>> frames;
  for (;;) {
    auto next = f.next();
    EXPECT_TRUE(next.has_value()) << next.error().message();
    if (!next || !*next) return frames;
    frames.emplace_back((*next)->invoke_id, std::string((*next)->xml));
  }
}

TEST(csta_framer, header_layout_matches_the_wire) {
  const auto bytes = framed(1, "<a/>");
  ASSERT_EQ(bytes.size(), 12u);
  EXPECT_EQ(bytes[0], '\0');
  EXPECT_EQ(bytes[1], '\0');
  EXPECT_EQ(static_cast<unsigned char>(bytes[2]), 0u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[3]), 12u);
  EXPECT_EQ(bytes.substr(4, 4), "0001");
  EXPECT_EQ(bytes.substr(8), "<a/>");
}

TEST(csta_framer, decodes_a_whole_frame_and_several_per_feed) {
  framer f;
  f.feed(framed(42, "<x/>") + framed(9999, "<y>1</y>") + framed(0, "<z/>"));
  const auto frames = drain(f);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], (std::pair<int, std::string>{42, "<x/>"}));
  EXPECT_EQ(frames[1], (std::pair<int, std::string>{9999, "<y>1</y>"}));
  EXPECT_EQ(frames[2], (std::pair<int, std::string>{0, "<z/>"}));
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(csta_framer, split_at_every_byte_offset) {
  const std::string stream = framed(7, "<MonitorStart><monitorObject/></MonitorStart>") + framed(9999, "<e>&amp;</e>");
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    framer f;
    f.feed(std::string_view(stream).substr(0, cut));
    auto frames = drain(f);
    f.feed(std::string_view(stream).substr(cut));
    auto rest = drain(f);
    frames.insert(frames.end(), rest.begin(), rest.end());
    ASSERT_EQ(frames.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(frames[0].first, 7);
    EXPECT_EQ(frames[1].second, "<e>&amp;</e>");
  }
}

TEST(csta_framer, byte_by_byte) {
  const std::string stream = framed(3, "<a>b</a>") + framed(4, "<c/>");
  framer f;
  std::vector<std::pair<int, std::string>> frames;
  for (const char ch : stream) {
    f.feed(std::string_view(&ch, 1));
    auto got = drain(f);
    frames.insert(frames.end(), got.begin(), got.end());
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1], (std::pair<int, std::string>{4, "<c/>"}));
}

TEST(csta_framer, truncated_frame_waits_for_more) {
  const auto bytes = framed(5, "<abc/>");
  framer f;
  f.feed(bytes.substr(0, bytes.size() - 1));
  auto next = f.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(f.buffered(), bytes.size() - 1);
}

TEST(csta_framer, bad_version_bytes_are_malformed) {
  framer f;
  auto bytes = framed(1, "<a/>");
  bytes[0] = '\x01';
  f.feed(bytes);
  auto next = f.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_TRUE(next.error().is(errc::frame_malformed));
}

TEST(csta_framer, length_shorter_than_header_is_malformed) {
  framer f;
  f.feed(
      std::string("\0\0\0\x05"
                  "0001",
                  8));
  auto next = f.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_TRUE(next.error().is(errc::frame_malformed));
  EXPECT_NE(next.error().detail.find("shorter"), std::string::npos);
}

TEST(csta_framer, non_digit_invoke_id_is_malformed) {
  framer f;
  auto bytes = framed(1, "<a/>");
  bytes[6] = 'x';
  f.feed(bytes);
  auto next = f.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_TRUE(next.error().is(errc::frame_malformed));
}

TEST(csta_framer, oversized_frame_is_rejected_before_its_body_arrives) {
  framer f(64);
  const auto bytes = framed(1, std::string(100, 'x'));
  f.feed(bytes.substr(0, frame_header_size));  // the header alone is enough to know
  auto next = f.next();
  ASSERT_FALSE(next.has_value());
  EXPECT_TRUE(next.error().is(errc::frame_too_large));
}

TEST(csta_framer, error_sticks_until_reset) {
  framer f;
  f.feed(std::string("\x07\x07\x07\x07\x07\x07\x07\x07", 8));
  EXPECT_FALSE(f.next().has_value());
  f.feed(framed(1, "<a/>"));
  EXPECT_FALSE(f.next().has_value());
  f.reset();
  f.feed(framed(1, "<a/>"));
  const auto frames = drain(f);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].second, "<a/>");
}

TEST(csta_framer, append_frame_checks_limits) {
  std::string out;
  auto too_big = append_frame(out, 1, std::string(70000, 'x'));
  ASSERT_FALSE(too_big.has_value());
  EXPECT_TRUE(too_big.error().is(errc::frame_too_large));
  auto bad_invoke = append_frame(out, 10000, "<a/>");
  ASSERT_FALSE(bad_invoke.has_value());
  EXPECT_TRUE(bad_invoke.error().is(errc::frame_malformed));
  EXPECT_TRUE(out.empty());
  auto limited = append_frame(out, 1, std::string(60, 'x'), 64);
  ASSERT_FALSE(limited.has_value());
  EXPECT_TRUE(limited.error().is(errc::frame_too_large));
}

}  // namespace
}  // namespace switchboard::csta
