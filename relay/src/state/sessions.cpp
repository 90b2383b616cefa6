#include "state/sessions.h"

#include <nlohmann/json.hpp>

#include "state/redis.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

int64_t int_member(const json& j, const char* name) {
    if (!j.contains(name) || !j[name].is_number_integer()) return 0;
    return j[name].get<int64_t>();
}

json to_json(const Session& s) {
    return {{"user", s.user}, {"created_at", s.created_at}, {"expires_at", s.expires_at}};
}

std::optional<Session> session_from_json(const json& v) {
    if (!v.is_object() || !v.contains("user") || !v["user"].is_string()) return std::nullopt;
    return Session{v["user"].get<std::string>(), int_member(v, "created_at"), int_member(v, "expires_at")};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// SessionStore

Result<std::string> SessionStore::create(const std::string& user, int64_t now) {
    std::string id = random_token(32);
    if (auto ok = put(sha256_hex(id), Session{user, now, now + lifetime_}, now); !ok) return ok.error();
    return id;
}

Result<std::optional<Session>> SessionStore::find(const std::string& id, int64_t now) {
    if (id.empty()) return std::optional<Session>();
    return find_by_hash(sha256_hex(id), now);
}

Result<Unit> SessionStore::remove(const std::string& id) {
    if (id.empty()) return Unit{};
    return erase(sha256_hex(id));
}

std::unique_ptr<SessionStore> make_session_store(int64_t lifetime_seconds, const std::string& data_dir,
                                                 Redis* redis) {
    if (redis != nullptr) return std::make_unique<RedisSessionStore>(*redis, lifetime_seconds);
    return std::make_unique<FileSessionStore>(lifetime_seconds, data_dir);
}

// ---------------------------------------------------------------------------------------------------------------
// FileSessionStore

FileSessionStore::FileSessionStore(int64_t lifetime_seconds, const std::string& data_dir)
    : SessionStore(lifetime_seconds), file_(data_dir, "sessions", "sessions") {}

void FileSessionStore::load_locked() {
    auto doc = file_.load_if_changed();
    if (!doc) return;
    std::map<std::string, Session> loaded;
    if (doc->contains("sessions") && (*doc)["sessions"].is_object()) {
        for (auto it = (*doc)["sessions"].begin(); it != (*doc)["sessions"].end(); ++it) {
            if (auto s = session_from_json(it.value())) loaded[it.key()] = *s;
        }
    }
    sessions_ = std::move(loaded);
}

Result<Unit> FileSessionStore::update(int64_t now, const std::function<void()>& change) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!file_.enabled()) {
        change();
        return Unit{};
    }
    // Read-modify-write under the data dir's lock: another relay process may have added sessions.
    auto file_lock = file_.lock();
    load_locked();
    change();
    json doc = {{"sessions", json::object()}};
    for (const auto& [hash, s] : sessions_) {
        if (s.expires_at > now) doc["sessions"][hash] = to_json(s);
    }
    file_.save(doc);
    return Unit{};
}

Result<Unit> FileSessionStore::put(const std::string& hash, const Session& session, int64_t now) {
    return update(now, [&] { sessions_[hash] = session; });
}

Result<std::optional<Session>> FileSessionStore::find_by_hash(const std::string& hash, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    // Another relay process may have created or ended sessions: re-read the file when it changed (one stat).
    load_locked();
    auto it = sessions_.find(hash);
    if (it == sessions_.end() || it->second.expires_at <= now) return std::optional<Session>();
    return std::optional<Session>(it->second);
}

Result<Unit> FileSessionStore::erase(const std::string& hash) {
    return update(0, [&] { sessions_.erase(hash); });
}

size_t FileSessionStore::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
}

// ---------------------------------------------------------------------------------------------------------------
// RedisSessionStore

std::string redis_session_key(const std::string& hash) { return std::string(kRedisKeyPrefix) + "session:" + hash; }

RedisSessionStore::RedisSessionStore(Redis& redis, int64_t lifetime_seconds)
    : SessionStore(lifetime_seconds), redis_(redis) {}

Result<Unit> RedisSessionStore::put(const std::string& hash, const Session& session, int64_t) {
    // SET ... PXAT (Redis 6.2+): Redis itself forgets the session when it ends.
    auto r = redis_.command({"SET", redis_session_key(hash), to_json(session).dump(), "PXAT",
                             std::to_string(session.expires_at * 1000)});
    if (!r) return r.error();
    return Unit{};
}

Result<std::optional<Session>> RedisSessionStore::find_by_hash(const std::string& hash, int64_t now) {
    auto r = redis_.command({"GET", redis_session_key(hash)});
    if (!r) return r.error();
    if (r->nil) return std::optional<Session>();
    auto s = session_from_json(json::parse(r->str, nullptr, false));
    // The TTL ends it in Redis; the check also holds when this relay's clock runs ahead of Redis's.
    if (!s || s->expires_at <= now) return std::optional<Session>();
    return s;
}

Result<Unit> RedisSessionStore::erase(const std::string& hash) {
    auto r = redis_.command({"DEL", redis_session_key(hash)});
    if (!r) return r.error();
    return Unit{};
}

}  // namespace keyrelay::relay
