// The refresh lease across relays sharing one Redis (state/refresh_lease.h), against a real redis-server.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "redis_server.h"
#include "state/redis.h"
#include "state/refresh_lease.h"

using namespace keyrelay;
using namespace keyrelay::relay;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

struct LeaseFixture {
    testutil::RedisServer server;
    Redis redis{*RedisUrl::parse(server.url()), RedisOptions{500, 500, 16}};
    LeaseOptions options;
    const std::string key = refresh_lease_key("keap");

    LeaseFixture() {
        options.lease_ms = 600;
        options.max_wait_ms = 3000;
    }
    int64_t ttl_ms() { return std::stoll(server.query_one({"PTTL", key})); }
};

}  // namespace

TEST_CASE("lease: the key holds a random owner token with a TTL, and is deleted on release", "[redis][lease]") {
    LeaseFixture f;
    CHECK(f.key == "keyrelay:lock:refresh:keap");
    std::string owner;
    {
        auto lease = RedisRefreshLease::acquire(f.redis, f.key, f.options);
        REQUIRE(lease.ok());
        owner = (*lease)->owner();
        CHECK(owner.size() >= 16);
        CHECK(f.server.query_one({"GET", f.key}) == owner);
        CHECK(f.ttl_ms() > 0);
        CHECK(f.ttl_ms() <= 600);
        CHECK_FALSE((*lease)->waited());
    }
    CHECK(f.server.query_one({"EXISTS", f.key}) == "0");
    auto second = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE(second.ok());
    CHECK((*second)->owner() != owner);
}

TEST_CASE("lease: a second owner waits until the first releases, and says it waited", "[redis][lease]") {
    LeaseFixture f;
    auto first = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE(first.ok());
    std::atomic<bool> second_has_it{false};
    std::atomic<bool> waited{false};
    std::thread t([&] {
        auto second = RedisRefreshLease::acquire(f.redis, f.key, f.options);
        if (second) {
            waited = (*second)->waited();
            second_has_it = true;
        }
    });
    std::this_thread::sleep_for(milliseconds(300));
    CHECK_FALSE(second_has_it.load());
    auto released_at = steady_clock::now();
    first->reset();
    t.join();
    CHECK(second_has_it.load());
    CHECK(waited.load());
    CHECK(steady_clock::now() - released_at < milliseconds(200));   // polls every 25-50 ms
}

TEST_CASE("lease: it is renewed while held, longer than the lease itself", "[redis][lease]") {
    LeaseFixture f;
    auto lease = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE(lease.ok());
    std::this_thread::sleep_for(milliseconds(1500));   // 2.5 leases
    CHECK(f.server.query_one({"GET", f.key}) == (*lease)->owner());
    CHECK_FALSE((*lease)->lost());
    LeaseOptions impatient = f.options;
    impatient.max_wait_ms = 700;
    auto other = RedisRefreshLease::acquire(f.redis, f.key, impatient);
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().code == "store.lock_timeout");
    CHECK_FALSE(other.error().hint.empty());
}

TEST_CASE("lease: a non-owner can neither renew nor release it", "[redis][lease]") {
    LeaseFixture f;
    auto taken = try_take_lease(f.redis, f.key, "owner-a", 5000);
    REQUIRE(taken.ok());
    CHECK(*taken);
    auto again = try_take_lease(f.redis, f.key, "owner-b", 5000);
    REQUIRE(again.ok());
    CHECK_FALSE(*again);
    auto renew = renew_lease(f.redis, f.key, "owner-b", 60000);
    REQUIRE(renew.ok());
    CHECK_FALSE(*renew);
    CHECK(f.ttl_ms() <= 5000);
    auto release = release_lease(f.redis, f.key, "owner-b");
    REQUIRE(release.ok());
    CHECK_FALSE(*release);
    CHECK(f.server.query_one({"GET", f.key}) == "owner-a");
    auto own = release_lease(f.redis, f.key, "owner-a");
    REQUIRE(own.ok());
    CHECK(*own);
    CHECK(f.server.query_one({"EXISTS", f.key}) == "0");
}

TEST_CASE("lease: an expired lease is taken over; the old holder then cannot renew or release the new one",
          "[redis][lease]") {
    LeaseFixture f;
    // A holder that stalled (SIGSTOP): it took the lease and then stopped renewing it.
    REQUIRE(*try_take_lease(f.redis, f.key, "stalled", 200));
    auto started = steady_clock::now();
    auto other = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE(other.ok());
    CHECK((*other)->waited());
    CHECK(steady_clock::now() - started >= milliseconds(150));
    CHECK(steady_clock::now() - started < milliseconds(600));
    CHECK_FALSE(*renew_lease(f.redis, f.key, "stalled", 60000));
    CHECK_FALSE(*release_lease(f.redis, f.key, "stalled"));
    CHECK(f.server.query_one({"GET", f.key}) == (*other)->owner());
}

TEST_CASE("lease: a holder whose lease was taken over notices it is lost", "[redis][lease]") {
    LeaseFixture f;
    auto lease = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE(lease.ok());
    f.server.query({"SET", f.key, "someone-else"});   // as if it had expired and another relay took it
    std::this_thread::sleep_for(milliseconds(500));   // past one renewal (every 200 ms)
    CHECK((*lease)->lost());
    lease->reset();
    CHECK(f.server.query_one({"GET", f.key}) == "someone-else");   // not released by the old holder
}

TEST_CASE("lease: Redis down is store.unavailable, not a wait", "[redis][lease][outage]") {
    LeaseFixture f;
    f.server.stop();
    auto started = steady_clock::now();
    auto lease = RedisRefreshLease::acquire(f.redis, f.key, f.options);
    REQUIRE_FALSE(lease.ok());
    CHECK(lease.error().code == "store.unavailable");
    CHECK(steady_clock::now() - started < milliseconds(1000));
}
