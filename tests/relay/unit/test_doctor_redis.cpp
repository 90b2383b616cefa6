// keyrelay doctor's checks of a shared Redis, each against a redis-server set up to pass or to fail one of them.
#include <catch2/catch.hpp>

#include <sstream>

#include "doctor_report.h"
#include "redis_server.h"

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

}  // namespace

TEST_CASE("doctor passes a Redis with a password, AOF and noeviction, and names its version", "[doctor][redis]") {
    if (!relaytest::have_redis_server()) {
        WARN("redis-server is not installed (scripts/setup installs it): skipped");
        return;
    }
    relaytest::RedisServer server;
    auto d = doctor(server.url());
    INFO(d.out);
    CHECK(d.failures == 0);
    CHECK(d.warnings == 0);
    CHECK(has_line(d.out, "[ OK ]", "accepts the password (AUTH)"));
    auto info = server.client()->command({"INFO", "server"});
    REQUIRE(info.ok());
    auto at = info->str.find("redis_version:") + std::string("redis_version:").size();
    CHECK(has_line(d.out, "[ OK ]", "Redis server version " + info->str.substr(at, info->str.find('\r', at) - at)));
    CHECK(has_line(d.out, "[ OK ]", "AOF (appendonly) is on"));
    CHECK(has_line(d.out, "[ OK ]", "maxmemory-policy is noeviction"));
    CHECK(d.out.find(server.password()) == std::string::npos);
}

TEST_CASE("doctor fails a wrong Redis password without printing it", "[doctor][redis]") {
    if (!relaytest::have_redis_server()) {
        WARN("redis-server is not installed (scripts/setup installs it): skipped");
        return;
    }
    relaytest::RedisServer server;
    const std::string wrong = "not-the-password-" + random_token(8);
    auto d = doctor("redis://:" + wrong + "@127.0.0.1:" + std::to_string(server.port()) + "/0");
    INFO(d.out);
    CHECK(d.failures == 1);
    CHECK(has_line(d.out, "[FAIL]", "refuses the credentials in KEYRELAY_REDIS_URL"));
    CHECK(d.out.find(wrong) == std::string::npos);
    CHECK(d.out.find(server.password()) == std::string::npos);
    SECTION("no password at all: the same failure") {
        auto none = doctor("redis://127.0.0.1:" + std::to_string(server.port()) + "/0");
        CHECK(has_line(none.out, "[FAIL]", "refuses the credentials in KEYRELAY_REDIS_URL"));
    }
}

TEST_CASE("doctor warns when Redis keeps nothing across a restart, and when it may evict", "[doctor][redis]") {
    if (!relaytest::have_redis_server()) {
        WARN("redis-server is not installed (scripts/setup installs it): skipped");
        return;
    }
    SECTION("no AOF, no RDB") {
        relaytest::RedisServer server({"--appendonly", "no"});
        auto d = doctor(server.url());
        INFO(d.out);
        CHECK(d.failures == 0);
        CHECK(has_line(d.out, "[WARN]", "Redis persistence is off"));
        CHECK(d.out.find("CONFIG SET appendonly yes") != std::string::npos);
    }
    SECTION("allkeys-lru without maxmemory: a warning; with maxmemory: a failure; both say the fix") {
        relaytest::RedisServer server({"--maxmemory-policy", "allkeys-lru"});
        auto d = doctor(server.url());
        INFO(d.out);
        CHECK(has_line(d.out, "[WARN]", "maxmemory-policy is allkeys-lru"));
        CHECK(d.out.find("CONFIG SET maxmemory-policy noeviction") != std::string::npos);
        REQUIRE(server.client()->command({"CONFIG", "SET", "maxmemory", "100mb"}).ok());
        auto limited = doctor(server.url());
        CHECK(limited.failures == 1);
        CHECK(has_line(limited.out, "[FAIL]", "maxmemory-policy is allkeys-lru with maxmemory"));
    }
    SECTION("volatile-lru cannot evict keys without a TTL") {
        relaytest::RedisServer server({"--maxmemory-policy", "volatile-lru", "--maxmemory", "100mb"});
        CHECK(has_line(doctor(server.url()).out, "[ OK ]", "maxmemory-policy is volatile-lru"));
    }
    SECTION("CONFIG disabled: said, not failed") {
        relaytest::RedisServer server({"--appendonly", "no", "--rename-command", "CONFIG", ""});
        auto d = doctor(server.url());
        INFO(d.out);
        CHECK(d.failures == 0);
        CHECK(has_line(d.out, "[WARN]", "CONFIG GET save is not allowed"));
        CHECK(has_line(d.out, "[ OK ]", "maxmemory-policy is noeviction"));   // from INFO memory
    }
}

TEST_CASE("doctor fails an unreachable Redis, and a Redis URL without KEYRELAY_STORE_KEY", "[doctor][redis]") {
    auto d = doctor("redis://:pw@127.0.0.1:" + std::to_string(relaytest::free_port()) + "/0", false);
    INFO(d.out);
    CHECK(has_line(d.out, "[FAIL]", "KEYRELAY_REDIS_URL is set but KEYRELAY_STORE_KEY is not"));
    CHECK(has_line(d.out, "[FAIL]", "is unreachable"));
    CHECK(d.failures == 2);
    CHECK(d.out.find(":pw@") == std::string::npos);
    CHECK(doctor("rediss://127.0.0.1:6379").failures == 1);
    CHECK(doctor("").out.empty());   // the file store: no Redis checks
}
