#include "state/tokens.h"

#include <sys/stat.h>

#include <algorithm>

#include "keyrelay/oauth2.h"
#include "keyrelay/redact.h"
#include "obs/log.h"

namespace keyrelay::relay {
namespace {

std::string stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "missing";
    return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
           "." + std::to_string(st.st_mtim.tv_nsec);
}

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

TokenManager::TokenManager(const Config& config, FileConnectionStore& store, Transport transport, Metrics& metrics,
                           NowFn now)
    : config_(config), store_(store), transport_(std::move(transport)), metrics_(metrics), now_(std::move(now)) {}

Result<std::vector<Connection>> TokenManager::all() {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    std::string stamp = stamp_of(store_.path());
    if (!cache_loaded_ || stamp != cache_stamp_) {
        auto loaded = store_.load_all();
        if (!loaded) return loaded.error();
        cache_.clear();
        for (auto& c : *loaded) cache_[c.provider] = c;
        cache_stamp_ = stamp;
        cache_loaded_ = true;
    }
    std::vector<Connection> out;
    for (const auto& [name, c] : cache_) out.push_back(c);
    return out;
}

Result<std::optional<Connection>> TokenManager::get(const std::string& provider) {
    auto list = all();
    if (!list) return list.error();
    for (auto& c : *list) {
        if (c.provider == provider) return std::optional<Connection>(std::move(c));
    }
    return std::optional<Connection>();
}

Result<Connection> TokenManager::save(Connection c) { return store_.save(std::move(c)); }

Result<Unit> TokenManager::remove(const std::string& provider) { return store_.remove(provider); }

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
    Flight& f = flight(p.name);
    std::unique_lock<std::mutex> lock(f.mutex);
    while (true) {
        auto current = get(p.name);
        if (!current) return current.error();
        if (!current->has_value()) return not_connected(p.name);
        const Connection& c = **current;
        if (c.needs_reauth) return needs_reauth_error(p.name, c.last_refresh_result);
        if (!due(c, reason, stale_version, now_())) return c;
        if (f.running) {
            // Single flight: wait for the refresh in progress and take its outcome.
            uint64_t generation = f.generation;
            f.done.wait(lock, [&] { return !f.running; });
            if (f.generation != generation && f.result) return *f.result;
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
        return result;
    }
}

Result<Connection> TokenManager::refresh_across_processes(const ProviderConfig& p, RefreshReason reason,
                                                          uint64_t stale_version) {
    // Another relay process sharing the data dir may be refreshing this connection right now: take the lock, then
    // decide again from what is on disk.
    auto file_lock = FileLock::acquire(store_.data_dir(), "refresh-" + p.name);
    if (!file_lock) return file_lock.error();
    auto current = store_.load(p.name);
    if (!current) return current.error();
    if (!current->has_value()) return not_connected(p.name);
    Connection c = **current;
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
    if (auto saved = store_.save(std::move(c)); !saved) {
        log_line(LogLevel::error, "could not record the refresh failure in the store",
                 {{"error", saved.error().code}, {"detail", saved.error().message}});
    }
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
        auto saved = store_.save(std::move(c));
        if (!saved) {
            metrics_.count_refresh_failure(p.name);
            log_line(LogLevel::error, "refreshed tokens could not be saved; the connection will need re-authorization",
                     {{"provider", p.name}, {"error", saved.error().code}, {"detail", saved.error().message}});
            return saved.error();
        }
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
            auto again = store_.load(p.name);
            if (again && again->has_value() && (*again)->tokens.refresh_token != c.tokens.refresh_token &&
                !(*again)->needs_reauth) {
                log_line(LogLevel::info, "refresh token was rotated elsewhere; using the stored one",
                         {{"provider", p.name}});
                Connection other = **again;
                if (!oauth2::needs_refresh(other.tokens, now,
                                           refresh_margin(config_.refresh_margin_seconds, other.tokens.expires_in))) {
                    return other;
                }
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
