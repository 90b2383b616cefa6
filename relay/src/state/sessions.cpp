#include "state/sessions.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "state/crypto.h"
#include "keyrelay/sha256.h"
#include "obs/log.h"
#include "state/store.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

std::string stamp_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "missing";
    return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
           "." + std::to_string(st.st_mtim.tv_nsec);
}

int64_t int_member(const json& j, const char* name) {
    if (!j.contains(name) || !j[name].is_number_integer()) return 0;
    return j[name].get<int64_t>();
}

}  // namespace

std::string sha256_hex(const std::string& data) {
    static const char* kHex = "0123456789abcdef";
    std::string digest = sha256(data);
    std::string out;
    for (unsigned char c : digest) {
        out += kHex[c >> 4];
        out += kHex[c & 0x0F];
    }
    return out;
}

// ---------------------------------------------------------------------------------------------------------------
// SessionStore

SessionStore::SessionStore(int64_t lifetime_seconds, std::string data_dir)
    : lifetime_(lifetime_seconds), data_dir_(std::move(data_dir)) {
    if (!data_dir_.empty()) path_ = data_dir_ + "/sessions.json";
}

void SessionStore::load_locked() {
    if (path_.empty()) return;
    std::string stamp = stamp_of(path_);
    if (stamp == file_stamp_) return;
    file_stamp_ = stamp;
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
        sessions_.clear();
        return;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    json doc = json::parse(ss.str(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("sessions") || !doc["sessions"].is_object()) {
        log_line(LogLevel::warn, "sessions file unreadable; starting with no sessions", {{"path", path_}});
        sessions_.clear();
        return;
    }
    std::map<std::string, Session> loaded;
    for (auto it = doc["sessions"].begin(); it != doc["sessions"].end(); ++it) {
        const json& v = it.value();
        if (!v.is_object() || !v.contains("user") || !v["user"].is_string()) continue;
        Session s;
        s.user = v["user"].get<std::string>();
        s.created_at = int_member(v, "created_at");
        s.expires_at = int_member(v, "expires_at");
        loaded[it.key()] = s;
    }
    sessions_ = std::move(loaded);
}

void SessionStore::save_locked(int64_t now) {
    if (path_.empty()) return;
    json doc = json::object();
    doc["sessions"] = json::object();
    for (const auto& [hash, s] : sessions_) {
        if (s.expires_at <= now) continue;
        doc["sessions"][hash] = {{"user", s.user}, {"created_at", s.created_at}, {"expires_at", s.expires_at}};
    }
    std::string text = doc.dump();
    std::string tmp = path_ + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_line(LogLevel::warn, "cannot write the sessions file; sessions stay in memory", {{"path", path_}});
        return;
    }
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::fsync(fd) == 0 && ok;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
        ::unlink(tmp.c_str());
        log_line(LogLevel::warn, "cannot write the sessions file; sessions stay in memory", {{"path", path_}});
        return;
    }
    file_stamp_ = stamp_of(path_);
}

std::string SessionStore::create(const std::string& user, int64_t now) {
    std::string id = random_token(32);
    Session s{user, now, now + lifetime_};
    std::lock_guard<std::mutex> lock(mutex_);
    if (path_.empty()) {
        sessions_[sha256_hex(id)] = s;
        return id;
    }
    // Read-modify-write under the data dir's lock: another relay process may have added sessions.
    auto file_lock = FileLock::acquire(data_dir_, "sessions");
    file_stamp_.clear();
    load_locked();
    sessions_[sha256_hex(id)] = s;
    save_locked(now);
    return id;
}

std::optional<Session> SessionStore::find(const std::string& id, int64_t now) {
    if (id.empty()) return std::nullopt;
    return find_by_hash(sha256_hex(id), now);
}

std::optional<Session> SessionStore::find_by_hash(const std::string& hash, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Another relay process may have created or ended sessions: re-read the file when it changed (one stat).
    load_locked();
    auto it = sessions_.find(hash);
    if (it == sessions_.end()) return std::nullopt;
    if (it->second.expires_at <= now) return std::nullopt;
    return it->second;
}

void SessionStore::remove(const std::string& id) {
    if (id.empty()) return;
    std::string hash = sha256_hex(id);
    std::lock_guard<std::mutex> lock(mutex_);
    if (path_.empty()) {
        sessions_.erase(hash);
        return;
    }
    auto file_lock = FileLock::acquire(data_dir_, "sessions");
    file_stamp_.clear();
    load_locked();
    sessions_.erase(hash);
    save_locked(0);
}

size_t SessionStore::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
}

// ---------------------------------------------------------------------------------------------------------------
// LoginThrottle

LoginThrottle::LoginThrottle(int max_failures, int64_t window_seconds)
    : max_failures_(max_failures), window_(window_seconds) {}

void LoginThrottle::prune_locked(std::deque<int64_t>& failures, int64_t now) const {
    while (!failures.empty() && failures.front() + window_ <= now) failures.pop_front();
}

int64_t LoginThrottle::retry_after(const std::string& address, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = failures_.find(address);
    if (it == failures_.end()) return 0;
    prune_locked(it->second, now);
    if (static_cast<int>(it->second.size()) < max_failures_) return 0;
    // Allowed again when the oldest failure in the window leaves it.
    int64_t wait = it->second.front() + window_ - now;
    return wait > 0 ? wait : 1;
}

void LoginThrottle::record_failure(const std::string& address, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Bound the memory an attacker with many addresses can use: drop addresses whose failures are all old.
    if (failures_.size() > 10000) {
        for (auto it = failures_.begin(); it != failures_.end();) {
            prune_locked(it->second, now);
            it = it->second.empty() ? failures_.erase(it) : std::next(it);
        }
    }
    auto& list = failures_[address];
    prune_locked(list, now);
    list.push_back(now);
    while (static_cast<int>(list.size()) > max_failures_) list.pop_front();
}

void LoginThrottle::record_success(const std::string& address) {
    std::lock_guard<std::mutex> lock(mutex_);
    failures_.erase(address);
}

// ---------------------------------------------------------------------------------------------------------------
// StateStore

void StateStore::put(const std::string& state, PendingAuthorization pending, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.size() >= max_pending_) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            it = it->second.expires_at <= now ? pending_.erase(it) : std::next(it);
        }
        // Still full of live entries (someone is hammering /connect): drop an arbitrary one rather than grow.
        if (pending_.size() >= max_pending_) pending_.erase(pending_.begin());
    }
    pending_[state] = std::move(pending);
}

std::optional<PendingAuthorization> StateStore::take(const std::string& state, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pending_.find(state);
    if (it == pending_.end()) return std::nullopt;
    PendingAuthorization p = std::move(it->second);
    pending_.erase(it);
    if (p.expires_at <= now) return std::nullopt;
    return p;
}

size_t StateStore::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.size();
}

}  // namespace keyrelay::relay
