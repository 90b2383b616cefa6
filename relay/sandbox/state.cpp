#include "state.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "keyrelay/http.h"

namespace keyrelay::sandbox {

using json = nlohmann::json;

const char* provider_name(Provider p) { return p == Provider::keap ? "keap" : "jira"; }

std::string random_token(size_t n) {
    std::string bytes(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(n)) != 1) {
        // OpenSSL's CSPRNG does not fail once seeded; if it ever does, never hand out a predictable token.
        std::abort();
    }
    return base64url_encode(bytes);
}

namespace {

constexpr int64_t kDay = 86400;

const char* const kBuiltinRedirects[] = {
    "http://127.0.0.1:8080/callback/keap",
    "http://127.0.0.1:8080/callback/jira",
    "http://localhost:8080/callback/keap",
    "http://localhost:8080/callback/jira",
};

JiraUser user(std::string account_id, std::string username, std::string name, std::string email) {
    JiraUser u;
    u.account_id = std::move(account_id);
    u.username = std::move(username);
    u.display_name = std::move(name);
    u.email = std::move(email);
    return u;
}

// The accounts behind the sandbox's Jira credentials always exist, whatever the data file says.
void add_credential_owners(std::vector<JiraUser>& users) {
    auto has = [&](const char* email) {
        return std::any_of(users.begin(), users.end(), [&](const JiraUser& u) { return u.email == email; });
    };
    if (!has(ids::jira_admin_email)) {
        users.push_back(user("5b10a0effa615349cb016cd8", "admin", "Sandbox Admin", ids::jira_admin_email));
    }
    if (!has(ids::jira_no_browse_email)) {
        JiraUser intern = user("5b10ac8d82e05b22cc7d4ef5", "intern", "Sandbox Intern", ids::jira_no_browse_email);
        intern.browse_users = false;
        users.push_back(intern);
    }
    for (auto& u : users) {
        if (u.email == ids::jira_no_browse_email) u.browse_users = false;
    }
}

std::string str_field(const json& obj, const char* name) {
    auto it = obj.find(name);
    return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

bool bool_field(const json& obj, const char* name, bool fallback) {
    auto it = obj.find(name);
    return (it != obj.end() && it->is_boolean()) ? it->get<bool>() : fallback;
}

Error bad_data(const std::string& file, const std::string& what) {
    return make_error("sandbox.bad_data", "The data file " + file + " " + what + ".",
                      "Give --data a JSON file shaped like {\"keap_contacts\":[{\"id\":101,\"given_name\":\"Ada\","
                      "\"family_name\":\"Lovelace\",\"email\":\"ada@example.com\"}],\"jira_users\":[{\"display_name\":"
                      "\"Ada Lovelace\",\"email\":\"ada@example.com\"}]}, or leave --data out for the built-in data.");
}

}  // namespace

SampleData builtin_data() {
    SampleData d;
    const int64_t created = 1700000000;   // 2023-11-14: a fixed date, so answers are stable
    auto contact = [&](int64_t id, const char* given, const char* family, const char* email) {
        KeapContact c;
        c.id = id;
        c.given_name = given;
        c.family_name = family;
        c.email = email;
        c.created = c.updated = created;
        return c;
    };
    d.contacts = {
        contact(101, "Ada", "Lovelace", "ada@example.com"),
        contact(4393, "Ben", "Anderson", "ben.anderson@example.com"),
        contact(5, "Paul", "Grover", "paul@example.com"),
    };
    d.users.push_back(user("5d53f3cbc6b9320d9ea5bdc2", "ada", "Ada Lovelace", "ada@example.com"));
    d.users.push_back(user("5e1c9e2f8c4a3a0e7d1b2c3d", "ben.anderson", "Ben Anderson", "ben.anderson@example.com"));
    d.users.push_back(user("60a7b3c2d1e0f9a8b7c6d5e4", "grace", "Grace Hopper", "grace@example.com"));
    JiraUser hidden = user("61b8c4d3e2f1a0b9c8d7e6f5", "private", "Private User", "private@example.com");
    hidden.email_hidden = true;
    d.users.push_back(hidden);
    JiraUser former = user("62c9d5e4f3a2b1c0d9e8f7a6", "former", "Former Employee", "former@example.com");
    former.active = false;
    d.users.push_back(former);
    add_credential_owners(d.users);
    return d;
}

Result<SampleData> load_data(const std::string& file) {
    if (file.empty()) return builtin_data();
    std::ifstream in(file, std::ios::binary);
    if (!in) return bad_data(file, "cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    json doc = json::parse(ss.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return bad_data(file, "is not a JSON object");
    SampleData d;
    int64_t next_id = 1;
    if (auto it = doc.find("keap_contacts"); it != doc.end()) {
        if (!it->is_array()) return bad_data(file, "has a keap_contacts that is not an array");
        for (const auto& c : *it) {
            if (!c.is_object()) return bad_data(file, "has a keap_contacts entry that is not an object");
            KeapContact k;
            auto idit = c.find("id");
            k.id = (idit != c.end() && idit->is_number_integer()) ? idit->get<int64_t>() : 0;
            k.given_name = str_field(c, "given_name");
            k.family_name = str_field(c, "family_name");
            k.email = str_field(c, "email");
            // Also accept the REST shape: "email_addresses":[{"email":...,"field":"EMAIL1"}].
            if (auto ea = c.find("email_addresses"); k.email.empty() && ea != c.end() && ea->is_array() &&
                                                     !ea->empty() && (*ea)[0].is_object()) {
                k.email = str_field((*ea)[0], "email");
            }
            k.created = k.updated = 1700000000;
            d.contacts.push_back(k);
            next_id = std::max(next_id, k.id + 1);
        }
        for (auto& k : d.contacts) {
            if (k.id <= 0) k.id = next_id++;
        }
    }
    if (auto it = doc.find("jira_users"); it != doc.end()) {
        if (!it->is_array()) return bad_data(file, "has a jira_users that is not an array");
        int n = 0;
        for (const auto& j : *it) {
            if (!j.is_object()) return bad_data(file, "has a jira_users entry that is not an object");
            JiraUser u;
            u.display_name = str_field(j, "display_name");
            u.email = str_field(j, "email");
            if (u.display_name.empty()) return bad_data(file, "has a jira_users entry without display_name");
            u.account_id = str_field(j, "account_id");
            if (u.account_id.empty()) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "70%022d", ++n);
                u.account_id = buf;
            }
            u.username = str_field(j, "username");
            if (u.username.empty()) u.username = u.email.substr(0, u.email.find('@'));
            u.active = bool_field(j, "active", true);
            u.email_hidden = bool_field(j, "email_hidden", false);
            u.browse_users = bool_field(j, "browse_users", true);
            if (auto t = str_field(j, "account_type"); !t.empty()) u.account_type = t;
            if (auto t = str_field(j, "time_zone"); !t.empty()) u.time_zone = t;
            d.users.push_back(u);
        }
    }
    add_credential_owners(d.users);
    return d;
}

State::State(Options options, SampleData data) : options_(std::move(options)), data_(std::move(data)) { reset(); }

void State::reset() {
    auto_approve = options_.auto_approve;
    clock_offset = 0;
    apps.clear();
    std::vector<std::string> redirects(std::begin(kBuiltinRedirects), std::end(kBuiltinRedirects));
    for (const auto& r : options_.redirect_uris) {
        if (std::find(redirects.begin(), redirects.end(), r) == redirects.end()) redirects.push_back(r);
    }
    App keap;
    keap.provider = Provider::keap;
    keap.client_id = ids::keap_client_id;
    keap.client_secret = ids::keap_client_secret;
    keap.redirect_uris = redirects;
    keap.access_ttl = options_.access_ttl > 0 ? options_.access_ttl : 86400;             // keap.md: 24 h
    keap.refresh_ttl = options_.refresh_ttl > 0 ? options_.refresh_ttl : 45 * kDay;      // keap.md: 45 days
    apps[keap.client_id] = keap;
    App jira;
    jira.provider = Provider::jira;
    jira.client_id = ids::jira_client_id;
    jira.client_secret = ids::jira_client_secret;
    jira.redirect_uris = redirects;
    jira.access_ttl = options_.access_ttl > 0 ? options_.access_ttl : 3600;              // jira.md: 1 h
    jira.refresh_ttl = options_.refresh_ttl > 0 ? options_.refresh_ttl : 90 * kDay;      // 90 days inactivity
    apps[jira.client_id] = jira;

    codes.clear();
    grants.clear();
    access_tokens.clear();
    refresh_tokens.clear();
    next_grant = 1;

    contacts = data_.contacts;
    keap_tags = {{10, "Newsletter"}, {12, "Customer"}, {31, "VIP"}};
    next_contact_id = 1;
    for (const auto& c : contacts) next_contact_id = std::max(next_contact_id, c.id + 1);
    users = data_.users;

    requests.clear();
    token_stats.clear();
    failures.clear();
    limits = Limits{};
    buckets.clear();
    daily.clear();
}

double State::now_precise() const {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count() + clock_offset;
}

int64_t State::now() const { return static_cast<int64_t>(std::floor(now_precise())); }

App* State::app(const std::string& client_id) {
    auto it = apps.find(client_id);
    return it == apps.end() ? nullptr : &it->second;
}

App* State::app_of(Provider p) {
    for (auto& [id, a] : apps) {
        if (a.provider == p) return &a;
    }
    return nullptr;
}

App* State::authenticate_client(const std::string& client_id, const std::string& secret, Provider p,
                                bool is_refresh) {
    App* a = app(client_id);
    if (a && a->provider == p && secret == a->client_secret) return a;
    if (a && a->provider == p) {
        TokenStats& st = stats_for(client_id, p);
        (is_refresh ? st.refresh_failures : st.exchange_failures)++;
    }
    return nullptr;
}

TokenStats& State::stats_for(const std::string& client_id, Provider p) {
    auto it = token_stats.find(client_id);
    if (it == token_stats.end()) {
        TokenStats s;
        s.provider = p;
        it = token_stats.emplace(client_id, s).first;
    }
    return it->second;
}

std::pair<std::string, std::string> State::issue_tokens(const Grant& grant, bool with_refresh) {
    const App* a = app(grant.client_id);
    const int64_t t = now();
    // Fixed prefixes (INTERFACE.md "Token formats") let leak scans recognise a sandbox token anywhere.
    const std::string prefix = grant.provider == Provider::keap ? "sbx_keap_" : "sbx_jira_";
    std::string access = prefix + "at_" + random_token(grant.provider == Provider::keap ? 21 : 48);
    access_tokens[access] = AccessToken{grant.id, t + (a ? a->access_ttl : 3600)};
    std::string refresh;
    if (with_refresh) {
        refresh = prefix + "rt_" + random_token(grant.provider == Provider::keap ? 21 : 48);
        refresh_tokens[refresh] = RefreshToken{grant.id, t + (a ? a->refresh_ttl : 86400), 0};
    }
    return {access, refresh};
}

const Grant* State::grant_for_access(const std::string& token, bool* expired) {
    if (expired) *expired = false;
    auto it = access_tokens.find(token);
    if (it == access_tokens.end()) return nullptr;
    auto g = grants.find(it->second.grant);
    if (g == grants.end() || g->second.revoked) return nullptr;
    if (now() >= it->second.expires_at) {
        if (expired) *expired = true;
        return nullptr;
    }
    return &g->second;
}

void State::revoke_grant(int64_t grant_id) {
    auto g = grants.find(grant_id);
    if (g != grants.end()) g->second.revoked = true;
}

std::optional<Failure> State::take_failure(const std::string& path) {
    for (auto it = failures.begin(); it != failures.end(); ++it) {
        if (path.compare(0, it->path.size(), it->path) != 0) continue;
        Failure f = *it;
        if (--it->count <= 0) failures.erase(it);
        return f;
    }
    return std::nullopt;
}

double State::take_token(const std::string& key, double capacity, double per_second) {
    const double t = now_precise();
    Bucket& b = buckets[key];
    if (b.tokens < 0) {
        b.tokens = capacity;
        b.last = t;
    }
    if (t > b.last) {
        b.tokens = std::min(capacity, b.tokens + (t - b.last) * per_second);
        b.last = t;
    }
    if (b.tokens >= 1) {
        b.tokens -= 1;
        return b.tokens;
    }
    const double wait = per_second > 0 ? (1 - b.tokens) / per_second : 86400;
    return -std::max(wait, 1e-3);
}

int64_t State::count_daily(const std::string& key) {
    const int64_t day = now() / kDay;
    DailyCount& d = daily[key];
    if (d.day != day) {
        d.day = day;
        d.used = 0;
    }
    return ++d.used;
}

const JiraUser* State::user_by_email(const std::string& email) const {
    for (const auto& u : users) {
        if (iequals(u.email, email)) return &u;
    }
    return nullptr;
}

KeapContact* State::contact(int64_t id) {
    for (auto& c : contacts) {
        if (c.id == id) return &c;
    }
    return nullptr;
}

}  // namespace keyrelay::sandbox
