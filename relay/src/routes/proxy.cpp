#include "routes/proxy.h"

#include <cstring>
#include <sstream>
#include <string_view>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/diagnose.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/proxy.h"
#include "keyrelay/redact.h"
#include "keyrelay/text.h"
#include "obs/log.h"

#ifndef KEYRELAY_VERSION
#define KEYRELAY_VERSION "0.0.0"
#endif

namespace keyrelay::relay {
namespace {

// Headers a caller may pass to the provider. Everything else is dropped: the browser's Cookie, Authorization,

// Origin, Referer, User-Agent, X-Requested-With, hop-by-hop headers (RFC 9110 §7.6.1), host overrides.

bool forwardable(const std::string& name, const std::string& connection_tokens) {
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

// Checks a /proxy call (caller, path, allowlist, connection) and builds the provider request. On a refusal the

// error answer is in res and the result is empty.

// A gateway or error page may echo the request back (its Authorization header in a title, a faultstring, a

// plain-text dump): the credential the relay attached must never reach the caller, in a diagnosis or a body.

// Every form of it (keyrelay/redact.h), in the body and in the headers that are passed through.
void scrub_credentials(const HttpRequest& up, HttpResponse& answer) {
    Redactor sent;
    sent.add_request(up);
    sent.redact_response(answer);
}

void send_connection_error(httplib::Response& res, const Error& e) {
    int status = 500;
    if (e.code == "connection.not_connected" || e.code == "connection.needs_reauth") status = 409;
    if (e.code == "connection.refresh_failed") status = 502;
    if (e.code.rfind("store.", 0) == 0) status = store_error_status(e);
    send_error(res, status, e);
}

// Passes the provider's answer through, or wraps an answer that is not the API's (an HTML page, a gateway

// fault, XML-RPC that is not methodResponse) as 502 upstream.<diagnosis>.

// A 2xx with a JSON media type (RFC 8259 §11, or a +json suffix, RFC 6839 §3.1) and a body that is a

// syntactically valid JSON object or array without a top-level "fault" member is what diagnose() would call "ok":

// the common case is checked with a validating scan instead of building the whole document.

bool looks_like_api_json(const HttpResponse& answer) {
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

bool wrap_diagnosis(const Diagnosis& d, const HttpResponse& answer, bool xmlrpc) {
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

}  // namespace

void ProxyRoute::handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    auto call = prepare(ctx, req, res);
    if (!call) return;
    const ProviderConfig* p = call->p;
    std::optional<Connection>& conn = call->conn;
    HttpRequest& up = call->up;

    auto answer = forward(ctx, *p, up);
    // RFC 6750 §3.1: a 401 means the access token was refused: refresh once (single flight), then retry once.
    if (answer && answer->status == 401 && p->mode == Mode::oauth) {
        auto c = tokens_.fresh(*p, RefreshReason::reactive, conn->version);
        if (!c) {
            send_connection_error(res, c.error());
            return;
        }
        conn = *c;
        up.headers.remove("Authorization");
        attach_credentials(*p, up, &*conn);
        answer = forward(ctx, *p, up);
    }
    if (!answer) {
        const Error& e = answer.error();
        send_error(res, e.code == "upstream.timeout" ? 504 : 502, e);
        return;
    }
    scrub_credentials(up, *answer);
    relay_answer(ctx, *p, req.method, call->bare, *answer, res);
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
            send_connection_error(res, c.error());
            return std::nullopt;
        }
        conn = *c;
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
    // Jira Cloud's CDN refuses a GET with a body (docs/reference/jira.md).
    if (req.method != "GET" && req.method != "HEAD" && req.method != "DELETE") up.body = req.body;
    attach_credentials(*p, up, conn ? &*conn : nullptr);
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
    static const std::string kUserAgent = std::string("keyrelay/") + KEYRELAY_VERSION;
    up.headers.set("User-Agent", kUserAgent);
    attach_credentials(p, up, conn ? &*conn : nullptr);
    auto answer = forward(ctx, p, up);
    // RFC 6750 §3.1, as in handle(): refresh once, retry once.
    if (answer && answer->status == 401 && p.mode == Mode::oauth) {
        auto c = tokens_.fresh(p, RefreshReason::reactive, conn->version);
        if (!c) return c.error();
        up.headers.remove("Authorization");
        attach_credentials(p, up, &*c);
        answer = forward(ctx, p, up);
    }
    if (answer) scrub_credentials(up, *answer);
    return answer;
}

Result<HttpResponse> ProxyRoute::forward(RequestContext& ctx, const ProviderConfig& p, const HttpRequest& up) {
    RetryPolicy policy;
    return upstream_.send_with_retries(up, policy, [&](const Upstream::Attempt& a) {
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
                 {{"request_id", ctx.id}, {"provider", p.name}, {"status", answer.status},
                  {"diagnosis", d.code}});
        send_error(res, 502, make_error("upstream." + d.code, d.summary, d.hint));
        return;
    }
    ctx.final_answer = true;
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
    res.body = std::move(answer.body);   // Response::body is public: no copy of a large answer
    res.set_header("Content-Type", type != nullptr ? *type : kOctets);
}

}  // namespace keyrelay::relay
