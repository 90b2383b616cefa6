// The relay's HTTP server: cpp-httplib's Server (plain) or SSLServer (TLS), through its public API only. It owns the
// worker pool, the limits and timeouts, the guards, the route table, the one error handler, the last-resort
// exception handler and the access log.
#pragma once

#include <httplib.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "config.h"
#include "http/context.h"
#include "http/guards.h"
#include "http/listen_backlog.h"
#include "http/router.h"
#include "keyrelay/result.h"
#include "obs/metrics.h"

namespace keyrelay::relay {

class HttpServer {
public:
    HttpServer(const Config& config, Metrics& metrics)
        : config_(config), metrics_(metrics),
          guards_(config, [this](std::string_view path) { return router_.is_fallback(path); }) {}

    // Creates the listener (TLS when the config has a certificate). Errors: "tls.bad_files".
    Result<Unit> init(Router router);
    // Binds config.bind:config.port (0 = any free port). Errors: "server.bind_failed".
    Result<int> bind();
    // Serves until stop(); false when the listener failed.
    bool listen();
    void stop();

private:
    // The context of each request in flight, from the guards to the access log line. cpp-httplib hands its
    // handlers the same Request object for the whole exchange; its address is the key.
    RequestContext& open(const httplib::Request& req);
    RequestContext* find(const httplib::Request& req);
    RequestContext close(const httplib::Request& req);

    httplib::Server::HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res);
    void route(const httplib::Request& req, httplib::Response& res);
    httplib::Server::HandlerResponse on_error(const httplib::Request& req, httplib::Response& res);
    void on_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr ep);
    void on_log(const httplib::Request& req, const httplib::Response& res);

    const Config& config_;
    Metrics& metrics_;
    Guards guards_;
    Router router_;
    ListenBacklog backlog_;
    std::unique_ptr<httplib::Server> server_;
    std::mutex in_flight_mutex_;
    std::unordered_map<const httplib::Request*, RequestContext> in_flight_;
};

}  // namespace keyrelay::relay
