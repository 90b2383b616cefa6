// The file store. File format (<data_dir>/tokens.json):
//   {"format":1,"records":[{"id":"keap","key_id":"1a2b3c4d","version":3,"sealed":"<base64 iv||ct||tag>"}]}
// Writes are atomic: a temp file in the same directory, fsync, rename(2) over the old file (atomic on POSIX), then
// fsync of the directory so the rename itself survives a crash.
#include "state/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <utility>

#include "state/files.h"

namespace keyrelay::relay {

namespace {

using json = nlohmann::json;
using namespace files;

constexpr int kFormat = 1;

Error write_failed(const std::string& what, const std::string& path, int err) {
    return make_error("store.write_failed", "Could not " + what + " " + path + ": " + errno_text(err) + ".",
                      "Check that the data directory exists, is owned by the user running keyrelay, and that the "
                      "disk is not full or read-only. The previous store file is unchanged.");
}

// One record of the file, decrypted.
struct Record {
    SealedRecord sealed;
    Connection conn;
};

// Reads, parses and decrypts every record. A missing file is an empty store.
Result<std::vector<Record>> read_records(const std::string& path, const StoreKeyring& keyring,
                                         const RecordPlace& place) {
    std::string text;
    if (int err = read_file(path, text); err != 0) {
        if (err == ENOENT) return std::vector<Record>{};
        return make_error("store.read_failed", "Could not read the token store " + path + ": " + errno_text(err) + ".",
                          "Check that the data directory and tokens.json belong to the user running keyrelay "
                          "(mode 0700 for the directory, 0600 for the file).");
    }
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return store_corrupt(place, "it is not valid JSON.");
    if (!doc.is_object()) return store_corrupt(place, "it is not a JSON object.");
    auto format = doc.find("format");
    if (format == doc.end() || !format->is_number_integer()) return store_corrupt(place, "it has no \"format\" number.");
    if (!format->is_number_unsigned() || format->get<uint64_t>() != uint64_t(kFormat)) {
        return make_error("store.unsupported_format",
                          "The token store " + path + " has format " + format->dump() + "; this keyrelay reads " +
                              "format " + std::to_string(kFormat) + ".",
                          "It was written by a different keyrelay version: run that version, or restore a backup "
                          "made by this one. keyrelay will not overwrite it.");
    }
    auto list = doc.find("records");
    if (list == doc.end() || !list->is_array()) return store_corrupt(place, "it has no \"records\" array.");

    std::vector<Record> records;
    for (const json& r : *list) {
        auto sealed = record_from_json(r, place, "record #" + std::to_string(records.size() + 1));
        if (!sealed) return sealed.error();
        if (std::any_of(records.begin(), records.end(), [&](const Record& o) { return o.sealed.id == sealed->id; })) {
            return store_corrupt(place, "the record id \"" + sealed->id + "\" appears twice.");
        }
        auto conn = open_record(keyring, *sealed, place);
        if (!conn) return conn.error();
        records.push_back({std::move(sealed.value()), std::move(conn.value())});
    }
    return records;
}

Result<Unit> write_records(const std::string& data_dir, const std::string& path, std::vector<Record> records) {
    std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.sealed.id < b.sealed.id; });
    json list = json::array();
    for (const Record& r : records) list.push_back(record_to_json(r.sealed));
    json doc = {{"format", kFormat}, {"records", std::move(list)}};
    std::string text = doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";

    if (int err = make_dirs(data_dir); err != 0) return write_failed("create the data directory", data_dir, err);
    std::string tmp;
    if (int err = write_temp(path, text, tmp); err != 0) return write_failed("write a temporary file next to", path, err);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return write_failed("rename the temporary file over", path, err);
    }
    if (int err = fsync_dir(data_dir); err != 0) {
        return make_error("store.write_failed",
                          "The token store " + path + " was replaced, but syncing its directory failed: " +
                              errno_text(err) + ".",
                          "The new content is in place but may not survive a power loss. Check the disk and the "
                          "file system of the data directory (some network or FUSE mounts do not support fsync).");
    }
    return Unit{};
}

class FileRefreshLock : public RefreshLock {
public:
    FileRefreshLock(FileLock lock, bool waited) : lock_(std::move(lock)), waited_(waited) {}
    bool waited() const override { return waited_; }

private:
    FileLock lock_;
    bool waited_;
};

}  // namespace

// ---------------------------------------------------------------- FileLock

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

FileLock::~FileLock() {
    if (fd_ >= 0) ::close(fd_);   // closing the last descriptor releases the flock
}

Result<FileLock> FileLock::acquire(const std::string& data_dir, const std::string& name, bool* waited) {
    std::string path = join_path(data_dir, name + ".lock");
    auto failed = [&](int err) {
        return make_error("store.lock_failed", "Could not lock " + path + ": " + errno_text(err) + ".",
                          "Check that the data directory exists and belongs to the user running keyrelay, and that "
                          "it is on a local file system (flock does not work on some network mounts).");
    };
    if (waited != nullptr) *waited = false;
    if (int err = make_dirs(data_dir); err != 0) return failed(err);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return failed(errno);
    int mode = LOCK_EX | (waited != nullptr ? LOCK_NB : 0);
    while (::flock(fd, mode) != 0) {
        if (errno == EINTR) continue;
        if (errno == EWOULDBLOCK && (mode & LOCK_NB) != 0) {
            *waited = true;
            mode = LOCK_EX;
            continue;
        }
        int err = errno;
        ::close(fd);
        return failed(err);
    }
    return FileLock(fd);
}

// ---------------------------------------------------------------- FileConnectionStore

FileConnectionStore::FileConnectionStore(std::string data_dir, std::map<std::string, std::string> keys,
                                         std::string current_key_id)
    : data_dir_(std::move(data_dir)),
      path_(join_path(data_dir_, "tokens.json")),
      keyring_{std::move(keys), std::move(current_key_id)},
      place_{"The token store " + path_, "move tokens.json aside and connect the providers again"} {
    (void)make_dirs(data_dir_);   // failures surface as store.lock_failed / store.write_failed on the first write
}

Result<std::vector<Connection>> FileConnectionStore::load_all() const {
    auto records = read_records(path_, keyring_, place_);
    if (!records) return records.error();
    std::vector<Connection> out;
    out.reserve(records->size());
    for (Record& r : records.value()) out.push_back(std::move(r.conn));
    return out;
}

Result<std::optional<Connection>> FileConnectionStore::load(const std::string& provider) const {
    auto all = load_all();
    if (!all) return all.error();
    for (Connection& c : all.value()) {
        if (c.provider == provider) return std::optional<Connection>(std::move(c));
    }
    return std::optional<Connection>();
}

Result<std::string> FileConnectionStore::stamp(const std::string&) const { return files::stamp_of(path_); }

Result<Connection> FileConnectionStore::write(Connection c, Write how) {
    // A bad key or id fails before the lock and before anything is read or written.
    if (c.provider.empty()) return seal_record(keyring_, c).error();   // store.bad_id
    if (auto usable = check_current_key(keyring_); !usable) return usable.error();
    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keyring_, place_);
    if (!records) return records.error();   // never overwrite a store we cannot read
    auto it = std::find_if(records->begin(), records->end(), [&](const Record& r) { return r.sealed.id == c.provider; });
    uint64_t stored = it == records->end() ? 0 : it->conn.version;
    if (how == Write::compare_and_set && stored != c.version) return store_conflict(c.provider, c.version, stored);
    if (how != Write::exact) c.version = stored + 1;
    auto sealed = seal_record(keyring_, c);
    if (!sealed) return sealed.error();
    Record rec{std::move(sealed.value()), c};
    if (it == records->end()) records->push_back(std::move(rec));
    else *it = std::move(rec);
    auto written = write_records(data_dir_, path_, std::move(records.value()));
    if (!written) return written.error();
    return c;
}

Result<Connection> FileConnectionStore::save(Connection c) { return write(std::move(c), Write::compare_and_set); }

Result<Connection> FileConnectionStore::replace(Connection c) { return write(std::move(c), Write::replace); }

Result<Unit> FileConnectionStore::put(const Connection& c) {
    auto written = write(c, Write::exact);
    if (!written) return written.error();
    return Unit{};
}

Result<Unit> FileConnectionStore::remove(const std::string& provider) {
    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keyring_, place_);
    if (!records) return records.error();
    auto it = std::find_if(records->begin(), records->end(), [&](const Record& r) { return r.sealed.id == provider; });
    if (it == records->end()) return Unit{};
    records->erase(it);
    return write_records(data_dir_, path_, std::move(records.value()));
}

Result<size_t> FileConnectionStore::rotate() {
    if (auto usable = check_current_key(keyring_); !usable) return usable.error();
    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keyring_, place_);
    if (!records) return records.error();
    for (Record& r : records.value()) {
        auto sealed = seal_record(keyring_, r.conn);
        if (!sealed) return sealed.error();
        r.sealed = std::move(sealed.value());
    }
    size_t n = records->size();
    auto written = write_records(data_dir_, path_, std::move(records.value()));
    if (!written) return written.error();
    return n;
}

Result<std::unique_ptr<RefreshLock>> FileConnectionStore::lock_refresh(const std::string& provider) {
    bool waited = false;
    auto lock = FileLock::acquire(data_dir_, "refresh-" + provider, &waited);
    if (!lock) return lock.error();
    return std::unique_ptr<RefreshLock>(std::make_unique<FileRefreshLock>(std::move(lock.value()), waited));
}

}  // namespace keyrelay::relay
