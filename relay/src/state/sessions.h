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

#include <nlohmann/json.hpp>

namespace keyrelay::relay {

struct Session {
    std::string user;
    int64_t created_at = 0;
    int64_t expires_at = 0;
};

// A JSON document in the data dir that relay processes on that dir share: re-read when another process changed it
// (one stat), replaced atomically (a temporary file, fsync, rename), mode 0600. Not thread-safe: its owner locks.
class SharedJsonFile {
public:
    SharedJsonFile() = default;
    SharedJsonFile(std::string path, std::string what) : path_(std::move(path)), what_(std::move(what)) {}
    bool enabled() const { return !path_.empty(); }
    // The document when the file changed since the last load or save; nullopt when unchanged. A missing file gives
    // an empty object, an unreadable one too (with a warning in the log).
    std::optional<nlohmann::json> load_if_changed();
    // False (with a warning in the log) when it could not be written; the caller keeps its state in memory.
    bool save(const nlohmann::json& doc);
    // The next load_if_changed() reads the file whatever its stamp (before a read-modify-write under a FileLock).
    void forget() { stamp_.clear(); }

private:
    std::string path_;
    std::string what_;   // "sessions", "login failures": for the log
    std::string stamp_;
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
    mutable std::mutex mutex_;
    std::map<std::string, Session> sessions_;   // sha256 hex of the id -> session
    SharedJsonFile file_;
};

// RFC 6749 §10.10 / OWASP: throttle password guessing per client address. Failures count per address whatever
// username they named, up to the limit; a correct password clears only that username's failures, so logging in as
// yourself does not reset the count of guesses at someone else. With a data dir the count lives beside the sessions
// (<data_dir>/login_failures.json), shared by the relay processes on that dir.
class LoginThrottle {
public:
    explicit LoginThrottle(int max_failures = 5, int64_t window_seconds = 300, std::string data_dir = {});
    // 0 when a login attempt is allowed now; otherwise the seconds until one is (for Retry-After).
    int64_t retry_after(const std::string& address, int64_t now);
    void record_failure(const std::string& address, const std::string& username, int64_t now);
    void record_success(const std::string& address, const std::string& username, int64_t now);

private:
    struct Failure {
        int64_t at = 0;
        std::string user_hash;   // SHA-256 hex of the username
    };
    void prune_locked(std::deque<Failure>& failures, int64_t now) const;
    void load_locked();
    void save_locked();
    // Runs change() on the failures, under the data dir's lock when there is one (read, change, write).
    template <class Change>
    void update_locked(int64_t now, Change change);
    int max_failures_;
    int64_t window_;
    std::string data_dir_;
    std::mutex mutex_;
    std::map<std::string, std::deque<Failure>> failures_;   // client address -> failures in the window, oldest first
    SharedJsonFile file_;
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
