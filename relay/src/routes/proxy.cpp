#include "routes/proxy.h"

#include <ctime>
#include <string_view>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/diagnose.h"
#include "keyrelay/proxy.h"
#include "keyrelay/redact.h"
#include "keyrelay/retry.h"
#include "obs/log.h"

#ifndef KEYRELAY_VERSION
#define KEYRELAY_VERSION "0.0.0"
#endif

namespace keyrelay::relay {
namespace {

// A gateway or error page may echo the request back (its Authorization header in a title, a faultstring, a
// plain-text dump): the credential the relay attached must never reach the caller, in a diagnosis or a body.
// Every form of it (keyrelay/redact.h), in the body and in the headers that are passed through.
void scrub_credentials(const HttpRequest& up, HttpResponse& answer) {
    Redactor sent;
    sent.add_request(up);
    sent.redact_response(answer);
}

// A failed call: the connection (not connected, dead grant, failed refresh), the store, or the provider's API.
void send_call_error(httplib::Response& res, const Error& e) {
    int status = 500;
    if (e.code == "connection.not_connected" || e.code == "connection.needs_reauth") status = 409;
    if (e.code == "connection.refresh_failed" || e.code.rfind("upstream.", 0) == 0) status = 502;
    if (e.code == "upstream.timeout") status = 504;
    if (e.code.rfind("store.", 0) == 0) status = store_error_status(e);
    send_error(res, status, e);
}

const std::string& user_agent() {
    static const std::string kUserAgent = std::string("keyrelay/") + KEYRELAY_VERSION;
    return kUserAgent;
}

}  // namespace

void ProxyRoute::handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    auto call = prepare(ctx, req, res);
    if (!call) return;
    auto answer = exchange(ctx, *call->p, call->up, call->conn);
    if (!answer) {
        send_call_error(res, answer.error());
        return;
    }
    relay_answer(ctx, *call->p, req.method, call->bare, *answer, res);
}

std::optional<ProxyCall> ProxyRoute::prepare(RequestContext& ctx, const httplib::Request& req,
                                             httplib::Response& res) {
    const ProviderConfig* p = provider_or_404(config_, ctx, req, res, false);
    if (p == nullptr) return std::nullopt;
    if (callers_.authenticate(req, res, true) == Caller::none) return std::nullopt;

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
        auto c = tokens_.fresh(*p);
        if (!c) {
            send_call_error(res, c.error());
            return std::nullopt;
        }
        conn = *c;
    }

    ProxyCall call;
    call.p = p;
    call.bare = std::move(bare);
    Headers caller_headers;
    for (const auto& [name, value] : req.headers) caller_headers.add(name, value);
    call.up = proxy::upstream_request(req.method,
                                      join_url(resolve_api_base(*p, conn ? conn->cloud_id : std::string()), *path),
                                      caller_headers, req.body,
                                      p->credential(conn ? conn->tokens.access_token : std::string()), user_agent());
    call.conn = std::move(conn);
    return call;
}

Result<HttpResponse> ProxyRoute::send(RequestContext& ctx, const ProviderConfig& p, HttpRequest up) {
    std::optional<Connection> conn;
    if (p.mode == Mode::oauth) {
        auto c = tokens_.fresh(p);
        if (!c) return c.error();
        conn = *c;
    }
    up.url = join_url(resolve_api_base(p, conn ? conn->cloud_id : std::string()), up.url);
    up.headers.set("User-Agent", user_agent());
    proxy::attach_credential(up, p.credential(conn ? conn->tokens.access_token : std::string()));
    return exchange(ctx, p, up, conn);
}

Result<HttpResponse> ProxyRoute::exchange(RequestContext& ctx, const ProviderConfig& p, HttpRequest& up,
                                          const std::optional<Connection>& conn) {
    auto answer = forward(ctx, p, up);
    // RFC 6750 §3.1: a 401 means the access token was refused: refresh once (single flight), then retry once.
    if (answer && answer->status == 401 && p.mode == Mode::oauth) {
        auto c = tokens_.fresh(p, RefreshReason::reactive, conn->version);
        if (!c) return c.error();
        proxy::attach_credential(up, p.credential(c->tokens.access_token));
        answer = forward(ctx, p, up);
    }
    if (answer) scrub_credentials(up, *answer);
    return answer;
}

Result<HttpResponse> ProxyRoute::forward(RequestContext& ctx, const ProviderConfig& p, const HttpRequest& up) {
    return upstream_.send_with_retries(up, retry::Policy{}, [&](const Upstream::Attempt& a) {
        metrics_.observe_upstream_latency(p.name, a.seconds);
        if (a.retry_in_ms) {
            metrics_.count_retry(p.name);
            log_line(LogLevel::info, "retrying upstream request",
                     {{"request_id", ctx.id}, {"provider", p.name}, {"attempt", a.attempt + 1},
                      {"outcome", a.outcome}, {"delay_ms", *a.retry_in_ms}});
        }
    });
}

void ProxyRoute::relay_answer(RequestContext& ctx, const ProviderConfig& p, const std::string& method,
                              const std::string& path, HttpResponse& answer, httplib::Response& res) {
    proxy::AnswerPolicy policy;
    policy.xmlrpc = proxy::allowed(p.xmlrpc_paths, method, path);
    policy.pass_headers = p.rate_limit_headers;
    const proxy::ShapedAnswer shaped = proxy::shape_answer(answer, method, policy, std::time(nullptr));
    for (const auto& [name, value] : shaped.headers.items()) res.set_header(name, value);
    if (shaped.wrapped) {
        const Diagnosis& d = shaped.diagnosis;
        log_line(LogLevel::warn, "upstream answer is not the API's",
                 {{"request_id", ctx.id}, {"provider", p.name}, {"status", answer.status},
                  {"diagnosis", d.code}});
        send_error(res, shaped.status, make_error("upstream." + d.code, d.summary, d.hint));
        return;
    }
    ctx.final_answer = true;
    res.status = shaped.status;
    if (shaped.send_body) res.body = std::move(answer.body);   // Response::body is public: no copy of a large answer
}

}  // namespace keyrelay::relay
