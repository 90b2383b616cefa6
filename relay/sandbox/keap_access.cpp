// The fake Keap's API credentials and rate limits (keap.md "Credentials that need no OAuth flow", "Rate limits").
#include <algorithm>
#include <cmath>

#include "keap.h"

namespace keyrelay::sandbox::keap {

Reply gateway_fault(int status, const char* faultstring, const char* errorcode) {
    return json_reply(status, json{{"fault", {{"faultstring", faultstring}, {"detail", {{"errorcode", errorcode}}}}}});
}

std::optional<std::string> bearer_of(const Req& r) {
    auto auth = r.header("Authorization");
    if (!auth || !istarts_with(*auth, "bearer ")) return std::nullopt;
    return auth->substr(7);
}

std::optional<Reply> check_bearer(State& s, const std::string& token, Credential& cred) {
    bool expired = false;
    const Grant* g = s.grant_for_access(token, &expired);
    if (!g || g->provider != Provider::keap) {
        if (expired) return gateway_fault(401, "Access Token expired", "keymanagement.service.access_token_expired");
        return gateway_fault(401, "Invalid Access Token", "keymanagement.service.invalid_access_token");
    }
    cred.api_key = false;
    cred.bucket = "keap-oauth:" + g->client_id;
    return std::nullopt;
}

bool valid_api_key(const std::string& key) { return key == ids::keap_api_key || key == ids::keap_pat; }

void limit_headers(State& s, Reply& reply, bool api_key, double throttle_left, int64_t used_today) {
    const Limits& L = s.limits;
    const double capacity = api_key ? L.keap_key_per_second : L.keap_oauth_per_minute;
    const int64_t day_limit = api_key ? L.keap_key_per_day : L.keap_oauth_per_day;
    const int64_t available = static_cast<int64_t>(std::floor(std::max(0.0, throttle_left)));
    const int64_t next_midnight_ms = (s.now() / 86400 + 1) * 86400 * 1000;
    reply.with("x-keap-product-quota-limit", std::to_string(day_limit))
        .with("x-keap-product-quota-time-unit", "day")
        .with("x-keap-product-quota-interval", "1")
        .with("x-keap-product-quota-available", std::to_string(std::max<int64_t>(0, day_limit - used_today)))
        .with("x-keap-product-quota-used", std::to_string(used_today))
        .with("x-keap-product-quota-expiry-time", std::to_string(next_midnight_ms))
        .with("x-keap-product-throttle-limit", std::to_string(static_cast<int64_t>(capacity)))
        .with("x-keap-product-throttle-time-unit", api_key ? "second" : "minute")
        .with("x-keap-product-throttle-interval", "1")
        .with("x-keap-product-throttle-available", std::to_string(available))
        .with("x-keap-product-throttle-used", std::to_string(static_cast<int64_t>(capacity) - available))
        .with("x-keap-tenant-id", ids::keap_account);
}

Reply throttled_body() {
    // keap.md (forum 93964)
    return json_reply(429, json{{"code", "429"}, {"message", "Quota Exceeded"}, {"status", "Request Throttled"},
                                {"details", nullptr}});
}

std::optional<Reply> meter(State& s, const Credential& cred, Reply& headers_out) {
    const Limits& L = s.limits;
    const double capacity = cred.api_key ? L.keap_key_per_second : L.keap_oauth_per_minute;
    const double rate = cred.api_key ? L.keap_key_per_second : L.keap_oauth_per_minute / 60.0;
    const double left = s.take_token(cred.bucket, capacity, rate);
    const int64_t used = s.count_daily(cred.bucket);
    const int64_t day_limit = cred.api_key ? L.keap_key_per_day : L.keap_oauth_per_day;
    if (left < 0 || used > day_limit) {
        Reply r = throttled_body();
        limit_headers(s, r, cred.api_key, 0, std::min(used, day_limit));
        return r;
    }
    limit_headers(s, headers_out, cred.api_key, left, used);
    return std::nullopt;
}

}  // namespace keyrelay::sandbox::keap
