#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "state/login_throttle.h"
#include "state/oauth_states.h"
#include "state/sessions.h"
#include "temp_dir.h"

using namespace keyrelay::relay;

TEST_CASE("five failed logins within five minutes throttle the address until the oldest leaves the window",
          "[throttle]") {
    FileLoginThrottle t(5, 300);
    const int64_t t0 = 1000;
    for (int i = 0; i < 5; ++i) {
        CHECK(*t.retry_after("10.0.0.1", t0 + i) == 0);
        (void)t.record_failure("10.0.0.1", "demo", t0 + i);
    }
    CHECK(*t.retry_after("10.0.0.1", t0 + 5) == 295);    // the first failure (t0) leaves at t0 + 300
    CHECK(*t.retry_after("10.0.0.1", t0 + 299) == 1);
    CHECK(*t.retry_after("10.0.0.1", t0 + 300) == 0);
    SECTION("other addresses are not affected") { CHECK(*t.retry_after("10.0.0.2", t0 + 5) == 0); }
    SECTION("a success clears that username's failures") {
        (void)t.record_success("10.0.0.1", "demo", t0 + 6);
        CHECK(*t.retry_after("10.0.0.1", t0 + 6) == 0);
    }
}

TEST_CASE("a success clears only its own username's failures; the address keeps counting the others", "[throttle]") {
    FileLoginThrottle t(5, 300);
    for (int i = 0; i < 4; ++i) (void)t.record_failure("10.0.0.1", "victim", 1000 + i);
    (void)t.record_success("10.0.0.1", "demo", 1004);
    CHECK(*t.retry_after("10.0.0.1", 1005) == 0);
    (void)t.record_failure("10.0.0.1", "victim", 1005);
    CHECK(*t.retry_after("10.0.0.1", 1006) == 294);
    SECTION("failures under any username count toward the address's limit") {
        FileLoginThrottle u(5, 300);
        for (const char* name : {"a", "b", "c", "d", "e"}) (void)u.record_failure("10.0.0.9", name, 2000);
        CHECK(*u.retry_after("10.0.0.9", 2001) > 0);
    }
}

TEST_CASE("failures spread over more than the window never throttle", "[throttle]") {
    FileLoginThrottle t(5, 300);
    for (int i = 0; i < 20; ++i) {
        CHECK(*t.retry_after("a", i * 100) == 0);
        (void)t.record_failure("a", "demo", i * 100);
    }
}

TEST_CASE("throttles on one data dir share their count, and the file holds no username", "[throttle]") {
    relaytest::TempDir dir;
    FileLoginThrottle first(5, 300, dir.path());
    FileLoginThrottle second(5, 300, dir.path());
    for (int i = 0; i < 5; ++i) (void)first.record_failure("10.0.0.1", "victim", 1000 + i);
    CHECK(*second.retry_after("10.0.0.1", 1006) == 294);
    (void)second.record_success("10.0.0.1", "victim", 1007);
    CHECK(*first.retry_after("10.0.0.1", 1008) == 0);

    std::ifstream in(dir.path() + "/login_failures.json");
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str().find("victim") == std::string::npos);
    struct stat st {};
    REQUIRE(::stat((dir.path() + "/login_failures.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("an OAuth state is accepted once, and never after it expired", "[state]") {
    MemoryStateStore s;
    (void)s.put("state-1", PendingAuthorization{"keap", "verifier", "sess", 1600}, 1000);
    auto first = *s.take("state-1", 1500);
    REQUIRE(first.has_value());
    CHECK(first->provider == "keap");
    CHECK(first->pkce_verifier == "verifier");
    CHECK_FALSE(s.take("state-1", 1500)->has_value());   // replay

    (void)s.put("state-2", PendingAuthorization{"jira", "", "sess", 1600}, 1000);
    CHECK_FALSE(s.take("state-2", 1600)->has_value());   // expired
    CHECK(s.size() == 0);                               // and gone
    CHECK_FALSE(s.take("never-issued", 1000)->has_value());
}

TEST_CASE("the pending-state table stays bounded", "[state]") {
    MemoryStateStore s(3);
    for (int i = 0; i < 10; ++i) (void)s.put("s" + std::to_string(i), PendingAuthorization{"keap", "", "x", 2000}, 1000);
    CHECK(s.size() <= 3);
    CHECK(s.take("s9", 1000)->has_value());   // the newest is kept
}

TEST_CASE("sessions are found by id until they expire, and not after removal", "[sessions]") {
    FileSessionStore store(3600);
    std::string id = *store.create("demo", 1000);
    CHECK(id.size() >= 40);
    auto s = *store.find(id, 2000);
    REQUIRE(s.has_value());
    CHECK(s->user == "demo");
    CHECK_FALSE(store.find(id, 4600)->has_value());
    CHECK_FALSE(store.find("not-" + id, 2000)->has_value());
    CHECK_FALSE(store.find("", 2000)->has_value());
    REQUIRE(store.remove(id).ok());
    CHECK_FALSE(store.find(id, 2000)->has_value());
    CHECK(*store.create("demo", 1000) != id);
}

TEST_CASE("sessions in a data dir are shared between stores and hold only hashes of the ids", "[sessions]") {
    relaytest::TempDir dir;
    FileSessionStore a(3600, dir.path());
    FileSessionStore b(3600, dir.path());
    std::string id = *a.create("alice", 1000);
    auto seen = *b.find(id, 1001);   // another relay process on the same data dir
    REQUIRE(seen.has_value());
    CHECK(seen->user == "alice");

    std::ifstream in(dir.path() + "/sessions.json");
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str().find(id) == std::string::npos);
    CHECK(text.str().find(sha256_hex(id)) != std::string::npos);
    struct stat st {};
    REQUIRE(::stat((dir.path() + "/sessions.json").c_str(), &st) == 0);
    CHECK((st.st_mode & 077) == 0);

    REQUIRE(b.remove(id).ok());   // logout through the other process
    FileSessionStore c(3600, dir.path());
    CHECK_FALSE(c.find(id, 1002)->has_value());
    CHECK_FALSE(a.find(id, 1002)->has_value());
}
