// Keeps OAuth connections usable: proactive refresh before expiry, one reactive refresh after an upstream 401, and
// keep-alive refresh of idle connections whose refresh token is getting old. Keap and Atlassian both ROTATE refresh
// tokens (docs/reference/keap.md, docs/reference/jira.md), so a refresh must never run twice with the same token:
//  - single flight per connection inside the process (every other caller waits for the one refresh);
//  - across processes sharing the data dir: the file lock "refresh-<provider>", then a re-read of the store, since
//    another process may have rotated already;
//  - the rotated refresh token is saved before the new access token is used;
//  - a dead grant (invalid_grant): re-read once, then mark needs_reauth and stop. Never a loop.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "keyrelay/http.h"
#include "keyrelay/result.h"
#include "obs/metrics.h"
#include "state/store.h"

namespace keyrelay::relay {

// Sends one request to a provider's token endpoint (the relay passes Upstream::send; tests pass a fake).
using Transport = std::function<Result<HttpResponse>(const std::string& provider, const HttpRequest&)>;
using NowFn = std::function<int64_t()>;

enum class RefreshReason { proactive, reactive, keepalive };

// The proactive margin: min(configured, 300 s, expires_in / 10). A 2-second sandbox token is refreshed at expiry,
// not on every call; a 24-hour Keap token 5 minutes before.
int64_t refresh_margin(int64_t configured, int64_t expires_in);

class TokenManager {
public:
    TokenManager(const Config& config, FileConnectionStore& store, Transport transport, Metrics& metrics, NowFn now);

    // The stored connection (cached; re-read when the store file changed on disk).
    Result<std::optional<Connection>> get(const std::string& provider);
    Result<std::vector<Connection>> all();

    // A connection whose access token can be used now. reactive: `stale_version` is the version whose access token
    // got a 401; nothing is refreshed when the stored version moved on since (someone else refreshed).
    // Errors: "connection.not_connected", "connection.needs_reauth", "connection.refresh_failed",
    // "store.*", "connection.not_oauth".
    Result<Connection> fresh(const ProviderConfig& provider, RefreshReason reason = RefreshReason::proactive,
                             uint64_t stale_version = 0);

    // Saves a new connection after the code exchange.
    Result<Connection> save(Connection c);
    Result<Unit> remove(const std::string& provider);

    // One pass of the keep-alive check: refreshes idle connections of providers with keepalive_refresh whose refresh
    // token is older than keepalive_refresh_days. Returns how many were refreshed.
    int keepalive_pass();

    int64_t needing_reauth();

private:
    struct Flight {
        std::mutex mutex;
        std::condition_variable done;
        bool running = false;
        uint64_t generation = 0;
        std::optional<Result<Connection>> result;
    };
    bool due(const Connection& c, RefreshReason reason, uint64_t stale_version, int64_t now) const;
    Result<Connection> refresh_across_processes(const ProviderConfig& p, RefreshReason reason,
                                                uint64_t stale_version);
    Result<Connection> refresh_with(const ProviderConfig& p, Connection c, RefreshReason reason, bool may_reread);
    Flight& flight(const std::string& provider);
    void record_failure(Connection c, const std::string& result, bool needs_reauth);

    const Config& config_;
    FileConnectionStore& store_;
    Transport transport_;
    Metrics& metrics_;
    NowFn now_;

    std::mutex flights_mutex_;
    std::map<std::string, std::unique_ptr<Flight>> flights_;

    std::mutex cache_mutex_;
    bool cache_loaded_ = false;
    std::string cache_stamp_;
    std::map<std::string, Connection> cache_;
};

}  // namespace keyrelay::relay
