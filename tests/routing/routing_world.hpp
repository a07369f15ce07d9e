// Test world for routing: a migrated database on the throwaway cluster with helpers that make
// tenants, skills, operators, queues and route points by name, a pool, and a way to run one
// store call to completion from a plain test body.
#pragma once

#include "switchboard/routing/sink.hpp"
#include "switchboard/store/pool.hpp"
#include "switchboard/store/routing_queries.hpp"
#include "test_database.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::testing {

// Runs one awaitable on a private loop and returns its value.
template <class T>
T sync(boost::asio::awaitable<T> task) {
  boost::asio::io_context loop;
  auto future = boost::asio::co_spawn(loop, std::move(task), boost::asio::use_future);
  loop.run();
  return future.get();
}

using skill_levels = std::vector<std::pair<std::string, int>>;

class routing_world {
 public:
  routing_world() : conn_(db_.url()) {}

  const std::string& url() const { return db_.url(); }
  const test_database& db() const { return db_; }

  // Runs SQL with $1.. parameters in its own transaction.
  template <class... Args>
  pqxx::result exec(const std::string& sql, Args&&... args) {
    pqxx::work tx(conn_);
    auto r = tx.exec_params(sql, std::forward<Args>(args)...);
    tx.commit();
    return r;
  }
  // First column of the one row, as text ("" for NULL).
  template <class... Args>
  std::string scalar(const std::string& sql, Args&&... args) {
    auto r = exec(sql, std::forward<Args>(args)...);
    return r.at(0)[0].is_null() ? std::string() : r.at(0)[0].template as<std::string>();
  }

  std::int64_t tenant(const std::string& code, const std::string& time_zone = "UTC") {
    return id("INSERT INTO tenants (code, name, time_zone) VALUES ($1, $1, $2) RETURNING tenant_id", code, time_zone);
  }
  std::int64_t skill(std::int64_t tenant_id, const std::string& name) {
    return id(
        "INSERT INTO skills (tenant_id, name) VALUES ($1, $2) ON CONFLICT (tenant_id, name) DO UPDATE SET "
        "name = excluded.name RETURNING skill_id",
        tenant_id, name);
  }
  // An operator whose device is his login; state 'ready' (or any idle state) with those skills.
  std::int64_t operator_(std::int64_t tenant_id, const std::string& login, const skill_levels& skills,
                         const std::string& state = "ready") {
    const auto op =
        id("INSERT INTO operators (tenant_id, login, password_hash, extension) VALUES ($1, $2, '$2a$08$' "
           "|| repeat('a', 53), $2) RETURNING operator_id",
           tenant_id, login);
    for (const auto& [name, level] : skills)
      exec("INSERT INTO operator_skills (tenant_id, operator_id, skill_id, level) VALUES ($1, $2, $3, $4)", tenant_id,
           op, skill(tenant_id, name), level);
    if (state != "logged_out")
      exec(
          "UPDATE presence SET state = $2::presence_state, device = $3, "
          "reason = CASE WHEN $2 = 'not_ready' THEN 'break' END WHERE operator_id = $1",
          op, state, login + "-" + std::to_string(tenant_id));
    return op;
  }
  // A queue; `settings` is an optional SQL SET list applied after (e.g. "max_wait_seconds = 60").
  std::int64_t queue(std::int64_t tenant_id, const std::string& name, const skill_levels& skills = {},
                     const std::string& settings = "") {
    const auto q = id("INSERT INTO queues (tenant_id, name) VALUES ($1, $2) RETURNING queue_id", tenant_id, name);
    for (const auto& [skill_name, level] : skills)
      exec("INSERT INTO queue_skills (tenant_id, queue_id, skill_id, min_level) VALUES ($1, $2, $3, $4)", tenant_id, q,
           skill(tenant_id, skill_name), level);
    if (!settings.empty()) exec("UPDATE queues SET " + settings + " WHERE queue_id = $1", q);
    return q;
  }
  std::int64_t route_point(std::int64_t tenant_id, const std::string& device, std::int64_t default_queue) {
    return id(
        "INSERT INTO route_points (tenant_id, device, default_queue_id) VALUES ($1, $2, nullif($3, 0)) "
        "RETURNING route_point_id",
        tenant_id, device, default_queue);
  }
  std::int64_t operator_id(const std::string& login, std::int64_t tenant_id) {
    return id("SELECT operator_id FROM operators WHERE login = $1 AND tenant_id = $2", login, tenant_id);
  }
  std::string login_of(std::int64_t operator_id) {
    if (operator_id == 0) return "";
    return scalar("SELECT login FROM operators WHERE operator_id = $1", operator_id);
  }
  // The calls part's job, done by hand: the reserved operator answered and hung up.
  void finish_call(std::int64_t operator_id) {
    exec(
        "UPDATE presence SET state = 'ready', current_call_id = NULL, reserved_until = NULL, "
        "last_call_ended = now(), calls_handled = calls_handled + 1 WHERE operator_id = $1",
        operator_id);
  }
  // Pretends a waiting call entered its queue `seconds` earlier (instead of sleeping).
  void backdate_wait(std::int64_t call_id, int seconds) {
    exec(
        "UPDATE waiting_calls SET queue_since = queue_since - make_interval(secs => $2), "
        "waiting_since = waiting_since - make_interval(secs => $2) WHERE call_id = $1",
        call_id, seconds);
  }

 private:
  template <class... Args>
  std::int64_t id(const std::string& sql, Args&&... args) {
    return exec(sql, std::forward<Args>(args)...).at(0)[0].template as<std::int64_t>();
  }

  test_database db_;
  pqxx::connection conn_;
};

// An offer at a route point with a caller and optional IVR data.
inline store::call_offer offer_at(const std::string& route_point, const std::string& caller = "+100",
                                  std::vector<std::pair<std::string, std::string>> ivr = {},
                                  const std::string& dialled = "800") {
  static int counter = 0;
  store::call_offer o;
  o.route_point = route_point;
  o.pbx_call_id = "pbx-" + std::to_string(++counter);
  o.caller = caller;
  o.dialled = dialled;
  o.ivr_data = std::move(ivr);
  return o;
}

// A sink that keeps everything the router says.
struct recording_sink : routing::decision_sink {
  std::vector<routing::route_select_answer> selects;
  std::vector<routing::route_end_answer> ends;
  std::vector<routing::operator_offer> offers;
  std::vector<routing::waiting_redirect> redirects;
  std::vector<routing::late_record> late_records;
  void route_select(const routing::route_select_answer& a) override { selects.push_back(a); }
  void route_end(const routing::route_end_answer& a) override { ends.push_back(a); }
  void offer_to_operator(const routing::operator_offer& o) override { offers.push_back(o); }
  void redirect_waiting(const routing::waiting_redirect& r) override { redirects.push_back(r); }
  void adopt_late_record(const routing::late_record& r) override { late_records.push_back(r); }
};

}  // namespace switchboard::testing
