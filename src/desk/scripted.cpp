// One coroutine per scripted operator: it waits for the next message or its next deadline
// (heartbeat, answer, end of wrap-up, end of break), whichever comes first.
#include "switchboard/desk/scripted.hpp"

#include "switchboard/log.hpp"

#include <boost/asio/this_coro.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <random>

namespace switchboard::desk {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

asio::awaitable<void> play_operator(script s, std::string login, script_stats& stats, std::function<bool()> stop,
                                    std::function<void(const std::string&, const server_message&)> on_event) {
  auto log = logger("desk");
  client c(co_await asio::this_coro::executor, s.connection);
  if (auto up = co_await c.connect(s.host, s.port); !up) {
    log->warn("scripted {}: {}", login, up.error().message());
    ++stats.errors;
    co_return;
  }
  auto hello = co_await c.request(req::hello{protocol_version, "switchboard-desk scripted"});
  std::chrono::milliseconds heartbeat = s.heartbeat;
  if (hello)
    if (auto* ok = std::get_if<ok_reply>(&*hello))
      if (auto* h = std::get_if<hello_result>(&ok->result); h && heartbeat.count() == 0)
        heartbeat = std::chrono::seconds(std::max(1, h->heartbeat_seconds));
  if (heartbeat.count() == 0) heartbeat = std::chrono::seconds(10);
  auto in = co_await c.request(req::login{s.tenant, login, s.password, ""});
  const bool ok = in && std::holds_alternative<ok_reply>(*in);
  if (!ok) {
    log->warn("scripted {}: login failed: {}", login,
              in ? std::get_if<error_reply>(&*in) ? std::get<error_reply>(*in).message : "?" : in.error().message());
    ++stats.errors;
    co_return;
  }
  ++stats.logged_in;
  if (s.auto_ready) c.send(req::ready{});

  std::mt19937 random(static_cast<unsigned>(std::hash<std::string>{}(login)));
  std::bernoulli_distribution take_break(std::clamp(s.break_probability, 0.0, 1.0));
  std::optional<clock::time_point> answer_at, wrap_up_until, break_until;
  std::string state;
  auto next_ping = clock::now() + heartbeat;
  while (!stop()) {
    auto deadline = std::min(next_ping, clock::now() + heartbeat);
    for (const auto& d : {answer_at, wrap_up_until, break_until})
      if (d) deadline = std::min(deadline, *d);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    auto m = co_await c.receive(std::max(wait, std::chrono::milliseconds(1)));
    const auto now = clock::now();
    if (!m && c.connected()) {  // a deadline passed
      if (now >= next_ping) {
        c.send(req::ping{});
        ++stats.pings;
        next_ping = now + heartbeat;
      }
      if (answer_at && now >= *answer_at) {
        answer_at.reset();
        c.send(req::answer{});
        ++stats.answered;
      }
      if (wrap_up_until && now >= *wrap_up_until) {
        wrap_up_until.reset();
        c.send(req::disposition{"done", "scripted"});
        if (state == "wrap_up") c.send(req::end_wrap_up{});
        ++stats.wrap_ups_ended;
        if (take_break(random)) {
          c.send(req::not_ready{"break"});
          ++stats.breaks;
          break_until = now + s.break_length;
        }
      }
      if (break_until && now >= *break_until) {
        break_until.reset();
        c.send(req::ready{});
      }
      continue;
    }
    if (!m) {
      log->info("scripted {}: {}", login, m.error().message());
      ++stats.disconnected;
      co_return;
    }
    if (on_event) on_event(login, *m);
    if (auto* st = std::get_if<state_event>(&*m)) {
      state = st->state;
    } else if (std::holds_alternative<offer_event>(*m)) {
      ++stats.offers;
      if (s.auto_answer) answer_at = now + s.answer_delay;
    } else if (auto* call = std::get_if<call_event>(&*m); call && call->state == call_state::ended) {
      ++stats.calls_ended;
      answer_at.reset();
      wrap_up_until = now + s.wrap_up;
    } else if (auto* e = std::get_if<error_reply>(&*m)) {
      log->info("scripted {}: {} ({})", login, e->code, e->message);
      ++stats.errors;
    } else if (std::holds_alternative<closing_event>(*m)) {
      ++stats.disconnected;
      co_return;
    }
  }
  co_await c.request(req::logout{}, std::chrono::seconds(5));
  c.close();
}

}  // namespace switchboard::desk
