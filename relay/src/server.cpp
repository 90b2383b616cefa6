#include "server.h"

#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "async_upstream.h"
#include "bridge.h"
#include "crypto.h"
#include "event_server.h"
#include "http_util.h"
#include "keyrelay/diagnose.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/oauth2.h"
#include "keyrelay/proxy.h"
#include "keyrelay/text.h"
#include "log.h"
#include "metrics.h"
#include "sessions.h"
#include "store.h"
#include "tokens.h"
#include "task_queue.h"
#include "upstream.h"

#ifndef KEYRELAY_VERSION
#define KEYRELAY_VERSION "0.0.0"
#endif
#ifndef KEYRELAY_SOURCE_DIR
#define KEYRELAY_SOURCE_DIR "."
#endif

namespace httplib::detail {
// The reason phrases of cpp-httplib's own status lines: exported by libcpp-httplib 0.11, not declared in its header.
// The fast path writes its status lines with the same words.
const char* status_message(int status);
}  // namespace httplib::detail

namespace keyrelay::relay {
namespace {

// cpp-httplib's keep-alive settings for the answers it writes; the fast path writes the same Keep-Alive header.
constexpr int kKeepAliveSeconds = 2;
constexpr size_t kKeepAliveMax = 1000;

using nlohmann::json;
using Clock = std::chrono::steady_clock;

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// Per-request context: a request id, the start time and the provider label for metrics. cpp-httplib runs the
// pre-routing handler, the route handler and the logger of one request on the same thread.
struct RequestContext {
    std::string id;
    Clock::time_point started;
    std::string provider = "relay";
    bool passthrough = false;   // the response is an upstream answer: the error handler leaves it alone
    bool active = false;
};
thread_local RequestContext t_ctx;
const std::string kRelayProvider = "relay";

// A request id: 12 base64url characters. Ids name requests in logs and answers; they are not secrets, so a
// per-thread generator seeded from the CSPRNG serves them without a RAND_bytes call per request.
std::string new_request_id() {
    thread_local std::mt19937_64 gen = [] {
        std::string seed = random_bytes(16);
        std::seed_seq seq(seed.begin(), seed.end());
        return std::mt19937_64(seq);
    }();
    uint64_t a = gen(), b = gen();
    std::string bytes(9, '\0');
    std::memcpy(bytes.data(), &a, 8);
    bytes[8] = static_cast<char>(b & 0xff);
    return base64url_encode(bytes);
}

// A proxied call, checked and ready to send.
struct ProxyCall {
    const ProviderConfig* p = nullptr;
    std::string bare;                  // the API path without the query, for the allowlist and the diagnosis
    std::optional<Connection> conn;    // OAuth providers: the connection whose token is attached
    HttpRequest up;
};

// Left by the event loop's fast path for the worker that continues a call it handed over (a retry or a refresh,
// event_server.h): the upstream exchange it already made (attempt 0) and the connection whose token it used, so
// that the worker neither sends the request again for nothing nor takes a refresh decision about another token.
struct InjectedAttempt {
    Clock::time_point started;   // when the front end took the request (its logged duration counts from there)
    std::string id;              // the request id it was given
    std::optional<Connection> conn;
    std::optional<std::pair<Result<HttpResponse>, double>> first;
};
thread_local InjectedAttempt* t_inject = nullptr;

// cpp-httplib listens with a backlog of 5; a burst of page calls needs more (re-listen widens it on Linux).
template <class Base>
class WideBacklog : public Base {
public:
    using Base::Base;
    void widen_backlog(int backlog) { ::listen(this->svr_sock_, backlog); }
};
using TlsServer = WideBacklog<httplib::SSLServer>;

// cpp-httplib's request processing without its socket loop: the event front end (event_server.h) feeds it one
// request's bytes from memory and collects the answer's bytes.
class FrontServer : public httplib::Server {
public:
    bool serve(httplib::Stream& stream, bool close_connection, bool& connection_closed) {
        return process_request(stream, close_connection, connection_closed, nullptr);
    }
};

class MemoryStream final : public httplib::Stream {
public:
    MemoryStream(const std::string& in, const std::string& ip, int port) : in_(in), ip_(ip), port_(port) {}
    bool is_readable() const override { return true; }
    bool is_writable() const override { return true; }
    ssize_t read(char* ptr, size_t size) override {
        size_t n = std::min(size, in_.size() - pos_);
        std::memcpy(ptr, in_.data() + pos_, n);
        pos_ += n;
        return static_cast<ssize_t>(n);
    }
    ssize_t write(const char* ptr, size_t size) override {
        out_.append(ptr, size);
        return static_cast<ssize_t>(size);
    }
    void get_remote_ip_and_port(std::string& ip, int& port) const override {
        ip = ip_;
        port = port_;
    }
    void get_local_ip_and_port(std::string& ip, int& port) const override {
        ip = "";
        port = 0;
    }
    socket_t socket() const override { return 0; }   // no socket: cpp-httplib only compares it with FD_SETSIZE
    std::string take() { return std::move(out_); }

private:
    const std::string& in_;
    size_t pos_ = 0;
    std::string out_;
    std::string ip_;
    int port_;
};

// The fast path's view of a request, with the members of httplib::Request that the checks shared with the slow path
// read (pre_route, authenticate, prepare_proxy are templates over both): no multimap to build per request.
struct FastRequest {
    const IncomingRequest& in;
    const std::string& method;
    const std::string& target;
    std::string path;   // percent-decoded, as cpp-httplib gives it
    const std::vector<std::pair<std::string, std::string>>& headers;
    std::string body;
    const std::string& remote_addr;

    explicit FastRequest(const IncomingRequest& r)
        : in(r), method(r.method), target(r.target),
          path(decoded_path(r.target)), headers(r.headers),
          remote_addr(r.remote_ip) {
        if (method != "GET" && method != "HEAD" && method != "DELETE") body.assign(r.body());
    }
    // The path as cpp-httplib gives it: percent-decoded, without the query.
    static std::string decoded_path(const std::string& target) {
        size_t q = target.find('?');
        size_t pct = target.find('%');
        if (pct == std::string::npos || pct > q) return target.substr(0, q);
        return httplib::detail::decode_url(target.substr(0, q), false);
    }
    bool has_header(const std::string& name) const { return in.header(name) != nullptr; }
    // A reference, not a copy (callers bind it to a const reference, which also holds httplib's returned value).
    const std::string& get_header_value(const std::string& name) const {
        static const std::string kNone;
        const std::string* v = in.header(name);
        return v == nullptr ? kNone : *v;
    }
    size_t get_header_value_count(const std::string& name) const { return in.header_count(name); }
};

// The fast path's answer under construction: the members of httplib::Response that relay_answer and send_error use,
// with headers kept in insertion order (write_fast puts them in cpp-httplib's order at the end). Names and values are
// kept in one buffer: an answer costs two allocations for its headers, not two per header.
struct FastResponse {
    struct Field {
        uint32_t name, name_len, value, value_len;
        bool removed;
    };
    int status = -1;
    std::string body;
    std::string store;
    std::vector<Field> fields;

    FastResponse() {
        store.reserve(1024);
        fields.reserve(24);
    }
    std::string_view name_of(const Field& f) const { return std::string_view(store).substr(f.name, f.name_len); }
    std::string_view value_of(const Field& f) const { return std::string_view(store).substr(f.value, f.value_len); }

    void set_header(std::string_view name, std::string_view value) {
        if (has_line_break(name) || has_line_break(value)) return;   // as httplib: refused quietly
        Field f{static_cast<uint32_t>(store.size()), static_cast<uint32_t>(name.size()), 0,
                static_cast<uint32_t>(value.size()), false};
        store.append(name);
        f.value = static_cast<uint32_t>(store.size());
        store.append(value);
        fields.push_back(f);
    }
    std::optional<std::string_view> find(std::string_view name) const {
        for (const Field& f : fields) {
            if (!f.removed && iequals(name_of(f), name)) return value_of(f);
        }
        return std::nullopt;
    }
    bool has_header(std::string_view name) const { return find(name).has_value(); }
    // As httplib's: the body, and Content-Type replaced.
    void set_content(std::string content, std::string_view type) {
        body = std::move(content);
        for (Field& f : fields) {
            if (iequals(name_of(f), "Content-Type")) f.removed = true;
        }
        set_header("Content-Type", type);
    }
};

// The provider's body as the answer's content, without a copy where the answer type allows it.
void move_content(FastResponse& res, std::string&& body, const std::string& type) {
    res.set_content(std::move(body), type);
}
void move_content(httplib::Response& res, std::string&& body, const std::string& type) {
    res.set_content(body, type);
}

// ASCII lower case, as ::tolower in the "C" locale (cpp-httplib's header order).
inline unsigned char lower_char(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    return u >= 'A' && u <= 'Z' ? static_cast<unsigned char>(u - 'A' + 'a') : u;
}

// Does the head of an answer say "Connection: close"?
bool says_close(const std::string& bytes) {
    size_t end = bytes.find("\r\n\r\n");
    if (end == std::string::npos) return true;
    return std::string_view(bytes.data(), end + 2).find("\r\nConnection: close\r\n") != std::string_view::npos;
}

}  // namespace

struct Relay::Impl {
    Config& config;
    int& port;
    std::unique_ptr<httplib::Server> server;
    FrontServer* front = nullptr;                         // server, when the event front end serves (plain HTTP)
    std::unique_ptr<EventServer> events;
    httplib::Headers default_headers;                     // on every answer (cpp-httplib's and the fast path's)
    std::vector<std::unique_ptr<AsyncUpstream>> async;    // one per event loop
    std::function<void(int)> widen;
    std::unique_ptr<TokenStore> store;
    std::unique_ptr<Upstream> upstream;
    Metrics metrics;
    std::unique_ptr<TokenManager> tokens;
    std::unique_ptr<SessionStore> sessions;
    LoginThrottle throttle;
    StateStore states;
    std::map<std::string, std::string> password_hashes;   // username -> hash
    std::string dummy_hash;                               // equalizes timing for unknown users
    std::vector<std::string> own_hosts;                   // Host values naming this relay (set_own_hosts)
    std::string web_root;                                 // realpath of the web dir ("" when missing)
    std::string wasm_root;                                // realpath of the Wasm build dir ("" when missing)

    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stopping = false;
    std::thread keepalive;

    Impl(Config& c, int& p) : config(c), port(p) {}

    // ------------------------------------------------------------------------------------------------------------
    // Small helpers

    std::string session_cookie_name() const { return config.tls() ? "__Host-keyrelay_session" : "keyrelay_session"; }

    std::string cookie(const std::string& name, const std::string& value, const std::string& same_site,
                       const std::string& path, int64_t max_age) const {
        std::string c = name + "=" + value + "; HttpOnly; SameSite=" + same_site + "; Path=" + path +
                        "; Max-Age=" + std::to_string(max_age);
        if (config.tls()) c += "; Secure";
        return c;
    }

    template <class Req>
    std::optional<Session> session_of(const Req& req) {
        auto id = cookie_value(req.get_header_value("Cookie"), session_cookie_name());
        if (!id) return std::nullopt;
        return sessions->find(*id, unix_now());
    }

    template <class Req>
    static bool has_csrf_header(const Req& req) {
        return req.get_header_value("X-Requested-With") == "keyrelay";
    }

    template <class Res>
    void send_error(Res& res, int status, const Error& e) {
        res.status = status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(error_json(e), "application/json");
    }
    template <class Res>
    void send_error(Res& res, int status, const std::string& code, const std::string& message,
                    const std::string& hint) {
        send_error(res, status, make_error(code, message, hint));
    }

    void send_json(httplib::Response& res, int status, const json& body) {
        res.status = status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    }

    // Errors met by a browser navigation (connect, callback): an HTML page that says what happened and links back.
    void send_page(httplib::Response& res, int status, const Error& e) {
        res.status = status;
        res.set_header("Cache-Control", "no-store");
        res.set_content(html_error_page(e), "text/html; charset=utf-8");
    }

    template <class Req>
    static bool wants_html(const Req& req) {
        return req.get_header_value("Accept").find("text/html") != std::string::npos;
    }

    template <class Req>
    void send_error_for(const Req& req, httplib::Response& res, int status, const Error& e) {
        if (wants_html(req)) {
            send_page(res, status, e);
        } else {
            send_error(res, status, e);
        }
    }

    Error no_session_error() const {
        return make_error("auth.no_session", "You are not logged in to the relay.",
                          "Log in on the relay's page first (POST /login), then retry.");
    }
    Error csrf_error() const {
        return make_error("csrf.missing_header", "The request lacks the header X-Requested-With: keyrelay.",
                          "Calls from the page must carry X-Requested-With: keyrelay (a cross-site form cannot add "
                          "it, which is what protects you from request forgery). Server-to-server callers use "
                          "Authorization: Bearer <KEYRELAY_API_KEY> instead.");
    }

    template <class Req>
    const ProviderConfig* provider_or_404(const std::string& name, const Req& req,
                                          httplib::Response& res, bool page) {
        const ProviderConfig* p = config.provider(name);
        if (p == nullptr) {
            std::string shown = name.size() > 40 ? name.substr(0, 40) + "..." : name;
            Error e = make_error("provider.unknown", "There is no provider named \"" + shown + "\" (names are "
                                 "case-sensitive).",
                                 "Known providers: " + provider_names() + ". Others can be added in the config "
                                 "(providers).");
            if (page) {
                send_error_for(req, res, 404, e);
            } else {
                send_error(res, 404, e);
            }
            return nullptr;
        }
        t_ctx.provider = p->name;
        return p;
    }

    std::string provider_names() const {
        std::string out;
        for (const auto& p : config.providers) out += (out.empty() ? "" : ", ") + p.name;
        return out;
    }

    std::string redirect_uri(const ProviderConfig& p) const { return config.redirect_uri(p.name, port); }

    Result<HttpResponse> send_upstream(const std::string& provider, const HttpRequest& request) {
        auto started = Clock::now();
        auto r = upstream->send(request);
        metrics.observe_upstream_latency(provider, std::chrono::duration<double>(Clock::now() - started).count());
        return r;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Host and Origin checks

    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 would reach a loopback relay with
    // "Host: evil.example". Only the relay's own names are served.
    template <class Req>
    bool host_allowed(const Req& req) const {
        const std::string& host = req.get_header_value("Host");
        if (host.empty()) return false;
        for (const std::string& name : own_hosts) {
            if (iequals(host, name)) return true;
        }
        // Bound to a non-loopback address without public_url: the relay cannot know its names.
        return config.public_url.empty() && !is_loopback_bind(config.bind);
    }

    // The Host values that name this relay: its public_url's host (with its port, and without it when that is the
    // scheme's default), and the loopback names with the port it listens on. Set once the port is known.
    void set_own_hosts() {
        own_hosts.clear();
        if (!config.public_url.empty()) {
            if (auto u = parse_url(config.public_url)) {
                // parse_url keeps an IPv6 literal's brackets (RFC 3986 §3.2.2), as Host carries them.
                std::string h = u->host.find(':') != std::string::npos && u->host.front() != '[' ? "[" + u->host + "]"
                                                                                                : u->host;
                bool default_port = (u->scheme == "https" && u->port == 443) || (u->scheme == "http" && u->port == 80);
                own_hosts.push_back(h + ":" + std::to_string(u->port));
                if (default_port) own_hosts.push_back(h);
            }
        }
        for (const char* name : {"127.0.0.1", "localhost", "[::1]"}) {
            own_hosts.push_back(std::string(name) + ":" + std::to_string(port));
        }
    }

    template <class Req>
    std::string own_origin(const Req& req) const {
        return std::string(config.tls() ? "https" : "http") + "://" + lower_ascii(req.get_header_value("Host"));
    }

    bool origin_allowed_cors(const std::string& origin) const {
        for (const auto& o : config.cors_origins) {
            if (o == origin) return true;
        }
        return false;
    }

    Error origin_error(const std::string& origin) const {
        return make_error("cors.origin_not_allowed",
                          "Requests from the origin " + origin + " are not allowed (it is not in cors_origins).",
                          "The page served by the relay needs no CORS. To call the relay from another web app, add "
                          "its exact origin (scheme://host[:port]) to \"cors_origins\" in the relay's config and "
                          "restart the relay.");
    }

    void add_cors_headers(httplib::Response& res, const std::string& origin) {
        res.set_header("Access-Control-Allow-Origin", origin);
        res.set_header("Access-Control-Allow-Credentials", "true");
        res.set_header("Access-Control-Expose-Headers",
                       "Retry-After, X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
                       "x-keap-product-quota-available, x-keap-product-throttle-available, x-keap-tenant-id");
    }

    // ------------------------------------------------------------------------------------------------------------
    // Handlers

    template <class Req>
    httplib::Server::HandlerResponse pre_route(const Req& req, httplib::Response& res) {
        t_ctx = RequestContext{};
        t_ctx.id = t_inject != nullptr && !t_inject->id.empty() ? t_inject->id : new_request_id();
        t_ctx.started = t_inject != nullptr ? t_inject->started : Clock::now();
        t_ctx.active = true;
        res.set_header("X-Request-Id", t_ctx.id);

        if (!host_allowed(req)) {
            send_error(res, 400, req.path.rfind("/proxy/", 0) == 0 ? "proxy.bad_path" : "http.bad_host",
                       "The Host header names a host this relay does not serve.",
                       "Open the relay by the address it printed (http://127.0.0.1:<port>) or by its public_url. "
                       "Other host names are refused to stop DNS-rebinding attacks on a local relay; behind a "
                       "reverse proxy, set public_url and pass the original Host.");
            return httplib::Server::HandlerResponse::Handled;
        }

        // Request framing (RFC 9112 §6). cpp-httplib reads the body after this handler, so its size is settled here,
        // and every refusal closes the connection (the unread body must never be parsed as another request).
        // cpp-httplib 0.11 applies payload_max_length to Content-Length bodies only: a chunked body would be buffered
        // whole, unauthenticated, with no limit. Content-Length must be one decimal number (§6.3 (5)).
        if (req.has_header("Transfer-Encoding") || req.has_header("Content-Length")) {
            res.set_header("Connection", "close");
            const std::string& length = req.get_header_value("Content-Length");
            bool decimal = req.get_header_value_count("Content-Length") == 1 && !length.empty() &&
                           length.size() <= 18 &&
                           std::all_of(length.begin(), length.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
            if (req.has_header("Transfer-Encoding")) {
                send_error(res, 411, "http.length_required",
                           "The relay does not accept a chunked (or otherwise transfer-encoded) request body.",
                           "Send the body with a Content-Length header (at most " +
                               std::to_string(config.max_request_body) + " bytes).");
                return httplib::Server::HandlerResponse::Handled;
            }
            if (!decimal) {
                send_error(res, 400, "http.bad_request", "The Content-Length header is not one decimal number.",
                           "Send exactly one Content-Length with the body's size in bytes.");
                return httplib::Server::HandlerResponse::Handled;
            }
            if (std::stoull(length) > config.max_request_body) {
                send_error(res, 413, "http.payload_too_large", "The request body is too large.",
                           "The relay accepts request bodies up to " + std::to_string(config.max_request_body) +
                               " bytes (max_request_body in the config).");
                return httplib::Server::HandlerResponse::Handled;
            }
            res.headers.erase("Connection");
        }

        const std::string& origin = req.get_header_value("Origin");
        bool has_origin = req.has_header("Origin");
        if (has_origin) res.set_header("Vary", "Origin");
        bool cross = has_origin && origin != own_origin(req) &&
                     !(!config.public_url.empty() && origin == config.base_url(port));

        if (req.method == "OPTIONS") {
            if (!has_origin || !req.has_header("Access-Control-Request-Method")) {
                res.status = 204;
                res.set_header("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
                return httplib::Server::HandlerResponse::Handled;
            }
            if (cross && !origin_allowed_cors(origin)) {
                send_error(res, 403, origin_error(origin));
                return httplib::Server::HandlerResponse::Handled;
            }
            // WHATWG Fetch §4.8 (CORS-preflight fetch): 204, never a redirect, the exact origin, credentials.
            res.status = 204;
            add_cors_headers(res, origin);
            res.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
            res.set_header("Access-Control-Allow-Headers",
                           "Content-Type, X-Requested-With, Authorization, Accept, X-Request-Id");
            res.set_header("Access-Control-Max-Age", "600");
            return httplib::Server::HandlerResponse::Handled;
        }

        if (cross) {
            // Navigations (the provider's redirect to /callback, links to /connect, the page's files) are not CORS.
            bool api = req.path.rfind("/api/", 0) == 0 || req.path.rfind("/proxy/", 0) == 0;
            bool safe = req.method == "GET" || req.method == "HEAD";
            if ((api || !safe) && !origin_allowed_cors(origin)) {
                send_error(res, 403, origin_error(origin));
                return httplib::Server::HandlerResponse::Handled;
            }
            if (origin_allowed_cors(origin)) add_cors_headers(res, origin);
        }
        return httplib::Server::HandlerResponse::Unhandled;
    }

    void handle_healthz(const httplib::Request&, httplib::Response& res) {
        send_json(res, 200, {{"status", "ok"}, {"version", KEYRELAY_VERSION}});
    }

    void handle_metrics(const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
    }

    void handle_login(const httplib::Request& req, httplib::Response& res) {
        const std::string addr = req.remote_addr;
        int64_t now = unix_now();
        if (int64_t wait = throttle.retry_after(addr, now); wait > 0) {
            res.set_header("Retry-After", std::to_string(wait));
            send_error(res, 429, "auth.throttled", "Too many failed logins from this address.",
                       "Wait " + std::to_string(wait) + " seconds (see Retry-After) before trying again. If you "
                       "forgot the password, make a new hash with `keyrelay hash-password` and put it in the "
                       "config's users.");
            return;
        }
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded() || !body.is_object() || !body.contains("username") || !body["username"].is_string() ||
            !body.contains("password") || !body["password"].is_string()) {
            send_error(res, 400, "auth.bad_request", "The login request is not {\"username\": ..., \"password\": ...}.",
                       "POST /login with a JSON body holding the username and password strings.");
            return;
        }
        std::string username = body["username"].get<std::string>();
        std::string password = body["password"].get<std::string>();
        auto it = password_hashes.find(username);
        bool ok;
        if (it == password_hashes.end()) {
            (void)verify_password(password, dummy_hash);   // same work as for a known user
            ok = false;
        } else {
            ok = verify_password(password, it->second);
        }
        if (!ok) {
            throttle.record_failure(addr, now);
            log_line(LogLevel::warn, "login failed", {{"request_id", t_ctx.id}, {"remote", addr}});
            send_error(res, 401, "auth.bad_credentials", "Wrong username or password.",
                       config.sandbox ? "In sandbox mode the login is demo / demo."
                                      : "Check the username and password; users and their password hashes are in "
                                        "the config (users). After 5 failures in 5 minutes logins are paused.");
            return;
        }
        throttle.record_success(addr);
        if (auto old = cookie_value(req.get_header_value("Cookie"), session_cookie_name())) sessions->remove(*old);
        std::string id = sessions->create(username, now);
        res.set_header("Set-Cookie", cookie(session_cookie_name(), id, "Strict", "/", sessions->lifetime()));
        log_line(LogLevel::info, "login", {{"request_id", t_ctx.id}, {"user", username}});
        send_json(res, 200, {{"user", username}});
    }

    void handle_logout(const httplib::Request& req, httplib::Response& res) {
        if (!has_csrf_header(req)) {
            send_error(res, 403, csrf_error());
            return;
        }
        if (auto id = cookie_value(req.get_header_value("Cookie"), session_cookie_name())) sessions->remove(*id);
        res.set_header("Set-Cookie", cookie(session_cookie_name(), "", "Strict", "/", 0));
        res.set_header("Cache-Control", "no-store");
        res.status = 204;
    }

    void handle_session(const httplib::Request& req, httplib::Response& res) {
        auto s = session_of(req);
        if (!s) {
            send_error(res, 401, no_session_error());
            return;
        }
        send_json(res, 200, {{"user", s->user}});
    }

    // GET /connect/{provider}: RFC 6749 §4.1.1 with a one-time state bound to this browser (§10.12) and PKCE
    // (RFC 7636) where the provider has it.
    void handle_connect(const httplib::Request& req, httplib::Response& res) {
        const ProviderConfig* p = provider_or_404(req.matches[1], req, res, true);
        if (p == nullptr) return;
        auto id = cookie_value(req.get_header_value("Cookie"), session_cookie_name());
        auto s = id ? sessions->find(*id, unix_now()) : std::nullopt;
        if (!s) {
            send_error_for(req, res, 401, no_session_error());
            return;
        }
        if (p->mode != Mode::oauth) {
            send_error_for(req, res, 409,
                           make_error("connection.static", p->name + " uses a static credential (" +
                                                               mode_name(p->mode) + "); there is nothing to connect.",
                                      "It is connected already. To use OAuth instead, remove " + p->env_prefix +
                                          "_API_KEY / _API_TOKEN / _PAT from the relay's environment."));
            return;
        }
        if (!p->oauth_configured()) {
            send_error_for(req, res, 409,
                           make_error("oauth.not_configured", p->name + " has no OAuth client configured.",
                                      "Register an app at the provider with the redirect URI " + redirect_uri(*p) +
                                          ", then set " + p->env_prefix + "_CLIENT_ID and " + p->env_prefix +
                                          "_CLIENT_SECRET in the relay's environment and restart it."));
            return;
        }
        int64_t now = unix_now();
        std::string state = random_token(32);
        std::string verifier = p->oauth.pkce ? random_token(48) : std::string();   // RFC 7636 §4.1: 43..128 chars
        states.put(state, PendingAuthorization{p->name, verifier, sha256_hex(*id), now + 600}, now);
        oauth2::Client client{p->client_id, p->client_secret, redirect_uri(*p)};
        std::string url = oauth2::build_authorize_url(p->oauth, client, state, verifier);
        res.set_header("Set-Cookie", cookie("keyrelay_oauth_" + p->name, state, "Lax", "/callback/" + p->name, 600));
        res.set_header("Cache-Control", "no-store");
        res.set_redirect(url, 302);
    }

    // GET /callback/{provider}: RFC 6749 §4.1.2 / §4.1.3.
    void handle_callback(const httplib::Request& req, httplib::Response& res) {
        const ProviderConfig* p = provider_or_404(req.matches[1], req, res, true);
        if (p == nullptr) return;
        const std::string state_cookie_name = "keyrelay_oauth_" + p->name;
        // Whatever happens next, the state cookie has done its job.
        res.set_header("Set-Cookie", cookie(state_cookie_name, "", "Lax", "/callback/" + p->name, 0));
        const std::string cookies = req.get_header_value("Cookie");
        auto browser_state = cookie_value(cookies, state_cookie_name);

        auto cb = oauth2::parse_callback(req.target);
        if (!cb) {
            // A denial also consumes the pending authorization, when it is this browser's.
            auto st = query_param(req.target, "state");
            if (st && browser_state && secure_equals(*st, *browser_state)) states.take(*st, unix_now());
            int status = 400;
            log_line(LogLevel::info, "authorization not completed",
                     {{"request_id", t_ctx.id}, {"provider", p->name}, {"error", cb.error().code}});
            send_page(res, status, cb.error());
            return;
        }
        auto session_id = cookie_value(cookies, session_cookie_name());
        auto session = session_id ? sessions->find(*session_id, unix_now()) : std::nullopt;
        if (!session) {
            send_page(res, 401, make_error("auth.no_session", "You are not logged in to the relay.",
                                           "Log in on the relay's page, then press Connect again."));
            return;
        }
        if (!browser_state || !secure_equals(*browser_state, cb->state)) {
            log_line(LogLevel::warn, "callback refused: state does not match this browser",
                     {{"request_id", t_ctx.id}, {"provider", p->name}, {"state_cookie", browser_state.has_value()}});
            send_page(res, 400,
                      make_error("oauth.state_mismatch",
                                 "This authorization was not started by this browser (the state does not match).",
                                 "The link may have been sent by someone else, or the connection was started in "
                                 "another tab or browser. Go back to the relay's page and press Connect again."));
            return;
        }
        auto pending = states.take(cb->state, unix_now());
        if (!pending || pending->provider != p->name || pending->session_hash != sha256_hex(*session_id)) {
            log_line(LogLevel::warn, "callback refused: unknown, used or expired state",
                     {{"request_id", t_ctx.id}, {"provider", p->name}});
            send_page(res, 400,
                      make_error("oauth.state_unknown",
                                 "This authorization was already completed, has expired, or was started by another "
                                 "session.",
                                 "Each authorization can be completed once, within 10 minutes. Go back to the "
                                 "relay's page and press Connect again."));
            return;
        }

        oauth2::Client client{p->client_id, p->client_secret, redirect_uri(*p)};
        HttpRequest exchange = oauth2::build_code_exchange(p->oauth, client, cb->code, pending->pkce_verifier);
        auto answer = send_upstream(p->name, exchange);
        if (!answer) {
            log_line(LogLevel::warn, "code exchange failed: provider unreachable",
                     {{"request_id", t_ctx.id}, {"provider", p->name}, {"error", answer.error().code}});
            send_page(res, 502, answer.error());
            return;
        }
        int64_t now = unix_now();
        auto tokens = oauth2::parse_token_response(*answer, now, nullptr, p->oauth.account_from_scope);
        if (!tokens) {
            Error e = tokens.error();
            log_line(LogLevel::warn, "code exchange refused",
                     {{"request_id", t_ctx.id}, {"provider", p->name}, {"error", e.code}});
            if (e.code == "oauth.invalid_grant") {
                e.hint = "The code was already used or has expired (codes are single-use and short-lived). Go back "
                         "to the relay's page and press Connect again. " + e.hint;
            }
            send_page(res, e.code == "oauth.invalid_grant" ? 400 : 502, e);
            return;
        }
        Connection c;
        c.provider = p->name;
        c.tokens = *tokens;
        c.account = tokens->account;
        if (c.account.empty() && p->oauth.account_from_scope) c.account = oauth2::account_from_scope(cb->scope);
        c.connected_at = now;
        c.refresh_token_issued_at = now;
        for (const auto& step : p->post_connect) {
            if (step == "jira_accessible_resources") {
                auto ok = jira_accessible_resources(*p, c);
                if (!ok) {
                    log_line(LogLevel::warn, "post-connect step failed",
                             {{"request_id", t_ctx.id}, {"provider", p->name}, {"step", step},
                              {"error", ok.error().code}});
                    send_page(res, 502, ok.error());
                    return;
                }
            }
        }
        auto saved = tokens_mgr().save(c);
        if (!saved) {
            log_line(LogLevel::error, "could not store the new connection",
                     {{"request_id", t_ctx.id}, {"provider", p->name}, {"error", saved.error().code},
                      {"detail", saved.error().message}});
            send_page(res, 500, saved.error());
            return;
        }
        log_line(LogLevel::info, "connected",
                 {{"request_id", t_ctx.id}, {"provider", p->name}, {"account", saved->account},
                  {"expires_at", saved->tokens.expires_at}});
        // The only place a callback redirects to: the relay's own page (no caller-supplied target, RFC 9700 §4.11).
        res.set_header("Cache-Control", "no-store");
        res.set_redirect("/?connected=" + p->name, 302);
    }

    // Atlassian 3LO: the token is for api.atlassian.com; the site's cloud id comes from accessible-resources.
    Result<Unit> jira_accessible_resources(const ProviderConfig& p, Connection& c) {
        if (p.accessible_resources_url.empty()) {
            return make_error("config.bad_value", "The provider " + p.name + " has no accessible_resources_url.",
                              "Set providers." + p.name + ".accessible_resources_url in the config.");
        }
        HttpRequest request = jira::accessible_resources(p.accessible_resources_url, c.tokens.access_token);
        auto answer = send_upstream(p.name, request);
        if (!answer) return answer.error();
        auto resources = jira::parse_accessible_resources(*answer);
        if (!resources) return resources.error();
        if (resources->empty()) {
            return make_error("jira.no_site", "The authorization gives access to no Jira site.",
                              "On the consent page, pick the Jira site to use (the app must be installed on it), "
                              "then connect again.");
        }
        const jira::Resource* chosen = &resources->front();
        if (auto site = process_env()("JIRA_SITE"); site && !site->empty()) {
            for (const auto& r : *resources) {
                if (r.url == *site || r.name == *site) chosen = &r;
            }
        }
        c.cloud_id = chosen->id;
        c.account = chosen->url.empty() ? chosen->name : chosen->url;
        return Unit{};
    }

    TokenManager& tokens_mgr() { return *tokens; }

    json connection_json(const ProviderConfig& p) {
        json out = {{"provider", p.name}, {"mode", mode_name(p.mode)}};
        if (p.mode != Mode::oauth) {
            out["connected"] = true;
            out["configured"] = true;
            out["account"] = p.static_account.empty() ? json(nullptr) : json(p.static_account);
            out["expires_at"] = nullptr;
            out["last_refresh_at"] = nullptr;
            out["last_refresh_result"] = nullptr;
            out["needs_reauth"] = false;
            return out;
        }
        out["configured"] = p.oauth_configured();
        auto c = tokens->get(p.name);
        if (!c || !c->has_value()) {
            out["connected"] = false;
            out["account"] = nullptr;
            out["expires_at"] = nullptr;
            out["last_refresh_at"] = nullptr;
            out["last_refresh_result"] = nullptr;
            out["needs_reauth"] = false;
            if (!c) out["store_error"] = c.error().code;
            return out;
        }
        const Connection& k = **c;
        out["connected"] = true;
        out["account"] = k.account.empty() ? json(nullptr) : json(k.account);
        out["expires_at"] = k.tokens.expires_at > 0 ? json(k.tokens.expires_at) : json(nullptr);
        out["last_refresh_at"] = k.last_refresh_at > 0 ? json(k.last_refresh_at) : json(nullptr);
        out["last_refresh_result"] = k.last_refresh_result.empty() ? json(nullptr) : json(k.last_refresh_result);
        out["needs_reauth"] = k.needs_reauth;
        out["connected_at"] = k.connected_at;
        return out;
    }

    enum class Caller { none, page, api_key };

    // Page: session cookie + X-Requested-With. Server-to-server: Authorization: Bearer <KEYRELAY_API_KEY>.
    template <class Req>
    Caller authenticate(const Req& req, httplib::Response& res, bool need_csrf_for_page) {
        if (req.has_header("Authorization")) {
            const std::string& auth_value = req.get_header_value("Authorization");
            const std::string_view auth(auth_value);
            constexpr std::string_view prefix = "Bearer ";
            if (config.api_key.empty()) {
                send_error(res, 401, "auth.bad_api_key", "This relay accepts no API key.",
                           "Set KEYRELAY_API_KEY in the relay's environment (a long random value, e.g. `openssl "
                           "rand -hex 32`) and send it as Authorization: Bearer <key>.");
                return Caller::none;
            }
            if (auth.size() <= prefix.size() || !iequals(auth.substr(0, prefix.size()), prefix) ||
                !secure_equals(auth.substr(prefix.size()), config.api_key)) {
                send_error(res, 401, "auth.bad_api_key", "The relay API key is wrong.",
                           "Send Authorization: Bearer <the value of KEYRELAY_API_KEY in the relay's environment>.");
                return Caller::none;
            }
            return Caller::api_key;
        }
        if (need_csrf_for_page && !has_csrf_header(req)) {
            send_error(res, 403, csrf_error());
            return Caller::none;
        }
        if (!session_of(req)) {
            send_error(res, 401, no_session_error());
            return Caller::none;
        }
        return Caller::page;
    }

    void handle_connections(const httplib::Request& req, httplib::Response& res) {
        if (authenticate(req, res, false) == Caller::none) return;
        json list = json::array();
        for (const auto& p : config.providers) list.push_back(connection_json(p));
        send_json(res, 200, {{"connections", list}});
    }

    void handle_disconnect(const httplib::Request& req, httplib::Response& res) {
        const ProviderConfig* p = provider_or_404(req.matches[1], req, res, false);
        if (p == nullptr) return;
        if (authenticate(req, res, true) == Caller::none) return;
        if (p->mode != Mode::oauth) {
            send_error(res, 409, "connection.static",
                       p->name + " uses a static credential from the relay's environment.",
                       "Remove " + p->env_prefix + "_API_KEY / _API_TOKEN / _PAT from the relay's environment and "
                       "restart it to disconnect.");
            return;
        }
        auto removed = tokens->remove(p->name);
        if (!removed) {
            send_error(res, 500, removed.error());
            return;
        }
        log_line(LogLevel::info, "disconnected", {{"request_id", t_ctx.id}, {"provider", p->name}});
        res.set_header("Cache-Control", "no-store");
        res.status = 204;
    }

    // Headers a caller may pass to the provider. Everything else is dropped: the browser's Cookie, Authorization,
    // Origin, Referer, User-Agent, X-Requested-With, hop-by-hop headers (RFC 9110 §7.6.1), host overrides.
    static bool forwardable(const std::string& name, const std::string& connection_tokens) {
        auto starts = [&name](std::string_view prefix) {
            return name.size() >= prefix.size() && iequals(std::string_view(name).substr(0, prefix.size()), prefix);
        };
        static constexpr std::string_view kAllowed[] = {"accept", "accept-language", "content-type", "if-match",
                                                         "if-none-match", "if-modified-since", "if-unmodified-since"};
        bool ok = false;
        for (std::string_view a : kAllowed) ok = ok || iequals(name, a);
        if (!ok && starts("x-")) {
            static constexpr std::string_view kDenied[] = {
                "x-requested-with", "x-forwarded-", "x-real-ip", "x-keap-api-key", "x-original-url", "x-rewrite-url",
                "x-http-method", "x-method-override", "x-host", "x-request-id", "x-csrf", "x-xsrf", "x-api-key",
                "x-auth", "x-amz-", "x-client-ip", "x-cluster-client-ip", "x-proxy", "x-access-token", "x-original-",
                "x-override"};
            ok = true;
            for (std::string_view d : kDenied) {
                if (starts(d)) ok = false;
            }
        }
        // Connection may name more hop-by-hop headers (RFC 9110 §7.6.1).
        if (ok && !connection_tokens.empty()) {
            std::stringstream ss(connection_tokens);
            std::string token;
            while (std::getline(ss, token, ',')) {
                if (iequals(trim_ascii(token), name)) ok = false;
            }
        }
        return ok;
    }

    void attach_credentials(const ProviderConfig& p, HttpRequest& up, const Connection* c) {
        Attach how = p.attach;
        const std::string& secret = p.mode == Mode::oauth ? c->tokens.access_token : p.static_secret;
        if (p.mode != Mode::oauth) {
            how = p.mode == Mode::api_key     ? p.static_attach
                  : p.mode == Mode::api_token ? Attach::basic
                                              : Attach::bearer;
        }
        switch (how) {
            case Attach::bearer: jira::attach_bearer(up, secret); break;
            case Attach::keap_api_key: keap::attach_api_key(up, secret); break;
            case Attach::basic: jira::attach_basic(up, p.static_email, secret); break;
        }
    }

    void handle_proxy(const httplib::Request& req, httplib::Response& res) {
        auto call = prepare_proxy(req, res, req.matches[1], true);
        if (!call) return;
        const ProviderConfig* p = call->p;
        std::optional<Connection>& conn = call->conn;
        HttpRequest& up = call->up;

        auto answer = forward(*p, up);
        // RFC 6750 §3.1: a 401 means the access token was refused: refresh once (single flight), then retry once.
        if (answer && answer->status == 401 && p->mode == Mode::oauth) {
            auto c = tokens->fresh(*p, RefreshReason::reactive, conn->version);
            if (!c) {
                send_connection_error(res, c.error());
                return;
            }
            conn = *c;
            up.headers.remove("Authorization");
            attach_credentials(*p, up, &*conn);
            answer = forward(*p, up);
        }
        if (!answer) {
            const Error& e = answer.error();
            send_error(res, e.code == "upstream.timeout" ? 504 : 502, e);
            return;
        }
        scrub_credentials(up, *answer);
        relay_answer(*p, req.method, call->bare, *answer, res);
    }

    // The XML-RPC bridge's REST calls (bridge.cpp): through the Keap connection, as a /proxy call is, but without the
    // proxy allowlist: the bridge makes only the calls of its method table (docs/xmlrpc-bridge.md).
    BridgeContext bridge_context() {
        BridgeContext b;
        b.api_key = config.api_key;
        b.send_keap = [this](HttpRequest up) -> Result<HttpResponse> {
            const ProviderConfig* p = config.provider("keap");
            if (p == nullptr) {
                return make_error("provider.unknown", "This relay has no provider named \"keap\".",
                                  "Add Keap to the relay's config (providers) to use the XML-RPC bridge.");
            }
            std::optional<Connection> conn;
            if (p->mode == Mode::oauth) {
                auto c = tokens->fresh(*p);
                if (!c) return c.error();
                conn = *c;
            }
            up.url = join_url(resolve_api_base(*p, std::string()), up.url);
            up.headers.set("User-Agent", std::string("keyrelay/") + KEYRELAY_VERSION);
            attach_credentials(*p, up, conn ? &*conn : nullptr);
            auto answer = forward(*p, up);
            if (answer && answer->status == 401 && p->mode == Mode::oauth) {   // as handle_proxy: refresh, retry once
                auto c = tokens->fresh(*p, RefreshReason::reactive, conn->version);
                if (!c) return c.error();
                up.headers.remove("Authorization");
                attach_credentials(*p, up, &*c);
                answer = forward(*p, up);
            }
            if (answer) scrub_credentials(up, *answer);
            return answer;
        };
        b.pass_rate_limit_headers = [this](const HttpResponse& answer, httplib::Response& res) {
            const ProviderConfig* p = config.provider("keap");
            for (const auto& [name, value] : answer.headers.items()) {
                if (p != nullptr && is_rate_limit_header(*p, name)) res.set_header(name, value);
            }
        };
        return b;
    }

    // Checks a /proxy call (caller, path, allowlist, connection) and builds the provider request. On a refusal the
    // error answer is in res and the result is empty. may_wait = false (the event loop): an OAuth token that is not
    // usable right now gives an empty result with res untouched, and the caller takes the waiting path instead.
    template <class Req>
    std::optional<ProxyCall> prepare_proxy(const Req& req, httplib::Response& res,
                                           const std::string& provider, bool may_wait) {
        const ProviderConfig* p = provider_or_404(provider, req, res, false);
        if (p == nullptr) return std::nullopt;
        if (authenticate(req, res, true) == Caller::none) return std::nullopt;

        // The raw target after /proxy/{provider}, still percent-encoded: the core checks it byte by byte.
        const size_t prefix = std::string_view("/proxy/").size() + p->name.size();
        std::string_view raw =
            req.target.size() > prefix ? std::string_view(req.target).substr(prefix) : std::string_view();
        auto path = raw.empty() || raw[0] != '/'
                        ? Result<std::string>(make_error("proxy.bad_path", "The proxied path is empty.",
                                                         "Call /proxy/" + p->name + "/<api path>."))
                        : proxy::validate_path(raw);
        if (path) {
            // "@host" as the first segment reads as userinfo@host to some URL parsers (RFC 3986 §3.2.1).
            std::string_view first = std::string_view(*path).substr(1, path->find_first_of("/?", 1) - 1);
            if (first.find('@') != std::string::npos) {
                path = make_error("proxy.bad_path", "The proxied path starts with a user@host authority.",
                                  "Pass only the provider's API path, e.g. crm/rest/v1/contacts; the host is fixed "
                                  "by the relay's config.");
            }
        }
        for (const auto& [name, value] : req.headers) {
            if (has_line_break(value)) {
                path = make_error("proxy.bad_path", "A request header contains CR or LF.",
                                  "Header values never contain line breaks; this looks like header injection.");
            }
        }
        if (!path) {
            send_error(res, 400, path.error());
            return std::nullopt;
        }
        std::string bare = path->substr(0, path->find('?'));
        if (!proxy::allowed(p->allow, req.method == "HEAD" ? "GET" : req.method, bare)) {
            send_error(res, 403, "proxy.path_not_allowed",
                       req.method + " " + bare + " is not on the relay's allowlist for " + p->name + ".",
                       "The relay forwards only the API calls its config allows (providers." + p->name +
                           ".allow). Add a rule such as \"" + req.method + " " + bare +
                           "\" there if this call is really needed.");
            return std::nullopt;
        }

        std::optional<Connection> conn;
        if (p->mode == Mode::oauth) {
            if (t_inject != nullptr && t_inject->conn) {
                conn = t_inject->conn;
            } else if (!may_wait) {
                conn = tokens->usable_now(*p);
                if (!conn) return std::nullopt;
            } else {
                auto c = tokens->fresh(*p);
                if (!c) {
                    send_connection_error(res, c.error());
                    return std::nullopt;
                }
                conn = *c;
            }
        }

        ProxyCall call;
        call.p = p;
        call.bare = std::move(bare);
        HttpRequest& up = call.up;
        up.method = req.method;
        up.url = join_url(resolve_api_base(*p, conn ? conn->cloud_id : std::string()), *path);
        const std::string& connection_tokens = req.get_header_value("Connection");
        for (const auto& [name, value] : req.headers) {
            if (forwardable(name, connection_tokens)) up.headers.add(name, value);
        }
        static const std::string kUserAgent = std::string("keyrelay/") + KEYRELAY_VERSION;
        up.headers.set("User-Agent", kUserAgent);
        // Jira Cloud's CDN refuses a GET with a body (jira.md).
        if (req.method != "GET" && req.method != "HEAD" && req.method != "DELETE") up.body = req.body;
        attach_credentials(*p, up, conn ? &*conn : nullptr);
        call.conn = std::move(conn);
        return call;
    }

    // A gateway or error page may echo the request back (its Authorization header in a title, a faultstring, a
    // plain-text dump): the credential the relay attached must never reach the caller, in a diagnosis or a body.
    static void scrub_credentials(const HttpRequest& up, HttpResponse& answer) {
        auto scrub = [&answer](std::string_view secret) {
            if (secret.size() < 8) return;
            for (size_t at = answer.body.find(secret); at != std::string::npos;
                 at = answer.body.find(secret, at + 10)) {
                answer.body.replace(at, secret.size(), "[redacted]");
            }
        };
        if (const std::string* auth = up.headers.find("Authorization")) {
            size_t space = auth->find(' ');
            scrub(space == std::string::npos ? std::string_view(*auth) : std::string_view(*auth).substr(space + 1));
        }
        if (const std::string* key = up.headers.find("X-Keap-API-Key")) scrub(*key);
    }

    Result<HttpResponse> forward(const ProviderConfig& p, const HttpRequest& up) {
        RetryPolicy policy;
        std::optional<std::pair<Result<HttpResponse>, double>> first;
        if (t_inject != nullptr && t_inject->first) {
            first = std::move(t_inject->first);   // attempt 0 was made by the event loop; only the first forward
            t_inject->first.reset();
        }
        return upstream->send_with_retries(up, policy, [&](const Upstream::Attempt& a) {
            metrics.observe_upstream_latency(p.name, a.seconds);
            if (a.retry_in_ms) {
                metrics.count_retry(p.name);
                log_line(LogLevel::info, "retrying upstream request",
                         {{"request_id", t_ctx.id}, {"provider", p.name}, {"attempt", a.attempt + 1},
                          {"outcome", a.outcome}, {"delay_ms", *a.retry_in_ms}});
            }
        }, first);
    }

    void send_connection_error(httplib::Response& res, const Error& e) {
        int status = 500;
        if (e.code == "connection.not_connected" || e.code == "connection.needs_reauth") status = 409;
        if (e.code == "connection.refresh_failed") status = 502;
        send_error(res, status, e);
    }

    // Passes the provider's answer through, or wraps an answer that is not the API's (an HTML page, a gateway
    // fault, XML-RPC that is not methodResponse) as 502 upstream.<diagnosis>.
    template <class Res>
    void relay_answer(const ProviderConfig& p, const std::string& method, const std::string& path,
                      HttpResponse& answer, Res& res) {
        bool xmlrpc = proxy::allowed(p.xmlrpc_paths, method, path);
        Diagnosis d;
        if (!xmlrpc && looks_like_api_json(answer)) {
            d.code = "ok";
        } else {
            d = diagnose(answer, xmlrpc ? Expect::xmlrpc : Expect::json);
        }
        for (const auto& [name, value] : answer.headers.items()) {
            if (is_rate_limit_header(p, name)) res.set_header(name, value);
        }
        if (wrap_diagnosis(d, answer, xmlrpc)) {
            log_line(LogLevel::warn, "upstream answer is not the API's",
                     {{"request_id", t_ctx.id}, {"provider", p.name}, {"status", answer.status},
                      {"diagnosis", d.code}});
            send_error(res, 502, make_error("upstream." + d.code, d.summary, d.hint));
            return;
        }
        t_ctx.passthrough = true;
        res.status = answer.status;
        // The provider's bytes are served from the relay's origin: whatever they are, they may not run script here.
        res.set_header("Content-Security-Policy", "default-src 'none'; sandbox");
        for (const char* h : {"ETag", "Last-Modified", "Cache-Control"}) {
            if (const std::string* v = answer.headers.find(h)) res.set_header(h, *v);
        }
        if (!res.has_header("Cache-Control")) res.set_header("Cache-Control", "no-store");
        if (answer.status == 204 || answer.status == 304 || method == "HEAD") return;
        static const std::string kOctets = "application/octet-stream";
        const std::string* type = answer.headers.find("Content-Type");
        move_content(res, std::move(answer.body), type != nullptr ? *type : kOctets);
    }

    // A 2xx with a JSON media type (RFC 8259 §11, or a +json suffix, RFC 6839 §3.1) and a body that is a
    // syntactically valid JSON object or array without a top-level "fault" member is what diagnose() would call "ok":
    // the common case is checked with a validating scan instead of building the whole document.
    static bool looks_like_api_json(const HttpResponse& answer) {
        if (answer.status < 200 || answer.status >= 300 || answer.status == 204) return false;
        const std::string* type = answer.headers.find("Content-Type");
        if (type == nullptr) return false;
        std::string_view media = std::string_view(*type).substr(0, type->find(';'));
        while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
        while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
        bool json_media = iequals(media, "application/json") ||
                          (media.size() > 5 && iequals(media.substr(media.size() - 5), "+json"));
        if (!json_media) return false;
        const std::string& body = answer.body;
        size_t first = body.find_first_not_of(" \t\r\n");
        if (first == std::string::npos || (body[first] != '{' && body[first] != '[')) return false;
        static constexpr std::string_view kFault = "\"fault\"";
        if (::memmem(body.data(), body.size(), kFault.data(), kFault.size()) != nullptr) return false;
        return is_json_text(body);
    }

    static bool wrap_diagnosis(const Diagnosis& d, const HttpResponse& answer, bool xmlrpc) {
        if (d.code == "ok") return false;
        static const char* const kAlways[] = {"html_page", "gateway_fault", "not_method_response", "truncated_xml",
                                              "malformed_xml", "doctype_refused", "http_596", "legacy_key_dead",
                                              "cors_origin_denied", "too_deep", "too_large", "invalid_xmlrpc"};
        for (const char* c : kAlways) {
            if (d.code == c) return true;
        }
        if (xmlrpc && (d.code == "empty_body" || d.code == "wrong_content_type" || d.code == "not_json")) return true;
        if (!xmlrpc && d.code == "not_json" && answer.status != 204 && !answer.body.empty()) return true;
        return false;
    }

    // ------------------------------------------------------------------------------------------------------------
    // The event front end (plain HTTP, event_server.h). The slow path feeds the request's bytes to cpp-httplib's own
    // processing (the routes above, the error handler, the logger) on a worker thread. The fast path sends a /proxy
    // call from the loop without blocking and writes the answer as that processing would (answer_fast).

    OutgoingResponse serve_bytes(const std::string& raw, const std::string& ip, int port, bool close) {
        MemoryStream stream(raw, ip, port);
        bool closed = false;
        bool ok = front->serve(stream, close, closed);
        OutgoingResponse out;
        out.bytes = stream.take();
        out.close = !ok || close || closed || says_close(out.bytes);
        return out;
    }

    OutgoingResponse serve_slow(const IncomingRequest& r) {
        OutgoingResponse out;
        const std::string* ae = r.header("Accept-Encoding");
        if (ae != nullptr && without_brotli(*ae) != *ae) {
            out = serve_bytes(with_accept_encoding(r.raw, r.body_offset), r.remote_ip, r.remote_port, r.close);
        } else {
            out = serve_bytes(r.raw, r.remote_ip, r.remote_port, r.close);
        }
        t_inject = nullptr;
        return out;
    }

    // cpp-httplib compresses with brotli whenever a client accepts it (browsers, node's fetch), at brotli's slowest
    // quality: about 1 ms of CPU for a 400-byte answer, 20 times gzip. The event front end takes "br" out of
    // Accept-Encoding (RFC 9110 §12.5.3: the server may pick any acceptable coding), so such clients get gzip.
    static std::string without_brotli(const std::string& accept_encoding) {
        std::string out;
        std::stringstream ss(accept_encoding);
        std::string item;
        while (std::getline(ss, item, ',')) {
            std::string coding = trim_ascii(item.substr(0, item.find(';')));
            if (iequals(coding, "br")) continue;
            if (!out.empty()) out += ", ";
            out += trim_ascii(item);
        }
        return out;
    }

    // The request's bytes with every Accept-Encoding field value passed through without_brotli.
    static std::string with_accept_encoding(const std::string& raw, size_t head_end) {
        std::string out;
        out.reserve(raw.size());
        size_t pos = 0;
        while (pos < head_end) {
            size_t eol = raw.find("\r\n", pos);
            if (eol == std::string::npos || eol >= head_end) break;
            std::string_view line(raw.data() + pos, eol - pos);
            size_t colon = line.find(':');
            if (pos != 0 && colon != std::string_view::npos && iequals(line.substr(0, colon), "Accept-Encoding")) {
                out.append(line.substr(0, colon + 1));
                out += ' ';
                out += without_brotli(trim_ascii(line.substr(colon + 1)));
            } else {
                out.append(line);
            }
            out += "\r\n";
            pos = eol + 2;
        }
        out.append(raw, pos, std::string::npos);
        return out;
    }

    struct FastCall {
        bool close = false;
        std::string method;
        std::string target;
        std::string remote;
        std::optional<std::string> accept_encoding;
        bool oauth = false;
        std::optional<Connection> conn;
        Respond respond;
        Clock::time_point started;
        std::string id;
        std::optional<ProxyCall> call;
    };

    // A FastCall is over 1 KiB, past malloc's per-thread cache: a fresh one per call cost more than all the call's
    // other allocations together. Each thread keeps a few for reuse; a returned one is reset to a fresh state first.
    static std::vector<std::unique_ptr<FastCall>>& spare_fast_calls() {
        thread_local std::vector<std::unique_ptr<FastCall>> spare;
        return spare;
    }
    static std::shared_ptr<FastCall> new_fast_call() {
        auto& spare = spare_fast_calls();
        std::unique_ptr<FastCall> f;
        if (!spare.empty()) {
            f = std::move(spare.back());
            spare.pop_back();
        } else {
            f = std::make_unique<FastCall>();
        }
        return std::shared_ptr<FastCall>(f.release(), [](FastCall* done) {
            std::unique_ptr<FastCall> owned(done);
            *owned = FastCall{};
            auto& keep = spare_fast_calls();
            if (keep.size() < 64) keep.push_back(std::move(owned));
        });
    }

    // Loop thread, must not block. Takes a /proxy call from a server-to-server caller (API key) whose credential is
    // ready; anything else (a browser's call, a refusal, a token to refresh) is left to the slow path.
    bool fast_proxy(const IncomingRequest& r, size_t loop_index, const Respond& respond) {
        if (loop_index >= async.size() || !async[loop_index] || config.api_key.empty()) return false;
        const std::string& m = r.method;
        if (m != "GET" && m != "POST" && m != "PUT" && m != "PATCH" && m != "DELETE" && m != "HEAD") return false;
        if (r.target.compare(0, 7, "/proxy/") != 0 || r.header("Authorization") == nullptr) return false;
        if (r.header("Origin") != nullptr || r.header("Range") != nullptr || r.header("Expect") != nullptr) {
            return false;
        }
        FastRequest req(r);
        size_t slash = req.path.find('/', 7);
        std::string provider = req.path.substr(7, slash == std::string::npos ? std::string::npos : slash - 7);
        if (provider.empty()) return false;

        // The same checks as the slow path (pre_route, then handle_proxy's), on the same bytes; a refusal is left to
        // the slow path, which answers it.
        httplib::Response refused;
        std::optional<ProxyCall> call;
        if (pre_route(req, refused) == httplib::Server::HandlerResponse::Unhandled) {
            call = prepare_proxy(req, refused, provider, false);
        }
        std::string id = std::move(t_ctx.id);
        const Clock::time_point started = t_ctx.started;   // pre_route's clock read: the request's start
        t_ctx = RequestContext{};
        if (!call) return false;

        std::shared_ptr<FastCall> f = new_fast_call();
        f->close = r.close;
        f->method = m;
        f->target = r.target;
        f->remote = r.remote_ip;
        if (const std::string* ae = r.header("Accept-Encoding")) f->accept_encoding = without_brotli(*ae);
        f->oauth = call->p->mode == Mode::oauth;
        f->conn = call->conn;
        f->respond = respond;
        f->started = started;
        f->id = std::move(id);
        f->call = std::move(*call);
        async[loop_index]->send(f->call->up, [this, f](Result<HttpResponse> outcome, double seconds) {
            finish_fast(*f, std::move(outcome), seconds);
        });
        return true;
    }

    void finish_fast(FastCall& f, Result<HttpResponse> outcome, double seconds) {
        // A retry (it waits) or a reactive refresh (it may wait): the slow path continues from this attempt.
        bool again = retry_delay_ms(f.method, 0, outcome, 0, RetryPolicy{}).has_value() ||
                     (f.oauth && outcome.ok() && outcome->status == 401);
        if (again) {
            auto inject = std::make_shared<InjectedAttempt>();
            inject->started = f.started;
            inject->id = f.id;
            // The connection whose token got this answer: a 401 is about that token's version. Were the worker to
            // look the connection up again, it could find one refreshed meanwhile by another call and refresh it
            // once more for a 401 it never got (a stampede of rotations).
            inject->conn = f.conn;
            inject->first.emplace(std::move(outcome), seconds);
            OutgoingResponse o;
            o.to_slow = true;
            o.slow_setup = [inject] { t_inject = inject.get(); };
            f.respond(std::move(o));
            return;
        }
        OutgoingResponse out;
        try {
            out = answer_fast(f, std::move(outcome), seconds);
        } catch (const std::exception& e) {
            log_line(LogLevel::error, "unhandled exception", {{"request_id", f.id}, {"what", e.what()}});
            FastResponse res;
            res.set_header("X-Request-Id", f.id);
            send_error(res, 500, "internal.error", "The relay hit an internal error.",
                       "This is a bug in keyrelay; the relay's log has the details for request " + f.id + ".");
            out = write_fast(f, res);
        }
        t_ctx = RequestContext{};
        f.respond(std::move(out));
    }

    // The answer to a fast-path call, as handle_proxy and cpp-httplib would write it (the same response headers, the
    // same passthrough or diagnosis, the same log line and metrics), without parsing the request a second time.
    OutgoingResponse answer_fast(FastCall& f, Result<HttpResponse> outcome, double seconds) {
        ProxyCall& call = *f.call;
        metrics.observe_upstream_latency(call.p->name, seconds);
        t_ctx = RequestContext{};
        t_ctx.id = f.id;
        t_ctx.started = f.started;
        t_ctx.provider = call.p->name;
        t_ctx.active = true;
        FastResponse res;
        res.set_header("X-Request-Id", f.id);
        if (!outcome) {
            const Error& e = outcome.error();
            send_error(res, e.code == "upstream.timeout" ? 504 : 502, e);
        } else {
            scrub_credentials(call.up, *outcome);
            relay_answer(*call.p, f.method, call.bare, *outcome, res);
        }
        return write_fast(f, res);
    }

    // cpp-httplib 0.11's Server::write_response_core and apply_ranges for a routed answer without ranges, in the
    // same order and bytes: default headers first, compression by Accept-Encoding, Content-Length, Connection /
    // Keep-Alive, headers sorted as its case-insensitive multimap keeps them, then the logger. Its error handler has
    // nothing to do here: every fast-path answer has a body or is the provider's own (passthrough).
    OutgoingResponse write_fast(const FastCall& f, FastResponse& res) {
        if (!res.body.empty()) {
            auto type = httplib::detail::EncodingType::None;
            if (f.accept_encoding) {
                // httplib's own decision, from the only two headers it reads.
                httplib::Request q;
                q.headers.emplace("Accept-Encoding", *f.accept_encoding);
                httplib::Response a;
                if (auto t = res.find("Content-Type")) a.headers.emplace("Content-Type", std::string(*t));
                type = httplib::detail::encoding_type(q, a);
            }
            std::unique_ptr<httplib::detail::compressor> compressor;
            std::string encoding;
            if (type == httplib::detail::EncodingType::Gzip) {
                compressor = std::make_unique<httplib::detail::gzip_compressor>();
                encoding = "gzip";
            } else if (type == httplib::detail::EncodingType::Brotli) {
                compressor = std::make_unique<httplib::detail::brotli_compressor>();
                encoding = "br";
            }
            if (compressor) {
                std::string compressed;
                if (compressor->compress(res.body.data(), res.body.size(), true, [&](const char* data, size_t n) {
                        compressed.append(data, n);
                        return true;
                    })) {
                    res.body.swap(compressed);
                    res.set_header("Content-Encoding", encoding);
                }
            }
            char length[24];
            auto [end, ec] = std::to_chars(length, length + sizeof length, res.body.size());
            res.set_header("Content-Length", std::string_view(length, static_cast<size_t>(end - length)));
        }
        if (f.close) {
            res.set_header("Connection", "close");
        } else {
            static const std::string kKeepAlive =
                "timeout=" + std::to_string(kKeepAliveSeconds) + ", max=" + std::to_string(kKeepAliveMax);
            res.set_header("Keep-Alive", kKeepAlive);
        }
        // The default headers come first (cpp-httplib copies them into every answer before the handler runs).
        auto has = [&](std::string_view name) {
            if (res.has_header(name)) return true;
            for (const auto& [n, v] : default_headers) {
                if (iequals(n, name)) return true;
            }
            return false;
        };
        if (!has("Content-Type") && !res.body.empty()) res.set_header("Content-Type", "text/plain");
        if (!has("Content-Length") && res.body.empty()) res.set_header("Content-Length", "0");
        if (!has("Accept-Ranges") && f.method == "HEAD") res.set_header("Accept-Ranges", "bytes");

        // httplib::Headers is a multimap ordered by httplib::detail::ci (ASCII case-insensitive), equal names in
        // insertion order: a stable sort by the same order writes them alike. An insertion sort of views: stable,
        // and a dozen headers need no temporary buffer.
        using View = std::pair<std::string_view, std::string_view>;
        View inline_views[48];
        std::vector<View> many;   // only for an answer with more headers than that
        View* sorted = inline_views;
        if (default_headers.size() + res.fields.size() > std::size(inline_views)) {
            many.resize(default_headers.size() + res.fields.size());
            sorted = many.data();
        }
        size_t count = 0;
        for (const auto& [n, v] : default_headers) sorted[count++] = View(n, v);
        for (const auto& field : res.fields) {
            if (!field.removed) sorted[count++] = View(res.name_of(field), res.value_of(field));
        }
        auto before = [](std::string_view a, std::string_view b) {
            return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                                [](char x, char y) { return lower_char(x) < lower_char(y); });
        };
        for (size_t i = 1; i < count; ++i) {
            for (size_t j = i; j > 0 && before(sorted[j].first, sorted[j - 1].first); --j) {
                std::swap(sorted[j], sorted[j - 1]);
            }
        }

        OutgoingResponse out;
        std::string& b = out.bytes;
        size_t head = 64;
        for (size_t i = 0; i < count; ++i) head += sorted[i].first.size() + sorted[i].second.size() + 4;
        b.reserve(head + res.body.size());
        b += "HTTP/1.1 ";
        b += std::to_string(res.status);
        b += ' ';
        b += httplib::detail::status_message(res.status);
        b += "\r\n";
        bool close = f.close;
        for (size_t i = 0; i < count; ++i) {
            const auto& [name, value] = sorted[i];
            b += name;
            b += ": ";
            b += value;
            b += "\r\n";
            if (name == "Connection" && value == "close") close = true;
        }
        b += "\r\n";
        if (f.method != "HEAD") b += res.body;
        out.close = close;
        log_done(f.method, f.target, f.remote, res.status);
        return out;
    }

    // ------------------------------------------------------------------------------------------------------------
    // Static files of web/

    void handle_static(const httplib::Request& req, httplib::Response& res) {
        Error not_found = make_error("http.not_found", "Nothing is served at " + redact_target(req.path) + ".",
                                     "The API is under /api/, /proxy/{provider}/, /connect/, /callback/, /login, "
                                     "/logout, /healthz and /metrics; the page is at /.");
        if (web_root.empty()) {
            send_error(res, 404, not_found);
            return;
        }
        std::string rel = req.path;   // percent-decoded by cpp-httplib
        if (rel.empty() || rel[0] != '/' || rel.find('\0') != std::string::npos ||
            rel.find('\\') != std::string::npos) {
            send_error(res, 400, "http.bad_path", "The file path is not valid.", "Use a plain path such as /app.js.");
            return;
        }
        // Refuse dot-segments and hidden files outright instead of normalizing them (path traversal).
        std::stringstream ss(rel.substr(1));
        std::string segment;
        while (std::getline(ss, segment, '/')) {
            if (!segment.empty() && segment[0] == '.') {
                send_error(res, segment == ".." || segment == "." ? 400 : 404,
                           segment == ".." || segment == "." ? "http.bad_path" : "http.not_found",
                           segment == ".." || segment == "." ? "The file path contains a dot-segment."
                                                             : "Nothing is served at this path.",
                           "Use a plain path such as /app.js.");
                return;
            }
        }
        if (rel.back() == '/') rel += "index.html";
        std::string root = web_root;
        // The page imports wasm/keyrelay.mjs: from the Wasm build dir unless the web dir has its own copy.
        // Only the module's own files: a build dir also holds CMakeCache.txt and the like.
        auto module_file = [](const std::string& name) {
            auto ends = [&](const char* ext) {
                std::string e(ext);
                return name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
            };
            return name.rfind("keyrelay", 0) == 0 && (ends(".mjs") || ends(".wasm") || ends(".js") || ends(".cjs"));
        };
        if (rel.rfind("/wasm/", 0) == 0 && !wasm_root.empty() && rel.find('/', 6) == std::string::npos &&
            module_file(rel.substr(6))) {
            struct stat own {};
            if (::stat((web_root + rel).c_str(), &own) != 0) {
                root = wasm_root;
                rel = rel.substr(5);
            }
        }
        std::string full = root + rel;
        char resolved[PATH_MAX];
        if (::realpath(full.c_str(), resolved) == nullptr) {
            send_error(res, 404, not_found);
            return;
        }
        std::string real = resolved;
        struct stat st {};
        if (::stat(real.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
            real += "/index.html";
            if (::stat(real.c_str(), &st) != 0) {
                send_error(res, 404, not_found);
                return;
            }
        }
        // Symlinks may not lead out of the served dir.
        if (real.rfind(root + "/", 0) != 0 || !S_ISREG(st.st_mode)) {
            send_error(res, 404, not_found);
            return;
        }
        std::ifstream in(real, std::ios::binary);
        if (!in) {
            send_error(res, 404, not_found);
            return;
        }
        std::stringstream body;
        body << in.rdbuf();
        res.set_header("Cache-Control", "no-cache");
        res.set_content(body.str(), content_type_for(real));
    }

    // ------------------------------------------------------------------------------------------------------------
    // Error handler, logger

    httplib::Server::HandlerResponse on_error(const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty() || t_ctx.passthrough || res.status == 204) {
            return httplib::Server::HandlerResponse::Unhandled;
        }
        int status = res.status;
        if (status == 404) {
            if (auto allowed = allowed_methods(req.path); !allowed.empty()) {
                res.set_header("Allow", allowed);
                send_error(res, 405, "http.method_not_allowed", req.method + " is not allowed on " + req.path + ".",
                           "Allowed: " + allowed + ". See docs/api.md.");
                return httplib::Server::HandlerResponse::Handled;
            }
            send_error(res, 404, "http.not_found", "Nothing is served at " + req.path + ".",
                       "The API is under /api/, /proxy/{provider}/, /connect/, /callback/, /login, /logout, "
                       "/healthz and /metrics (docs/api.md); the page is at /.");
        } else if (status == 413) {
            send_error(res, 413, "http.payload_too_large", "The request body is too large.",
                       "The relay accepts request bodies up to " + std::to_string(config.max_request_body) +
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

    static std::string allowed_methods(const std::string& path) {
        static const std::vector<std::pair<std::regex, std::string>> kRoutes = {
            {std::regex("/healthz"), "GET, HEAD"},
            {std::regex("/metrics"), "GET, HEAD"},
            {std::regex("/login"), "POST"},
            {std::regex("/logout"), "POST"},
            {std::regex("/api/session"), "GET, HEAD"},
            {std::regex("/api/connections"), "GET, HEAD"},
            {std::regex("/api/connections/[^/]+/disconnect"), "POST"},
            {std::regex("/connect/[^/]+"), "GET, HEAD"},
            {std::regex("/callback/[^/]+"), "GET, HEAD"},
        };
        for (const auto& [re, methods] : kRoutes) {
            if (std::regex_match(path, re)) return methods;
        }
        return {};
    }

    void on_log(const httplib::Request& req, const httplib::Response& res) {
        log_done(req.method, req.target, req.remote_addr, res.status);
    }

    // The request's log line and its count in the metrics, for cpp-httplib's logger and the fast path.
    void log_done(const std::string& method, const std::string& target, const std::string& remote, int status) {
        double ms = t_ctx.active
                        ? std::chrono::duration<double, std::milli>(Clock::now() - t_ctx.started).count()
                        : 0.0;
        const std::string& provider = t_ctx.active ? t_ctx.provider : kRelayProvider;
        std::string fresh_id;
        if (!t_ctx.active) fresh_id = new_request_id();
        std::string_view id = t_ctx.active ? std::string_view(t_ctx.id) : std::string_view(fresh_id);
        metrics.count_request(provider, status);
        RequestLogLine line;
        line.request_id = id;
        line.method = method;
        std::string path = redact_target(target);
        line.path = path;
        line.status = status;
        line.duration_ms = ms;
        line.remote = remote;
        if (provider != kRelayProvider) line.provider = provider;
        log_request(line);
        t_ctx = RequestContext{};
    }
};

// -----------------------------------------------------------------------------------------------------------------

Relay::Relay(Config config) : config_(std::move(config)), impl_(std::make_unique<Impl>(config_, port_)) {}

Relay::~Relay() {
    stop();
    if (impl_->keepalive.joinable()) impl_->keepalive.join();
}

std::string Relay::url() const { return config_.base_url(port_); }

Result<Unit> Relay::init() {
    Impl& m = *impl_;
    if (config_.data_dir.empty()) {
        return make_error("config.bad_value", "No data directory.", "Pass --data-dir or set data_dir in the config.");
    }
    auto keys = load_store_keys(config_.data_dir, config_.store_key, config_.store_key_previous);
    if (!keys) return keys.error();
    if (keys->generated) {
        log_line(LogLevel::warn,
                 "NO KEYRELAY_STORE_KEY: generated a new store key file; back it up, or tokens are lost with it",
                 {{"key_file", keys->key_file}});
    }
    m.store = std::make_unique<TokenStore>(config_.data_dir, keys->keys, keys->current_key_id);
    // Fail at start, not at the first request, when the store cannot be read with this key.
    if (auto all = m.store->load_all(); !all) return all.error();
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
    Impl* self_ = impl_.get();
    m.tokens = std::make_unique<TokenManager>(
        config_, *m.store,
        [self_](const std::string& provider, const HttpRequest& r) { return self_->send_upstream(provider, r); },
        m.metrics, [] { return unix_now(); });
    TokenManager* tm = m.tokens.get();
    m.metrics.set_reauth_gauge([tm] { return tm->needing_reauth(); });
    for (const auto& p : config_.providers) m.metrics.add_provider(p.name);

    m.sessions = std::make_unique<SessionStore>(config_.session_hours * 3600, config_.data_dir);

    // Page users. Sandbox mode: demo / demo (a cheap hash: it protects nothing secret).
    int iterations = config_.sandbox ? 10000 : 210000;
    for (const auto& u : config_.users) {
        m.password_hashes[u.username] =
            u.password_hash.empty() && config_.sandbox && u.username == "demo" ? hash_password("demo", iterations)
                                                                                : u.password_hash;
    }
    m.dummy_hash = hash_password(random_token(16), iterations);

    std::string web = config_.web_dir.empty() ? std::string(KEYRELAY_SOURCE_DIR) + "/web" : config_.web_dir;
    char resolved[PATH_MAX];
    if (::realpath(web.c_str(), resolved) != nullptr) {
        m.web_root = resolved;
    } else {
        log_line(LogLevel::warn, "web dir not found; the page is not served", {{"web_dir", web}});
    }
    std::string wasm = config_.wasm_dir.empty() ? std::string(KEYRELAY_SOURCE_DIR) + "/build/wasm" : config_.wasm_dir;
    if (::realpath(wasm.c_str(), resolved) != nullptr) m.wasm_root = resolved;

    if (config_.tls()) {
        if (config_.tls_cert.empty() || config_.tls_key.empty()) {
            return make_error("tls.bad_files", "TLS needs both a certificate and a key.",
                              "Pass --tls-cert and --tls-key (or tls_cert and tls_key in the config).");
        }
        auto server = std::make_unique<TlsServer>(config_.tls_cert.c_str(), config_.tls_key.c_str());
        if (!server->is_valid()) {
            return make_error("tls.bad_files",
                              "The TLS certificate " + config_.tls_cert + " or key " + config_.tls_key +
                                  " cannot be loaded (missing, unreadable, or they do not match).",
                              "Check both paths and that the key belongs to the certificate (`keyrelay doctor` "
                              "checks this); for local HTTPS make them with scripts/dev-cert.");
        }
        TlsServer* raw = server.get();
        m.widen = [raw](int n) { raw->widen_backlog(n); };
        m.server = std::move(server);
    } else {
        // Plain HTTP: the event front end owns the connections (event_server.h) and hands requests to this
        // cpp-httplib server's processing, which never listens itself.
        auto server = std::make_unique<FrontServer>();
        m.front = server.get();
        m.widen = [](int) {};
        m.server = std::move(server);
        EventServerOptions eo;
        eo.threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
        if (auto n = process_env()("KEYRELAY_EVENT_THREADS")) eo.threads = std::clamp(std::atoi(n->c_str()), 1, 64);
        eo.max_body = config_.max_request_body;
        eo.keep_alive_timeout = std::chrono::seconds(kKeepAliveSeconds);
        eo.keep_alive_max_count = kKeepAliveMax;
        eo.slow_workers = static_cast<size_t>(std::max(1, config_.server_threads));
        EventServer::Hooks hooks;
        // KEYRELAY_FAST_PATH=off: every request goes to a worker (to rule the fast path out when chasing a problem).
        auto fast = process_env()("KEYRELAY_FAST_PATH");
        if (!fast || (*fast != "off" && *fast != "0")) {
            hooks.fast = [self_](const IncomingRequest& r, size_t loop_index, EventLoop&, const Respond& respond) {
                return self_->fast_proxy(r, loop_index, respond);
            };
        }
        hooks.slow = [self_](const IncomingRequest& r) { return self_->serve_slow(r); };
        // Each loop opens at most 64 connections to one provider at once; a burst beyond that waits for one of them.
        UpstreamOptions ao = uo;
        ao.max_conns_per_origin = 64;
        hooks.loop_started = [self_, ao](size_t i, EventLoop& loop) {
            self_->async[i] = std::make_unique<AsyncUpstream>(loop, ao);
            // The loop's log lines go out once 16 KiB have gathered, or 2 ms after the first of them (log.h).
            log_batch_begin();
            auto armed = std::make_shared<bool>(false);
            EventLoop* on = &loop;
            loop.set_before_wait([on, armed] {
                if (log_batch_bytes() >= 16 * 1024 || on->stopping()) {
                    log_batch_flush();
                    return;
                }
                if (*armed || log_batch_bytes() == 0) return;
                *armed = true;
                on->add_timer(std::chrono::milliseconds(2), [armed] {
                    *armed = false;
                    log_batch_flush();
                });
            });
        };
        hooks.loop_stopped = [self_](size_t i) {
            self_->async[i].reset();
            log_batch_end();
        };
        m.async.resize(static_cast<size_t>(eo.threads));
        m.events = std::make_unique<EventServer>(eo, std::move(hooks));
        EventServer* events = m.events.get();
        m.metrics.set_front_counters([events] {
            auto s = events->stats();
            return std::make_pair(static_cast<uint64_t>(s.fast), static_cast<uint64_t>(s.slow));
        });
    }
    httplib::Server& svr = *m.server;
    // cpp-httplib 0.11 holds one worker per connection for its whole keep-alive life: the pool grows on demand up to
    // server_threads (connections served at once), so slow or idle clients cannot starve the others until that many
    // are open; extra workers exit after 10 s idle, and the core ones keep the idle footprint small.
    ElasticQueueOptions queue;
    queue.max = static_cast<size_t>(std::max(1, config_.server_threads));
    queue.core = std::min<size_t>(32, queue.max);
    queue.max_queued = queue.max;
    svr.new_task_queue = [queue] { return new ElasticQueue(queue); };
    svr.set_payload_max_length(config_.max_request_body);
    // cpp-httplib writes headers and body separately: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms.
    svr.set_tcp_nodelay(true);
    // An idle keep-alive connection (or one that never sends a byte) is closed after 2 s: it holds a worker while it
    // waits. That short wait also lets SIGTERM stop the relay within ~2 s.
    svr.set_keep_alive_timeout(kKeepAliveSeconds);
    svr.set_keep_alive_max_count(kKeepAliveMax);
    // cpp-httplib's read timeout applies to each read, not to the whole request: a client silent for 10 s in the
    // middle of a request is dropped. A client that trickles its head gets at most its own worker (see above).
    svr.set_read_timeout(10, 0);
    svr.set_write_timeout(10, 0);
    m.default_headers = {{"X-Content-Type-Options", "nosniff"},
                         {"X-Frame-Options", "DENY"},
                         {"Referrer-Policy", "no-referrer"},
                         {"Content-Security-Policy", "frame-ancestors 'none'"}};
    svr.set_default_headers(m.default_headers);

    Impl* self = impl_.get();
    svr.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
        return self->pre_route(req, res);
    });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [self](const httplib::Request& req, httplib::Response& res) { return self->on_error(req, res); }));
    svr.set_exception_handler([self](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        log_line(LogLevel::error, "unhandled exception",
                 {{"request_id", t_ctx.id}, {"path", redact_target(req.path)}, {"what", what}});
        self->send_error(res, 500, "internal.error", "The relay hit an internal error.",
                         "This is a bug in keyrelay; the relay's log has the details for request " + t_ctx.id + ".");
    });
    svr.set_logger([self](const httplib::Request& req, const httplib::Response& res) { self->on_log(req, res); });

    auto bindh = [self](void (Impl::*fn)(const httplib::Request&, httplib::Response&)) {
        return [self, fn](const httplib::Request& req, httplib::Response& res) { (self->*fn)(req, res); };
    };
    // Any segment: an unknown (or wrongly cased) provider gets 404 provider.unknown from the handler.
    const std::string name = "([^/]+)";
    // The proxy first: cpp-httplib tries the routes in order, and proxied calls are most of the traffic.
    // [\s\S]: cpp-httplib matches the DECODED path; a %0d%0a must still reach the handler (and be refused there).
    const std::string proxy = "/proxy/" + name + "(|/[\\s\\S]*)";
    svr.Get(proxy, bindh(&Impl::handle_proxy));
    svr.Post(proxy, bindh(&Impl::handle_proxy));
    svr.Put(proxy, bindh(&Impl::handle_proxy));
    svr.Patch(proxy, bindh(&Impl::handle_proxy));
    svr.Delete(proxy, bindh(&Impl::handle_proxy));
    svr.Post("/bridge/keap/xmlrpc", [bridge = self->bridge_context()](const httplib::Request& req,
                                                                           httplib::Response& res) {
        serve_keap_bridge(req, res, bridge);
    });
    svr.Get("/healthz", bindh(&Impl::handle_healthz));
    svr.Get("/metrics", bindh(&Impl::handle_metrics));
    svr.Post("/login", bindh(&Impl::handle_login));
    svr.Post("/logout", bindh(&Impl::handle_logout));
    svr.Get("/api/session", bindh(&Impl::handle_session));
    svr.Get("/api/connections", bindh(&Impl::handle_connections));
    svr.Post("/api/connections/" + name + "/disconnect", bindh(&Impl::handle_disconnect));
    svr.Get("/connect/" + name, bindh(&Impl::handle_connect));
    svr.Get("/callback/" + name, bindh(&Impl::handle_callback));
    svr.Get("/[\\s\\S]*", bindh(&Impl::handle_static));
    return Unit{};
}

Result<int> Relay::bind() {
    Impl& m = *impl_;
    if (m.events) {
        auto bound = m.events->bind(config_.bind, config_.port);
        if (!bound) return bound.error();
        port_ = *bound;
        m.set_own_hosts();
        return *bound;
    }
    int port = config_.port;
    if (port == 0) {
        port = m.server->bind_to_any_port(config_.bind);
        if (port < 0) port = 0;
    } else if (!m.server->bind_to_port(config_.bind, port)) {
        port = 0;
    }
    if (port <= 0) {
        return make_error("server.bind_failed",
                          "Could not listen on " + config_.bind + ":" + std::to_string(config_.port) + ".",
                          "Another program (or another keyrelay) probably uses that port: pick another with --port, "
                          "or --port 0 to let the system choose.");
    }
    m.widen(512);
    port_ = port;
    m.set_own_hosts();
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
    bool ok = m.events ? m.events->run() : m.server->listen_after_bind();
    {
        std::lock_guard<std::mutex> lock(m.stop_mutex);
        m.stopping = true;
    }
    m.stop_cv.notify_all();
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
    if (m.events) {
        m.events->stop();
    } else if (m.server) {
        m.server->stop();
    }
}

}  // namespace keyrelay::relay
