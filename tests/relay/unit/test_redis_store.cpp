// The Redis connection store against a real redis-server: the layout, compare-and-set writes, the sealed record,
// and what happens when Redis goes away and comes back.
#include <catch2/catch.hpp>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "redis_server.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/store.h"

using namespace keyrelay;
using namespace keyrelay::relay;

namespace {

const std::string kKey(32, '\x11');
const std::string kOtherKey(32, '\x22');

struct RedisFixture {
    testutil::RedisServer server;
    std::unique_ptr<Redis> redis;
    std::unique_ptr<RedisConnectionStore> store;

    explicit RedisFixture(const std::string& key = kKey) {
        RedisOptions options;
        options.connect_timeout_ms = 500;
        options.command_timeout_ms = 500;
        redis = std::make_unique<Redis>(*RedisUrl::parse(server.url()), options);
        store = open(key);
    }
    std::unique_ptr<RedisConnectionStore> open(const std::string& key) {
        LeaseOptions lease;
        lease.lease_ms = 600;
        lease.max_wait_ms = 1800;
        return std::make_unique<RedisConnectionStore>(*redis, std::map<std::string, std::string>{{store_key_id(key), key}},
                                                      store_key_id(key), lease);
    }
};

Connection sample(const std::string& provider = "keap") {
    Connection c;
    c.provider = provider;
    c.tokens.access_token = "at-secret-" + provider + "-0001";
    c.tokens.refresh_token = "rt-secret-" + provider + "-0001";
    c.tokens.token_type = "bearer";
    c.tokens.scope = "full|ab123.infusionsoft.com";
    c.tokens.expires_in = 86400;
    c.tokens.obtained_at = 1767225600;
    c.tokens.expires_at = 1767312000;
    c.account = "ab123.infusionsoft.com";
    c.connected_at = 1767225000;
    c.refresh_token_issued_at = 1767225601;
    return c;
}

}  // namespace

TEST_CASE("redis store: one hash per connection with a plaintext version and the sealed record", "[redis][store]") {
    RedisFixture f;
    auto saved = f.store->save(sample());
    REQUIRE(saved.ok());
    CHECK(saved->version == 1);
    CHECK(f.server.query({"KEYS", "*"}) == std::vector<std::string>{"keyrelay:conn:keap"});
    CHECK(f.server.query_one({"TYPE", "keyrelay:conn:keap"}) == "hash");
    auto fields = f.server.query({"HKEYS", "keyrelay:conn:keap"});
    CHECK(std::set<std::string>(fields.begin(), fields.end()) == std::set<std::string>{"version", "record"});
    CHECK(f.server.query_one({"HGET", "keyrelay:conn:keap", "version"}) == "1");
    auto record = nlohmann::json::parse(f.server.query_one({"HGET", "keyrelay:conn:keap", "record"}));
    CHECK(record["id"] == "keap");
    CHECK(record["version"] == 1);
    CHECK(record["key_id"] == store_key_id(kKey));

    auto loaded = f.store->load("keap");
    REQUIRE(loaded.ok());
    REQUIRE(loaded->has_value());
    CHECK((*loaded)->tokens.refresh_token == "rt-secret-keap-0001");
    CHECK((*loaded)->version == 1);
    auto missing = f.store->load("jira");
    REQUIRE(missing.ok());
    CHECK_FALSE(missing->has_value());
    auto stamp = f.store->stamp("keap");
    REQUIRE(stamp.ok());
    CHECK(*stamp == "1");
}

TEST_CASE("redis store: no token, secret or account in plaintext in HGETALL or DUMP", "[redis][store][secrets]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample("keap")).ok());
    REQUIRE(f.store->save(sample("jira")).ok());
    std::string everything;
    for (const std::string& key : f.server.query({"KEYS", "*"})) {
        for (const auto& part : f.server.query({"HGETALL", key})) everything += part + "\n";
        everything += f.server.query_one({"DUMP", key});
    }
    CHECK_FALSE(everything.empty());
    for (const char* secret : {"at-secret", "rt-secret", "infusionsoft", "bearer", "full|"}) {
        CAPTURE(secret);
        CHECK(everything.find(secret) == std::string::npos);
    }
}

TEST_CASE("redis store: a write from a stale copy is refused and the version only grows", "[redis][store][cas]") {
    RedisFixture f;
    auto first = f.store->save(sample());
    REQUIRE(first.ok());
    Connection a = *first;   // two relays read version 1
    Connection b = *first;
    a.tokens.refresh_token = "rt-from-a";
    b.tokens.refresh_token = "rt-from-b";
    auto won = f.store->save(a);
    REQUIRE(won.ok());
    CHECK(won->version == 2);
    auto lost = f.store->save(b);
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.error().code == "store.conflict");
    CHECK(lost.error().message.find("version 1") != std::string::npos);
    auto stored = f.store->load("keap");
    REQUIRE(stored.ok());
    CHECK((*stored)->tokens.refresh_token == "rt-from-a");
    CHECK((*stored)->version == 2);

    SECTION("a new connection for a provider that exists is refused as a compare-and-set, accepted as replace") {
        auto fresh = f.store->save(sample());   // version 0: "nothing stored"
        REQUIRE_FALSE(fresh.ok());
        CHECK(fresh.error().code == "store.conflict");
        auto replaced = f.store->replace(sample());
        REQUIRE(replaced.ok());
        CHECK(replaced->version == 3);
        CHECK(f.server.query_one({"HGET", "keyrelay:conn:keap", "version"}) == "3");
    }
    SECTION("put stores a record with its own version, twice the same as once (migrate-store)") {
        Connection copy = sample();
        copy.version = 7;
        REQUIRE(f.store->put(copy).ok());
        REQUIRE(f.store->put(copy).ok());
        auto again = f.store->load("keap");
        REQUIRE(again.ok());
        CHECK((*again)->version == 7);
        CHECK(f.server.query_one({"HGET", "keyrelay:conn:keap", "version"}) == "7");
    }
}

TEST_CASE("redis store: load_all finds every connection; remove deletes one", "[redis][store]") {
    RedisFixture f;
    for (const char* p : {"keap", "jira", "custom"}) REQUIRE(f.store->save(sample(p)).ok());
    f.server.query({"SET", "keyrelay:session:unrelated", "x"});   // other keyrelay keys are not connections
    auto all = f.store->load_all();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 3);
    CHECK((*all)[0].provider == "custom");
    CHECK((*all)[1].provider == "jira");
    CHECK((*all)[2].provider == "keap");
    REQUIRE(f.store->remove("jira").ok());
    REQUIRE(f.store->remove("jira").ok());   // removing nothing is fine
    auto after = f.store->load_all();
    REQUIRE(after.ok());
    CHECK(after->size() == 2);
}

TEST_CASE("redis store: records move between the file store and Redis unchanged", "[redis][store]") {
    RedisFixture f;
    testutil::TempDir dir;
    FileConnectionStore file(dir.path(), {{store_key_id(kKey), kKey}}, store_key_id(kKey));
    REQUIRE(file.save(sample("keap")).ok());
    auto twice = file.load("keap");
    REQUIRE(twice.ok());
    REQUIRE(file.save(**twice).ok());   // version 2
    auto from_file = file.load_all();
    REQUIRE(from_file.ok());
    for (const Connection& c : *from_file) REQUIRE(f.store->put(c).ok());
    auto in_redis = f.store->load("keap");
    REQUIRE(in_redis.ok());
    CHECK((*in_redis)->version == 2);
    CHECK((*in_redis)->tokens.refresh_token == "rt-secret-keap-0001");
    testutil::TempDir back;
    FileConnectionStore file2(back.path(), {{store_key_id(kKey), kKey}}, store_key_id(kKey));
    REQUIRE(file2.put(**in_redis).ok());
    auto round = file2.load("keap");
    REQUIRE(round.ok());
    CHECK((*round)->version == 2);
}

TEST_CASE("redis store: another key is reported as a key problem, and rotate re-seals in place", "[redis][store][keys]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample()).ok());
    auto wrong = f.open(kOtherKey)->load("keap");
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error().code == "store.unknown_key_id");
    CHECK(wrong.error().message.find("keyrelay:conn:keap") != std::string::npos);

    RedisConnectionStore rotating(*f.redis, {{store_key_id(kKey), kKey}, {store_key_id(kOtherKey), kOtherKey}},
                                  store_key_id(kOtherKey), LeaseOptions{});
    auto n = rotating.rotate();
    REQUIRE(n.ok());
    CHECK(*n == 1);
    auto opened = f.open(kOtherKey)->load("keap");
    REQUIRE(opened.ok());
    CHECK((*opened)->version == 1);   // re-sealing is not a change of the connection
    CHECK((*opened)->tokens.refresh_token == "rt-secret-keap-0001");
    auto old = f.store->load("keap");
    REQUIRE_FALSE(old.ok());
    CHECK(old.error().code == "store.unknown_key_id");
}

TEST_CASE("redis store: a damaged record is store.corrupt, not a crash", "[redis][store][corrupt]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample()).ok());
    SECTION("versions disagree") {
        f.server.query({"HSET", "keyrelay:conn:keap", "version", "9"});
    }
    SECTION("record is not JSON") {
        f.server.query({"HSET", "keyrelay:conn:keap", "record", "{oops"});
    }
    SECTION("record missing") {
        f.server.query({"HDEL", "keyrelay:conn:keap", "record"});
    }
    auto r = f.store->load("keap");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.corrupt");
    CHECK_FALSE(r.error().hint.empty());
}

TEST_CASE("redis store: Redis stopped is store.unavailable within the timeouts, and it recovers by itself",
          "[redis][store][outage]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample()).ok());
    f.server.stop();
    auto started = std::chrono::steady_clock::now();
    auto r = f.store->load("keap");
    auto elapsed = std::chrono::steady_clock::now() - started;
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.unavailable");
    CHECK_FALSE(r.error().hint.empty());
    CHECK(elapsed < std::chrono::milliseconds(1500));
    auto w = f.store->save(sample("jira"));
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == "store.unavailable");
    CHECK_FALSE(f.redis->healthy());

    f.server.start();   // AOF on: the data is back
    std::this_thread::sleep_for(std::chrono::milliseconds(300));   // past the fail-fast window
    auto back = f.store->load("keap");
    REQUIRE(back.ok());
    REQUIRE(back->has_value());
    CHECK((*back)->version == 1);
    CHECK(f.redis->healthy());
}

TEST_CASE("redis store: a Redis that hangs gives store.unavailable after the command timeout, never a hang",
          "[redis][store][outage]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample()).ok());
    f.server.pause();
    auto started = std::chrono::steady_clock::now();
    auto r = f.store->stamp("keap");
    auto elapsed = std::chrono::steady_clock::now() - started;
    f.server.resume();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.unavailable");
    CHECK(elapsed < std::chrono::milliseconds(1500));
}

TEST_CASE("redis store: after Redis restarts, at most one call fails on the old connections", "[redis][store][outage]") {
    RedisFixture f;
    REQUIRE(f.store->save(sample()).ok());
    // Several pooled connections, all idle now.
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&] {
            for (int j = 0; j < 30; ++j) (void)f.store->stamp("keap");
        });
    }
    for (auto& t : threads) t.join();
    f.server.stop();
    f.server.start();
    int failed = 0;
    for (int i = 0; i < 5; ++i) {
        if (!f.store->load("keap").ok()) ++failed;
    }
    CHECK(failed <= 1);
    CHECK(f.store->load("keap").ok());
}
