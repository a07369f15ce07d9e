// Call-control layer: every PBX event, router decision and desktop command passes through here
// on the event loop. Database writes go through call_writer, which keeps each operator's and
// each call's in order and batches them under load.
#include "switchboard/calls/call_centre.hpp"
#include "switchboard/calls/call_writer.hpp"

#include "switchboard/log.hpp"
#include "switchboard/routing/pbx_adapter.hpp"
#include "switchboard/store/operator_queries.hpp"
#include "switchboard/store/pool.hpp"
#include "switchboard/store/routing_queries.hpp"
#include "switchboard/store/stats_queries.hpp"

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <set>
#include <unordered_set>

namespace switchboard::calls {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct call_centre::state : std::enable_shared_from_this<call_centre::state> {
  asio::any_io_executor loop;
  store::connection_pool& pool;
  pbx::pbx_link& link;
  call_centre_config config;
  routing::router* router = nullptr;
  desk::hub* hub = nullptr;
  std::shared_ptr<spdlog::logger> log = logger("calls");

  call_tracker tracker;
  call_centre_counters counters;
  std::unordered_map<pbx::device_id, std::int64_t> operator_of_device;
  std::unordered_map<std::int64_t, pbx::device_id> device_of_operator;
  std::unordered_map<std::int64_t, store::queue_setting> queues;
  std::unordered_map<pbx::call_id, std::int64_t> queue_of_call;  // pbx call id -> queue id
  std::unordered_map<pbx::call_id, pbx::device_id> parked_at;    // queued calls: the wait device
  // Queued calls whose queue has no wait device stay at their route point, their routing dialog
  // open (the PBX's routeing timer bounds the wait): pbx call id -> dialog.
  std::unordered_map<pbx::call_id, std::string> held_dialogs;
  // Held calls whose dialog the PBX ended: when it then moves them on, that is its default routing.
  std::unordered_set<pbx::call_id> left_to_pbx;
  // Operators offered a call whose phone has not rung yet: pbx call id -> operator.
  std::unordered_map<pbx::call_id, std::int64_t> offered_to;
  // Calls told to ring an operator's phone that has not rung yet: pbx call id -> that phone.
  std::unordered_map<pbx::call_id, pbx::device_id> sent_to;
  // Routing dialogs answered with an operator's phone, until they close: dialog -> pbx call id.
  std::unordered_map<std::string, pbx::call_id> selected;
  // Screen pops waiting for the customer record, (operator, call record) -> the call's events
  // for that operator meanwhile: the desktop gets the pop first, then the call's story in order.
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<desk::call_event>> popping;
  // Calls that ended before the router's decision named their record: kept a while, so the
  // record is closed with the real end when the decision comes.
  std::unordered_map<pbx::call_id, tracked_call> ended_unrecorded;
  std::unordered_map<std::int64_t, std::int64_t> wrap_up_call;  // operator -> call in wrap-up (0: no record yet)
  // Consultations that went on after the held caller left, by the pbx call id they began with:
  // both operators stay busy on them, and the one who consulted owes the caller's call its
  // wrap-up, which starts when the consultation frees him. The caller's call may have no record
  // yet (a direct call whose record is still being written, a call the PBX routed by itself):
  // the record is filled in when it comes.
  struct kept_consultation {
    std::int64_t consulting = 0;  // 0 once his wrap-up started
    std::int64_t record = 0;      // the caller's, 0 while it is not known
    pbx::call_id caller_call;     // the caller's pbx call id when he left
    bool counted = false;         // the caller's call is counted as handled by him
    std::chrono::seconds wrap_up{0};
  };
  std::unordered_map<pbx::call_id, kept_consultation> kept_consultations;
  // Operators in the wrap-up of a caller's call that had no record yet: its pbx call id -> operator.
  std::unordered_map<pbx::call_id, std::int64_t> wrap_up_unrecorded;
  std::unordered_map<std::int64_t, std::unique_ptr<asio::steady_timer>> wrap_up_timers;
  std::unordered_map<std::int64_t, std::unique_ptr<asio::steady_timer>> no_answer_timers;

  std::map<std::int64_t, std::string> last_stats;  // tenant -> the last statistics pushed (serialised)
  asio::steady_timer stats_timer;

  // Start-up: route requests wait until the calls the PBX still has are matched with their
  // records (resume_calls) and the rest are closed; calls found in the snapshots meanwhile.
  bool holding_offers = false;
  std::vector<pbx::call_offered> held_offers;
  std::vector<pbx::call_id> found_calls;

  call_writer writer;
  bool stopped = false;

  state(asio::any_io_executor l, store::connection_pool& p, pbx::pbx_link& k, call_centre_config c)
      : loop(std::move(l)),
        pool(p),
        link(k),
        config(std::move(c)),
        stats_timer(loop),
        writer(loop, pool, config.write_lanes, config.max_queued_writes, config.write_spill) {}

  // ---- operators and devices ---------------------------------------------------------------
  void learn_device(std::int64_t operator_id, const pbx::device_id& device) {
    if (device.empty() || operator_id == 0) return;
    if (auto old = device_of_operator.find(operator_id); old != device_of_operator.end() && old->second != device) {
      operator_of_device.erase(old->second);
      tracker.remove_operator_device(old->second);
    }
    operator_of_device[device] = operator_id;
    device_of_operator[operator_id] = device;
    tracker.add_operator_device(device);
  }

  std::int64_t operator_at(const pbx::device_id& device) const {
    auto it = operator_of_device.find(device);
    return it == operator_of_device.end() ? 0 : it->second;
  }

  asio::awaitable<void> load_devices() {
    auto devices = co_await store::logged_in_devices(pool);
    if (!devices) {
      log->error("cannot load logged-in devices: {}", devices.error().message());
      co_return;
    }
    for (const auto& [device, op] : *devices) learn_device(op, device);
  }

  asio::awaitable<void> load_queues() {
    auto loaded = co_await store::load_queue_settings(pool);
    if (!loaded) {
      log->error("cannot load queue settings: {}", loaded.error().message());
      co_return;
    }
    for (auto& q : *loaded) queues[q.queue_id] = std::move(q);
  }

  // An operator who went ready while a call is on his phone (a direct call, or a consultation,
  // taken while he was not ready: presence could not follow it then) is busy with that call now,
  // as if it had come while he was ready, so routing does not offer him another; its end frees
  // him as usual (wrap-up after a customer's call). Answers whether there was such a call.
  bool busy_on_his_phone(std::int64_t operator_id) {
    const auto device = device_of_operator.find(operator_id);
    if (device == device_of_operator.end()) return false;
    const auto* c = tracker.call_at(device->second);
    if (!c || !c->record_id || c->phase == call_phase::ended) return false;
    const auto& d = device->second;
    std::string busy = "talking";  // connected, or dialling out
    if (c->ringing_at == d || (c->consulted == d && !c->consulted_answered))
      busy = "ringing";
    else if (c->held_by == d)
      busy = "held";
    write(store::presence_move{.operator_id = operator_id, .from = {"ready"}, .to = busy, .call_id = c->record_id});
    journal(*c, "ready_during_call", operator_id, d, {{"state", busy}});
    return true;
  }

  // ---- ordered database writes -------------------------------------------------------------
  void write(store::call_write w) { writer.write(std::move(w)); }

  // ---- supervisors' statistics -------------------------------------------------------------
  // Every tenant's queue figures, pushed when they changed and at most once per stats_push:
  // a busy call centre changes them on every call, and supervisors need a steady picture.
  asio::awaitable<void> push_statistics() {
    auto self = shared_from_this();
    while (!stopped) {
      stats_timer.expires_after(config.stats_push);
      auto [ec] = co_await stats_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopped) co_return;
      if (!hub) continue;
      std::set<std::int64_t> tenants;
      for (const auto& [id, q] : queues) tenants.insert(q.tenant_id);
      for (auto tenant : tenants) {
        if (!hub->watched(tenant)) {
          last_stats.erase(tenant);  // the first supervisor to come gets the figures at once
          continue;
        }
        auto figures = co_await store::queue_live_stats(pool, tenant);
        if (!figures) {
          log->warn("queue statistics of tenant {} unavailable: {}", tenant, figures.error().message());
          continue;
        }
        desk::stats_event event;
        std::string key;
        for (const auto& f : *figures) {
          event.queues.push_back(desk::queue_stats{.queue_id = f.queue_id,
                                                   .name = f.name,
                                                   .waiting = f.waiting,
                                                   .longest_wait_seconds = f.longest_wait_seconds,
                                                   .ready = f.ready,
                                                   .busy = f.busy,
                                                   .answered = f.answered,
                                                   .abandoned = f.abandoned,
                                                   .service_level_percent = f.service_level_percent.value_or(100),
                                                   .offered = f.offered,
                                                   .asa_seconds = f.asa_seconds,
                                                   .aht_seconds = f.aht_seconds,
                                                   .abandon_rate_percent = f.abandon_rate_percent});
          key += fmt::format("{}:{}:{}:{}:{}:{}:{}:{:.0f}:{:.1f};", f.queue_id, f.waiting, f.ready, f.busy, f.answered,
                             f.abandoned, f.offered, f.longest_wait_seconds, f.service_level_percent.value_or(100));
        }
        // Per operator: his state and his day. Time in state alone does not make an update.
        auto operators = co_await store::operator_live_stats(pool, tenant);
        if (!operators) {
          log->warn("operator statistics of tenant {} unavailable: {}", tenant, operators.error().message());
        } else {
          for (const auto& o : *operators) {
            event.operators.push_back(desk::operator_stats{.operator_id = o.operator_id,
                                                           .login = o.login,
                                                           .state = o.state,
                                                           .seconds_in_state = o.seconds_in_state,
                                                           .calls_today = o.calls_today,
                                                           .handled = o.handled,
                                                           .aht_seconds = o.aht_seconds,
                                                           .occupancy_percent = o.occupancy_percent});
            key += fmt::format("o{}:{}:{}:{}:{:.0f};", o.operator_id, o.state, o.calls_today, o.handled,
                               o.occupancy_percent.value_or(-1));
          }
        }
        if (last_stats[tenant] == key) continue;
        last_stats[tenant] = std::move(key);
        event.at = iso_now();
        hub->publish_stats(tenant, std::move(event));
      }
    }
  }

  static std::string iso_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&t, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
  }

  // ---- PBX commands ------------------------------------------------------------------------
  template <class Command>
  void send(Command command, std::string what) {
    auto self = shared_from_this();
    auto run = [self, command = std::move(command), what = std::move(what)]() mutable -> asio::awaitable<void> {
      auto done = co_await self->link.execute(std::move(command));
      if (!done) {
        ++self->counters.pbx_command_errors;
        self->log->warn("{} failed: {}", what, done.error().message());
      }
    };
    asio::co_spawn(loop, std::move(run), asio::detached);
  }

  // ---- PBX events --------------------------------------------------------------------------
  void on_event(const pbx::event& e) {
    ++counters.pbx_events;
    if (const auto* offered = std::get_if<pbx::call_offered>(&e)) {
      on_offered(*offered);
    } else if (std::holds_alternative<pbx::link_up>(e)) {
      log->info("PBX link up");
    } else if (const auto* down = std::get_if<pbx::link_down>(&e)) {
      log->warn("PBX link down: {}", down->reason.message());
      // A PBX that loses its routing application routes the open dialogs itself.
      while (!held_dialogs.empty()) dialog_ended(held_dialogs.begin()->second, "PBX link down");
    } else if (const auto* retry = std::get_if<pbx::route_retry>(&e)) {
      route_refused(retry->dialog);
    } else if (const auto* ended = std::get_if<pbx::route_ended>(&e)) {
      selected.erase(ended->dialog);
      dialog_ended(ended->dialog, ended->reason);
    } else if (const auto* diverted = std::get_if<pbx::call_diverted>(&e)) {
      on_diverted(*diverted);
    }
    for (auto& update : tracker.on_event(e, std::chrono::system_clock::now())) apply(update);
  }

  void on_offered(const pbx::call_offered& offered) {
    if (holding_offers) {
      held_offers.push_back(offered);
      return;
    }
    std::int64_t record = 0;
    if (const auto* known = tracker.find(offered.call.call)) {
      // Back at its route point (deflected after no answer): decided again, same record. The
      // tracker keeps the first offer.
      record = known->record_id;
      if (record == 0) {  // its first decision is still on its way: the PBX routes it by default
        send(pbx::route_end{.dialog = offered.dialog}, "route end of call " + offered.call.call);
        return;
      }
      parked_at.erase(offered.call.call);
    }
    route(offered, record);
  }

  // Asks the router; `record`: the call's record when it is decided again.
  void route(const pbx::call_offered& offered, std::int64_t record) {
    auto request = routing::from_pbx(offered);
    auto self = shared_from_this();
    auto run = [self, request = std::move(request), record]() mutable -> asio::awaitable<void> {
      if (!self->router) co_return;
      if (record)
        co_await self->router->reroute(std::move(request), record);
      else
        co_await self->router->route(std::move(request));
    };
    asio::co_spawn(loop, std::move(run), asio::detached);
  }

  // The PBX moved a call: by itself after a held dialog ended (its default routing), or somewhere
  // else than the phone of the operator it was offered to (that offer is void).
  void on_diverted(const pbx::call_diverted& diverted) {
    const auto& call = diverted.connection.call;
    bool by_itself = left_to_pbx.erase(call) > 0;
    if (auto sent = sent_to.find(call); sent != sent_to.end() && sent->second != diverted.new_destination.number) {
      by_itself = true;  // its routeing timer won the race against our route select
      sent_to.erase(sent);
    }
    if (!by_itself) return;
    tracker.mark_routed_elsewhere(call, call_disposition::default_routed);
    if (auto offered = offered_to.find(call); offered != offered_to.end()) {
      if (const auto* c = tracker.find(call)) release_unrung(offered->second, *c);
      offered_to.erase(offered);
    }
  }

  // The PBX could not ring the operator's phone we chose (busy with a call we do not track): he
  // is given back, and the PBX routes the call by its default (asking the router again would
  // make a second record of the call).
  void route_refused(const std::string& dialog) {
    auto chosen = selected.find(dialog);
    if (chosen == selected.end()) return;
    const auto call = chosen->second;
    selected.erase(chosen);
    sent_to.erase(call);
    log->warn("call {}: the PBX could not ring the chosen phone; it routes the call by its default", call);
    if (auto offered = offered_to.find(call); offered != offered_to.end()) {
      if (const auto* c = tracker.find(call)) release_unrung(offered->second, *c);
      offered_to.erase(offered);
    }
    left_to_pbx.insert(call);
    send(pbx::route_end{.dialog = dialog}, "route end of call " + call);
  }

  // The PBX ended a held routing dialog (its routeing timer, or the caller left): the call is
  // the PBX's now and must not be offered to an operator any more.
  void dialog_ended(const std::string& dialog, const std::string& reason) {
    auto held = std::find_if(held_dialogs.begin(), held_dialogs.end(),
                             [&](const auto& entry) { return entry.second == dialog; });
    if (held == held_dialogs.end()) return;
    const auto* c = tracker.find(held->first);
    const std::int64_t record = c ? c->record_id : 0;
    left_to_pbx.insert(held->first);
    held_dialogs.erase(held);
    if (record == 0) return;
    log->debug("call {} left its route point while waiting ({}): no longer offered to operators", record, reason);
    withdraw(record);
  }

  // The call `record` will not be answered here: it stops waiting in its queue, if it was.
  void withdraw(std::int64_t record) {
    asio::co_spawn(
        loop,
        [self = shared_from_this(), record]() -> asio::awaitable<void> {
          if (self->router) co_await self->router->call_ended(record);
        },
        asio::detached);
  }

  // The caller left after the operator was picked and before his phone rang: his reservation
  // is given back now (not when it expires) and his desktop learns the offer is void.
  void release_unrung(std::int64_t op, const tracked_call& c) {
    if (c.record_id == 0) return;
    notify_desk(op, c, desk::call_state::ended);
    give_back(op, c.record_id);
  }

  void keep_unrecorded(const tracked_call& c) {
    const auto horizon = std::chrono::system_clock::now() - std::chrono::minutes(2);
    std::erase_if(ended_unrecorded, [&](const auto& entry) { return entry.second.ended_at < horizon; });
    ended_unrecorded[c.pbx_id] = c;
  }

  // The router named the record of a call that has ended meanwhile: the record gets its end, and
  // the call leaves the queue it may have been put in. False when the call is not one of those.
  bool finish_unrecorded(const pbx::call_id& call, std::int64_t record_id) {
    auto it = ended_unrecorded.find(call);
    if (it == ended_unrecorded.end() || record_id == 0) return false;
    const auto& c = it->second;
    if (c.answered_at && !c.operators.empty())  // answered before its record: whose call it was
      if (const auto op = operator_at(c.operators.front()))
        write(store::call_answered{.call_id = record_id, .operator_id = op, .at = *c.answered_at});
    write(store::call_finished{.call_id = record_id,
                               .disposition = std::string(to_string(c.disposition.value_or(call_disposition::closed))),
                               .held = c.held_total,
                               .at = c.ended_at.value_or(std::chrono::system_clock::now())});
    withdraw(record_id);
    auto recorded = std::move(it->second);
    ended_unrecorded.erase(it);
    recorded.record_id = record_id;
    owe_wrap_up(recorded);
    return true;
  }

  // The record of a caller's call that ended during a consultation is known now: the wrap-up
  // the consulting operator owes it, or is in, is that record's: his presence names it as his
  // call (as in any wrap-up, for supervisors), and his desktop learns the call (it knew none
  // without a record).
  void owe_wrap_up(const tracked_call& caller_call) {
    for (auto& [id, kept] : kept_consultations)
      if (kept.caller_call == caller_call.pbx_id && !kept.record) kept.record = caller_call.record_id;
    const auto wrapping = wrap_up_unrecorded.find(caller_call.pbx_id);
    if (wrapping == wrap_up_unrecorded.end()) return;
    const auto op = wrapping->second;
    wrap_up_unrecorded.erase(wrapping);
    if (auto call = wrap_up_call.find(op); call != wrap_up_call.end() && !call->second) {
      call->second = caller_call.record_id;
      write(store::presence_move{
          .operator_id = op, .from = {"wrap_up"}, .to = "wrap_up", .call_id = caller_call.record_id});
      notify_desk(op, caller_call, desk::call_state::ended);
    }
  }

  // `op` is off the phone after the customer's call `call`, whose record may not be known yet
  // (`record` 0): his wrap-up starts whether or not (`ready`: presence never followed a call
  // without a record), and is the record's once it comes (owe_wrap_up). `count`: the call counts
  // as handled by him now.
  void begin_wrap_up(std::int64_t op, std::int64_t record, const pbx::call_id& call, bool count,
                     std::chrono::seconds length) {
    write(store::presence_move{.operator_id = op,
                               .from = {"talking", "held", "ringing", "ready"},
                               .to = "wrap_up",
                               .call_id = record ? std::optional(record) : std::nullopt,
                               .call_finished = count});
    start_wrap_up(op, record, length);
    if (!record) wrap_up_unrecorded[call] = op;
  }

  // Ends the operator's reservation for a call that will not ring at him.
  void give_back(std::int64_t op, std::int64_t call_id) {
    auto self = shared_from_this();
    auto release = [self, op, call_id]() -> asio::awaitable<void> {
      auto released = co_await store::release_reservation(self->pool, op, call_id);
      if (!released)
        self->log->warn("operator {} not released from call {}: {}", op, call_id, released.error().message());
    };
    asio::co_spawn(loop, std::move(release), asio::detached);
  }

  std::int64_t wrap_up_seconds_for(const pbx::call_id& call) const {
    if (auto q = queue_of_call.find(call); q != queue_of_call.end())
      if (auto s = queues.find(q->second); s != queues.end()) return s->second.wrap_up_seconds;
    return config.default_wrap_up.count();
  }

  void notify_desk(std::int64_t op, const tracked_call& c, desk::call_state st, std::string other = {}) {
    if (!hub || op == 0 || c.record_id == 0) return;
    desk::call_event ev{.call_id = c.record_id, .state = st, .caller = c.caller, .dialled = c.dialled};
    if (!other.empty()) ev.consult_number = std::move(other);
    if (auto held = popping.find({op, c.record_id}); held != popping.end()) {
      held->second.push_back(std::move(ev));  // after the screen pop, which is still on its way
      return;
    }
    hub->call_update(op, std::move(ev));
  }

  void journal(const tracked_call& c, std::string kind, std::int64_t op, const pbx::device_id& device,
               std::vector<std::pair<std::string, std::string>> detail = {}) {
    if (c.record_id == 0) return;
    write(store::call_journal_entry{.call_id = c.record_id,
                                    .kind = std::move(kind),
                                    .operator_id = op ? std::optional<std::int64_t>(op) : std::nullopt,
                                    .device = device,
                                    .detail = std::move(detail),
                                    .at = std::chrono::system_clock::now()});
  }

  void apply(const call_update& u) {
    const auto& c = u.call;
    const auto now = std::chrono::system_clock::now();
    const std::int64_t op = operator_at(u.device);
    switch (u.what) {
      case call_update::kind::offered:
        break;
      case call_update::kind::ringing:
        if (auto offered = offered_to.find(c.pbx_id); offered != offered_to.end() && offered->second == op)
          offered_to.erase(offered);
        sent_to.erase(c.pbx_id);
        if (op && c.record_id && c.direct) {
          // Not offered by routing: only a ready operator becomes busy (not ready stays not ready).
          write(store::presence_move{.operator_id = op, .from = {"ready"}, .to = "ringing", .call_id = c.record_id});
          journal(c, "ringing", op, u.device);
        } else if (op && c.record_id) {
          write(store::presence_move{.operator_id = op,
                                     .from = {"reserved", "ready", "not_ready", "wrap_up"},
                                     .to = "ringing",
                                     .call_id = c.record_id});
          journal(c, "ringing", op, u.device);
          start_no_answer(op, c.pbx_id, u.device);
        }
        notify_desk(op, c, desk::call_state::ringing);
        break;
      case call_update::kind::answered:
        stop_timer(no_answer_timers, op);
        if (op && c.record_id) {
          if (c.direct)
            write(store::presence_move{
                .operator_id = op, .from = {"ready", "ringing", "talking"}, .to = "talking", .call_id = c.record_id});
          else
            write(store::presence_move{.operator_id = op,
                                       .from = {"ringing", "reserved", "ready", "not_ready", "wrap_up", "held"},
                                       .to = "talking",
                                       .call_id = c.record_id});
          write(store::call_answered{.call_id = c.record_id, .operator_id = op, .at = now});
        }
        notify_desk(op, c, desk::call_state::talking);
        break;
      case call_update::kind::held:
      case call_update::kind::retrieved: {
        const bool held = u.what == call_update::kind::held;
        if (op)
          write(store::presence_move{
              .operator_id = op, .from = {held ? "talking" : "held"}, .to = held ? "held" : "talking"});
        journal(c, held ? "held" : "retrieved", op, u.device);
        notify_desk(op, c, held ? desk::call_state::held : desk::call_state::talking);
        break;
      }
      case call_update::kind::consultation:
        journal(c, "consultation", op, u.device, {{"to", u.other}});
        notify_desk(op, c, desk::call_state::consulting, u.other);
        break;
      case call_update::kind::transferred:
      case call_update::kind::conferenced: {
        const bool transfer = u.what == call_update::kind::transferred;
        const std::int64_t target = operator_at(u.other);
        journal(c, transfer ? "transferred" : "conferenced", op, u.device, {{"to", u.other}});
        if (target && c.record_id) {
          write(
              store::presence_move{.operator_id = target,
                                   .from = {"ready", "not_ready", "reserved", "ringing", "wrap_up", "talking", "held"},
                                   .to = "talking",
                                   .call_id = c.record_id});
          write(store::call_answered{.call_id = c.record_id, .operator_id = target, .at = now});
          notify_desk(target, c, transfer ? desk::call_state::talking : desk::call_state::conference);
        }
        if (!transfer) {
          // He held the caller to consult; in the conference he talks again.
          if (op) write(store::presence_move{.operator_id = op, .from = {"held"}, .to = "talking"});
          notify_desk(op, c, desk::call_state::conference);
          // The colleague she had called, and held to consult, is in the conference too.
          if (c.talking_at && *c.talking_at != u.device && *c.talking_at != u.other)
            notify_desk(operator_at(*c.talking_at), c, desk::call_state::conference);
        }
        break;
      }
      case call_update::kind::operator_left: {
        stop_timer(no_answer_timers, op);
        const auto kept = kept_consultations.find(c.first_pbx_id);
        if (kept != kept_consultations.end() && op && op == kept->second.consulting) {
          // Off the phone at last: the wrap-up of the caller who left during the consultation.
          const auto& owed = kept->second;
          begin_wrap_up(op, owed.record, owed.caller_call, !owed.counted, owed.wrap_up);
          kept->second.consulting = 0;
        } else if (op && (c.record_id || kept != kept_consultations.end()) && internal(c)) {
          // A call between colleagues: no wrap-up.
          write(store::presence_move{
              .operator_id = op, .from = {"talking", "held", "ringing"}, .to = "ready", .call_id = c.record_id});
        } else if (op && c.record_id) {
          write(store::presence_move{.operator_id = op,
                                     .from = {"talking", "held", "ringing", "reserved"},
                                     .to = "wrap_up",
                                     .call_id = c.record_id,
                                     .call_finished = true});
          start_wrap_up(op, c.record_id, std::chrono::seconds(wrap_up_seconds_for(c.pbx_id)));
        } else if (op && c.direct && !internal(c)) {
          // A call to or from outside that ended before its record was written: his wrap-up and
          // his handled call all the same, as when the record came in time.
          begin_wrap_up(op, 0, c.pbx_id, true, std::chrono::seconds(wrap_up_seconds_for(c.pbx_id)));
        }
        notify_desk(op, c, desk::call_state::ended);
        break;
      }
      case call_update::kind::ring_cancelled:
        stop_timer(no_answer_timers, op);
        if (op)
          write(store::presence_move{
              .operator_id = op, .from = {"ringing", "reserved"}, .to = "ready", .call_id = c.record_id});
        journal(c, "ring_cancelled", op, u.device);
        notify_desk(op, c, desk::call_state::ended);
        break;
      case call_update::kind::direct:
        make_record(c, op);
        break;
      case call_update::kind::found:
        found_calls.push_back(c.pbx_id);
        if (!holding_offers) {  // the link came back: match it now (at start-up resume_calls does)
          auto self = shared_from_this();
          auto match = [self]() -> asio::awaitable<void> { (void)co_await self->resume_calls(); };
          asio::co_spawn(loop, std::move(match), asio::detached);
        }
        break;
      case call_update::kind::dialling:
        if (op && c.record_id) {
          // (on a kept consultation he is talking already, with the caller's call as his, or still
          // ready when that call had no record)
          write(store::presence_move{.operator_id = op,
                                     .from = kept_consultations.count(c.first_pbx_id)
                                                 ? std::vector<std::string>{"talking", "ready"}
                                                 : std::vector<std::string>{"ready"},
                                     .to = "talking",
                                     .call_id = c.record_id});
          journal(c, "dialling", op, u.device, {{"to", c.dialled}});
        }
        notify_desk(op, c, desk::call_state::talking);
        break;
      case call_update::kind::consult_ringing:
      case call_update::kind::consult_answered: {
        // The consulted colleague is busy with the call (and is not offered another).
        const bool answered = u.what == call_update::kind::consult_answered;
        if (op && c.record_id)
          write(store::presence_move{
              .operator_id = op,
              .from = answered ? std::vector<std::string>{"ready", "ringing"} : std::vector<std::string>{"ready"},
              .to = answered ? "talking" : "ringing",
              .call_id = c.record_id});
        journal(c, answered ? "consultation_answered" : "consultation_ringing", op, u.device);
        notify_desk(op, c, answered ? desk::call_state::talking : desk::call_state::ringing, c.held_by.value_or(""));
        break;
      }
      case call_update::kind::consult_left:
        if (op) {
          write(store::presence_move{
              .operator_id = op, .from = {"ringing", "talking", "held"}, .to = "ready", .call_id = c.record_id});
          notify_desk(op, c, desk::call_state::ended);
        }
        journal(c, "consultation_ended", op, u.device);
        // The operator who consulted is back on the held call (unless the caller left meanwhile).
        if (c.phase == call_phase::held && c.held_by) notify_desk(operator_at(*c.held_by), c, desk::call_state::held);
        break;
      case call_update::kind::consult_kept: {
        // He handled the caller's call (counted now, as at any end) and talks on with whom he
        // consulted, on a call of its own; both desktops are done with the caller's call. A
        // colleague he had called and held (a call between colleagues) is owed no wrap-up.
        const bool owed = !internal(c);
        if (op && c.record_id)
          write(store::presence_move{
              .operator_id = op, .from = {"talking", "held"}, .to = "talking", .call_finished = owed});
        kept_consultations[u.other] = {.consulting = owed ? op : 0,
                                       .record = c.record_id,
                                       .caller_call = c.pbx_id,
                                       .counted = owed && op && c.record_id,
                                       .wrap_up = std::chrono::seconds(wrap_up_seconds_for(c.pbx_id))};
        journal(c, "consultation_kept", op, u.device, {{"to", c.consulted_number}});
        notify_desk(op, c, desk::call_state::ended);
        if (c.consulted) notify_desk(operator_at(*c.consulted), c, desk::call_state::ended);
        break;
      }
      case call_update::kind::ended: {
        ++counters.calls_ended;
        kept_consultations.erase(c.first_pbx_id);
        if (!c.record_id) keep_unrecorded(c);
        if (c.record_id) {
          write(store::call_finished{.call_id = c.record_id,
                                     .disposition = std::string(to_string(*c.disposition)),
                                     .held = c.held_total,
                                     .at = now});
          if (!c.answered_at) withdraw(c.record_id);
        }
        if (auto offered = offered_to.find(c.pbx_id); offered != offered_to.end()) {
          release_unrung(offered->second, c);
          offered_to.erase(offered);
        }
        queue_of_call.erase(c.pbx_id);
        parked_at.erase(c.pbx_id);
        held_dialogs.erase(c.pbx_id);
        left_to_pbx.erase(c.pbx_id);
        sent_to.erase(c.pbx_id);
        std::erase_if(selected, [&](const auto& entry) { return entry.second == c.pbx_id; });
        break;
      }
    }
  }

  // Calls found in snapshots get their records: the open one of this node when the call was
  // ours before a restart, else a new one. Their operators are busy with them again. Returns
  // the records of every call live at the PBX.
  asio::awaitable<std::vector<std::int64_t>> resume_calls() {
    auto self = shared_from_this();
    std::vector<pbx::call_id> ids = std::move(found_calls);
    found_calls.clear();
    std::vector<std::int64_t> live;
    if (!ids.empty()) {
      auto records = co_await store::open_call_records(pool, ids, config.node);
      if (!records) log->warn("open records of {} calls at the PBX unknown: {}", ids.size(), records.error().message());
      std::unordered_map<pbx::call_id, std::int64_t> record_of;
      if (records)
        for (const auto& [id, record] : *records) record_of[id] = record;
      for (const auto& id : ids) {
        const auto* c = tracker.find(id);
        if (!c || c->record_id) continue;
        const auto device = c->talking_at ? *c->talking_at : c->ringing_at.value_or("");
        const auto op = operator_at(device);
        std::int64_t record = 0;
        if (auto it = record_of.find(id); it != record_of.end()) {
          record = it->second;
        } else if (op) {
          auto made = co_await store::create_call_record(pool, op, id, c->caller, c->dialled, "inbound", config.node);
          if (made) record = *made;
        }
        c = tracker.find(id);  // (it may have ended while we asked)
        if (!c || !record) continue;
        tracker.set_record_id(id, record);
        c = tracker.find(id);
        live.push_back(record);
        journal(*c, "resumed", op, device);
        if (!op) continue;
        const auto busy =
            c->phase == call_phase::ringing ? "ringing" : (c->phase == call_phase::held ? "held" : "talking");
        write(store::presence_move{.operator_id = op,
                                   .from = {"ready", "not_ready", "reserved", "ringing", "talking", "held", "wrap_up"},
                                   .to = busy,
                                   .call_id = record});
        if (c->ringing_at) start_no_answer(op, id, device);
        notify_desk(op, *c,
                    c->phase == call_phase::ringing
                        ? desk::call_state::ringing
                        : (c->phase == call_phase::held ? desk::call_state::held : desk::call_state::talking));
      }
    }
    for (const auto& c : tracker.snapshot())
      if (c.record_id && std::find(live.begin(), live.end(), c.record_id) == live.end()) live.push_back(c.record_id);
    co_return live;
  }

  // A direct call between two operators' phones.
  bool internal(const tracked_call& c) const {
    return c.direct && operator_at(c.caller) != 0 && operator_at(c.dialled) != 0;
  }

  // A call that did not come through a route point gets its record here; the presence moves
  // and desktop events that waited for it follow when it is made.
  // `op`: the operator whose phone it reached (or who placed it): the record's tenant is his.
  void make_record(const tracked_call& c, std::int64_t op) {
    if (!op) return;
    const std::string direction = internal(c) ? "internal" : (c.dialled_by ? "outbound" : "inbound");
    auto self = shared_from_this();
    auto make = [self, op, direction, first = c.first_pbx_id, caller = c.caller,
                 dialled = c.dialled]() -> asio::awaitable<void> {
      auto made =
          co_await store::create_call_record(self->pool, op, first, caller, dialled, direction, self->config.node);
      if (!made) {
        self->log->warn("call {}: no record made for the {} call at operator {}: {}", first, direction, op,
                        made.error().message());
        co_return;
      }
      self->adopt_record(first, *made);
    };
    asio::co_spawn(loop, std::move(make), asio::detached);
  }

  // The record of a direct call is made: catch up with what happened to the call meanwhile.
  void adopt_record(const pbx::call_id& first, std::int64_t record) {
    const auto* found = tracker.find_by_first_id(first);
    if (!found) {
      for (const auto& [id, ended] : ended_unrecorded)
        if (ended.first_pbx_id == first) {
          const auto ended_id = id;  // finish_unrecorded erases the entry
          finish_unrecorded(ended_id, record);
          return;
        }
      return;
    }
    const auto id = found->pbx_id;
    tracker.set_record_id(id, record);
    const auto c = *tracker.find(id);
    if (c.dialled_by && c.talking_at != c.dialled_by && c.live.count(*c.dialled_by))
      apply({call_update::kind::dialling, c, *c.dialled_by, {}});
    if (c.ringing_at) apply({call_update::kind::ringing, c, *c.ringing_at, {}});
    if (c.talking_at) apply({call_update::kind::answered, c, *c.talking_at, {}});
  }

  // The screen pop: the call as the tracker knows it, the customer from screen_pop(...).
  void screen_pop(const routing::operator_offer& offer);

  // ---- timers ------------------------------------------------------------------------------
  static void stop_timer(std::unordered_map<std::int64_t, std::unique_ptr<asio::steady_timer>>& timers,
                         std::int64_t op) {
    if (auto it = timers.find(op); it != timers.end()) {
      it->second->cancel();
      timers.erase(it);
    }
  }

  void start_no_answer(std::int64_t op, const pbx::call_id& call, const pbx::device_id& device) {
    stop_timer(no_answer_timers, op);
    auto timer = std::make_unique<asio::steady_timer>(loop, config.ring_no_answer);
    auto self = shared_from_this();
    timer->async_wait([self, op, call, device](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->no_answer_timers.erase(op);
      const auto* c = self->tracker.find(call);
      if (!c || c->ringing_at != device) return;
      if (!self->link.is_up()) {
        // Nothing can be moved while the link is down, and the phone may have been answered in
        // the gap: look again a ring period after the link's resync.
        self->start_no_answer(op, call, device);
        return;
      }
      self->log->info("operator {} did not answer call {} within {} s: not ready (no_answer), routing again", op,
                      c->record_id, self->config.ring_no_answer.count());
      self->write(store::presence_move{.operator_id = op,
                                       .from = {"ringing", "reserved"},
                                       .to = "not_ready",
                                       .call_id = c->record_id,
                                       .reason = std::string("no_answer")});
      self->journal(*c, "ring_no_answer", op, device);
      // Back to where the call came from: its route point asks the router again.
      if (!c->route_point.empty())
        self->send(pbx::deflect_call{.connection = {call, device}, .to = c->route_point}, "deflect after no answer");
    });
    no_answer_timers[op] = std::move(timer);
  }

  void start_wrap_up(std::int64_t op, std::int64_t call_id, std::chrono::seconds length) {
    stop_timer(wrap_up_timers, op);
    wrap_up_call[op] = call_id;
    std::erase_if(wrap_up_unrecorded, [op](const auto& entry) { return entry.second == op; });
    auto timer = std::make_unique<asio::steady_timer>(loop, length);
    auto self = shared_from_this();
    timer->async_wait([self, op](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->end_wrap_up(op);
    });
    wrap_up_timers[op] = std::move(timer);
  }

  bool end_wrap_up(std::int64_t op) {
    stop_timer(wrap_up_timers, op);
    auto it = wrap_up_call.find(op);
    if (it == wrap_up_call.end()) return false;
    if (it->second) write(store::wrap_up_finished{.call_id = it->second, .at = std::chrono::system_clock::now()});
    write(store::presence_move{.operator_id = op, .from = {"wrap_up"}, .to = "ready"});
    wrap_up_call.erase(it);
    std::erase_if(wrap_up_unrecorded, [op](const auto& entry) { return entry.second == op; });
    return true;
  }

  // ---- desktop commands --------------------------------------------------------------------
  asio::awaitable<result<void>> execute(const desk::operator_context& who, const desk::call_command& command) {
    const auto* c = tracker.call_at(who.device);
    auto connection = [&]() {
      if (c->consulted == who.device && c->consultation) return pbx::connection_id{*c->consultation, who.device};
      return pbx::connection_id{c->pbx_id, who.device};
    };
    auto need_call = [&]() -> result<void> {
      if (!c) return error{errc::call_unknown, "no call at " + who.device};
      return {};
    };
    co_return co_await std::visit(
        [&](const auto& cmd) -> asio::awaitable<result<void>> {
          using T = std::decay_t<decltype(cmd)>;
          if constexpr (std::is_same_v<T, desk::req::end_wrap_up>) {
            if (!end_wrap_up(who.operator_id)) co_return error{errc::state_not_allowed, "not in wrap-up"};
            co_return result<void>{};
          } else if constexpr (std::is_same_v<T, desk::req::disposition>) {
            // In wrap-up, the call he wraps up: after a consultation that outlived its caller, the
            // caller's, not the consultation his desktop heard of last.
            const auto wrapping = wrap_up_call.find(who.operator_id);
            const auto call = who.state == "wrap_up" && wrapping != wrap_up_call.end()
                                  ? std::optional<std::int64_t>(wrapping->second)
                                  : who.call_id;
            if (!call) co_return error{errc::call_unknown, "no call to set a disposition on"};
            if (!*call)  // the caller's call that ended during his consultation has no record yet
              co_return error{errc::call_unknown, "the call's record is not written yet: try again in a moment"};
            write(store::call_wrap_up_code{.call_id = *call, .code = cmd.code, .notes = cmd.notes});
            co_return result<void>{};
          } else if constexpr (std::is_same_v<T, desk::req::dial>) {
            auto made = co_await link.execute(pbx::make_call{.from = who.device, .to = cmd.number});
            if (!made) co_return made.error();
            co_return result<void>{};
          } else {
            if (auto ok = need_call(); !ok) co_return ok.error();
            if constexpr (std::is_same_v<T, desk::req::answer>) {
              co_return co_await link.execute(pbx::answer_call{.connection = connection()});
            } else if constexpr (std::is_same_v<T, desk::req::hangup>) {
              co_return co_await link.execute(pbx::clear_connection{.connection = connection()});
            } else if constexpr (std::is_same_v<T, desk::req::hold>) {
              co_return co_await link.execute(pbx::hold_call{.connection = connection()});
            } else if constexpr (std::is_same_v<T, desk::req::retrieve>) {
              co_return co_await link.execute(pbx::retrieve_call{.connection = connection()});
            } else if constexpr (std::is_same_v<T, desk::req::consult>) {
              auto made = co_await link.execute(pbx::consult_call{.existing = connection(), .to = cmd.number});
              if (!made) co_return made.error();
              co_return result<void>{};
            } else if constexpr (std::is_same_v<T, desk::req::transfer>) {
              if (cmd.mode == desk::req::transfer_mode::blind)
                co_return co_await link.execute(pbx::single_step_transfer{.active = connection(), .to = cmd.number});
              if (!c->consultation) co_return error{errc::state_not_allowed, "no consultation call to transfer to"};
              co_return co_await link.execute(
                  pbx::transfer_call{.held = connection(), .active = {*c->consultation, who.device}});
            } else {
              static_assert(std::is_same_v<T, desk::req::conference>);
              if (!c->consultation) co_return error{errc::state_not_allowed, "no consultation call to conference"};
              co_return co_await link.execute(
                  pbx::conference_call{.held = connection(), .active = {*c->consultation, who.device}});
            }
          }
        },
        command);
  }
};

call_centre::call_centre(asio::any_io_executor loop, store::connection_pool& pool, pbx::pbx_link& link,
                         call_centre_config config)
    : state_(std::make_shared<state>(std::move(loop), pool, link, std::move(config))) {}

call_centre::~call_centre() { stop(); }

void call_centre::attach(routing::router& router, desk::hub& hub) {
  state_->router = &router;
  state_->hub = &hub;
}

void call_centre::start() {
  auto s = state_;
  s->link.on_event([weak = std::weak_ptr<state>(s)](const pbx::event& e) {
    if (auto self = weak.lock()) self->on_event(e);
  });
  auto boot = [s]() -> asio::awaitable<void> {
    co_await s->load_queues();
    co_await s->load_devices();
  };
  asio::co_spawn(s->loop, std::move(boot), asio::detached);
  s->writer.start();
  auto statistics = [s]() { return s->push_statistics(); };
  asio::co_spawn(s->loop, std::move(statistics), asio::detached);
}

void call_centre::stop() {
  auto s = state_;
  asio::post(s->loop, [s] {
    if (s->stopped) return;
    s->stopped = true;
    for (auto& [op, t] : s->wrap_up_timers) t->cancel();
    for (auto& [op, t] : s->no_answer_timers) t->cancel();
    s->stats_timer.cancel();
    s->writer.stop();
  });
}

void call_centre::presence_changed(std::int64_t operator_id, const std::string& st) {
  if (state_->hub) state_->hub->presence_changed(operator_id);
  follow_presence(operator_id, st);
}

void call_centre::follow_presence(std::int64_t operator_id, const std::string& st) {
  auto s = state_;
  if (st == "logged_out") {
    if (auto it = s->device_of_operator.find(operator_id); it != s->device_of_operator.end()) {
      s->tracker.remove_operator_device(it->second);
      s->operator_of_device.erase(it->second);
      s->device_of_operator.erase(it);
    }
    return;
  }
  if (!s->device_of_operator.count(operator_id)) {
    auto reload = [s]() { return s->load_devices(); };
    asio::co_spawn(s->loop, std::move(reload), asio::detached);
  }
  if (st == "ready" && s->busy_on_his_phone(operator_id)) return;  // routing gets him when that call ends
  if (st == "ready" && s->router) {
    auto give = [s, operator_id]() -> asio::awaitable<void> { co_await s->router->operator_ready(operator_id); };
    asio::co_spawn(s->loop, std::move(give), asio::detached);
  }
}

void call_centre::presence_notification(const std::string& payload) {
  // The row itself (migration 0040): the desk applies it without reading it back.
  if (auto row = store::presence_from_notification(payload)) {
    const auto id = row->operator_id;
    const auto st = row->state;
    // His phone is known at once: a call there right after his login is tracked.
    if (row->device && st != "logged_out") state_->learn_device(id, *row->device);
    if (state_->hub) state_->hub->presence_notified(std::move(*row));
    return follow_presence(id, st);
  }
  auto parsed = nlohmann::json::parse(payload, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("operator_id") ||
      !parsed["operator_id"].is_number_integer())
    return;
  auto st = parsed.contains("state") && parsed["state"].is_string() ? parsed["state"].get<std::string>() : "";
  presence_changed(parsed["operator_id"].get<std::int64_t>(), st);
}

void call_centre::route_select(const routing::route_select_answer& answer) {
  auto& s = *state_;
  if (s.finish_unrecorded(answer.pbx_call_id, answer.call_id)) return;  // the caller hung up meanwhile
  if (answer.call_id) s.tracker.set_record_id(answer.pbx_call_id, answer.call_id);
  if (answer.queue_id) s.queue_of_call[answer.pbx_call_id] = answer.queue_id;
  if (answer.operator_id) {
    s.learn_device(answer.operator_id, answer.destination);
    s.sent_to[answer.pbx_call_id] = answer.destination;
    s.selected[answer.routing_dialog_id] = answer.pbx_call_id;
  } else if (!answer.destination.empty()) {
    s.parked_at[answer.pbx_call_id] = answer.destination;
    if (answer.position > 0)
      s.tracker.mark_queued(answer.pbx_call_id, std::chrono::system_clock::now());
    else if (!answer.fallback)
      s.tracker.mark_routed_elsewhere(answer.pbx_call_id, call_disposition::overflowed);
  }
  s.send(routing::to_pbx(answer), "route select of call " + answer.pbx_call_id);
}

void call_centre::route_end(const routing::route_end_answer& answer) {
  auto& s = *state_;
  if (s.finish_unrecorded(answer.pbx_call_id, answer.call_id)) return;  // the caller hung up meanwhile
  if (answer.call_id) s.tracker.set_record_id(answer.pbx_call_id, answer.call_id);
  if (answer.queued && answer.call_id && s.tracker.find(answer.pbx_call_id)) {
    // The caller waits at the route point; the dialog is answered when an operator is picked.
    s.tracker.mark_queued(answer.pbx_call_id, std::chrono::system_clock::now());
    s.held_dialogs[answer.pbx_call_id] = answer.routing_dialog_id;
    return;
  }
  s.send(routing::to_pbx(answer), "route end of call " + answer.pbx_call_id);
}

void call_centre::offer_to_operator(const routing::operator_offer& given) {
  auto s = state_;
  auto offer = given;
  s->learn_device(offer.operator_id, offer.device);
  if (offer.pbx_call_id.empty()) {
    // The router no longer knew the call (it ended while he was picked): find it by its record.
    for (const auto& c : s->tracker.snapshot())
      if (c.record_id == offer.call_id) offer.pbx_call_id = c.pbx_id;
  }
  if (offer.pbx_call_id.empty() || !s->tracker.find(offer.pbx_call_id)) {
    // The caller hung up while the operator was being picked: no screen pop, he is free again.
    s->give_back(offer.operator_id, offer.call_id);
    return;
  }
  if (offer.queue_id && !offer.pbx_call_id.empty()) s->queue_of_call[offer.pbx_call_id] = offer.queue_id;
  std::optional<std::string> held_dialog;
  if (offer.from_queue && !offer.pbx_call_id.empty()) {
    // The call waits at its queue's wait device: move it to the operator's phone.
    if (auto parked = s->parked_at.find(offer.pbx_call_id); parked != s->parked_at.end()) {
      s->sent_to[offer.pbx_call_id] = offer.device;
      s->send(pbx::deflect_call{.connection = {offer.pbx_call_id, parked->second}, .to = offer.device},
              "moving call " + offer.pbx_call_id + " to operator " + std::to_string(offer.operator_id));
      s->parked_at.erase(parked);
    } else if (auto held = s->held_dialogs.find(offer.pbx_call_id); held != s->held_dialogs.end()) {
      held_dialog = std::move(held->second);  // waits at its route point: answer the dialog now
      s->held_dialogs.erase(held);
      s->sent_to[offer.pbx_call_id] = offer.device;
      s->selected[*held_dialog] = offer.pbx_call_id;
    } else {
      // It waits nowhere this node can move it from (the PBX took it back): he is free again.
      s->give_back(offer.operator_id, offer.call_id);
      return;
    }
  }
  if (held_dialog) {
    auto run = [s, offer, dialog = std::move(*held_dialog)]() -> asio::awaitable<void> {
      auto selected = co_await s->link.execute(pbx::route_select{.dialog = dialog, .destination = offer.device});
      if (!selected) {
        // The caller left (or the PBX routed the call) while the operator was being picked.
        s->log->info("call {} is gone from its route point ({}); operator {} released", offer.call_id,
                     selected.error().message(), offer.operator_id);
        s->give_back(offer.operator_id, offer.call_id);
        co_return;
      }
      s->screen_pop(offer);
    };
    asio::co_spawn(s->loop, std::move(run), asio::detached);
    return;
  }
  s->screen_pop(offer);
}

void call_centre::state::screen_pop(const routing::operator_offer& offer) {
  auto s = shared_from_this();
  const auto* c = tracker.find(offer.pbx_call_id);
  if (c && c->routed_as) {
    give_back(offer.operator_id, offer.call_id);  // the PBX took the call elsewhere meanwhile
    return;
  }
  if (c) offered_to[offer.pbx_call_id] = offer.operator_id;
  if (!s->hub) return;
  desk::offer_event pop;
  pop.call.call_id = offer.call_id;
  if (offer.queue_id) {
    pop.call.queue_id = offer.queue_id;
    if (auto q = s->queues.find(offer.queue_id); q != s->queues.end()) pop.call.queue = q->second.name;
  }
  if (c) {
    pop.call.caller = c->caller;
    pop.call.dialled = c->dialled;
    pop.call.waited_seconds = std::chrono::duration<double>(std::chrono::system_clock::now() - c->offered_at).count();
    for (const auto& [key, value] : routing::ivr_pairs(c->correlator)) pop.ivr[key] = value;
  }
  const std::pair key{offer.operator_id, offer.call_id};
  if (offer.customer_read) {  // read with the decision: the pop leaves with the route select
    pop.customer = offer.customer ? nlohmann::json::parse(*offer.customer, nullptr, false) : nlohmann::json(nullptr);
    if (pop.customer.is_discarded()) pop.customer = nullptr;
    hub->offer(key.first, std::move(pop));
    return;
  }
  popping.try_emplace(key);
  auto run = [s, key, pop = std::move(pop)]() mutable -> asio::awaitable<void> {
    auto customer = co_await store::screen_pop(s->pool, pop.call.call_id);
    if (customer && *customer) {
      pop.customer = nlohmann::json::parse(**customer, nullptr, false);
      if (pop.customer.is_discarded()) pop.customer = nullptr;
    } else {
      if (!customer)  // the admin's screen_pop() failed (or the database is away): the offer goes without it
        s->log->warn("call {}: screen_pop failed, operator {} is offered the call without the customer: {}",
                     pop.call.call_id, key.first, customer.error().message());
      pop.customer = nullptr;
    }
    auto held = s->popping.extract(key);
    if (!s->hub) co_return;
    s->hub->offer(key.first, std::move(pop));
    if (!held.empty())
      for (auto& event : held.mapped()) s->hub->call_update(key.first, std::move(event));
  };
  asio::co_spawn(s->loop, std::move(run), asio::detached);
}

void call_centre::redirect_waiting(const routing::waiting_redirect& redirect) {
  auto& s = *state_;
  const auto as =
      redirect.reason.find("closed") != std::string::npos ? call_disposition::closed : call_disposition::overflowed;
  if (auto held = s.held_dialogs.find(redirect.pbx_call_id); held != s.held_dialogs.end()) {
    s.tracker.mark_routed_elsewhere(redirect.pbx_call_id, as);
    if (redirect.destination.empty())
      s.send(pbx::route_end{.dialog = held->second}, "route end of waiting call " + redirect.pbx_call_id);
    else
      s.send(pbx::route_select{.dialog = held->second, .destination = redirect.destination},
             "redirecting waiting call " + redirect.pbx_call_id);
    s.held_dialogs.erase(held);
    return;
  }
  auto parked = s.parked_at.find(redirect.pbx_call_id);
  if (parked == s.parked_at.end() || redirect.destination.empty()) return;
  s.tracker.mark_routed_elsewhere(redirect.pbx_call_id, as);
  s.send(pbx::deflect_call{.connection = {redirect.pbx_call_id, parked->second}, .to = redirect.destination},
         "redirecting waiting call " + redirect.pbx_call_id);
  s.parked_at.erase(parked);
}

asio::awaitable<void> call_centre::hold_offers() {
  auto s = state_;
  s->holding_offers = true;
  co_await s->load_devices();  // the snapshots' calls are adopted at the phones known by now
}

asio::awaitable<std::vector<std::int64_t>> call_centre::resume_calls() {
  auto s = state_;
  co_return co_await s->resume_calls();
}

void call_centre::release_offers() {
  auto& s = *state_;
  s.holding_offers = false;
  auto offers = std::move(s.held_offers);
  s.held_offers.clear();
  for (const auto& offered : offers)
    if (s.tracker.find(offered.call.call)) s.route(offered, 0);  // (gone: the caller hung up meanwhile)
}

void call_centre::adopt_late_record(const routing::late_record& record) {
  auto& s = *state_;
  if (s.finish_unrecorded(record.pbx_call_id, record.call_id)) return;  // it ended meanwhile
  if (!s.tracker.find(record.pbx_call_id)) {
    // Gone before this node could even keep it (or never seen): the record ends now.
    s.write(store::call_finished{.call_id = record.call_id,
                                 .disposition = std::string(to_string(call_disposition::default_routed)),
                                 .at = std::chrono::system_clock::now()});
    return;
  }
  // The PBX took the fallback: the call goes on there, and its record ends with it.
  s.tracker.set_record_id(record.pbx_call_id, record.call_id);
  s.tracker.mark_routed_elsewhere(record.pbx_call_id, call_disposition::default_routed);
}

asio::awaitable<result<void>> call_centre::execute(const desk::operator_context& who,
                                                   const desk::call_command& command) {
  auto s = state_;
  co_return co_await s->execute(who, command);
}

const call_tracker& call_centre::tracker() const noexcept { return state_->tracker; }
const call_centre_counters& call_centre::counters() const noexcept { return state_->counters; }
const write_counters& call_centre::write_counts() const noexcept { return state_->writer.counters(); }
asio::awaitable<bool> call_centre::drained(std::chrono::milliseconds limit) {
  auto s = state_;
  asio::steady_timer pause(s->loop);
  const auto until = std::chrono::steady_clock::now() + limit;
  while (s->writer.pending() > 0 && std::chrono::steady_clock::now() < until) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return s->writer.pending() == 0;
}

std::size_t call_centre::pending_writes() const noexcept { return state_->writer.pending(); }

}  // namespace switchboard::calls
