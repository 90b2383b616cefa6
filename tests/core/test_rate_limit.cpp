#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "keyrelay/diagnose.h"
#include "keyrelay/rate_limit.h"
#include "keyrelay/retry.h"

using namespace keyrelay;

namespace {

// 2024-01-02T03:04:05Z
constexpr int64_t kNow = 1704164645;
const std::string kDate = "Tue, 02 Jan 2024 03:04:05 GMT";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

HttpResponse answer(int status, Headers headers, std::string body = "") {
    HttpResponse r;
    r.status = status;
    r.headers = std::move(headers);
    r.body = std::move(body);
    return r;
}

}  // namespace

TEST_CASE("the three HTTP-date forms of RFC 9110 name the same second", "[rate_limit]") {
    auto text = GENERATE(as<std::string>{}, "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                         "Sun Nov  6 08:49:37 1994", "  sun, 06 nov 1994 08:49:37 GMT ");
    INFO(text);
    REQUIRE(parse_http_date(text).has_value());
    CHECK(*parse_http_date(text) == 784111777);
}

TEST_CASE("what is not an HTTP-date is refused", "[rate_limit]") {
    auto text = GENERATE(as<std::string>{}, "", "120", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 24:00:00 GMT", "Sun Nov  6 08:49:37", "2024-01-02T03:04:05Z");
    INFO(text);
    CHECK_FALSE(parse_http_date(text).has_value());
}

TEST_CASE("Jira's ISO 8601 reset times", "[rate_limit]") {
    CHECK(parse_iso8601("2024-01-02T03:06Z") == kNow + 115);
    CHECK(parse_iso8601("2024-01-02T03:04:05.123Z") == kNow);
    CHECK(parse_iso8601("2024-01-02T05:04:05+02:00") == kNow);
    CHECK(parse_iso8601("2024-01-02T03:04:05") == kNow);
    CHECK_FALSE(parse_iso8601("2024-01-02T03:04:05Zjunk").has_value());
    CHECK_FALSE(parse_iso8601("02/01/2024").has_value());
}

TEST_CASE("Retry-After is delay-seconds or an HTTP-date counted from now", "[rate_limit]") {
    std::string value;
    std::optional<int64_t> seconds;
    std::tie(value, seconds) = GENERATE(table<std::string, std::optional<int64_t>>({
        {"17", 17},
        {" 0 ", 0},
        {"Tue, 02 Jan 2024 03:06:05 GMT", 120},
        {"Tue, 02 Jan 2024 03:00:00 GMT", 0},   // in the past: no wait
        {"-5", std::nullopt},
        {"1.5", std::nullopt},
        {"+5", std::nullopt},
        {"soon", std::nullopt},
        {"", std::nullopt},
    }));
    INFO(value);
    CHECK(parse_retry_after(value, kNow) == seconds);
}

TEST_CASE("the answer's Date header is the clock for points in time, before the caller's now", "[rate_limit]") {
    Headers h = {{"Date", kDate}, {"Retry-After", "Tue, 02 Jan 2024 03:05:05 GMT"}};
    CHECK(read_rate_limit(h, kNow + 3600).wait_ms == 60000);   // a relay clock an hour off does not matter
    Headers no_date = {{"Retry-After", "Tue, 02 Jan 2024 03:05:05 GMT"}};
    CHECK(read_rate_limit(no_date, kNow).wait_ms == 60000);
    CHECK_FALSE(read_rate_limit(no_date).wait_ms.has_value());   // no clock at all: no wait
}

TEST_CASE("Keap's throttle and quota headers", "[rate_limit]") {
    SECTION("a used-up per-minute throttle waits one interval") {
        RateLimitState s = read_rate_limit({{"x-keap-product-throttle-available", "0"},
                                            {"x-keap-product-throttle-limit", "1500"},
                                            {"x-keap-product-throttle-interval", "1"},
                                            {"x-keap-product-throttle-time-unit", "minute"}});
        CHECK(s.keap_throttle_used_up);
        CHECK(s.wait_ms == 60000);
        CHECK(s.wait_source == "keap-throttle");
        CHECK(contains(explain_rate_limit(s), "Keap's throttle for your app's calls (1500 per 1 minute) is used up"));
    }
    SECTION("a throttle in milliseconds") {
        RateLimitState s = read_rate_limit({{"x-keap-tenant-throttle-available", "0"},
                                            {"x-keap-tenant-throttle-interval", "500"},
                                            {"x-keap-tenant-throttle-time-unit", "MILLISECONDS"}});
        CHECK(s.keap_tenant_throttle_used_up);
        CHECK(s.wait_ms == 500);
        CHECK(s.wait_source == "keap-tenant-throttle");
    }
    SECTION("a throttle with calls left is no wait") {
        RateLimitState s = read_rate_limit({{"x-keap-product-throttle-available", "12"}});
        CHECK_FALSE(s.keap_throttle_used_up);
        CHECK_FALSE(s.wait_ms.has_value());
    }
    SECTION("the daily quota refills at its expiry time") {
        RateLimitState s = read_rate_limit({{"Date", kDate},
                                            {"x-keap-product-quota-available", "0"},
                                            {"x-keap-product-quota-limit", "150000"},
                                            {"x-keap-product-quota-expiry-time", std::to_string((kNow + 1800) * 1000)}});
        CHECK(s.keap_quota_used_up);
        CHECK(s.keap_quota_refill_seconds == 1800);
        CHECK(contains(explain_rate_limit(s), "Keap's quota of 150000 calls per day is used up: it refills in"));
    }
}

TEST_CASE("Jira's 2026 points-based rate-limit headers", "[rate_limit]") {
    SECTION("a 429 for the tenant's hourly quota") {
        HttpResponse r = answer(429, {{"Date", kDate},
                                      {"Retry-After", "1800"},
                                      {"RateLimit-Reason", "jira-quota-tenant-based"},
                                      {"Beta-RateLimit-Policy", "\"tenant-app-quota\";q=100100;w=3600"},
                                      {"Beta-RateLimit", "\"tenant-app-quota\";r=0;t=1800"},
                                      {"X-RateLimit-Reset", "2024-01-02T03:34:05Z"}},
                                R"({"message":"Rate limit exceeded"})");
        RateLimitState s = read_rate_limit(r.headers);
        CHECK(s.jira_reason == "jira-quota-tenant-based");
        CHECK(s.wait_ms == 1800 * 1000);
        CHECK(s.wait_source == "retry-after");
        REQUIRE(s.jira_policies.size() == 1);
        CHECK(s.jira_policies[0].name == "tenant-app-quota");
        CHECK(s.jira_policies[0].quota == 100100);
        CHECK(s.jira_policies[0].window == 3600);
        CHECK(s.jira_policies[0].remaining == 0);
        CHECK(s.jira_policies[0].reset == 1800);
        CHECK(s.jira_reset_seconds == 1800);

        Diagnosis d = diagnose(r, Expect::json);
        CHECK(d.code == "rate_limited");
        CHECK(d.retry_after_seconds == 1800);
        CHECK(contains(d.hint, "RateLimit-Reason: jira-quota-tenant-based"));
        CHECK(contains(d.hint, "hourly points quota"));
        CHECK(contains(d.hint, "\"tenant-app-quota\" budget of 100100 per 3600 seconds is used up"));
    }
    SECTION("a burst-based 429 names the endpoint's per-second limit") {
        Diagnosis d = diagnose(answer(429, {{"Retry-After", "2"}, {"RateLimit-Reason", "jira-burst-based"}}),
                               Expect::json);
        CHECK(d.retry_after_seconds == 2);
        CHECK(contains(d.hint, "per-second burst limit for this endpoint"));
    }
    SECTION("the X-Beta- spellings seen in 2026 are read too") {
        RateLimitState s = read_rate_limit({{"X-Beta-RateLimit-Reason", "jira-quota-tenant-based"},
                                            {"X-Beta-RateLimit-NearLimit", "true"}});
        CHECK(s.jira_reason == "jira-quota-tenant-based");
        CHECK(s.jira_near_limit);
    }
    SECTION("a used-up policy without Retry-After waits for its reset") {
        RateLimitState s = read_rate_limit({{"Beta-RateLimit", "\"tenant-app-quota\";r=0;t=2107"}});
        CHECK(s.wait_ms == 2107 * 1000);
        CHECK(s.wait_source == "jira-policy");
    }
    SECTION("X-RateLimit-NearLimit: true on a 200 is a warning, not an error") {
        HttpResponse r = answer(200,
                                {{"Content-Type", "application/json"},
                                 {"X-RateLimit-NearLimit", "true"},
                                 {"Beta-RateLimit-Policy", "\"tenant-app-quota\";q=100100;w=3600"},
                                 {"Beta-RateLimit", "\"tenant-app-quota\";r=17842;t=2107"}},
                                R"([{"accountId":"1"}])");
        Diagnosis d = diagnose(r, Expect::json);
        CHECK(d.code == "ok");
        CHECK(contains(d.warning, "less than 20% of a rate-limit budget is left"));
        CHECK(contains(d.warning, "17842 of 100100 left"));
        CHECK(diagnose(answer(200, {{"Content-Type", "application/json"}}, "[]"), Expect::json).warning.empty());
    }
}

TEST_CASE("diagnose and the retry policy read Retry-After the same way", "[rate_limit][retry]") {
    // One reader of Retry-After: an HTTP-date gives diagnose() and the retry policy the same wait.
    HttpResponse r = answer(503, {{"Date", kDate}, {"Retry-After", "Tue, 02 Jan 2024 03:04:06 GMT"}});
    Diagnosis d = diagnose(r, Expect::json);
    REQUIRE(read_rate_limit(r.headers).wait_ms == 1000);
    CHECK(retry::delay_ms("GET", 0, r, 0, retry::Policy{}, kNow) == 1000);
    HttpResponse r429 = r;
    r429.status = 429;
    CHECK(diagnose(r429, Expect::json).retry_after_seconds == 1);
    CHECK(d.code != "ok");
}

TEST_CASE("the retry delay", "[retry]") {
    const retry::Policy policy;   // 2 retries, 2000 ms budget, 100 ms base
    auto status = [](int s, Headers h = {}) { return Result<HttpResponse>(answer(s, std::move(h))); };
    auto failure = [](const char* code) { return Result<HttpResponse>(make_error(code, "m")); };

    SECTION("exponential backoff with equal jitter") {
        CHECK(retry::delay_ms("GET", 0, status(503), 0, policy, kNow, 1.0) == 100);
        CHECK(retry::delay_ms("GET", 1, status(503), 100, policy, kNow, 1.0) == 200);
        CHECK(retry::delay_ms("GET", 0, status(503), 0, policy, kNow, 0.0) == 50);
        CHECK(retry::delay_ms("GET", 1, status(503), 0, policy, kNow, 0.5) == 150);
        CHECK(retry::delay_ms("GET", 0, status(503), 0, policy, kNow, 7.0) == 100);    // clamped
        CHECK(retry::delay_ms("GET", 0, status(503), 0, policy, kNow, -1.0) == 50);    // clamped
        CHECK_FALSE(retry::delay_ms("GET", 2, status(503), 300, policy, kNow).has_value());   // max_retries
    }
    SECTION("which outcomes are retried") {
        int s;
        bool retried;
        std::tie(s, retried) = GENERATE(table<int, bool>(
            {{429, true}, {502, true}, {503, true}, {504, true}, {500, false}, {401, false}, {404, false}, {200, false}}));
        INFO(s);
        CHECK(retry::delay_ms("GET", 0, status(s), 0, policy, kNow).has_value() == retried);
    }
    SECTION("transport errors") {
        CHECK(retry::delay_ms("GET", 0, failure("upstream.unreachable"), 0, policy, kNow) == 100);
        CHECK(retry::delay_ms("GET", 0, failure("upstream.connection_reset"), 0, policy, kNow) == 100);
        CHECK_FALSE(retry::delay_ms("GET", 0, failure("upstream.timeout"), 0, policy, kNow).has_value());
        CHECK_FALSE(retry::delay_ms("GET", 0, failure("upstream.tls"), 0, policy, kNow).has_value());
        CHECK_FALSE(retry::delay_ms("GET", 0, failure("upstream.too_large"), 0, policy, kNow).has_value());
    }
    SECTION("only idempotent methods") {
        auto method = GENERATE(as<std::string>{}, "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH", "get");
        bool idempotent = method != "POST" && method != "PATCH" && method != "get";
        INFO(method);
        CHECK(retry::is_idempotent(method) == idempotent);
        CHECK(retry::delay_ms(method, 0, status(503), 0, policy, kNow).has_value() == idempotent);
    }
    SECTION("the server's wait is honoured within the budget") {
        CHECK(retry::delay_ms("GET", 0, status(429, {{"Retry-After", "1"}}), 0, policy, kNow) == 1000);
        CHECK_FALSE(retry::delay_ms("GET", 0, status(429, {{"Retry-After", "3"}}), 0, policy, kNow).has_value());
        CHECK_FALSE(retry::delay_ms("GET", 1, status(429, {{"Retry-After", "1"}}), 1500, policy, kNow).has_value());
        CHECK(retry::delay_ms("GET", 0,
                              status(429, {{"x-keap-product-throttle-available", "0"},
                                           {"x-keap-product-throttle-interval", "1"},
                                           {"x-keap-product-throttle-time-unit", "second"}}),
                              0, policy, kNow) == 1000);
    }
    SECTION("an exhausted Keap quota is never retried") {
        CHECK_FALSE(retry::delay_ms("GET", 0, status(429, {{"x-keap-product-quota-available", "0"}}), 0, policy, kNow)
                        .has_value());
    }
}
