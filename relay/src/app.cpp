#include "app.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "http/caller.h"
#include "http/respond.h"
#include "http/router.h"
#include "http/server.h"
#include "keyrelay/reauthorization.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "routes/auth.h"
#include "routes/bridge.h"
#include "routes/connect.h"
#include "routes/connections.h"
#include "routes/proxy.h"
#include "routes/static_files.h"
#include "state/login_throttle.h"
#include "state/oauth_states.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/sessions.h"
#include "state/store.h"
#include "state/tokens.h"
#include "upstream.h"

namespace keyrelay::relay {

// What the relay owns: the store, tokens, sessions and the upstream client, the routes that use them, and the
// server that routes to them.
struct Relay::Impl {
    Config& config;
    Metrics metrics;
    std::unique_ptr<Redis> redis;   // set when several relays share one Redis (config.redis_url)
    std::unique_ptr<ConnectionStore> store;   // the file store, or Redis when `redis` is set
    std::unique_ptr<Upstream> upstream;
    std::unique_ptr<TokenManager> tokens;
    std::unique_ptr<SessionStore> sessions;
    std::unique_ptr<LoginThrottle> throttle;
    std::unique_ptr<StateStore> states;
    std::unique_ptr<Callers> callers;
    std::unique_ptr<AuthRoutes> auth;
    std::unique_ptr<ConnectRoutes> connect;
    std::unique_ptr<ConnectionsRoutes> connections;
    std::unique_ptr<ProxyRoute> proxy;
    std::unique_ptr<KeapBridgeRoute> bridge;
    std::unique_ptr<StaticFiles> files;
    std::unique_ptr<HttpServer> server;

    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stopping = false;
    std::thread keepalive;

    explicit Impl(Config& c) : config(c) {}

    // A token or accessible-resources exchange, timed in the metrics.
    Result<HttpResponse> send_upstream(const std::string& provider, const HttpRequest& request) {
        auto started = std::chrono::steady_clock::now();
        auto r = upstream->send(request);
        metrics.observe_upstream_latency(
            provider, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        return r;
    }

    // /healthz: "ok", or "degraded" with a reason while the shared store is unreachable. Still 200: the relay
    // itself runs, and serves what it can from memory (docs/api.md).
    nlohmann::json health() {
        nlohmann::json body = {{"status", "ok"}, {"version", KEYRELAY_VERSION}, {"store", store->backend()}};
        if (redis) {
            auto pong = redis->command({"PING"});
            if (!pong) {
                metrics.count_store_error();
                body["status"] = "degraded";
                body["reason"] = pong.error().message;   // names host:port/db, never the password (RedisUrl::where)
            }
        }
        return body;
    }

    Router routes() {
        Router r;
        auto to = [](auto* object, auto method) {
            return [object, method](RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
                (object->*method)(ctx, req, res);
            };
        };
        // The proxy first: proxied calls are most of the traffic.
        for (const char* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
            r.add(method, "/proxy/{name}*", to(proxy.get(), &ProxyRoute::handle));
        }
        r.add("POST", "/bridge/keap/xmlrpc", to(bridge.get(), &KeapBridgeRoute::handle));
        r.add("GET", "/healthz", [this](RequestContext&, const httplib::Request&, httplib::Response& res) {
            send_json(res, 200, health());
        });
        r.add("GET", "/metrics", [this](RequestContext&, const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
        });
        r.add("POST", "/login", to(auth.get(), &AuthRoutes::login));
        r.add("POST", "/logout", to(auth.get(), &AuthRoutes::logout));
        r.add("GET", "/api/session", to(auth.get(), &AuthRoutes::session));
        r.add("GET", "/api/connections", to(connections.get(), &ConnectionsRoutes::list));
        r.add("POST", "/api/connections/{name}/disconnect", to(connections.get(), &ConnectionsRoutes::disconnect));
        r.add("GET", "/connect/{name}", to(connect.get(), &ConnectRoutes::connect));
        r.add("GET", "/callback/{name}", to(connect.get(), &ConnectRoutes::callback));
        r.fallback(to(files.get(), &StaticFiles::handle));
        return r;
    }
};

Relay::Relay(Config config) : config_(std::move(config)), impl_(std::make_unique<Impl>(config_)) {}

Relay::~Relay() {
    stop();
    if (impl_->keepalive.joinable()) impl_->keepalive.join();
}

std::string Relay::url() const { return config_.base_url(port_); }

Result<Unit> Relay::init() {
    set_log_query_values(config_.log_queries);
    Impl& m = *impl_;
    if (config_.data_dir.empty()) {
        return make_error("config.bad_value", "No data directory.", "Pass --data-dir or set data_dir in the config.");
    }
    if (!config_.redis_url.empty()) {
        // A key generated per process would make every relay unable to read the others' connections.
        if (!config_.store_key) {
            return make_error("config.store_key_required",
                              "KEYRELAY_REDIS_URL is set but KEYRELAY_STORE_KEY is not: relays sharing one Redis "
                              "must all seal connections with the same key.",
                              "Make one key with `openssl rand -hex 32` and give the same KEYRELAY_STORE_KEY to every "
                              "relay that uses this Redis.");
        }
        auto url = RedisUrl::parse(config_.redis_url);
        if (!url) return url.error();
        RedisOptions options;
        options.connect_timeout_ms = config_.redis_connect_timeout_ms;
        options.command_timeout_ms = config_.redis_command_timeout_ms;
        // Every server worker may look up its connection at once (one HGET per proxied call): keep that many idle
        // connections, or each burst beyond the pool connects and disconnects again.
        options.max_idle = static_cast<size_t>(std::clamp(config_.server_threads, 16, 256));
        m.redis = std::make_unique<Redis>(*url, options);
    }
    auto keys = load_store_keys(config_.data_dir, config_.store_key, config_.store_key_previous);
    if (!keys) return keys.error();
    if (keys->generated) {
        log_line(LogLevel::warn,
                 "NO KEYRELAY_STORE_KEY: generated a new store key file; back it up, or tokens are lost with it",
                 {{"key_file", keys->key_file}});
    }
    if (m.redis) {
        LeaseOptions lease;
        lease.lease_ms = config_.refresh_lease_ms;
        lease.max_wait_ms = 3 * config_.refresh_lease_ms;
        m.store = std::make_unique<RedisConnectionStore>(*m.redis, keys->keys, keys->current_key_id, lease);
    } else {
        m.store = std::make_unique<FileConnectionStore>(config_.data_dir, keys->keys, keys->current_key_id);
    }
    // Fail at start, not at the first request, when the store cannot be read with this key. An unreachable Redis is
    // not a reason to stay down: the relay starts degraded and recovers by itself when Redis returns.
    if (auto all = m.store->load_all(); !all) {
        if (all.error().code != "store.unavailable") return all.error();
        log_line(LogLevel::warn, "the store is unreachable; starting degraded", {{"detail", all.error().message}});
    }
    if (size_t stale = remove_stale_temp_files(config_.data_dir); stale > 0) {
        log_line(LogLevel::info, "removed temporary files left by an interrupted write", {{"count", stale}});
    }

    UpstreamOptions uo;
    uo.connect_timeout_ms = config_.upstream_connect_timeout_ms;
    uo.read_timeout_ms = config_.upstream_read_timeout_ms;
    uo.max_body = config_.max_upstream_body;
    uo.ca_file = config_.ca_file;
    // Every server worker may be in an upstream call at once: keep as many idle connections per origin (bounded), or
    // each burst opens (and TLS-handshakes) new ones.
    uo.max_idle_per_origin = static_cast<size_t>(std::clamp(config_.server_threads, 16, 256));
    m.upstream = std::make_unique<Upstream>(uo);
    Impl* self = impl_.get();
    auto send = [self](const std::string& provider, const HttpRequest& r) { return self->send_upstream(provider, r); };
    m.tokens = std::make_unique<TokenManager>(config_, *m.store, send, m.metrics, [] { return unix_now(); });
    TokenManager* tm = m.tokens.get();
    m.metrics.set_reauth_gauge([tm] { return tm->needing_reauth(); });
    std::vector<std::string> oauth_providers;
    for (const auto& p : config_.providers) {
        if (p.mode == Mode::oauth) oauth_providers.push_back(p.name);
    }
    m.metrics.set_reauthorize_by_gauge([tm, oauth_providers] {
        std::vector<std::pair<std::string, int64_t>> out;
        for (const auto& name : oauth_providers) {
            auto c = tm->get(name);
            if (!c || !c->has_value()) continue;
            auto o = reauthorization::outlook(reauthorization::kind_of(name), (*c)->connected_at, unix_now());
            if (o.reauthorize_by) out.emplace_back(name, *o.reauthorize_by);
        }
        return out;
    });
    for (const auto& p : config_.providers) m.metrics.add_provider(p.name);
    // Sessions, the login throttle and OAuth states: in Redis when relays share one (any relay may serve any
    // request), else in the data dir (sessions, throttle) and this process's memory (states).
    m.sessions = make_session_store(config_.session_hours * 3600, config_.data_dir, m.redis.get());
    m.throttle = make_login_throttle(5, 300, config_.data_dir, m.redis.get());
    if (m.redis) {
        m.states = std::make_unique<RedisStateStore>(*m.redis, keys->keys, keys->current_key_id);
    } else {
        m.states = std::make_unique<MemoryStateStore>();
    }

    m.callers = std::make_unique<Callers>(config_, *m.sessions);
    m.auth = std::make_unique<AuthRoutes>(config_, *m.callers, *m.sessions, *m.throttle);
    m.connect = std::make_unique<ConnectRoutes>(config_, port_, *m.callers, *m.sessions, *m.states, *m.tokens, send);
    m.connections = std::make_unique<ConnectionsRoutes>(config_, *m.callers, *m.tokens);
    m.proxy = std::make_unique<ProxyRoute>(config_, *m.callers, *m.tokens, *m.upstream, m.metrics);
    m.bridge = std::make_unique<KeapBridgeRoute>(config_, *m.proxy);
    std::string web = config_.web_dir.empty() ? std::string(KEYRELAY_SOURCE_DIR) + "/web" : config_.web_dir;
    std::string wasm = config_.wasm_dir.empty() ? std::string(KEYRELAY_SOURCE_DIR) + "/build/wasm" : config_.wasm_dir;
    m.files = std::make_unique<StaticFiles>(config_, port_, web, wasm);

    m.server = std::make_unique<HttpServer>(config_, m.metrics);
    return m.server->init(m.routes());
}

Result<int> Relay::bind() {
    auto port = impl_->server->bind();
    if (port) port_ = *port;
    return port;
}

bool Relay::run() {
    Impl& m = *impl_;
    m.keepalive = std::thread([&m] {
        std::unique_lock<std::mutex> lock(m.stop_mutex);
        auto interval = std::chrono::seconds(std::max<int64_t>(1, m.config.keepalive_check_seconds));
        // A first pass soon after start, then every interval.
        auto next = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!m.stopping) {
            if (m.stop_cv.wait_until(lock, next, [&m] { return m.stopping; })) break;
            lock.unlock();
            int n = m.tokens->keepalive_pass();
            if (n > 0) log_line(LogLevel::info, "keep-alive refresh", {{"refreshed", n}});
            lock.lock();
            next = std::chrono::steady_clock::now() + interval;
        }
    });
    bool ok = m.server->listen();
    stop();   // the server has stopped already: this ends the keep-alive thread
    if (m.keepalive.joinable()) m.keepalive.join();
    return ok;
}

void Relay::stop() {
    Impl& m = *impl_;
    {
        std::lock_guard<std::mutex> lock(m.stop_mutex);
        m.stopping = true;
    }
    m.stop_cv.notify_all();
    if (m.server) m.server->stop();
}

}  // namespace keyrelay::relay
