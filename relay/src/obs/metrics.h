// Counters and a latency histogram, rendered in the Prometheus text exposition format (version 0.0.4).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace keyrelay::relay {

class Metrics {
public:
    // Makes the per-provider counters appear (at 0) before anything happened.
    void add_provider(const std::string& provider);
    // provider: "keap", "jira", ... or "relay" for requests that are not about a provider.
    void count_request(const std::string& provider, int status);
    void observe_upstream_latency(const std::string& provider, double seconds);
    void count_refresh(const std::string& provider);
    void count_refresh_failure(const std::string& provider);
    void count_retry(const std::string& provider);
    // keyrelay_store_errors_total: a store operation failed (any backend; "store.*" errors: unreachable Redis,
    // an unreadable file, a write conflict...).
    void count_store_error();
    // keyrelay_store_lock_waits_total: a refresh found the refresh lock held by another relay or process and waited.
    void count_lock_wait();

    // The gauge keyrelay_connections_needing_reauth is computed when scraped.
    void set_reauth_gauge(std::function<int64_t()> source);
    // keyrelay_connection_reauthorize_by_seconds{provider}: when a grant the provider ends on a fixed date needs
    // consent again (unix seconds; keyrelay/reauthorization.h). Computed when scraped; one sample per such grant.
    void set_reauthorize_by_gauge(std::function<std::vector<std::pair<std::string, int64_t>>()> source);

    std::string render() const;

    // For tests and logs.
    uint64_t refreshes(const std::string& provider) const;
    uint64_t requests(const std::string& provider, int status) const;
    uint64_t store_errors() const;
    uint64_t lock_waits() const;

private:
    struct Histogram {
        std::vector<uint64_t> counts;   // one per bucket (non-cumulative), + the +Inf overflow
        uint64_t count = 0;
        double sum = 0;
    };
    void bump(std::map<std::string, uint64_t>& counters, const std::string& provider);
    void bump(uint64_t& counter);
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_;
    std::map<std::string, uint64_t> refreshes_;
    std::map<std::string, uint64_t> refresh_failures_;
    std::map<std::string, uint64_t> retries_;
    uint64_t store_errors_ = 0;
    uint64_t lock_waits_ = 0;
    std::function<int64_t()> reauth_source_;
    std::function<std::vector<std::pair<std::string, int64_t>>()> reauthorize_by_source_;
};

// Escapes a label value per the exposition format: backslash, double quote and newline.
std::string prometheus_label(const std::string& value);

}  // namespace keyrelay::relay
