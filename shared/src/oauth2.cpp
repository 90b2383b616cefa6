#include "keyrelay/oauth2.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "keyrelay/ascii.h"
#include "keyrelay/sha256.h"

namespace keyrelay::oauth2 {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr const char* kBasicHint =
    "The token endpoint refused the client credentials. Send `Authorization: Basic ` + "
    "base64(urlencode(client_id) + \":\" + urlencode(client_secret)) — the word Basic and a space are required "
    "(RFC 6749 §2.3.1); check the client id and secret of the developer app (a copied secret often carries a "
    "trailing space or newline).";

constexpr const char* kDeadGrantHint =
    "The refresh token (or authorization code) is dead: a refresh token is single-use when the provider rotates it "
    "(Keap and Atlassian do), so another refresh may have replaced it; it may also have expired (Keap: 45 days, "
    "Atlassian: 90 days unused) or the user revoked the app. An authorization code is single-use and short-lived. "
    "Connect the account again.";

// A string member, or "" when absent or not a string.
std::string string_member(const json& object, const char* name) {
    auto it = object.find(name);
    if (it == object.end() || !it->is_string()) return {};
    return it->get_ref<const std::string&>();
}

// RFC 6749 §5.1 says expires_in is a number; some servers send "86400". Returns 0 when absent or unusable.
int64_t expires_in_member(const json& object) {
    auto it = object.find("expires_in");
    if (it == object.end()) return 0;
    constexpr int64_t kMax = int64_t(100) * 365 * 24 * 3600;   // anything longer is nonsense
    if (it->is_number_unsigned()) {
        uint64_t v = it->get<uint64_t>();
        return v > uint64_t(kMax) ? kMax : int64_t(v);
    }
    if (it->is_number_integer()) {
        int64_t v = it->get<int64_t>();
        return v < 0 ? 0 : (v > kMax ? kMax : v);
    }
    if (it->is_number_float()) {
        double v = it->get<double>();
        if (!std::isfinite(v) || v <= 0) return 0;
        return v > double(kMax) ? kMax : int64_t(v);
    }
    if (it->is_string()) {
        std::string s(trim(it->get_ref<const std::string&>()));
        if (s.empty()) return 0;
        int64_t v = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return 0;
            v = v * 10 + (c - '0');
            if (v > kMax) return kMax;
        }
        return v;
    }
    return 0;
}

std::string status_text(int status) { return "HTTP " + std::to_string(status); }

// "<title>Bad Gateway</title>" -> "Bad Gateway"; "" when there is none.
std::string html_title(std::string_view body) {
    std::string low = to_lower(body.substr(0, 64 * 1024));
    size_t open = low.find("<title");
    if (open == std::string::npos) return {};
    size_t gt = low.find('>', open);
    if (gt == std::string::npos) return {};
    size_t close = low.find("</title", gt);
    if (close == std::string::npos) return {};
    std::string title(trim(body.substr(gt + 1, close - gt - 1)));
    if (title.size() > 120) title = title.substr(0, 120) + "...";
    return title;
}

bool looks_like_html(std::string_view body) {
    std::string start = to_lower(trim(body.substr(0, 512)));
    return start.rfind("<!doctype html", 0) == 0 || start.rfind("<html", 0) == 0 || start.find("<body") != std::string::npos ||
           start.find("<head") != std::string::npos || start.find("<title") != std::string::npos;
}

std::string snippet(std::string_view body) {
    std::string s(trim(body.substr(0, 200)));
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    return body.size() > 200 ? s + "..." : s;
}

Error not_json(const HttpResponse& response) {
    std::string status = status_text(response.status);
    if (trim(response.body).empty()) {
        return make_error("oauth.not_json", "The token endpoint answered " + status + " with an empty body.",
                          "A token endpoint answers with a JSON object (RFC 6749 §5.1). Check the token URL "
                          "(Keap: https://api.infusionsoft.com/token, Atlassian: https://auth.atlassian.com/oauth/token) "
                          "and that the request is a POST.");
    }
    if (looks_like_html(response.body)) {
        std::string title = html_title(response.body);
        return make_error("oauth.not_json",
                          "The token endpoint answered " + status + " with an HTML page" +
                              (title.empty() ? std::string(".") : " titled \"" + title + "\"."),
                          "An HTML page instead of JSON usually means a wrong token URL (the authorize page's host, a "
                          "typo), a login or maintenance page, or a proxy in between. Check the token URL "
                          "(Keap: https://api.infusionsoft.com/token, Atlassian: https://auth.atlassian.com/oauth/token).");
    }
    return make_error("oauth.not_json",
                      "The token endpoint answered " + status + " with a body that is not a JSON object: \"" +
                          snippet(response.body) + "\"",
                      "A token endpoint answers with a JSON object (RFC 6749 §5.1). Check the token URL and that "
                      "nothing between the relay and the provider rewrites the answer.");
}

// RFC 6749 §5.2: {"error": "...", "error_description": "..."}.
Error oauth_error(int status, const std::string& error, const std::string& description) {
    std::string said = "The token endpoint answered " + status_text(status) + " " + error +
                       (description.empty() ? std::string(".") : ": \"" + description + "\".");
    std::string desc = to_lower(description);

    bool about_grant = icontains(desc, "refresh token") || icontains(desc, "refresh_token") ||
                       icontains(desc, "authorization code") || icontains(desc, "redirect");
    if (error == "invalid_client" || (status == 401 && !about_grant)) {
        // RFC 6749 §5.2: a failed client authentication may come back as 401. Keap answers a bad Basic header with
        // 401 invalid_grant "Unable to authenticate username and password": the "username and password" are the
        // client id and secret, not the user's grant, so connecting again would not help.
        return make_error("oauth.invalid_client", said, kBasicHint);
    }
    if (error == "invalid_grant") {
        if (icontains(desc, "redirect")) {
            return make_error("oauth.invalid_redirect_uri", said,
                              "The redirect_uri of the code exchange must be exactly the one sent to the authorize "
                              "page and registered for the developer app (scheme, host, port, path, trailing slash).");
        }
        return make_error("oauth.invalid_grant", said, kDeadGrantHint);
    }
    if (error == "invalid_request") {
        if (icontains(desc, "refresh token") || icontains(desc, "refresh_token")) {
            // Keap's newer gateway reports a dead refresh token as invalid_request "Invalid Refresh Token".
            return make_error("oauth.invalid_refresh_token", said, kDeadGrantHint);
        }
        if (icontains(desc, "redirect_uri") || icontains(desc, "redirect uri")) {
            return make_error("oauth.invalid_redirect_uri", said,
                              "The redirect_uri must match, character for character, a redirect URI registered for "
                              "the developer app (Keap: HTTPS only), and be the same in the authorize URL and the "
                              "code exchange.");
        }
        if (icontains(desc, "grant_type is required") || icontains(desc, "response_type or grant_type")) {
            return make_error("oauth.invalid_request", said,
                              "The endpoint could not read grant_type: Keap's token endpoint only accepts an "
                              "application/x-www-form-urlencoded body, not JSON. Configure the provider with a form "
                              "token body.");
        }
        return make_error("oauth.invalid_request", said,
                          "The token request is missing or repeats a parameter, or has a wrong content type. Compare "
                          "it with the provider's documentation (grant_type, code or refresh_token, redirect_uri, "
                          "client credentials).");
    }
    if (error == "unsupported_grant_type") {
        return make_error("oauth.error", said,
                          "The provider does not accept this grant_type. keyrelay uses authorization_code and "
                          "refresh_token; check that the developer app allows them.");
    }
    if (error == "invalid_scope") {
        return make_error("oauth.error", said,
                          "A requested scope is unknown to the provider or not enabled for the developer app "
                          "(Keap only knows \"full\"; Atlassian needs offline_access for a refresh token).");
    }
    return make_error("oauth.error", said,
                      "The provider refused the token request; the error description above says why. Check the "
                      "developer app's settings at the provider.");
}

Params client_params(const Client& client) {
    return {{"client_id", client.client_id}, {"client_secret", client.client_secret}};
}

// Builds the POST to the token endpoint (RFC 6749 §4.1.3 and §6) from ordered parameters.
HttpRequest token_request(const Provider& provider, const Client& client, Params params) {
    HttpRequest request;
    request.method = "POST";
    request.url = provider.token_url;
    request.headers.set("Accept", "application/json");
    if (provider.client_auth == ClientAuth::basic) {
        // RFC 6749 §2.3.1: one authentication method per request, so the secret is never also in the body.
        request.headers.set("Authorization", basic_auth_header(client.client_id, client.client_secret));
    } else {
        Params with_client = client_params(client);
        // client_id and client_secret after grant_type, before the grant's own parameters.
        params.insert(params.begin() + 1, with_client.begin(), with_client.end());
    }
    if (provider.token_body == BodyFormat::json) {
        ordered_json body = ordered_json::object();
        for (const auto& [name, value] : params) body[name] = value;
        request.headers.set("Content-Type", "application/json");
        // Invalid UTF-8 in a value must not throw: replace it (the provider then reports a wrong value).
        request.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
        request.headers.set("Content-Type", "application/x-www-form-urlencoded");
        request.body = form_encode(params);
    }
    return request;
}

}  // namespace

std::string basic_auth_header(std::string_view client_id, std::string_view client_secret) {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded (Appendix B) before base64 (RFC 7617).
    return "Basic " + base64_encode(form_urlencode(client_id) + ":" + form_urlencode(client_secret));
}

std::string pkce_challenge_s256(std::string_view verifier) {
    // RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier))).
    return base64url_encode(sha256(verifier));
}

std::string build_authorize_url(const Provider& provider, const Client& client, std::string_view state,
                                 std::string_view pkce_verifier) {
    // RFC 6749 §4.1.1.
    Params params{{"response_type", "code"}, {"client_id", client.client_id}, {"redirect_uri", client.redirect_uri}};
    if (!provider.scopes.empty()) {
        std::string scope;
        for (const auto& s : provider.scopes) {
            if (!scope.empty()) scope += ' ';   // RFC 6749 §3.3: space-delimited
            scope += s;
        }
        params.emplace_back("scope", scope);
    }
    if (!state.empty()) params.emplace_back("state", std::string(state));
    for (const auto& p : provider.extra_authorize_params) params.push_back(p);
    if (provider.pkce && !pkce_verifier.empty()) {
        params.emplace_back("code_challenge", pkce_challenge_s256(pkce_verifier));
        params.emplace_back("code_challenge_method", "S256");
    }
    std::string url = provider.authorize_url;
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    if (!url.empty() && (url.back() == '?' || url.back() == '&')) sep = '\0';
    for (const auto& [name, value] : params) {
        if (sep != '\0') url += sep;
        sep = '&';
        url += percent_encode(name);
        url += '=';
        url += percent_encode(value);
    }
    return url;
}

HttpRequest build_code_exchange(const Provider& provider, const Client& client, std::string_view code,
                                std::string_view pkce_verifier) {
    // RFC 6749 §4.1.3 (+ RFC 7636 §4.5 code_verifier).
    Params params{{"grant_type", "authorization_code"}, {"code", std::string(code)},
                  {"redirect_uri", client.redirect_uri}};
    if (provider.pkce && !pkce_verifier.empty()) params.emplace_back("code_verifier", std::string(pkce_verifier));
    return token_request(provider, client, std::move(params));
}

HttpRequest build_refresh(const Provider& provider, const Client& client, std::string_view refresh_token) {
    // RFC 6749 §6.
    return token_request(provider, client,
                         {{"grant_type", "refresh_token"}, {"refresh_token", std::string(refresh_token)}});
}

Result<Callback> parse_callback(std::string_view url_or_query) {
    auto params = parse_query(url_or_query);
    if (!params) return params.error();
    // RFC 6749 §4.1.2.1: an error response carries error (+ error_description) instead of code.
    if (auto error = param(*params, "error")) {
        std::string description = param(*params, "error_description").value_or("");
        std::string said = "The authorization server returned error=" + *error +
                           (description.empty() ? std::string(".") : ": \"" + description + "\".");
        if (*error == "access_denied") {
            return make_error("oauth.access_denied", said,
                              "The user pressed Deny (or is not allowed to approve the app). Nothing is connected; "
                              "start the connection again and press Allow.");
        }
        return make_error("oauth.callback_error", said,
                          "The authorize request was refused before the user could approve it. Check client_id, "
                          "redirect_uri (registered exactly), scope and response_type=code in the authorize URL.");
    }
    Callback out;
    out.code = param(*params, "code").value_or("");
    out.state = param(*params, "state").value_or("");
    out.scope = param(*params, "scope").value_or("");
    if (out.code.empty()) {
        return make_error("oauth.missing_code", "The redirect back from the authorize page has no code.",
                          "Open this address only as the redirect of the provider's authorize page; if it was, "
                          "check that redirect_uri points at the relay's callback and that nothing strips the query.");
    }
    if (out.state.empty()) {
        return make_error("oauth.missing_state", "The redirect back from the authorize page has no state.",
                          "state protects against cross-site request forgery (RFC 6749 §10.12): without it the code "
                          "cannot be tied to the browser that started the flow. Start the connection again from the "
                          "relay.");
    }
    return out;
}

Error parse_token_error(const HttpResponse& response) {
    json body = json::parse(response.body, nullptr, false);
    if (!body.is_discarded() && body.is_object() && body.contains("error") && body["error"].is_string()) {
        return oauth_error(response.status, string_member(body, "error"), string_member(body, "error_description"));
    }
    std::string status = status_text(response.status);
    if (response.status == 401) {
        std::string what = trim(response.body).empty() ? std::string("an empty body")
                           : looks_like_html(response.body) ? std::string("an HTML page")
                                                            : std::string("no OAuth error");
        return make_error("oauth.unauthorized", "The token endpoint answered " + status + " with " + what + ".",
                          kBasicHint);
    }
    if (body.is_discarded() || !body.is_object()) {
        Error e = not_json(response);
        if (response.status >= 500) {
            e.hint = "The provider's token endpoint is failing (" + status + "). Retry in a minute; if it persists, "
                     "check the provider's status page. " + e.hint;
        }
        return e;
    }
    // A JSON object without "error": e.g. a gateway fault {"fault":{"faultstring":...}} or a 429 quota message.
    std::string detail;
    if (body.contains("fault") && body["fault"].is_object()) detail = string_member(body["fault"], "faultstring");
    if (detail.empty()) detail = string_member(body, "message");
    std::string message = "The token endpoint answered " + status +
                          (detail.empty() ? std::string(" without an OAuth error.") : ": \"" + detail + "\".");
    if (response.status == 429) {
        return make_error("oauth.error", message,
                          "Rate limited: wait before retrying (honour Retry-After when present) and back off "
                          "exponentially; never retry a refresh in a tight loop.");
    }
    if (response.status >= 500) {
        return make_error("oauth.error", message,
                          "The provider's token endpoint is failing. Retry in a minute; if it persists, check the "
                          "provider's status page.");
    }
    if (response.status >= 200 && response.status < 300) {
        return make_error("oauth.missing_access_token", message,
                          "A successful token response carries access_token (RFC 6749 §5.1). Check the token URL: "
                          "this looks like another endpoint's answer.");
    }
    return make_error("oauth.error", message,
                      "The token endpoint refused the request without an OAuth error body; check the token URL and "
                      "the request's content type.");
}

Result<TokenSet> parse_token_response(const HttpResponse& response, int64_t now, const TokenSet* previous,
                                      bool scope_names_account) {
    if (response.status < 200 || response.status >= 300) return parse_token_error(response);
    json body = json::parse(response.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return not_json(response);
    if (body.contains("error")) return parse_token_error(response);

    TokenSet out;
    out.access_token = string_member(body, "access_token");
    if (out.access_token.empty()) {
        return make_error("oauth.missing_access_token",
                          "The token endpoint answered " + status_text(response.status) +
                              " with JSON but no access_token.",
                          "A successful token response carries access_token (RFC 6749 §5.1). Check the token URL: "
                          "this looks like another endpoint's answer.");
    }
    out.token_type = string_member(body, "token_type");
    // RFC 6749 §6: the server MAY issue a new refresh token; when it does not, the old one stays valid.
    out.refresh_token = string_member(body, "refresh_token");
    if (out.refresh_token.empty() && previous != nullptr) out.refresh_token = previous->refresh_token;
    // RFC 6749 §5.1: scope is OPTIONAL when identical to the one requested.
    out.scope = string_member(body, "scope");
    if (out.scope.empty() && previous != nullptr) out.scope = previous->scope;
    if (scope_names_account) out.account = account_from_scope(out.scope);
    if (out.account.empty() && previous != nullptr) out.account = previous->account;
    out.expires_in = expires_in_member(body);
    out.obtained_at = now;
    out.expires_at = out.expires_in > 0 ? now + out.expires_in : 0;
    return out;
}

bool needs_refresh(const TokenSet& tokens, int64_t now, int64_t margin) {
    if (tokens.expires_at == 0) return false;
    return now + margin >= tokens.expires_at;
}

std::string account_from_scope(std::string_view scope) {
    size_t bar = scope.find('|');
    if (bar == std::string_view::npos) return {};
    std::string_view rest = scope.substr(bar + 1);
    size_t end = rest.find_first_of(" \t");
    return std::string(trim(rest.substr(0, end)));
}

bool is_dead_grant(const Error& error) {
    return error.code == "oauth.invalid_grant" || error.code == "oauth.invalid_refresh_token";
}

}  // namespace keyrelay::oauth2
