#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "keyrelay/proxy.h"

using namespace keyrelay;
using namespace keyrelay::proxy;

TEST_CASE("which caller headers go to the provider", "[proxy][headers]") {
    std::string name;
    bool forwarded;
    std::tie(name, forwarded) = GENERATE(table<std::string, bool>({
        {"Accept", true},
        {"accept-language", true},
        {"Content-Type", true},
        {"If-Match", true},
        {"If-None-Match", true},
        {"If-Modified-Since", true},
        {"IF-UNMODIFIED-SINCE", true},
        {"X-Custom-Trace", true},
        {"x-correlation-id", true},
        {"Cookie", false},
        {"Authorization", false},
        {"Origin", false},
        {"Referer", false},
        {"User-Agent", false},
        {"Host", false},
        {"Connection", false},
        {"Keep-Alive", false},
        {"Transfer-Encoding", false},
        {"TE", false},
        {"Upgrade", false},
        {"Proxy-Authorization", false},
        {"Content-Length", false},
        {"X-Requested-With", false},
        {"X-Forwarded-Host", false},
        {"x-forwarded-for", false},
        {"X-Real-IP", false},
        {"X-Keap-API-Key", false},
        {"X-Original-URL", false},
        {"X-Original-Host", false},
        {"X-Rewrite-URL", false},
        {"X-HTTP-Method-Override", false},
        {"X-Method-Override", false},
        {"X-Host", false},
        {"X-Request-Id", false},
        {"X-CSRF-Token", false},
        {"X-XSRF-TOKEN", false},
        {"X-Api-Key", false},
        {"X-Auth-Token", false},
        {"X-Amz-Security-Token", false},
        {"X-Client-IP", false},
        {"X-Cluster-Client-IP", false},
        {"X-ProxyUser-Ip", false},
        {"X-Access-Token", false},
        {"X-Override-URL", false},
    }));
    INFO(name);
    CHECK(forwardable(name) == forwarded);
}

TEST_CASE("a header the caller's Connection names is hop-by-hop and stays behind", "[proxy][headers]") {
    CHECK_FALSE(forwardable("X-Trace", "keep-alive, X-Trace"));
    CHECK_FALSE(forwardable("x-trace", "X-TRACE"));
    CHECK(forwardable("X-Trace", "keep-alive, X-Tracer"));
    Headers caller = {{"Accept", "application/json"}, {"Connection", "close, X-Secret-Hop"},
                      {"X-Secret-Hop", "1"},          {"X-Kept", "2"},
                      {"Cookie", "sid=abc"},          {"connection", "x-kept"}};
    CHECK(forwarded_headers(caller).items() ==
          std::vector<std::pair<std::string, std::string>>{{"Accept", "application/json"}});
}

TEST_CASE("credentials are attached as the provider's mode says", "[proxy][credentials]") {
    HttpRequest r;
    r.headers = {{"Authorization", "Bearer caller-key"}, {"X-Keap-API-Key", "old"}};
    SECTION("bearer") {
        attach_credential(r, {CredentialStyle::bearer, "at-123", ""});
        CHECK(r.headers.items() == std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer at-123"}});
    }
    SECTION("basic: Jira Cloud's email and API token, RFC 7617 without form-encoding") {
        attach_credential(r, {CredentialStyle::basic, "tok+en", "ada@example.com"});
        CHECK(r.headers.items() == std::vector<std::pair<std::string, std::string>>{
                                       {"Authorization", "Basic " + base64_encode("ada@example.com:tok+en")}});
    }
    SECTION("Keap's X-Keap-API-Key") {
        attach_credential(r, {CredentialStyle::keap_api_key, "KeapAK-1", ""});
        CHECK(r.headers.items() == std::vector<std::pair<std::string, std::string>>{{"X-Keap-API-Key", "KeapAK-1"}});
    }
    CHECK(credential_style_from_string("Bearer") == CredentialStyle::bearer);
    CHECK(credential_style_from_string("basic") == CredentialStyle::basic);
    CHECK(credential_style_from_string("x-keap-api-key") == CredentialStyle::keap_api_key);
    CHECK_FALSE(credential_style_from_string("digest").has_value());
}

TEST_CASE("the upstream request of a proxied call", "[proxy][credentials]") {
    Headers caller = {{"Accept", "application/json"},
                      {"Authorization", "Bearer relay-api-key"},
                      {"Cookie", "keyrelay_session=s"},
                      {"Content-Type", "application/json"},
                      {"X-Forwarded-Host", "evil.example"}};
    SECTION("a PATCH keeps its body") {
        HttpRequest up = upstream_request("PATCH", "https://api.infusionsoft.com/crm/rest/v1/contacts/5", caller,
                                          R"({"given_name":"Ada"})", {CredentialStyle::bearer, "at-1", ""},
                                          "keyrelay/1.0");
        CHECK(up.method == "PATCH");
        CHECK(up.url == "https://api.infusionsoft.com/crm/rest/v1/contacts/5");
        CHECK(up.body == R"({"given_name":"Ada"})");
        CHECK(up.headers.items() == std::vector<std::pair<std::string, std::string>>{
                                        {"Accept", "application/json"},
                                        {"Content-Type", "application/json"},
                                        {"User-Agent", "keyrelay/1.0"},
                                        {"Authorization", "Bearer at-1"}});
    }
    SECTION("GET, HEAD and DELETE go without a body") {
        auto method = GENERATE(as<std::string>{}, "GET", "HEAD", "DELETE");
        HttpRequest up = upstream_request(method, "https://x/y", caller, "stray", {CredentialStyle::bearer, "t", ""},
                                          "ua");
        CHECK(up.body.empty());
    }
}
