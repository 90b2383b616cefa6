// The request the relay sends upstream for a /proxy call: the caller's headers that may go, and the credential.
#include <array>

#include "keyrelay/ascii.h"
#include "keyrelay/http.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/proxy.h"

namespace keyrelay::proxy {
namespace {

constexpr std::array<std::string_view, 7> kAllowed = {"accept",        "accept-language",   "content-type",
                                                      "if-match",      "if-none-match",     "if-modified-since",
                                                      "if-unmodified-since"};

// X-* prefixes that carry a credential, or override the host, path, method or client address a server sees.
constexpr std::array<std::string_view, 21> kDeniedX = {
    "x-requested-with", "x-forwarded-", "x-real-ip",   "x-keap-api-key",      "x-original-url", "x-rewrite-url",
    "x-http-method",    "x-method-override", "x-host", "x-request-id",        "x-csrf",         "x-xsrf",
    "x-api-key",        "x-auth",       "x-amz-",      "x-client-ip",         "x-cluster-client-ip",
    "x-proxy",          "x-access-token", "x-original-", "x-override"};

}  // namespace

bool forwardable(std::string_view name, std::string_view connection) {
    bool ok = false;
    for (std::string_view a : kAllowed) ok = ok || iequals(name, a);
    if (!ok && istarts_with(name, "x-")) {
        ok = true;
        for (std::string_view d : kDeniedX) {
            if (istarts_with(name, d)) ok = false;
        }
    }
    // RFC 9110 §7.6.1: Connection = #connection-option; each option names a hop-by-hop field.
    while (ok && !connection.empty()) {
        size_t comma = connection.find(',');
        std::string_view token = trim_ows(connection.substr(0, comma));
        if (iequals(token, name)) ok = false;
        connection = comma == std::string_view::npos ? std::string_view() : connection.substr(comma + 1);
    }
    return ok;
}

Headers forwarded_headers(const Headers& caller) {
    std::string connection;
    for (const auto& [name, value] : caller.items()) {
        if (iequals(name, "Connection")) connection += (connection.empty() ? "" : ",") + value;
    }
    Headers out;
    for (const auto& [name, value] : caller.items()) {
        if (forwardable(name, connection)) out.add(name, value);
    }
    return out;
}

std::optional<CredentialStyle> credential_style_from_string(std::string_view name) {
    if (iequals(name, "bearer")) return CredentialStyle::bearer;
    if (iequals(name, "basic")) return CredentialStyle::basic;
    if (iequals(name, "keap_api_key") || iequals(name, "x-keap-api-key")) return CredentialStyle::keap_api_key;
    return std::nullopt;
}

void attach_credential(HttpRequest& request, const Credential& credential) {
    request.headers.remove("Authorization");
    request.headers.remove("X-Keap-API-Key");
    switch (credential.style) {
        case CredentialStyle::bearer: jira::attach_bearer(request, credential.secret); break;
        case CredentialStyle::basic: jira::attach_basic(request, credential.user, credential.secret); break;
        case CredentialStyle::keap_api_key: keap::attach_api_key(request, credential.secret); break;
    }
}

HttpRequest upstream_request(std::string_view method, std::string url, const Headers& caller_headers,
                             std::string body, const Credential& credential, std::string_view user_agent) {
    HttpRequest up;
    up.method = std::string(method);
    up.url = std::move(url);
    up.headers = forwarded_headers(caller_headers);
    up.headers.set("User-Agent", std::string(user_agent));
    if (method != "GET" && method != "HEAD" && method != "DELETE") up.body = std::move(body);
    attach_credential(up, credential);
    return up;
}

}  // namespace keyrelay::proxy
