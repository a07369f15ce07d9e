// Resilience end to end, with the real executables: `switchboard-pbxsim` generating calls and
// `switchboard` routing them, both child processes, a dozen scripted operators at their desktops
// and the test's own database. Mid-shift the server is killed (SIGKILL) and started again, or
// the PBX drops the CTI link for 10 s. After the shift: nobody is stuck reserved, ringing,
// talking or holding; every call Switchboard routed has exactly one closed record; every call
// the PBX asked about was either recorded or taken by the PBX's own default routing; desktops
// came back and took calls again. Conditions are awaited with generous deadlines (the machine is
// small and the build runs under ASan); nothing here measures time.
#include "coro_test.hpp"
#include "switchboard/desk/scripted.hpp"
#include "test_database.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

namespace switchboard {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int operator_count = 12;
constexpr const char* default_device = "2999";  // the PBX's own treatment: not an operator's phone

std::string extension_of(int i) { return std::to_string(2001 + i); }
std::string login_of(int i) { return "op" + std::to_string(i + 1); }

std::string seed_sql() {
  std::string sql = R"(
    INSERT INTO tenants (code, name) VALUES ('acme', 'Acme');
    INSERT INTO queues (tenant_id, name, strategy, wrap_up_seconds) VALUES (1, 'sales', 'longest_idle', 1);
    INSERT INTO route_points (tenant_id, device, name, default_queue_id) VALUES (1, '5000', 'Sales', 1);
    INSERT INTO customers (tenant_id, phone, name) SELECT 1, '+49305550' || lpad(n::text, 3, '0'), 'Customer ' || n
      FROM generate_series(1, 40) n;
  )";
  for (int i = 0; i < operator_count; ++i)
    sql += "INSERT INTO operators (tenant_id, login, password_hash, full_name, extension) VALUES (1, '" + login_of(i) +
           "', hash_password('pw'), 'Operator " + std::to_string(i + 1) + "', '" + extension_of(i) + "');\n";
  return sql;
}

// A port nobody listens on now (the child binds it a moment later; loopback, no other user).
std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// One executable run as a child, its output in a log file.
class child {
 public:
  child(std::vector<std::string> argv, std::string log_path) : log_(std::move(log_path)) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  bool started() const { return pid_ > 0; }
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }
  // Sends `signal` and reaps the process; returns its wait status.
  int stop(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  const std::string& log() const { return log_; }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// GET /health of the server: the JSON body, or nothing while it does not answer.
std::optional<json> health(std::uint16_t port) {
  try {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    const std::string request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(s, asio::buffer(request));
    std::string response;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(response), ec);
    const auto body = response.find("\r\n\r\n");
    if (body == std::string::npos) return std::nullopt;
    auto parsed = json::parse(response.substr(body + 4), nullptr, false);
    if (parsed.is_discarded()) return std::nullopt;
    return parsed;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The simulator's JSON-lines control port.
class control_port {
 public:
  bool connect(std::uint16_t port) {
    try {
      socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
      return true;
    } catch (const std::exception&) {
      socket_ = tcp::socket(io_);
      return false;
    }
  }
  json send(const json& command) {
    const auto line = command.dump() + "\n";
    asio::write(socket_, asio::buffer(line));
    asio::read_until(socket_, input_, '\n');
    std::istream in(&input_);
    std::string reply;
    std::getline(in, reply);
    return json::parse(reply);
  }
  json stats() { return send({{"cmd", "stats"}}).at("stats"); }

 private:
  asio::io_context io_;
  tcp::socket socket_{io_};
  asio::streambuf input_;
};

// Polls `done` until it holds or `limit` passes (then false); never assumes how fast anything is.
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

class Resilience : public ::testing::Test {
 protected:
  void SetUp() override {
    db_.exec(seed_sql());
    dir_ = ::testing::TempDir() + "/resilience-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(testing::run_command("rm -rf '" + dir_ + "' && mkdir -p '" + dir_ + "'"), 0);
    pbx_port_ = free_port();
    control_port_number_ = free_port();
    desk_port_ = free_port();
    health_port_ = free_port();
    write_pbxsim_profile();
    write_server_config();

    pbxsim_ = std::make_unique<child>(std::vector<std::string>{PBXSIM_BINARY, "--profile", dir_ + "/pbxsim.json"},
                                      dir_ + "/pbxsim.log");
    ASSERT_TRUE(pbxsim_->started());
    ASSERT_TRUE(eventually([&] { return control_.connect(control_port_number_); }, 60s)) << dump_logs();
    start_server();
    ASSERT_TRUE(eventually([&] { return link_is("up") || !server_->alive(); }, 90s) && server_->alive()) << dump_logs();
    start_desktops();
    ASSERT_TRUE(
        eventually([&] { return count("SELECT count(*) FROM presence WHERE state = 'ready'") == operator_count; }, 90s))
        << dump_logs();
  }

  void TearDown() override {
    stop_desktops();
    if (server_) server_->stop(SIGTERM);
    if (pbxsim_ && pbxsim_->alive()) {
      try {
        control_.send({{"cmd", "stop"}});
      } catch (const std::exception&) {
      }
      eventually([&] { return !pbxsim_->alive(); }, 30s);
    }
    if (HasFailure())
      std::cerr << dump_logs();
    else
      testing::run_command("rm -rf '" + dir_ + "'");  // the logs are only wanted when something failed
  }

  void write_pbxsim_profile() const {
    json operators = json::array();
    for (int i = 0; i < operator_count; ++i) operators.push_back(extension_of(i));
    operators.push_back(default_device);
    const json profile{{"listen", {{"address", "127.0.0.1"}, {"port", pbx_port_}}},
                       {"control", {{"address", "127.0.0.1"}, {"port", control_port_number_}}},
                       {"session_style", "system_status"},
                       {"heartbeat_interval_ms", 1000},
                       {"heartbeat_misses", 3},
                       {"operators", operators},
                       {"route_points", {"5000"}},
                       {"default_device", default_device},
                       // Queued callers wait at the route point; they give up (patience) before this.
                       {"route_timeout_ms", 30000},
                       {"auto_answer_ms", nullptr},  // operators answer from their desktops
                       {"keep_call_log", true},
                       {"generator",
                        {{"rate", 0},
                         {"seed", 11},
                         {"caller_pattern", {{"prefix", "+49305550"}, {"digits", 3}, {"first", 1}, {"last", 60}}},
                         {"ivr_digits", {"lang=en", "lang=de"}},
                         {"talk", {{"shape", "uniform"}, {"min_ms", 2000}, {"max_ms", 6000}}},
                         {"patience", {{"shape", "uniform"}, {"min_ms", 8000}, {"max_ms", 15000}}}}},
                       {"stats_every_s", 0},
                       {"log_level", "info"}};
    std::ofstream(dir_ + "/pbxsim.json") << profile.dump(2);
  }

  void write_server_config() const {
    const json config{
        {"node_name", "resilience"},
        {"log_level", "info"},
        {"database", {{"url", db_.url()}, {"pool_size", 4}}},
        {"health", {{"enabled", true}, {"listen", "127.0.0.1"}, {"port", health_port_}}},
        {"pbx",
         {{"host", "127.0.0.1"},
          {"port", pbx_port_},
          {"session", "system_status"},
          {"devices", {default_device}},
          {"heartbeat_interval_ms", 1000},
          {"heartbeat_misses", 3},
          {"request_timeout_ms", 5000},
          {"connect_timeout_ms", 2000},
          {"reconnect_initial_ms", 200},
          {"reconnect_max_ms", 1000}}},
        {"desk",
         {{"listen", "127.0.0.1"},
          {"port", desk_port_},
          {"heartbeat_interval_ms", 2000},
          {"idle_timeout_ms", 20000},
          {"resume_grace_ms", 5000}}},
        {"routing", {{"route_timeout_ms", 3000}, {"reservation_timeout_seconds", 8}}},
        {"calls", {{"ring_no_answer_seconds", 10}, {"default_wrap_up_seconds", 1}, {"stats_push_ms", 1000}}}};
    std::ofstream(dir_ + "/switchboard.json") << config.dump(2);
  }

  void start_server() {
    server_ = std::make_unique<child>(
        std::vector<std::string>{SWITCHBOARD_BINARY, "run", "--config", dir_ + "/switchboard.json"},
        dir_ + "/switchboard.log");
    ASSERT_TRUE(server_->started());
  }

  // Twelve scripted operators on their own event loop. Each comes back (connects and logs in
  // again) whenever his desktop loses the server, as an operator's desktop application does.
  void start_desktops() {
    desk::script s;
    s.port = desk_port_;
    s.tenant = "acme";
    s.password = "pw";
    s.answer_delay = 1500ms;
    s.wrap_up = 1000ms;
    for (int i = 0; i < operator_count; ++i) {
      auto play = [this, s, login = login_of(i)]() -> asio::awaitable<void> {
        while (!stop_desktops_) {
          co_await desk::play_operator(s, login, desk_stats_, [this] { return stop_desktops_.load(); });
          if (!stop_desktops_) co_await testing::sleep_for(300ms);
        }
      };
      asio::co_spawn(desk_loop_, std::move(play), asio::detached);
    }
    desk_thread_ = std::thread([this] { desk_loop_.run(); });
  }

  void stop_desktops() {
    stop_desktops_ = true;
    if (desk_thread_.joinable()) desk_thread_.join();
  }

  // The server answers /health with this link state (false at once when the server has died).
  bool link_is(const std::string& state) {
    if (!server_->alive()) return false;
    auto h = health(health_port_);
    return h && h->value("status", "") == "ok" && h->value("pbx_link", "") == state;
  }

  long count(const std::string& sql) const { return std::stol(db_.scalar(sql)); }

  // Phone-driven states only a live call justifies.
  long busy_operators() const {
    return count("SELECT count(*) FROM presence WHERE state IN ('reserved', 'ringing', 'talking', 'held')");
  }

  // Stops new calls and waits until the PBX has none and Switchboard has closed every record and
  // freed every operator.
  void drain() {
    control_.send({{"cmd", "set_rate"}, {"rate", 0}});
    ASSERT_TRUE(eventually([&] { return control_.stats().at("active_calls").get<long>() == 0; }, 90s))
        << control_.stats().dump();
    ASSERT_TRUE(eventually(
        [&] {
          return busy_operators() == 0 && count("SELECT count(*) FROM calls WHERE ended_at IS NULL") == 0 &&
                 count("SELECT count(*) FROM presence WHERE state = 'wrap_up'") == 0;
        },
        60s))
        << "busy operators: " << busy_operators()
        << ", open records: " << count("SELECT count(*) FROM calls WHERE ended_at IS NULL");
  }

  // Every call of the shift against the records: Switchboard's calls have exactly one closed
  // record each; a call the PBX asked about and got no answer for was taken by the PBX's default
  // routing; calls offered while no link was up are the PBX's alone. Returns the PBX's log.
  json check_records() {
    const auto reply = control_.send({{"cmd", "calls"}});
    EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
    std::map<std::string, int> records;
    {
      pqxx::connection c(db_.url());
      pqxx::read_transaction tx(c);
      for (const auto& row : tx.exec("SELECT pbx_call_id FROM calls")) ++records[row[0].as<std::string>()];
    }
    int routed = 0;
    for (const auto& fate : reply.at("calls")) {
      const auto id = fate.at("call").get<std::string>();
      const int n = records.count(id) ? records[id] : 0;
      EXPECT_TRUE(fate.at("ended").get<bool>() || !fate.at("continued_as").get<std::string>().empty()) << fate.dump();
      if (fate.at("routed_by_cti").get<bool>()) {
        ++routed;
        EXPECT_EQ(n, 1) << "call " << id << " was routed by Switchboard: " << fate.dump();
      } else if (fate.at("route_requested").get<bool>()) {
        EXPECT_LE(n, 1) << fate.dump();
        if (n == 0) EXPECT_TRUE(fate.at("default_routed").get<bool>()) << "call " << id << " lost: " << fate.dump();
      } else {
        EXPECT_EQ(n, 0) << "call " << id << " never reached Switchboard: " << fate.dump();
      }
      records.erase(id);
    }
    EXPECT_GT(routed, 0);
    for (const auto& [id, n] : records) ADD_FAILURE() << n << " records of call " << id << " the PBX never offered";
    EXPECT_EQ(count("SELECT count(*) FROM calls WHERE ended_at IS NULL OR disposition IS NULL"), 0);
    return reply.at("calls");
  }

  // Calls answered by an operator and offered after the database's clock read `since`.
  long answered_since(const std::string& since) const {
    return count("SELECT count(*) FROM calls WHERE answered_at IS NOT NULL AND offered_at > '" + since +
                 "'::timestamptz");
  }

  std::string dump_logs() const {
    std::ostringstream out;
    for (const auto* name : {"switchboard.log", "pbxsim.log"}) {
      std::string text;
      testing::run_command("tail -n 60 '" + dir_ + "/" + name + "'", &text);
      out << "---- last lines of " << dir_ << "/" << name << "\n" << text;
    }
    return out.str();
  }

  testing::test_database db_;
  std::string dir_;
  std::uint16_t pbx_port_ = 0, control_port_number_ = 0, desk_port_ = 0, health_port_ = 0;
  std::unique_ptr<child> pbxsim_;
  std::unique_ptr<child> server_;
  control_port control_;
  asio::io_context desk_loop_;
  std::thread desk_thread_;
  std::atomic<bool> stop_desktops_{false};
  desk::script_stats desk_stats_;  // touched only on the desktops' thread until it is joined
};

TEST_F(Resilience, ServerKilledMidShiftRestartsWithoutStuckOperatorsOrLostRecords) {
  control_.send({{"cmd", "set_rate"}, {"rate", 2.5}});
  // Overload builds: calls talking, ringing and waiting in the queue at one moment.
  ASSERT_TRUE(eventually(
      [&] {
        return count("SELECT count(*) FROM presence WHERE state = 'talking'") > 0 &&
               count("SELECT count(*) FROM presence WHERE state IN ('reserved', 'ringing')") > 0 &&
               count("SELECT count(*) FROM waiting_calls") > 0;
      },
      90s));
  const auto open_at_kill = count("SELECT count(*) FROM calls WHERE ended_at IS NULL");
  server_->stop(SIGKILL);

  start_server();
  ASSERT_TRUE(eventually([&] { return link_is("up") || !server_->alive(); }, 90s) && server_->alive());
  const auto restarted = db_.scalar("SELECT now()::text");
  // Of the calls it had open, those the PBX still had went on with their records (talking ones at
  // least: talk times are longer than a restart), and the rest were closed by the start-up
  // reconciliation, each saying so in the journal.
  EXPECT_GT(open_at_kill, 0);
  EXPECT_TRUE(eventually([&] { return count("SELECT count(*) FROM call_events WHERE kind = 'resumed'") > 0; }, 30s))
      << dump_logs();
  EXPECT_GT(count("SELECT count(*) FROM call_events WHERE kind = 'closed_on_reconcile'"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM call_events r JOIN call_events c USING (call_id) "
                  "WHERE r.kind = 'resumed' AND c.kind = 'closed_on_reconcile'"),
            0);
  // Desktops come back and take calls again.
  ASSERT_TRUE(eventually(
      [&] {
        return answered_since(restarted) >= 8 &&
               count("SELECT count(DISTINCT operator_id) FROM calls WHERE offered_at > '" + restarted +
                     "'::timestamptz AND answered_at IS NOT NULL") >= 4;
      },
      90s));

  drain();
  check_records();
  stop_desktops();
  // Every operator logged in twice: before the kill and after the restart.
  EXPECT_GE(desk_stats_.logged_in, 2 * operator_count);
}

TEST_F(Resilience, PbxLinkDroppedForTenSecondsResyncsAndRecordsStayComplete) {
  control_.send({{"cmd", "set_rate"}, {"rate", 2.5}});
  // Calls talking and callers queued (their routing dialogs held at the route point) when it drops.
  ASSERT_TRUE(eventually(
      [&] {
        return count("SELECT count(*) FROM presence WHERE state = 'talking'") >= 2 &&
               count("SELECT count(*) FROM waiting_calls") > 0;
      },
      90s));
  const auto before = control_.stats();

  control_.send({{"cmd", "drop_link"}, {"seconds", 10}});
  // The operators talking now, on calls that end while the link is down.
  std::vector<std::pair<long, std::string>> talking;  // (record id, pbx call id)
  {
    pqxx::connection c(db_.url());
    pqxx::read_transaction tx(c);
    for (const auto& row : tx.exec("SELECT c.call_id, c.pbx_call_id FROM presence p JOIN calls c ON "
                                   "c.call_id = p.current_call_id WHERE p.state = 'talking'"))
      talking.emplace_back(row[0].as<long>(), row[1].as<std::string>());
  }
  ASSERT_FALSE(talking.empty());
  ASSERT_TRUE(eventually([&] { return !link_is("up"); }, 30s));
  for (const auto& [record, call] : talking) control_.send({{"cmd", "hang_up"}, {"call", call}});
  // Meanwhile the PBX routes by itself: a call offered now goes to its default device.
  const auto offered = control_.send({{"cmd", "offer"},
                                      {"route_point", "5000"},
                                      {"caller", "+49305550001"},
                                      {"talk_ms", 2000},
                                      {"patience_ms", 8000}});
  ASSERT_TRUE(offered.value("ok", false)) << offered.dump();
  const auto during_outage = offered.at("call").get<std::string>();

  ASSERT_TRUE(eventually([&] { return link_is("up") || !server_->alive(); }, 90s) && server_->alive());
  const auto returned = db_.scalar("SELECT now()::text");
  // The reconcile after the link's return: the calls that ended in the gap are closed, answered,
  // and their operators are not left talking.
  for (const auto& [record, call] : talking) {
    const auto id = std::to_string(record);
    EXPECT_TRUE(eventually(
        [&] {
          return count("SELECT count(*) FROM presence WHERE current_call_id = " + id) == 0 &&
                 count("SELECT count(*) FROM calls WHERE call_id = " + id +
                       " AND ended_at IS NOT NULL AND disposition = 'answered'") == 1;
        },
        60s))
        << "call " << call << " (record " << id << ") after the link returned";
  }
  // Calling resumes through Switchboard.
  ASSERT_TRUE(eventually([&] { return answered_since(returned) >= 5; }, 90s));
  const auto after = control_.stats();
  EXPECT_GT(after.at("routed_by_cti").get<long>(), before.at("routed_by_cti").get<long>());
  EXPECT_GT(after.at("default_routed").get<long>(), before.at("default_routed").get<long>());

  drain();
  const auto calls = check_records();
  bool seen = false;
  for (const auto& fate : calls) {
    if (fate.at("call") != during_outage) continue;
    seen = true;
    EXPECT_FALSE(fate.at("route_requested").get<bool>()) << fate.dump();
    EXPECT_TRUE(fate.at("default_routed").get<bool>()) << fate.dump();
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace switchboard
