// The refresh across relays sharing one Redis: several TokenManagers, each with its own Redis client, cache and
// single flight, stand for several relay processes.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "config.h"
#include "fake_token_endpoint.h"
#include "obs/metrics.h"
#include "redis_server.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/store.h"
#include "state/tokens.h"

using namespace keyrelay;
using namespace keyrelay::relay;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

const std::string kKey(32, '\x11');

// One relay process: its own Redis client, store, metrics and token manager.
struct Replica {
    Redis redis;
    RedisConnectionStore store;
    Metrics metrics;
    TokenManager tokens;

    Replica(const std::string& url, const Config& config, testutil::RotatingTokenEndpoint& provider,
            std::atomic<int64_t>& now)
        : redis(*RedisUrl::parse(url), RedisOptions{300, 300, 16}),
          store(redis, {{store_key_id(kKey), kKey}}, store_key_id(kKey), lease_options()),
          tokens(config, store, [&provider](const std::string& p, const HttpRequest& r) { return provider(p, r); },
                 metrics, [&now] { return now.load(); }) {}

    static LeaseOptions lease_options() {
        LeaseOptions o;
        o.lease_ms = 600;
        o.max_wait_ms = 1800;
        return o;
    }
};

struct World {
    testutil::RedisServer server;
    Config config;
    testutil::RotatingTokenEndpoint provider{"rt-0"};
    std::atomic<int64_t> now{10000};

    World() {
        ProviderConfig keap = builtin_keap();
        keap.oauth.token_url = "https://token.example/token";
        keap.client_id = "client";
        keap.client_secret = "secret";
        config.providers = {keap};
        Replica seed(server.url(), config, provider, now);
        Connection c;
        c.provider = "keap";
        c.tokens.access_token = "at-0";
        c.tokens.refresh_token = "rt-0";
        c.tokens.expires_in = 2;
        c.tokens.obtained_at = now;
        c.tokens.expires_at = now + 2;
        c.connected_at = now;
        c.refresh_token_issued_at = now;
        REQUIRE(seed.tokens.save(c).ok());
    }
    std::unique_ptr<Replica> replica() { return std::make_unique<Replica>(server.url(), config, provider, now); }
    const ProviderConfig& keap() const { return config.providers[0]; }
    uint64_t stored_version() { return std::stoull(server.query_one({"HGET", "keyrelay:conn:keap", "version"})); }
};

}  // namespace

TEST_CASE("redis tokens: three relays with 20 callers each at expiry refresh exactly once", "[redis][tokens]") {
    World w;
    w.provider.delay_ms = 150;
    std::vector<std::unique_ptr<Replica>> relays;
    for (int i = 0; i < 3; ++i) relays.push_back(w.replica());
    for (auto& r : relays) REQUIRE(r->tokens.fresh(w.keap()).ok());   // all have at-0 cached
    w.now = 10002;   // expired
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    std::mutex seen_mutex;
    std::set<std::string> seen;
    for (int i = 0; i < 20; ++i) {
        for (auto& r : relays) {
            threads.emplace_back([&, relay = r.get()] {
                auto c = relay->tokens.fresh(w.keap());
                if (!c) {
                    ++errors;
                    return;
                }
                std::lock_guard<std::mutex> lock(seen_mutex);
                seen.insert(c->tokens.access_token);
            });
        }
    }
    for (auto& t : threads) t.join();
    CHECK(errors == 0);
    CHECK(w.provider.refreshes == 1);
    CHECK(w.provider.failures == 0);
    CHECK(seen == std::set<std::string>{"at-1"});
    CHECK(w.stored_version() == 2);
    uint64_t waits = 0;
    for (auto& r : relays) waits += r->metrics.lock_waits();
    CHECK(waits >= 1);   // the other relays' leaders waited for the lease, then used the stored connection
    CHECK(w.server.query_one({"EXISTS", "keyrelay:lock:refresh:keap"}) == "0");   // released
}

TEST_CASE("redis tokens: the steady state costs one Redis command per call", "[redis][tokens][roundtrips]") {
    World w;
    auto relay = w.replica();
    REQUIRE(relay->tokens.fresh(w.keap()).ok());   // loaded and cached
    w.server.query({"CONFIG", "RESETSTAT"});
    constexpr int kCalls = 200;
    for (int i = 0; i < kCalls; ++i) REQUIRE(relay->tokens.fresh(w.keap()).ok());
    auto stats = w.server.query({"INFO", "commandstats"}).front();
    // "cmdstat_hget:calls=200,..." and no other command of ours (CONFIG and INFO are the test's).
    CAPTURE(stats);
    CHECK(stats.find("cmdstat_hget:calls=" + std::to_string(kCalls) + ",") != std::string::npos);
    for (const char* other : {"cmdstat_hmget", "cmdstat_scan", "cmdstat_evalsha", "cmdstat_set:", "cmdstat_get:"}) {
        CAPTURE(other);
        CHECK(stats.find(other) == std::string::npos);
    }
}

TEST_CASE("redis tokens: a relay sees another relay's refresh through the version and uses it", "[redis][tokens]") {
    World w;
    auto a = w.replica();
    auto b = w.replica();
    REQUIRE(b->tokens.fresh(w.keap()).ok());   // b caches at-0
    w.now = 10002;
    auto refreshed = a->tokens.fresh(w.keap());
    REQUIRE(refreshed.ok());
    CHECK(refreshed->tokens.access_token == "at-1");
    auto seen = b->tokens.fresh(w.keap());   // the version moved: b re-reads instead of refreshing
    REQUIRE(seen.ok());
    CHECK(seen->tokens.access_token == "at-1");
    CHECK(w.provider.refreshes == 1);
    CHECK(b->metrics.refreshes("keap") == 0);
}

namespace {

// Stalls the first refresh after the provider rotated the token (the relay holds new tokens it has not saved),
// until released: what a SIGSTOP between the token answer and the save looks like.
struct Stall {
    std::mutex m;
    std::condition_variable cv;
    bool stalled = false;
    bool released = false;
    void operator()(int n) {
        if (n != 1) return;
        std::unique_lock<std::mutex> lock(m);
        stalled = true;
        cv.notify_all();
        cv.wait(lock, [this] { return released; });
    }
    void wait_stalled() {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [this] { return stalled; });
    }
    void release() {
        std::lock_guard<std::mutex> lock(m);
        released = true;
        cv.notify_all();
    }
};

}  // namespace

TEST_CASE("redis tokens: a relay that stalled past its lease cannot overwrite a newer record", "[redis][tokens][stall]") {
    World w;
    w.provider.delay_ms = 0;
    auto a = w.replica();
    auto b = w.replica();
    Stall stall;
    w.provider.after_rotation = [&](int n) { stall(n); };
    w.now = 10002;
    std::optional<Result<Connection>> a_result;
    std::thread ta([&] { a_result = a->tokens.fresh(w.keap()); });
    stall.wait_stalled();   // a spent rt-0 and holds at-1/rt-1, unsaved
    // Its lease runs out (a stalled process cannot renew it): another relay takes over.
    w.server.query({"DEL", "keyrelay:lock:refresh:keap"});

    SECTION("the other relay finds rt-0 dead and gives up; the stalled relay's valid tokens then win") {
        auto b_result = b->tokens.fresh(w.keap());
        REQUIRE_FALSE(b_result.ok());
        CHECK(b_result.error().code == "connection.needs_reauth");
        CHECK(w.stored_version() == 2);
        stall.release();
        ta.join();
        REQUIRE(a_result->ok());
        CHECK((*a_result)->tokens.access_token == "at-1");
        CHECK(w.stored_version() == 3);   // a compare-and-set on b's version, never a blind write
        auto now_b = b->tokens.fresh(w.keap());
        REQUIRE(now_b.ok());
        CHECK(now_b->tokens.refresh_token == "rt-1");
        CHECK_FALSE(now_b->needs_reauth);
    }
    SECTION("someone stored a newer connection meanwhile; the stalled relay's write is refused and it uses that") {
        Connection reconnected;
        reconnected.provider = "keap";
        reconnected.tokens.access_token = "at-reconnected";
        reconnected.tokens.refresh_token = "rt-reconnected";
        reconnected.tokens.expires_in = 3600;
        reconnected.tokens.expires_at = w.now + 3600;
        REQUIRE(b->tokens.save(reconnected).ok());   // e.g. a user pressed Connect: version 2
        stall.release();
        ta.join();
        REQUIRE(a_result->ok());
        CHECK((*a_result)->tokens.access_token == "at-reconnected");
        CHECK(w.stored_version() == 2);
        auto stored = b->store.load("keap");
        REQUIRE(stored.ok());
        CHECK((*stored)->tokens.refresh_token == "rt-reconnected");
    }
}

TEST_CASE("redis tokens: with Redis down a cached unexpired token is served, an expired one is 503-able, and it "
          "recovers", "[redis][tokens][outage]") {
    World w;
    w.provider.delay_ms = 0;
    auto relay = w.replica();
    REQUIRE(relay->tokens.fresh(w.keap()).ok());   // at-0 cached, expires at 10002
    w.server.stop();

    auto served = relay->tokens.fresh(w.keap());
    REQUIRE(served.ok());
    CHECK(served->tokens.access_token == "at-0");
    CHECK(relay->metrics.store_errors() >= 1);

    w.now = 10002;   // expired: a refresh is needed, and it needs Redis
    auto started = steady_clock::now();
    auto refused = relay->tokens.fresh(w.keap());
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == "store.unavailable");
    CHECK(steady_clock::now() - started < milliseconds(1000));
    CHECK(w.provider.refreshes == 0);   // never spend the refresh token when the new one cannot be saved

    auto another = w.replica();   // nothing cached: store.unavailable too
    auto cold = another->tokens.fresh(w.keap());
    REQUIRE_FALSE(cold.ok());
    CHECK(cold.error().code == "store.unavailable");

    w.server.start();
    std::this_thread::sleep_for(milliseconds(300));
    auto back = relay->tokens.fresh(w.keap());
    REQUIRE(back.ok());
    CHECK(back->tokens.access_token == "at-1");
    CHECK(w.provider.refreshes == 1);
}

TEST_CASE("redis tokens: a 401'd token is not served from memory while Redis is down", "[redis][tokens][outage]") {
    World w;
    auto relay = w.replica();
    auto c = relay->tokens.fresh(w.keap());
    REQUIRE(c.ok());
    w.server.stop();
    auto r = relay->tokens.fresh(w.keap(), RefreshReason::reactive, c->version);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.unavailable");
}

TEST_CASE("file tokens: a refresh that waits for another process's refresh lock counts a lock wait", "[tokens][lock]") {
    testutil::TempDir dir;
    FileConnectionStore store(dir.path(), {{store_key_id(kKey), kKey}}, store_key_id(kKey));
    auto held = store.lock_refresh("keap");
    REQUIRE(held.ok());
    CHECK_FALSE((*held)->waited());
    std::atomic<bool> waited{false};
    std::thread t([&] {
        FileConnectionStore other(dir.path(), {{store_key_id(kKey), kKey}}, store_key_id(kKey));
        auto second = other.lock_refresh("keap");
        if (second) waited = (*second)->waited();
    });
    std::this_thread::sleep_for(milliseconds(100));
    held->reset();
    t.join();
    CHECK(waited.load());
}
