#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "keyrelay/proxy.h"

using namespace keyrelay;
using namespace keyrelay::proxy;

TEST_CASE("a proxied path is returned with one leading slash and its query untouched", "[proxy]") {
    std::string raw, expected;
    std::tie(raw, expected) = GENERATE(table<std::string, std::string>({
        {"crm/rest/v1/contacts?email=a%40b.com", "/crm/rest/v1/contacts?email=a%40b.com"},
        {"/crm/rest/v1/contacts?email=a%40b.com&limit=1", "/crm/rest/v1/contacts?email=a%40b.com&limit=1"},
        {"crm/rest/v1/contacts/5", "/crm/rest/v1/contacts/5"},
        {"crm/rest/v2/contacts?filter=email%3D%3Djohn%40x.com&page_size=1",
         "/crm/rest/v2/contacts?filter=email%3D%3Djohn%40x.com&page_size=1"},
        {"rest/api/3/user/search?query=a@b.com", "/rest/api/3/user/search?query=a@b.com"},
        {"crm/rest/v1/contacts?", "/crm/rest/v1/contacts"},
        {"a/b%20c/d", "/a/b%20c/d"},
        {"a/100%25", "/a/100%25"},
        {"a/file.json", "/a/file.json"},
        {"a/...", "/a/..."},
        {"a/.hidden", "/a/.hidden"},
        {"a/b?next=/x/../y", "/a/b?next=/x/../y"},
        {"a/b?q=%0D%0A", "/a/b?q=%0D%0A"},
        {"a/b?q=%2525", "/a/b?q=%2525"},
    }));
    auto r = validate_path(raw);
    REQUIRE(r.ok());
    CHECK(*r == expected);
}

TEST_CASE("characters a URL cannot carry raw are sent percent-encoded", "[proxy]") {
    CHECK(validate_path("a/b c").value() == "/a/b%20c");
    CHECK(validate_path("a/caf\xc3\xa9").value() == "/a/caf%C3%A9");
    CHECK(validate_path("a?q=x y|z{}").value() == "/a?q=x%20y%7Cz%7B%7D");
    CHECK(validate_path("a?q=\"<>\"").value() == "/a?q=%22%3C%3E%22");
}

TEST_CASE("paths that could leave the provider's API are refused as proxy.bad_path", "[proxy]") {
    auto raw = GENERATE(as<std::string>{},
                        // scheme or authority: another host
                        "http://evil.example/x", "https:evil.example", "//evil.example/x", "///x", "javascript:alert(1)",
                        "http%3A//evil.example",
                        // dot-segments, raw and encoded
                        "..", "../admin", "a/../../admin", "a/./b", ".", "a/.", "a/..", "%2e%2e/admin", "%2E%2E/admin",
                        ".%2e/admin", "%2e./admin", "a/%2e/b", "a/..;/admin",
                        // encoded separators and backslashes
                        "a%2fb", "a%2Fb", "a%5cb", "a%5C..%5Cb", "a\\b", "..\\admin",
                        // double encoding
                        "%252e%252e/admin", "a%252Fb", "a/%2525",
                        // control characters, raw or encoded, in the path
                        "a%0d%0aX-Injected:1", "a%0A", "a%00b", "a%7f", "a%1b",
                        // bad escapes
                        "a%", "a%2", "a%zz",
                        // empty segments, empty path
                        "a//b", "a/", "", "/", "?x=1",
                        // fragments
                        "a#b", "a?x=1#frag",
                        // raw CR/LF/NUL anywhere, including the query
                        "a/b?x=1\r\nHost: evil", "a/b?x=\n", "a\tb");
    auto r = validate_path(raw);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "proxy.bad_path");
    CHECK_FALSE(r.error().message.empty());
    CHECK_FALSE(r.error().hint.empty());
}

TEST_CASE("raw NUL and DEL are refused", "[proxy]") {
    CHECK(validate_path(std::string("a\0b", 3)).error().code == "proxy.bad_path");
    CHECK(validate_path(std::string("a?x=\0", 5)).error().code == "proxy.bad_path");
    CHECK(validate_path("a\x7f").error().code == "proxy.bad_path");
}

TEST_CASE("a bad escape in the query is refused", "[proxy]") {
    auto r = validate_path("a?email=100%");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "proxy.bad_path");
    CHECK(r.error().hint.find("%25") != std::string::npos);
}

TEST_CASE("the refusal message shows control characters escaped", "[proxy]") {
    auto r = validate_path("a\r\nb");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("%0D%0A") != std::string::npos);
    CHECK(r.error().message.find('\r') == std::string::npos);
}

TEST_CASE("allowlist rules match methods and literal, '*' and '**' segments", "[proxy]") {
    std::vector<Rule> rules{{"GET", "/crm/rest/v1/contacts"},
                            {"PATCH", "/crm/rest/v1/contacts/*"},
                            {"GET", "/rest/api/3/**"},
                            {"*", "/crm/rest/v1/oauth/connect/userinfo"}};
    std::string method, path;
    bool expected;
    std::tie(method, path, expected) = GENERATE(table<std::string, std::string, bool>({
        {"GET", "/crm/rest/v1/contacts", true},
        {"GET", "/crm/rest/v1/contacts?email=a%40b.com", true},
        {"POST", "/crm/rest/v1/contacts", false},
        {"get", "/crm/rest/v1/contacts", false},
        {"GET", "/crm/rest/v1/contacts/5", false},
        {"PATCH", "/crm/rest/v1/contacts/5", true},
        {"PATCH", "/crm/rest/v1/contacts/5?update_mask=given_name", true},
        {"PATCH", "/crm/rest/v1/contacts", false},
        {"PATCH", "/crm/rest/v1/contacts/5/tags", false},
        {"GET", "/rest/api/3/myself", true},
        {"GET", "/rest/api/3/user/search?query=a", true},
        {"GET", "/rest/api/3", false},
        {"DELETE", "/rest/api/3/user", false},
        {"GET", "/rest/api/2/myself", false},
        {"DELETE", "/crm/rest/v1/oauth/connect/userinfo", true},
        {"GET", "/crm/rest/v1/oauth/connect/userinfo/x", false},
        {"GET", "/CRM/rest/v1/contacts", false},
        {"GET", "crm/rest/v1/contacts", false},
        {"GET", "/crm/rest/v1/contacts/", false},
        {"GET", "/rest/api/3/../../admin", false},
        {"GET", "/rest/api/3//x", false},
        {"GET", "", false},
    }));
    CHECK(allowed(rules, method, path) == expected);
}

TEST_CASE("no rules allow nothing", "[proxy]") {
    CHECK_FALSE(allowed({}, "GET", "/crm/rest/v1/contacts"));
}

TEST_CASE("'**' only counts as the last segment of a pattern", "[proxy]") {
    std::vector<Rule> rules{{"GET", "/a/**/c"}};
    CHECK_FALSE(allowed(rules, "GET", "/a/b/c"));
    CHECK_FALSE(allowed(rules, "GET", "/a/**/c"));
    std::vector<Rule> star{{"GET", "/a/*/c"}};
    CHECK(allowed(star, "GET", "/a/b/c"));
    CHECK_FALSE(allowed(star, "GET", "/a/b/d/c"));
}

TEST_CASE("a validated path is what the allowlist is checked against", "[proxy]") {
    std::vector<Rule> rules{{"GET", "/crm/rest/v1/contacts"}};
    auto path = validate_path("crm/rest/v1/contacts?email=a%40b.com");
    REQUIRE(path.ok());
    CHECK(allowed(rules, "GET", *path));
    CHECK_FALSE(validate_path("crm/rest/v1/contacts/%2e%2e/%2e%2e/v2/x").ok());
}
