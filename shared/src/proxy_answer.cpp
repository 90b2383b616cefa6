// What the relay answers its caller for a provider's answer: passed through, or replaced by the relay's diagnosis.
#include <cstring>

#include "keyrelay/ascii.h"
#include "keyrelay/proxy.h"
#include "keyrelay/text.h"

namespace keyrelay::proxy {

const std::vector<std::string>& keap_rate_limit_headers() {
    static const std::vector<std::string> kHeaders = {"retry-after", "x-keap-product-*", "x-keap-tenant-*"};
    return kHeaders;
}

const std::vector<std::string>& jira_rate_limit_headers() {
    // X-RateLimit-* and RateLimit-* (Reason, Policy), and the points-based limits' Beta-RateLimit,
    // Beta-RateLimit-Policy and X-Beta-RateLimit-* (https://developer.atlassian.com/cloud/jira/platform/rate-limiting).
    static const std::vector<std::string> kHeaders = {"retry-after", "x-ratelimit-*", "ratelimit-*",
                                                      "beta-ratelimit*", "x-beta-ratelimit-*"};
    return kHeaders;
}

const std::vector<std::string>& cors_exposed_headers() {
    // Keap: https://developer.infusionsoft.com/api-token-quota-and-usage-measurements; Jira: docs/reference/jira.md.
    static const std::vector<std::string> kNames = {
        "X-Request-Id", "Retry-After",
        "x-keap-product-quota-limit", "x-keap-product-quota-time-unit", "x-keap-product-quota-interval",
        "x-keap-product-quota-available", "x-keap-product-quota-used", "x-keap-product-quota-expiry-time",
        "x-keap-product-throttle-limit", "x-keap-product-throttle-time-unit", "x-keap-product-throttle-interval",
        "x-keap-product-throttle-available", "x-keap-product-throttle-used", "x-keap-tenant-id",
        "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-NearLimit",
        "RateLimit-Reason", "Beta-RateLimit", "Beta-RateLimit-Policy", "X-Beta-RateLimit-Reason",
        "X-Beta-RateLimit-NearLimit", "X-Beta-RateLimit-Reset"};
    return kNames;
}

bool matches_header_pattern(const std::vector<std::string>& patterns, std::string_view name) {
    for (const std::string& p : patterns) {
        if (!p.empty() && p.back() == '*') {
            if (istarts_with(name, std::string_view(p).substr(0, p.size() - 1))) return true;
        } else if (iequals(name, p)) {
            return true;
        }
    }
    return false;
}

bool looks_like_api_json(const HttpResponse& answer) {
    if (answer.status < 200 || answer.status >= 300 || answer.status == 204) return false;
    const std::string* type = answer.headers.find("Content-Type");
    if (type == nullptr) return false;
    std::string_view media = trim_ows(std::string_view(*type).substr(0, type->find(';')));
    if (!iequals(media, "application/json") && !(media.size() > 5 && iends_with(media, "+json"))) return false;
    const std::string& body = answer.body;
    size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string::npos || (body[first] != '{' && body[first] != '[')) return false;
    // A gateway fault ({"fault":{...}}) is valid JSON but not the API's answer: diagnose() looks at it.
    if (body.find("\"fault\"") != std::string::npos) return false;
    return is_json_text(body);
}

bool wraps(const Diagnosis& d, const HttpResponse& answer, bool xmlrpc) {
    if (d.code == "ok") return false;
    static constexpr std::string_view kAlways[] = {"html_page",     "gateway_fault",   "not_method_response",
                                                   "truncated_xml", "malformed_xml",   "doctype_refused",
                                                   "http_596",      "legacy_key_dead", "cors_origin_denied",
                                                   "too_deep",      "too_large",       "invalid_xmlrpc"};
    for (std::string_view c : kAlways) {
        if (d.code == c) return true;
    }
    if (xmlrpc && (d.code == "empty_body" || d.code == "wrong_content_type" || d.code == "not_json")) return true;
    if (!xmlrpc && d.code == "not_json" && answer.status != 204 && !answer.body.empty()) return true;
    return false;
}

ShapedAnswer shape_answer(const HttpResponse& answer, std::string_view method, const AnswerPolicy& policy,
                          std::optional<int64_t> now) {
    ShapedAnswer out;
    if (!policy.xmlrpc && looks_like_api_json(answer)) {
        out.diagnosis.code = "ok";
    } else {
        out.diagnosis = diagnose(answer, policy.xmlrpc ? Expect::xmlrpc : Expect::json, now);
    }
    for (const auto& [name, value] : answer.headers.items()) {
        if (matches_header_pattern(policy.pass_headers, name)) out.headers.add(name, value);
    }
    out.wrapped = wraps(out.diagnosis, answer, policy.xmlrpc);
    if (out.wrapped) {
        out.status = 502;
        out.send_body = false;
        return out;
    }
    out.status = answer.status;
    // The provider's bytes are served from the relay's origin: whatever they are, they may not run script there.
    out.headers.set("Content-Security-Policy", "default-src 'none'; sandbox");
    for (std::string_view h : {"ETag", "Last-Modified", "Cache-Control"}) {
        if (const std::string* v = answer.headers.find(h)) out.headers.set(std::string(h), *v);
    }
    if (!out.headers.has("Cache-Control")) out.headers.set("Cache-Control", "no-store");
    out.send_body = !(answer.status == 204 || answer.status == 304 || method == "HEAD");
    if (out.send_body) {
        const std::string* type = answer.headers.find("Content-Type");
        out.headers.set("Content-Type", type != nullptr ? *type : "application/octet-stream");
    }
    return out;
}

}  // namespace keyrelay::proxy
