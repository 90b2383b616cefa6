#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "keyrelay/http.h"

using namespace keyrelay;

TEST_CASE("header names are looked up case-insensitively and keep their order", "[http]") {
    Headers h{{"Content-Type", "application/json"}, {"X-Keap-Tenant-Id", "ab123.infusionsoft.com"}};
    h.add("Set-Cookie", "a=1");
    h.add("set-cookie", "b=2");

    CHECK(h.get("content-type") == std::optional<std::string>("application/json"));
    CHECK(h.get("X-KEAP-TENANT-ID") == std::optional<std::string>("ab123.infusionsoft.com"));
    CHECK(h.has("SET-COOKIE"));
    CHECK_FALSE(h.has("Authorization"));
    CHECK_FALSE(h.get("Authorization").has_value());
    CHECK(h.get("Set-Cookie") == std::optional<std::string>("a=1"));
    REQUIRE(h.find("SET-cookie") != nullptr);
    CHECK(*h.find("SET-cookie") == "a=1");   // find: the first value, without a copy
    CHECK(h.find("Authorization") == nullptr);
    REQUIRE(h.items().size() == 4);
    CHECK(h.items()[2].second == "a=1");
    CHECK(h.items()[3].second == "b=2");
}

TEST_CASE("setting a header replaces every value it had, in place", "[http]") {
    Headers h{{"Accept", "text/html"}, {"Set-Cookie", "a=1"}, {"X-Other", "x"}, {"set-cookie", "b=2"}};
    h.set("SET-COOKIE", "c=3");
    REQUIRE(h.items().size() == 3);
    CHECK(h.items()[0].first == "Accept");
    CHECK(h.items()[1].first == "SET-COOKIE");
    CHECK(h.items()[1].second == "c=3");
    CHECK(h.items()[2].first == "X-Other");

    h.set("Authorization", "Bearer t");
    CHECK(h.items().back().first == "Authorization");

    h.remove("set-cookie");
    CHECK_FALSE(h.has("Set-Cookie"));
    CHECK(h.items().size() == 3);
    CHECK_FALSE(h.empty());
    CHECK(Headers{}.empty());
}

TEST_CASE("iequals compares ASCII case-insensitively", "[http]") {
    CHECK(iequals("Content-Length", "content-length"));
    CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
    CHECK_FALSE(iequals("a", "b"));
    CHECK(iequals("", ""));
}

TEST_CASE("percent_encode keeps only RFC 3986 unreserved characters", "[http]") {
    std::string input, expected;
    std::tie(input, expected) = GENERATE(table<std::string, std::string>({
        {"abcXYZ019-._~", "abcXYZ019-._~"},
        {"a b", "a%20b"},
        {"a+b", "a%2Bb"},
        {"a@b.com", "a%40b.com"},
        {"full|ab123.infusionsoft.com", "full%7Cab123.infusionsoft.com"},
        {"https://x/cb?a=1&b=2", "https%3A%2F%2Fx%2Fcb%3Fa%3D1%26b%3D2"},
        {"100%", "100%25"},
        {"\xc3\xa9", "%C3%A9"},
        {std::string("\0\r\n", 3), "%00%0D%0A"},
    }));
    CHECK(percent_encode(input) == expected);
    auto back = percent_decode(expected);
    REQUIRE(back.ok());
    CHECK(*back == input);
}

TEST_CASE("form_urlencode writes spaces as plus and encodes plus", "[http]") {
    CHECK(form_urlencode("User denied access") == "User+denied+access");
    CHECK(form_urlencode("a+b=c&d") == "a%2Bb%3Dc%26d");
    CHECK(form_urlencode("~-._") == "~-._");
    // The client credentials of tests/docs/client_credentials.test.mjs: the docs' examples must give these bytes.
    CHECK(form_urlencode("client id/1") == "client+id%2F1");
    CHECK(form_urlencode("open sesame+/=%:~*!'()\xC3\xA9") == "open+sesame%2B%2F%3D%25%3A~%2A%21%27%28%29%C3%A9");
    CHECK(form_encode({{"grant_type", "refresh_token"}, {"refresh_token", "a b+c/d="}}) ==
          "grant_type=refresh_token&refresh_token=a+b%2Bc%2Fd%3D");
    CHECK(form_encode({}) == "");
}

TEST_CASE("percent_decode turns plus into space only for forms", "[http]") {
    CHECK(percent_decode("a+b%20c").value() == "a+b c");
    CHECK(percent_decode("a+b%20c", true).value() == "a b c");
    CHECK(percent_decode("%e2%82%AC").value() == "\xe2\x82\xac");
    CHECK(percent_decode("").value() == "");
}

TEST_CASE("percent_decode refuses a percent sign without two hex digits", "[http]") {
    auto input = GENERATE(as<std::string>{}, "%", "a%2", "%zz", "100%", "%2g", "%%41");
    auto r = percent_decode(input);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "http.bad_percent_encoding");
    CHECK_FALSE(r.error().hint.empty());
}

TEST_CASE("form bodies round-trip through encode and decode", "[http]") {
    Params params{{"client_id", "id with space"},
                  {"client_secret", "s+/=%:&?#"},
                  {"empty", ""},
                  {"redirect_uri", "https://relay.example/oauth/keap/callback"},
                  {"dup", "1"},
                  {"dup", "2"}};
    auto decoded = form_decode(form_encode(params));
    REQUIRE(decoded.ok());
    CHECK(*decoded == params);
}

TEST_CASE("form_decode skips empty pairs and accepts names without a value", "[http]") {
    auto r = form_decode("a=1&&b&c=&=d&e=x=y");
    REQUIRE(r.ok());
    Params expected{{"a", "1"}, {"b", ""}, {"c", ""}, {"", "d"}, {"e", "x=y"}};
    CHECK(*r == expected);
    CHECK(form_decode("").value().empty());

    auto bad = form_decode("a=%G1");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == "http.bad_percent_encoding");
}

TEST_CASE("parse_query reads Keap's deny redirect", "[http]") {
    auto r = parse_query(
        "https://relay.example/oauth/keap/callback?state=&error=access_denied&error_description=User+denied+access+to+"
        "resource");
    REQUIRE(r.ok());
    CHECK(param(*r, "state") == std::optional<std::string>(""));
    CHECK(param(*r, "error") == std::optional<std::string>("access_denied"));
    CHECK(param(*r, "error_description") == std::optional<std::string>("User denied access to resource"));
    CHECK_FALSE(param(*r, "code").has_value());
}

TEST_CASE("parse_query accepts a URL, a ?query or a bare query", "[http]") {
    Params expected{{"code", "abc"}, {"scope", "full|ab123.infusionsoft.com"}};
    CHECK(parse_query("https://h/cb?code=abc&scope=full%7Cab123.infusionsoft.com#frag").value() == expected);
    CHECK(parse_query("/cb?code=abc&scope=full%7Cab123.infusionsoft.com").value() == expected);
    CHECK(parse_query("?code=abc&scope=full%7Cab123.infusionsoft.com").value() == expected);
    CHECK(parse_query("code=abc&scope=full%7Cab123.infusionsoft.com").value() == expected);
    CHECK(parse_query("https://h/cb").value().empty());
    CHECK(parse_query("/cb").value().empty());
    CHECK(parse_query("").value().empty());
    CHECK(parse_query("/cb?x=%").error().code == "http.bad_percent_encoding");
}

TEST_CASE("param returns the first value of a name", "[http]") {
    Params p{{"a", "1"}, {"a", "2"}, {"B", "3"}};
    CHECK(param(p, "a") == std::optional<std::string>("1"));
    CHECK_FALSE(param(p, "b").has_value());
}

TEST_CASE("base64 matches the RFC 4648 test vectors", "[http]") {
    std::string input, encoded;
    std::tie(input, encoded) = GENERATE(table<std::string, std::string>({
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    }));
    CHECK(base64_encode(input) == encoded);
    CHECK(base64_decode(encoded).value() == input);
}

TEST_CASE("base64 handles every byte value", "[http]") {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    auto back = base64_decode(base64_encode(all));
    REQUIRE(back.ok());
    CHECK(*back == all);
    CHECK(base64_encode("\xfb\xff") == "+/8=");
    CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("base64_decode accepts missing padding and whitespace", "[http]") {
    CHECK(base64_decode("Zm9vYg").value() == "foob");
    CHECK(base64_decode("Zm9v\r\nYmFy\n").value() == "foobar");
    CHECK(base64_decode(" Zm8= ").value() == "fo");
}

TEST_CASE("base64_decode refuses text outside the alphabet or with broken padding", "[http]") {
    auto input = GENERATE(as<std::string>{}, "Zm9v!", "Zm-_", "Z", "Zm9vY", "Zg=a", "Zg===", "Zm8==", "=");
    auto r = base64_decode(input);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "base64.invalid");
}

TEST_CASE("base64url has no padding and uses - and _", "[http]") {
    CHECK(base64url_encode("") == "");
    CHECK(base64url_encode("f") == "Zg");
    CHECK(base64url_encode("fo") == "Zm8");
    CHECK(base64url_encode("foo") == "Zm9v");
    CHECK(base64url_encode("\xff\xfe\xfd") == "__79");
}

TEST_CASE("parse_url splits scheme, host, port, path and query", "[http]") {
    auto u = parse_url("HTTPS://Api.InfusionSoft.com/crm/rest/v1/contacts?email=a%40b.com#x");
    REQUIRE(u.ok());
    CHECK(u->scheme == "https");
    CHECK(u->host == "api.infusionsoft.com");
    CHECK(u->port == 443);
    CHECK(u->path == "/crm/rest/v1/contacts");
    CHECK(u->query == "email=a%40b.com");

    auto local = parse_url("http://127.0.0.1:8081");
    REQUIRE(local.ok());
    CHECK(local->port == 8081);
    CHECK(local->path == "/");
    CHECK(local->query.empty());

    auto plain = parse_url("http://localhost?x=1");
    REQUIRE(plain.ok());
    CHECK(plain->port == 80);
    CHECK(plain->path == "/");
    CHECK(plain->query == "x=1");

    auto v6 = parse_url("https://[::1]:8443/token");
    REQUIRE(v6.ok());
    CHECK(v6->host == "[::1]");
    CHECK(v6->port == 8443);
    CHECK(v6->path == "/token");
}

TEST_CASE("parse_url refuses what it cannot call, with a hint", "[http]") {
    auto input = GENERATE(as<std::string>{}, "", "api.infusionsoft.com/token", "ftp://h/x", "https:///path",
                          "https://h:0/", "https://h:99999/", "https://h:80a/", "https://h:/", "https://user:pw@h/",
                          "https://h/a b", "https://h/\n", "https://[::1/", "://h/");
    auto r = parse_url(input);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "http.bad_url");
    CHECK_FALSE(r.error().hint.empty());
}

TEST_CASE("join_url puts exactly one slash between base and path", "[http]") {
    CHECK(join_url("https://api.infusionsoft.com/crm/rest/v1", "/contacts?email=a%40b.com") ==
          "https://api.infusionsoft.com/crm/rest/v1/contacts?email=a%40b.com");
    CHECK(join_url("https://api.infusionsoft.com/crm/rest/v1/", "/contacts") ==
          "https://api.infusionsoft.com/crm/rest/v1/contacts");
    CHECK(join_url("https://h", "contacts") == "https://h/contacts");
    CHECK(join_url("/proxy/keap", "/crm/rest/v1/contacts") == "/proxy/keap/crm/rest/v1/contacts");
    CHECK(join_url("https://h/a", "?x=1") == "https://h/a?x=1");
    CHECK(join_url("https://h/a", "") == "https://h/a");
    CHECK(join_url("", "/x") == "/x");
}
