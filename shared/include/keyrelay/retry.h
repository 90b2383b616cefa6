// When a failed upstream call is tried again, and after how long. Pure: the caller passes the time and the jitter.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace keyrelay::retry {

struct Policy {
    int max_retries = 2;          // attempts after the first
    int64_t budget_ms = 2000;     // total waiting between attempts, so a caller is never stuck long
    int64_t base_delay_ms = 100;  // exponential backoff: 100, 200, 400, ...
};

// RFC 9110 §9.2.2: GET, HEAD, PUT, DELETE, OPTIONS and TRACE are idempotent and may be retried automatically;
// POST and PATCH never are. Method names are case-sensitive (RFC 9110 §9.1).
bool is_idempotent(std::string_view method);

// Decides whether attempt number `attempt` (0 for the first) is tried again, and returns the wait in milliseconds,
// or nullopt for "do not retry".
//  - Retried: idempotent methods only; transport errors "upstream.unreachable" and "upstream.connection_reset"
//    (never "upstream.timeout": a full read timeout has already been waited; never TLS, size or URL errors), and
//    answers 429, 502, 503, 504; at most policy.max_retries times.
//  - The wait is the exponential backoff base_delay_ms * 2^attempt with "equal jitter": half of it fixed, the other
//    half scaled by `jitter` (0..1, clamped; 1 gives the full backoff). A wait the answer asks for
//    (read_rate_limit(): Retry-After as delay-seconds or HTTP-date, a used-up Keap throttle, Jira's reset time or a
//    used-up Beta-RateLimit policy) is honoured: the wait is the larger of the two.
//  - An exhausted Keap quota (x-keap-product-quota-available: 0) is never retried: it refills in hours.
//  - Not retried either when waited_ms (already waited for this call) plus the wait would pass policy.budget_ms.
// `now` is unix seconds, for an HTTP-date Retry-After when the answer has no Date header.
std::optional<int64_t> delay_ms(std::string_view method, int attempt, const Result<HttpResponse>& outcome,
                                int64_t waited_ms, const Policy& policy, int64_t now, double jitter = 1.0);

}  // namespace keyrelay::retry
