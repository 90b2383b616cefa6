// Regressions found by the libFuzzer targets (tests/fuzz/, scripts/fuzz): one TEST_CASE per finding, named for
// the bug, with the (minimized) input inline. They run natively and under Wasm with the rest of the core suite.
#include <catch2/catch.hpp>

#include <climits>
#include <string>

#include "keyrelay/diagnose.h"
#include "keyrelay/proxy.h"

using namespace keyrelay;

namespace {

bool printable(const std::string& s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return false;
    }
    return true;
}

HttpResponse response(int status, std::string body, Headers headers = {}) {
    HttpResponse r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = std::move(body);
    return r;
}

}  // namespace

// fuzz_diagnose: the Content-Type, a gateway's errorcode or an OAuth error_description were quoted verbatim, so a
// server could put NUL, ESC or CR LF into the one-line summary a person reads and the relay logs.
TEST_CASE("diagnose never copies control characters from a server's headers or body into its summary or hint",
          "[regression][diagnose]") {
    SECTION("a Content-Type with NUL and an escape sequence") {
        Diagnosis d = diagnose(response(200, "[]", {{"Content-Type", std::string("app\0lication/\x1b[31mjson", 22)}}),
                               Expect::xmlrpc);
        CHECK(d.code == "not_method_response");
        CHECK(d.summary.find("Content-Type: app lication/ [31mjson") != std::string::npos);
        CHECK(printable(d.summary));
        CHECK(printable(d.hint));
    }
    SECTION("a gateway fault whose errorcode carries CR LF") {
        Diagnosis d = diagnose(
            response(401, R"({"fault":{"faultstring":"Invalid Access Token","detail":{"errorcode":"a\r\nb"}}})",
                     {{"Content-Type", "application/json"}}),
            Expect::json);
        CHECK(d.code == "gateway_fault");
        CHECK(printable(d.summary));
        CHECK(printable(d.hint));
    }
    SECTION("a token endpoint's 401 whose error_description carries a line break") {
        Diagnosis d = diagnose(response(401, R"({"error":"invalid_client","error_description":"bad\nclient"})",
                                        {{"Content-Type", "application/json"}}),
                               Expect::token);
        CHECK(d.code == "token_unauthorized");
        CHECK(d.summary.find("bad client") != std::string::npos);
        CHECK(printable(d.summary));
    }
}

// fuzz_diagnose (UBSan): seconds_text() rounded hours with (s + 1799) / 3600, a signed overflow for a Retry-After
// near INT64_MAX.
TEST_CASE("a Retry-After of INT64_MAX seconds is clamped, not overflowed, when put into words",
          "[regression][diagnose]") {
    Diagnosis d = diagnose(response(429, "", {{"Retry-After", "9223372036854775807"}}), Expect::json);
    CHECK(d.code == "rate_limited");
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == INT_MAX);
    // read_rate_limit() saturates every wait at 2^40 seconds (about 34,800 years) before it is put into words.
    CHECK(d.hint.find("about 305419897 hours") != std::string::npos);
}

// fuzz_diagnose (UBSan): Keap's throttle interval times the unit's seconds overflowed for an absurd interval.
TEST_CASE("an absurd Keap throttle interval saturates instead of overflowing", "[regression][diagnose]") {
    Diagnosis d = diagnose(response(429, R"({"message":"Too Many Requests"})",
                                    {{"Content-Type", "application/json"},
                                     {"x-keap-product-throttle-available", "0"},
                                     {"x-keap-product-throttle-interval", "9223372036854775807"},
                                     {"x-keap-product-throttle-time-unit", "minutes"}}),
                           Expect::json);
    CHECK(d.code == "rate_limited");
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == INT_MAX);
}

// fuzz_proxy: double encoding was only refused as "%25" followed by two literal hex digits, so "%25%32%65" (and the
// fuzzer's "a%252%99%252%652)a") passed: decoded once it is "%2e", which a second decoder turns into '.' (and
// "%25%32%66" into '/'), walking out of the allowed path.
TEST_CASE("double encoding spelled with encoded hex digits is refused by the proxy path check",
          "[regression][proxy]") {
    for (const char* raw : {"st/a%252%99%252%652)a", "crm/%25%32%65%25%32%65/admin", "crm/a%25%32%66b",
                            "crm/a%25%32Fb", "crm/a%25%46%46"}) {
        INFO(raw);
        auto v = proxy::validate_path(raw);
        REQUIRE_FALSE(v.ok());
        CHECK(v.error().code == "proxy.bad_path");
        CHECK(v.error().message.find("percent-encoded twice") != std::string::npos);
    }
    // A '%' that decodes to a literal percent sign not followed by two hex digits is still fine.
    auto ok = proxy::validate_path("crm/100%25zz");
    REQUIRE(ok.ok());
    CHECK(*ok == "/crm/100%25zz");
}
