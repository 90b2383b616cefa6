// Jira Cloud (REST v3) and Data Center (REST v2) user lookups. Shapes: docs/reference/jira.md and
// https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-user-search/
#include "keyrelay/jira.h"

#include <string>
#include <utility>

#include "keyrelay/diagnose.h"

#include "explain.h"
#include "json_util.h"

namespace keyrelay::jira {
namespace {

using json_util::json;

constexpr const char* kEmptySearchCaveat =
    "No user matched — or the credentials lack Jira's global 'Browse users and groups' permission, which makes every "
    "search come back empty. Check with /rest/api/3/myself and the permission.";

HttpRequest get(std::string url) {
    HttpRequest r;
    r.method = "GET";
    r.url = std::move(url);
    r.headers.set("Accept", "application/json");
    return r;
}

bool is_success(int status) { return status >= 200 && status < 300; }

constexpr const char* kUnauthorizedHint =
    "Jira did not accept the credentials. With an API token: Basic email:api_token, where email is the Atlassian "
    "account's email and the token comes from id.atlassian.com (a password does not work). With OAuth: the access "
    "token expired (they last an hour) — keyrelay refreshes it; if this persists, reconnect Jira. Data Center takes "
    "a Personal Access Token as Bearer.";

// Jira's error body: {"errorMessages":["..."],"errors":{"field":"message"}}.
std::string jira_messages(const json& body) {
    std::string out;
    if (const json* messages = json_util::get_array(body, "errorMessages")) {
        for (const auto& m : *messages) {
            if (!m.is_string() || m.get_ref<const std::string&>().empty()) continue;
            if (!out.empty()) out += "; ";
            out += m.get_ref<const std::string&>();
        }
    }
    if (const json* errors = json_util::get_object(body, "errors")) {
        for (auto it = errors->begin(); it != errors->end(); ++it) {
            if (!it.value().is_string()) continue;
            if (!out.empty()) out += "; ";
            out += it.key() + ": " + it.value().get_ref<const std::string&>();
        }
    }
    if (out.empty()) out = json_util::string_or(body, "message");   // some gateways answer {"message": ...}
    return out;
}

Error jira_error(const HttpResponse& response) {
    const int status = response.status;
    json body = json_util::parse(explain::trim_body(response.body));
    if (body.is_discarded()) {
        Diagnosis d = diagnose(response, Expect::json);
        if (status == 401) return make_error("jira.unauthorized", d.summary, kUnauthorizedHint);
        const char* code = status == 401   ? "jira.unauthorized"
                           : status == 403 ? "jira.forbidden"
                           : status == 404 ? "jira.not_found"
                           : (status == 429 || d.code == "rate_limited")
                               ? "jira.rate_limited"
                               : (!is_success(status) && explain::trim_body(response.body).empty()) ? "jira.http_error"
                                                                                               : "jira.not_json";
        return make_error(code, d.summary, d.hint);
    }
    std::string messages = jira_messages(body);
    std::string text = "Jira answered " + explain::status_line(status) +
                       (messages.empty() ? std::string(" with no error message")
                                         : ": \"" + explain::one_line(messages, 300) + "\"") +
                       ".";
    if (status == 401) {
        return make_error("jira.unauthorized", text, kUnauthorizedHint);
    }
    if (status == 403) {
        if (icontains(messages, "XSRF") || icontains(response.body, "XSRF")) {
            return make_error("jira.forbidden", text,
                              "Jira's XSRF check refused a call that carried a browser User-Agent or cookies: call "
                              "from a server without them (keyrelay's proxy drops them).");
        }
        return make_error("jira.forbidden", text,
                          "The credentials are valid but not allowed to do this: user search needs the global "
                          "'Browse users and groups' permission and, with OAuth, the read:jira-user scope. Ask a "
                          "Jira admin, then reconnect so the new scope applies.");
    }
    if (status == 404) {
        return make_error("jira.not_found", text,
                          "Check the base URL: Cloud with OAuth is https://api.atlassian.com/ex/jira/<cloud id>/rest/"
                          "api/3 (the cloud id comes from accessible-resources); with an API token "
                          "https://<site>.atlassian.net/rest/api/3. Some Jira endpoints answer 404 when the "
                          "credentials cannot see the resource.");
    }
    if (status == 429) {
        explain::RateLimit rl = explain::rate_limit(response, std::nullopt);
        return make_error("jira.rate_limited", text, rl.when + " Pace the calls and cache lookups you repeat.");
    }
    if (icontains(messages, "GDPR") || icontains(messages, "username")) {
        return make_error("jira.http_error", text,
                          "Jira Cloud refuses username= searches (GDPR strict mode): search with query=<email> "
                          "(jira::search_users). username= is for Jira Data Center (jira::search_users_dc).");
    }
    if (is_success(status)) {
        return make_error("jira.unexpected_shape", text, "Check the base URL: this is another endpoint's answer.");
    }
    return make_error("jira.http_error", text, diagnose(response, Expect::json).hint);
}

Error unexpected_shape(const HttpResponse& response, std::string what) {
    return make_error("jira.unexpected_shape",
                      "Jira answered " + explain::status_line(response.status) + " with JSON that is not " + what +
                          ": " + explain::one_line(response.body, 160),
                      "The URL most likely points at another endpoint: check the base URL (it should end with "
                      "/rest/api/3 for Cloud or /rest/api/2 for Data Center).");
}

Result<json> json_body(const HttpResponse& response) {
    if (!is_success(response.status)) return jira_error(response);
    json body = json_util::parse(explain::trim_body(response.body));
    if (body.is_discarded()) return jira_error(response);
    return body;
}

// Cloud users carry accountId; Data Center users carry key and name instead.
std::optional<User> user_from(const json& u) {
    if (!u.is_object()) return std::nullopt;
    User out;
    if (auto id = json_util::get_string(u, "accountId"); id && !id->empty()) {
        out.account_id = *id;
    } else if (auto key = json_util::get_string(u, "key"); key && !key->empty()) {
        out.account_id = *key;
    } else if (auto name = json_util::get_string(u, "name"); name && !name->empty()) {
        out.account_id = *name;
    } else {
        return std::nullopt;
    }
    out.display_name = json_util::string_or(u, "displayName");
    // Cloud hides emailAddress (absent or null) per the user's profile visibility.
    if (auto email = json_util::get_string(u, "emailAddress"); email && !email->empty()) out.email = *email;
    out.active = json_util::get_bool(u, "active").value_or(true);
    out.account_type = json_util::string_or(u, "accountType");
    return out;
}

}  // namespace

void attach_bearer(HttpRequest& request, std::string_view token) {
    request.headers.set("Authorization", "Bearer " + std::string(token));
}

// RFC 7617: "Basic " + base64(user-id ":" password). Atlassian's API-token auth is plain RFC 7617 — unlike
// RFC 6749 §2.3.1 client authentication, the email and token are NOT form-urlencoded first.
void attach_basic(HttpRequest& request, std::string_view email, std::string_view api_token) {
    request.headers.set("Authorization", "Basic " + base64_encode(std::string(email) + ":" + std::string(api_token)));
}

HttpRequest search_users(std::string_view base, std::string_view email, int max_results) {
    return get(join_url(base, "/user/search?query=" + percent_encode(email) +
                                  "&maxResults=" + std::to_string(max_results)));
}

HttpRequest search_users_dc(std::string_view base, std::string_view email, int max_results) {
    return get(join_url(base, "/user/search?username=" + percent_encode(email) +
                                  "&maxResults=" + std::to_string(max_results)));
}

HttpRequest myself(std::string_view base) { return get(join_url(base, "/myself")); }

HttpRequest accessible_resources(std::string_view url, std::string_view access_token) {
    HttpRequest r = get(std::string(url));
    attach_bearer(r, access_token);
    return r;
}

bool same_email(std::string_view a, std::string_view b) { return iequals(trim(a), trim(b)); }

const char* match_name(Match match) {
    switch (match) {
        case Match::exact: return "exact";
        case Match::other_email: return "other_email";
        case Match::email_hidden: return "email_hidden";
    }
    return "exact";
}

Result<UserSearch> parse_users(const HttpResponse& response, std::string_view searched_email) {
    auto body = json_body(response);
    if (!body) return body.error();
    if (!body->is_array()) return unexpected_shape(response, "a list of users");
    UserSearch out;
    for (const auto& u : *body) {
        auto user = user_from(u);
        if (!user) return unexpected_shape(response, "a list of users (each with accountId, or key/name)");
        user->match = !user->email                            ? Match::email_hidden
                      : same_email(*user->email, searched_email) ? Match::exact
                                                                  : Match::other_email;
        out.users.push_back(std::move(*user));
    }
    if (out.users.empty()) out.caveat = kEmptySearchCaveat;
    return out;
}

Result<User> parse_myself(const HttpResponse& response) {
    auto body = json_body(response);
    if (!body) return body.error();
    auto user = user_from(*body);
    if (!user) return unexpected_shape(response, "a user (an object with accountId, or key/name)");
    return std::move(*user);
}

Result<std::vector<Resource>> parse_accessible_resources(const HttpResponse& response) {
    auto body = json_body(response);
    if (!body) return body.error();
    if (!body->is_array()) return unexpected_shape(response, "a list of accessible resources");
    std::vector<Resource> out;
    for (const auto& r : *body) {
        auto id = json_util::get_string(r, "id");
        if (!id || id->empty()) return unexpected_shape(response, "a list of resources, each with an id");
        Resource res;
        res.id = *id;
        res.name = json_util::string_or(r, "name");
        res.url = json_util::string_or(r, "url");
        if (const json* scopes = json_util::get_array(r, "scopes")) {
            for (const auto& s : *scopes) {
                if (s.is_string()) res.scopes.push_back(s.get_ref<const std::string&>());
            }
        }
        out.push_back(std::move(res));
    }
    return out;
}

}  // namespace keyrelay::jira
