#include "http/caller.h"

#include <string_view>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/http.h"
#include "state/crypto.h"

namespace keyrelay::relay {

std::string Callers::session_cookie_name() const {
    return config_.tls() ? "__Host-keyrelay_session" : "keyrelay_session";
}

std::string Callers::cookie(const std::string& name, const std::string& value, const std::string& same_site,
                            const std::string& path, int64_t max_age) const {
    std::string c = name + "=" + value + "; HttpOnly; SameSite=" + same_site + "; Path=" + path +
                    "; Max-Age=" + std::to_string(max_age);
    if (config_.tls()) c += "; Secure";
    return c;
}

std::optional<std::string> Callers::session_id(const httplib::Request& req) const {
    return cookie_value(req.get_header_value("Cookie"), session_cookie_name());
}

Result<std::optional<Session>> Callers::session_of(const httplib::Request& req) const {
    auto id = session_id(req);
    if (!id) return std::optional<Session>();
    return sessions_.find(*id, unix_now());
}

bool Callers::has_csrf_header(const httplib::Request& req) {
    return req.get_header_value("X-Requested-With") == "keyrelay";
}

bool Callers::is_bearer(std::string_view authorization, const std::string& key) {
    constexpr std::string_view prefix = "Bearer ";
    return authorization.size() > prefix.size() && iequals(authorization.substr(0, prefix.size()), prefix) &&
           secure_equals(authorization.substr(prefix.size()), key);
}

Error Callers::no_session_error() {
    return make_error("auth.no_session", "You are not logged in to the relay.",
                      "Log in on the relay's page first (POST /login), then retry.");
}

Error Callers::csrf_error() {
    return make_error("csrf.missing_header", "The request lacks the header X-Requested-With: keyrelay.",
                      "Calls from the page must carry X-Requested-With: keyrelay (a cross-site form cannot add it, "
                      "which is what protects you from request forgery). Server-to-server callers use "
                      "Authorization: Bearer <KEYRELAY_API_KEY> instead.");
}

Caller Callers::authenticate(const httplib::Request& req, httplib::Response& res, bool need_csrf_for_page) const {
    if (req.has_header("Authorization")) {
        if (config_.api_key.empty()) {
            send_error(res, 401, "auth.bad_api_key", "This relay accepts no API key.",
                       "Set KEYRELAY_API_KEY in the relay's environment (a long random value, e.g. `openssl rand "
                       "-hex 32`) and send it as Authorization: Bearer <key>.");
            return Caller::none;
        }
        if (req.get_header_value_count("Authorization") != 1 ||
            !is_bearer(req.get_header_value("Authorization"), config_.api_key)) {
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
    return page_session(req, res) ? Caller::page : Caller::none;
}

std::optional<Session> Callers::page_session(const httplib::Request& req, httplib::Response& res,
                                             bool navigation) const {
    // A browser navigation (GET /connect) may be answered with an HTML page; an API call gets JSON.
    auto refuse = [&](int status, const Error& e) {
        if (navigation) return send_error_for(req, res, status, e);
        send_error(res, status, e);
    };
    auto session = session_of(req);
    if (!session) {
        refuse(store_error_status(session.error()), session.error());
        return std::nullopt;
    }
    if (!session->has_value()) refuse(401, no_session_error());
    return *session;
}

}  // namespace keyrelay::relay
