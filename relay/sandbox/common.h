// What the sandbox's handlers share: a request view, a reply value, and small HTML/JSON/time helpers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "keyrelay/http.h"
#include "keyrelay/text.h"
#include "state.h"

namespace keyrelay::sandbox {

using json = nlohmann::json;

struct Req {
    const httplib::Request& raw;
    std::string method;
    std::string path;
    Params query;          // from the request target, decoded by the core (form rules: '+' is a space)
    bool query_ok = true;  // false when the query has a bad percent escape
    std::string base_url;  // "http://127.0.0.1:<port>"

    std::optional<std::string> header(const char* name) const;
    std::optional<std::string> q(std::string_view name) const { return param(query, name); }
};

struct Reply {
    int status = 200;
    std::string content_type = "application/json;charset=UTF-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    Reply& with(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
};

Reply json_reply(int status, const json& body);
Reply text_reply(int status, std::string body, std::string content_type = "text/plain;charset=UTF-8");
Reply html_reply(int status, std::string html);
Reply redirect_to(std::string location);   // 302 Found

using keyrelay::html_escape;
// "2026-01-02T03:04:05Z" (ISO 8601, UTC)
std::string iso8601(int64_t unix_seconds);
bool starts_with(std::string_view s, std::string_view prefix);
// Appends "?k=v&..." or "&k=v&..." to a URL (RFC 6749 §4.1.2: keep the redirect URI's own query).
std::string add_query(const std::string& url, const Params& params);
// Strict JSON parse without exceptions; nullopt when the text is not JSON.
std::optional<json> parse_json(std::string_view text);
// A string member of a JSON object, or "".
std::string jstr(const json& obj, const char* name);

// The provider routes. Each returns nullopt when the path is not one of its own (the caller answers 404).
std::optional<Reply> route_keap(State& state, const Req& req);
std::optional<Reply> route_jira(State& state, const Req& req);
std::optional<Reply> route_control(State& state, const Req& req);

// Replies shared with failure injection.
Reply keap_throttled(State& state, const std::string& credential_kind);   // 429 with Keap's body and headers
Reply jira_throttled(State& state, double retry_after_seconds, double limit);

// A simple page for the consent and error screens.
std::string page(std::string_view title, std::string_view body_html);
Reply error_page(int status, std::string_view title, std::string_view message);
// <input type="hidden"> for each parameter, HTML-escaped.
std::string hidden_fields(const Params& params);
// The consent form: POSTs the authorize parameters back to `action` with decision=allow (button #allow) or
// decision=deny (button #deny).
std::string consent_form(std::string_view action, const Params& params, std::string_view allow_label,
                         std::string_view deny_label);
// An OAuth error answer from a token endpoint: {"error","error_description"}, never cached (RFC 6749 §5.1, §5.2).
Reply oauth_error(int status, const char* error, const std::string& description);

// The APIs refuse browsers: any request carrying an Origin header, and every OPTIONS preflight, gets
// 403 "CORS origin denied" (keap.md "CORS"; jira.md: Atlassian sends no Access-Control-Allow-Origin).
std::optional<Reply> deny_cross_origin(const Req& req);

// Authorize endpoints (caller holds state.mu). RFC 6749 §4.1.2.1: with an unknown client or a redirect URI that is
// not registered EXACTLY, the server must not redirect; it shows an error page instead.
std::optional<Reply> check_client_redirect(State& state, Provider provider, const std::string& client_id,
                                           const std::string& redirect_uri);
// A single-use authorization code bound to client and redirect URI, valid 10 minutes (RFC 6749 §4.1.2).
std::string issue_code(State& state, Provider provider, const std::string& client_id,
                       const std::string& redirect_uri, const std::string& scope);
inline constexpr int64_t kCodeLifetime = 600;

}  // namespace keyrelay::sandbox
