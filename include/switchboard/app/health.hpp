// GET /health on a small HTTP port (Beast): 200 with a JSON body while the server can route,
// 503 when the database is unreachable. For monitoring, load balancers and ./scripts/demo.
// GET /metrics on the same port: the metrics registry in Prometheus text format.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace switchboard::app {

struct health_report {
  bool healthy = false;
  std::string body;  // JSON
};

class health_endpoint {
 public:
  using reporter = std::function<health_report()>;
  using metrics_reporter = std::function<std::string()>;  // Prometheus text

  health_endpoint(boost::asio::any_io_executor loop, const boost::asio::ip::tcp::endpoint& where, reporter report,
                  metrics_reporter metrics = {});
  ~health_endpoint();
  // The bound endpoint (port 0 in the config picks a free port).
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace switchboard::app
