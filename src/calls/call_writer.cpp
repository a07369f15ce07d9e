#include "switchboard/calls/call_writer.hpp"

#include "switchboard/calls/write_lanes.hpp"
#include "switchboard/log.hpp"
#include "switchboard/store/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <vector>

namespace switchboard::calls {

namespace asio = boost::asio;

struct call_writer::state : std::enable_shared_from_this<state> {
  asio::any_io_executor loop;
  store::connection_pool& pool;
  std::size_t max_queued;
  write_lanes writes;
  // One per lane: a writer waits on its own (re-arming a shared timer would cancel the others' waits).
  std::vector<std::unique_ptr<asio::steady_timer>> wakes;
  write_counters counters;
  bool stopped = false;
  std::shared_ptr<spdlog::logger> log = logger("calls");

  state(asio::any_io_executor l, store::connection_pool& p, std::size_t lanes, std::size_t max, std::size_t spill)
      : loop(std::move(l)), pool(p), max_queued(max), writes(lanes, spill) {
    for (std::size_t lane = 0; lane < writes.lanes(); ++lane)
      wakes.push_back(std::make_unique<asio::steady_timer>(loop));
    counters.batches.resize(writes.lanes());
  }

  void wake_all() {
    for (auto& wake : wakes) wake->cancel();
  }

  // At stop, every writer stays until no write is left anywhere: a write waiting behind a
  // conflict may still come to its lane.
  asio::awaitable<void> run(std::size_t lane) {
    auto self = shared_from_this();
    while (!stopped || writes.pending() > 0) {
      if (writes.queued(lane) == 0) {
        wakes[lane]->expires_at(asio::steady_timer::time_point::max());
        co_await wakes[lane]->async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      auto batch = writes.take(lane);
      const auto size = batch.size();
      auto applied = co_await store::apply_call_writes(pool.lane(store::pool_lane::writes), std::move(batch));
      // Writes that waited behind a conflict may have gone to any lane; at stop, the others look again.
      if (writes.done(lane) > 0 || stopped) wake_all();
      if (!applied) {
        counters.failed += size;
        log->error("{} call record writes lost: {}", size, applied.error().message());
        continue;
      }
      ++counters.batches[lane];
      counters.applied += size - applied->failed.size() - applied->refused.size();
      counters.refused += applied->refused.size();
      counters.failed += applied->failed.size();
      for (const auto& [index, why] : applied->failed) log->warn("call record write refused: {}", why.message());
    }
  }
};

call_writer::call_writer(asio::any_io_executor loop, store::connection_pool& pool, std::size_t lanes,
                         std::size_t max_queued, std::size_t spill)
    : state_(std::make_shared<state>(std::move(loop), pool, lanes, max_queued, spill)) {}

void call_writer::start() {
  for (std::size_t lane = 0; lane < state_->writes.lanes(); ++lane) {
    auto writer = [s = state_, lane]() { return s->run(lane); };
    asio::co_spawn(state_->loop, std::move(writer), asio::detached);
  }
}

void call_writer::write(store::call_write write) {
  auto& s = *state_;
  const auto lane = s.writes.push(std::move(write));
  if (s.writes.pending() == s.max_queued)
    s.log->error("{} database writes queued: PostgreSQL is not keeping up (check the database server)",
                 s.writes.pending());
  if (lane) s.wakes[*lane]->cancel();
}

void call_writer::stop() {
  state_->stopped = true;
  state_->wake_all();
}

std::size_t call_writer::pending() const noexcept { return state_->writes.pending(); }
const write_counters& call_writer::counters() const noexcept { return state_->counters; }

}  // namespace switchboard::calls
