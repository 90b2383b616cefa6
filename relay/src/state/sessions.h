// Page sessions. Server-side state only: the browser holds an opaque random id in an HttpOnly cookie (BFF draft:
// tokens never reach the browser), and every backend keys a session by the SHA-256 of that id, so what is stored
// holds nothing a thief could replay as a cookie. Every function takes the time as a parameter so the logic is
// testable without a clock.
//
// Two backends: the file store (memory, or <data_dir>/sessions.json shared by the relay processes on that dir) and
// Redis, shared by every relay on it (docs/deploy.md, "Two or more relays").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "keyrelay/result.h"
#include "state/crypto.h"
#include "state/shared_json_file.h"

namespace keyrelay::relay {

class Redis;

struct Session {
    std::string user;
    int64_t created_at = 0;
    int64_t expires_at = 0;
};

class SessionStore {
public:
    explicit SessionStore(int64_t lifetime_seconds) : lifetime_(lifetime_seconds) {}
    virtual ~SessionStore() = default;
    SessionStore(const SessionStore&) = delete;
    SessionStore& operator=(const SessionStore&) = delete;

    // Returns the new session id (the cookie value). Errors: "store.*" when the shared store cannot be reached.
    Result<std::string> create(const std::string& user, int64_t now);
    // nullopt when unknown, ended or expired. Errors: "store.*".
    Result<std::optional<Session>> find(const std::string& id, int64_t now);
    // The same by the SHA-256 hex of the id (what a PendingAuthorization records).
    virtual Result<std::optional<Session>> find_by_hash(const std::string& hash, int64_t now) = 0;
    // Ends the session everywhere it is shared. Errors: "store.*".
    Result<Unit> remove(const std::string& id);
    int64_t lifetime() const { return lifetime_; }

protected:
    virtual Result<Unit> put(const std::string& hash, const Session& session, int64_t now) = 0;
    virtual Result<Unit> erase(const std::string& hash) = 0;

private:
    int64_t lifetime_;
};

// In memory, or with a data dir in <data_dir>/sessions.json (mode 0600), re-read when another process changed it.
class FileSessionStore : public SessionStore {
public:
    explicit FileSessionStore(int64_t lifetime_seconds = 12 * 3600, const std::string& data_dir = {});
    Result<std::optional<Session>> find_by_hash(const std::string& hash, int64_t now) override;
    size_t size() const;

protected:
    Result<Unit> put(const std::string& hash, const Session& session, int64_t now) override;
    Result<Unit> erase(const std::string& hash) override;

private:
    void load_locked();
    // Runs change() on the sessions, under the data dir's lock when there is a file (read, change, write).
    Result<Unit> update(int64_t now, const std::function<void()>& change);
    mutable std::mutex mutex_;
    std::map<std::string, Session> sessions_;   // sha256 hex of the id -> session
    SharedJsonFile file_;
};

// keyrelay:session:<sha256 hex of the id> -> {"user","created_at","expires_at"}, expiring at expires_at (SET PXAT).
// No local cache: a logout on one relay ends the session on every relay at once.
class RedisSessionStore : public SessionStore {
public:
    RedisSessionStore(Redis& redis, int64_t lifetime_seconds);
    Result<std::optional<Session>> find_by_hash(const std::string& hash, int64_t now) override;

protected:
    Result<Unit> put(const std::string& hash, const Session& session, int64_t now) override;
    Result<Unit> erase(const std::string& hash) override;

private:
    Redis& redis_;
};

// The Redis backend when `redis` is set, else the file store in data_dir ("" = memory only).
std::unique_ptr<SessionStore> make_session_store(int64_t lifetime_seconds, const std::string& data_dir, Redis* redis);

// The Redis key of a session, from the SHA-256 hex of its id.
std::string redis_session_key(const std::string& hash);

}  // namespace keyrelay::relay
