#include "state/oauth_states.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "keyrelay/http.h"
#include "state/crypto.h"
#include "state/redis.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

// KEYS: the state's key, the session's pending set. ARGV: the sealed record, its expiry (ms), now (ms), the bound,
// the state key prefix, the state's hash. Drops the session's expired entries, then its oldest ones beyond the
// bound (with their records), then stores the new state.
constexpr const char* kPutScript = R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4]) + 1
if extra > 0 then
  for _, hash in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('DEL', ARGV[5] .. hash)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1
)lua";

std::string state_prefix() { return std::string(kRedisKeyPrefix) + "oauth-state:"; }

std::string pending_set_key(const std::string& session_hash) {
    return std::string(kRedisKeyPrefix) + "oauth-pending:" + session_hash;
}

Error wrong_key(const std::string& why) {
    return make_error("store.wrong_key", "An OAuth state in Redis cannot be opened with this relay's store key: " + why +
                                             ".",
                      "Every relay sharing one Redis needs the same KEYRELAY_STORE_KEY (and the same "
                      "KEYRELAY_STORE_KEY_PREVIOUS during a rotation). Fix it, then press Connect again.");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// MemoryStateStore

Result<Unit> MemoryStateStore::put(const std::string& state, const PendingAuthorization& pending, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pending_.size() >= max_pending_) {
        for (auto it = pending_.begin(); it != pending_.end();) {
            it = it->second.expires_at <= now ? pending_.erase(it) : std::next(it);
        }
        // Still full of live entries (someone is hammering /connect): drop an arbitrary one rather than grow.
        if (pending_.size() >= max_pending_) pending_.erase(pending_.begin());
    }
    pending_[state] = pending;
    return Unit{};
}

Result<std::optional<PendingAuthorization>> MemoryStateStore::take(const std::string& state, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto taken = pending_.extract(state);
    if (taken.empty() || taken.mapped().expires_at <= now) return std::optional<PendingAuthorization>();
    return std::optional<PendingAuthorization>(std::move(taken.mapped()));
}

size_t MemoryStateStore::size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending_.size();
}

// ---------------------------------------------------------------------------------------------------------------
// RedisStateStore

std::string redis_state_key(const std::string& state) { return state_prefix() + sha256_hex(state); }

RedisStateStore::RedisStateStore(Redis& redis, std::map<std::string, std::string> keys, std::string current_key_id,
                                 size_t max_per_session)
    : redis_(redis), keys_(std::move(keys)), current_key_id_(std::move(current_key_id)),
      max_per_session_(std::max<size_t>(max_per_session, 1)) {}

Result<Unit> RedisStateStore::put(const std::string& state, const PendingAuthorization& pending, int64_t now) {
    const std::string key = redis_state_key(state);
    auto k = keys_.find(current_key_id_);
    if (k == keys_.end()) return wrong_key("the current key id " + current_key_id_ + " has no key");
    json record = {{"provider", pending.provider},
                   {"pkce_verifier", pending.pkce_verifier},
                   {"session_hash", pending.session_hash},
                   {"expires_at", pending.expires_at}};
    // The key name as associated data: a sealed record cannot be replayed under another state.
    std::string sealed = current_key_id_ + ":" + base64_encode(aes256gcm_encrypt(k->second, record.dump(), key));
    auto r = redis_.eval(kPutScript, {key, pending_set_key(pending.session_hash)},
                         {sealed, std::to_string(pending.expires_at * 1000), std::to_string(now * 1000),
                          std::to_string(max_per_session_), state_prefix(), key.substr(state_prefix().size())});
    if (!r) return r.error();
    return Unit{};
}

Result<std::optional<PendingAuthorization>> RedisStateStore::take(const std::string& state, int64_t now) {
    const std::string key = redis_state_key(state);
    // GETDEL (Redis 6.2+): one atomic read-and-remove, so two relays cannot both consume the state.
    auto r = redis_.command({"GETDEL", key});
    if (!r) return r.error();
    if (r->nil) return std::optional<PendingAuthorization>();
    auto colon = r->str.find(':');
    if (colon == std::string::npos) return wrong_key("the record is not <key id>:<sealed>");
    auto k = keys_.find(r->str.substr(0, colon));
    if (k == keys_.end()) return wrong_key("it was sealed with key id " + r->str.substr(0, colon));
    auto sealed = base64_decode(std::string_view(r->str).substr(colon + 1));
    if (!sealed) return wrong_key("the sealed record is not base64");
    auto plain = aes256gcm_decrypt(k->second, *sealed, key);
    if (!plain) return wrong_key("it does not decrypt");
    json doc = json::parse(*plain, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return wrong_key("the record inside is not JSON");
    PendingAuthorization p;
    p.provider = doc.value("provider", "");
    p.pkce_verifier = doc.value("pkce_verifier", "");
    p.session_hash = doc.value("session_hash", "");
    p.expires_at = doc.value("expires_at", int64_t{0});
    if (p.expires_at <= now) return std::optional<PendingAuthorization>();
    return std::optional<PendingAuthorization>(std::move(p));
}

}  // namespace keyrelay::relay
