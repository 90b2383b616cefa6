#include "http/server.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "http/respond.h"
#include "http/task_queue.h"
#include "keyrelay/text.h"
#include "obs/log.h"
#include "state/crypto.h"

namespace keyrelay::relay {
namespace {

// An idle keep-alive connection holds a worker: it is closed after 2 s (which also lets SIGTERM stop the relay
// within about 2 s).
constexpr int kKeepAliveSeconds = 2;
constexpr size_t kKeepAliveMax = 1000;

// A request id: 12 base64url characters. It names a request in logs and answers; it is not a secret, so it comes
// from a per-thread generator seeded once from the CSPRNG, not from RAND_bytes per request (a lock and a getpid(2)
// each time).
std::string new_request_id() {
    thread_local std::mt19937_64 generator = [] {
        const std::string seed = random_bytes(32);
        std::seed_seq sequence(seed.begin(), seed.end());
        return std::mt19937_64(sequence);
    }();
    const uint64_t high = generator(), low = generator();
    char bytes[9];
    std::memcpy(bytes, &high, 8);
    bytes[8] = static_cast<char>(low);
    return base64url_encode(std::string_view(bytes, sizeof bytes));
}

}  // namespace

Result<Unit> HttpServer::init(Router router) {
    router_ = std::move(router);
    if (config_.tls()) {
        if (config_.tls_cert.empty() || config_.tls_key.empty()) {
            return make_error("tls.bad_files", "TLS needs both a certificate and a key.",
                              "Pass --tls-cert and --tls-key (or tls_cert and tls_key in the config).");
        }
        auto tls = std::make_unique<httplib::SSLServer>(config_.tls_cert.c_str(), config_.tls_key.c_str());
        if (!tls->is_valid()) {
            return make_error("tls.bad_files",
                              "The TLS certificate " + config_.tls_cert + " or key " + config_.tls_key +
                                  " cannot be loaded (missing, unreadable, or they do not match).",
                              "Check both paths and that the key belongs to the certificate (`keyrelay doctor` "
                              "checks this); for local HTTPS make them with scripts/dev-cert.");
        }
        server_ = std::move(tls);
    } else {
        server_ = std::make_unique<httplib::Server>();
    }
    httplib::Server& svr = *server_;
    // cpp-httplib 0.11 holds one worker per connection for its whole keep-alive life: the pool grows on demand up to
    // server_threads (connections served at once), so slow or idle clients cannot starve the others until that many
    // are open; extra workers exit after 10 s idle, and the core ones keep the idle footprint small.
    // Past that many, accepted connections wait in the queue (an open socket each, no thread), and connections not
    // accepted yet in the listen queue, widened after bind (listen_backlog.h).
    ElasticQueueOptions queue;
    queue.max = static_cast<size_t>(std::max(1, config_.server_threads));
    queue.core = std::min<size_t>(32, queue.max);
    queue.max_queued = std::max<size_t>(1024, 4 * queue.max);
    svr.new_task_queue = [queue] { return new ElasticQueue(queue); };
    svr.set_payload_max_length(config_.max_request_body);
    // cpp-httplib writes headers and body separately: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
    svr.set_tcp_nodelay(true);
    svr.set_socket_options(backlog_.socket_options());
    svr.set_keep_alive_timeout(kKeepAliveSeconds);
    svr.set_keep_alive_max_count(kKeepAliveMax);
    // cpp-httplib's read timeout applies to each read, not to the whole request: a client silent for 10 s in the
    // middle of a request is dropped.
    svr.set_read_timeout(10, 0);
    svr.set_write_timeout(10, 0);
    httplib::Headers defaults = {{"X-Content-Type-Options", "nosniff"},
                                 {"X-Frame-Options", "DENY"},
                                 {"Referrer-Policy", "no-referrer"},
                                 // The page: its own scripts and the Wasm module they compile, nothing inline (images
                                 // may be data: URLs), no plugins, no <base>, forms only to the relay, never framed
                                 // (docs/security.md).
                                 {"Content-Security-Policy",
                                  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data:; "
                                  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"}};
    // RFC 6797: over HTTPS, the browser never tries plain HTTP to this host again for a year.
    if (config_.tls()) defaults.emplace("Strict-Transport-Security", "max-age=31536000");
    svr.set_default_headers(std::move(defaults));

    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        return pre_route(req, res);
    });
    svr.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
        return guards_.admit_expect_continue(req, res);
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const httplib::Request& req, httplib::Response& res) { return on_error(req, res); }));
    svr.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        on_exception(req, res, ep);
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) { on_log(req, res); });
    // Every request goes to the route table (router.h): one catch-all pattern per method instead of a regex per
    // route. [\s\S]: cpp-httplib matches the decoded path, which may hold a line break (refused by the handler).
    auto all = [this](const httplib::Request& req, httplib::Response& res) { route(req, res); };
    svr.Get("[\\s\\S]*", all);
    svr.Post("[\\s\\S]*", all);
    svr.Put("[\\s\\S]*", all);
    svr.Patch("[\\s\\S]*", all);
    svr.Delete("[\\s\\S]*", all);
    return Unit{};
}

Result<int> HttpServer::bind() {
    int port = config_.port;
    if (port == 0) {
        port = server_->bind_to_any_port(config_.bind);
    } else if (!server_->bind_to_port(config_.bind, port)) {
        port = 0;
    }
    if (port <= 0) {
        return make_error("server.bind_failed",
                          "Could not listen on " + config_.bind + ":" + std::to_string(config_.port) + ".",
                          "Another program (or another keyrelay) probably uses that port: pick another with --port, "
                          "or --port 0 to let the system choose.");
    }
    if (!backlog_.widen()) {
        log_line(LogLevel::warn, "could not widen the listen queue; a burst of new connections may wait for retransmits",
                 {{"port", port}});
    }
    guards_.set_own_hosts(port);
    return port;
}

bool HttpServer::listen() { return server_->listen_after_bind(); }

void HttpServer::stop() {
    if (server_) server_->stop();
}

RequestContext& HttpServer::open(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(in_flight_mutex_);
    RequestContext& ctx = in_flight_[&req];
    ctx = RequestContext{};
    return ctx;
}

RequestContext* HttpServer::find(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(in_flight_mutex_);
    auto it = in_flight_.find(&req);
    return it == in_flight_.end() ? nullptr : &it->second;
}

RequestContext HttpServer::close(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(in_flight_mutex_);
    auto it = in_flight_.find(&req);
    if (it == in_flight_.end()) return RequestContext{};
    RequestContext ctx = std::move(it->second);
    in_flight_.erase(it);
    return ctx;
}

httplib::Server::HandlerResponse HttpServer::pre_route(const httplib::Request& req, httplib::Response& res) {
    RequestContext& ctx = open(req);
    ctx.id = new_request_id();
    ctx.started = std::chrono::steady_clock::now();
    res.set_header("X-Request-Id", ctx.id);
    return guards_.admit(ctx, req, res) ? httplib::Server::HandlerResponse::Unhandled
                                   : httplib::Server::HandlerResponse::Handled;
}

void HttpServer::route(const httplib::Request& req, httplib::Response& res) {
    RequestContext* ctx = find(req);
    if (ctx == nullptr) return;   // cannot happen: the pre-routing handler opened it
    if (!router_.dispatch(*ctx, req, res)) res.status = 404;   // the error handler tells 404 from 405
}

httplib::Server::HandlerResponse HttpServer::on_error(const httplib::Request& req, httplib::Response& res) {
    RequestContext* ctx = find(req);
    if (!res.body.empty() || res.has_header("Content-Type") || (ctx != nullptr && ctx->final_answer) ||
        res.status == 204) {
        return httplib::Server::HandlerResponse::Unhandled;
    }
    int status = res.status;
    if (status == 404) {
        if (auto allowed = router_.allowed_methods(req.path); !allowed.empty()) {
            res.set_header("Allow", allowed);
            send_error(res, 405, "http.method_not_allowed", req.method + " is not allowed on " + req.path + ".",
                       "Allowed: " + allowed + ". See docs/api.md.");
            return httplib::Server::HandlerResponse::Handled;
        }
        send_error(res, 404, "http.not_found", "Nothing is served at " + redact_target(req.path) + ".",
                   "The API is under /api/, /proxy/{provider}/, /connect/, /callback/, /login, /logout, /healthz "
                   "and /metrics (docs/api.md); the page is at /.");
    } else if (status == 413) {
        send_error(res, 413, "http.payload_too_large", "The request body is too large.",
                   "The relay accepts request bodies up to " + std::to_string(config_.max_request_body) +
                       " bytes (max_request_body in the config).");
    } else if (status == 400) {
        send_error(res, 400, "http.bad_request", "The request could not be parsed.",
                   "Check the request line and headers.");
    } else {
        send_error(res, status, "http.error", "The request failed with HTTP " + std::to_string(status) + ".",
                   "Retry; if it persists, look at the relay's log for this request id.");
    }
    return httplib::Server::HandlerResponse::Handled;
}

void HttpServer::on_exception(const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
        if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
    }
    RequestContext* ctx = find(req);
    std::string id = ctx != nullptr ? ctx->id : std::string();
    log_line(LogLevel::error, "unhandled exception",
             {{"request_id", id}, {"path", redact_target(req.path)}, {"what", what}});
    send_error(res, 500, "internal.error", "The relay hit an internal error.",
               "This is a bug in keyrelay; the relay's log has the details for request " + id + ".");
}

// The access log line and the request's count in the metrics.
void HttpServer::on_log(const httplib::Request& req, const httplib::Response& res) {
    RequestContext ctx = close(req);
    bool known = !ctx.id.empty();
    if (!known) ctx.id = new_request_id();
    metrics_.count_request(ctx.provider, res.status);
    std::string path = redact_target(req.target);
    RequestLogLine line;
    line.request_id = ctx.id;
    line.method = req.method;
    line.path = path;
    line.status = res.status;
    line.duration_ms =
        known ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.started).count() : 0;
    line.remote = req.remote_addr;
    if (ctx.provider != "relay") line.provider = ctx.provider;
    log_request(line);
}

}  // namespace keyrelay::relay
