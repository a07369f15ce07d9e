// Server wiring: the event loop thread, the database pool and listener, the health endpoint,
// signals and graceful shutdown.
#include "switchboard/app/server.hpp"

#include "switchboard/app/health.hpp"
#include "switchboard/calls/call_centre.hpp"
#include "switchboard/csta/link.hpp"
#include "switchboard/desk/server.hpp"
#include "switchboard/log.hpp"
#include "switchboard/metrics/metrics.hpp"
#include "switchboard/realtime.hpp"
#include "switchboard/routing/router.hpp"
#include "switchboard/store/call_queries.hpp"
#include "switchboard/store/listener.hpp"
#include "switchboard/store/migrations.hpp"
#include "switchboard/store/pool.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <atomic>
#include <optional>

namespace switchboard::app {

namespace asio = boost::asio;

struct server::impl {
  config cfg;
  metrics::registry counters;  // before the loop: coroutine frames that count into it die with the loop
  asio::io_context loop{1};
  asio::thread_pool blocking{1};  // connects of the LISTEN connection
  store::connection_pool pool;
  std::optional<store::notification_listener> listener;
  std::optional<health_endpoint> health;
  std::shared_ptr<csta::csta_link> link;
  std::optional<calls::call_centre> centre;
  std::optional<routing::router> router;
  std::optional<desk::server> desk;
  asio::signal_set signals{loop, SIGINT, SIGTERM};
  asio::steady_timer probe_timer{loop};
  asio::steady_timer realtime_timer{loop};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int schema = 0;
  bool database_seen_up = false;
  std::atomic<bool> stopping{false};

  explicit impl(config c)
      : cfg(std::move(c)),
        pool(store::pool_config{.url = cfg.database.url,
                                .size = cfg.database.pool_size,
                                .routing_size = cfg.database.routing_pool_size,
                                .writes_size = cfg.database.writes_pool_size,
                                .connect_timeout = cfg.database.connect_timeout,
                                .statement_timeout = cfg.database.statement_timeout,
                                .application_name = "switchboard-" + cfg.node_name,
                                .routing_realtime_priority = cfg.scheduling.realtime_priority}) {}

  health_report report() const {
    const bool db_up = database_seen_up && pool.database_up();
    nlohmann::json body{
        {"status", db_up ? "ok" : "degraded"},
        {"node", cfg.node_name},
        {"database", db_up ? "up" : "down"},
        {"schema_version", schema},
        {"notifications", listener && listener->listening() ? "listening" : "down"},
        {"pbx_link", link ? std::string(csta::to_string(link->state())) : std::string("disabled")},
        {"uptime_seconds",
         std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count()},
    };
    return {db_up, body.dump()};
  }

  // The call-record writers' figures into /metrics, read when it is asked for (on the loop).
  void count_writes() {
    if (!centre) return;
    const auto& w = centre->write_counts();
    counters.call_writes(centre->pending_writes(), w.applied, w.refused, w.failed, w.batches);
  }

  // Keeps the database flag fresh for /health even when no call is running.
  asio::awaitable<void> probe_database() {
    for (;;) {
      auto ok = co_await store::ping(pool);
      database_seen_up = ok.has_value();
      probe_timer.expires_after(std::chrono::seconds(2));
      auto [ec] = co_await probe_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
    }
  }

  // scheduling.realtime_priority's governor (realtime.hpp), on the event loop's thread: once a
  // second the CPU the route's path used (this thread, the routing lane's workers and backends);
  // SCHED_FIFO given up above scheduling.realtime_cpu_limit, taken again after quiet intervals.
  asio::awaitable<void> govern_realtime() {
    auto log = logger("app");
    auto& routing = pool.lane(store::pool_lane::routing);
    const int priority = cfg.scheduling.realtime_priority;
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    constexpr int quiet_seconds = 10;
    realtime_governor governor(cpus > 0 ? static_cast<int>(cpus) : 1, cfg.scheduling.realtime_cpu_limit, quiet_seconds);
    const pid_t loop_thread = ::gettid();
    const auto path = [&] {
      auto tids = routing.realtime_path();
      tids.push_back(loop_thread);
      return tids;
    };
    cpu_meter meter;
    meter.sample(path());
    auto last = std::chrono::steady_clock::now();
    for (;;) {
      realtime_timer.expires_after(std::chrono::seconds(1));
      auto [ec] = co_await realtime_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopping) co_return;
      const auto now = std::chrono::steady_clock::now();
      const auto change = governor.observe(meter.sample(path()), now - last);
      last = now;
      if (change == realtime_governor::change::none) continue;
      const bool on = change == realtime_governor::change::promote;
      auto loop_done = on ? make_realtime(priority) : make_normal();
      auto lane_done = routing.set_realtime(on);
      counters.realtime_active(on);
      if (on) {
        log->info("real-time scheduling taken again: the route's path used under {:g} % of the host's CPUs for {} s",
                  governor.limit_percent() * 0.75, quiet_seconds);
      } else {
        counters.realtime_demoted();
        log->warn(
            "real-time scheduling given up: the route's path used {:.0f} % of the host's CPUs, above the limit "
            "of {} %",
            governor.last_share_percent(), governor.limit_percent());
      }
      if (!loop_done || !lane_done)
        log->warn("the route's path could not all be switched: {}",
                  (!loop_done ? loop_done : lane_done).error().message());
    }
  }

  // NOTIFY presence carries {"operator_id", "state", ...} from any node.
  void on_presence(const std::string& payload) {
    if (centre) centre->presence_notification(payload);
  }

  // The PBX link, the router, the desktops and the call-control layer between them.
  bool start_call_centre() {
    auto log = logger("app");
    auto link_config = cfg.pbx.csta;
    if (cfg.pbx.monitor_from_database) {
      auto devices = store::load_monitored_devices(pool);
      if (!devices) {
        log->error("cannot read the devices to monitor: {}", devices.error().message());
        return false;
      }
      for (auto& d : devices->route_points) link_config.route_points.push_back(d);
      for (auto& d : devices->extensions) link_config.devices.push_back(d);
    }
    link = csta::csta_link::create(loop.get_executor(), link_config);
    // One writer per connection of the writes lane (one in all when the writes share the general lane).
    auto calls_config = cfg.calls;
    calls_config.write_lanes = static_cast<std::size_t>(std::max(cfg.database.writes_pool_size, 1));
    centre.emplace(loop.get_executor(), pool, *link, std::move(calls_config));
    router.emplace(loop.get_executor(), blocking.get_executor(), pool, *centre, cfg.routing, &counters);
    if (cfg.desk.enabled) {
      desk.emplace(loop.get_executor(), cfg.desk.server, pool, *centre);
      auto started = desk->start();
      if (!started) {
        log->error("desktop channel: {}", started.error().message());
        return false;
      }
    }
    if (desk) centre->attach(*router, *desk);
    centre->start();
    router->start();
    // Calls this node left open when it stopped: those the PBX still has (its first snapshots
    // show them at operators' phones) go on with their records; the rest are over, their
    // operators freed and records closed. Route requests wait meanwhile.
    auto boot = [this, log, link_config]() -> asio::awaitable<void> {
      std::vector<std::int64_t> live;
      if (cfg.pbx.enabled && !stopping) {
        co_await centre->hold_offers();
        link->start();
        log->info("PBX link to {}:{} ({} route points, {} devices monitored)", link_config.host, link_config.port,
                  link_config.route_points.size(), link_config.devices.size());
        // Not forever: a PBX that is away is the reconnect loop's business, and its calls are
        // found when it is back.
        asio::steady_timer pause(loop);
        for (int i = 0; i < 300 && link->state() != csta::link_state::up && !stopping; ++i) {
          pause.expires_after(std::chrono::milliseconds(100));
          co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        live = co_await centre->resume_calls();
      }
      auto reconciled = co_await store::reconcile_calls(pool, live, cfg.node_name);
      if (!reconciled)
        log->error("start-up reconciliation failed: {}", reconciled.error().message());
      else if (reconciled->first || reconciled->second || !live.empty())
        log->warn(
            "start-up reconciliation: {} calls live at the PBX resumed, {} operators freed, {} open call "
            "records closed",
            live.size(), reconciled->first, reconciled->second);
      if (centre) centre->release_offers();
    };
    asio::co_spawn(loop, std::move(boot), asio::detached);
    return true;
  }

  void shutdown(const char* why) {
    if (stopping.exchange(true)) return;
    logger("app")->info("stopping: {}", why);
    probe_timer.cancel();
    realtime_timer.cancel();
    if (listener) listener->stop();
    if (desk) desk->stop();
    if (router) router->stop();
    if (centre) centre->stop();
    if (link) link->stop();
    if (health) health->stop();
    signals.cancel();
    // The phones' last presence moves and call records reach PostgreSQL before the loop stops
    // (work still in flight finishes; the loop returns when nothing is left).
    auto drain = [this]() -> asio::awaitable<void> {
      constexpr auto limit = std::chrono::seconds(5);
      if (centre && !co_await centre->drained(limit))
        logger("app")->warn("stopping with {} call record writes not applied: PostgreSQL did not take them in {} s",
                            centre->pending_writes(), limit.count());
      loop.stop();
    };
    asio::co_spawn(loop, std::move(drain), asio::detached);
  }
};

server::server(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
server::~server() = default;

void server::stop() {
  asio::post(impl_->loop, [this] { impl_->shutdown("stop requested"); });
}

int server::run() {
  auto& s = *impl_;
  auto log = logger("app");
  log->info("switchboard node '{}' starting", s.cfg.node_name);

  if (s.cfg.database.migrate_on_start) {
    auto migrated = store::migrate(s.cfg.database.url);
    if (!migrated) {
      log->error("{}", migrated.error().message());
      return 1;
    }
  }
  auto version = store::schema_version(s.cfg.database.url);
  if (!version) {
    log->error("{}", version.error().message());
    return 1;
  }
  const int needed = store::bundled_migrations().empty() ? 0 : store::bundled_migrations().back().version;
  if (*version < needed) {
    log->error("database schema is at version {}, this build needs {}: run `switchboard migrate --config FILE`",
               *version, needed);
    return 1;
  }
  s.schema = *version;
  s.database_seen_up = true;

  if (!s.start_call_centre()) return 1;

  s.listener.emplace(s.loop.get_executor(), s.blocking.get_executor(),
                     store::pool_config{.url = s.cfg.database.url, .connect_timeout = s.cfg.database.connect_timeout},
                     std::vector<std::string>{"presence"},
                     [&s](const store::notification& n) { s.on_presence(n.payload); });
  s.listener->start();

  if (s.cfg.health.enabled) {
    try {
      s.health.emplace(
          s.loop.get_executor(),
          asio::ip::tcp::endpoint(asio::ip::make_address(s.cfg.health.listen), s.cfg.health.port),
          [&s] { return s.report(); },
          [&s] {
            s.count_writes();
            return s.counters.text();
          });
      log->info("health endpoint on http://{}:{}/health (metrics: /metrics)", s.cfg.health.listen,
                s.health->local_endpoint().port());
    } catch (const std::exception& e) {
      log->error("cannot open the health endpoint on {}:{}: {} (check health.listen and health.port)",
                 s.cfg.health.listen, s.cfg.health.port, e.what());
      return 1;
    }
  }

  s.signals.async_wait([&s](const boost::system::error_code& ec, int signal) {
    if (!ec) s.shutdown(signal == SIGINT ? "SIGINT" : "SIGTERM");
  });
  asio::co_spawn(s.loop, s.probe_database(), asio::detached);

  if (const int priority = s.cfg.scheduling.realtime_priority; priority > 0) {
    if (auto made = make_realtime(priority); made) {
      log->info("event loop at SCHED_FIFO priority {}, given up above {} % of the host's CPUs", priority,
                s.cfg.scheduling.realtime_cpu_limit);
      s.counters.realtime_active(true);
      asio::co_spawn(s.loop, s.govern_realtime(), asio::detached);
    } else {
      log->warn("the event loop stays at the normal scheduling priority, not SCHED_FIFO {}: {}", priority,
                made.error().message());
    }
  }
  log->info("ready (schema version {}, database pool of {})", s.schema, s.cfg.database.pool_size);
  s.loop.run();
  s.pool.close();
  s.blocking.join();
  log->info("stopped");
  return 0;
}

}  // namespace switchboard::app
