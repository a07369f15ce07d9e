// The running server: one event loop thread owning call and operator state, the database pool
// beside it, the LISTEN/NOTIFY listener and the health endpoint. Later parts (PBX link, router,
// desktop hub) are wired here.
#pragma once

#include "switchboard/app/config.hpp"

#include <memory>

namespace switchboard::app {

class server {
 public:
  explicit server(config cfg);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Runs until SIGINT/SIGTERM or `stop`; returns the process exit status.
  int run();
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::app
