#include "obs/metrics.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace keyrelay::relay {
namespace {

std::string number(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

constexpr std::array kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0};

}  // namespace

std::string prometheus_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '\\' || c == '"') out += '\\';
        out += c;
    }
    return out;
}

void Metrics::add_provider(const std::string& provider) {
    std::lock_guard<std::mutex> lock(mutex_);
    refreshes_.emplace(provider, 0);
    refresh_failures_.emplace(provider, 0);
    retries_.emplace(provider, 0);
}

void Metrics::bump(std::map<std::string, uint64_t>& counters, const std::string& provider) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters[provider];
}

void Metrics::bump(uint64_t& counter) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counter;
}

void Metrics::count_request(const std::string& provider, int status) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{provider, status}];
}

void Metrics::observe_upstream_latency(const std::string& provider, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& h = latency_[provider];
    if (h.counts.empty()) h.counts.assign(kBuckets.size() + 1, 0);
    ++h.counts[std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin()];
    ++h.count;
    h.sum += seconds;
}

void Metrics::count_refresh(const std::string& provider) { bump(refreshes_, provider); }
void Metrics::count_refresh_failure(const std::string& provider) { bump(refresh_failures_, provider); }
void Metrics::count_retry(const std::string& provider) { bump(retries_, provider); }
void Metrics::count_store_error() { bump(store_errors_); }
void Metrics::count_lock_wait() { bump(lock_waits_); }

uint64_t Metrics::store_errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return store_errors_;
}

uint64_t Metrics::lock_waits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lock_waits_;
}

void Metrics::set_reauth_gauge(std::function<int64_t()> source) {
    std::lock_guard<std::mutex> lock(mutex_);
    reauth_source_ = std::move(source);
}

void Metrics::set_reauthorize_by_gauge(std::function<std::vector<std::pair<std::string, int64_t>>()> source) {
    std::lock_guard<std::mutex> lock(mutex_);
    reauthorize_by_source_ = std::move(source);
}

uint64_t Metrics::refreshes(const std::string& provider) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = refreshes_.find(provider);
    return it == refreshes_.end() ? 0 : it->second;
}

uint64_t Metrics::requests(const std::string& provider, int status) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = requests_.find({provider, status});
    return it == requests_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
    std::function<int64_t()> reauth;
    std::function<std::vector<std::pair<std::string, int64_t>>()> reauthorize_by;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        reauth = reauth_source_;
        reauthorize_by = reauthorize_by_source_;
    }
    // The gauges read the store: compute them outside the metrics lock.
    int64_t needing_reauth = reauth ? reauth() : 0;
    const auto deadlines = reauthorize_by ? reauthorize_by() : std::vector<std::pair<std::string, int64_t>>{};

    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    auto family = [&out](const std::string& name, const char* type, const char* help) {
        out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto sample = [&out](const std::string& name, const std::string& labels, const std::string& value) {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + value + "\n";
    };
    auto provider = [](const std::string& p) { return "provider=\"" + prometheus_label(p) + "\""; };
    family("keyrelay_requests_total", "counter", "HTTP requests served, by provider and status.");
    for (const auto& [key, n] : requests_) {
        sample("keyrelay_requests_total", provider(key.first) + ",status=\"" + std::to_string(key.second) + "\"",
               std::to_string(n));
    }
    const std::string latency = "keyrelay_upstream_latency_seconds";
    family(latency, "histogram", "Latency of upstream API and token requests.");
    for (const auto& [name, h] : latency_) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i <= kBuckets.size(); ++i) {
            cumulative += h.counts[i];
            const std::string le = i < kBuckets.size() ? number(kBuckets[i]) : "+Inf";
            sample(latency + "_bucket", provider(name) + ",le=\"" + le + "\"", std::to_string(cumulative));
        }
        sample(latency + "_sum", provider(name), number(h.sum));
        sample(latency + "_count", provider(name), std::to_string(h.count));
    }
    auto counter = [&](const char* name, const char* help, const std::map<std::string, uint64_t>& values) {
        family(name, "counter", help);
        for (const auto& [p, n] : values) sample(name, provider(p), std::to_string(n));
    };
    counter("keyrelay_refreshes_total", "Successful token refreshes.", refreshes_);
    counter("keyrelay_refresh_failures_total", "Failed token refreshes.", refresh_failures_);
    counter("keyrelay_upstream_retries_total", "Upstream requests retried (idempotent methods only).", retries_);
    auto single = [&](const char* name, const char* type, const char* help, int64_t value) {
        family(name, type, help);
        sample(name, "", std::to_string(value));
    };
    single("keyrelay_store_errors_total", "counter",
           "Store operations that failed (Redis unreachable, file unreadable, write conflicts).",
           static_cast<int64_t>(store_errors_));
    single("keyrelay_store_lock_waits_total", "counter",
           "Refreshes that waited for the refresh lock another relay held.", static_cast<int64_t>(lock_waits_));
    single("keyrelay_connections_needing_reauth", "gauge",
           "Connections whose grant is dead: the user must connect again.", needing_reauth);
    family("keyrelay_connection_reauthorize_by_seconds", "gauge",
           "When the provider ends the grant whatever the relay does (unix seconds): someone must press Connect "
           "before then.");
    for (const auto& [p, at] : deadlines) {
        sample("keyrelay_connection_reauthorize_by_seconds", provider(p), std::to_string(at));
    }
    return out;
}

}  // namespace keyrelay::relay
