#include "keyrelay/retry.h"

#include <algorithm>

#include "keyrelay/rate_limit.h"

namespace keyrelay::retry {

bool is_idempotent(std::string_view method) {
    return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" || method == "OPTIONS" ||
           method == "TRACE";
}

std::optional<int64_t> delay_ms(std::string_view method, int attempt, const Result<HttpResponse>& outcome,
                                int64_t waited_ms, const Policy& policy, int64_t now, double jitter) {
    if (!is_idempotent(method) || attempt < 0 || attempt >= policy.max_retries) return std::nullopt;
    // Equal jitter (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): half the backoff is
    // kept, so the wait never collapses to nothing, the other half spreads callers apart.
    const int64_t backoff = std::max<int64_t>(0, policy.base_delay_ms) << std::min(attempt, 20);
    if (!(jitter >= 0)) jitter = 0;   // also NaN
    jitter = std::min(jitter, 1.0);
    int64_t delay = backoff - backoff / 2 + static_cast<int64_t>(static_cast<double>(backoff / 2) * jitter);
    if (!outcome.ok()) {
        // A timeout has already waited a full read timeout; TLS, size and URL problems do not heal by retrying.
        const std::string& code = outcome.error().code;
        if (code != "upstream.unreachable" && code != "upstream.connection_reset") return std::nullopt;
    } else {
        const int status = outcome->status;
        if (status != 429 && status != 502 && status != 503 && status != 504) return std::nullopt;
        RateLimitState limits = read_rate_limit(outcome->headers, now);
        // The quota refills in hours (at midnight UTC): waiting seconds cannot help.
        if (limits.keap_quota_used_up) return std::nullopt;
        if (limits.wait_ms) delay = std::max(*limits.wait_ms, delay);
    }
    if (waited_ms < 0) waited_ms = 0;
    if (delay > policy.budget_ms - waited_ms) return std::nullopt;
    return delay;
}

}  // namespace keyrelay::retry
