// `keyrelay doctor`, the shared Redis (docs/deploy.md, "Two or more relays"): what an operator would check by hand
// with redis-cli, in plain words. The URL's password is never printed: RedisUrl::where() has none.
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>

#include "doctor_report.h"
#include "http/util.h"
#include "state/redis.h"

namespace keyrelay::relay {
namespace {

// One "name:value" line of an INFO answer (https://redis.io/commands/info/).
std::optional<std::string> info_field(const std::string& info, const std::string& name) {
    std::istringstream in(info);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind(name + ":", 0) == 0) return line.substr(name.size() + 1);
    }
    return std::nullopt;
}

// "7.0.15" -> 70015; GETDEL and SET ... PXAT need 6.2.
int version_number(const std::string& v) {
    int major = 0, minor = 0, patch = 0;
    std::sscanf(v.c_str(), "%d.%d.%d", &major, &minor, &patch);
    return major * 10000 + minor * 100 + patch;
}

// CONFIG GET name -> its value; nullopt (with the reason in `why`) when CONFIG is refused (an ACL without +config,
// or the command renamed away, as managed Redis services do).
std::optional<std::string> config_get(Redis& redis, const std::string& name, std::string& why) {
    auto r = redis.command({"CONFIG", "GET", name});
    if (!r) {
        why = r.error().message;
        return std::nullopt;
    }
    if (r->elements.size() < 2) return std::string();
    return r->elements[1].str;
}

void check_persistence(Redis& redis, const std::string& where, DoctorReport& r) {
    const std::string lost = "a restart of Redis loses every connection and page session, and every user must "
                             "connect Keap and Jira again";
    auto info = redis.command({"INFO", "persistence"});
    if (!info) {
        r.warn("Redis at " + where + ": INFO persistence failed (" + info.error().message +
                   "), so persistence (AOF or RDB) is not checked.",
               "Check by hand that appendonly is yes: " + lost + " without persistence.");
        return;
    }
    if (info_field(info->str, "aof_enabled").value_or("0") == "1") {
        r.ok("Redis persistence: AOF (appendonly) is on, so a restart keeps the connections.");
        return;
    }
    std::string why;
    auto save = config_get(redis, "save", why);
    if (!save) {
        r.warn("Redis persistence: AOF (appendonly) is off, and CONFIG GET save is not allowed for this Redis user (" +
                   why + "), so RDB snapshots are not checked.",
               "Turn AOF on (appendonly yes in redis.conf, or CONFIG SET appendonly yes): otherwise " + lost + ".");
        return;
    }
    if (trim_ascii(*save).empty()) {
        r.warn("Redis persistence is off: no AOF (appendonly no) and no RDB snapshots (save \"\"): " + lost + ".",
               "Set appendonly yes in redis.conf, or at once without a restart: CONFIG SET appendonly yes, then "
               "CONFIG REWRITE.");
        return;
    }
    r.warn("Redis persistence: only RDB snapshots (save " + *save + "), no AOF: a crash loses what changed since the "
               "last snapshot, such as a refresh token Keap just rotated (that connection then needs Connect again).",
           "Turn AOF on as well: appendonly yes in redis.conf (or CONFIG SET appendonly yes, then CONFIG REWRITE).");
}

void check_eviction(Redis& redis, const std::string& where, DoctorReport& r) {
    auto info = redis.command({"INFO", "memory"});
    std::optional<std::string> policy;
    std::string maxmemory = "0";
    std::string why;
    if (info) {
        policy = info_field(info->str, "maxmemory_policy");
        maxmemory = info_field(info->str, "maxmemory").value_or("0");
    }
    if (!policy) policy = config_get(redis, "maxmemory-policy", why);
    if (!policy) {
        r.info("Redis at " + where + ": the maxmemory-policy cannot be read (" + why +
               "); it must be noeviction or volatile-*, since the relay's connection keys have no TTL.");
        return;
    }
    // https://redis.io/docs/reference/eviction/: volatile-* evict only keys with a TTL; noeviction none.
    if (*policy == "noeviction" || policy->rfind("volatile-", 0) == 0) {
        r.ok("Redis maxmemory-policy is " + *policy + ": it cannot evict the relay's connections (they have no TTL).");
        return;
    }
    const std::string fix = "Run CONFIG SET maxmemory-policy noeviction (and set maxmemory-policy noeviction in "
                            "redis.conf), or give the relay a Redis of its own.";
    if (maxmemory == "0") {
        r.warn("Redis maxmemory-policy is " + *policy + ": no maxmemory is set today, but with one Redis would evict "
                   "the relay's connections (users would have to connect again).",
               fix);
    } else {
        r.fail("Redis maxmemory-policy is " + *policy + " with maxmemory " + maxmemory +
                   ": when memory runs short Redis evicts any key, the relay's connections included.",
               fix);
    }
}

}  // namespace

void check_redis(const Config& config, DoctorReport& r) {
    if (config.redis_url.empty()) return;
    auto url = RedisUrl::parse(config.redis_url);
    if (!url) {
        r.fail(url.error().message, url.error().hint);
        return;
    }
    const std::string where = url->where();
    if (!config.store_key) {
        r.fail("KEYRELAY_REDIS_URL is set but KEYRELAY_STORE_KEY is not: the relay refuses to start.",
               "Every relay sharing this Redis needs the same key: make one with `openssl rand -hex 32` and give it to "
               "each of them as KEYRELAY_STORE_KEY.");
    }
    RedisOptions options;
    options.connect_timeout_ms = config.redis_connect_timeout_ms;
    options.command_timeout_ms = config.redis_command_timeout_ms;
    Redis redis(*url, options);
    auto ping = redis.command({"PING"});
    if (!ping) {
        const Error& e = ping.error();
        if (e.code == "store.redis_auth") {
            // Redis's own words (WRONGPASS ..., NOAUTH ...), which never repeat the password.
            std::string said = e.message.substr(e.message.find(": ") == std::string::npos ? 0 : e.message.find(": ") + 2);
            r.fail("Redis at " + where + " refuses the credentials in KEYRELAY_REDIS_URL: " + said,
                   "Put the password Redis expects (requirepass, or the ACL user's) in KEYRELAY_REDIS_URL as "
                   "redis://:PASSWORD@host:port/db or redis://USER:PASSWORD@host:port/db.");
        } else {
            r.fail(e.message, e.hint);
        }
        return;
    }
    if (url->password.empty()) {
        std::string hint = "Set requirepass in redis.conf and put it in KEYRELAY_REDIS_URL (redis://:PASSWORD@...).";
        if (is_loopback_bind(url->host)) {
            r.info("Redis at " + where + " is reachable, with no password (loopback only). " + hint);
        } else {
            r.warn("Redis at " + where + " is reachable with no password: anyone on its network can delete "
                   "connections and end sessions.",
                   hint);
        }
    } else {
        r.ok("Redis at " + where + " is reachable and accepts the password (AUTH).");
    }

    auto server = redis.command({"INFO", "server"});
    auto version = server ? info_field(server->str, "redis_version") : std::nullopt;
    if (!version) {
        r.info("Redis at " + where + ": the server version cannot be read (INFO server).");
    } else if (version_number(*version) < 60200) {
        r.fail("Redis server version " + *version + " is older than 6.2.",
               "The relay uses GETDEL and SET ... PXAT (Redis 6.2+): upgrade Redis (Debian 12 ships 7.0).");
    } else {
        r.ok("Redis server version " + *version + ".");
    }
    check_persistence(redis, where, r);
    check_eviction(redis, where, r);
}

}  // namespace keyrelay::relay
