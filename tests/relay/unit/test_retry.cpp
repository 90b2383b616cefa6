#include <catch2/catch.hpp>

#include "upstream.h"

using namespace keyrelay;
using namespace keyrelay::relay;

namespace {

Result<HttpResponse> answer(int status, Headers headers = {}) {
    HttpResponse r;
    r.status = status;
    r.headers = std::move(headers);
    return r;
}

Result<HttpResponse> failure(const std::string& code) { return make_error(code, "m", "h"); }

}  // namespace

TEST_CASE("idempotent requests are retried on 502, 503, 504 and 429 with exponential backoff", "[retry]") {
    RetryPolicy p;   // 2 retries, 2 s budget, 100 ms base
    for (int status : {502, 503, 504, 429}) {
        CHECK(retry_delay_ms("GET", 0, answer(status), 0, p) == std::optional<int64_t>(100));
        CHECK(retry_delay_ms("GET", 1, answer(status), 100, p) == std::optional<int64_t>(200));
        CHECK_FALSE(retry_delay_ms("GET", 2, answer(status), 300, p).has_value());   // at most 2 retries
    }
    for (const char* m : {"HEAD", "PUT", "DELETE"}) CHECK(retry_delay_ms(m, 0, answer(503), 0, p).has_value());
}

TEST_CASE("POST and PATCH are never retried (RFC 9110 §9.2.2)", "[retry]") {
    RetryPolicy p;
    for (const char* m : {"POST", "PATCH"}) {
        CHECK_FALSE(retry_delay_ms(m, 0, answer(503), 0, p).has_value());
        CHECK_FALSE(retry_delay_ms(m, 0, failure("upstream.connection_reset"), 0, p).has_value());
    }
}

TEST_CASE("answers that retrying cannot fix are returned at once", "[retry]") {
    RetryPolicy p;
    for (int status : {200, 204, 400, 401, 403, 404, 500, 596}) {
        CHECK_FALSE(retry_delay_ms("GET", 0, answer(status), 0, p).has_value());
    }
    for (const char* code : {"upstream.tls", "upstream.too_large", "upstream.bad_url", "upstream.timeout"}) {
        CHECK_FALSE(retry_delay_ms("GET", 0, failure(code), 0, p).has_value());
    }
    for (const char* code : {"upstream.unreachable", "upstream.connection_reset"}) {
        CHECK(retry_delay_ms("GET", 0, failure(code), 0, p).has_value());
    }
}

TEST_CASE("Retry-After in seconds sets the delay, within the waiting budget", "[retry]") {
    RetryPolicy p;
    CHECK(retry_delay_ms("GET", 0, answer(429, {{"Retry-After", "1"}}), 0, p) == std::optional<int64_t>(1000));
    CHECK(retry_delay_ms("GET", 0, answer(503, {{"Retry-After", " 2 "}}), 0, p) == std::optional<int64_t>(2000));
    // Jira's "Retry-After: 30" is longer than anyone should wait inside one call: the 429 goes back to the caller.
    CHECK_FALSE(retry_delay_ms("GET", 0, answer(429, {{"Retry-After", "30"}}), 0, p).has_value());
    // The budget counts what was already waited.
    CHECK_FALSE(retry_delay_ms("GET", 1, answer(429, {{"Retry-After", "1"}}), 1500, p).has_value());
    // An HTTP-date cannot be evaluated without a clock here: plain backoff.
    CHECK(retry_delay_ms("GET", 0, answer(503, {{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}}), 0, p) ==
          std::optional<int64_t>(100));
}

TEST_CASE("Keap's throttle headers set the delay; an exhausted daily quota is not retried", "[retry]") {
    RetryPolicy p;
    Headers throttled{{"x-keap-product-throttle-available", "0"},
                      {"x-keap-product-throttle-interval", "1"},
                      {"x-keap-product-throttle-time-unit", "second"}};
    CHECK(retry_delay_ms("GET", 0, answer(429, throttled), 0, p) == std::optional<int64_t>(1000));
    Headers per_minute{{"x-keap-product-throttle-available", "0"},
                       {"x-keap-product-throttle-interval", "1"},
                       {"x-keap-product-throttle-time-unit", "minute"}};
    CHECK_FALSE(retry_delay_ms("GET", 0, answer(429, per_minute), 0, p).has_value());
    Headers quota{{"x-keap-product-quota-available", "0"}};
    CHECK_FALSE(retry_delay_ms("GET", 0, answer(429, quota), 0, p).has_value());
}

TEST_CASE("Retry-After is read only in its delay-seconds form", "[retry]") {
    CHECK(retry_after_seconds(Headers{{"Retry-After", "120"}}) == std::optional<int64_t>(120));
    CHECK_FALSE(retry_after_seconds(Headers{{"Retry-After", "-1"}}).has_value());
    CHECK_FALSE(retry_after_seconds(Headers{{"Retry-After", "1.5"}}).has_value());
    CHECK_FALSE(retry_after_seconds(Headers{}).has_value());
}
