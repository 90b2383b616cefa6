#include "state/login_throttle.h"

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "keyrelay/http.h"
#include "state/crypto.h"
#include "state/redis.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

// Removes the failures of one username (its hash is between colons in the member) from an address's set.
constexpr const char* kClearUserScript = R"lua(
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.find(member, ARGV[1], 1, true) then
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
  end
end
return removed
)lua";

std::string failures_key(const std::string& address) {
    return std::string(kRedisKeyPrefix) + "login-failures:" + sha256_hex(address);
}

}  // namespace

std::unique_ptr<LoginThrottle> make_login_throttle(int max_failures, int64_t window_seconds,
                                                   const std::string& data_dir, Redis* redis) {
    if (redis != nullptr) return std::make_unique<RedisLoginThrottle>(*redis, max_failures, window_seconds);
    return std::make_unique<FileLoginThrottle>(max_failures, window_seconds, data_dir);
}

// ---------------------------------------------------------------------------------------------------------------
// FileLoginThrottle

FileLoginThrottle::FileLoginThrottle(int max_failures, int64_t window_seconds, const std::string& data_dir)
    : LoginThrottle(max_failures, window_seconds), file_(data_dir, "login_failures", "login failures") {}

void FileLoginThrottle::prune_locked(std::deque<Failure>& failures, int64_t now) const {
    while (!failures.empty() && failures.front().at + window_ <= now) failures.pop_front();
}

// {"failures": {"<address>": [[<unix time>, "<sha256 of the username>"], ...]}}
void FileLoginThrottle::load_locked() {
    auto doc = file_.load_if_changed();
    if (!doc) return;
    std::map<std::string, std::deque<Failure>> loaded;
    if (doc->contains("failures") && (*doc)["failures"].is_object()) {
        for (auto it = (*doc)["failures"].begin(); it != (*doc)["failures"].end(); ++it) {
            if (!it.value().is_array()) continue;
            auto& list = loaded[it.key()];
            for (const json& f : it.value()) {
                if (f.is_array() && f.size() == 2 && f[0].is_number_integer() && f[1].is_string()) {
                    list.push_back(Failure{f[0].get<int64_t>(), f[1].get<std::string>()});
                }
            }
        }
    }
    failures_ = std::move(loaded);
}

void FileLoginThrottle::save_locked() {
    json doc = {{"failures", json::object()}};
    for (const auto& [address, list] : failures_) {
        json entries = json::array();
        for (const Failure& f : list) entries.push_back(json::array({f.at, f.user_hash}));
        doc["failures"][address] = std::move(entries);
    }
    file_.save(doc);
}

template <class Change>
void FileLoginThrottle::update_locked(int64_t now, Change change) {
    Result<FileLock> file_lock = FileLock{};
    if (file_.enabled()) {
        file_lock = file_.lock();
        load_locked();
    }
    // Bound the memory (and the file) an attacker with many addresses can fill: drop addresses whose failures left
    // the window.
    for (auto it = failures_.begin(); it != failures_.end();) {
        prune_locked(it->second, now);
        it = it->second.empty() ? failures_.erase(it) : std::next(it);
    }
    change();
    if (file_.enabled()) save_locked();
}

Result<int64_t> FileLoginThrottle::retry_after(const std::string& address, int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    load_locked();
    auto it = failures_.find(address);
    if (it == failures_.end()) return int64_t{0};
    prune_locked(it->second, now);
    if (static_cast<int>(it->second.size()) < max_failures_) return int64_t{0};
    return wait_for(it->second.front().at, now);
}

Result<Unit> FileLoginThrottle::record_failure(const std::string& address, const std::string& username,
                                               int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    update_locked(now, [&] {
        auto& list = failures_[address];
        list.push_back(Failure{now, sha256_hex(username)});
        while (static_cast<int>(list.size()) > max_failures_) list.pop_front();
    });
    return Unit{};
}

Result<Unit> FileLoginThrottle::record_success(const std::string& address, const std::string& username,
                                               int64_t now) {
    std::lock_guard<std::mutex> lock(mutex_);
    update_locked(now, [&] {
        auto it = failures_.find(address);
        if (it == failures_.end()) return;
        const std::string user_hash = sha256_hex(username);
        auto& list = it->second;
        list.erase(std::remove_if(list.begin(), list.end(), [&](const Failure& f) { return f.user_hash == user_hash; }),
                   list.end());
        if (list.empty()) failures_.erase(it);
    });
    return Unit{};
}

// ---------------------------------------------------------------------------------------------------------------
// RedisLoginThrottle

RedisLoginThrottle::RedisLoginThrottle(Redis& redis, int max_failures, int64_t window_seconds)
    : LoginThrottle(max_failures, window_seconds), redis_(redis) {}

Result<int64_t> RedisLoginThrottle::retry_after(const std::string& address, int64_t now) {
    // A failure at `at` counts while at + window > now: scores above now - window (exclusive).
    const std::string after = "(" + std::to_string(now - window_);
    const std::string key = failures_key(address);
    auto replies = redis_.pipeline({{"ZCOUNT", key, after, "+inf"},
                                    {"ZRANGEBYSCORE", key, after, "+inf", "WITHSCORES", "LIMIT", "0", "1"}});
    if (!replies) return replies.error();
    const RedisReply& count = (*replies)[0];
    const RedisReply& oldest = (*replies)[1];
    if (count.integer < max_failures_ || oldest.elements.size() != 2) return int64_t{0};
    return wait_for(std::strtoll(oldest.elements[1].str.c_str(), nullptr, 10), now);
}

Result<Unit> RedisLoginThrottle::record_failure(const std::string& address, const std::string& username,
                                                int64_t now) {
    const std::string key = failures_key(address);
    // The random part keeps two failures in the same second as two members.
    const std::string member = std::to_string(now) + ":" + sha256_hex(username) + ":" + base64url_encode(random_bytes(6));
    auto replies = redis_.pipeline({
        {"ZADD", key, std::to_string(now), member},
        {"ZREMRANGEBYSCORE", key, "-inf", std::to_string(now - window_)},
        // Keep the newest max_failures: enough to decide, and a bound on what one address can store.
        {"ZREMRANGEBYRANK", key, "0", std::to_string(-(max_failures_ + 1))},
        {"EXPIRE", key, std::to_string(std::max<int64_t>(window_, 1))},
    });
    if (!replies) return replies.error();
    return Unit{};
}

Result<Unit> RedisLoginThrottle::record_success(const std::string& address, const std::string& username, int64_t) {
    auto r = redis_.eval(kClearUserScript, {failures_key(address)}, {":" + sha256_hex(username) + ":"});
    if (!r) return r.error();
    return Unit{};
}

}  // namespace keyrelay::relay
