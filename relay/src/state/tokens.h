// Keeps OAuth connections usable: proactive refresh before expiry, one reactive refresh after an upstream 401, and
// keep-alive refresh of idle connections whose refresh token is getting old. Keap and Atlassian both ROTATE refresh
// tokens (docs/reference/keap.md, docs/reference/jira.md), so a refresh must never run twice with the same token:
//  - single flight per connection inside the process (every other caller waits for the one refresh);
//  - across processes, the store's refresh lock (a flock in the data dir, or a renewed Redis lease), then a re-read
//    of the store: another relay may have rotated already, and then its connection is used without refreshing;
//  - the rotated refresh token is saved before the new access token is used, with a compare-and-set on the version
//    read: a relay that stalled past its lease cannot overwrite a newer record (its tokens are then unused);
//  - a dead grant (invalid_grant): re-read once, then mark needs_reauth and stop. Never a loop.
// The steady state costs one cheap store look per call (ConnectionStore::stamp): the decrypted connection is cached.
// When the store is unreachable, a cached access token that has not expired is still used; a refresh is not (the
// rotated refresh token must be saved first).
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
#include "state/connection_store.h"

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
    TokenManager(const Config& config, ConnectionStore& store, Transport transport, Metrics& metrics, NowFn now);

    // The stored connection: cached, re-read when the store's stamp of it changed. When the store is unreachable
    // and the connection is cached, the cached copy (fresh() decides whether its token may still be used).
    // Errors: "store.*".
    Result<std::optional<Connection>> get(const std::string& provider);
    // Every stored connection, read now. Errors: "store.*".
    Result<std::vector<Connection>> all();

    // A connection whose access token can be used now. reactive: `stale_version` is the version whose access token
    // got a 401; nothing is refreshed when the stored version moved on since (someone else refreshed).
    // Errors: "connection.not_connected", "connection.needs_reauth", "connection.refresh_failed",
    // "store.*", "connection.not_oauth".
    Result<Connection> fresh(const ProviderConfig& provider, RefreshReason reason = RefreshReason::proactive,
                             uint64_t stale_version = 0);

    // Saves a new connection after the code exchange; it replaces whatever is stored.
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
    Result<Connection> saved_or_theirs(const ProviderConfig& p, Connection c, const std::string& spent_refresh_token);
    Result<Connection> usable_despite(Result<Connection> result, const Connection& cached, RefreshReason reason);
    Flight& flight(const std::string& provider);
    void record_failure(Connection c, const std::string& result, bool needs_reauth);
    void remember(const Connection& c);
    template <class T>
    Result<T> counted(Result<T> r);

    const Config& config_;
    ConnectionStore& store_;
    Transport transport_;
    Metrics& metrics_;
    NowFn now_;

    std::mutex flights_mutex_;
    std::map<std::string, std::unique_ptr<Flight>> flights_;

    struct Cached {
        std::optional<std::string> stamp;   // the store's stamp when it was read; none: read again next time
        std::optional<Connection> connection;
    };
    std::mutex cache_mutex_;
    std::map<std::string, Cached> cache_;
};

}  // namespace keyrelay::relay
