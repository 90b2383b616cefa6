// keyrelay doctor's checks of a shared Redis, each against a redis-server set up to pass or to fail one of them.
#include <catch2/catch.hpp>

#include <sstream>

#include "doctor_report.h"
#include "redis_server.h"
#include "state/crypto.h"

using namespace keyrelay::relay;

namespace {

struct Checked {
    std::string out;
    int failures = 0;
    int warnings = 0;
};

Checked doctor(const std::string& redis_url, bool with_store_key = true) {
    Config c;
    c.redis_url = redis_url;
    if (with_store_key) c.store_key = std::string(64, 'a');
    c.redis_connect_timeout_ms = 500;
    std::ostringstream out;
    DoctorReport r(out);
    check_redis(c, r);
    return {out.str(), r.failures, r.warnings};
}

bool has_line(const std::string& out, const std::string& level, const std::string& text) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(level, 0) == 0 && line.find(text) != std::string::npos) return true;
    }
    return false;
}

// The test server, set up with CONFIG SET (as an operator would fix it at run time).
void configure(const testutil::RedisServer& server, const std::string& name, const std::string& value) {
    server.query({"CONFIG", "SET", name, value});
}

}  // namespace

TEST_CASE("doctor passes a Redis with a password, AOF and noeviction, and names its version", "[doctor][redis]") {
    testutil::RedisServer server("the-redis-password");
    auto d = doctor(server.url());
    INFO(d.out);
    CHECK(d.failures == 0);
    CHECK(d.warnings == 0);
    CHECK(has_line(d.out, "[ OK ]", "accepts the password (AUTH)"));
    std::string info = server.query_one({"INFO", "server"});
    auto at = info.find("redis_version:") + std::string("redis_version:").size();
    CHECK(has_line(d.out, "[ OK ]", "Redis server version " + info.substr(at, info.find('\r', at) - at)));
    CHECK(has_line(d.out, "[ OK ]", "AOF (appendonly) is on"));
    CHECK(has_line(d.out, "[ OK ]", "maxmemory-policy is noeviction"));
    CHECK(d.out.find("the-redis-password") == std::string::npos);
}

TEST_CASE("doctor fails a wrong Redis password without printing it", "[doctor][redis]") {
    testutil::RedisServer server("the-redis-password");
    const std::string wrong = "not-the-password-" + random_token(8);
    auto d = doctor("redis://:" + wrong + "@127.0.0.1:" + std::to_string(server.port()) + "/0");
    INFO(d.out);
    CHECK(d.failures == 1);
    CHECK(has_line(d.out, "[FAIL]", "refuses the credentials in KEYRELAY_REDIS_URL"));
    CHECK(d.out.find(wrong) == std::string::npos);
    CHECK(d.out.find("the-redis-password") == std::string::npos);
    SECTION("no password at all: the same failure") {
        auto none = doctor("redis://127.0.0.1:" + std::to_string(server.port()) + "/0");
        CHECK(has_line(none.out, "[FAIL]", "refuses the credentials in KEYRELAY_REDIS_URL"));
    }
}

TEST_CASE("doctor warns when Redis keeps nothing across a restart, and when it may evict", "[doctor][redis]") {
    testutil::RedisServer server("the-redis-password");
    SECTION("no AOF, no RDB") {
        configure(server, "appendonly", "no");
        auto d = doctor(server.url());
        INFO(d.out);
        CHECK(d.failures == 0);
        CHECK(has_line(d.out, "[WARN]", "Redis persistence is off"));
        CHECK(d.out.find("CONFIG SET appendonly yes") != std::string::npos);
    }
    SECTION("allkeys-lru without maxmemory: a warning; with maxmemory: a failure; both say the fix") {
        configure(server, "maxmemory-policy", "allkeys-lru");
        auto d = doctor(server.url());
        INFO(d.out);
        CHECK(has_line(d.out, "[WARN]", "maxmemory-policy is allkeys-lru"));
        CHECK(d.out.find("CONFIG SET maxmemory-policy noeviction") != std::string::npos);
        configure(server, "maxmemory", "100mb");
        auto limited = doctor(server.url());
        CHECK(limited.failures == 1);
        CHECK(has_line(limited.out, "[FAIL]", "maxmemory-policy is allkeys-lru with maxmemory"));
    }
    SECTION("volatile-lru cannot evict keys without a TTL") {
        configure(server, "maxmemory-policy", "volatile-lru");
        configure(server, "maxmemory", "100mb");
        CHECK(has_line(doctor(server.url()).out, "[ OK ]", "maxmemory-policy is volatile-lru"));
    }
    SECTION("an ACL user without CONFIG: said, not failed") {
        configure(server, "appendonly", "no");
        server.query({"ACL", "SETUSER", "relay", "on", ">relay-password", "~*", "&*", "+@all", "-config"});
        auto d = doctor("redis://relay:relay-password@127.0.0.1:" + std::to_string(server.port()) + "/0");
        INFO(d.out);
        CHECK(d.failures == 0);
        CHECK(has_line(d.out, "[WARN]", "CONFIG GET save is not allowed"));
        CHECK(has_line(d.out, "[ OK ]", "maxmemory-policy is noeviction"));   // from INFO memory
    }
}

TEST_CASE("doctor fails an unreachable Redis, and a Redis URL without KEYRELAY_STORE_KEY", "[doctor][redis]") {
    int port = 0;
    {
        testutil::RedisServer gone;
        port = gone.port();
    }
    auto d = doctor("redis://:pw@127.0.0.1:" + std::to_string(port) + "/0", false);
    INFO(d.out);
    CHECK(has_line(d.out, "[FAIL]", "KEYRELAY_REDIS_URL is set but KEYRELAY_STORE_KEY is not"));
    CHECK(has_line(d.out, "[FAIL]", "is unreachable"));
    CHECK(d.failures == 2);
    CHECK(d.out.find(":pw@") == std::string::npos);
    CHECK(doctor("rediss://127.0.0.1:6379").failures == 1);
    CHECK(doctor("").out.empty());   // the file store: no Redis checks
}
