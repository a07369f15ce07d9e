// The desktop codec without sockets: framing (every split offset, the line cap), requests and
// server messages both ways, and the clear errors that bad input must get.
#include "switchboard/desk/codec.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace switchboard::desk {
namespace {

struct collected {
  std::vector<std::string> lines;
  int too_long = 0;
};

void feed(line_framer& framer, std::string_view input, collected& out) {
  while (true) {
    auto f = framer.next(input);
    if (f.what == line_framer::status::need_more) {
      EXPECT_TRUE(input.empty());
      return;
    }
    if (f.what == line_framer::status::line) out.lines.emplace_back(f.line);
    if (f.what == line_framer::status::too_long) ++out.too_long;
  }
}

TEST(LineFramer, SplitsAtEveryByteOffset) {
  const std::string stream = "{\"type\":\"ping\",\"id\":1}\r\n\n{\"a\":2}\n{\"b\":3}\n";
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= stream.size(); cut2 += 3) {
      line_framer framer(64);
      collected out;
      feed(framer, std::string_view(stream).substr(0, cut), out);
      feed(framer, std::string_view(stream).substr(cut, cut2 - cut), out);
      feed(framer, std::string_view(stream).substr(cut2), out);
      ASSERT_EQ(out.lines.size(), 3u) << "cut at " << cut << "," << cut2;
      EXPECT_EQ(out.lines[0], "{\"type\":\"ping\",\"id\":1}");
      EXPECT_EQ(out.lines[1], "{\"a\":2}");
      EXPECT_EQ(out.lines[2], "{\"b\":3}");
      EXPECT_EQ(out.too_long, 0);
    }
  }
}

TEST(LineFramer, ByteByByte) {
  const std::string stream = "one\ntwo\nthree\n";
  line_framer framer(16);
  collected out;
  for (char c : stream) feed(framer, std::string_view(&c, 1), out);
  EXPECT_EQ(out.lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(LineFramer, OversizedLineIsReportedOnceAndSkippedWithoutBuffering) {
  const std::size_t max = 32;
  const std::string big(1000, 'x');
  const std::string stream = "ok1\n" + big + "\nok2\n";
  for (std::size_t cut = 0; cut <= stream.size(); cut += 7) {
    line_framer framer(max);
    collected out;
    std::string_view rest(stream);
    // feed in pieces of 7 bytes and check the buffer never grows past the limit
    while (!rest.empty()) {
      auto piece = rest.substr(0, 7);
      rest.remove_prefix(piece.size());
      feed(framer, piece, out);
      EXPECT_LE(framer.buffered(), max);
    }
    EXPECT_EQ(out.lines, (std::vector<std::string>{"ok1", "ok2"}));
    EXPECT_EQ(out.too_long, 1);
  }
}

TEST(LineFramer, ExactLimitPassesOneMoreByteFails) {
  line_framer framer(8);
  collected out;
  feed(framer, "12345678\n123456789\nz\n", out);
  EXPECT_EQ(out.lines, (std::vector<std::string>{"12345678", "z"}));
  EXPECT_EQ(out.too_long, 1);
}

TEST(LineFramer, TooLongIsReportedBeforeTheNewlineArrives) {
  line_framer framer(8);
  collected out;
  feed(framer, "0123456789", out);
  EXPECT_EQ(out.too_long, 1);
  EXPECT_EQ(framer.buffered(), 0u);
  feed(framer, std::string(10000, 'y'), out);  // still the same line: skipped, no second report
  feed(framer, "\nnext\n", out);
  EXPECT_EQ(out.too_long, 1);
  EXPECT_EQ(out.lines, (std::vector<std::string>{"next"}));
}

decode_failure bad(std::string_view line) {
  auto r = decode_request(line);
  EXPECT_FALSE(r.has_value()) << line;
  return r ? decode_failure{} : r.error();
}

TEST(DecodeRequest, EveryTypeRoundTrips) {
  using namespace req;
  std::vector<request_body> bodies{hello{1, "test"},
                                   login{"acme", "alice", "pw", "2001"},
                                   resume{"tok"},
                                   logout{},
                                   ping{},
                                   ready{},
                                   not_ready{"break"},
                                   end_wrap_up{},
                                   answer{},
                                   hangup{},
                                   hold{},
                                   retrieve{},
                                   consult{"2002"},
                                   transfer{transfer_mode::blind, "2003"},
                                   transfer{transfer_mode::complete, ""},
                                   conference{},
                                   dial{"+4930"},
                                   disposition{"sale", "notes"},
                                   force_state{12, forced_state::not_ready, "supervisor"},
                                   force_state{12, forced_state::logged_out, ""},
                                   tenant_view{}};
  std::int64_t n = 0;
  for (const auto& body : bodies) {
    request in{++n, body};
    auto line = encode(in);
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    auto out = decode_request(line);
    ASSERT_TRUE(out.has_value()) << line << ": " << out.error().err.message();
    EXPECT_EQ(out->id, in.id);
    EXPECT_EQ(out->body.index(), body.index()) << line;
    EXPECT_EQ(encode(*out), encode(in));
  }
}

TEST(DecodeRequest, StringIdsAndUnknownFields) {
  auto r = decode_request(R"({"type":"not_ready","id":"abc","reason":"lunch","future":{"x":[1,2]}})");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(std::get<std::string>(r->id), "abc");
  EXPECT_EQ(std::get<req::not_ready>(r->body).reason, "lunch");
}

TEST(DecodeRequest, MalformedJson) {
  EXPECT_TRUE(bad("{\"type\":").err.is(errc::desk_json_malformed));
  EXPECT_TRUE(bad("[1,2]").err.is(errc::desk_json_malformed));
  EXPECT_TRUE(bad("\"ping\"").err.is(errc::desk_json_malformed));
  EXPECT_TRUE(bad(std::string(100, '[') + std::string(100, ']')).err.is(errc::desk_json_malformed));
  EXPECT_TRUE(bad("{\"type\":\"ping\",\"id\":1,\"x\":\"\xff\"}").err.is(errc::desk_json_malformed));
}

TEST(DecodeRequest, MissingOrBadIdIsABadRequestWithoutId) {
  auto f = bad(R"({"type":"ping"})");
  EXPECT_TRUE(f.err.is(errc::desk_bad_request));
  EXPECT_FALSE(f.id.has_value());
  EXPECT_NE(f.err.message().find("id"), std::string::npos);
  EXPECT_TRUE(bad(R"({"type":"ping","id":1.5})").err.is(errc::desk_bad_request));
  EXPECT_TRUE(bad(R"({"type":"ping","id":[1]})").err.is(errc::desk_bad_request));
  EXPECT_TRUE(bad(R"({"type":"ping","id":true})").err.is(errc::desk_bad_request));
  EXPECT_TRUE(bad(R"({"type":"ping","id":18446744073709551615})").err.is(errc::desk_bad_request));
  EXPECT_TRUE(bad(R"({"type":"ping","id":")" + std::string(65, 'i') + "\"}").err.is(errc::desk_bad_request));
}

TEST(DecodeRequest, UnknownTypeKeepsTheId) {
  auto f = bad(R"({"type":"fly","id":9})");
  EXPECT_TRUE(f.err.is(errc::desk_unknown_type));
  ASSERT_TRUE(f.id.has_value());
  EXPECT_EQ(std::get<std::int64_t>(*f.id), 9);
  EXPECT_EQ(error_code_of(f.err), "unknown_type");
}

TEST(DecodeRequest, MissingTypeKeepsTheId) {
  auto f = bad(R"({"id":"x"})");
  EXPECT_TRUE(f.err.is(errc::desk_bad_request));
  ASSERT_TRUE(f.id.has_value());
  f = bad(R"({"id":"x","type":7})");
  EXPECT_TRUE(f.err.is(errc::desk_bad_request));
}

TEST(DecodeRequest, WrongFieldTypesNameTheField) {
  struct {
    const char* line;
    const char* field;
  } cases[] = {
      {R"({"type":"login","id":1,"tenant":"a","login":5,"password":"p"})", "'login' must be a string"},
      {R"({"type":"login","id":1,"tenant":"a","login":"b"})", "missing field 'password'"},
      {R"({"type":"hello","id":1,"version":"1"})", "'version' must be an integer"},
      {R"({"type":"hello","id":1})", "missing field 'version'"},
      {R"({"type":"not_ready","id":1,"reason":""})", "'reason' must not be empty"},
      {R"({"type":"not_ready","id":1,"reason":null})", "missing field 'reason'"},
      {R"({"type":"transfer","id":1,"mode":"sideways"})", "'mode'"},
      {R"({"type":"transfer","id":1,"mode":"blind"})", "missing field 'number'"},
      {R"({"type":"force_state","id":1,"operator_id":"12","state":"ready"})", "'operator_id' must be an integer"},
      {R"({"type":"force_state","id":1,"operator_id":12,"state":"asleep"})", "'state'"},
      {R"({"type":"force_state","id":1,"operator_id":12,"state":"not_ready"})", "missing field 'reason'"},
      {R"({"type":"disposition","id":1,"code":["x"]})", "'code' must be a string"},
  };
  for (const auto& c : cases) {
    auto f = bad(c.line);
    EXPECT_TRUE(f.err.is(errc::desk_bad_request)) << c.line;
    EXPECT_NE(f.err.message().find(c.field), std::string::npos) << c.line << " → " << f.err.message();
    EXPECT_EQ(std::get<std::int64_t>(f.id.value()), 1);
  }
}

server_message round_trip(const server_message& m) {
  auto line = encode(m);
  EXPECT_EQ(line.back(), '\n');
  line.pop_back();
  auto back = decode_server_message(line);
  EXPECT_TRUE(back.has_value()) << line << ": " << (back ? "" : back.error().err.message());
  if (!back) return m;
  EXPECT_EQ(encode(*back), encode(m)) << line;
  return *back;
}

TEST(ServerMessages, EveryTypeRoundTrips) {
  state_event st{"not_ready", "break", "2024-05-02T09:14:03.120Z", "2001", std::nullopt};
  call_event call{5521, call_state::consulting, "+4930", "800", "2002"};
  offer_event offer{{5521, "+4930", "800", "Support", 4, 12.5},
                    nlohmann::json{{"name", "Jane"}, {"tier", "gold"}},
                    nlohmann::json{{"menu", "2"}}};
  login_result login{"tok", 60, {12, 3, "acme", "alice", "Alice", role::supervisor, "2001"}, {st, call, offer}};
  operator_event op{12, "alice", "Alice", "ready", std::nullopt, "2024-05-02T09:14:03.120Z", "2001"};
  std::vector<server_message> all{ok_reply{1, std::monostate{}},
                                  ok_reply{std::string("h"), hello_result{}},
                                  ok_reply{2, login},
                                  ok_reply{3, pending_result{}},
                                  error_reply{std::nullopt, "malformed_json", "bad"},
                                  error_reply{request_id{4}, "state_not_allowed", "no call to answer"},
                                  pong_reply{std::string("hb")},
                                  st,
                                  offer,
                                  offer_event{{7, "1", "2", std::nullopt, std::nullopt, 0}, nullptr, {}},
                                  call,
                                  op,
                                  tenant_event{{op, op}, {{4, "Support"}}},
                                  stats_event{"2024-05-02T09:15:00.000Z", {{4, "Support", 3, 41, 2, 5, 120, 4, 87.5}}},
                                  closing_event{"taken_over", "elsewhere"}};
  for (const auto& m : all) {
    auto back = round_trip(m);
    EXPECT_EQ(back.index(), m.index());
  }
  // The supervisor's figures keep every field, unknown averages as null.
  const stats_event stats{"2024-05-02T09:15:00.000Z",
                          {{4, "Support", 3, 41, 2, 5, 120, 4, 87.5, 130, 12.5, 240.0, std::nullopt}},
                          {{12, "alice", "talking", 42.5, 17, 16, 231.0, 71.5}, {13, "bob", "ready", 3, 0, 0}}};
  const auto figures = std::get<stats_event>(round_trip(stats));
  ASSERT_EQ(figures.queues.size(), 1u);
  EXPECT_EQ(figures.queues[0].offered, 130);
  EXPECT_EQ(figures.queues[0].asa_seconds, 12.5);
  EXPECT_EQ(figures.queues[0].aht_seconds, 240.0);
  EXPECT_FALSE(figures.queues[0].abandon_rate_percent.has_value());
  ASSERT_EQ(figures.operators.size(), 2u);
  EXPECT_EQ(figures.operators[0].login, "alice");
  EXPECT_EQ(figures.operators[0].state, "talking");
  EXPECT_EQ(figures.operators[0].calls_today, 17);
  EXPECT_EQ(figures.operators[0].handled, 16);
  EXPECT_EQ(figures.operators[0].occupancy_percent, 71.5);
  EXPECT_FALSE(figures.operators[1].aht_seconds.has_value());

  auto back = round_trip(ok_reply{2, login});
  const auto& l = std::get<login_result>(std::get<ok_reply>(back).result);
  EXPECT_EQ(l.who.role, role::supervisor);
  EXPECT_EQ(l.snapshot.offer->customer["tier"], "gold");
  EXPECT_EQ(l.snapshot.call->consult_number, "2002");
}

TEST(ServerMessages, UnknownTypeAndBadFields) {
  EXPECT_TRUE(decode_server_message(R"({"type":"weather"})").error().err.is(errc::desk_unknown_type));
  EXPECT_TRUE(
      decode_server_message(R"({"type":"call","call_id":"x","state":"held"})").error().err.is(errc::desk_bad_request));
  EXPECT_TRUE(
      decode_server_message(R"({"type":"call","call_id":1,"state":"dancing"})").error().err.is(errc::desk_bad_request));
  EXPECT_TRUE(decode_server_message(R"({"type":"offer","call":{"call_id":1},"customer":"x"})")
                  .error()
                  .err.is(errc::desk_bad_request));
}

TEST(ErrorCodes, StableNames) {
  EXPECT_EQ(error_code_of(error{errc::desk_line_too_long}), "line_too_long");
  EXPECT_EQ(error_code_of(error{errc::db_unavailable}), "unavailable");
  EXPECT_EQ(error_code_of(error{errc::pbx_rejected}), "rejected");
  EXPECT_EQ(error_code_of(error{errc::state_not_allowed, "no call to answer"}), "state_not_allowed");
  EXPECT_EQ(error_code_of(error{std::make_error_code(std::errc::io_error)}), "internal");
  auto reply = make_error_reply(request_id{3}, error{errc::state_not_allowed, "no call to answer"});
  EXPECT_NE(reply.message.find("no call to answer"), std::string::npos);
}

}  // namespace
}  // namespace switchboard::desk
