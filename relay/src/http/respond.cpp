#include "http/respond.h"

#include <ctime>

#include "http/util.h"

namespace keyrelay::relay {

int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

int store_error_status(const Error& e) {
    // A refused Redis password or an error answer (out of memory, a read-only replica) is the server's problem and
    // passes once the operator fixes Redis: for the caller, as unavailable as an unreachable Redis.
    if (e.code == "store.unavailable" || e.code == "store.lock_timeout" || e.code == "store.redis_auth" ||
        e.code == "store.redis_error") {
        return 503;
    }
    if (e.code == "store.conflict") return 409;
    return 500;
}

void send_error(httplib::Response& res, int status, const Error& e) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    // The store recovers by itself: a client may simply try again shortly (RFC 9110 §10.2.3).
    if (status == 503 && e.code.rfind("store.", 0) == 0) res.set_header("Retry-After", "1");
    res.set_content(error_json(e), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message,
                const std::string& hint) {
    send_error(res, status, make_error(code, message, hint));
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_page(httplib::Response& res, int status, const Error& e) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    res.set_content(html_error_page(e), "text/html; charset=utf-8");
}

void send_error_for(const httplib::Request& req, httplib::Response& res, int status, const Error& e) {
    if (req.get_header_value("Accept").find("text/html") != std::string::npos) {
        send_page(res, status, e);
    } else {
        send_error(res, status, e);
    }
}

const ProviderConfig* provider_or_404(const Config& config, RequestContext& ctx, const httplib::Request& req,
                                      httplib::Response& res, bool page) {
    const ProviderConfig* p = config.provider(ctx.param);
    if (p != nullptr) {
        ctx.provider = p->name;
        return p;
    }
    std::string names;
    for (const auto& known : config.providers) names += (names.empty() ? "" : ", ") + known.name;
    std::string shown = ctx.param.size() > 40 ? ctx.param.substr(0, 40) + "..." : ctx.param;
    Error e = make_error("provider.unknown",
                         "There is no provider named \"" + shown + "\" (names are case-sensitive).",
                         "Known providers: " + names + ". Others can be added in the config (providers).");
    if (page) {
        send_error_for(req, res, 404, e);
    } else {
        send_error(res, 404, e);
    }
    return nullptr;
}

}  // namespace keyrelay::relay
