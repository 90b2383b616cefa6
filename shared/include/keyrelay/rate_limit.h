// What an answer's headers say about rate limits and when to call again: Retry-After (RFC 9110 §10.2.3), Keap's
// throttle and quota headers, and Jira Cloud's rate-limit headers (docs/reference/keap.md, docs/reference/jira.md).
// The one reader of these headers: diagnose() explains what it finds and retry::delay_ms() waits for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/http.h"

namespace keyrelay {

// RFC 9110 §5.6.7 HTTP-date -> unix seconds. Accepts the preferred IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT")
// and, as §5.6.7 requires of recipients, the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
// ("Sun Nov  6 08:49:37 1994") forms. nullopt for anything else.
std::optional<int64_t> parse_http_date(std::string_view text);

// ISO 8601 date-time as Jira sends it in X-RateLimit-Reset ("2024-04-25T10:08Z", "2024-04-25T10:08:30.123+02:00")
// -> unix seconds. No zone means UTC. nullopt for anything else.
std::optional<int64_t> parse_iso8601(std::string_view text);

// RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds. Returns the seconds to wait counted from `now` (unix
// seconds): delay-seconds as given, an HTTP-date minus now (0 when it is past). nullopt when the value is neither.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now);

// One Jira "Beta-RateLimit-Policy" / "Beta-RateLimit" item (the IETF RateLimit header fields draft, as Jira sends
// them since 2026: `"tenant-app-quota";q=100100;w=3600` and `"tenant-app-quota";r=17842;t=2107`).
struct RateLimitPolicy {
    std::string name;                  // "tenant-app-quota"
    std::optional<int64_t> quota;      // q: points (or requests) per window
    std::optional<int64_t> window;     // w: the window, seconds
    std::optional<int64_t> remaining;  // r: what is left in this window
    std::optional<int64_t> reset;      // t: seconds until the window resets
};

// Everything the headers say, facts only (explain_rate_limit() turns them into words).
struct RateLimitState {
    // How long to wait before calling again, in milliseconds: Retry-After when the server sent one (its explicit
    // ask wins), else the longest of a used-up Keap throttle's interval, the Keap quota's refill and Jira's reset
    // time. nullopt when no header says.
    std::optional<int64_t> wait_ms;
    // Which header decided wait_ms: "retry-after", "keap-throttle", "keap-tenant-throttle", "keap-quota",
    // "jira-reset", "jira-policy"; "" when wait_ms is unset.
    std::string wait_source;
    std::string retry_after;                      // Retry-After as sent (trimmed); "" when absent
    std::optional<int64_t> retry_after_seconds;   // Retry-After, as seconds from the reference time

    // Keap (x-keap-product-throttle-*, x-keap-tenant-throttle-*, x-keap-product-quota-*).
    bool keap_throttle_used_up = false;           // product (your app's) per-interval throttle: available <= 0
    bool keap_tenant_throttle_used_up = false;    // tenant (the Keap account's) throttle: available <= 0
    std::optional<int64_t> keap_throttle_limit;   // calls per interval
    std::optional<int64_t> keap_throttle_interval_ms;
    std::string keap_throttle_unit;               // as sent, e.g. "minute"
    bool keap_quota_used_up = false;              // the daily (per time-unit) quota: available <= 0
    std::optional<int64_t> keap_quota_limit;
    std::string keap_quota_unit;                  // as sent, e.g. "day"
    std::optional<int64_t> keap_quota_refill_seconds;   // from expiry-time or midnight UTC

    // Jira Cloud.
    std::string jira_reason;                      // RateLimit-Reason (or X-Beta-RateLimit-Reason): "jira-burst-based",
                                                  // "jira-quota-tenant-based", "jira-per-issue-on-write", ...
    bool jira_near_limit = false;                 // X-RateLimit-NearLimit (or X-Beta-RateLimit-NearLimit): true
    std::string jira_reset;                       // X-RateLimit-Reset (or X-Beta-RateLimit-Reset) as sent
    std::optional<int64_t> jira_reset_seconds;    // that time minus the reference time
    std::optional<int64_t> jira_limit;            // X-RateLimit-Limit
    std::optional<int64_t> jira_remaining;        // X-RateLimit-Remaining
    std::vector<RateLimitPolicy> jira_policies;   // Beta-RateLimit-Policy joined with Beta-RateLimit by name
};

// Reads the rate-limit headers. Points in time (an HTTP-date Retry-After, Keap's quota expiry, Jira's reset) are
// measured against the answer's own Date header when it has a valid one (the server's clock: immune to skew), else
// against `now` (unix seconds); with neither, they give no wait. Never fails: unreadable values are ignored.
RateLimitState read_rate_limit(const Headers& headers, std::optional<int64_t> now = std::nullopt);

// One or two sentences for a person: which limit was hit and when to retry ("Keap's throttle for your app's calls
// (1500 per 1 minute) is used up: retry in 60 s."). Without any header: the advice to back off exponentially.
std::string explain_rate_limit(const RateLimitState& state);

// A sentence when the answer warns that a limit is close (Jira's X-RateLimit-NearLimit: true, less than 20% of a
// budget left), "" otherwise.
std::string rate_limit_warning(const RateLimitState& state);

// A duration for a sentence: "1 second", "45 seconds", "about 3 minutes", "about 2 hours".
std::string seconds_text(int64_t seconds);

}  // namespace keyrelay
