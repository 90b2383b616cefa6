// The refresh lock across relays sharing one Redis: a lease, not a plain lock with a fixed TTL.
//  - Taken with SET keyrelay:lock:refresh:<provider> <random owner token> NX PX <lease_ms>
//    (https://redis.io/docs/latest/commands/set/): only one owner at a time, and it runs out by itself when its
//    holder dies, so another relay can take over.
//  - Renewed every third of the lease while the refresh is in flight (compare-and-PEXPIRE in Lua), so a slow token
//    endpoint does not let a second relay spend the same refresh token.
//  - Released only by its owner (compare-and-DEL in Lua): a holder whose lease ran out (a stall) cannot delete the
//    lease of the relay that took over.
// A lease alone cannot stop a holder that stalled past it from finishing its refresh; what stops it from doing harm
// is that every write of a connection is a compare-and-set on its version (state/redis_store.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "keyrelay/result.h"
#include "state/connection_store.h"
#include "state/redis.h"

namespace keyrelay::relay {

// The lease key of a provider: "keyrelay:lock:refresh:<provider>".
std::string refresh_lease_key(const std::string& provider);

// One attempt each; true when it happened. Errors: those of Redis::command / Redis::eval.
// try_take_lease: SET NX PX. renew_lease: PEXPIRE only if `owner` still holds it. release_lease: DEL only if
// `owner` still holds it.
Result<bool> try_take_lease(Redis& redis, const std::string& key, const std::string& owner, int64_t lease_ms);
Result<bool> renew_lease(Redis& redis, const std::string& key, const std::string& owner, int64_t lease_ms);
Result<bool> release_lease(Redis& redis, const std::string& key, const std::string& owner);

struct LeaseOptions {
    int64_t lease_ms = 10000;
    // How long to wait for a lease another relay holds before giving up with store.lock_timeout: a few leases, so
    // a holder that died is outlived and a live one can renew a few times.
    int64_t max_wait_ms = 30000;
    int64_t poll_min_ms = 25;   // polls are 25-50 ms apart (random), so waiters do not poll in step
    int64_t poll_max_ms = 50;
};

class RedisRefreshLease : public RefreshLock {
public:
    // Takes the lease at `key`, polling while another owner holds it. Errors: "store.lock_timeout",
    // "store.unavailable", "store.redis_auth", "store.redis_error".
    static Result<std::unique_ptr<RedisRefreshLease>> acquire(Redis& redis, std::string key, LeaseOptions options);
    ~RedisRefreshLease() override;   // stops renewing and releases the lease if this owner still holds it
    RedisRefreshLease(const RedisRefreshLease&) = delete;
    RedisRefreshLease& operator=(const RedisRefreshLease&) = delete;

    bool waited() const override { return waited_; }
    // True when the lease is known to have run out while held (it could not be renewed in time). The holder's
    // writes stay safe (they are compare-and-set), but it should not start anything new.
    bool lost() const { return lost_.load(); }
    const std::string& owner() const { return owner_; }

private:
    RedisRefreshLease(Redis& redis, std::string key, std::string owner, LeaseOptions options, bool waited);
    void renew_loop();

    Redis& redis_;
    std::string key_;
    std::string owner_;
    LeaseOptions options_;
    bool waited_;
    std::atomic<bool> lost_{false};
    std::mutex mutex_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;
    std::thread renewer_;
};

}  // namespace keyrelay::relay
