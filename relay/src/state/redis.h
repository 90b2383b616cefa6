// A small synchronous Redis client on hiredis (Debian's libhiredis 0.14: no TLS, so Redis is reached over a private
// network or a TLS tunnel, docs/deploy.md). Connections are pooled: a caller borrows one for a command and gives it
// back; a connection that failed is dropped, and the next call connects again, so the relay recovers by itself when
// Redis returns. Every call is bounded by the connect and command timeouts: never a hang.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/result.h"

struct redisContext;

namespace keyrelay::relay {

// redis://[user:password@]host[:port][/db] (https://www.iana.org/assignments/uri-schemes/prov/redis).
struct RedisUrl {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string user;       // Redis 6 ACL user; empty = the default user
    std::string password;   // empty = no AUTH
    int db = 0;

    // Errors: "config.bad_redis_url", naming what is wrong and the expected form.
    static Result<RedisUrl> parse(std::string_view text);
    // "host:port/db", without the credentials: for logs, errors and doctor.
    std::string where() const;
};

struct RedisOptions {
    int64_t connect_timeout_ms = 1000;
    int64_t command_timeout_ms = 2000;
    size_t max_idle = 16;   // idle connections kept for reuse
};

// One reply: nil, a string or status (str), an integer or an array (elements). Error replies never become a
// RedisReply: they are the Error of the Result.
struct RedisReply {
    bool nil = false;
    std::string str;
    long long integer = 0;
    std::vector<RedisReply> elements;
};

class Redis {
public:
    Redis(RedisUrl url, RedisOptions options);
    ~Redis();
    Redis(const Redis&) = delete;
    Redis& operator=(const Redis&) = delete;

    // One command; the arguments are binary-safe. Errors:
    //  - "store.unavailable": Redis cannot be reached, timed out or dropped the connection (message says which);
    //  - "store.redis_auth": AUTH was refused (wrong password or user);
    //  - "store.redis_error": Redis answered an error (its text is the message).
    Result<RedisReply> command(const std::vector<std::string>& argv);

    // Several commands on one connection in one round trip. Errors: as command; the first error reply, in order.
    Result<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& commands);

    // EVALSHA of a Lua script, loading it (SCRIPT LOAD) when Redis does not know it yet (NOSCRIPT).
    Result<RedisReply> eval(const std::string& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args);

    // False from a transport failure until the next command that reaches Redis.
    bool healthy() const;

private:
    // A pooled connection (reused = true) or a new one.
    Result<redisContext*> borrow(bool& reused);
    // Sends the commands on c and reads every answer. `failure` is set when Redis was not reached (a transport
    // failure), not for an error reply. Does not give c back.
    Result<std::vector<RedisReply>> run(redisContext* c, const std::vector<std::vector<std::string>>& commands,
                                        std::string& failure, bool& timed_out);
    void give_back(redisContext* c, bool broken);
    void mark(bool reached, const std::string& error);
    void drop_idle();

    RedisUrl url_;
    RedisOptions options_;
    mutable std::mutex mutex_;
    std::vector<redisContext*> idle_;
    bool healthy_ = true;
    std::string last_error_;
    // After a failed connect, callers fail fast until this moment instead of each waiting for the connect timeout.
    std::chrono::steady_clock::time_point retry_after_{};
    bool probing_ = false;   // while unhealthy: one caller is trying Redis again; the others fail fast
};

// Every key keyrelay writes starts with this, so the keys are easy to find, scan and remove.
constexpr std::string_view kRedisKeyPrefix = "keyrelay:";

}  // namespace keyrelay::relay
