// Jira Cloud (v3, through api.atlassian.com/ex/jira/{cloudid}) and Data Center (v2) user lookups.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace keyrelay::jira {

// How a user from a search relates to the searched email. Jira's user search matches `query` against the start of
// display names and emails (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-user-search/), so
// "ada@example.co" also returns ada@example.com: only `exact` is the person asked for.
enum class Match {
    exact,          // the user's email is the searched one, ignoring ASCII case and surrounding spaces
    other_email,    // a different visible email: a similar user, not this email
    email_hidden,   // the email is hidden (profile visibility), so it cannot be compared
};

struct User {
    std::string account_id;                  // Cloud accountId; Data Center: key or name
    std::string display_name;
    std::optional<std::string> email;        // absent when the user hides it
    bool active = true;
    std::string account_type;                // "atlassian" | "app" | "customer" | "" (Data Center)
    Match match = Match::exact;              // set by parse_users; parse_myself leaves it exact
};

struct UserSearch {
    std::vector<User> users;
    // Set when the result is empty: "no such user OR no 'Browse users and groups' permission".
    std::optional<std::string> caveat;
};

struct Resource {
    std::string id;      // the cloud id
    std::string name;
    std::string url;     // https://<site>.atlassian.net
    std::vector<std::string> scopes;
};

// Credentials: OAuth/PAT Bearer, or Basic email:api_token.
void attach_bearer(HttpRequest& request, std::string_view token);
void attach_basic(HttpRequest& request, std::string_view email, std::string_view api_token);

// Cloud: base is the REST base, e.g. "https://api.atlassian.com/ex/jira/<cloudid>/rest/api/3",
// "https://site.atlassian.net/rest/api/3" or "/proxy/jira/rest/api/3". GET <base>/user/search?query=<email>
HttpRequest search_users(std::string_view base, std::string_view email, int max_results = 50);
// Data Center: base "https://jira.example.com/rest/api/2". GET <base>/user/search?username=<email>
HttpRequest search_users_dc(std::string_view base, std::string_view email, int max_results = 50);
HttpRequest myself(std::string_view base);
// url is the full accessible-resources URL (https://api.atlassian.com/oauth/token/accessible-resources).
HttpRequest accessible_resources(std::string_view url, std::string_view access_token);

// True when a and b are the same email: surrounding whitespace ignored, ASCII letters compared without case.
bool same_email(std::string_view a, std::string_view b);
// "exact", "other_email" or "email_hidden".
const char* match_name(Match match);

// The users of a search for searched_email, each marked with how it matches that email (Match).
// Errors: "jira.unauthorized" (401), "jira.forbidden" (403), "jira.not_found" (404), "jira.rate_limited" (429),
// "jira.http_error", "jira.not_json", "jira.unexpected_shape". Messages carry Jira's errorMessages.
Result<UserSearch> parse_users(const HttpResponse& response, std::string_view searched_email);
Result<User> parse_myself(const HttpResponse& response);
Result<std::vector<Resource>> parse_accessible_resources(const HttpResponse& response);

}  // namespace keyrelay::jira
