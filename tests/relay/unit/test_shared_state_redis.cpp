// Sessions, the login throttle and OAuth states in Redis, as several relays see them: each "relay" here is its own
// store object on its own Redis client, sharing one redis-server.
#include <catch2/catch.hpp>

#include <atomic>
#include <ctime>
#include <thread>

#include "redis_server.h"
#include "state/redis.h"
#include "state/login_throttle.h"
#include "state/oauth_states.h"
#include "state/sessions.h"

using namespace keyrelay::relay;

namespace {

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');

// Every key and value in Redis (DUMP of each key, which holds the raw bytes whatever the type).
std::string everything_in(Redis& r) {
    std::string all;
    auto keys = r.command({"KEYS", "*"});
    REQUIRE(keys.ok());
    for (const auto& k : keys->elements) {
        all += k.str + "\n";
        auto dump = r.command({"DUMP", k.str});
        REQUIRE(dump.ok());
        all += dump->str + "\n";
    }
    return all;
}

// A relay's own connection pool to the test server.
std::unique_ptr<Redis> client_of(const testutil::RedisServer& server, int64_t timeout_ms = 500) {
    return std::make_unique<Redis>(*RedisUrl::parse(server.url()), RedisOptions{timeout_ms, timeout_ms, 16});
}

// Redis expires keys on its own clock: the tests' times are near the real now.
int64_t unix_time_for_tests() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace

TEST_CASE("a session made on one relay is found on another, and a logout on either ends it on both", "[redis]") {
    testutil::RedisServer server("test-password");
    auto ra = client_of(server);
    auto rb = client_of(server);
    RedisSessionStore a(*ra, 3600);
    RedisSessionStore b(*rb, 3600);
    const int64_t now = unix_time_for_tests();
    auto id = a.create("alice", now);
    REQUIRE(id.ok());
    auto seen = b.find(*id, now + 1);
    REQUIRE(seen.ok());
    REQUIRE(seen->has_value());
    CHECK((*seen)->user == "alice");
    CHECK((*seen)->expires_at == now + 3600);

    SECTION("the key is the id's hash, the value holds no id, and Redis ends it with the session") {
        auto ttl = ra->command({"PEXPIRETIME", redis_session_key(sha256_hex(*id))});
        REQUIRE(ttl.ok());
        CHECK(ttl->integer == (now + 3600) * 1000);
        CHECK(everything_in(*ra).find(*id) == std::string::npos);
    }
    SECTION("logout") {
        REQUIRE(b.remove(*id).ok());
        CHECK_FALSE(a.find(*id, now + 2)->has_value());
        CHECK_FALSE(b.find_by_hash(sha256_hex(*id), now + 2)->has_value());
    }
    SECTION("expiry") { CHECK_FALSE(a.find(*id, now + 3600)->has_value()); }
    SECTION("unknown and empty ids") {
        CHECK_FALSE(a.find("not-" + *id, now)->has_value());
        CHECK_FALSE(a.find("", now)->has_value());
    }
}

TEST_CASE("relays on one Redis share the login throttle with the file store's rules", "[redis]") {
    testutil::RedisServer server("test-password");
    auto ra = client_of(server);
    auto rb = client_of(server);
    RedisLoginThrottle a(*ra, 5, 300);
    RedisLoginThrottle b(*rb, 5, 300);
    const int64_t t0 = unix_time_for_tests();
    for (int i = 0; i < 5; ++i) {
        CHECK(*b.retry_after("10.0.0.1", t0 + i) == 0);
        REQUIRE((i % 2 == 0 ? a : b).record_failure("10.0.0.1", "victim", t0 + i).ok());
    }
    CHECK(*a.retry_after("10.0.0.1", t0 + 5) == 295);   // the first failure (t0) leaves at t0 + 300
    CHECK(*b.retry_after("10.0.0.1", t0 + 299) == 1);
    CHECK(*b.retry_after("10.0.0.1", t0 + 300) == 0);
    CHECK(*b.retry_after("10.0.0.2", t0 + 5) == 0);   // other addresses are not affected

    SECTION("a success clears only its own username's failures, on every relay") {
        REQUIRE(b.record_success("10.0.0.1", "demo", t0 + 6).ok());
        CHECK(*a.retry_after("10.0.0.1", t0 + 6) == 294);
        REQUIRE(b.record_success("10.0.0.1", "victim", t0 + 6).ok());
        CHECK(*a.retry_after("10.0.0.1", t0 + 6) == 0);
    }
    SECTION("two failures in the same second count twice, and an address keeps at most the limit") {
        for (int i = 0; i < 8; ++i) REQUIRE(a.record_failure("10.0.0.3", "x", t0).ok());
        auto n = ra->command({"ZCARD", std::string(kRedisKeyPrefix) + "login-failures:" + sha256_hex("10.0.0.3")});
        REQUIRE(n.ok());
        CHECK(n->integer == 5);
        CHECK(*b.retry_after("10.0.0.3", t0 + 1) == 299);
    }
    SECTION("Redis holds neither the address nor the username, and forgets them after the window") {
        std::string all = everything_in(*ra);
        CHECK(all.find("10.0.0.1") == std::string::npos);
        CHECK(all.find("victim") == std::string::npos);
        auto ttl = ra->command({"TTL", std::string(kRedisKeyPrefix) + "login-failures:" + sha256_hex("10.0.0.1")});
        REQUIRE(ttl.ok());
        CHECK(ttl->integer > 0);
        CHECK(ttl->integer <= 300);
    }
}

TEST_CASE("failures spread over more than the window never throttle, in Redis either", "[redis]") {
    testutil::RedisServer server("test-password");
    auto r = client_of(server);
    RedisLoginThrottle t(*r, 5, 300);
    const int64_t t0 = unix_time_for_tests() - 2000;
    for (int i = 0; i < 20; ++i) {
        CHECK(*t.retry_after("a", t0 + i * 100) == 0);
        REQUIRE(t.record_failure("a", "demo", t0 + i * 100).ok());
    }
}

TEST_CASE("an OAuth state put by one relay is taken once, by exactly one relay", "[redis]") {
    testutil::RedisServer server("test-password");
    auto ra = client_of(server);
    auto rb = client_of(server);
    RedisStateStore a(*ra, {{"k1", kKey}}, "k1");
    RedisStateStore b(*rb, {{"k1", kKey}}, "k1");
    const int64_t now = unix_time_for_tests();
    const std::string verifier = "pkce-verifier-" + random_token(24);
    REQUIRE(a.put("state-1", PendingAuthorization{"keap", verifier, "session-hash", now + 600}, now).ok());

    SECTION("sealed in Redis: no state value, no verifier; gone when it expires") {
        std::string all = everything_in(*ra);
        CHECK(all.find("state-1") == std::string::npos);
        CHECK(all.find(verifier) == std::string::npos);
        auto at = ra->command({"PEXPIRETIME", redis_state_key("state-1")});
        REQUIRE(at.ok());
        CHECK(at->integer == (now + 600) * 1000);
    }
    SECTION("taken on the other relay, then never again") {
        auto first = b.take("state-1", now + 1);
        REQUIRE(first.ok());
        REQUIRE(first->has_value());
        CHECK((*first)->provider == "keap");
        CHECK((*first)->pkce_verifier == verifier);
        CHECK((*first)->session_hash == "session-hash");
        CHECK_FALSE(a.take("state-1", now + 1)->has_value());
        CHECK_FALSE(b.take("never-issued", now)->has_value());
    }
    SECTION("two relays racing for it: one wins") {
        std::atomic<int> winners{0};
        std::thread other([&] {
            if (auto t = b.take("state-1", now + 1); t.ok() && t->has_value()) ++winners;
        });
        if (auto t = a.take("state-1", now + 1); t.ok() && t->has_value()) ++winners;
        other.join();
        CHECK(winners == 1);
    }
    SECTION("expired: refused and consumed") {
        CHECK_FALSE(b.take("state-1", now + 600)->has_value());
        CHECK(ra->command({"EXISTS", redis_state_key("state-1")})->integer == 0);
    }
    SECTION("a relay with another store key refuses it, naming KEYRELAY_STORE_KEY") {
        RedisStateStore stranger(*rb, {{"k2", kOtherKey}}, "k2");
        auto t = stranger.take("state-1", now + 1);
        REQUIRE_FALSE(t.ok());
        CHECK(t.error().code == "store.wrong_key");
        CHECK(t.error().hint.find("KEYRELAY_STORE_KEY") != std::string::npos);
    }
}

TEST_CASE("OAuth states in flight stay bounded per session; the newest are kept", "[redis]") {
    testutil::RedisServer server("test-password");
    auto r = client_of(server);
    RedisStateStore s(*r, {{"k1", kKey}}, "k1", 3);
    const int64_t now = unix_time_for_tests();
    for (int i = 0; i < 10; ++i) {
        REQUIRE(s.put("s" + std::to_string(i), PendingAuthorization{"keap", "", "hammer", now + 600 + i}, now).ok());
    }
    REQUIRE(s.put("other", PendingAuthorization{"jira", "", "someone-else", now + 600}, now).ok());
    auto keys = r->command({"KEYS", std::string(kRedisKeyPrefix) + "oauth-state:*"});
    REQUIRE(keys.ok());
    CHECK(keys->elements.size() == 4);   // 3 of "hammer", 1 of "someone-else"
    CHECK(s.take("s9", now)->has_value());
    CHECK(s.take("s7", now)->has_value());
    CHECK_FALSE(s.take("s0", now)->has_value());
    CHECK(s.take("other", now)->has_value());
}

TEST_CASE("while Redis is down, sessions, the throttle and states answer store.unavailable, then recover",
          "[redis]") {
    testutil::RedisServer server("test-password");
    auto r = client_of(server, 200);
    RedisSessionStore sessions(*r, 3600);
    RedisLoginThrottle throttle(*r, 5, 300);
    RedisStateStore states(*r, {{"k1", kKey}}, "k1");
    const int64_t now = unix_time_for_tests();
    auto id = sessions.create("alice", now);
    REQUIRE(id.ok());
    server.stop();

    auto started = std::chrono::steady_clock::now();
    auto found = sessions.find(*id, now);
    REQUIRE_FALSE(found.ok());
    CHECK(found.error().code == "store.unavailable");
    CHECK_FALSE(found.error().hint.empty());
    CHECK(throttle.retry_after("10.0.0.1", now).error().code == "store.unavailable");
    CHECK(throttle.record_failure("10.0.0.1", "x", now).error().code == "store.unavailable");
    CHECK(states.put("s", PendingAuthorization{"keap", "", "h", now + 600}, now).error().code == "store.unavailable");
    CHECK(states.take("s", now).error().code == "store.unavailable");
    CHECK(sessions.create("bob", now).error().code == "store.unavailable");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));   // bounded, never a hang

    server.start();   // AOF on: the session survived the restart, and the relay reconnects by itself
    auto back = sessions.find(*id, now);
    for (int i = 0; i < 40 && !back.ok(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        back = sessions.find(*id, now);
    }
    REQUIRE(back.ok());
    CHECK(back->has_value());
}
