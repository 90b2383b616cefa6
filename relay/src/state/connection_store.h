// Where connections are kept: the file store (tokens.json in the data dir, one relay or several on one machine) or
// Redis (several relays on several machines). Both keep the same sealed records (state/sealed_record.h), and both
// give the same guarantees:
//  - every write of a connection is a compare-and-set on its version: save(c) succeeds only while the stored
//    version is still the one c was read at, and stores version + 1; otherwise "store.conflict";
//  - a refresh lock per provider, shared by every relay using the store, so a rotating refresh token is spent once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/result.h"
#include "state/connection.h"

namespace keyrelay::relay {

// A held refresh lock; the destructor releases it (the owner only).
class RefreshLock {
public:
    virtual ~RefreshLock() = default;
    // True when the lock was busy and this caller had to wait for it (keyrelay_store_lock_waits_total).
    virtual bool waited() const = 0;
};

class ConnectionStore {
public:
    virtual ~ConnectionStore() = default;

    // "file" or "redis" (/healthz, logs).
    virtual std::string backend() const = 0;

    // Every stored connection, read now (no cache). Errors: "store.unavailable", "store.corrupt",
    // "store.wrong_key", "store.unknown_key_id", "store.read_failed".
    virtual Result<std::vector<Connection>> load_all() const = 0;
    // One connection, read now, or nothing when it is not stored. Errors: as load_all.
    virtual Result<std::optional<Connection>> load(const std::string& provider) const = 0;

    // A short text that changes whenever the stored record of `provider` may have changed, at the cost of at most
    // one cheap look (file: the stat of tokens.json; Redis: one HGET of the record's version). A cache compares it
    // to decide whether to load again. Errors: "store.unavailable", "store.read_failed".
    virtual Result<std::string> stamp(const std::string& provider) const = 0;

    // Compare-and-set: stores c with version c.version + 1 if the stored version is still c.version (0: nothing
    // stored). Returns c with its new version. Errors: "store.conflict" (someone wrote in between: read again),
    // "store.unavailable", "store.write_failed", "store.bad_id", "store.bad_key_length", and load errors.
    virtual Result<Connection> save(Connection c) = 0;

    // A new connection (from the OAuth callback) that replaces whatever is stored, whatever its version. Stores and
    // returns it with the stored version + 1, so every cache sees the change. Errors: as save, except conflict.
    virtual Result<Connection> replace(Connection c) = 0;

    // Stores c exactly as given, with c.version, whatever is stored (keyrelay migrate-store copies records between
    // backends with it; copying twice is the same as once). Errors: as save, except conflict.
    virtual Result<Unit> put(const Connection& c) = 0;

    // Deletes one connection (nothing stored is fine). Errors: "store.unavailable", "store.write_failed".
    virtual Result<Unit> remove(const std::string& provider) = 0;

    // Re-seals every record with the current key (keyrelay rotate-key). Returns how many. Errors: as save.
    virtual Result<size_t> rotate() = 0;

    // Takes the refresh lock of `provider`, waiting while another relay holds it. Errors: "store.lock_timeout"
    // (still held after a few lease times: the holder is stuck), "store.lock_failed", "store.unavailable".
    virtual Result<std::unique_ptr<RefreshLock>> lock_refresh(const std::string& provider) = 0;
};

}  // namespace keyrelay::relay
