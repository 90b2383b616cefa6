// The token store: one file in the data dir, each record encrypted with AES-256-GCM under the store key, the
// record id as associated data, a key id per record so keys can be rotated. Writes are atomic (temp file, fsync,
// rename, fsync of the directory): a crash leaves the old store or the new one, never half of one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/oauth2.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

// One provider connection, as the relay keeps it.
struct Connection {
    std::string provider;                 // record id: "keap", "jira", or a configured provider name
    oauth2::TokenSet tokens;
    std::string account;                  // "ab123.infusionsoft.com", Jira site URL, ...
    std::string cloud_id;                 // Jira Cloud: from accessible-resources
    int64_t connected_at = 0;
    int64_t refresh_token_issued_at = 0;  // when the current refresh token was obtained (keep-alive age)
    int64_t last_refresh_at = 0;
    std::string last_refresh_result;      // "ok", or an error code such as "oauth.invalid_grant"
    bool needs_reauth = false;
    uint64_t version = 0;                 // bumped on every save; lets a reader see another process rotated
};

// Serialization used inside the encrypted records (JSON).
std::string to_json(const Connection& c);
Result<Connection> connection_from_json(std::string_view text);

// Exclusive advisory lock (flock) on <data_dir>/<name>.lock, shared by every process using the data dir.
// Released by the destructor.
class FileLock {
public:
    FileLock() = default;
    FileLock(FileLock&&) noexcept;
    FileLock& operator=(FileLock&&) noexcept;
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    ~FileLock();
    bool held() const { return fd_ >= 0; }
    // Blocks until the lock is held. Errors: "store.lock_failed".
    static Result<FileLock> acquire(const std::string& data_dir, const std::string& name);

private:
    explicit FileLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

class TokenStore {
public:
    // keys: key id -> 32-byte key; current_key_id: the one new records are sealed with.
    // Creates data_dir (0700) if missing. Does not read the file yet.
    TokenStore(std::string data_dir, std::map<std::string, std::string> keys, std::string current_key_id);

    // Reads and decrypts the whole store file from disk (always re-reads: another process may have written).
    // A missing file is an empty store. Errors: "store.corrupt" (unparseable file), "store.wrong_key" (a record
    // whose key id is known but does not decrypt: the key is wrong — never garbage), "store.unknown_key_id".
    Result<std::vector<Connection>> load_all() const;
    Result<std::optional<Connection>> load(const std::string& provider) const;

    // Read-modify-write of one record under the store's file lock ("store"), then an atomic replace of the file.
    // Sets c.version to the stored version + 1. Errors: "store.write_failed" (with errno text), plus load errors.
    Result<Connection> save(Connection c);
    Result<Unit> remove(const std::string& provider);

    // Re-encrypts every record with the current key (keyrelay rotate-key). Returns the number of records.
    Result<size_t> rotate();

    const std::string& path() const { return path_; }
    const std::string& data_dir() const { return data_dir_; }

private:
    std::string data_dir_;
    std::string path_;   // <data_dir>/tokens.json
    std::map<std::string, std::string> keys_;
    std::string current_key_id_;
};

// The key id recorded with each sealed record: the first 8 hex characters of SHA-256(key). (Additive.)
std::string store_key_id(std::string_view key);

// Key loading for `serve`: KEYRELAY_STORE_KEY (hex or base64) -> key id "k1"-style derived from the key's hash;
// without it, <data_dir>/store.key is created with mode 0600 (and `generated` is set so the caller logs loudly).
// KEYRELAY_STORE_KEY_PREVIOUS may hold the old key during a rotation.
struct StoreKeys {
    std::map<std::string, std::string> keys;
    std::string current_key_id;
    bool generated = false;
    std::string key_file;   // set when the key came from / went to a file
};
Result<StoreKeys> load_store_keys(const std::string& data_dir, const std::optional<std::string>& key_text,
                                  const std::optional<std::string>& previous_key_text);

// A writer killed between creating its temp file and the rename leaves <file>.tmp.<pid>[.<random>] behind
// (tokens.json, sessions.json, store.key); nothing ever reads those. Removes the ones whose process no longer runs
// (another relay sharing the data dir may be writing its own right now), and this process's own pid's, since it
// calls this before it writes anything. Returns how many were removed. (Additive.)
size_t remove_stale_temp_files(const std::string& data_dir);

}  // namespace keyrelay::relay
