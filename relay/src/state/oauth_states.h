// One-time OAuth states: an authorization request in flight, created by /connect and consumed once by /callback
// (RFC 6749 §10.12). The record holds the PKCE verifier (RFC 7636), so it never leaves the relay in plaintext.
//
// Two backends: this process's memory (the file store: a callback is served by the relay that served /connect) and
// Redis, shared by every relay on it, so /connect and /callback may reach different relays.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "keyrelay/result.h"

namespace keyrelay::relay {

class Redis;

struct PendingAuthorization {
    std::string provider;
    std::string pkce_verifier;   // RFC 7636: kept server-side, sent only to the token endpoint
    std::string session_hash;    // the session that started the flow (SHA-256 hex of its id)
    int64_t expires_at = 0;
};

class StateStore {
public:
    StateStore() = default;
    virtual ~StateStore() = default;
    StateStore(const StateStore&) = delete;
    StateStore& operator=(const StateStore&) = delete;

    // Errors: "store.*" when the shared store cannot be reached.
    virtual Result<Unit> put(const std::string& state, const PendingAuthorization& pending, int64_t now) = 0;
    // One-time: the record is removed whether or not it is still valid, atomically (two relays cannot both take
    // it). nullopt when unknown, used or expired. Errors: "store.*"; "store.wrong_key" when the record was sealed
    // with a key this relay does not have.
    virtual Result<std::optional<PendingAuthorization>> take(const std::string& state, int64_t now) = 0;
};

// At most max_pending states in flight; when full, expired ones go first, then an arbitrary one.
class MemoryStateStore : public StateStore {
public:
    explicit MemoryStateStore(size_t max_pending = 10000) : max_pending_(max_pending) {}
    Result<Unit> put(const std::string& state, const PendingAuthorization& pending, int64_t now) override;
    Result<std::optional<PendingAuthorization>> take(const std::string& state, int64_t now) override;
    size_t size() const;

private:
    size_t max_pending_;
    mutable std::mutex mutex_;
    std::map<std::string, PendingAuthorization> pending_;
};

// keyrelay:oauth-state:<sha256 hex of the state> -> "<key id>:<base64 of the AES-256-GCM sealed record>" (the
// store key; the Redis key name as associated data), expiring with the state. The bound: at most
// max_per_session states in flight per page session (keyrelay:oauth-pending:<session hash>, a sorted set of state
// hashes by expiry); a new one beyond it drops that session's oldest. Sessions need a password, so the total is
// bounded by the logins the throttle lets through.
class RedisStateStore : public StateStore {
public:
    static constexpr size_t kMaxPerSession = 20;
    // keys: key id -> 32-byte store key (the connection store's); new records are sealed with current_key_id.
    RedisStateStore(Redis& redis, std::map<std::string, std::string> keys, std::string current_key_id,
                    size_t max_per_session = kMaxPerSession);
    Result<Unit> put(const std::string& state, const PendingAuthorization& pending, int64_t now) override;
    Result<std::optional<PendingAuthorization>> take(const std::string& state, int64_t now) override;

private:
    Redis& redis_;
    std::map<std::string, std::string> keys_;
    std::string current_key_id_;
    size_t max_per_session_;
};

// The Redis key of a state, from the state value.
std::string redis_state_key(const std::string& state);

}  // namespace keyrelay::relay
