// The fake Keap: OAuth2 authorize page and token endpoint, REST v1/v2 contacts, XML-RPC, rate limits.
// Every behaviour here follows docs/reference/keap.md (cited as keap.md).
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
    if (!auth || !istarts_with(*auth, "bearer ")) return std::nullopt;
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

// A REST v2 contact (keap-sdk sdks/v2/swagger.yml, Contact): ids are strings, lists carry a "field" tag, members
// without a value are left out. `fields`: the ?fields= members to include besides id (empty = all of them).
json contact_v2(const KeapContact& c, const std::vector<std::string>& fields = {}) {
    auto want = [&](const char* m) { return fields.empty() || std::find(fields.begin(), fields.end(), m) != fields.end(); };
    json o = json{{"id", std::to_string(c.id)}};
    if (want("given_name")) o["given_name"] = c.given_name;
    if (want("family_name")) o["family_name"] = c.family_name;
    if (want("email_addresses")) {
        json a = json::array();
        const std::pair<const std::string*, const char*> emails[] = {{&c.email, "EMAIL1"}, {&c.email2, "EMAIL2"},
                                                                     {&c.email3, "EMAIL3"}};
        for (const auto& [e, tag] : emails) {
            if (!e->empty()) a.push_back({{"email", *e}, {"field", tag}});
        }
        o["email_addresses"] = a;
    }
    if (want("phone_numbers")) {
        json a = json::array();
        if (!c.phone1.empty()) a.push_back({{"number", c.phone1}, {"field", "PHONE1"}});
        if (!c.phone2.empty()) a.push_back({{"number", c.phone2}, {"field", "PHONE2"}});
        o["phone_numbers"] = a;
    }
    if (want("addresses")) {
        json a = json::array();
        json billing = json{{"field", "BILLING"}};
        const std::pair<const char*, const std::string*> parts[] = {{"line1", &c.street1}, {"locality", &c.city},
                                                                    {"region", &c.region},
                                                                    {"postal_code", &c.postal_code},
                                                                    {"country_code", &c.country}};
        for (const auto& [k, v] : parts) {
            if (!v->empty()) billing[k] = *v;
        }
        if (billing.size() > 1) a.push_back(billing);
        o["addresses"] = a;
    }
    if (want("company") && !c.company.empty()) o["company"] = json{{"company_name", c.company}};
    if (want("job_title") && !c.job_title.empty()) o["job_title"] = c.job_title;
    if (want("owner_id") && c.owner_id != 0) o["owner_id"] = std::to_string(c.owner_id);
    if (want("tag_ids")) o["tag_ids"] = c.tags;
    if (want("create_time")) o["create_time"] = iso8601(c.created);
    if (want("update_time")) o["update_time"] = iso8601(c.updated);
    return o;
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

Reply v1_list(State& s, const Req& r) {
    auto limit = to_int(r.q("limit").value_or("1000"));
    auto offset = to_int(r.q("offset").value_or("0"));
    if (!limit || !offset) return v1_error(400, "limit and offset must be non-negative integers");
    int64_t lim = std::min<int64_t>(*limit == 0 ? 1000 : *limit, 1000);
    const auto email = r.q("email"), given = r.q("given_name"), family = r.q("family_name");
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) {
        if (email && !iequals(c.email, *email)) continue;
        if (given && !iequals(c.given_name, *given)) continue;
        if (family && !iequals(c.family_name, *family)) continue;
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

// "a,b,c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find(',', pos);
        std::string item = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (!item.empty()) out.push_back(item);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    return out;
}

// The members a v2 contact has, for ?fields= and update_mask.
bool v2_member(const std::string& m) {
    static const char* const members[] = {"given_name", "family_name", "email_addresses", "phone_numbers",
                                          "addresses", "company", "job_title", "owner_id", "tag_ids",
                                          "create_time", "update_time", "id"};
    for (const char* x : members) {
        if (m == x) return true;
    }
    return false;
}

// keap.md: v2 filters are "field==value" joined by ';'; a trailing '*' matches any rest (email==john*).
bool filter_match(const std::string& have, const std::string& want) {
    if (!want.empty() && want.back() == '*') {
        return istarts_with(have, std::string_view(want).substr(0, want.size() - 1));
    }
    return iequals(have, want);
}

Reply v2_list(State& s, const Req& r) {
    // keap.md: GET /contacts?filter=email%3D%3Djohn%40x.com&fields=...&order_by=...&page_size=...&page_token=...
    std::vector<std::pair<std::string, std::string>> conditions;
    std::string filter = r.q("filter").value_or("");
    size_t pos = 0;
    while (!filter.empty() && pos <= filter.size()) {
        size_t end = filter.find(';', pos);
        std::string cond = filter.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        size_t eq = cond.find("==");
        if (eq == std::string::npos) return v2_error(400, "INVALID_ARGUMENT", "Invalid filter: " + cond);
        std::string field = cond.substr(0, eq), value = cond.substr(eq + 2);
        if (field != "email" && field != "given_name" && field != "family_name") {
            return v2_error(400, "INVALID_ARGUMENT", "Invalid filter field: " + field);
        }
        conditions.emplace_back(field, value);
        if (end == std::string::npos) break;
        pos = end + 1;
    }
    const std::vector<std::string> fields = split_commas(r.q("fields").value_or(""));
    for (const auto& f : fields) {
        if (!v2_member(f)) return v2_error(400, "INVALID_ARGUMENT", "Invalid field: " + f);
    }
    const std::string order = r.q("order_by").value_or("id");
    if (order != "id" && order != "id asc" && order != "id desc") {
        return v2_error(400, "INVALID_ARGUMENT", "Invalid order_by: " + order);
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
        bool keep = true;
        for (const auto& [field, value] : conditions) {
            const std::string& have = field == "email" ? c.email : field == "given_name" ? c.given_name : c.family_name;
            keep = keep && filter_match(have, value);
        }
        if (keep) all.push_back(&c);
    }
    const bool descending = order == "id desc";
    std::sort(all.begin(), all.end(), [&](auto* a, auto* b) { return descending ? a->id > b->id : a->id < b->id; });
    json list = json::array();
    for (int64_t i = offset; i < static_cast<int64_t>(all.size()) && i < offset + page_size; ++i) {
        list.push_back(contact_v2(*all[static_cast<size_t>(i)], fields));
    }
    std::string next;
    if (offset + page_size < static_cast<int64_t>(all.size())) {
        next = base64_encode("offset:" + std::to_string(offset + page_size));
    }
    return json_reply(200, json{{"contacts", list}, {"next_page_token", next}});
}

// Applies a REST v2 contact body. `mask`: the members to take (update_mask); empty = every member present.
// Lists replace the contact's whole list. Returns an error message for a wrong shape.
std::optional<std::string> apply_contact_v2(KeapContact& c, const json& body, const std::vector<std::string>& mask) {
    auto take = [&](const char* m) {
        return mask.empty() ? body.contains(m) : std::find(mask.begin(), mask.end(), m) != mask.end();
    };
    for (const auto& m : mask) {
        if (!v2_member(m) || m == "id" || m == "tag_ids" || m == "create_time" || m == "update_time") {
            return "Invalid update_mask field: " + m;
        }
    }
    auto text = [&](const char* m, std::string& out) -> std::optional<std::string> {
        if (!take(m)) return std::nullopt;
        const json v = body.contains(m) ? body[m] : json();
        if (!v.is_string() && !v.is_null()) return std::string(m) + " must be a string";
        out = v.is_string() ? v.get<std::string>() : "";
        return std::nullopt;
    };
    for (auto [m, target] : {std::pair<const char*, std::string*>{"given_name", &c.given_name},
                             {"family_name", &c.family_name}, {"job_title", &c.job_title}}) {
        if (auto bad = text(m, *target)) return bad;
    }
    // A list member: each entry an object with `key` (a string) and an optional "field" tag.
    auto entries = [&](const char* m, const char* key, const char* default_tag,
                       std::vector<std::pair<std::string, std::string>>& out) -> std::optional<std::string> {
        const json v = body.contains(m) ? body[m] : json::array();
        if (!v.is_array()) return std::string(m) + " must be an array";
        for (const auto& e : v) {
            if (!e.is_object() || !e.contains(key) || !e[key].is_string()) {
                return std::string("each ") + m + " entry needs a " + key + " string";
            }
            std::string tag = jstr(e, "field");
            out.emplace_back(tag.empty() ? default_tag : tag, e[key].get<std::string>());
        }
        return std::nullopt;
    };
    if (take("email_addresses")) {
        std::vector<std::pair<std::string, std::string>> list;
        if (auto bad = entries("email_addresses", "email", "EMAIL1", list)) return bad;
        c.email.clear(), c.email2.clear(), c.email3.clear();
        for (const auto& [tag, v] : list) (tag == "EMAIL3" ? c.email3 : tag == "EMAIL2" ? c.email2 : c.email) = v;
    }
    if (take("phone_numbers")) {
        std::vector<std::pair<std::string, std::string>> list;
        if (auto bad = entries("phone_numbers", "number", "PHONE1", list)) return bad;
        c.phone1.clear(), c.phone2.clear();
        for (const auto& [tag, v] : list) {
            if (tag == "PHONE1") c.phone1 = v;
            if (tag == "PHONE2") c.phone2 = v;
        }
    }
    if (take("addresses")) {
        const json v = body.contains("addresses") ? body["addresses"] : json::array();
        if (!v.is_array()) return std::string("addresses must be an array");
        c.street1.clear(), c.city.clear(), c.region.clear(), c.postal_code.clear(), c.country.clear();
        for (const auto& e : v) {
            if (!e.is_object()) return std::string("each addresses entry must be an object");
            if (jstr(e, "field") != "BILLING") continue;
            c.street1 = jstr(e, "line1");
            c.city = jstr(e, "locality");
            c.region = jstr(e, "region");
            c.postal_code = jstr(e, "postal_code");
            c.country = jstr(e, "country_code");
        }
    }
    if (take("company")) {
        const json v = body.contains("company") ? body["company"] : json();
        if (!v.is_object() && !v.is_null()) return std::string("company must be an object");
        c.company = v.is_object() ? jstr(v, "company_name") : "";
    }
    if (take("owner_id")) {
        const json v = body.contains("owner_id") ? body["owner_id"] : json();
        std::optional<int64_t> id = v.is_null() ? std::optional<int64_t>(0)
                                    : v.is_number_integer() ? std::optional<int64_t>(v.get<int64_t>())
                                    : v.is_string() ? to_int(v.get<std::string>())
                                                    : std::nullopt;
        if (!id) return std::string("owner_id must be an id");
        c.owner_id = *id;
    }
    return std::nullopt;
}

// POST /v2/tags/{tag_id}/contacts:applyTags | :removeTags with {"contact_ids":["1",...]} (keap-sdk, TagsApi).
Reply v2_tags(State& s, const Req& r, const std::string& sub) {
    const std::string rest = sub.substr(6);   // after "/tags/"
    const size_t slash = rest.find('/');
    const std::string action = slash == std::string::npos ? "" : rest.substr(slash);
    const bool apply = action == "/contacts:applyTags";
    if (!apply && action != "/contacts:removeTags") return v2_error(404, "NOT_FOUND", "Not found");
    if (r.method != "POST") return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    auto tag = to_int(rest.substr(0, slash));
    if (!tag || !s.keap_tags.count(*tag)) return v2_error(404, "NOT_FOUND", "Tag not found: " + rest.substr(0, slash));
    auto body = parse_json(r.raw.body);
    if (!body || !body->is_object() || !body->contains("contact_ids") || !(*body)["contact_ids"].is_array()) {
        return v2_error(400, "INVALID_ARGUMENT", "contact_ids must be an array of contact ids");
    }
    std::vector<KeapContact*> targets;
    for (const auto& id : (*body)["contact_ids"]) {
        std::optional<int64_t> n = id.is_string() ? to_int(id.get<std::string>())
                                   : id.is_number_integer() ? std::optional<int64_t>(id.get<int64_t>())
                                                            : std::nullopt;
        KeapContact* c = n ? s.contact(*n) : nullptr;
        if (!c) return v2_error(404, "NOT_FOUND", "Contact not found: " + (id.is_string() ? id.get<std::string>() : id.dump()));
        targets.push_back(c);
    }
    for (KeapContact* c : targets) {
        auto it = std::lower_bound(c->tags.begin(), c->tags.end(), *tag);
        const bool has = it != c->tags.end() && *it == *tag;
        if (apply && !has) c->tags.insert(it, *tag);
        if (!apply && has) c->tags.erase(it);
    }
    return json_reply(200, json::object());
}

Reply rest_v2(State& s, const Req& r, const std::string& sub) {
    if (sub == "/contacts" || sub == "/contacts/") {
        if (r.method == "GET") return v2_list(s, r);
        if (r.method == "POST") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v2_error(400, "INVALID_ARGUMENT", "Invalid request body");
            KeapContact c;
            if (auto bad = apply_contact_v2(c, *body, {})) return v2_error(400, "INVALID_ARGUMENT", *bad);
            c.id = s.next_contact_id++;
            c.created = c.updated = s.now();
            s.contacts.push_back(c);
            return json_reply(201, contact_v2(c));
        }
        return v2_error(405, "METHOD_NOT_ALLOWED", "Method not allowed");
    }
    if (starts_with(sub, "/tags/")) return v2_tags(s, r, sub);
    if (starts_with(sub, "/contacts/")) {
        auto id = to_int(sub.substr(10));
        KeapContact* c = id ? s.contact(*id) : nullptr;
        if (!c) return v2_error(404, "NOT_FOUND", "Contact not found: " + sub.substr(10));
        if (r.method == "GET") {
            const std::vector<std::string> fields = split_commas(r.q("fields").value_or(""));
            for (const auto& f : fields) {
                if (!v2_member(f)) return v2_error(400, "INVALID_ARGUMENT", "Invalid field: " + f);
            }
            return json_reply(200, contact_v2(*c, fields));
        }
        if (r.method == "PATCH") {
            auto body = parse_json(r.raw.body);
            if (!body || !body->is_object()) return v2_error(400, "INVALID_ARGUMENT", "Invalid request body");
            KeapContact updated = *c;
            // keap.md: PATCH /contacts/{id}?update_mask=given_name,family_name
            if (auto bad = apply_contact_v2(updated, *body, split_commas(r.q("update_mask").value_or("")))) {
                return v2_error(400, "INVALID_ARGUMENT", *bad);
            }
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

// The Contact table's fields the sandbox knows (a subset of Keap's, the ones docs/xmlrpc-bridge.md maps), as the
// XML-RPC value of the contact's field; nullopt for a name that is not a field. An empty string / 0 is "no value".
std::optional<Value> contact_field(const KeapContact& c, const std::string& name) {
    if (name == "Id") return Value::integer(c.id);
    if (name == "OwnerID") return Value::integer(c.owner_id);
    if (name == "DateCreated") return Value::datetime(xmlrpc_date(c.created));
    if (name == "LastUpdated") return Value::datetime(xmlrpc_date(c.updated));
    if (name == "Groups") {
        // The Groups column: the contact's tag ids, comma-separated.
        std::string text;
        for (auto t : c.tags) text += (text.empty() ? "" : ",") + std::to_string(t);
        return Value::string(text);
    }
    const std::pair<const char*, const std::string*> text_fields[] = {
        {"FirstName", &c.given_name}, {"LastName", &c.family_name}, {"Email", &c.email},
        {"EmailAddress2", &c.email2}, {"EmailAddress3", &c.email3}, {"Phone1", &c.phone1},
        {"Phone2", &c.phone2},        {"Company", &c.company},      {"JobTitle", &c.job_title},
        {"StreetAddress1", &c.street1}, {"City", &c.city},           {"State", &c.region},
        {"PostalCode", &c.postal_code}, {"Country", &c.country}};
    for (const auto& [n, v] : text_fields) {
        if (name == n) return Value::string(*v);
    }
    return std::nullopt;
}

std::string* writable_text(KeapContact& c, const std::string& name) {
    const std::pair<const char*, std::string*> fields[] = {
        {"FirstName", &c.given_name}, {"LastName", &c.family_name}, {"Email", &c.email},
        {"EmailAddress2", &c.email2}, {"EmailAddress3", &c.email3}, {"Phone1", &c.phone1},
        {"Phone2", &c.phone2},        {"Company", &c.company},      {"JobTitle", &c.job_title},
        {"StreetAddress1", &c.street1}, {"City", &c.city},           {"State", &c.region},
        {"PostalCode", &c.postal_code}, {"Country", &c.country}};
    for (const auto& [n, v] : fields) {
        if (name == n) return v;
    }
    return nullptr;
}

std::string no_field(const std::string& name) { return "[NoFieldFound]No field found: Contact." + name; }

// Keap's data queries take '%' as a wildcard; comparisons ignore case.
bool like(const std::string& text, const std::string& pattern) {
    const std::string t = to_lower(text), p = to_lower(pattern);
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
        if (want.type == Value::Type::string) return like(std::to_string(have->i), want.s);
        return false;
    }
    if (want.type != Value::Type::string) return false;
    return like(have->s, want.s);
}

bool has_value(const Value& v) {
    if (v.type == Value::Type::integer) return v.i != 0;
    if (v.type == Value::Type::string) return !v.s.empty();
    return true;
}

// A record's struct: the fields asked for that have a value (Keap's XML-RPC leaves empty ones out).
Value select_fields(const KeapContact& c, const std::vector<std::string>& fields) {
    xmlrpc::Struct out;
    for (const auto& f : fields) {
        bool seen = false;
        for (const auto& m : out) seen = seen || m.first == f;
        if (seen) continue;
        if (auto v = contact_field(c, f); v && has_value(*v)) out.emplace_back(f, *v);
    }
    return Value::struct_of(std::move(out));
}

// The names of a String[] of fields; a fault message for one that is not a field.
std::optional<std::string> field_names(const Value& list, std::vector<std::string>& out) {
    for (const auto& f : list.array) {
        if (f.type != Value::Type::string) return std::string("[InvalidParameter]Field names must be strings");
        if (!contact_field(KeapContact{}, f.s)) return no_field(f.s);
        out.push_back(f.s);
    }
    return std::nullopt;
}

// Checks an XML-RPC struct of Contact fields for add/update. Returns a fault message.
std::optional<std::string> check_contact_struct(const Value& fields) {
    for (const auto& [name, v] : fields.members) {
        if (!contact_field(KeapContact{}, name)) return no_field(name);
        if (name == "Id" || name == "DateCreated" || name == "LastUpdated" || name == "Groups") {
            return "[InvalidParameter]Contact." + name + " cannot be written";
        }
        if (name == "OwnerID") {
            if (v.type != Value::Type::integer) return "[InvalidParameter]OwnerID must be an int";
        } else if (v.type != Value::Type::string) {
            return "[InvalidParameter]" + name + " must be a string";
        }
    }
    return std::nullopt;
}

// Applies a checked struct.
void apply_contact_struct(KeapContact& c, const Value& fields) {
    for (const auto& [name, v] : fields.members) {
        if (name == "OwnerID") {
            c.owner_id = v.i;
        } else if (std::string* target = writable_text(c, name)) {
            *target = v.s;
        }
    }
}

Reply answer(const Value& v) { return xml_answer(xmlrpc::encode_response(v)); }
Reply not_found(const char* table, int64_t id) {
    return fault("[RecordNotFound]Record was not found: " + std::string(table) + " " + std::to_string(id));
}

Reply page_of(const std::vector<const KeapContact*>& matches, int64_t limit, int64_t page,
              const std::vector<std::string>& fields) {
    if (limit < 1 || limit > 1000) return fault("[InvalidParameter]limit must be between 1 and 1000");
    if (page < 0) return fault("[InvalidParameter]page must not be negative");
    xmlrpc::Array rows;
    for (int64_t i = page * limit; i < static_cast<int64_t>(matches.size()) && i < (page + 1) * limit; ++i) {
        rows.push_back(select_fields(*matches[static_cast<size_t>(i)], fields));
    }
    return answer(Value::array_of(std::move(rows)));
}

Reply add_contact(State& s, const Value& fields) {
    if (auto bad = check_contact_struct(fields)) return fault(*bad);
    KeapContact c;
    apply_contact_struct(c, fields);
    c.id = s.next_contact_id++;
    c.created = c.updated = s.now();
    s.contacts.push_back(c);
    return answer(Value::integer(c.id));
}

Reply update_contact(State& s, int64_t id, const Value& fields) {
    if (auto bad = check_contact_struct(fields)) return fault(*bad);
    KeapContact* c = s.contact(id);
    if (!c) return not_found("Contact", id);
    apply_contact_struct(*c, fields);
    c->updated = s.now();
    return answer(Value::integer(c->id));
}

Reply load_contact(State& s, int64_t id, const Value& list) {
    std::vector<std::string> fields;
    if (auto bad = field_names(list, fields)) return fault(*bad);
    KeapContact* c = s.contact(id);
    if (!c) return not_found("Contact", id);
    return answer(select_fields(*c, fields));
}

std::vector<const KeapContact*> by_id(const State& s) {
    std::vector<const KeapContact*> all;
    for (const auto& c : s.contacts) all.push_back(&c);
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    return all;
}

Reply call_method(State& s, const xmlrpc::Call& call) {
    const auto& p = call.params;
    using T = Value::Type;
    const std::string& m = call.method;
    if (m == "DataService.getUserInfo") {
        if (!p.empty()) return no_matching_method(p);
        return answer(Value::struct_of({
            {"AppAlias", Value::string("ab123")},
            {"DisplayName", Value::string("Sandbox Admin")},
            {"Email", Value::string(ids::jira_admin_email)},
            {"GlobalUserId", Value::integer(54321)},
            {"LocalUserId", Value::integer(1)},
            {"AppUrl", Value::string(std::string("https://") + ids::keap_account)},
        }));
    }
    if (m == "DataService.echo") {
        if (types_are(p, {T::string})) return answer(p[0]);
        if (types_are(p, {T::string, T::string})) return answer(p[1]);
        return no_matching_method(p);
    }
    if (m == "ContactService.add") {
        if (!types_are(p, {T::string, T::struct_})) return no_matching_method(p);
        return add_contact(s, p[1]);
    }
    if (m == "DataService.add") {
        if (!types_are(p, {T::string, T::string, T::struct_})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return add_contact(s, p[2]);
    }
    if (m == "ContactService.update") {
        if (!types_are(p, {T::string, T::integer, T::struct_})) return no_matching_method(p);
        return update_contact(s, p[1].i, p[2]);
    }
    if (m == "DataService.update") {
        if (!types_are(p, {T::string, T::string, T::integer, T::struct_})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return update_contact(s, p[2].i, p[3]);
    }
    if (m == "ContactService.load") {
        if (!types_are(p, {T::string, T::integer, T::array})) return no_matching_method(p);
        return load_contact(s, p[1].i, p[2]);
    }
    if (m == "DataService.load") {
        if (!types_are(p, {T::string, T::string, T::integer, T::array})) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        return load_contact(s, p[2].i, p[3]);
    }
    if (m == "ContactService.addWithDupCheck") {
        if (!types_are(p, {T::string, T::struct_, T::string})) return no_matching_method(p);
        const std::string& type = p[2].s;
        if (type != "Email" && type != "EmailAndName") {
            return fault("[InvalidParameter]dupCheckType must be Email, EmailAndName or EmailAndNameAndCompany");
        }
        if (auto bad = check_contact_struct(p[1])) return fault(*bad);
        const Value* email = p[1].get("Email");
        if (email == nullptr || email->s.empty()) return add_contact(s, p[1]);
        auto text_of = [&](const char* name) {
            const Value* v = p[1].get(name);
            return v ? v->s : std::string();
        };
        for (const KeapContact* c : by_id(s)) {
            bool same = iequals(c->email, email->s);
            if (type == "EmailAndName") {
                same = same && iequals(c->given_name, text_of("FirstName")) && iequals(c->family_name, text_of("LastName"));
            }
            if (same) return update_contact(s, c->id, p[1]);
        }
        return add_contact(s, p[1]);
    }
    if (m == "ContactService.findByEmail") {
        if (!types_are(p, {T::string, T::string, T::array})) return no_matching_method(p);
        std::vector<std::string> fields;
        if (auto bad = field_names(p[2], fields)) return fault(*bad);
        xmlrpc::Array rows;
        for (const KeapContact* c : by_id(s)) {
            if (iequals(c->email, p[1].s)) rows.push_back(select_fields(*c, fields));
        }
        return answer(Value::array_of(std::move(rows)));
    }
    if (m == "ContactService.addToGroup" || m == "ContactService.removeFromGroup") {
        if (!types_are(p, {T::string, T::integer, T::integer})) return no_matching_method(p);
        if (!s.keap_tags.count(p[2].i)) return not_found("ContactGroup", p[2].i);
        KeapContact* c = s.contact(p[1].i);
        if (!c) return not_found("Contact", p[1].i);
        auto it = std::lower_bound(c->tags.begin(), c->tags.end(), p[2].i);
        const bool has = it != c->tags.end() && *it == p[2].i;
        if (m == "ContactService.addToGroup" && !has) c->tags.insert(it, p[2].i);
        if (m == "ContactService.removeFromGroup" && has) c->tags.erase(it);
        return answer(Value::boolean(true));
    }
    const bool find = m == "DataService.findByField";
    const bool count = m == "DataService.count";
    if (find || count || m == "DataService.query") {
        const bool ok = count  ? types_are(p, {T::string, T::string, T::struct_})
                        : find ? (types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::string,
                                                T::array}) ||
                                  types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::integer,
                                                T::array}))
                               : (types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array}) ||
                                  types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array,
                                                T::string, T::boolean}));
        if (!ok) return no_matching_method(p);
        if (p[1].s != "Contact") return fault("[InvalidParameter]Invalid table name: " + p[1].s);
        std::vector<std::pair<std::string, Value>> conditions;
        if (find) {
            conditions.emplace_back(p[4].s, p[5]);
        } else {
            for (const auto& mem : p[count ? 2 : 4].members) conditions.push_back(mem);
        }
        for (const auto& [field, v] : conditions) {
            (void)v;
            if (!contact_field(KeapContact{}, field)) return fault(no_field(field));
        }
        std::vector<std::string> fields;
        if (!count) {
            if (auto bad = field_names(find ? p[6] : p[5], fields)) return fault(*bad);
        }
        std::vector<const KeapContact*> matches;
        for (const KeapContact* c : by_id(s)) {
            bool all = true;
            for (const auto& [field, want] : conditions) all = all && field_matches(*c, field, want);
            if (all) matches.push_back(c);
        }
        if (count) return answer(Value::integer(static_cast<int64_t>(matches.size())));
        std::string order = p.size() == 8 ? p[6].s : "Id";
        bool ascending = p.size() == 8 ? p[7].b : true;
        std::stable_sort(matches.begin(), matches.end(), [&](const KeapContact* a, const KeapContact* b) {
            auto va = contact_field(*a, order), vb = contact_field(*b, order);
            bool less = (va && vb) ? (va->type == T::integer ? va->i < vb->i : va->s < vb->s) : a->id < b->id;
            bool greater = (va && vb) ? (va->type == T::integer ? va->i > vb->i : va->s > vb->s) : a->id > b->id;
            return ascending ? less : greater;
        });
        return page_of(matches, p[2].i, p[3].i, fields);
    }
    return fault("No such handler: " + m);
}

bool known_method(const std::string& m) {
    static const char* const methods[] = {
        "DataService.getUserInfo",  "DataService.echo",           "ContactService.add",
        "ContactService.addWithDupCheck", "ContactService.update", "ContactService.load",
        "ContactService.findByEmail", "ContactService.addToGroup", "ContactService.removeFromGroup",
        "DataService.findByField",  "DataService.query",          "DataService.count",
        "DataService.load",         "DataService.update",         "DataService.add"};
    for (const char* x : methods) {
        if (m == x) return true;
    }
    return false;
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
