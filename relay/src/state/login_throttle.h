// RFC 6749 §10.10 / OWASP: throttle password guessing per client address. Failures count per address whatever
// username they named, up to the limit; a correct password clears only that username's failures, so logging in as
// yourself does not reset the count of guesses at someone else. Usernames are kept only as SHA-256 hashes.
//
// Two backends with the same behaviour: the file store (memory, or <data_dir>/login_failures.json shared by the
// relay processes on that dir) and Redis, shared by every relay on it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "keyrelay/result.h"
#include "state/shared_json_file.h"

namespace keyrelay::relay {

class Redis;

class LoginThrottle {
public:
    LoginThrottle(int max_failures, int64_t window_seconds) : max_failures_(max_failures), window_(window_seconds) {}
    virtual ~LoginThrottle() = default;
    LoginThrottle(const LoginThrottle&) = delete;
    LoginThrottle& operator=(const LoginThrottle&) = delete;

    // 0 when a login attempt is allowed now; otherwise the seconds until one is (for Retry-After).
    // Errors: "store.*" when the shared store cannot be reached.
    virtual Result<int64_t> retry_after(const std::string& address, int64_t now) = 0;
    virtual Result<Unit> record_failure(const std::string& address, const std::string& username, int64_t now) = 0;
    virtual Result<Unit> record_success(const std::string& address, const std::string& username, int64_t now) = 0;

protected:
    // The seconds until a failure at `oldest`, the oldest in the window, leaves it: when a login is allowed again.
    int64_t wait_for(int64_t oldest, int64_t now) const { return std::max<int64_t>(oldest + window_ - now, 1); }

    int max_failures_;
    int64_t window_;
};

class FileLoginThrottle : public LoginThrottle {
public:
    explicit FileLoginThrottle(int max_failures = 5, int64_t window_seconds = 300, const std::string& data_dir = {});
    Result<int64_t> retry_after(const std::string& address, int64_t now) override;
    Result<Unit> record_failure(const std::string& address, const std::string& username, int64_t now) override;
    Result<Unit> record_success(const std::string& address, const std::string& username, int64_t now) override;

private:
    struct Failure {
        int64_t at = 0;
        std::string user_hash;   // SHA-256 hex of the username
    };
    void prune_locked(std::deque<Failure>& failures, int64_t now) const;
    void load_locked();
    void save_locked();
    // Runs change() on the failures, under the data dir's lock when there is one (read, change, write).
    template <class Change>
    void update_locked(int64_t now, Change change);
    std::mutex mutex_;
    std::map<std::string, std::deque<Failure>> failures_;   // client address -> failures in the window, oldest first
    SharedJsonFile file_;
};

// keyrelay:login-failures:<sha256 hex of the client address>: a sorted set of "<time>:<sha256 hex of the
// username>:<random>" scored by the time, at most max_failures members, expiring one window after the last failure.
class RedisLoginThrottle : public LoginThrottle {
public:
    RedisLoginThrottle(Redis& redis, int max_failures = 5, int64_t window_seconds = 300);
    Result<int64_t> retry_after(const std::string& address, int64_t now) override;
    Result<Unit> record_failure(const std::string& address, const std::string& username, int64_t now) override;
    Result<Unit> record_success(const std::string& address, const std::string& username, int64_t now) override;

private:
    Redis& redis_;
};

// The Redis backend when `redis` is set, else the file store in data_dir ("" = memory only).
std::unique_ptr<LoginThrottle> make_login_throttle(int max_failures, int64_t window_seconds,
                                                   const std::string& data_dir, Redis* redis);

}  // namespace keyrelay::relay
