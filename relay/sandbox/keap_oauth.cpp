// The fake Keap's OAuth 2.0: the authorize page (keap.md "OAuth2 authorization code flow") and the token
// endpoint (keap.md: form bodies only; Basic or body credentials; rotation).
#include "keap.h"

namespace keyrelay::sandbox::keap {
namespace {

struct AuthorizeParams {
    std::string client_id, redirect_uri, response_type, scope, state;
};

AuthorizeParams authorize_params(const Params& p) {
    AuthorizeParams a;
    a.client_id = param(p, "client_id").value_or("");
    a.redirect_uri = param(p, "redirect_uri").value_or("");
    a.response_type = param(p, "response_type").value_or("code");   // Keap: "Defaults to code"
    a.scope = param(p, "scope").value_or("full");                   // Keap: "Defaults to full"
    a.state = param(p, "state").value_or("");
    return a;
}

Reply approve(State& s, const AuthorizeParams& a) {
    std::string code = issue_code(s, Provider::keap, a.client_id, a.redirect_uri, scope());
    // keap.md: "?code=...&scope=full%7Cab123.infusionsoft.com&state=..."
    return redirect_to(add_query(a.redirect_uri, {{"code", code}, {"scope", scope()}, {"state", a.state}}));
}

Reply deny(const AuthorizeParams& a) {
    // keap.md (#115): "?state=&error=access_denied&error_description=User+denied+access+to+resource"
    return redirect_to(add_query(a.redirect_uri, {{"state", a.state},
                                                  {"error", "access_denied"},
                                                  {"error_description", "User denied access to resource"}}));
}

Reply token_answer(const App& app, const std::string& access, const std::string& refresh) {
    Reply r = json_reply(200, json{{"access_token", access},
                                   {"token_type", "bearer"},
                                   {"expires_in", app.access_ttl},
                                   {"refresh_token", refresh},
                                   {"scope", scope()}});
    r.with("Cache-Control", "no-store").with("Pragma", "no-cache");
    return r;
}

}  // namespace

std::string scope() { return std::string("full|") + ids::keap_account; }

Reply authorize(State& s, const Req& r) {
    if (r.method != "GET" && r.method != "POST") return error_page(405, "Method not allowed", "Use GET or POST.");
    Params p;
    if (r.method == "POST") {
        auto body = form_decode(r.raw.body);
        if (!body) return error_page(400, "Bad request", "The form could not be read.");
        p = std::move(*body);   // the form's fields first; param() takes the first match
    }
    p.insert(p.end(), r.query.begin(), r.query.end());
    AuthorizeParams a = authorize_params(p);
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto bad = check_client_redirect(s, Provider::keap, a.client_id, a.redirect_uri)) return *bad;
    // RFC 6749 §4.1.2.1: once the redirect URI is trusted, errors go back to the client as redirect parameters.
    if (a.response_type != "code") {
        return redirect_to(add_query(a.redirect_uri, {{"error", "unsupported_response_type"},
                                                      {"error_description", "response_type must be code"},
                                                      {"state", a.state}}));
    }
    if (a.scope != "full") {
        return redirect_to(add_query(a.redirect_uri, {{"error", "invalid_scope"},
                                                      {"error_description", "The only valid scope is full"},
                                                      {"state", a.state}}));
    }
    if (r.method == "POST") {
        std::string decision = param(p, "decision").value_or("");
        if (decision == "allow") return approve(s, a);
        if (decision == "deny") return deny(a);
        return error_page(400, "Bad request", "Choose Allow or Deny.");
    }
    if (s.auto_approve) return approve(s, a);

    std::string body;
    body += "<h1>Allow <strong id=\"app-name\">" + html_escape(ids::app_name) + "</strong> to access your Keap "
            "account?</h1>";
    body += "<p>Keap account: <strong id=\"account\">" + html_escape(ids::keap_account) + "</strong></p>";
    body += "<p class=\"who\">Signed in as Sandbox Admin (admin@example.com)</p>";
    body += "<p>" + html_escape(ids::app_name) + " will be able to:</p><ul><li>read and change your contacts, "
            "and everything else in the account (scope <code>full</code>)</li></ul>";
    body += consent_form(kAuthorize,
                         {{"client_id", a.client_id},
                          {"redirect_uri", a.redirect_uri},
                          {"response_type", a.response_type},
                          {"scope", a.scope},
                          {"state", a.state}},
                         "Allow", "Deny");
    return html_reply(200, page("Authorize " + std::string(ids::app_name) + " - Keap", body));
}

// Token endpoint (keap.md: form bodies only; Basic or body credentials; rotation)
Reply token(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    if (r.method != "POST") return oauth_error(405, "invalid_request", "Method not allowed");
    // keap.md (forum 16256): only application/x-www-form-urlencoded is read; a JSON body looks like no parameters.
    Params body;
    if (istarts_with(r.header("Content-Type").value_or(""), "application/x-www-form-urlencoded")) {
        auto decoded = form_decode(r.raw.body);
        if (!decoded) return oauth_error(400, "invalid_request", "Malformed request body");
        body = std::move(*decoded);
    }
    const std::string grant_type = param(body, "grant_type").value_or("");
    if (grant_type.empty()) return oauth_error(400, "invalid_request", "response_type or grant_type is required");

    // Client authentication, RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded id and secret, or the body.
    std::string id, secret;
    if (auto auth = r.header("Authorization")) {
        if (!istarts_with(*auth, "basic ")) {
            // The forum user's bug: the base64 credentials without the "Basic " scheme. Keap answers 401 with
            // this body (infusionsoft-php #260).
            return oauth_error(401, "invalid_grant", "Unable to authenticate username and password")
                .with("WWW-Authenticate", "Basic realm=\"keap\"");
        }
        // RFC 6749 §2.3.1: base64(urlencode(id) ":" urlencode(secret)); both halves are form-urldecoded.
        std::optional<std::pair<std::string, std::string>> creds;
        if (auto decoded = base64_decode(std::string_view(*auth).substr(6))) {
            const size_t colon = decoded->find(':');
            if (colon != std::string::npos) {
                auto rid = percent_decode(std::string_view(*decoded).substr(0, colon), true);
                auto rsecret = percent_decode(std::string_view(*decoded).substr(colon + 1), true);
                if (rid && rsecret) creds = std::make_pair(*rid, *rsecret);
            }
        }
        if (!creds) {
            return oauth_error(401, "invalid_client", "Invalid client credentials in the Basic authorization header")
                .with("WWW-Authenticate", "Basic realm=\"keap\"");
        }
        id = creds->first;
        secret = creds->second;
    } else {
        id = param(body, "client_id").value_or("");
        secret = param(body, "client_secret").value_or("");
    }

    std::lock_guard<std::mutex> lock(s.mu);
    const bool is_refresh = grant_type == "refresh_token";
    App* app = s.authenticate_client(id, secret, Provider::keap, is_refresh);
    if (!app) return oauth_error(401, "invalid_client", "Invalid client id or secret");
    TokenStats& st = s.stats_for(id, Provider::keap);
    const int64_t now = s.now();

    if (grant_type == "authorization_code") {
        const std::string code = param(body, "code").value_or("");
        auto it = s.codes.find(code);
        if (it == s.codes.end() || it->second.provider != Provider::keap || it->second.client_id != id ||
            it->second.used || now >= it->second.expires_at) {
            st.exchange_failures++;
            return oauth_error(400, "invalid_grant", "Invalid authorization code");
        }
        // The code is bound to the redirect URI it was issued for (RFC 6749 §4.1.3); keap.md (#248).
        if (param(body, "redirect_uri").value_or("") != it->second.redirect_uri) {
            st.exchange_failures++;
            return oauth_error(400, "invalid_request", "Invalid redirect_uri");
        }
        it->second.used = true;
        Grant g;
        g.id = s.next_grant++;
        g.provider = Provider::keap;
        g.client_id = id;
        g.scope = it->second.scope;
        g.user_email = ids::jira_admin_email;
        g.created_at = now;
        s.grants[g.id] = g;
        auto [access, refresh] = s.issue_tokens(g, true);
        st.exchanges++;
        return token_answer(*app, access, refresh);
    }
    if (is_refresh) {
        const std::string rt = param(body, "refresh_token").value_or("");
        auto it = s.refresh_tokens.find(rt);
        const Grant* g = nullptr;
        if (it != s.refresh_tokens.end()) {
            auto gi = s.grants.find(it->second.grant);
            if (gi != s.grants.end()) g = &gi->second;
        }
        // keap.md: refresh tokens rotate and the old one is dead at once; expired ones are refused.
        if (!g || g->revoked || g->client_id != id || it->second.used_at != 0 || now >= it->second.expires_at) {
            st.refresh_failures++;
            return oauth_error(400, "invalid_grant", "Invalid refresh token");
        }
        it->second.used_at = now;
        // The old access token is left alone: it stays valid until its own expiry.
        auto [access, refresh] = s.issue_tokens(*g, true);
        st.refreshes++;
        return token_answer(*app, access, refresh);
    }
    return oauth_error(400, "unsupported_grant_type", "Unsupported grant type: " + grant_type);
}

}  // namespace keyrelay::sandbox::keap
