// The refresh logic against a fake token endpoint that ROTATES refresh tokens like Keap and Atlassian: a refresh
// token works once; using an old one is invalid_grant.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "keyrelay/http.h"
#include "obs/metrics.h"
#include "state/store.h"
#include "fake_token_endpoint.h"
#include "temp_dir.h"
#include "state/tokens.h"

using namespace keyrelay;
using namespace keyrelay::relay;

namespace {

const std::string kKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

using FakeProvider = testutil::RotatingTokenEndpoint;

struct Fixture {
    relaytest::TempDir dir;
    Config config;
    std::unique_ptr<FileConnectionStore> store;
    Metrics metrics;
    std::atomic<int64_t> now{10000};
    FakeProvider provider{"rt-0"};

    Fixture() {
        ProviderConfig keap = builtin_keap();
        keap.oauth.token_url = "https://token.example/token";
        keap.client_id = "client";
        keap.client_secret = "secret";
        config.providers = {keap};
        auto keys = load_store_keys(dir.path(), kKeyHex, std::nullopt);
        REQUIRE(keys.ok());
        store = std::make_unique<FileConnectionStore>(dir.path(), keys->keys, keys->current_key_id);
        Connection c;
        c.provider = "keap";
        c.tokens.access_token = "at-0";
        c.tokens.refresh_token = "rt-0";
        c.tokens.expires_in = 2;
        c.tokens.obtained_at = now;
        c.tokens.expires_at = now + 2;
        c.account = "ab123.infusionsoft.com";
        c.connected_at = now;
        c.refresh_token_issued_at = now;
        REQUIRE(store->save(c).ok());
    }

    std::unique_ptr<TokenManager> manager() {
        return std::make_unique<TokenManager>(
            config, *store, [this](const std::string& p, const HttpRequest& r) { return provider(p, r); }, metrics,
            [this] { return now.load(); });
    }
    const ProviderConfig& keap() const { return config.providers[0]; }
};

}  // namespace

TEST_CASE("the proactive margin is min(configured, 300 s, expires_in / 10)", "[tokens]") {
    CHECK(refresh_margin(300, 86400) == 300);
    CHECK(refresh_margin(300, 3600) == 300);
    CHECK(refresh_margin(60, 3600) == 60);
    CHECK(refresh_margin(300, 600) == 60);
    CHECK(refresh_margin(300, 2) == 0);   // a 2-second token is refreshed at expiry, not on every call
    CHECK(refresh_margin(300, 0) == 0);   // unknown lifetime
}

TEST_CASE("a token that is not due is used without a refresh", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    auto c = m->fresh(f.keap());
    REQUIRE(c.ok());
    CHECK(c->tokens.access_token == "at-0");
    CHECK(f.provider.refreshes == 0);
}

TEST_CASE("50 concurrent callers at expiry cause exactly one refresh and all get the new token", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    f.now = 10002;   // expired
    std::vector<std::thread> threads;
    std::vector<std::string> seen(50);
    std::atomic<int> errors{0};
    for (int i = 0; i < 50; ++i) {
        threads.emplace_back([&, i] {
            auto c = m->fresh(f.keap());
            if (c) {
                seen[i] = c->tokens.access_token;
            } else {
                ++errors;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(errors == 0);
    CHECK(f.provider.refreshes == 1);
    CHECK(f.provider.failures == 0);
    for (const auto& s : seen) CHECK(s == "at-1");
    CHECK(f.metrics.refreshes("keap") == 1);
    // Persisted: the rotated refresh token is on disk.
    auto stored = f.store->load("keap");
    REQUIRE(stored.ok());
    REQUIRE(stored->has_value());
    CHECK((*stored)->tokens.refresh_token == "rt-1");
    CHECK((*stored)->last_refresh_result == "ok");
    CHECK((*stored)->last_refresh_at == 10002);
    CHECK((*stored)->refresh_token_issued_at == 10002);
}

TEST_CASE("two processes sharing a data dir refresh once under concurrent load (file lock, then re-read)",
          "[tokens]") {
    Fixture f;
    // Two managers with their own stores and caches stand for two relay processes.
    auto keys = load_store_keys(f.dir.path(), kKeyHex, std::nullopt);
    REQUIRE(keys.ok());
    FileConnectionStore other_store(f.dir.path(), keys->keys, keys->current_key_id);
    Metrics other_metrics;
    TokenManager a(f.config, *f.store, [&](const std::string& p, const HttpRequest& r) { return f.provider(p, r); },
                   f.metrics, [&] { return f.now.load(); });
    TokenManager b(f.config, other_store, [&](const std::string& p, const HttpRequest& r) { return f.provider(p, r); },
                   other_metrics, [&] { return f.now.load(); });
    REQUIRE(a.get("keap").ok());
    REQUIRE(b.get("keap").ok());   // both have the old token cached
    f.now = 10003;
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int i = 0; i < 25; ++i) {
        for (TokenManager* m : {&a, &b}) {
            threads.emplace_back([&, m] {
                if (!m->fresh(f.keap())) ++errors;
            });
        }
    }
    for (auto& t : threads) t.join();
    CHECK(errors == 0);
    CHECK(f.provider.refreshes == 1);
    CHECK(f.provider.failures == 0);
}

TEST_CASE("a 401 refreshes once; callers holding the old version after that do not refresh again", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    auto c = m->fresh(f.keap());
    REQUIRE(c.ok());
    uint64_t stale = c->version;
    auto r1 = m->fresh(f.keap(), RefreshReason::reactive, stale);
    REQUIRE(r1.ok());
    CHECK(r1->tokens.access_token == "at-1");
    auto r2 = m->fresh(f.keap(), RefreshReason::reactive, stale);   // a late caller with the same 401'd token
    REQUIRE(r2.ok());
    CHECK(r2->tokens.access_token == "at-1");
    CHECK(f.provider.refreshes == 1);
}

TEST_CASE("a dead grant marks needs_reauth after one attempt and never retries", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    f.provider.revoke();
    f.now = 10002;
    auto r = m->fresh(f.keap());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "connection.needs_reauth");
    CHECK(f.provider.failures == 1);
    for (int i = 0; i < 5; ++i) {
        auto again = m->fresh(f.keap());
        REQUIRE_FALSE(again.ok());
        CHECK(again.error().code == "connection.needs_reauth");
    }
    CHECK(f.provider.failures == 1);
    CHECK(m->needing_reauth() == 1);
    auto stored = f.store->load("keap");
    REQUIRE(stored.ok());
    CHECK((*stored)->needs_reauth);
    CHECK((*stored)->last_refresh_result == "oauth.invalid_grant");
}

TEST_CASE("a stored version newer than the one that got the 401 is used without a refresh", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    auto before = m->fresh(f.keap());
    REQUIRE(before.ok());
    // Another relay process refreshed and saved in the meantime.
    HttpRequest r{"POST", "https://token.example/token", {}, "grant_type=refresh_token&refresh_token=rt-0"};
    auto answer = f.provider("keap", r);
    REQUIRE(answer.ok());
    auto tokens = oauth2::parse_token_response(*answer, 10001);
    REQUIRE(tokens.ok());
    Connection c = *before;
    c.tokens = *tokens;
    REQUIRE(f.store->save(c).ok());
    auto fresh = m->fresh(f.keap(), RefreshReason::reactive, before->version);
    REQUIRE(fresh.ok());
    CHECK(fresh->tokens.access_token == "at-1");
    CHECK(f.provider.refreshes == 1);   // only the other process's
}

TEST_CASE("on invalid_grant the store is re-read once: a token rotated meanwhile by another program is used",
          "[tokens]") {
    Fixture f;
    std::atomic<bool> first{true};
    // A program that does not take the relay's lock rotates rt-0 while the relay's own refresh is in flight.
    TokenManager m(
        f.config, *f.store,
        [&](const std::string& p, const HttpRequest& r) {
            if (first.exchange(false)) {
                HttpRequest theirs{"POST", "https://token.example/token", {},
                                   "grant_type=refresh_token&refresh_token=rt-0"};
                auto answer = f.provider(p, theirs);
                auto tokens = oauth2::parse_token_response(*answer, f.now.load());
                auto current = f.store->load("keap");
                Connection c = **current;
                c.tokens = *tokens;
                (void)f.store->save(c);
            }
            return f.provider(p, r);   // rt-0 is dead now: invalid_grant
        },
        f.metrics, [&] { return f.now.load(); });
    f.now = 10002;
    auto fresh = m.fresh(f.keap());
    REQUIRE(fresh.ok());
    CHECK(fresh->tokens.access_token == "at-1");
    CHECK_FALSE(fresh->needs_reauth);
    CHECK(f.provider.failures == 1);
    CHECK(f.provider.refreshes == 1);
}

TEST_CASE("a transient refresh failure is reported, not turned into needs_reauth", "[tokens]") {
    Fixture f;
    auto m = f.manager();
    f.provider.status_override = 503;
    f.now = 10002;
    auto r = m->fresh(f.keap());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "connection.refresh_failed");
    auto stored = f.store->load("keap");
    REQUIRE(stored.ok());
    CHECK_FALSE((*stored)->needs_reauth);
    CHECK((*stored)->tokens.refresh_token == "rt-0");
    f.provider.status_override = 0;
    auto later = m->fresh(f.keap());
    REQUIRE(later.ok());
    CHECK(later->tokens.access_token == "at-1");
}

TEST_CASE("a refresh answer without refresh_token keeps the old refresh token (RFC 6749 §6)", "[tokens]") {
    Fixture f;
    f.provider.omit_refresh_token = true;
    auto m = f.manager();
    f.now = 10002;
    auto r = m->fresh(f.keap());
    REQUIRE(r.ok());
    CHECK(r->tokens.access_token == "at-1");
    CHECK(r->tokens.refresh_token == "rt-0");
    CHECK(r->refresh_token_issued_at == 10000);   // not rotated
}

TEST_CASE("keep-alive refreshes only connections whose refresh token is older than the configured age",
          "[tokens]") {
    Fixture f;
    f.config.keepalive_refresh_days = 30;
    auto m = f.manager();
    f.provider.delay_ms = 0;
    // The access token is refreshed often (and is not due now), but the refresh token is 29 days old: nothing.
    f.now = 10000 + 29 * 86400;
    auto stored = f.store->load("keap");
    Connection c = **stored;
    c.tokens.expires_at = f.now + 3600;
    c.tokens.expires_in = 7200;
    REQUIRE(f.store->save(c).ok());
    CHECK(m->keepalive_pass() == 0);
    CHECK(f.provider.refreshes == 0);
    f.now = 10000 + 30 * 86400;
    CHECK(m->keepalive_pass() == 1);
    CHECK(f.provider.refreshes == 1);
    CHECK(m->keepalive_pass() == 0);   // the new refresh token is fresh
}

TEST_CASE("a provider that is not connected is reported as such", "[tokens]") {
    Fixture f;
    REQUIRE(f.store->remove("keap").ok());
    auto m = f.manager();
    auto r = m->fresh(f.keap());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "connection.not_connected");
}
