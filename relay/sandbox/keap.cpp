// The fake Keap: OAuth2 authorize page and token endpoint, REST v1/v2 contacts, XML-RPC, rate limits.
// Every behaviour here follows ../../../shared/reference/keap.md (cited as keap.md).
#include <algorithm>
#include <cmath>
#include <ctime>

#include "common.h"
#include "keyrelay/xmlrpc.h"

namespace keyrelay::sandbox {
namespace {

constexpr const char* kRest1 = "/keap/crm/rest/v1";
constexpr const char* kRest2 = "/keap/crm/rest/v2";
constexpr const char* kXmlRpc = "/keap/crm/xmlrpc/v1";
constexpr const char* kAuthorize = "/keap/app/oauth/authorize";
constexpr const char* kToken = "/keap/token";

std::string keap_scope() { return std::string("full|") + ids::keap_account; }

// ---------------------------------------------------------------------------------------------------------------
// OAuth2 authorize (keap.md "OAuth2 authorization code flow")

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
    std::string code = issue_code(s, Provider::keap, a.client_id, a.redirect_uri, keap_scope());
    // keap.md: "?code=...&scope=full%7Cab123.infusionsoft.com&state=..."
    return redirect_to(add_query(a.redirect_uri, {{"code", code}, {"scope", keap_scope()}, {"state", a.state}}));
}

Reply deny(const AuthorizeParams& a) {
    // keap.md (#115): "?state=&error=access_denied&error_description=User+denied+access+to+resource"
    return redirect_to(add_query(a.redirect_uri, {{"state", a.state},
                                                  {"error", "access_denied"},
                                                  {"error_description", "User denied access to resource"}}));
}

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

// ---------------------------------------------------------------------------------------------------------------
// Token endpoint (keap.md: form bodies only; Basic or body credentials; rotation)

Reply token_answer(const App& app, const std::string& access, const std::string& refresh) {
    Reply r = json_reply(200, json{{"access_token", access},
                                   {"token_type", "bearer"},
                                   {"expires_in", app.access_ttl},
                                   {"refresh_token", refresh},
                                   {"scope", keap_scope()}});
    r.with("Cache-Control", "no-store").with("Pragma", "no-cache");
    return r;
}

Reply token(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    if (r.method != "POST") return oauth_error(405, "invalid_request", "Method not allowed");
    // keap.md (forum 16256): only application/x-www-form-urlencoded is read; a JSON body looks like no parameters.
    Params body;
    if (starts_with(lower(r.header("Content-Type").value_or("")), "application/x-www-form-urlencoded")) {
        auto decoded = form_decode(r.raw.body);
        if (!decoded) return oauth_error(400, "invalid_request", "Malformed request body");
        body = std::move(*decoded);
    }
    const std::string grant_type = param(body, "grant_type").value_or("");
    if (grant_type.empty()) return oauth_error(400, "invalid_request", "response_type or grant_type is required");

    // Client authentication, RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded id and secret, or the body.
    std::string id, secret;
    if (auto auth = r.header("Authorization")) {
        if (!starts_with(lower(*auth), "basic ")) {
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

// ---------------------------------------------------------------------------------------------------------------
// API authentication and rate limits (keap.md "Credentials that need no OAuth flow", "Rate limits")

struct Credential {
    bool api_key = false;   // PAT or SAK (X-Keap-API-Key); else an OAuth access token
    std::string bucket;     // rate-limit key: the API key, or the OAuth client (limits are per client)
};

// The Apigee gateway in front of Keap answers credential failures itself, in its own JSON.
Reply gateway_fault(int status, const char* faultstring, const char* errorcode) {
    return json_reply(status, json{{"fault", {{"faultstring", faultstring}, {"detail", {{"errorcode", errorcode}}}}}});
}

std::optional<std::string> bearer_of(const Req& r) {
    auto auth = r.header("Authorization");
    if (!auth || !starts_with(lower(*auth), "bearer ")) return std::nullopt;
    return auth->substr(7);
}

// Caller holds s.mu.
std::optional<Reply> check_bearer(State& s, const std::string& token, Credential& cred) {
    bool expired = false;
    const Grant* g = s.grant_for_access(token, &expired);
    if (!g || g->provider != Provider::keap) {
        if (expired) return gateway_fault(401, "Access Token expired", "keymanagement.service.access_token_expired");
        return gateway_fault(401, "Invalid Access Token", "keymanagement.service.invalid_access_token");
    }
    cred.api_key = false;
    cred.bucket = "keap-oauth:" + g->client_id;
    return std::nullopt;
}

bool valid_api_key(const std::string& key) { return key == ids::keap_api_key || key == ids::keap_pat; }

// x-keap-product-quota-* / x-keap-product-throttle-* / x-keap-tenant-id (keap.md "Rate limits").
void limit_headers(State& s, Reply& reply, bool api_key, double throttle_left, int64_t used_today) {
    const Limits& L = s.limits;
    const double capacity = api_key ? L.keap_key_per_second : L.keap_oauth_per_minute;
    const int64_t day_limit = api_key ? L.keap_key_per_day : L.keap_oauth_per_day;
    const int64_t available = static_cast<int64_t>(std::floor(std::max(0.0, throttle_left)));
    const int64_t next_midnight_ms = (s.now() / 86400 + 1) * 86400 * 1000;
    reply.with("x-keap-product-quota-limit", std::to_string(day_limit))
        .with("x-keap-product-quota-time-unit", "day")
        .with("x-keap-product-quota-interval", "1")
        .with("x-keap-product-quota-available", std::to_string(std::max<int64_t>(0, day_limit - used_today)))
        .with("x-keap-product-quota-used", std::to_string(used_today))
        .with("x-keap-product-quota-expiry-time", std::to_string(next_midnight_ms))
        .with("x-keap-product-throttle-limit", std::to_string(static_cast<int64_t>(capacity)))
        .with("x-keap-product-throttle-time-unit", api_key ? "second" : "minute")
        .with("x-keap-product-throttle-interval", "1")
        .with("x-keap-product-throttle-available", std::to_string(available))
        .with("x-keap-product-throttle-used", std::to_string(static_cast<int64_t>(capacity) - available))
        .with("x-keap-tenant-id", ids::keap_account);
}

Reply throttled_body() {
    // keap.md (forum 93964)
    return json_reply(429, json{{"code", "429"}, {"message", "Quota Exceeded"}, {"status", "Request Throttled"},
                                {"details", nullptr}});
}

// Counts the call against the credential's bucket and daily quota. Caller holds s.mu.
// On success fills `headers_out` with the limit headers; when over a limit returns the 429.
std::optional<Reply> meter(State& s, const Credential& cred, Reply& headers_out) {
    const Limits& L = s.limits;
    const double capacity = cred.api_key ? L.keap_key_per_second : L.keap_oauth_per_minute;
    const double rate = cred.api_key ? L.keap_key_per_second : L.keap_oauth_per_minute / 60.0;
    const double left = s.take_token(cred.bucket, capacity, rate);
    const int64_t used = s.count_daily(cred.bucket);
    const int64_t day_limit = cred.api_key ? L.keap_key_per_day : L.keap_oauth_per_day;
    if (left < 0 || used > day_limit) {
        Reply r = throttled_body();
        limit_headers(s, r, cred.api_key, 0, std::min(used, day_limit));
        return r;
    }
    limit_headers(s, headers_out, cred.api_key, left, used);
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------------
// REST v1 and v2 (keap.md "REST")

std::string keap_time(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000+0000", &tm);
    return buf;
}

json email_addresses(const KeapContact& c) {
    json a = json::array();
    if (!c.email.empty()) a.push_back({{"email", c.email}, {"field", "EMAIL1"}});
    return a;
}

json contact_v1(const KeapContact& c) {
    return json{{"id", c.id},
                {"given_name", c.given_name},
                {"family_name", c.family_name},
                {"email_addresses", email_addresses(c)},
                {"email_opted_in", false},
                {"email_status", "UnengagedMarketable"},
                {"phone_numbers", json::array()},
                {"addresses", json::array()},
                {"tag_ids", json::array()},
                {"date_created", keap_time(c.created)},
                {"last_updated", keap_time(c.updated)}};
}

json contact_v2(const KeapContact& c) {
    return json{{"id", std::to_string(c.id)},   // v2 ids are strings (keap-sdk v2 Contact model)
                {"given_name", c.given_name},
                {"family_name", c.family_name},
                {"email_addresses", email_addresses(c)},
                {"create_time", iso8601(c.created)},
                {"update_time", iso8601(c.updated)}};
}

Reply v1_error(int status, const std::string& message) { return json_reply(status, json{{"message", message}}); }

Reply v2_error(int status, const char* code_status, const std::string& message) {
    return json_reply(status, json{{"code", status}, {"message", message}, {"status", code_status},
                                   {"details", json::array()}});
}

std::optional<int64_t> to_int(const std::string& s) {
    if (s.empty() || s.size() > 18) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

// Applies {"given_name","family_name","email_addresses":[{"email",...}]} from a REST body.
// Returns an error message when a member has the wrong type.
std::optional<std::string> apply_contact_json(KeapContact& c, const json& body) {
    for (const char* name : {"given_name", "family_name"}) {
        if (!body.contains(name)) continue;
        const json& v = body[name];
        if (!v.is_string() && !v.is_null()) return std::string(name) + " must be a string";
        (std::string(name) == "given_name" ? c.given_name : c.family_name) = v.is_string() ? v.get<std::string>() : "";
    }
    if (body.contains("email_addresses")) {
        const json& ea = body["email_addresses"];
        if (!ea.is_array()) return std::string("email_addresses must be an array");
        for (const auto& e : ea) {
            if (!e.is_object() || !e.contains("email") || !e["email"].is_string()) {
                return std::string("each email_addresses entry needs an email string");
            }
            std::string field = jstr(e, "field");
            if (field.empty() || field == "EMAIL1") c.email = e["email"].get<std::string>();
        }
    }
    return std::nullopt;
}

bool ieq(const std::string& a, const std::string& b) { return iequals(a, b); }

Reply v1_list(State& s, const Req& r) {
    auto limit = to_int(r.q("limit").value_or("1000"));
    auto offset = to_int(r.q("offset").value_or("0"));
    if (!limit || !offset) return v1_error(400, "limit and offset must be non-negative integers");
    int64_t lim = std::min<int64_t>(*limit == 0 ? 1000 : *limit, 1000);
    const auto email = r.q("email"), given = r.q("given_name"), family = r.q("family_name");
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) {
        if (email && !ieq(c.email, *email)) continue;
        if (given && !ieq(c.given_name, *given)) continue;
        if (family && !ieq(c.family_name, *family)) continue;
        all.push_back(&c);
    }
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    json list = json::array();
    for (int64_t i = *offset; i < static_cast<int64_t>(all.size()) && i < *offset + lim; ++i) {
        list.push_back(contact_v1(*all[static_cast<size_t>(i)]));
    }
    auto page_url = [&](int64_t off) {
        Params p{{"limit", std::to_string(lim)}, {"offset", std::to_string(off)}};
        if (email) p.emplace_back("email", *email);
        if (given) p.emplace_back("given_name", *given);
        if (family) p.emplace_back("family_name", *family);
        return add_query(r.base_url + kRest1 + "/contacts/", p);
    };
    return json_reply(200, json{{"contacts", list},
                                {"count", all.size()},
                                {"next", page_url(*offset + lim)},
                                {"previous", page_url(std::max<int64_t>(0, *offset - lim))}});
}

Reply userinfo() {
    // The OpenID Connect-style answer Keap staff documented (community.infusionsoft.com, thread 18001).
    return json_reply(200, json{{"sub", "1"},
                                {"email", ids::jira_admin_email},
                                {"given_name", "Sandbox"},
                                {"family_name", "Admin"},
                                {"middle_name", nullptr},
                                {"global_user_id", 54321},
                                {"infusionsoft_id", ids::jira_admin_email},
                                {"preferred_name", nullptr}});
}

Reply rest_v1(State& s, const Req& r, const std::string& sub) {
    if (sub == "/oauth/connect/userinfo") {
        return r.method == "GET" ? userinfo() : v1_error(405, "HTTP 405 Method Not Allowed");
    }
    if (sub == "/contacts" || sub == "/contacts/") {
        if (r.method == "GET") return v1_list(s, r);
        if (r.method == "POST") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v1_error(400, "Input could not be converted to a valid request");
            KeapContact c;
            if (auto bad = apply_contact_json(c, *body)) return v1_error(400, *bad);
            const bool phones = body->contains("phone_numbers") && (*body)["phone_numbers"].is_array() &&
                                !(*body)["phone_numbers"].empty();
            if (c.email.empty() && !phones) {
                return v1_error(400, "Contact must contain at least one item in email_addresses or phone_numbers");
            }
            c.id = s.next_contact_id++;
            c.created = c.updated = s.now();
            s.contacts.push_back(c);
            return json_reply(201, contact_v1(c)).with("Location", r.base_url + kRest1 + "/contacts/" +
                                                                       std::to_string(c.id));
        }
        return v1_error(405, "HTTP 405 Method Not Allowed");
    }
    if (starts_with(sub, "/contacts/")) {
        auto id = to_int(sub.substr(10));
        KeapContact* c = id ? s.contact(*id) : nullptr;
        if (!c) return v1_error(404, "Contact with ID " + sub.substr(10) + " not found");
        if (r.method == "GET") return json_reply(200, contact_v1(*c));
        if (r.method == "PATCH") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v1_error(400, "Input could not be converted to a valid request");
            KeapContact updated = *c;
            if (auto bad = apply_contact_json(updated, *body)) return v1_error(400, *bad);
            updated.updated = s.now();
            *c = updated;
            return json_reply(200, contact_v1(*c));
        }
        return v1_error(405, "HTTP 405 Method Not Allowed");
    }
    return v1_error(404, "HTTP 404 Not Found");
}

Reply v2_list(State& s, const Req& r) {
    // keap.md: GET /contacts?filter=email%3D%3Djohn%40x.com&page_size=...&page_token=...
    // Filters are "field==value" joined by ';'.
    std::optional<std::string> email, given, family;
    std::string filter = r.q("filter").value_or("");
    size_t pos = 0;
    while (!filter.empty() && pos <= filter.size()) {
        size_t end = filter.find(';', pos);
        std::string cond = filter.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        size_t eq = cond.find("==");
        if (eq == std::string::npos) return v2_error(400, "INVALID_ARGUMENT", "Invalid filter: " + cond);
        std::string field = cond.substr(0, eq), value = cond.substr(eq + 2);
        if (field == "email") email = value;
        else if (field == "given_name") given = value;
        else if (field == "family_name") family = value;
        else return v2_error(400, "INVALID_ARGUMENT", "Invalid filter field: " + field);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    auto size = to_int(r.q("page_size").value_or("50"));
    if (!size || *size > 1000) return v2_error(400, "INVALID_ARGUMENT", "page_size must be between 0 and 1000");
    int64_t page_size = *size == 0 ? 50 : *size;
    int64_t offset = 0;
    if (auto tok = r.q("page_token"); tok && !tok->empty()) {
        auto decoded = base64_decode(*tok);
        auto off = decoded && starts_with(*decoded, "offset:") ? to_int(decoded->substr(7)) : std::nullopt;
        if (!off) return v2_error(400, "INVALID_ARGUMENT", "Invalid page_token");
        offset = *off;
    }
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) {
        if (email && !ieq(c.email, *email)) continue;
        if (given && !ieq(c.given_name, *given)) continue;
        if (family && !ieq(c.family_name, *family)) continue;
        all.push_back(&c);
    }
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    json list = json::array();
    for (int64_t i = offset; i < static_cast<int64_t>(all.size()) && i < offset + page_size; ++i) {
        list.push_back(contact_v2(*all[static_cast<size_t>(i)]));
    }
    std::string next;
    if (offset + page_size < static_cast<int64_t>(all.size())) {
        next = base64_encode("offset:" + std::to_string(offset + page_size));
    }
    return json_reply(200, json{{"contacts", list}, {"next_page_token", next}});
}

Reply rest_v2(State& s, const Req& r, const std::string& sub) {
    if (sub == "/contacts" || sub == "/contacts/") {
        if (r.method == "GET") return v2_list(s, r);
        return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    }
    if (starts_with(sub, "/contacts/")) {
        auto id = to_int(sub.substr(10));
        KeapContact* c = id ? s.contact(*id) : nullptr;
        if (!c) return v2_error(404, "NOT_FOUND", "Contact not found: " + sub.substr(10));
        if (r.method == "GET") return json_reply(200, contact_v2(*c));
        if (r.method == "PATCH") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v2_error(400, "INVALID_ARGUMENT", "Invalid request body");
            KeapContact updated = *c;
            if (auto bad = apply_contact_json(updated, *body)) return v2_error(400, "INVALID_ARGUMENT", *bad);
            updated.updated = s.now();
            *c = updated;
            return json_reply(200, contact_v2(*c));
        }
        return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    }
    return v2_error(404, "NOT_FOUND", "Not found");
}

Reply rest(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    Credential cred;
    std::lock_guard<std::mutex> lock(s.mu);
    if (auto bearer = bearer_of(r)) {
        if (auto bad = check_bearer(s, *bearer, cred)) return *bad;
    } else if (auto key = r.header("X-Keap-API-Key")) {
        if (!valid_api_key(*key)) return gateway_fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey");
        cred.api_key = true;
        cred.bucket = "keap-key:" + *key;
    } else {
        return gateway_fault(401, "Invalid Access Token", "keymanagement.service.invalid_access_token");
    }
    Reply headers;
    if (auto throttled = meter(s, cred, headers)) return *throttled;
    Reply out = starts_with(r.path, kRest1) ? rest_v1(s, r, r.path.substr(std::string(kRest1).size()))
                                            : rest_v2(s, r, r.path.substr(std::string(kRest2).size()));
    for (auto& h : headers.headers) out.headers.push_back(h);
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// XML-RPC (keap.md "XML-RPC"). Keap's XML-RPC server is Apache XML-RPC: its faults carry faultCode 0 and
// Apache's messages ("No such handler: X.y", "Failed to parse XML-RPC request: ...").

using xmlrpc::Value;

constexpr const char* kInvalidConfig =
    "[InvalidConfig]Invalid Configuration: for help setting up your API, please contact Support";

Reply xml_answer(std::string body) { return text_reply(200, std::move(body), "text/xml;charset=UTF-8"); }
Reply fault(const std::string& message, int code = 0) { return xml_answer(xmlrpc::encode_fault(code, message)); }

const char* java_type(const Value& v) {
    switch (v.type) {
        case Value::Type::nil: return "null";
        case Value::Type::integer: return "java.lang.Integer";
        case Value::Type::boolean: return "java.lang.Boolean";
        case Value::Type::string: return "java.lang.String";
        case Value::Type::double_: return "java.lang.Double";
        case Value::Type::datetime: return "java.util.Date";
        case Value::Type::base64: return "[B";
        case Value::Type::array: return "[Ljava.lang.Object;";
        case Value::Type::struct_: return "java.util.HashMap";
    }
    return "java.lang.Object";
}

Reply no_matching_method(const xmlrpc::Array& params) {
    std::string types;
    for (const auto& p : params) types += std::string(types.empty() ? "" : ", ") + java_type(p);
    return fault("No method matching arguments: " + types);
}

bool types_are(const xmlrpc::Array& params, std::initializer_list<Value::Type> types) {
    if (params.size() != types.size()) return false;
    size_t i = 0;
    for (auto t : types) {
        if (params[i++].type != t) return false;
    }
    return true;
}

std::string xmlrpc_date(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H:%M:%S", &tm);
    return buf;
}

std::optional<Value> contact_field(const KeapContact& c, const std::string& name) {
    if (name == "Id") return Value::integer(c.id);
    if (name == "FirstName") return Value::string(c.given_name);
    if (name == "LastName") return Value::string(c.family_name);
    if (name == "Email") return Value::string(c.email);
    if (name == "DateCreated") return Value::datetime(xmlrpc_date(c.created));
    if (name == "LastUpdated") return Value::datetime(xmlrpc_date(c.updated));
    return std::nullopt;
}

// Keap's data queries take '%' as a wildcard; comparisons ignore case.
bool like(const std::string& text, const std::string& pattern) {
    const std::string t = lower(text), p = lower(pattern);
    // Classic wildcard match with backtracking on the last '%'.
    size_t ti = 0, pi = 0, star = std::string::npos, mark = 0;
    while (ti < t.size()) {
        if (pi < p.size() && p[pi] == '%') {
            star = pi++;
            mark = ti;
        } else if (pi < p.size() && p[pi] == t[ti]) {
            ++pi;
            ++ti;
        } else if (star != std::string::npos) {
            pi = star + 1;
            ti = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '%') ++pi;
    return pi == p.size();
}

bool field_matches(const KeapContact& c, const std::string& field, const Value& want) {
    auto have = contact_field(c, field);
    if (!have) return false;
    if (have->type == Value::Type::integer) {
        if (want.type == Value::Type::integer) return have->i == want.i;
        if (want.type == Value::Type::string) return std::to_string(have->i) == want.s;
        return false;
    }
    if (want.type != Value::Type::string) return false;
    return like(have->s, want.s);
}

Value select_fields(const KeapContact& c, const xmlrpc::Array& fields) {
    xmlrpc::Struct out;
    for (const auto& f : fields) {
        if (f.type != Value::Type::string) continue;
        if (auto v = contact_field(c, f.s)) out.emplace_back(f.s, *v);
    }
    return Value::struct_of(std::move(out));
}

// Applies FirstName/LastName/Email from an XML-RPC struct. Returns a fault message for a wrong type.
std::optional<std::string> apply_contact_struct(KeapContact& c, const Value& fields) {
    for (const auto& [name, v] : fields.members) {
        std::string* target = name == "FirstName" ? &c.given_name
                              : name == "LastName" ? &c.family_name
                              : name == "Email"    ? &c.email
                                                   : nullptr;
        if (!target) continue;
        if (v.type != Value::Type::string) return "[InvalidParameter]" + name + " must be a string";
        *target = v.s;
    }
    return std::nullopt;
}

Reply page_of(const std::vector<const KeapContact*>& matches, int64_t limit, int64_t page,
              const xmlrpc::Array& fields) {
    if (limit < 1 || limit > 1000) return fault("[InvalidParameter]limit must be between 1 and 1000");
    if (page < 0) return fault("[InvalidParameter]page must not be negative");
    xmlrpc::Array rows;
    for (int64_t i = page * limit; i < static_cast<int64_t>(matches.size()) && i < (page + 1) * limit; ++i) {
        rows.push_back(select_fields(*matches[static_cast<size_t>(i)], fields));
    }
    return xml_answer(xmlrpc::encode_response(Value::array_of(std::move(rows))));
}

Reply call_method(State& s, const xmlrpc::Call& call) {
    const auto& p = call.params;
    using T = Value::Type;
    if (call.method == "DataService.getUserInfo") {
        if (!p.empty()) return no_matching_method(p);
        return xml_answer(xmlrpc::encode_response(Value::struct_of({
            {"AppAlias", Value::string("ab123")},
            {"DisplayName", Value::string("Sandbox Admin")},
            {"Email", Value::string(ids::jira_admin_email)},
            {"GlobalUserId", Value::integer(54321)},
            {"LocalUserId", Value::integer(1)},
            {"AppUrl", Value::string(std::string("https://") + ids::keap_account)},
        })));
    }
    if (call.method == "ContactService.add") {
        if (!types_are(p, {T::string, T::struct_})) return no_matching_method(p);
        KeapContact c;
        if (auto bad = apply_contact_struct(c, p[1])) return fault(*bad);
        c.id = s.next_contact_id++;
        c.created = c.updated = s.now();
        s.contacts.push_back(c);
        return xml_answer(xmlrpc::encode_response(Value::integer(c.id)));
    }
    if (call.method == "ContactService.update") {
        if (!types_are(p, {T::string, T::integer, T::struct_})) return no_matching_method(p);
        KeapContact* c = s.contact(p[1].i);
        if (!c) return fault("[RecordNotFound]Record was not found: Contact " + std::to_string(p[1].i));
        KeapContact updated = *c;
        if (auto bad = apply_contact_struct(updated, p[2])) return fault(*bad);
        updated.updated = s.now();
        *c = updated;
        return xml_answer(xmlrpc::encode_response(Value::integer(c->id)));
    }
    const bool find = call.method == "DataService.findByField";
    if (find || call.method == "DataService.query") {
        const bool ok = find ? types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::string,
                                             T::array})
                             : (types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array}) ||
                                types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array,
                                              T::string, T::boolean}));
        if (!ok) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        std::vector<std::pair<std::string, Value>> conditions;
        if (find) {
            conditions.emplace_back(p[4].s, p[5]);
        } else {
            for (const auto& m : p[4].members) conditions.push_back(m);
        }
        for (const auto& [field, v] : conditions) {
            (void)v;
            if (!contact_field(KeapContact{}, field)) return fault("[InvalidParameter]Invalid field: " + field);
        }
        std::vector<const KeapContact*> matches;
        for (const auto& c : s.contacts) {
            bool all = true;
            for (const auto& [field, want] : conditions) all = all && field_matches(c, field, want);
            if (all) matches.push_back(&c);
        }
        std::string order = p.size() == 8 ? p[6].s : "Id";
        bool ascending = p.size() == 8 ? p[7].b : true;
        std::sort(matches.begin(), matches.end(), [&](const KeapContact* a, const KeapContact* b) {
            auto va = contact_field(*a, order), vb = contact_field(*b, order);
            bool less = (va && vb) ? (va->type == T::integer ? va->i < vb->i : va->s < vb->s) : a->id < b->id;
            bool greater = (va && vb) ? (va->type == T::integer ? va->i > vb->i : va->s > vb->s) : a->id > b->id;
            return ascending ? less : greater;
        });
        return page_of(matches, p[2].i, p[3].i, find ? p[6].array : p[5].array);
    }
    return fault("No such handler: " + call.method);
}

bool known_method(const std::string& m) {
    return m == "ContactService.add" || m == "ContactService.update" || m == "DataService.findByField" ||
           m == "DataService.query" || m == "DataService.getUserInfo";
}

std::string parse_failure(const Error& e) {
    if (e.code == "xmlrpc.empty") return "Failed to parse XML-RPC request: Premature end of file.";
    if (e.code == "xmlrpc.doctype_refused" || e.message.find("DOCTYPE") != std::string::npos) {
        return "Failed to parse XML-RPC request: DOCTYPE is disallowed when the feature "
               "\"http://apache.org/xml/features/disallow-doctype-decl\" set to true.";
    }
    return "Failed to parse XML-RPC request: " + e.message;
}

Reply xml_rpc(State& s, const Req& r) {
    if (auto denied = deny_cross_origin(r)) return *denied;
    if (r.method != "POST") return text_reply(405, "HTTP method GET is not supported by this URL");
    Credential cred;
    bool authenticated = false;
    std::lock_guard<std::mutex> lock(s.mu);
    // OAuth: a Bearer header, or the older ?access_token= on the URL. A bad token is refused by the gateway in
    // JSON, before XML-RPC is involved: that is what makes clients say "root element not methodResponse".
    std::optional<std::string> token = bearer_of(r);
    if (!token) token = r.q("access_token");
    if (token) {
        if (auto bad = check_bearer(s, *token, cred)) return *bad;
        authenticated = true;
    } else if (auto key = r.header("X-Keap-API-Key")) {
        if (!valid_api_key(*key)) return fault(kInvalidConfig);
        cred.api_key = true;
        cred.bucket = "keap-key:" + *key;
        authenticated = true;
    }
    auto call = xmlrpc::decode_call(r.raw.body);
    if (!call) return fault(parse_failure(call.error()));
    if (!known_method(call->method)) return fault("No such handler: " + call->method);
    if (!authenticated) {
        // No header credentials: the first parameter is the (legacy) API key; getUserInfo has none.
        const auto& p = call->params;
        if (call->method == "DataService.getUserInfo" || p.empty() || p[0].type != Value::Type::string ||
            !valid_api_key(p[0].s)) {
            return fault(kInvalidConfig);
        }
        cred.api_key = true;
        cred.bucket = "keap-key:" + p[0].s;
    }
    Reply headers;
    if (auto throttled = meter(s, cred, headers)) return *throttled;
    Reply out = call_method(s, *call);
    for (auto& h : headers.headers) out.headers.push_back(h);
    return out;
}

}  // namespace

Reply keap_throttled(State& s, const std::string& credential_kind) {
    Reply r = throttled_body();
    limit_headers(s, r, credential_kind == "api_key", 0, 0);
    return r;
}

std::optional<Reply> route_keap(State& s, const Req& r) {
    if (r.path == kAuthorize) {
        if (r.method == "OPTIONS") return deny_cross_origin(r);
        return authorize(s, r);
    }
    if (r.path == kToken) return token(s, r);
    if (r.path == kXmlRpc) return xml_rpc(s, r);
    if (starts_with(r.path, std::string(kRest1) + "/") || starts_with(r.path, std::string(kRest2) + "/")) {
        return rest(s, r);
    }
    if (auto denied = deny_cross_origin(r)) return *denied;
    return std::nullopt;
}

}  // namespace keyrelay::sandbox
