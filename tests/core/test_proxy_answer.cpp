#include <catch2/catch.hpp>
#include <algorithm>

#include <string>
#include <tuple>

#include "keyrelay/proxy.h"

using namespace keyrelay;
using namespace keyrelay::proxy;

namespace {

HttpResponse answer(int status, std::string type, std::string body, Headers extra = {}) {
    HttpResponse r;
    r.status = status;
    if (!type.empty()) r.headers.set("Content-Type", std::move(type));
    for (const auto& [n, v] : extra.items()) r.headers.add(n, v);
    r.body = std::move(body);
    return r;
}

using Items = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("the API's own JSON is recognised without a full diagnosis", "[proxy][answer]") {
    CHECK(looks_like_api_json(answer(200, "application/json", R"({"contacts":[]})")));
    CHECK(looks_like_api_json(answer(201, "application/vnd.api+json; charset=utf-8", " [1,2] ")));
    CHECK_FALSE(looks_like_api_json(answer(200, "application/json", R"({"fault":{"faultstring":"x"}})")));
    CHECK_FALSE(looks_like_api_json(answer(200, "application/json", R"({"a":)")));
    CHECK_FALSE(looks_like_api_json(answer(200, "application/json", "\"just a string\"")));
    CHECK_FALSE(looks_like_api_json(answer(200, "text/html", "{}")));
    CHECK_FALSE(looks_like_api_json(answer(204, "application/json", "{}")));
    CHECK_FALSE(looks_like_api_json(answer(404, "application/json", "{}")));
}

TEST_CASE("an answer that is not the API's becomes the relay's 502; the API's own errors pass through",
          "[proxy][answer]") {
    std::string name, type, body;
    int status;
    bool xmlrpc, wrapped;
    std::string code;
    std::tie(name, status, type, body, xmlrpc, wrapped, code) =
        GENERATE(table<std::string, int, std::string, std::string, bool, bool, std::string>({
            {"JSON 200", 200, "application/json", R"({"id":5})", false, false, "ok"},
            {"the API's 404", 404, "application/json", R"({"message":"Not found"})", false, false, "not_found"},
            {"the API's 429", 429, "application/json", R"({"message":"Quota Exceeded"})", false, false, "rate_limited"},
            {"an nginx 502 page", 502, "text/html", "<html><title>502 Bad Gateway</title></html>", false, true,
             "html_page"},
            {"a gateway fault", 500, "application/json",
             R"({"fault":{"faultstring":"Invalid access token","detail":{"errorcode":"keymanagement.service.invalid_access_token"}}})",
             false, true, "gateway_fault"},
            {"a JSON type on a body that is not JSON", 200, "application/json", "hello", false, true, "not_json"},
            {"plain text where JSON was expected: the caller sees it as it is", 200, "text/plain", "hello", false,
             false, "wrong_content_type"},
            {"an empty 204", 204, "", "", false, false, ""},
            {"XML-RPC answer", 200, "text/xml",
             "<?xml version=\"1.0\"?><methodResponse><params><param><value><int>1</int></value></param></params>"
             "</methodResponse>",
             true, false, "ok"},
            {"XML-RPC call answered with an empty body", 200, "text/xml", "", true, true, "empty_body"},
            {"XML-RPC call answered with HTML", 200, "text/html", "<!DOCTYPE html><html></html>", true, true,
             "html_page"},
        }));
    INFO(name);
    ShapedAnswer s = shape_answer(answer(status, type, body), "GET", AnswerPolicy{xmlrpc, {}});
    CHECK(s.wrapped == wrapped);
    if (!code.empty()) CHECK(s.diagnosis.code == code);
    CHECK(s.status == (wrapped ? 502 : status));
}

TEST_CASE("a passed-through answer carries its own headers, the rate-limit ones and a sandboxing CSP",
          "[proxy][answer]") {
    HttpResponse a = answer(200, "application/json", "[]",
                            {{"ETag", "\"v1\""},
                             {"Set-Cookie", "provider=1"},
                             {"X-RateLimit-Remaining", "99"},
                             {"Beta-RateLimit", "\"tenant-app-quota\";r=17842;t=2107"},
                             {"Beta-RateLimit-Policy", "\"tenant-app-quota\";q=100100;w=3600"},
                             {"RateLimit-Reason", "jira-burst-based"},
                             {"X-Beta-RateLimit-NearLimit", "true"},
                             {"x-keap-product-throttle-available", "4"},
                             {"Server", "gateway"}});
    SECTION("Jira") {
        ShapedAnswer s = shape_answer(a, "GET", AnswerPolicy{false, jira_rate_limit_headers()});
        CHECK(s.headers.items() == Items{{"X-RateLimit-Remaining", "99"},
                                         {"Beta-RateLimit", "\"tenant-app-quota\";r=17842;t=2107"},
                                         {"Beta-RateLimit-Policy", "\"tenant-app-quota\";q=100100;w=3600"},
                                         {"RateLimit-Reason", "jira-burst-based"},
                                         {"X-Beta-RateLimit-NearLimit", "true"},
                                         {"Content-Security-Policy", "default-src 'none'; sandbox"},
                                         {"ETag", "\"v1\""},
                                         {"Cache-Control", "no-store"},
                                         {"Content-Type", "application/json"}});
        CHECK(s.send_body);
        CHECK(s.diagnosis.code == "ok");
    }
    SECTION("Keap") {
        ShapedAnswer s = shape_answer(a, "GET", AnswerPolicy{false, keap_rate_limit_headers()});
        CHECK(s.headers.get("x-keap-product-throttle-available") == "4");
        CHECK_FALSE(s.headers.has("X-RateLimit-Remaining"));
        CHECK_FALSE(s.headers.has("Set-Cookie"));
        CHECK_FALSE(s.headers.has("Server"));
    }
    SECTION("HEAD, 204 and 304 send no body") {
        CHECK_FALSE(shape_answer(a, "HEAD", {}).send_body);
        CHECK_FALSE(shape_answer(answer(204, "", ""), "DELETE", {}).send_body);
        CHECK_FALSE(shape_answer(answer(304, "", "", {{"Cache-Control", "max-age=60"}}), "GET", {}).send_body);
        CHECK(shape_answer(answer(304, "", "", {{"Cache-Control", "max-age=60"}}), "GET", {}).headers.get(
                  "Cache-Control") == "max-age=60");
    }
    SECTION("a body without a type is served as octets") {
        CHECK(shape_answer(answer(404, "", R"({"x":1})"), "GET", {}).headers.get("Content-Type") ==
              "application/octet-stream");
    }
}

TEST_CASE("a wrapped answer still passes its rate-limit headers", "[proxy][answer]") {
    HttpResponse a = answer(503, "text/html", "<html><title>Service Unavailable</title></html>",
                            {{"Retry-After", "5"}, {"X-Other", "1"}});
    ShapedAnswer s = shape_answer(a, "GET", AnswerPolicy{false, keap_rate_limit_headers()});
    CHECK(s.wrapped);
    CHECK(s.diagnosis.code == "html_page");
    CHECK(s.headers.items() == Items{{"Retry-After", "5"}});
}

TEST_CASE("rate-limit header patterns match names case-insensitively, '*' as a prefix", "[proxy][answer]") {
    CHECK(matches_header_pattern(jira_rate_limit_headers(), "beta-ratelimit"));
    CHECK(matches_header_pattern(jira_rate_limit_headers(), "Beta-RateLimit-Policy"));
    CHECK(matches_header_pattern(jira_rate_limit_headers(), "RETRY-AFTER"));
    CHECK_FALSE(matches_header_pattern(jira_rate_limit_headers(), "retry-after-x"));
    CHECK_FALSE(matches_header_pattern(keap_rate_limit_headers(), "x-keap-api-key-echo"));
    CHECK(matches_header_pattern(keap_rate_limit_headers(), "X-Keap-Tenant-Id"));
}

TEST_CASE("a page on another origin may read every documented rate-limit header and the request id",
          "[proxy][answer]") {
    const auto& exposed = cors_exposed_headers();
    for (const char* name : {"Retry-After", "RateLimit-Reason", "X-RateLimit-NearLimit", "Beta-RateLimit",
                             "Beta-RateLimit-Policy", "x-keap-product-quota-available", "x-keap-tenant-id",
                             "X-Request-Id"}) {
        CHECK(std::find(exposed.begin(), exposed.end(), name) != exposed.end());
    }
    for (const std::string& name : exposed) {
        INFO(name);
        CHECK_FALSE(name.find('*') != std::string::npos);   // "*" is not a wildcard for a credentialed request
        if (name == "X-Request-Id") continue;
        CHECK((matches_header_pattern(keap_rate_limit_headers(), name) ||
               matches_header_pattern(jira_rate_limit_headers(), name)));
    }
}
