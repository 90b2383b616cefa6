#include "state/refresh_lease.h"

#include <random>

#include "obs/log.h"
#include "state/crypto.h"

namespace keyrelay::relay {
namespace {

// KEYS[1]: the lease; ARGV[1]: the owner token; ARGV[2]: the lease in ms.
constexpr const char* kRenewScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

// KEYS[1]: the lease; ARGV[1]: the owner token.
constexpr const char* kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

int64_t jittered(int64_t lo, int64_t hi) {
    thread_local std::minstd_rand rng{std::random_device{}()};
    if (hi <= lo) return lo;
    return lo + int64_t(rng() % uint64_t(hi - lo + 1));
}

}  // namespace

std::string refresh_lease_key(const std::string& provider) {
    return std::string(kRedisKeyPrefix) + "lock:refresh:" + provider;
}

Result<bool> try_take_lease(Redis& redis, const std::string& key, const std::string& owner, int64_t lease_ms) {
    auto r = redis.command({"SET", key, owner, "NX", "PX", std::to_string(lease_ms)});
    if (!r) return r.error();
    return !r->nil;   // "OK", or nil when someone else holds it
}

Result<bool> renew_lease(Redis& redis, const std::string& key, const std::string& owner, int64_t lease_ms) {
    auto r = redis.eval(kRenewScript, {key}, {owner, std::to_string(lease_ms)});
    if (!r) return r.error();
    return r->integer == 1;
}

Result<bool> release_lease(Redis& redis, const std::string& key, const std::string& owner) {
    auto r = redis.eval(kReleaseScript, {key}, {owner});
    if (!r) return r.error();
    return r->integer == 1;
}

Result<std::unique_ptr<RedisRefreshLease>> RedisRefreshLease::acquire(Redis& redis, std::string key,
                                                                      LeaseOptions options) {
    std::string owner = random_token(18);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options.max_wait_ms);
    bool waited = false;
    for (;;) {
        auto taken = try_take_lease(redis, key, owner, options.lease_ms);
        if (!taken) return taken.error();
        if (*taken) break;
        waited = true;
        if (std::chrono::steady_clock::now() >= deadline) {
            return make_error("store.lock_timeout",
                              "Another relay has held the refresh lock " + key + " for over " +
                                  std::to_string(options.max_wait_ms / 1000) + " s.",
                              "It keeps renewing the lease but does not finish its refresh: look at the other relays' "
                              "logs for a hung token request. The call can be retried.");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(jittered(options.poll_min_ms, options.poll_max_ms)));
    }
    return std::unique_ptr<RedisRefreshLease>(new RedisRefreshLease(redis, std::move(key), std::move(owner), options,
                                                                    waited));
}

RedisRefreshLease::RedisRefreshLease(Redis& redis, std::string key, std::string owner, LeaseOptions options,
                                     bool waited)
    : redis_(redis), key_(std::move(key)), owner_(std::move(owner)), options_(options), waited_(waited) {
    renewer_ = std::thread([this] { renew_loop(); });
}

void RedisRefreshLease::renew_loop() {
    auto period = std::chrono::milliseconds(std::max<int64_t>(1, options_.lease_ms / 3));
    auto held_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.lease_ms);
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        if (stop_cv_.wait_for(lock, period, [this] { return stopping_; })) break;
        lock.unlock();
        auto started = std::chrono::steady_clock::now();
        auto renewed = renew_lease(redis_, key_, owner_, options_.lease_ms);
        lock.lock();
        if (renewed && *renewed) {
            held_until = started + std::chrono::milliseconds(options_.lease_ms);
            continue;
        }
        if (renewed || std::chrono::steady_clock::now() >= held_until) {
            // Someone else holds it now (we stalled past the lease), or Redis was unreachable for a whole lease.
            lost_ = true;
            log_line(LogLevel::warn, "refresh lease lost while refreshing; the refreshed record is written only if "
                                     "no other relay wrote first",
                     {{"lease", key_}, {"error", renewed ? std::string("taken over") : renewed.error().code}});
            break;
        }
    }
}

RedisRefreshLease::~RedisRefreshLease() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    stop_cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
    // Failure here is harmless: the lease runs out by itself.
    (void)release_lease(redis_, key_, owner_);
}

}  // namespace keyrelay::relay
