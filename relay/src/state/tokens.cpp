#include "state/tokens.h"

#include <algorithm>

#include "keyrelay/oauth2.h"
#include "keyrelay/redact.h"
#include "obs/log.h"

namespace keyrelay::relay {
namespace {

const char* reason_name(RefreshReason r) {
    switch (r) {
        case RefreshReason::proactive: return "proactive";
        case RefreshReason::reactive: return "reactive";
        case RefreshReason::keepalive: return "keepalive";
    }
    return "proactive";
}

Error not_connected(const std::string& provider) {
    return make_error("connection.not_connected", provider + " is not connected.",
                      "Connect it first: open the relay's page and press Connect (GET /connect/" + provider +
                          "), or configure a static credential for it.");
}

Error needs_reauth_error(const std::string& provider, const std::string& why) {
    return make_error("connection.needs_reauth",
                      "The " + provider + " connection needs to be authorized again" +
                          (why.empty() ? std::string(".") : " (" + why + ")."),
                      "The refresh token is dead (revoked, expired after long inactivity, or used twice by another "
                      "program sharing the same developer app). Open the relay's page and press Connect for " +
                          provider + " again.");
}

}  // namespace

int64_t refresh_margin(int64_t configured, int64_t expires_in) {
    if (expires_in <= 0) return 0;
    return std::max<int64_t>(0, std::min({configured, int64_t(300), expires_in / 10}));
}

TokenManager::TokenManager(const Config& config, ConnectionStore& store, Transport transport, Metrics& metrics,
                           NowFn now)
    : config_(config), store_(store), transport_(std::move(transport)), metrics_(metrics), now_(std::move(now)) {}

template <class T>
Result<T> TokenManager::counted(Result<T> r) {
    if (!r && r.error().code.rfind("store.", 0) == 0) metrics_.count_store_error();
    return r;
}

void TokenManager::remember(const Connection& c) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_[c.provider] = Cached{std::nullopt, c};
}

Result<std::vector<Connection>> TokenManager::all() { return counted(store_.load_all()); }

Result<std::optional<Connection>> TokenManager::get(const std::string& provider) {
    // One look at the store (a stat, or one HGET of the version), outside the cache lock: calls run in parallel.
    auto stamp = counted(store_.stamp(provider));
    if (!stamp) {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(provider);
        if (stamp.error().code == "store.unavailable" && it != cache_.end()) return it->second.connection;
        return stamp.error();
    }
    {
        std::lock_guard<std::mutex> lock(cache_mutex_);
        auto it = cache_.find(provider);
        if (it != cache_.end() && it->second.stamp == *stamp) return it->second.connection;
    }
    auto loaded = counted(store_.load(provider));
    if (!loaded) return loaded.error();
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_[provider] = Cached{*stamp, *loaded};
    return loaded;
}

Result<Connection> TokenManager::save(Connection c) {
    auto saved = counted(store_.replace(std::move(c)));
    if (saved) remember(*saved);
    return saved;
}

Result<Unit> TokenManager::remove(const std::string& provider) {
    auto removed = counted(store_.remove(provider));
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_.erase(provider);
    return removed;
}

int64_t TokenManager::needing_reauth() {
    auto list = all();
    if (!list) return 0;
    return std::count_if(list->begin(), list->end(), [](const Connection& c) { return c.needs_reauth; });
}

TokenManager::Flight& TokenManager::flight(const std::string& provider) {
    std::lock_guard<std::mutex> lock(flights_mutex_);
    auto& f = flights_[provider];
    if (!f) f = std::make_unique<Flight>();
    return *f;
}

bool TokenManager::due(const Connection& c, RefreshReason reason, uint64_t stale_version, int64_t now) const {
    switch (reason) {
        case RefreshReason::proactive:
            return oauth2::needs_refresh(c.tokens, now,
                                         refresh_margin(config_.refresh_margin_seconds, c.tokens.expires_in));
        case RefreshReason::reactive:
            // The access token that got the 401 is still the stored one: nobody refreshed since.
            return c.version == stale_version;
        case RefreshReason::keepalive:
            return !c.tokens.refresh_token.empty() &&
                   now - c.refresh_token_issued_at >= config_.keepalive_refresh_days * 86400;
    }
    return false;
}

Result<Connection> TokenManager::fresh(const ProviderConfig& p, RefreshReason reason, uint64_t stale_version) {
    if (p.mode != Mode::oauth) {
        return make_error("connection.not_oauth", p.name + " uses a static credential; there is nothing to refresh.",
                          "Static credentials (API keys, API tokens, PATs) are replaced in the environment.");
    }
    // The stored connection, or why there is none to use.
    auto stored = [&]() -> Result<Connection> {
        auto current = get(p.name);
        if (!current) return current.error();
        if (!current->has_value()) return not_connected(p.name);
        if ((*current)->needs_reauth) return needs_reauth_error(p.name, (*current)->last_refresh_result);
        return **current;
    };
    // The steady state: the cached connection, after one look at the store, without any lock.
    if (auto c = stored(); !c || !due(*c, reason, stale_version, now_())) return c;
    Flight& f = flight(p.name);
    std::unique_lock<std::mutex> lock(f.mutex);
    while (true) {
        auto c = stored();
        if (!c || !due(*c, reason, stale_version, now_())) return c;
        if (f.running) {
            // Single flight: wait for the refresh in progress and take its outcome.
            uint64_t generation = f.generation;
            f.done.wait(lock, [&] { return !f.running; });
            if (f.generation != generation && f.result) return usable_despite(*f.result, *c, reason);
            continue;
        }
        f.running = true;
        lock.unlock();
        Result<Connection> result = refresh_across_processes(p, reason, stale_version);
        lock.lock();
        f.running = false;
        ++f.generation;
        f.result = result;
        f.done.notify_all();
        return usable_despite(std::move(result), *c, reason);
    }
}

Result<Connection> TokenManager::usable_despite(Result<Connection> result, const Connection& cached,
                                                RefreshReason reason) {
    // The store is unreachable (or the refresh lock stuck), so no refresh: a cached access token that has not expired
    // yet (a proactive refresh starts before expiry) is still good. Not after a 401: that token was refused.
    if (result || reason == RefreshReason::reactive || cached.tokens.access_token.empty()) return result;
    const std::string& code = result.error().code;
    if (code != "store.unavailable" && code != "store.lock_timeout") return result;
    if (cached.tokens.expires_at != 0 && now_() >= cached.tokens.expires_at) return result;
    return cached;
}

Result<Connection> TokenManager::refresh_across_processes(const ProviderConfig& p, RefreshReason reason,
                                                          uint64_t stale_version) {
    // Another relay sharing the store may be refreshing this connection right now: take the refresh lock (waiting
    // while it is held), then decide again from what is stored.
    auto held = counted(store_.lock_refresh(p.name));
    if (!held) {
        if (held.error().code == "store.lock_timeout") {
            // The holder is stuck; if someone else refreshed meanwhile, that is good enough.
            auto stored = counted(store_.load(p.name));
            if (stored && stored->has_value() && !(*stored)->needs_reauth &&
                !due(**stored, reason, stale_version, now_())) {
                remember(**stored);
                return **stored;
            }
        }
        return held.error();
    }
    if ((*held)->waited()) metrics_.count_lock_wait();
    auto current = counted(store_.load(p.name));
    if (!current) return current.error();
    if (!current->has_value()) return not_connected(p.name);
    Connection c = **current;
    remember(c);
    if (c.needs_reauth) return needs_reauth_error(p.name, c.last_refresh_result);
    if (!due(c, reason, stale_version, now_())) {
        log_line(LogLevel::info, "refresh skipped: the connection was already refreshed",
                 {{"provider", p.name}, {"reason", reason_name(reason)}, {"version", c.version}});
        return c;
    }
    return refresh_with(p, std::move(c), reason, true);
}

void TokenManager::record_failure(Connection c, const std::string& result, bool needs_reauth) {
    c.last_refresh_at = now_();
    c.last_refresh_result = result;
    if (needs_reauth) c.needs_reauth = true;
    std::string provider = c.provider;
    auto saved = counted(store_.save(std::move(c)));
    if (saved) {
        remember(*saved);
    } else if (saved.error().code == "store.conflict") {
        // Another relay wrote a newer record meanwhile (it refreshed): that one stands, and says more than ours.
        log_line(LogLevel::info, "refresh failure not recorded: another relay stored a newer record",
                 {{"provider", provider}});
    } else {
        log_line(LogLevel::error, "could not record the refresh failure in the store",
                 {{"provider", provider}, {"error", saved.error().code}, {"detail", saved.error().message}});
    }
}

Result<Connection> TokenManager::saved_or_theirs(const ProviderConfig& p, Connection c,
                                                 const std::string& spent_refresh_token) {
    auto saved = counted(store_.save(c));
    if (saved || saved.error().code != "store.conflict") return saved;
    // Someone wrote the record after we read it: only possible when our refresh lock ran out while we refreshed (a
    // stall past the lease, docs/api.md). Their record is newer; ours must not overwrite it.
    auto stored = counted(store_.load(p.name));
    if (!stored) return stored.error();
    if (!stored->has_value()) return not_connected(p.name);
    Connection theirs = **stored;
    if (theirs.needs_reauth && theirs.tokens.refresh_token == spent_refresh_token) {
        // They tried the refresh token we had just spent, got invalid_grant and gave up: the tokens we hold are the
        // only valid ones, so they replace the dead record (still a compare-and-set, on their version).
        c.version = theirs.version;
        c.needs_reauth = false;
        log_line(LogLevel::warn, "refreshed tokens saved over a record another relay had marked needs_reauth",
                 {{"provider", p.name}, {"version", theirs.version}});
        return counted(store_.save(std::move(c)));
    }
    log_line(LogLevel::warn, "refreshed tokens discarded: another relay stored a newer record first; using it",
             {{"provider", p.name}, {"read_version", c.version}, {"stored_version", theirs.version}});
    remember(theirs);
    if (theirs.needs_reauth) return needs_reauth_error(p.name, theirs.last_refresh_result);
    return theirs;
}

Result<Connection> TokenManager::refresh_with(const ProviderConfig& p, Connection c, RefreshReason reason,
                                              bool may_reread) {
    if (c.tokens.refresh_token.empty()) {
        record_failure(c, "oauth.no_refresh_token", true);
        metrics_.count_refresh_failure(p.name);
        log_line(LogLevel::warn, "connection needs re-authorization: no refresh token",
                 {{"provider", p.name}, {"reason", reason_name(reason)}});
        return needs_reauth_error(p.name, "the provider gave no refresh token");
    }
    oauth2::Provider provider = p.oauth;
    if (p.refresh_client_auth) provider.client_auth = *p.refresh_client_auth;
    oauth2::Client client{p.client_id, p.client_secret, {}};
    HttpRequest request = oauth2::build_refresh(provider, client, c.tokens.refresh_token);
    const std::string request_refresh_token = c.tokens.refresh_token;

    auto response = transport_(p.name, request);
    int64_t now = now_();
    if (!response) {
        metrics_.count_refresh_failure(p.name);
        log_line(LogLevel::warn, "token refresh failed: provider unreachable",
                 {{"provider", p.name}, {"reason", reason_name(reason)}, {"error", response.error().code}});
        record_failure(c, response.error().code, false);
        return make_error("connection.refresh_failed",
                          "Refreshing the " + p.name + " token failed: " + response.error().message,
                          response.error().hint);
    }
    auto tokens = oauth2::parse_token_response(*response, now, &c.tokens, p.oauth.account_from_scope);
    if (!tokens) {
        // A token endpoint (or a gateway before it) may quote the request in its error_description: the client
        // secret, the refresh token. They never reach the log or a caller (docs/security.md).
        Redactor sent;
        sent.add_request(request);
        Error quoted = tokens.error();
        if (sent.redact_error(quoted)) tokens = quoted;
    }
    if (tokens) {
        bool rotated = tokens->refresh_token != c.tokens.refresh_token;
        c.tokens = *tokens;
        if (p.oauth.account_from_scope && !tokens->account.empty()) c.account = tokens->account;
        if (rotated) c.refresh_token_issued_at = now;
        c.last_refresh_at = now;
        c.last_refresh_result = "ok";
        // Persist the rotated refresh token BEFORE anyone uses the new access token: if the process died after
        // using it but before saving, the only valid refresh token would be lost.
        auto saved = saved_or_theirs(p, std::move(c), request_refresh_token);
        if (!saved) {
            metrics_.count_refresh_failure(p.name);
            log_line(LogLevel::error, "refreshed tokens could not be saved; the connection will need re-authorization",
                     {{"provider", p.name}, {"error", saved.error().code}, {"detail", saved.error().message}});
            return saved.error();
        }
        remember(*saved);
        metrics_.count_refresh(p.name);
        log_line(LogLevel::info, "token refreshed",
                 {{"provider", p.name}, {"reason", reason_name(reason)}, {"expires_at", saved->tokens.expires_at},
                  {"rotated", rotated}, {"version", saved->version}});
        return saved;
    }

    const Error& error = tokens.error();
    metrics_.count_refresh_failure(p.name);
    if (oauth2::is_dead_grant(error)) {
        if (may_reread) {
            // Another program may have rotated the token between our read and the provider's answer.
            auto again = counted(store_.load(p.name));
            if (again && again->has_value() && (*again)->tokens.refresh_token != c.tokens.refresh_token &&
                !(*again)->needs_reauth) {
                log_line(LogLevel::info, "refresh token was rotated elsewhere; using the stored one",
                         {{"provider", p.name}});
                Connection other = **again;
                remember(other);
                if (!due(other, RefreshReason::proactive, 0, now)) return other;
                return refresh_with(p, std::move(other), reason, false);
            }
        }
        record_failure(c, error.code, true);
        log_line(LogLevel::warn, "connection needs re-authorization: the grant is dead",
                 {{"provider", p.name}, {"reason", reason_name(reason)}, {"error", error.code},
                  {"detail", error.message}});
        return needs_reauth_error(p.name, error.code);
    }
    record_failure(c, error.code, false);
    log_line(LogLevel::warn, "token refresh failed",
             {{"provider", p.name}, {"reason", reason_name(reason)}, {"error", error.code}, {"detail", error.message}});
    return make_error("connection.refresh_failed", "Refreshing the " + p.name + " token failed: " + error.message,
                      error.hint);
}

int TokenManager::keepalive_pass() {
    int refreshed = 0;
    for (const auto& p : config_.providers) {
        if (p.mode != Mode::oauth || !p.keepalive_refresh || !p.oauth_configured()) continue;
        auto c = get(p.name);
        if (!c || !c->has_value() || (*c)->needs_reauth) continue;
        if (!due(**c, RefreshReason::keepalive, 0, now_())) continue;
        auto r = fresh(p, RefreshReason::keepalive);
        if (r && r->last_refresh_at == now_()) ++refreshed;
    }
    return refreshed;
}

}  // namespace keyrelay::relay
