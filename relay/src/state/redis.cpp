#include "state/redis.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>

#include "keyrelay/http.h"
#include "state/crypto.h"

namespace keyrelay::relay {
namespace {

constexpr const char* kUrlForm = "redis://[user:password@]host[:port][/db]";

Error bad_url(const std::string& what) {
    return make_error("config.bad_redis_url", "The Redis URL is not usable: " + what + ".",
                      std::string("Write it as ") + kUrlForm +
                          ", e.g. redis://:PASSWORD@10.0.0.5:6379/0, in KEYRELAY_REDIS_URL.");
}

timeval to_timeval(int64_t ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
    return tv;
}

Error unavailable(const RedisUrl& url, const std::string& why) {
    return make_error("store.unavailable", "Redis at " + url.where() + " is unreachable: " + why + ".",
                      "Check that redis-server is running and reachable from this machine (keyrelay doctor "
                      "checks it); the relay reconnects by itself once it is.");
}

RedisReply convert(const redisReply* r) {
    RedisReply out;
    switch (r->type) {
        case REDIS_REPLY_STRING:
        case REDIS_REPLY_STATUS:
            out.str.assign(r->str, r->len);
            break;
        case REDIS_REPLY_INTEGER:
            out.integer = r->integer;
            break;
        case REDIS_REPLY_ARRAY:
            out.elements.reserve(r->elements);
            for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
            break;
        default:
            out.nil = true;
    }
    return out;
}

// An error reply (never a transport failure) as the Result's error.
Result<RedisReply> from_reply(const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) {
        std::string text(r->str, r->len);
        if (text.rfind("NOAUTH", 0) == 0 || text.rfind("WRONGPASS", 0) == 0) {
            return make_error("store.redis_auth", "Redis refused the credentials: " + text,
                              "Put the password (and ACL user) Redis expects in KEYRELAY_REDIS_URL: "
                              "redis://user:password@host:port/db.");
        }
        return make_error("store.redis_error", "Redis answered an error: " + text);
    }
    return convert(r);
}

struct ReplyFree {
    void operator()(void* r) const {
        if (r != nullptr) freeReplyObject(r);
    }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

std::string sha1_hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha1(), nullptr);
    return to_hex(std::string_view(reinterpret_cast<const char*>(digest), n));
}

}  // namespace

Result<RedisUrl> RedisUrl::parse(std::string_view text) {
    constexpr std::string_view scheme = "redis://";
    if (text.substr(0, scheme.size()) != scheme) {
        if (text.substr(0, 9) == "rediss://") {
            return bad_url("rediss:// (TLS) is not supported by Debian's hiredis 0.14; reach Redis over a private "
                           "network or a TLS tunnel (stunnel, spiped) and use redis://");
        }
        return bad_url("it does not start with redis://");
    }
    RedisUrl u;
    std::string_view rest = text.substr(scheme.size());
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = userinfo.find(':');
        std::string_view user = colon == std::string_view::npos ? std::string_view() : userinfo.substr(0, colon);
        std::string_view password = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
        auto decoded_user = percent_decode(user);
        auto decoded_password = percent_decode(password);
        if (!decoded_user || !decoded_password) return bad_url("the user or password has a broken %XX escape");
        u.user = *decoded_user;
        u.password = *decoded_password;
    }
    std::string_view hostport = rest;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        hostport = rest.substr(0, slash);
        std::string_view db = rest.substr(slash + 1);
        if (!db.empty()) {
            auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), u.db);
            if (ec != std::errc() || end != db.data() + db.size() || u.db < 0) {
                return bad_url("the database \"" + std::string(db) + "\" is not a number");
            }
        }
    }
    if (!hostport.empty() && hostport.front() == '[') {
        auto close = hostport.find(']');
        if (close == std::string_view::npos) return bad_url("an IPv6 address misses its ']'");
        u.host = std::string(hostport.substr(1, close - 1));
        hostport = hostport.substr(close + 1);
        if (!hostport.empty() && hostport.front() != ':') return bad_url("unexpected text after the IPv6 address");
        if (!hostport.empty()) hostport.remove_prefix(1);
    } else {
        auto colon = hostport.rfind(':');
        u.host = std::string(hostport.substr(0, colon));
        hostport = colon == std::string_view::npos ? std::string_view() : hostport.substr(colon + 1);
    }
    if (u.host.empty()) return bad_url("there is no host");
    if (!hostport.empty()) {
        auto [end, ec] = std::from_chars(hostport.data(), hostport.data() + hostport.size(), u.port);
        if (ec != std::errc() || end != hostport.data() + hostport.size() || u.port <= 0 || u.port > 65535) {
            return bad_url("the port \"" + std::string(hostport) + "\" is not a port number");
        }
    }
    return u;
}

std::string RedisUrl::where() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port) + "/" + std::to_string(db);
}

Redis::Redis(RedisUrl url, RedisOptions options) : url_(std::move(url)), options_(options) {}

Redis::~Redis() {
    for (redisContext* c : idle_) redisFree(c);
}

bool Redis::healthy() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return healthy_;
}

void Redis::mark(bool reached, const std::string& error) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        healthy_ = reached;
        probing_ = false;
        if (reached) return;
        last_error_ = error;
        // Callers in the next moment get the same answer at once; then one of them probes again.
        retry_after_ = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(std::min<int64_t>(options_.connect_timeout_ms, 250));
    }
    // A connection failed: the idle ones most likely lead to the same dead or restarted server. Drop them, so
    // the next calls connect afresh instead of each failing once on a stale socket after Redis is back.
    drop_idle();
}

void Redis::drop_idle() {
    std::vector<redisContext*> stale;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stale.swap(idle_);
    }
    for (redisContext* c : stale) redisFree(c);
}

Result<redisContext*> Redis::borrow(bool& reused) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!healthy_) {
            // Redis just failed (refused, timed out, or frozen): one caller at a time probes it again, the others
            // get the same answer at once instead of each waiting for a timeout.
            if (probing_ || std::chrono::steady_clock::now() < retry_after_) {
                return unavailable(url_, last_error_.empty() ? "the last attempt failed" : last_error_);
            }
            probing_ = true;
        } else if (!idle_.empty()) {
            redisContext* c = idle_.back();
            idle_.pop_back();
            reused = true;
            return c;
        }
    }
    redisContext* c = redisConnectWithTimeout(url_.host.c_str(), url_.port, to_timeval(options_.connect_timeout_ms));
    auto fail = [&](const std::string& why) -> Error {
        if (c != nullptr) redisFree(c);
        mark(false, why);
        return unavailable(url_, why);
    };
    if (c == nullptr) return fail("out of memory");
    if (c->err != 0) return fail(c->errstr);
    redisSetTimeout(c, to_timeval(options_.command_timeout_ms));
    redisEnableKeepAlive(c);
    std::vector<std::vector<std::string>> hello;
    if (!url_.password.empty()) {
        hello.push_back(url_.user.empty() ? std::vector<std::string>{"AUTH", url_.password}
                                          : std::vector<std::string>{"AUTH", url_.user, url_.password});
    }
    if (url_.db != 0) hello.push_back({"SELECT", std::to_string(url_.db)});
    std::string failure;
    bool timed_out = false;
    if (auto ok = run(c, hello, failure, timed_out); !ok) {
        redisFree(c);
        mark(ok.error().code != "store.unavailable", ok.error().message);
        return ok.error();
    }
    return c;
}

void Redis::give_back(redisContext* c, bool broken) {
    if (broken || c->err != 0) {
        redisFree(c);
        return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() < options_.max_idle) {
        idle_.push_back(c);
        return;
    }
    redisFree(c);
}

Result<RedisReply> Redis::command(const std::vector<std::string>& argv) {
    auto replies = pipeline({argv});
    if (!replies) return replies.error();
    return std::move(replies->front());
}

Result<std::vector<RedisReply>> Redis::pipeline(const std::vector<std::vector<std::string>>& commands) {
    // A pooled connection may have died while idle (Redis restarted): when it fails at once, without timing out,
    // the commands go once more on a fresh connection before Redis counts as down.
    for (int attempt = 0;; ++attempt) {
        bool reused = false;
        auto c = borrow(reused);
        if (!c) return c.error();
        bool timed_out = false;
        std::string failure;
        auto result = run(*c, commands, failure, timed_out);
        bool lost = !result && result.error().code == "store.unavailable";   // not an error reply
        give_back(*c, lost);
        if (lost && reused && !timed_out && attempt == 0) {
            // The other idle connections most likely died the same way: the retry connects afresh.
            drop_idle();
            continue;
        }
        mark(!lost, failure);
        return result;
    }
}

Result<std::vector<RedisReply>> Redis::run(redisContext* ctx, const std::vector<std::vector<std::string>>& commands,
                                           std::string& failure, bool& timed_out) {
    for (const auto& argv : commands) {
        std::vector<const char*> args;
        std::vector<size_t> lengths;
        for (const auto& a : argv) {
            args.push_back(a.data());
            lengths.push_back(a.size());
        }
        if (redisAppendCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lengths.data()) != REDIS_OK) {
            failure = ctx->errstr;
            return unavailable(url_, failure);
        }
    }
    std::vector<RedisReply> out;
    out.reserve(commands.size());
    std::optional<Error> first_error;   // the replies after it are read all the same: the connection stays usable
    for (size_t i = 0; i < commands.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
            std::string why = ctx->errstr[0] ? ctx->errstr : "the connection was lost";
            if (ctx->err == REDIS_ERR_IO && why.find("Resource temporarily unavailable") != std::string::npos) {
                why = "no answer within " + std::to_string(options_.command_timeout_ms) + " ms";
                timed_out = true;
            }
            if (raw != nullptr) freeReplyObject(raw);
            failure = why;
            return unavailable(url_, why);
        }
        ReplyPtr r(static_cast<redisReply*>(raw));
        auto reply = from_reply(r.get());
        if (reply) out.push_back(std::move(*reply));
        else if (!first_error) first_error = reply.error();
    }
    if (first_error) return *first_error;
    return out;
}

Result<RedisReply> Redis::eval(const std::string& script, const std::vector<std::string>& keys,
                               const std::vector<std::string>& args) {
    auto argv = [&](const std::string& verb, const std::string& body) {
        std::vector<std::string> a{verb, body, std::to_string(keys.size())};
        a.insert(a.end(), keys.begin(), keys.end());
        a.insert(a.end(), args.begin(), args.end());
        return a;
    };
    auto r = command(argv("EVALSHA", sha1_hex(script)));
    if (!r && r.error().code == "store.redis_error" && r.error().message.find("NOSCRIPT") != std::string::npos) {
        return command(argv("EVAL", script));
    }
    return r;
}

}  // namespace keyrelay::relay
