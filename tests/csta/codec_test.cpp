// The CSTA XML codec on recorded samples, round trips of every message type, namespaces and
// malformed input.
#include "switchboard/csta/codec.hpp"
#include "examples.hpp"
#include "switchboard/csta/framer.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace switchboard::csta {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every *.xml in `dir` decodes to the message its file is named after.
void expect_samples_decode(const fs::path& dir, std::size_t at_least) {
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::size_t count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".xml") continue;
    ++count;
    const auto xml = read_file(entry.path());
    auto decoded = decode(xml);
    ASSERT_TRUE(decoded.has_value()) << entry.path() << ": " << decoded.error().message();
    EXPECT_FALSE(std::holds_alternative<unknown_message>(*decoded)) << entry.path();
    EXPECT_EQ(message_name(*decoded), entry.path().stem().string());
    // And it survives our own encoding.
    auto again = decode(encode(*decoded));
    ASSERT_TRUE(again.has_value()) << entry.path() << ": " << again.error().message();
    EXPECT_EQ(*again, *decoded) << entry.path();
  }
  EXPECT_GE(count, at_least);
}

TEST(csta_codec, every_shared_sample_decodes) { expect_samples_decode(SWITCHBOARD_CSTA_SAMPLES, 50); }

TEST(csta_codec, bundled_frames_decode) { expect_samples_decode(SWITCHBOARD_CSTA_FRAMES, 5); }

TEST(csta_codec, examples_cover_every_message_type) {
  std::set<std::size_t> seen;
  for (const auto& m : testing::every_message()) seen.insert(m.index());
  EXPECT_EQ(seen.size(), std::variant_size_v<message> - 1);  // all but unknown_message
}

TEST(csta_codec, encode_decode_round_trips_every_message_type) {
  for (const auto& m : testing::every_message()) {
    const auto xml = encode(m);
    auto decoded = decode(xml);
    ASSERT_TRUE(decoded.has_value()) << message_name(m) << ": " << decoded.error().message() << "\n" << xml;
    EXPECT_EQ(*decoded, m) << xml;
  }
}

TEST(csta_codec, every_message_framed_and_split_at_every_byte) {
  const auto all = testing::every_message();
  for (std::size_t i = 0; i < all.size(); ++i) {
    // The message's frame between two others, so a cut also crosses frame boundaries.
    std::string stream;
    ASSERT_TRUE(encode_frame(system_status{std::nullopt, "normal"}, 1, stream).has_value());
    ASSERT_TRUE(encode_frame(all[i], static_cast<int>(i), stream).has_value());
    ASSERT_TRUE(encode_frame(system_status_response{}, 2, stream).has_value());
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      framer f;
      std::vector<std::pair<int, std::string>> frames;
      auto pump = [&] {
        for (auto next = f.next(); next.has_value() && *next; next = f.next()) {
          frames.emplace_back((*next)->invoke_id, std::string((*next)->xml));
        }
      };
      f.feed(std::string_view(stream).substr(0, cut));
      pump();
      f.feed(std::string_view(stream).substr(cut));
      pump();
      ASSERT_EQ(frames.size(), 3u) << message_name(all[i]) << " cut at " << cut;
      EXPECT_EQ(frames[1].first, static_cast<int>(i));
      auto decoded = decode(frames[1].second);
      ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
      EXPECT_EQ(*decoded, all[i]) << " cut at " << cut;
    }
  }
}

TEST(csta_codec, emits_the_configured_edition_and_the_session_namespace) {
  const auto ed3 = encode(monitor_start{"4711", std::nullopt});
  EXPECT_NE(ed3.find(R"(xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3")"), std::string::npos);
  const auto ed6 = encode(monitor_start{"4711", std::nullopt}, {edition::ed6, false});
  EXPECT_EQ(ed6.rfind("<MonitorStart xmlns=\"http://www.ecma-international.org/standards/ecma-323/csta/ed6\">", 0), 0u);
  const auto session = encode(reset_application_session_timer{"1", 60}, {edition::ed6, false});
  EXPECT_NE(session.find(application_session_namespace), std::string::npos);
  EXPECT_EQ(parse_edition("ed5"), edition::ed5);
  EXPECT_EQ(parse_edition(namespace_of(edition::ed2)), edition::ed2);
  EXPECT_FALSE(parse_edition("ed9").has_value());
}

TEST(csta_codec, accepts_prefixed_default_and_no_namespace) {
  const std::vector<std::string> forms = {
      R"(<csta:MonitorStartResponse xmlns:csta="http://www.ecma-international.org/standards/ecma-323/csta/ed2"><csta:monitorCrossRefID>9</csta:monitorCrossRefID></csta:MonitorStartResponse>)",
      R"(<MonitorStartResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed5"><monitorCrossRefID>9</monitorCrossRefID></MonitorStartResponse>)",
      R"(<?xml version="1.0"?><MonitorStartResponse><monitorCrossRefID> 9 </monitorCrossRefID></MonitorStartResponse>)",
  };
  for (const auto& xml : forms) {
    auto decoded = decode(xml);
    ASSERT_TRUE(decoded.has_value()) << xml;
    EXPECT_EQ(std::get<monitor_start_response>(*decoded).monitor_cross_ref_id, "9");
  }
}

TEST(csta_codec, connection_children_in_either_order) {
  auto decoded = decode(
      R"(<AnswerCall><callToBeAnswered><deviceID>4711</deviceID><callID>FF01</callID></callToBeAnswered></AnswerCall>)");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<answer_call>(*decoded).call_to_be_answered, (connection_ref{"FF01", "4711"}));
}

TEST(csta_codec, not_known_and_restricted_devices) {
  auto decoded = decode(
      R"(<DeliveredEvent><monitorCrossRefID>1</monitorCrossRefID><connection><callID>C</callID><deviceID>4711</deviceID></connection><alertingDevice><deviceIdentifier>4711</deviceIdentifier></alertingDevice><callingDevice><restricted/></callingDevice><calledDevice><notKnown/></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><cause>newCall</cause></DeliveredEvent>)");
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  const auto& e = std::get<delivered_event>(*decoded);
  EXPECT_EQ(e.calling_device.presence, device_presence::restricted);
  EXPECT_EQ(e.called_device.presence, device_presence::not_known);
  EXPECT_EQ(e.last_redirection_device->presence, device_presence::not_required);
  EXPECT_FALSE(e.local_connection_info.has_value());
}

TEST(csta_codec, skips_extensions_and_unmodelled_children) {
  auto decoded = decode(
      R"(<HeldEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>1</monitorCrossRefID><heldConnection><callID>C</callID><deviceID>4711</deviceID></heldConnection><holdingDevice><deviceIdentifier>4711</deviceIdentifier></holdingDevice><cause>normal</cause><servicesPermitted><callControlServices><clearConnection>true</clearConnection></callControlServices></servicesPermitted><extensions><privateData><private xmlns:scx="http://www.siemens.com/schema/csta"><scx:x>1</scx:x></private></privateData></extensions></HeldEvent>)");
  ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
  EXPECT_EQ(std::get<held_event>(*decoded).cause, "normal");
}

TEST(csta_codec, escapes_text_both_ways) {
  const message m = make_call{"4711", "a<b>&c", std::nullopt, "x&y"};
  const auto xml = encode(m);
  EXPECT_NE(xml.find("a&lt;b&gt;&amp;c"), std::string::npos);
  auto decoded = decode(xml);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, m);
}

TEST(csta_codec, unknown_element_is_reported_not_dropped) {
  auto decoded = decode(R"(<csta:GetCSTAFeatures xmlns:csta="urn:x"><a/></csta:GetCSTAFeatures>)");
  ASSERT_TRUE(decoded.has_value());
  ASSERT_TRUE(std::holds_alternative<unknown_message>(*decoded));
  EXPECT_EQ(std::get<unknown_message>(*decoded).name, "GetCSTAFeatures");
  EXPECT_EQ(message_name(*decoded), "GetCSTAFeatures");
}

TEST(csta_codec, missing_mandatory_field_names_it) {
  auto decoded = decode(R"(<MakeCall><calledDirectoryNumber>1</calledDirectoryNumber></MakeCall>)");
  ASSERT_FALSE(decoded.has_value());
  EXPECT_TRUE(decoded.error().is(errc::message_malformed));
  EXPECT_EQ(decoded.error().detail, "MakeCall: missing callingDevice");
}

TEST(csta_codec, missing_nested_field_names_its_parent) {
  auto decoded = decode(R"(<MonitorStart><monitorObject><callObject/></monitorObject></MonitorStart>)");
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().detail, "MonitorStart: missing deviceObject in monitorObject");
}

TEST(csta_codec, invalid_xml_is_malformed) {
  for (const std::string xml : {"<MakeCall><callingDevice>1</MakeCall>", "", "not xml at all", "<a"}) {
    auto decoded = decode(xml);
    ASSERT_FALSE(decoded.has_value()) << xml;
    EXPECT_TRUE(decoded.error().is(errc::message_malformed)) << xml;
  }
}

TEST(csta_codec, wrong_values_are_malformed) {
  const std::vector<std::string> bad = {
      R"(<HeldEvent><monitorCrossRefID>1</monitorCrossRefID><heldConnection><callID>C</callID></heldConnection><holdingDevice><deviceIdentifier>1</deviceIdentifier></holdingDevice><localConnectionInfo>sleeping</localConnectionInfo></HeldEvent>)",
      R"(<QueuedEvent><monitorCrossRefID>1</monitorCrossRefID><queuedConnection><callID>C</callID></queuedConnection><queue><notKnown/></queue><callingDevice><notKnown/></callingDevice><calledDevice><notKnown/></calledDevice><numberQueued>three</numberQueued></QueuedEvent>)",
      R"(<RouteSelect><crossRefIdentifier>1</crossRefIdentifier><routeRegisterReqID>1</routeRegisterReqID><routeSelected>1</routeSelected><routeUsedReq>maybe</routeUsedReq></RouteSelect>)",
      R"(<AnswerCall><callToBeAnswered><nothing/></callToBeAnswered></AnswerCall>)",
      R"(<CSTAErrorCode/>)",
      // Found by the fuzzer: pugixml takes <:/> as an element whose local name is empty.
      R"(<RouteEnd><crossRefIdentifier>5001</crossRefIdentifier><routeRegisterReqID>12</routeRegisterReqID><errorValue><:/>ed/></errorValue></RouteEnd>)",
      R"(<CSTAErrorCode><x:/></CSTAErrorCode>)",
  };
  for (const auto& xml : bad) {
    auto decoded = decode(xml);
    ASSERT_FALSE(decoded.has_value()) << xml;
    EXPECT_TRUE(decoded.error().is(errc::message_malformed)) << xml;
  }
}

TEST(csta_codec, oversized_message_is_refused_by_encode_frame) {
  std::string out = "keep";
  const message m = make_call{"4711", std::string(70000, '1'), std::nullopt, std::nullopt};
  auto framed = encode_frame(m, 1, out);
  ASSERT_FALSE(framed.has_value());
  EXPECT_TRUE(framed.error().is(errc::frame_too_large));
  EXPECT_EQ(out, "keep");
}

}  // namespace
}  // namespace switchboard::csta
