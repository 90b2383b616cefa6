// The file store: every connection in one file, <data_dir>/tokens.json, each record sealed
// (state/sealed_record.h). Writes are atomic (temp file, fsync, rename, fsync of the directory): a crash leaves the
// old store or the new one, never half of one. Every process using the data dir shares its flock locks.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/result.h"
#include "state/connection_store.h"
#include "state/sealed_record.h"

namespace keyrelay::relay {

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
    // Blocks until the lock is held; `waited` (when given) tells whether another holder had it first.
    // Errors: "store.lock_failed".
    static Result<FileLock> acquire(const std::string& data_dir, const std::string& name, bool* waited = nullptr);

private:
    explicit FileLock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

class FileConnectionStore : public ConnectionStore {
public:
    // keys: key id -> 32-byte key; current_key_id: the one new records are sealed with.
    // Creates data_dir (0700) if missing. Does not read the file yet.
    FileConnectionStore(std::string data_dir, std::map<std::string, std::string> keys, std::string current_key_id);

    std::string backend() const override { return "file"; }
    // Always re-reads the file (another process may have written). A missing file is an empty store.
    // Errors also: "store.unsupported_format".
    Result<std::vector<Connection>> load_all() const override;
    Result<std::optional<Connection>> load(const std::string& provider) const override;
    // The file's inode, size and mtime (the same for every provider).
    Result<std::string> stamp(const std::string& provider) const override;
    // Read-modify-write under the store's file lock ("store"), then an atomic replace of the file.
    Result<Connection> save(Connection c) override;
    Result<Connection> replace(Connection c) override;
    Result<Unit> put(const Connection& c) override;
    Result<Unit> remove(const std::string& provider) override;
    Result<size_t> rotate() override;
    // The flock <data_dir>/refresh-<provider>.lock.
    Result<std::unique_ptr<RefreshLock>> lock_refresh(const std::string& provider) override;

    const std::string& path() const { return path_; }

private:
    enum class Write { compare_and_set, replace, exact };
    Result<Connection> write(Connection c, Write how);

    std::string data_dir_;
    std::string path_;   // <data_dir>/tokens.json
    StoreKeyring keyring_;
    RecordPlace place_;
};

}  // namespace keyrelay::relay
