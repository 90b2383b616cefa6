// Page sessions, the failed-login throttle and pending OAuth authorizations. Server-side state only: the browser
// holds an opaque random id in an HttpOnly cookie (BFF draft: tokens never reach the browser). Every function takes
// the time as a parameter so the logic is testable without a clock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace keyrelay::relay {

struct Session {
    std::string user;
    int64_t created_at = 0;
    int64_t expires_at = 0;
};

// Sessions keyed by SHA-256 of the cookie value, so the optional file in the data dir (shared by relay processes,
// surviving restarts) holds nothing a thief could replay as a cookie.
class SessionStore {
public:
    // data_dir "" keeps sessions in memory only; otherwise <data_dir>/sessions.json (mode 0600) is shared.
    explicit SessionStore(int64_t lifetime_seconds = 12 * 3600, std::string data_dir = {});

    // Returns the new session id (the cookie value).
    std::string create(const std::string& user, int64_t now);
    std::optional<Session> find(const std::string& id, int64_t now);
    // The same by the SHA-256 hex of the id (what a PendingAuthorization records): nullopt when ended or expired.
    std::optional<Session> find_by_hash(const std::string& hash, int64_t now);
    void remove(const std::string& id);
    size_t size() const;
    int64_t lifetime() const { return lifetime_; }

private:
    void load_locked();
    void save_locked(int64_t now);
    int64_t lifetime_;
    std::string data_dir_;
    std::string path_;
    mutable std::mutex mutex_;
    std::map<std::string, Session> sessions_;   // sha256 hex of the id -> session
    std::string file_stamp_;
};

// RFC 6749 §10.10 / OWASP: throttle password guessing per client address.
class LoginThrottle {
public:
    LoginThrottle(int max_failures = 5, int64_t window_seconds = 300);
    // 0 when a login attempt is allowed now; otherwise the seconds until one is (for Retry-After).
    int64_t retry_after(const std::string& address, int64_t now);
    void record_failure(const std::string& address, int64_t now);
    void record_success(const std::string& address);

private:
    void prune_locked(std::deque<int64_t>& failures, int64_t now) const;
    int max_failures_;
    int64_t window_;
    std::mutex mutex_;
    std::map<std::string, std::deque<int64_t>> failures_;
};

// An authorization request in flight: created by /connect, consumed once by /callback (RFC 6749 §10.12).
struct PendingAuthorization {
    std::string provider;
    std::string pkce_verifier;   // RFC 7636: kept server-side, sent only to the token endpoint
    std::string session_hash;    // the session that started the flow
    int64_t expires_at = 0;
};

class StateStore {
public:
    explicit StateStore(size_t max_pending = 10000) : max_pending_(max_pending) {}
    void put(const std::string& state, PendingAuthorization pending, int64_t now);
    // One-time: the record is removed whether or not it is still valid. nullopt when unknown, used or expired.
    std::optional<PendingAuthorization> take(const std::string& state, int64_t now);
    size_t size() const;

private:
    size_t max_pending_;
    mutable std::mutex mutex_;
    std::map<std::string, PendingAuthorization> pending_;
};

// Hex SHA-256, used to key sessions and bind states to them.
std::string sha256_hex(const std::string& data);

}  // namespace keyrelay::relay
