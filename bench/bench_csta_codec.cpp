// CSTA codec throughput on a realistic event mix: frames decoded (framer + XML decode + dispatch
// to a neutral event) and frames encoded per second. Figures go to docs/benchmarks.md.
#include "switchboard/csta/codec.hpp"
#include "switchboard/csta/framer.hpp"
#include "switchboard/csta/translate.hpp"

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace {

using namespace switchboard::csta;

// One inbound call routed to an operator, answered, held, retrieved and cleared, as a PBX
// reports it on the route point and on the operator's extension (Siemens-like sizes).
std::vector<message> call_mix() {
  const device_ref caller = device_ref::known("N<0301234567>;displayNumber=0301234567");
  const device_ref route_point = device_ref::known("800");
  const device_ref op = device_ref::known("4711");
  const device_ref not_required{{}, device_presence::not_required};
  const connection_ref at_rp{"FF00010000000000EC6114647E570000", "800"};
  const connection_ref at_op{"FF00010000000000EC6114647E570000", "4711"};
  agent_ready_event ready;
  ready.monitor_cross_ref_id = "1169730060";
  ready.agent_device = op;
  ready.agent_id = "A100";
  ready.acd_group = "800";
  return {
      queued_event{"1169730059", at_rp, route_point, caller, route_point, not_required, 1, 0,
                   local_connection_state::queued, "1234#", "enteringDistribution"},
      route_request{"5001", "12", route_point, caller, route_point, at_rp, "normal", false, 4000, "1234#"},
      route_used{"5001", "12", op, caller, std::nullopt, std::nullopt},
      delivered_event{"1169730060", at_op, op, caller, route_point, not_required, local_connection_state::alerting,
                      "1234#", "distributed"},
      established_event{"1169730060", at_op, op, caller, route_point, not_required, local_connection_state::connected,
                        "1234#", "normal"},
      held_event{"1169730060", at_op, op, local_connection_state::hold, std::nullopt, "normal"},
      retrieved_event{"1169730060", at_op, op, local_connection_state::connected, std::nullopt, "normal"},
      connection_cleared_event{"1169730060", at_op, op, local_connection_state::null, std::nullopt, "normalClearing"},
      call_cleared_event{"1169730059", at_rp, std::nullopt, "normalClearing"},
      ready,
      system_status{std::nullopt, "normal"},
  };
}

std::string mix_stream(std::size_t rounds) {
  std::string stream;
  const auto mix = call_mix();
  for (std::size_t r = 0; r < rounds; ++r) {
    for (const auto& m : mix) {
      if (!encode_frame(m, event_invoke_id, stream)) std::abort();
    }
  }
  return stream;
}

void bm_decode_frames(benchmark::State& state) {
  const std::string stream = mix_stream(100);
  std::size_t frames = 0;
  std::size_t events = 0;
  for (auto _ : state) {
    framer f;
    // Feed as TCP would: segments of one MSS.
    for (std::size_t at = 0; at < stream.size(); at += 1460) {
      f.feed(std::string_view(stream).substr(at, 1460));
      for (auto next = f.next(); next && *next; next = f.next()) {
        auto decoded = decode((*next)->xml);
        if (!decoded) std::abort();
        if (to_event(*decoded)) ++events;
        ++frames;
      }
    }
  }
  benchmark::DoNotOptimize(events);
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(stream.size() * state.iterations()));
}
BENCHMARK(bm_decode_frames);

void bm_encode_frames(benchmark::State& state) {
  const auto mix = call_mix();
  std::string out;
  std::size_t frames = 0;
  for (auto _ : state) {
    out.clear();
    for (const auto& m : mix) {
      if (!encode_frame(m, event_invoke_id, out)) std::abort();
      ++frames;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}
BENCHMARK(bm_encode_frames);

}  // namespace

BENCHMARK_MAIN();
