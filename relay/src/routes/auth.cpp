#include "routes/auth.h"

#include <nlohmann/json.hpp>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/ascii.h"
#include "obs/log.h"
#include "state/crypto.h"

namespace keyrelay::relay {

using nlohmann::json;

AuthRoutes::AuthRoutes(const Config& config, Callers& callers, SessionStore& sessions, LoginThrottle& throttle)
    : config_(config), callers_(callers), sessions_(sessions), throttle_(throttle) {
    // Sandbox mode: demo / demo, with a cheap hash (it protects nothing secret).
    int iterations = config.sandbox ? 10000 : kPasswordHashIterations;
    for (const auto& u : config.users) {
        password_hashes_[u.username] = u.password_hash.empty() && config.sandbox && u.username == "demo"
                                           ? hash_password("demo", iterations)
                                           : u.password_hash;
    }
    dummy_hash_ = hash_password(random_token(16), iterations);
}

void AuthRoutes::login(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    const std::string& addr = req.remote_addr;
    int64_t now = unix_now();
    // Without the shared throttle a login is refused, never let through uncounted.
    auto refused = [&](const Error& e) {
        log_line(LogLevel::warn, "login refused: shared state unavailable",
                 {{"request_id", ctx.id}, {"error", e.code}});
        send_error(res, store_error_status(e), e);
    };
    auto throttled = throttle_.retry_after(addr, now);
    if (!throttled) return refused(throttled.error());
    if (int64_t wait = *throttled; wait > 0) {
        res.set_header("Retry-After", std::to_string(wait));
        send_error(res, 429, "auth.throttled", "Too many failed logins from this address.",
                   "Wait " + std::to_string(wait) + " seconds (see Retry-After) before trying again. If you forgot "
                   "the password, make a new hash with `keyrelay hash-password` and put it in the config's users.");
        return;
    }
    // A cross-site HTML form can send text/plain, form-urlencoded or multipart without a preflight (a login CSRF that
    // needs no Origin); application/json cannot be sent cross-site without one (WHATWG Fetch, "CORS-safelisted
    // request-header").
    std::string type = to_lower(req.get_header_value("Content-Type"));
    type = std::string(trim_ows(std::string_view(type).substr(0, type.find(';'))));
    if (type != "application/json") {
        send_error(res, 415, "http.unsupported_media_type", "POST /login takes a JSON body.",
                   "Send the body with Content-Type: application/json.");
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
    auto it = password_hashes_.find(username);
    // An unknown user costs the same work as a known one (the dummy hash), and never gets in.
    const bool known = it != password_hashes_.end();
    const bool ok = verify_password(password, known ? it->second : dummy_hash_) && known;
    if (!ok) {
        if (auto recorded = throttle_.record_failure(addr, username, now); !recorded) return refused(recorded.error());
        log_line(LogLevel::warn, "login failed", {{"request_id", ctx.id}, {"remote", addr}});
        send_error(res, 401, "auth.bad_credentials", "Wrong username or password.",
                   config_.sandbox ? "In sandbox mode the login is demo / demo."
                                   : "Check the username and password; users and their password hashes are in the "
                                     "config (users). After 5 failures in 5 minutes logins are paused.");
        return;
    }
    if (auto cleared = throttle_.record_success(addr, username, now); !cleared) return refused(cleared.error());
    if (auto old = callers_.session_id(req)) {
        if (auto removed = sessions_.remove(*old); !removed) return refused(removed.error());
    }
    auto id = sessions_.create(username, now);
    if (!id) return refused(id.error());
    res.set_header("Set-Cookie",
                   callers_.cookie(callers_.session_cookie_name(), *id, "Strict", "/", sessions_.lifetime()));
    log_line(LogLevel::info, "login", {{"request_id", ctx.id}, {"user", username}});
    send_json(res, 200, {{"user", username}});
}

void AuthRoutes::logout(RequestContext&, const httplib::Request& req, httplib::Response& res) {
    if (!Callers::has_csrf_header(req)) {
        send_error(res, 403, Callers::csrf_error());
        return;
    }
    if (auto id = callers_.session_id(req)) {
        // The session must end everywhere before the answer says so: otherwise the client may retry.
        if (auto removed = sessions_.remove(*id); !removed) {
            send_error(res, store_error_status(removed.error()), removed.error());
            return;
        }
    }
    res.set_header("Set-Cookie", callers_.cookie(callers_.session_cookie_name(), "", "Strict", "/", 0));
    res.set_header("Cache-Control", "no-store");
    res.status = 204;
}

void AuthRoutes::session(RequestContext&, const httplib::Request& req, httplib::Response& res) {
    if (auto s = callers_.page_session(req, res)) send_json(res, 200, {{"user", s->user}});
}

}  // namespace keyrelay::relay
