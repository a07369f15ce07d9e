// Router: every wait has a deadline. The SQL runs on the pool's workers and cannot be cancelled,
// so a route request races its decision against a timer; a decision that loses the race is
// undone (reservation released, call withdrawn) instead of leaving an operator or call stuck.
#include "switchboard/routing/router.hpp"

#include "switchboard/log.hpp"
#include "switchboard/metrics/metrics.hpp"
#include "switchboard/routing/steps.hpp"
#include "switchboard/store/listener.hpp"
#include "switchboard/store/routing_queries.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>
#include <unordered_map>
#include <vector>

namespace switchboard::routing {

namespace asio = boost::asio;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A call this node keeps waiting, with the timer of its next check.
struct waiting_entry {
  std::int64_t queue_id = 0;
  std::string pbx_call_id;
  steady_clock::time_point entered;  // when it entered its current queue
  std::shared_ptr<asio::steady_timer> timer;
};

// One route request's race between the database and the route timeout.
struct pending_decision {
  explicit pending_decision(const asio::any_io_executor& loop) : deadline(loop) {}
  asio::steady_timer deadline;
  std::optional<result<store::route_decision>> outcome;
  bool abandoned = false;  // the fallback was answered; a late decision must be undone
};

}  // namespace

result<void> validate(const router_config& config) {
  if (config.route_timeout <= milliseconds::zero())
    return error{errc::config_invalid, "routing.route_timeout must be positive"};
  if (config.reservation_timeout <= std::chrono::seconds::zero())
    return error{errc::config_invalid, "routing.reservation_timeout must be positive"};
  if (config.route_timeout >= config.reservation_timeout)
    return error{errc::config_invalid, "routing.route_timeout must be shorter than routing.reservation_timeout"};
  if (config.expiry_interval <= milliseconds::zero())
    return error{errc::config_invalid, "routing.expiry_interval must be positive"};
  if (config.recheck_interval <= milliseconds::zero())
    return error{errc::config_invalid, "routing.recheck_interval must be positive"};
  if (config.stats_interval <= milliseconds::zero())
    return error{errc::config_invalid, "routing.stats_interval must be positive"};
  return {};
}

struct router::state : std::enable_shared_from_this<router::state> {
  state(asio::any_io_executor l, asio::any_io_executor b, store::connection_pool& p, decision_sink& s, router_config c,
        metrics::registry* m)
      : loop(std::move(l)),
        blocking(std::move(b)),
        pool(p.lane(store::pool_lane::routing)),
        general_lane(p),
        sink(s),
        config(std::move(c)),
        counters(m),
        sweep(loop),
        stats(loop) {}

  asio::any_io_executor loop;
  asio::any_io_executor blocking;
  store::connection_pool& pool;          // decisions: the routing lane
  store::connection_pool& general_lane;  // queue figures and timers
  decision_sink& sink;
  router_config config;
  metrics::registry* counters;  // none: nothing is counted
  std::shared_ptr<spdlog::logger> log = logger("routing");
  std::unordered_map<std::int64_t, std::vector<int>> thresholds;  // queue -> check_after_seconds
  std::unordered_map<std::int64_t, waiting_entry> waiting;
  std::unique_ptr<store::notification_listener> listener;
  asio::steady_timer sweep;
  asio::steady_timer stats;
  bool stopped = false;
  bool refreshing = false;
  bool refresh_again = false;
  std::size_t refreshes = 0;

  void answer(const pbx_answer& a) {
    if (const auto* select = std::get_if<route_select_answer>(&a))
      sink.route_select(*select);
    else
      sink.route_end(std::get<route_end_answer>(a));
  }

  void fallback(const call_offered& call, const std::string& why) {
    const auto& where = config.fallback_destination;
    log->error("call {} at route point {}: {}; answered the fallback ({})", call.pbx_call_id, call.route_point, why,
               where.empty() ? "route end: PBX default" : "route select " + where);
    answer(fallback_answer(call, where, why));
  }

  void apply(const store::route_decision& d, const call_offered& call) {
    answer(answer_for(d, call));
    log->debug("call {} ({}) at {}: {} ({})", call.pbx_call_id, d.call_id, call.route_point, kind_name(d.kind),
               d.reason);
    if (d.kind == store::route_kind::operator_reserved)
      sink.offer_to_operator(
          {d.call_id, call.pbx_call_id, d.operator_id, d.device, d.queue_id, false, d.customer_read, d.customer});
    else if (d.kind == store::route_kind::queued)
      watch(d.call_id, d.queue_id, call.pbx_call_id);
  }

  // The database decided after the fallback was answered: give back what it took, and hand
  // the call row it made to the sink, which closes it when the call ends.
  asio::awaitable<void> undo_late(const result<store::route_decision>& late, const call_offered& call) {
    if (!late) co_return;  // nothing was written
    if (late->call_id) sink.adopt_late_record({call.pbx_call_id, late->call_id});
    if (late->kind == store::route_kind::operator_reserved) {
      auto released = co_await store::release_reservation(pool, late->operator_id, late->call_id);
      log->warn("call {}: decision came after the fallback; operator {} released ({})", call.pbx_call_id,
                late->operator_id, released ? "ok" : released.error().message());
    } else if (late->kind == store::route_kind::queued) {
      auto withdrawn = co_await store::withdraw_waiting_call(pool, late->call_id, "answered with the fallback");
      log->warn("call {}: decision came after the fallback; withdrawn from queue {} ({})", call.pbx_call_id,
                late->queue_id, withdrawn ? "ok" : withdrawn.error().message());
    }
  }

  // `record` is the call's record when it is routed again (0: a new call).
  static asio::awaitable<void> decide(std::shared_ptr<state> self, std::shared_ptr<pending_decision> pending,
                                      store::call_offer offer, call_offered call, std::int64_t record) {
    result<store::route_decision> outcome = error{errc::internal, "not decided"};
    const auto asked = steady_clock::now();
    if (record)
      outcome = co_await store::reroute_call(self->pool, record, offer.node, offer.reservation);
    else
      outcome = co_await store::offer_call(self->pool, offer);
    if (self->counters) self->counters->route_decided(steady_clock::now() - asked);
    if (pending->abandoned) {
      co_await self->undo_late(outcome, call);
      co_return;
    }
    pending->outcome = std::move(outcome);
    pending->deadline.cancel();
  }

  asio::awaitable<void> route(call_offered call, std::int64_t record) {
    auto self = shared_from_this();
    const auto requested = steady_clock::now();
    auto count_answer = [&](const char* outcome) {
      if (counters) counters->route_answered(outcome, steady_clock::now() - requested);
    };
    store::call_offer offer{call.route_point, call.pbx_call_id,          call.caller, call.dialled, call.ivr_data,
                            config.node,      config.reservation_timeout};
    auto pending = std::make_shared<pending_decision>(loop);
    pending->deadline.expires_after(config.route_timeout);
    asio::co_spawn(loop, decide(self, pending, std::move(offer), call, record), asio::detached);
    // The decision may be in before this coroutine gets to its wait (its cancel() then finds no
    // waiter, and the answer would wait for the whole route timeout): wait only for one still out.
    if (!pending->outcome) co_await pending->deadline.async_wait(use_tuple);
    if (!pending->outcome) {
      pending->abandoned = true;
      fallback(call, "no decision within routing.route_timeout (" + std::to_string(config.route_timeout.count()) +
                         " ms); check the database and route_call()");
      count_answer("fallback");
      co_return;
    }
    if (!*pending->outcome) {
      fallback(call, "routing failed: " + pending->outcome->error().message());
      count_answer("fallback");
      co_return;
    }
    apply(**pending->outcome, call);
    count_answer(kind_name((*pending->outcome)->kind));
  }

  const std::vector<int>& thresholds_of(std::int64_t queue_id) const {
    static const std::vector<int> none;
    auto it = thresholds.find(queue_id);
    return it == thresholds.end() ? none : it->second;
  }

  void forget(std::int64_t call_id) {
    auto it = waiting.find(call_id);
    if (it == waiting.end()) return;
    it->second.timer->cancel();
    waiting.erase(it);
  }

  void watch(std::int64_t call_id, std::int64_t queue_id, std::string pbx_call_id) {
    if (stopped) return;
    waiting[call_id] = {queue_id, std::move(pbx_call_id), steady_clock::now(),
                        std::make_shared<asio::steady_timer>(loop)};
    asio::co_spawn(loop, watch_loop(shared_from_this(), call_id), asio::detached);
  }

  // Looks at one waiting call at each threshold of its queue (and at least every
  // recheck_interval) until it is given to an operator or leaves the queue.
  static asio::awaitable<void> watch_loop(std::shared_ptr<state> self, std::int64_t call_id) {
    for (;;) {
      auto it = self->waiting.find(call_id);
      if (self->stopped || it == self->waiting.end()) co_return;
      auto timer = it->second.timer;
      const auto waited = duration_cast<milliseconds>(steady_clock::now() - it->second.entered);
      timer->expires_after(
          next_check_after(self->thresholds_of(it->second.queue_id), waited, self->config.recheck_interval));
      co_await timer->async_wait(use_tuple);
      it = self->waiting.find(call_id);
      if (self->stopped || it == self->waiting.end() || it->second.timer != timer) co_return;

      auto checked = co_await store::recheck_waiting_call(self->pool, call_id, self->config.reservation_timeout);
      it = self->waiting.find(call_id);
      if (self->stopped || it == self->waiting.end()) {
        // ended while we asked: give back an operator reserved for a call that is gone
        if (checked && checked->kind == store::route_kind::operator_reserved)
          (void)co_await store::release_reservation(self->pool, checked->operator_id, call_id);
        co_return;
      }
      if (!checked) {
        self->log->warn("waiting call {}: recheck failed: {}; trying again", call_id, checked.error().message());
        continue;
      }
      const auto& d = *checked;
      switch (d.kind) {
        case store::route_kind::queued:
          if (d.queue_id != it->second.queue_id) {  // overflowed into another queue: its timers from now
            it->second.queue_id = d.queue_id;
            it->second.entered = steady_clock::now();
          }
          continue;
        case store::route_kind::operator_reserved:
          self->sink.offer_to_operator({call_id, it->second.pbx_call_id, d.operator_id, d.device, d.queue_id, true,
                                        d.customer_read, d.customer});
          break;
        case store::route_kind::gone:
          break;
        case store::route_kind::closed:
        case store::route_kind::destination:
        case store::route_kind::default_route:
          self->log->info("waiting call {} leaves the queue: {}", call_id, d.reason);
          self->sink.redirect_waiting({call_id, it->second.pbx_call_id, d.destination, d.reason});
          break;
      }
      self->waiting.erase(call_id);
      co_return;
    }
  }

  asio::awaitable<void> operator_ready(std::int64_t operator_id) {
    auto self = shared_from_this();
    auto picked = co_await store::pick_call(pool, operator_id, config.reservation_timeout);
    if (!picked) {
      log->error("operator {} is ready but pick_call failed: {}", operator_id, picked.error().message());
      co_return;
    }
    if (!*picked) co_return;
    const auto& a = **picked;
    std::string pbx_call_id;
    if (auto it = waiting.find(a.call_id); it != waiting.end()) pbx_call_id = it->second.pbx_call_id;
    forget(a.call_id);
    sink.offer_to_operator(
        {a.call_id, pbx_call_id, operator_id, a.device, a.queue_id, true, a.customer_read, a.customer});
  }

  // Runs `step` every `interval` until the router stops.
  template <class Step>
  static asio::awaitable<void> every(std::shared_ptr<state> self, asio::steady_timer& timer,
                                     std::chrono::milliseconds interval, Step step) {
    while (!self->stopped) {
      timer.expires_after(interval);
      co_await timer.async_wait(use_tuple);
      if (self->stopped) break;
      co_await step();
    }
  }

  asio::awaitable<void> sweep_once() {
    auto self = shared_from_this();
    auto expired = co_await store::expire_reservations(pool);
    if (!expired) co_return;  // the pool logs an outage once; the next sweep tries again
    for (const auto& e : *expired) {
      log->warn("reservation of operator {} for call {} expired unconfirmed; the operator is free again", e.operator_id,
                e.call_id);
      co_await operator_ready(e.operator_id);
    }
  }

  // On the general lane: refreshing every queue is one long statement (~20 ms at 10,000
  // operators, 0054) that must not hold one of the routing lane's connections.
  asio::awaitable<void> stats_once() {
    auto self = shared_from_this();
    auto refreshed = co_await store::refresh_queue_stats(general_lane);
    if (!refreshed) log->debug("queue statistics not refreshed: {}", refreshed.error().message());
  }

  asio::awaitable<void> refresh_once() {
    auto self = shared_from_this();
    auto loaded = co_await store::load_queue_timers(general_lane);
    if (!loaded) {
      log->warn("queue timers not reloaded: {}; keeping the previous ones", loaded.error().message());
      co_return;
    }
    thresholds.clear();
    for (auto& q : *loaded) thresholds[q.queue_id] = std::move(q.check_after_seconds);
    ++refreshes;
  }

  // NOTIFYs come in bursts (one per changed table): one reload runs, and one more after it.
  void request_refresh() {
    if (refreshing) {
      refresh_again = true;
      return;
    }
    refreshing = true;
    asio::co_spawn(
        loop,
        [self = shared_from_this()]() -> asio::awaitable<void> {
          do {
            self->refresh_again = false;
            co_await self->refresh_once();
          } while (self->refresh_again && !self->stopped);
          self->refreshing = false;
        },
        asio::detached);
  }

  void start() {
    stopped = false;
    request_refresh();
    auto self = shared_from_this();
    asio::co_spawn(loop, every(self, sweep, config.expiry_interval, [self] { return self->sweep_once(); }),
                   asio::detached);
    asio::co_spawn(loop, stats_once(), asio::detached);
    asio::co_spawn(loop, every(self, stats, config.stats_interval, [self] { return self->stats_once(); }),
                   asio::detached);
    if (!config.listen_for_rule_changes) return;
    std::weak_ptr<state> weak = self;
    auto on_change = [weak] {
      if (auto self = weak.lock()) self->request_refresh();
    };
    listener = std::make_unique<store::notification_listener>(
        loop, blocking, pool.config(), std::vector<std::string>{"routing_rules"},
        [on_change](const store::notification&) { on_change(); }, on_change);
    listener->start();
  }

  void stop() {
    stopped = true;
    sweep.cancel();
    stats.cancel();
    for (auto& [id, entry] : waiting) entry.timer->cancel();
    waiting.clear();
    if (listener) {
      listener->stop();
      listener.reset();  // nothing of it is left to post into the loop from our destructor
    }
  }
};

router::router(asio::any_io_executor loop, asio::any_io_executor blocking, store::connection_pool& pool,
               decision_sink& sink, router_config config, metrics::registry* metrics)
    : state_(std::make_shared<state>(std::move(loop), std::move(blocking), pool, sink, std::move(config), metrics)) {}

router::~router() { state_->stop(); }

void router::start() { state_->start(); }

void router::stop() { state_->stop(); }

asio::awaitable<void> router::route(call_offered call) { return state_->route(std::move(call), 0); }
asio::awaitable<void> router::reroute(call_offered call, std::int64_t call_id) {
  return state_->route(std::move(call), call_id);
}

asio::awaitable<void> router::operator_ready(std::int64_t operator_id) { return state_->operator_ready(operator_id); }

asio::awaitable<void> router::call_ended(std::int64_t call_id) {
  auto s = state_;
  s->forget(call_id);
  auto withdrawn = co_await store::withdraw_waiting_call(s->pool, call_id, "call ended");
  if (!withdrawn) s->log->warn("call {} ended but was not withdrawn: {}", call_id, withdrawn.error().message());
}

asio::awaitable<void> router::refresh() { return state_->refresh_once(); }

std::size_t router::waiting_calls() const noexcept { return state_->waiting.size(); }

std::size_t router::refreshes() const noexcept { return state_->refreshes; }

}  // namespace switchboard::routing
