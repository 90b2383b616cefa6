// The fake Jira: Atlassian 3LO (authorize, JSON token endpoint with rotation and its 10-minute leeway,
// accessible-resources), Cloud REST through the api.atlassian.com-style gateway, the site REST with API-token
// Basic auth, and the Data Center REST with PATs. Facts from docs/reference/jira.md (cited as jira.md).
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "common.h"

namespace keyrelay::sandbox {
namespace {

constexpr const char* kAuthorize = "/jira/authorize";
constexpr const char* kToken = "/jira/oauth/token";
constexpr const char* kResources = "/jira/oauth/token/accessible-resources";
constexpr const char* kGateway = "/jira/ex/jira/";
constexpr const char* kSite = "/jira/rest/api/";
constexpr int64_t kReuseLeeway = 600;             // jira.md: reuse within 10 minutes is tolerated
constexpr int64_t kAbsoluteLifetime = 365 * 86400;   // jira.md: absolute expiry 365 days

std::vector<std::string> split_scopes(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool has_scope(const std::string& scopes, const std::string& want) {
    auto v = split_scopes(scopes);
    return std::find(v.begin(), v.end(), want) != v.end();
}

// Classic 3LO scopes, plus the granular "verb:thing:jira" form.
bool known_scope(const std::string& s) {
    static const std::set<std::string> classic = {
        "read:jira-user",  "read:jira-work",          "write:jira-work",     "manage:jira-project",
        "manage:jira-configuration", "manage:jira-webhook", "manage:jira-data-provider", "read:me",
        "read:account",    "offline_access",          "report:personal-data"};
    if (classic.count(s)) return true;
    return std::count(s.begin(), s.end(), ':') == 2 && s.size() > 10 && s.compare(s.size() - 5, 5, ":jira") == 0;
}

const char* scope_description(const std::string& s) {
    if (s == "read:jira-user") return "View user profiles, including names and email addresses they share";
    if (s == "read:jira-work") return "Read Jira project and issue data";
    if (s == "write:jira-work") return "Create and edit issues";
    if (s == "offline_access") return "Keep access while you are away (refresh tokens)";
    if (s == "read:me") return "View your profile";
    return "Access your Jira data";
}

// ---------------------------------------------------------------------------------------------------------------
// 3LO authorize

struct AuthorizeParams {
    std::string client_id, redirect_uri, response_type, scope, state, audience, prompt;
};

AuthorizeParams authorize_params(const Params& p) {
    AuthorizeParams a;
    a.client_id = param(p, "client_id").value_or("");
    a.redirect_uri = param(p, "redirect_uri").value_or("");
    a.response_type = param(p, "response_type").value_or("");
    a.scope = param(p, "scope").value_or("");
    a.state = param(p, "state").value_or("");
    a.audience = param(p, "audience").value_or("");
    a.prompt = param(p, "prompt").value_or("");
    return a;
}

Reply redirect_error(const AuthorizeParams& a, const char* error, const std::string& description) {
    return redirect_to(add_query(a.redirect_uri, {{"error", error}, {"error_description", description},
                                                  {"state", a.state}}));
}

Reply approve(State& s, const AuthorizeParams& a) {
    std::string code = issue_code(s, Provider::jira, a.client_id, a.redirect_uri, a.scope);
    return redirect_to(add_query(a.redirect_uri, {{"code", code}, {"state", a.state}}));
}

Reply authorize(State& s, const Req& r) {
    if (r.method != "GET" && r.method != "POST") return error_page(405, "Method not allowed", "Use GET or POST.");
    Params p;
    if (r.method == "POST") {
        auto body = form_decode(r.raw.body);
        if (!body) return error_page(400, "Bad request", "The form could not be read.");
        p = std::move(*body);
    }
    p.insert(p.end(), r.query.begin(), r.query.end());
    AuthorizeParams a = authorize_params(p);
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto bad = check_client_redirect(s, Provider::jira, a.client_id, a.redirect_uri)) return *bad;
    if (a.response_type != "code") {
        return redirect_error(a, "unsupported_response_type", "response_type must be code");
    }
    // jira.md: audience=api.atlassian.com is part of every 3LO authorize URL.
    if (a.audience != "api.atlassian.com") {
        return redirect_error(a, "invalid_request", "audience must be api.atlassian.com");
    }
    auto scopes = split_scopes(a.scope);
    if (scopes.empty()) return redirect_error(a, "invalid_scope", "scope is required");
    for (const auto& sc : scopes) {
        if (!known_scope(sc)) return redirect_error(a, "invalid_scope", "Unknown scope: " + sc);
    }
    if (r.method == "POST") {
        std::string decision = param(p, "decision").value_or("");
        if (decision == "allow") return approve(s, a);
        if (decision == "deny") return redirect_error(a, "access_denied", "User did not authorize the request");
        return error_page(400, "Bad request", "Choose Accept or Cancel.");
    }
    if (s.auto_approve) return approve(s, a);

    std::string body;
    body += "<h1><strong id=\"app-name\">" + html_escape(ids::app_name) + "</strong> is requesting access to your "
            "Atlassian account</h1>";
    body += "<p>Site: <strong id=\"account\">" + html_escape(std::string(ids::jira_site_name) + ".atlassian.net") +
            "</strong></p>";
    body += "<p class=\"who\">Signed in as Sandbox Admin (admin@example.com)</p><p>It will be able to:</p><ul>";
    for (const auto& sc : scopes) {
        body += "<li>" + html_escape(scope_description(sc)) + " <code>" + html_escape(sc) + "</code></li>";
    }
    body += "</ul>";
    body += consent_form(kAuthorize,
                         {{"audience", a.audience},
                          {"client_id", a.client_id},
                          {"scope", a.scope},
                          {"redirect_uri", a.redirect_uri},
                          {"state", a.state},
                          {"response_type", a.response_type},
                          {"prompt", a.prompt}},
                         "Accept", "Cancel");
    return html_reply(200, page("Authorize " + std::string(ids::app_name) + " - Atlassian", body));
}

// ---------------------------------------------------------------------------------------------------------------
// 3LO token endpoint: a JSON body (jira.md), rotation with a 10-minute reuse leeway.

Reply token_answer(const App& app, const Grant& g, const std::string& access, const std::string& refresh) {
    json body{{"access_token", access}, {"expires_in", app.access_ttl}, {"token_type", "Bearer"}, {"scope", g.scope}};
    if (!refresh.empty()) body["refresh_token"] = refresh;
    Reply r = json_reply(200, body);
    r.with("Cache-Control", "no-store").with("Pragma", "no-cache");
    return r;
}

Reply dead_refresh() { return oauth_error(403, "invalid_grant", "Unknown or invalid refresh token."); }

Reply token(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    if (r.method != "POST") return oauth_error(405, "invalid_request", "Method not allowed");
    if (!icontains(r.header("Content-Type").value_or(""), "application/json")) {
        return oauth_error(400, "invalid_request", "The request body must be JSON (Content-Type: application/json)");
    }
    auto body = parse_json(r.raw.body);
    if (!body || !body->is_object()) return oauth_error(400, "invalid_request", "The request body is not valid JSON");
    const std::string grant_type = jstr(*body, "grant_type");
    std::string id = jstr(*body, "client_id"), secret = jstr(*body, "client_secret");
    // Atlassian documents the credentials in the JSON body; an RFC 6749 §2.3.1 Basic header is accepted as well.
    if (id.empty() && secret.empty()) {
        if (auto auth = r.header("Authorization"); auth && istarts_with(*auth, "basic ")) {
            auto decoded = base64_decode(std::string_view(*auth).substr(6));
            size_t colon = decoded ? decoded->find(':') : std::string::npos;
            if (colon != std::string::npos) {
                auto rid = percent_decode(std::string_view(*decoded).substr(0, colon), true);
                auto rsecret = percent_decode(std::string_view(*decoded).substr(colon + 1), true);
                if (rid && rsecret) {
                    id = *rid;
                    secret = *rsecret;
                }
            }
        }
    }

    std::lock_guard<std::mutex> lock(s.mu);
    const bool is_refresh = grant_type == "refresh_token";
    App* app = s.authenticate_client(id, secret, Provider::jira, is_refresh);
    if (!app) return oauth_error(401, "access_denied", "Unauthorized");
    TokenStats& st = s.stats_for(id, Provider::jira);
    const int64_t now = s.now();
    if (grant_type == "authorization_code") {
        auto it = s.codes.find(jstr(*body, "code"));
        if (it == s.codes.end() || it->second.provider != Provider::jira || it->second.client_id != id ||
            it->second.used || now >= it->second.expires_at) {
            st.exchange_failures++;
            return oauth_error(403, "invalid_grant", "Invalid authorization code");
        }
        if (jstr(*body, "redirect_uri") != it->second.redirect_uri) {
            st.exchange_failures++;
            return oauth_error(403, "invalid_grant", "Invalid redirect_uri");
        }
        it->second.used = true;
        Grant g;
        g.id = s.next_grant++;
        g.provider = Provider::jira;
        g.client_id = id;
        g.scope = it->second.scope;
        g.user_email = ids::jira_admin_email;
        g.created_at = now;
        s.grants[g.id] = g;
        // jira.md: offline_access in the scope is what earns a refresh token.
        auto [access, refresh] = s.issue_tokens(g, has_scope(g.scope, "offline_access"));
        st.exchanges++;
        return token_answer(*app, g, access, refresh);
    }
    if (is_refresh) {
        auto it = s.refresh_tokens.find(jstr(*body, "refresh_token"));
        Grant* g = nullptr;
        if (it != s.refresh_tokens.end()) {
            auto gi = s.grants.find(it->second.grant);
            if (gi != s.grants.end()) g = &gi->second;
        }
        if (!g || g->revoked || g->client_id != id || now >= it->second.expires_at ||
            now >= g->created_at + kAbsoluteLifetime) {
            st.refresh_failures++;
            return dead_refresh();
        }
        if (it->second.used_at != 0) {
            if (now - it->second.used_at > kReuseLeeway) {
                // jira.md: reuse outside the leeway invalidates every token of the grant (forced re-consent).
                s.revoke_grant(g->id);
                st.refresh_failures++;
                return dead_refresh();
            }
            // Inside the leeway the rotated token still works and yields a fresh pair; the pair issued by the
            // first use stays valid too.
            st.reuses++;
        } else {
            it->second.used_at = now;
        }
        auto [access, refresh] = s.issue_tokens(*g, true);
        st.refreshes++;
        return token_answer(*app, *g, access, refresh);
    }
    return oauth_error(400, "unsupported_grant_type", "Unsupported grant type: " + grant_type);
}

// ---------------------------------------------------------------------------------------------------------------
// REST

Reply gateway_unauthorized(const char* message = "Unauthorized") {
    return json_reply(401, json{{"code", 401}, {"message", message}});
}

Reply jira_error(int status, const std::string& message) {
    return json_reply(status, json{{"errorMessages", json::array({message})}, {"errors", json::object()}});
}

json avatar_urls(const JiraUser& u) {
    const std::string base = "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/" + u.account_id;
    return json{{"48x48", base + "/48"}, {"24x24", base + "/24"}, {"16x16", base + "/16"}, {"32x32", base + "/32"}};
}

json cloud_user(const JiraUser& u, const std::string& rest_base, bool show_email) {
    json j{{"self", rest_base + "/user?accountId=" + u.account_id},
           {"accountId", u.account_id},
           {"accountType", u.account_type}};
    // jira.md: a user who hides their email has no emailAddress in the answer.
    if (show_email && !u.email_hidden) j["emailAddress"] = u.email;
    j["avatarUrls"] = avatar_urls(u);
    j["displayName"] = u.display_name;
    j["active"] = u.active;
    j["timeZone"] = u.time_zone;
    j["locale"] = "en_US";
    return j;
}

json dc_user(const JiraUser& u, const std::string& rest_base) {
    return json{{"self", rest_base + "/user?username=" + u.username},
                {"key", u.username},
                {"name", u.username},
                {"emailAddress", u.email},
                {"avatarUrls", avatar_urls(u)},
                {"displayName", u.display_name},
                {"active", u.active},
                {"deleted", false},
                {"timeZone", u.time_zone},
                {"locale", "en_US"}};
}

bool word_prefix(const std::string& text, const std::string& q) {
    const std::string t = to_lower(text);
    if (starts_with(t, q)) return true;
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == ' ' && starts_with(std::string_view(t).substr(i + 1), q)) return true;
    }
    return false;
}

// jira.md: query matches displayName and emailAddress by prefix, case-insensitively. A hidden email is matched only
// by the exact address (as the user pickers do), and never shown.
bool cloud_match(const JiraUser& u, const std::string& query) {
    const std::string q = to_lower(query);
    if (q.empty()) return false;
    if (word_prefix(u.display_name, q)) return true;
    if (u.email_hidden) return iequals(u.email, q);
    return istarts_with(u.email, q);
}

// Data Center: username= matches the username, the display name and the email address by prefix.
bool dc_match(const JiraUser& u, const std::string& query) {
    const std::string q = to_lower(query);
    if (q.empty()) return false;
    return istarts_with(u.username, q) || word_prefix(u.display_name, q) || istarts_with(u.email, q);
}

struct Paging {
    int64_t start = 0, max = 50;
};

std::optional<Paging> paging(const Req& r, int64_t max_cap) {
    Paging p;
    auto parse = [](const std::string& s, int64_t& out) {
        if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
        out = std::stoll(s);
        return true;
    };
    if (auto v = r.q("startAt"); v && !parse(*v, p.start)) return std::nullopt;
    if (auto v = r.q("maxResults"); v && !parse(*v, p.max)) return std::nullopt;
    p.max = std::min(p.max, max_cap);
    return p;
}

enum class Mode { cloud, data_center };

// Runs a REST call for `caller`. rest_base is the public prefix the caller used (for "self" links).
Reply rest_call(State& s, const Req& r, Mode mode, const JiraUser& caller, const std::string& sub,
                const std::string& rest_base) {
    if (r.method != "GET") return jira_error(405, "Method " + r.method + " is not allowed here");
    if (sub == "/myself") {
        if (mode == Mode::data_center) return json_reply(200, dc_user(caller, rest_base));
        json me = cloud_user(caller, rest_base, true);
        if (caller.email_hidden) me["emailAddress"] = caller.email;   // one always sees one's own address
        me["groups"] = {{"size", 1}, {"items", json::array()}};
        me["applicationRoles"] = {{"size", 1}, {"items", json::array()}};
        me["expand"] = "groups,applicationRoles";
        return json_reply(200, me);
    }
    if (sub == "/user/search") {
        auto pg = paging(r, mode == Mode::cloud ? 1000 : 100);
        if (!pg) return jira_error(400, "startAt and maxResults must be non-negative integers");
        std::string q;
        if (mode == Mode::cloud) {
            // jira.md: username= is refused in Cloud.
            if (r.q("username")) {
                return jira_error(400, "The query parameter 'username' is not supported in GDPR strict mode.");
            }
            auto query = r.q("query"), account = r.q("accountId");
            if (!query && !account) {
                return jira_error(400, "One of the query parameters 'query', 'accountId' or 'property' is required.");
            }
            json out = json::array();
            // jira.md: without "Browse users and groups" the answer is an EMPTY array, not an error.
            if (!caller.browse_users) return json_reply(200, out);
            int64_t seen = 0;
            for (const auto& u : s.users) {
                if (!u.active) continue;
                bool match = query ? cloud_match(u, *query) : u.account_id == *account;
                if (match && account && query) match = u.account_id == *account;
                if (!match) continue;
                if (seen++ < pg->start) continue;
                if (static_cast<int64_t>(out.size()) >= pg->max) break;
                out.push_back(cloud_user(u, rest_base, true));
            }
            return json_reply(200, out);
        }
        auto username = r.q("username");
        if (!username) return jira_error(400, "The username query parameter was not provided");
        const bool include_inactive = r.q("includeInactive").value_or("false") == "true";
        const bool include_active = r.q("includeActive").value_or("true") != "false";
        json out = json::array();
        if (!caller.browse_users) return json_reply(200, out);
        int64_t seen = 0;
        for (const auto& u : s.users) {
            if ((u.active && !include_active) || (!u.active && !include_inactive)) continue;
            if (!dc_match(u, *username)) continue;
            if (seen++ < pg->start) continue;
            if (static_cast<int64_t>(out.size()) >= pg->max) break;
            out.push_back(dc_user(u, rest_base));
        }
        return json_reply(200, out);
    }
    if (sub == "/user") {
        auto key = mode == Mode::cloud ? r.q("accountId") : r.q("username");
        for (const auto& u : s.users) {
            if (key && (mode == Mode::cloud ? u.account_id : u.username) == *key) {
                return json_reply(200, mode == Mode::cloud ? cloud_user(u, rest_base, true) : dc_user(u, rest_base));
            }
        }
        return jira_error(404, "The user with the given identifier does not exist.");
    }
    return jira_error(404, "null for uri: " + rest_base + sub);
}

// Per-credential burst bucket. Caller holds s.mu. On success adds nothing unless the bucket is nearly empty.
std::optional<Reply> meter(State& s, const std::string& bucket, Reply& headers_out) {
    const double left = s.take_token(bucket, s.limits.jira_burst, s.limits.jira_per_second);
    if (left < 0) return jira_throttled(s, -left, s.limits.jira_burst);
    if (left < 0.2 * s.limits.jira_burst) headers_out.with("X-RateLimit-NearLimit", "true");
    return std::nullopt;
}

std::optional<std::pair<std::string, std::string>> basic_credentials(const Req& r) {
    auto auth = r.header("Authorization");
    if (!auth || !istarts_with(*auth, "basic ")) return std::nullopt;
    auto decoded = base64_decode(std::string_view(*auth).substr(6));
    if (!decoded) return std::nullopt;
    size_t colon = decoded->find(':');
    if (colon == std::string::npos) return std::nullopt;
    return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

std::optional<std::string> bearer_of(const Req& r) {
    auto auth = r.header("Authorization");
    if (!auth || !istarts_with(*auth, "bearer ")) return std::nullopt;
    return auth->substr(7);
}

// Caller holds s.mu. A live 3LO grant for the Bearer token, or nullptr.
const Grant* jira_grant(State& s, const Req& r) {
    auto token = bearer_of(r);
    if (!token) return nullptr;
    const Grant* g = s.grant_for_access(*token);
    return (g && g->provider == Provider::jira) ? g : nullptr;
}

Reply with_headers(Reply out, const Reply& headers) {
    for (const auto& h : headers.headers) out.headers.push_back(h);
    return out;
}

Reply accessible_resources(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    std::lock_guard<std::mutex> lock(s.mu);
    const Grant* g = jira_grant(s, r);
    if (!g) return gateway_unauthorized();
    json scopes = json::array();
    for (const auto& sc : split_scopes(g->scope)) {
        if (sc != "offline_access") scopes.push_back(sc);
    }
    return json_reply(200, json::array({json{{"id", ids::jira_cloud_id},
                                             {"url", ids::jira_site_url},
                                             {"name", ids::jira_site_name},
                                             {"scopes", scopes},
                                             {"avatarUrl", "https://site-admin-avatar-cdn.prod.public.atl-paas.net/"
                                                           "avatars/240/rocket.png"}}}));
}

// /jira/ex/jira/{cloudid}/rest/api/{2|3}/...: the api.atlassian.com gateway, 3LO Bearer tokens.
Reply gateway(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    std::string rest = r.path.substr(std::string(kGateway).size());
    size_t slash = rest.find('/');
    std::string cloud = rest.substr(0, slash);
    std::string after = slash == std::string::npos ? "" : rest.substr(slash);
    std::lock_guard<std::mutex> lock(s.mu);
    const Grant* g = jira_grant(s, r);
    if (!g) return gateway_unauthorized();
    if (cloud != ids::jira_cloud_id) return jira_error(404, "Site not found for cloud id " + cloud);
    std::string version;
    if (starts_with(after, "/rest/api/3/") || starts_with(after, "/rest/api/2/")) version = after.substr(10, 1);
    if (version.empty()) return jira_error(404, "null for uri: " + r.path);
    if (!has_scope(g->scope, "read:jira-user")) return gateway_unauthorized("Unauthorized; scope does not match");
    const JiraUser* caller = s.user_by_email(g->user_email);
    if (!caller) return gateway_unauthorized();
    Reply headers;
    if (auto throttled = meter(s, "jira-oauth:" + g->client_id, headers)) return *throttled;
    const std::string rest_base = r.base_url + kGateway + cloud + "/rest/api/" + version;
    return with_headers(rest_call(s, r, Mode::cloud, *caller, after.substr(11), rest_base), headers);
}

// /jira/rest/api/{2|3}/...: the site itself. Basic email:api_token (Cloud), or a PAT Bearer (Data Center, v2 only).
Reply site(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    std::string after = r.path.substr(std::string(kSite).size());   // "3/user/search"
    std::string version = after.substr(0, after.find('/'));
    std::string sub = after.find('/') == std::string::npos ? "" : after.substr(after.find('/'));
    if (version != "2" && version != "3") return jira_error(404, "null for uri: " + r.path);
    const std::string rest_base = r.base_url + kSite + version;
    auto unauthenticated = [] {
        return jira_error(401, "Client must be authenticated to access this resource.")
            .with("WWW-Authenticate", "Basic realm=\"protected-area\"");
    };
    std::lock_guard<std::mutex> lock(s.mu);
    Reply headers;
    if (auto basic = basic_credentials(r)) {
        const auto& [email, token] = *basic;
        const bool admin = email == ids::jira_admin_email && token == ids::jira_api_token;
        const bool intern = email == ids::jira_no_browse_email && token == ids::jira_no_browse_api_token;
        const JiraUser* caller = (admin || intern) ? s.user_by_email(email) : nullptr;
        if (!caller) return unauthenticated();
        if (auto throttled = meter(s, "jira-basic:" + email, headers)) return *throttled;
        return with_headers(rest_call(s, r, Mode::cloud, *caller, sub, rest_base), headers);
    }
    if (auto token = bearer_of(r); token && *token == ids::jira_pat) {
        // Data Center has only REST v2; v3 does not exist there.
        if (version != "2") return jira_error(404, "null for uri: " + rest_base + sub);
        const JiraUser* caller = s.user_by_email(ids::jira_admin_email);
        if (!caller) return unauthenticated();
        if (auto throttled = meter(s, "jira-pat", headers)) return *throttled;
        return with_headers(rest_call(s, r, Mode::data_center, *caller, sub, rest_base), headers);
    }
    return unauthenticated();
}

}  // namespace

Reply jira_throttled(State& s, double retry_after_seconds, double limit) {
    // jira.md: 429 with Retry-After (seconds), X-RateLimit-Limit/-Remaining/-Reset (ISO 8601), RateLimit-Reason.
    const int64_t wait = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(retry_after_seconds)));
    Reply r = jira_error(429, "Rate limit exceeded.");
    r.with("Retry-After", std::to_string(wait))
        .with("X-RateLimit-Limit", std::to_string(static_cast<int64_t>(limit)))
        .with("X-RateLimit-Remaining", "0")
        .with("X-RateLimit-Reset", iso8601(s.now() + wait))
        .with("RateLimit-Reason", "jira-burst-based");
    return r;
}

std::optional<Reply> route_jira(State& s, const Req& r) {
    if (r.path == kAuthorize) {
        if (r.method == "OPTIONS") return deny_cross_origin(r);
        return authorize(s, r);
    }
    if (r.path == kToken) return token(s, r);
    if (r.path == kResources) return accessible_resources(s, r);
    if (starts_with(r.path, kGateway)) return gateway(s, r);
    if (starts_with(r.path, kSite)) return site(s, r);
    if (auto denied = deny_cross_origin(r)) return *denied;
    return std::nullopt;
}

}  // namespace keyrelay::sandbox
