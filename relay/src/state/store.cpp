// The encrypted token store. File format (<data_dir>/tokens.json):
//   {"format":1,"records":[{"id":"keap","key_id":"1a2b3c4d","version":3,"sealed":"<base64 iv||ct||tag>"}]}
// Each record's plaintext is to_json(Connection), sealed with AES-256-GCM under the key named by key_id, with the
// record id as associated data (so a record cannot be moved to another id). Writes are atomic: a temp file in the
// same directory, fsync, rename(2) over the old file (atomic on POSIX), then fsync of the directory so the rename
// itself survives a crash.
#include "state/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "state/crypto.h"
#include "keyrelay/http.h"

namespace keyrelay::relay {

namespace {

using json = nlohmann::json;

constexpr int kFormat = 1;

std::string errno_text(int err) { return std::strerror(err); }

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// mkdir -p with mode 0700 for every directory it creates. Returns 0 or an errno.
int make_dirs(const std::string& dir) {
    if (dir.empty()) return 0;
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        std::string part = dir.substr(0, pos);
        if (part.empty() || part == "/") continue;
        if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return errno;
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

std::string to_hex(std::string_view bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// Reads a whole file. Returns 0, or an errno (ENOENT when it does not exist).
int read_file(const std::string& path, std::string& out, struct stat* st = nullptr) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    if (st && ::fstat(fd, st) != 0) {
        int err = errno;
        ::close(fd);
        return err;
    }
    out.clear();
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return err;
        }
        if (n == 0) break;
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return 0;
}

int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        data.remove_prefix(size_t(n));
    }
    return 0;
}

int fsync_dir(const std::string& dir) {
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
}

// Writes `data` to a new 0600 file <path>.tmp.<pid>.<random> in the same directory and fsyncs it.
// Returns 0 with tmp_path set, or an errno (the temp file is removed).
int write_temp(const std::string& path, std::string_view data, std::string& tmp_path) {
    tmp_path = path + ".tmp." + std::to_string(::getpid()) + "." + to_hex(random_bytes(6));
    int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    int err = write_all(fd, data);
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    if (err != 0) ::unlink(tmp_path.c_str());
    return err;
}

Error write_failed(const std::string& what, const std::string& path, int err) {
    return make_error("store.write_failed", "Could not " + what + " " + path + ": " + errno_text(err) + ".",
                      "Check that the data directory exists, is owned by the user running keyrelay, and that the "
                      "disk is not full or read-only. The previous store file is unchanged.");
}

Error corrupt(const std::string& path, const std::string& detail) {
    return make_error("store.corrupt", "The token store " + path + " is damaged: " + detail,
                      "keyrelay will not overwrite it. Restore the file from a backup; or move it aside and "
                      "connect the providers again (the tokens in it are lost).");
}

std::string key_ids_text(const std::map<std::string, std::string>& keys) {
    std::string out;
    for (const auto& [id, key] : keys) out += (out.empty() ? "" : ", ") + id;
    return out.empty() ? "none" : out;
}

constexpr const char* kWrongKeyHint =
    "Set KEYRELAY_STORE_KEY to the key this store was written with. During a key rotation, put the old key in "
    "KEYRELAY_STORE_KEY_PREVIOUS and the new one in KEYRELAY_STORE_KEY, then run `keyrelay rotate-key`. Never "
    "guess or generate a new key for an existing store: without the original key the tokens cannot be recovered "
    "(the only other way out is to move tokens.json aside and connect the providers again).";

// Type-checked reads of optional JSON fields; the first problem is kept in `bad`.
struct Fields {
    const json& o;
    std::string bad;

    const json* find(const char* k) {
        auto it = o.find(k);
        return it == o.end() ? nullptr : &*it;
    }
    void fail(const char* k, const char* want) {
        if (bad.empty()) bad = std::string("field \"") + k + "\" is not " + want;
    }
    void str(const char* k, std::string& out) {
        if (const json* v = find(k)) {
            if (v->is_string()) out = v->get_ref<const std::string&>();
            else fail(k, "a string");
        }
    }
    void i64(const char* k, int64_t& out) {
        if (const json* v = find(k)) {
            if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) fail(k, "a 64-bit integer");
            else if (v->is_number_integer()) out = v->get<int64_t>();
            else fail(k, "an integer");
        }
    }
    void u64(const char* k, uint64_t& out) {
        if (const json* v = find(k)) {
            if (v->is_number_unsigned()) out = v->get<uint64_t>();
            else fail(k, "a non-negative integer");
        }
    }
    void boolean(const char* k, bool& out) {
        if (const json* v = find(k)) {
            if (v->is_boolean()) out = v->get<bool>();
            else fail(k, "true or false");
        }
    }
};

// One record of the file, decrypted.
struct Record {
    std::string id;
    std::string key_id;
    std::string sealed;   // raw iv||ct||tag
    Connection conn;
};

std::string seal(const std::string& key, const Connection& c) {
    std::string plaintext = to_json(c);
    std::string sealed = aes256gcm_encrypt(key, plaintext, c.provider);
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return sealed;
}

// Reads, parses and decrypts every record. A missing file is an empty store.
Result<std::vector<Record>> read_records(const std::string& path, const std::map<std::string, std::string>& keys) {
    std::string text;
    if (int err = read_file(path, text); err != 0) {
        if (err == ENOENT) return std::vector<Record>{};
        return make_error("store.read_failed", "Could not read the token store " + path + ": " + errno_text(err) + ".",
                          "Check that the data directory and tokens.json belong to the user running keyrelay "
                          "(mode 0700 for the directory, 0600 for the file).");
    }
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return corrupt(path, "it is not valid JSON.");
    if (!doc.is_object()) return corrupt(path, "it is not a JSON object.");
    auto format = doc.find("format");
    if (format == doc.end() || !format->is_number_integer()) return corrupt(path, "it has no \"format\" number.");
    if (!format->is_number_unsigned() || format->get<uint64_t>() != uint64_t(kFormat)) {
        return make_error("store.unsupported_format",
                          "The token store " + path + " has format " + format->dump() + "; this keyrelay reads " +
                              "format " + std::to_string(kFormat) + ".",
                          "It was written by a different keyrelay version: run that version, or restore a backup "
                          "made by this one. keyrelay will not overwrite it.");
    }
    auto list = doc.find("records");
    if (list == doc.end() || !list->is_array()) return corrupt(path, "it has no \"records\" array.");

    std::vector<Record> records;
    for (const json& r : *list) {
        size_t n = records.size();
        std::string where = "record #" + std::to_string(n + 1);
        if (!r.is_object()) return corrupt(path, where + " is not an object.");
        Fields f{r, {}};
        Record rec;
        std::string sealed_b64;
        uint64_t version = 0;
        f.str("id", rec.id);
        f.str("key_id", rec.key_id);
        f.str("sealed", sealed_b64);
        f.u64("version", version);
        if (!f.bad.empty()) return corrupt(path, where + ": " + f.bad + ".");
        if (rec.id.empty() || rec.key_id.empty() || sealed_b64.empty() || !r.contains("version")) {
            return corrupt(path, where + " lacks one of id, key_id, version, sealed.");
        }
        where = "record \"" + rec.id + "\"";
        for (const Record& other : records) {
            if (other.id == rec.id) return corrupt(path, "the record id \"" + rec.id + "\" appears twice.");
        }
        auto sealed = base64_decode(sealed_b64);
        if (!sealed) return corrupt(path, where + ": \"sealed\" is not base64.");
        rec.sealed = std::move(sealed.value());

        auto key = keys.find(rec.key_id);
        if (key == keys.end()) {
            return make_error("store.unknown_key_id",
                              "The token store " + path + " was written with another key: " + where +
                                  " is sealed with key id " + rec.key_id + ", but the configured key ids are " +
                                  key_ids_text(keys) + ".",
                              kWrongKeyHint);
        }
        auto plain = aes256gcm_decrypt(key->second, rec.sealed, rec.id);
        if (!plain) {
            if (plain.error().code == "store.bad_key_length") return plain.error();
            return make_error("store.wrong_key",
                              "The token store " + path + " was written with another key: " + where +
                                  " does not decrypt with the configured key " + rec.key_id +
                                  " (or the file was modified).",
                              kWrongKeyHint);
        }
        auto conn = connection_from_json(plain.value());
        OPENSSL_cleanse(plain.value().data(), plain.value().size());
        if (!conn) return corrupt(path, where + " decrypts but does not hold a connection: " + conn.error().message);
        if (conn->provider != rec.id) return corrupt(path, where + " holds the connection \"" + conn->provider + "\".");
        if (conn->version != version) {
            return corrupt(path, where + " says version " + std::to_string(version) + " outside and " +
                                     std::to_string(conn->version) + " inside the sealed data.");
        }
        rec.conn = std::move(conn.value());
        records.push_back(std::move(rec));
    }
    return records;
}

Result<Unit> write_records(const std::string& data_dir, const std::string& path, std::vector<Record> records) {
    std::sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.id < b.id; });
    json list = json::array();
    for (const Record& r : records) {
        json o = json::object();
        o["id"] = r.id;
        o["key_id"] = r.key_id;
        o["version"] = r.conn.version;
        o["sealed"] = base64_encode(r.sealed);
        list.push_back(std::move(o));
    }
    json doc = json::object();
    doc["format"] = kFormat;
    doc["records"] = std::move(list);
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

Error bad_store_key(const std::string& what) {
    return make_error("store.bad_key_length", "The store's current key " + what + ".",
                      "KEYRELAY_STORE_KEY must be 32 bytes: 64 hex characters (make one with `openssl rand -hex "
                      "32`) or base64 of 32 bytes");
}

}  // namespace

// ---------------------------------------------------------------- Connection JSON

std::string to_json(const Connection& c) {
    json t = json::object();
    t["access_token"] = c.tokens.access_token;
    t["refresh_token"] = c.tokens.refresh_token;
    t["token_type"] = c.tokens.token_type;
    t["scope"] = c.tokens.scope;
    t["account"] = c.tokens.account;
    t["expires_in"] = c.tokens.expires_in;
    t["obtained_at"] = c.tokens.obtained_at;
    t["expires_at"] = c.tokens.expires_at;
    json j = json::object();
    j["provider"] = c.provider;
    j["tokens"] = std::move(t);
    j["account"] = c.account;
    j["cloud_id"] = c.cloud_id;
    j["connected_at"] = c.connected_at;
    j["refresh_token_issued_at"] = c.refresh_token_issued_at;
    j["last_refresh_at"] = c.last_refresh_at;
    j["last_refresh_result"] = c.last_refresh_result;
    j["needs_reauth"] = c.needs_reauth;
    j["version"] = c.version;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Connection> connection_from_json(std::string_view text) {
    auto bad = [](const std::string& why) {
        return make_error("store.corrupt", "The stored connection is unreadable: " + why + ".",
                          "The record was written by an incompatible keyrelay or altered; connect the provider "
                          "again.");
    };
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("it is not a JSON object");
    Connection c;
    Fields f{j, {}};
    f.str("provider", c.provider);
    f.str("account", c.account);
    f.str("cloud_id", c.cloud_id);
    f.i64("connected_at", c.connected_at);
    f.i64("refresh_token_issued_at", c.refresh_token_issued_at);
    f.i64("last_refresh_at", c.last_refresh_at);
    f.str("last_refresh_result", c.last_refresh_result);
    f.boolean("needs_reauth", c.needs_reauth);
    f.u64("version", c.version);
    if (!f.bad.empty()) return bad(f.bad);
    if (c.provider.empty()) return bad("it has no \"provider\"");
    auto tokens = j.find("tokens");
    if (tokens == j.end() || !tokens->is_object()) return bad("it has no \"tokens\" object");
    Fields t{*tokens, {}};
    t.str("access_token", c.tokens.access_token);
    t.str("refresh_token", c.tokens.refresh_token);
    t.str("token_type", c.tokens.token_type);
    t.str("scope", c.tokens.scope);
    t.str("account", c.tokens.account);
    t.i64("expires_in", c.tokens.expires_in);
    t.i64("obtained_at", c.tokens.obtained_at);
    t.i64("expires_at", c.tokens.expires_at);
    if (!t.bad.empty()) return bad("tokens: " + t.bad);
    return c;
}

// ---------------------------------------------------------------- FileLock

FileLock::FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

FileLock& FileLock::operator=(FileLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

FileLock::~FileLock() {
    if (fd_ >= 0) ::close(fd_);   // closing the last descriptor releases the flock
}

Result<FileLock> FileLock::acquire(const std::string& data_dir, const std::string& name) {
    std::string path = join_path(data_dir, name + ".lock");
    auto failed = [&](int err) {
        return make_error("store.lock_failed", "Could not lock " + path + ": " + errno_text(err) + ".",
                          "Check that the data directory exists and belongs to the user running keyrelay, and that "
                          "it is on a local file system (flock does not work on some network mounts).");
    };
    if (int err = make_dirs(data_dir); err != 0) return failed(err);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return failed(errno);
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return failed(err);
    }
    return FileLock(fd);
}

// ---------------------------------------------------------------- TokenStore

TokenStore::TokenStore(std::string data_dir, std::map<std::string, std::string> keys, std::string current_key_id)
    : data_dir_(std::move(data_dir)),
      path_(join_path(data_dir_, "tokens.json")),
      keys_(std::move(keys)),
      current_key_id_(std::move(current_key_id)) {
    (void)make_dirs(data_dir_);   // failures surface as store.lock_failed / store.write_failed on the first write
}

Result<std::vector<Connection>> TokenStore::load_all() const {
    auto records = read_records(path_, keys_);
    if (!records) return records.error();
    std::vector<Connection> out;
    out.reserve(records->size());
    for (Record& r : records.value()) out.push_back(std::move(r.conn));
    return out;
}

Result<std::optional<Connection>> TokenStore::load(const std::string& provider) const {
    auto all = load_all();
    if (!all) return all.error();
    for (Connection& c : all.value()) {
        if (c.provider == provider) return std::optional<Connection>(std::move(c));
    }
    return std::optional<Connection>();
}

Result<Connection> TokenStore::save(Connection c) {
    if (c.provider.empty()) {
        return make_error("store.bad_id", "A connection without a provider name cannot be stored.",
                          "This is a bug in the caller: set Connection::provider.");
    }
    auto key = keys_.find(current_key_id_);
    if (key == keys_.end()) return bad_store_key("(id " + current_key_id_ + ") is not among the configured keys");
    if (key->second.size() != 32) return bad_store_key("is " + std::to_string(key->second.size()) + " bytes long");

    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keys_);
    if (!records) return records.error();   // never overwrite a store we cannot read
    auto it = std::find_if(records->begin(), records->end(), [&](const Record& r) { return r.id == c.provider; });
    c.version = (it == records->end() ? 0 : it->conn.version) + 1;
    Record rec{c.provider, current_key_id_, seal(key->second, c), c};
    if (it == records->end()) records->push_back(std::move(rec));
    else *it = std::move(rec);
    auto written = write_records(data_dir_, path_, std::move(records.value()));
    if (!written) return written.error();
    return c;
}

Result<Unit> TokenStore::remove(const std::string& provider) {
    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keys_);
    if (!records) return records.error();
    auto it = std::find_if(records->begin(), records->end(), [&](const Record& r) { return r.id == provider; });
    if (it == records->end()) return Unit{};
    records->erase(it);
    return write_records(data_dir_, path_, std::move(records.value()));
}

Result<size_t> TokenStore::rotate() {
    auto key = keys_.find(current_key_id_);
    if (key == keys_.end()) return bad_store_key("(id " + current_key_id_ + ") is not among the configured keys");
    if (key->second.size() != 32) return bad_store_key("is " + std::to_string(key->second.size()) + " bytes long");
    auto lock = FileLock::acquire(data_dir_, "store");
    if (!lock) return lock.error();
    auto records = read_records(path_, keys_);
    if (!records) return records.error();
    for (Record& r : records.value()) {
        r.key_id = current_key_id_;
        r.sealed = seal(key->second, r.conn);
    }
    size_t n = records->size();
    auto written = write_records(data_dir_, path_, std::move(records.value()));
    if (!written) return written.error();
    return n;
}

// ---------------------------------------------------------------- keys

std::string store_key_id(std::string_view key) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr) != 1 || len < 4) std::abort();
    return to_hex(std::string_view(reinterpret_cast<const char*>(md), 4));
}

namespace {

Result<std::string> read_key_file(const std::string& path) {
    std::string text;
    struct stat st {};
    if (int err = read_file(path, text, &st); err != 0) {
        return make_error("store.key_file_unreadable", "Could not read the store key file " + path + ": " +
                                                           errno_text(err) + ".",
                          "Make the file readable by the user running keyrelay (chmod 600, owned by that user), or "
                          "set KEYRELAY_STORE_KEY instead.");
    }
    if (!S_ISREG(st.st_mode)) {
        return make_error("store.key_file_unreadable", "The store key file " + path + " is not a regular file.",
                          "Replace it with a file holding 64 hex characters, mode 0600, or set KEYRELAY_STORE_KEY.");
    }
    if ((st.st_mode & 077) != 0) {
        OPENSSL_cleanse(text.data(), text.size());
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
        return make_error("store.key_file_permissions",
                          "The store key file " + path + " is readable by group or others (mode " + mode + ").",
                          "This key decrypts every stored token: run `chmod 600 " + path +
                              "` (and consider rotating the key if others could read it), then start again.");
    }
    auto key = parse_store_key(text);
    OPENSSL_cleanse(text.data(), text.size());
    if (!key) {
        return make_error("store.bad_key_length", "The store key file " + path + " does not hold a valid key: " +
                                                      key.error().message,
                          "store.key must hold 64 hex characters. If it was damaged, restore it from a backup: the "
                          "stored tokens cannot be decrypted without it. Do not replace it with a new key while "
                          "tokens.json exists.");
    }
    return key;
}

// Creates <data_dir>/store.key with a fresh key, atomically: the key is written to a temp file and link(2)ed into
// place, so two processes starting together end up with one key (the loser reads the winner's file).
Result<std::string> generate_key_file(const std::string& data_dir, const std::string& path) {
    if (int err = make_dirs(data_dir); err != 0) return write_failed("create the data directory", data_dir, err);
    std::string key = random_bytes(32);
    std::string text = to_hex(key) + "\n";
    std::string tmp;
    int err = write_temp(path, text, tmp);
    OPENSSL_cleanse(text.data(), text.size());
    if (err != 0) return write_failed("write a temporary file next to", path, err);
    int linked = ::link(tmp.c_str(), path.c_str()) == 0 ? 0 : errno;
    ::unlink(tmp.c_str());
    if (linked == EEXIST) {
        OPENSSL_cleanse(key.data(), key.size());
        return read_key_file(path);
    }
    if (linked != 0) return write_failed("create", path, linked);
    if (int e = fsync_dir(data_dir); e != 0) return write_failed("fsync the directory", data_dir, e);
    return key;
}

}  // namespace

size_t remove_stale_temp_files(const std::string& data_dir) {
    DIR* dir = ::opendir(data_dir.empty() ? "." : data_dir.c_str());
    if (dir == nullptr) return 0;
    size_t removed = 0;
    while (const dirent* entry = ::readdir(dir)) {
        std::string name = entry->d_name;
        for (const char* base : {"tokens.json.tmp.", "sessions.json.tmp.", "store.key.tmp."}) {
            if (name.rfind(base, 0) != 0) continue;
            std::string pid_text = name.substr(std::strlen(base));
            pid_text = pid_text.substr(0, pid_text.find('.'));
            bool digits = !pid_text.empty() && pid_text.size() <= 9 &&
                          std::all_of(pid_text.begin(), pid_text.end(), [](char c) { return c >= '0' && c <= '9'; });
            if (!digits) break;
            pid_t pid = static_cast<pid_t>(std::strtol(pid_text.c_str(), nullptr, 10));
            bool running = pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
            if (!running && ::unlinkat(::dirfd(dir), name.c_str(), 0) == 0) ++removed;
            break;
        }
    }
    ::closedir(dir);
    return removed;
}

Result<StoreKeys> load_store_keys(const std::string& data_dir, const std::optional<std::string>& key_text,
                                  const std::optional<std::string>& previous_key_text) {
    StoreKeys out;
    std::string key;
    if (key_text) {
        auto parsed = parse_store_key(*key_text);
        if (!parsed) {
            Error e = parsed.error();
            e.message = "KEYRELAY_STORE_KEY: " + e.message;
            return e;
        }
        key = std::move(parsed.value());
    } else {
        out.key_file = join_path(data_dir, "store.key");
        struct stat st {};
        if (::lstat(out.key_file.c_str(), &st) == 0) {
            auto loaded = read_key_file(out.key_file);
            if (!loaded) return loaded.error();
            key = std::move(loaded.value());
        } else if (errno == ENOENT) {
            auto made = generate_key_file(data_dir, out.key_file);
            if (!made) return made.error();
            key = std::move(made.value());
            out.generated = true;
        } else {
            int err = errno;
            return make_error("store.key_file_unreadable",
                              "Could not look at the store key file " + out.key_file + ": " + errno_text(err) + ".",
                              "Check the data directory's owner and permissions (0700, the user running keyrelay), "
                              "or set KEYRELAY_STORE_KEY.");
        }
    }
    out.current_key_id = store_key_id(key);
    out.keys[out.current_key_id] = std::move(key);
    if (previous_key_text) {
        auto previous = parse_store_key(*previous_key_text);
        if (!previous) {
            return make_error("store.bad_key_length", "KEYRELAY_STORE_KEY_PREVIOUS: " + previous.error().message,
                              "KEYRELAY_STORE_KEY_PREVIOUS must be the old store key exactly as it was set before "
                              "(64 hex characters or base64 of 32 bytes); unset it when no rotation is in progress.");
        }
        std::string id = store_key_id(previous.value());
        out.keys.emplace(id, std::move(previous.value()));
    }
    return out;
}

}  // namespace keyrelay::relay
