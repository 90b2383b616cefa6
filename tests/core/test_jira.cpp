#include <catch2/catch.hpp>

#include <string>

#include "core/fixtures.h"
#include "keyrelay/jira.h"

namespace jira = keyrelay::jira;
using keyrelay::HttpRequest;
using keyrelay::HttpResponse;

namespace {

const char* kCloud = "https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789/rest/api/3";
const char* kDataCenter = "https://jira.example.com/rest/api/2";

HttpResponse response(int status, std::string body, std::string content_type = "application/json") {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (!content_type.empty()) r.headers.set("Content-Type", content_type);
    return r;
}

HttpResponse fixture(int status, const std::string& name, std::string content_type = "application/json") {
    return response(status, fixtures::read("jira/" + name), std::move(content_type));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("Cloud user search is a GET with query and maxResults", "[jira]") {
    HttpRequest r = jira::search_users(kCloud, "ada+1@example.com", 20);
    CHECK(r.method == "GET");
    CHECK(r.url == std::string(kCloud) + "/user/search?query=ada%2B1%40example.com&maxResults=20");
    CHECK(r.headers.get("Accept") == "application/json");
    CHECK(r.body.empty());   // Jira Cloud's CDN rejects GETs with a body
}

TEST_CASE("Data Center user search uses username", "[jira]") {
    HttpRequest r = jira::search_users_dc(kDataCenter, "ada@example.com");
    CHECK(r.method == "GET");
    CHECK(r.url == "https://jira.example.com/rest/api/2/user/search?username=ada%40example.com&maxResults=50");
    CHECK(r.headers.get("Accept") == "application/json");
}

TEST_CASE("myself and accessible-resources are JSON GETs", "[jira]") {
    HttpRequest m = jira::myself("/proxy/jira/rest/api/3");
    CHECK(m.method == "GET");
    CHECK(m.url == "/proxy/jira/rest/api/3/myself");
    CHECK(m.headers.get("Accept") == "application/json");

    HttpRequest a = jira::accessible_resources("https://api.atlassian.com/oauth/token/accessible-resources", "at-1");
    CHECK(a.method == "GET");
    CHECK(a.url == "https://api.atlassian.com/oauth/token/accessible-resources");
    CHECK(a.headers.get("Authorization") == "Bearer at-1");
    CHECK(a.headers.get("Accept") == "application/json");
}

TEST_CASE("Basic auth for an API token is plain RFC 7617, not urlencoded", "[jira]") {
    HttpRequest r = jira::myself(kCloud);
    jira::attach_basic(r, "a+b@example.com", "tok/en=");
    // base64("a+b@example.com:tok/en=")
    CHECK(r.headers.get("Authorization") == "Basic YStiQGV4YW1wbGUuY29tOnRvay9lbj0=");
    jira::attach_bearer(r, "pat");
    CHECK(r.headers.get("Authorization") == "Bearer pat");
}

TEST_CASE("Cloud users parse with their email", "[jira]") {
    auto s = jira::parse_users(fixture(200, "cloud_users.json"), "ada@example.com");
    REQUIRE(s.ok());
    REQUIRE(s->users.size() == 1);
    const jira::User& u = s->users.front();
    CHECK(u.account_id == "5b10ac8d82e05b22cc7d4ef5");
    CHECK(u.display_name == "Ada Lovelace");
    REQUIRE(u.email.has_value());
    CHECK(*u.email == "ada@example.com");
    CHECK(u.active);
    CHECK(u.account_type == "atlassian");
    CHECK_FALSE(s->caveat.has_value());
}

TEST_CASE("a hidden email is absent, whether missing or null", "[jira]") {
    auto s = jira::parse_users(fixture(200, "cloud_users_hidden_email.json"), "ada@example.com");
    REQUIRE(s.ok());
    REQUIRE(s->users.size() == 3);
    CHECK_FALSE(s->users[0].email.has_value());
    CHECK(s->users[0].display_name == "Grace H.");
    CHECK_FALSE(s->users[1].email.has_value());
    REQUIRE(s->users[2].email.has_value());
    CHECK(s->users[2].account_type == "customer");
    CHECK_FALSE(s->users[2].active);
}

TEST_CASE("an empty search result carries the Browse users permission caveat", "[jira]") {
    auto s = jira::parse_users(fixture(200, "empty.json"), "ada@example.com");
    REQUIRE(s.ok());
    CHECK(s->users.empty());
    REQUIRE(s->caveat.has_value());
    CHECK(*s->caveat ==
          "No user matched — or the credentials lack Jira's global 'Browse users and groups' permission, which makes "
          "every search come back empty. Check with /rest/api/3/myself and the permission.");
}

TEST_CASE("Data Center users use key as their id", "[jira]") {
    auto s = jira::parse_users(fixture(200, "dc_users.json"), "ada@example.com");
    REQUIRE(s.ok());
    REQUIRE(s->users.size() == 1);
    CHECK(s->users[0].account_id == "JIRAUSER10100");
    CHECK(s->users[0].account_type.empty());
    CHECK(s->users[0].email == std::optional<std::string>("ada@example.com"));

    auto name_only = jira::parse_users(response(200, R"([{"name":"bob","displayName":"Bob"}])"), "bob@example.com");
    REQUIRE(name_only.ok());
    CHECK(name_only->users[0].account_id == "bob");
}

TEST_CASE("a user without any id is an unexpected shape", "[jira]") {
    auto s = jira::parse_users(response(200, R"([{"displayName":"Nobody"}])"), "ada@example.com");
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == "jira.unexpected_shape");
    auto obj = jira::parse_users(response(200, R"({"values":[]})"), "ada@example.com");
    REQUIRE_FALSE(obj.ok());
    CHECK(obj.error().code == "jira.unexpected_shape");
}

TEST_CASE("myself parses the calling user", "[jira]") {
    auto u = jira::parse_myself(fixture(200, "myself.json"));
    REQUIRE(u.ok());
    CHECK(u->account_id == "5b10ac8d82e05b22cc7d4ef5");
    CHECK(u->display_name == "Site Admin");
    CHECK(u->email == std::optional<std::string>("admin@example.com"));
}

TEST_CASE("accessible resources give the cloud ids and scopes", "[jira]") {
    auto r = jira::parse_accessible_resources(fixture(200, "accessible_resources.json"));
    REQUIRE(r.ok());
    REQUIRE(r->size() == 1);
    CHECK((*r)[0].id == "11223344-a1b2-3b33-c444-def123456789");
    CHECK((*r)[0].name == "keyrelay-sandbox");
    CHECK((*r)[0].url == "https://keyrelay-sandbox.atlassian.net");
    CHECK((*r)[0].scopes == std::vector<std::string>{"read:jira-user", "read:jira-work"});

    auto none = jira::parse_accessible_resources(response(200, "[]"));
    REQUIRE(none.ok());
    CHECK(none->empty());
}

TEST_CASE("Jira error bodies become messages with status-specific codes", "[jira]") {
    SECTION("401") {
        auto s = jira::parse_users(fixture(401, "error_401.json"), "ada@example.com");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.unauthorized");
        CHECK(contains(s.error().message, "You are not authenticated."));
        CHECK(contains(s.error().hint, "Basic email:api_token"));
    }
    SECTION("403 XSRF") {
        auto s = jira::parse_users(fixture(403, "error_403_xsrf.txt", "text/plain"), "ada@example.com");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.forbidden");
        CHECK(contains(s.error().hint, "User-Agent"));
    }
    SECTION("404") {
        auto s = jira::parse_myself(response(404, R"({"errorMessages":["Not found"],"errors":{}})"));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.not_found");
        CHECK(contains(s.error().hint, "cloud id"));
    }
    SECTION("400 with field errors") {
        auto s = jira::parse_users(fixture(400, "error_400_fields.json"), "ada@example.com");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.http_error");
        CHECK(contains(s.error().message, "maxResults: The value must be a positive number."));
    }
    SECTION("400 username in GDPR strict mode") {
        auto s = jira::parse_users(fixture(400, "error_400_username_gdpr.json"), "ada@example.com");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.http_error");
        CHECK(contains(s.error().hint, "query="));
    }
    SECTION("429 with Retry-After") {
        HttpResponse resp = fixture(429, "error_429.json");
        resp.headers.set("Retry-After", "5");
        auto s = jira::parse_users(resp, "ada@example.com");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == "jira.rate_limited");
        CHECK(contains(s.error().message, "Rate limit exceeded."));
        CHECK(contains(s.error().hint, "5 seconds"));
    }
}

TEST_CASE("a Jira answer that is not JSON is jira.not_json with the diagnosis", "[jira]") {
    auto s = jira::parse_users(response(200, "<html><head><title>Log in - Jira</title></head></html>", "text/html"),
                               "ada@example.com");
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == "jira.not_json");
    CHECK(contains(s.error().message, "Log in - Jira"));
}

TEST_CASE("a 401 without a JSON body still explains Jira's credentials", "[jira]") {
    auto s = jira::parse_myself(response(401, "", ""));
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == "jira.unauthorized");
    CHECK(contains(s.error().message, "empty body"));
    CHECK(contains(s.error().hint, "Basic email:api_token"));
}

TEST_CASE("same_email ignores surrounding spaces and ASCII case, nothing else", "[jira]") {
    CHECK(jira::same_email("ada@example.com", "ada@example.com"));
    CHECK(jira::same_email("  Ada@Example.COM\t", "ada@example.com"));
    CHECK(jira::same_email("ada@example.com", "\nADA@EXAMPLE.COM "));
    CHECK_FALSE(jira::same_email("ada@example.co", "ada@example.com"));
    CHECK_FALSE(jira::same_email("ada@example", "ada@example.com"));
    CHECK_FALSE(jira::same_email("ada@example.com", "ada@example.co"));
    CHECK_FALSE(jira::same_email("a da@example.com", "ada@example.com"));
    CHECK_FALSE(jira::same_email("", "ada@example.com"));
    CHECK(jira::same_email("", "  "));
}

TEST_CASE("a user search marks each user as this email, another email, or a hidden one", "[jira]") {
    // Jira matches the start of names and emails: a search for a prefix returns the longer address.
    const char* body = R"([
      {"accountId":"a1","displayName":"Ada Lovelace","emailAddress":"ada@example.com","active":true},
      {"accountId":"a2","displayName":"Ada Byron","emailAddress":"Ada@Example.co","active":true},
      {"accountId":"a3","displayName":"Ada Private","active":true}
    ])";
    SECTION("a prefix of an email is not that email") {
        auto s = jira::parse_users(response(200, body), "ada@example");
        REQUIRE(s.ok());
        REQUIRE(s->users.size() == 3);
        CHECK(s->users[0].match == jira::Match::other_email);
        CHECK(s->users[1].match == jira::Match::other_email);
        CHECK(s->users[2].match == jira::Match::email_hidden);
    }
    SECTION("the shorter email matches only its own user") {
        auto s = jira::parse_users(response(200, body), "ada@example.co");
        REQUIRE(s.ok());
        CHECK(s->users[0].match == jira::Match::other_email);
        CHECK(s->users[1].match == jira::Match::exact);
        CHECK(s->users[2].match == jira::Match::email_hidden);
    }
    SECTION("case and surrounding spaces of the searched email do not matter") {
        auto s = jira::parse_users(response(200, body), "  ADA@example.COM ");
        REQUIRE(s.ok());
        CHECK(s->users[0].match == jira::Match::exact);
        CHECK(s->users[1].match == jira::Match::other_email);
    }
    SECTION("a hidden email keeps no email and is never called exact") {
        auto s = jira::parse_users(fixture(200, "cloud_users_hidden_email.json"), "customer@example.com");
        REQUIRE(s.ok());
        CHECK(s->users[0].match == jira::Match::email_hidden);
        CHECK(s->users[1].match == jira::Match::email_hidden);
        CHECK(s->users[2].match == jira::Match::exact);
        CHECK_FALSE(s->caveat.has_value());
    }
    CHECK(std::string(jira::match_name(jira::Match::exact)) == "exact");
    CHECK(std::string(jira::match_name(jira::Match::other_email)) == "other_email");
    CHECK(std::string(jira::match_name(jira::Match::email_hidden)) == "email_hidden");
}
