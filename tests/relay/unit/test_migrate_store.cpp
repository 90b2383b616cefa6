// keyrelay migrate-store, as an operator runs it: a file store in a data dir, a Redis, the environment, and what the
// command prints and leaves behind.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "migrate_store.h"
#include "redis_server.h"
#include "state/crypto.h"
#include "state/file_store.h"
#include "state/redis.h"
#include "state/redis_store.h"
#include "state/store_keys.h"
#include "temp_dir.h"

using namespace keyrelay::relay;

namespace {

const std::string kKeyHex(64, 'a');
const std::string kOtherKeyHex(64, 'b');

std::map<std::string, std::string> keyring(const std::string& hex) {
    std::string key = *parse_store_key(hex);
    return {{store_key_id(key), key}};
}

Connection sample(const std::string& provider, const std::string& access) {
    Connection c;
    c.provider = provider;
    c.tokens.access_token = access;
    c.tokens.refresh_token = "refresh-" + access;
    c.tokens.expires_at = 4102444800;
    c.account = provider + ".example";
    c.connected_at = 1700000000;
    return c;
}

struct Run {
    int status = 0;
    std::string out;
    std::string err;
};

Run migrate(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
    auto args = parse_cli(argv);
    REQUIRE(args.ok());
    std::ostringstream out, err;
    int status = run_migrate_store(*args, [&env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
    }, out, err);
    return {status, out.str(), err.str()};
}

struct World {
    testutil::RedisServer server{"migrate-password"};
    relaytest::TempDir dir;
    std::unique_ptr<Redis> redis;
    std::map<std::string, std::string> env;

    World() {
        redis = std::make_unique<Redis>(*RedisUrl::parse(server.url()), RedisOptions{500, 500, 16});
        env = {{"KEYRELAY_REDIS_URL", server.url()}, {"KEYRELAY_STORE_KEY", kKeyHex}};
    }
    std::unique_ptr<ConnectionStore> in_redis(const std::string& hex = kKeyHex) {
        auto keys = keyring(hex);
        return std::make_unique<RedisConnectionStore>(*redis, keys, keys.begin()->first, LeaseOptions{});
    }
    std::unique_ptr<ConnectionStore> in_dir(const std::string& path, const std::string& hex = kKeyHex) {
        auto keys = keyring(hex);
        return std::make_unique<FileConnectionStore>(path, keys, keys.begin()->first);
    }
    std::string redis_keys() {
        auto r = redis->command({"KEYS", "keyrelay:*"});
        REQUIRE(r.ok());
        std::string all;
        for (const auto& e : r->elements) all += e.str + " ";
        return all;
    }
};

std::map<std::string, std::string> by_provider(ConnectionStore& store) {
    auto all = store.load_all();
    REQUIRE(all.ok());
    std::map<std::string, std::string> out;
    for (const auto& c : *all) out[c.provider] = to_json(c);
    return out;
}

}  // namespace

TEST_CASE("migrate-store copies a data dir's connections into Redis and back, and a second run copies nothing",
          "[migrate][redis]") {
    World w;
    const std::string from = w.dir / "relay-data";
    {
        auto file = w.in_dir(from);
        REQUIRE(file->replace(sample("keap", "keap-access-token-1234")).ok());
        REQUIRE(file->replace(sample("jira", "jira-access-token-5678")).ok());
    }
    auto into = migrate({"migrate-store", "--from-data-dir", from}, w.env);
    INFO(into.out << into.err);
    REQUIRE(into.status == 0);
    CHECK(into.out.find("keap: copied (version 1)") != std::string::npos);
    CHECK(into.out.find("jira: copied (version 1)") != std::string::npos);
    CHECK(into.out.find("copied 2 connection(s)") != std::string::npos);
    for (const char* secret : {"keap-access-token-1234", "refresh-keap-access-token-1234", "migrate-password"}) {
        CHECK(into.out.find(secret) == std::string::npos);
        CHECK(into.err.find(secret) == std::string::npos);
    }
    auto file = w.in_dir(from);
    auto redis = w.in_redis();
    CHECK(by_provider(*redis) == by_provider(*file));

    auto again = migrate({"migrate-store", "--from-data-dir", from}, w.env);
    CHECK(again.status == 0);
    CHECK(again.out.find("nothing new to copy: 2 connection(s) already in Redis") != std::string::npos);
    CHECK(w.server.query_one({"HGET", "keyrelay:conn:keap", "version"}) == "1");

    const std::string back = w.dir / "back";
    auto out = migrate({"migrate-store", "--to-data-dir", back}, w.env);
    INFO(out.out << out.err);
    REQUIRE(out.status == 0);
    CHECK(out.out.find("copied 2 connection(s)") != std::string::npos);
    CHECK(by_provider(*w.in_dir(back)) == by_provider(*redis));
    auto out_again = migrate({"migrate-store", "--to-data-dir", back}, w.env);
    CHECK(out_again.out.find("nothing new to copy") != std::string::npos);
}

TEST_CASE("migrate-store refuses a wrong KEYRELAY_STORE_KEY both ways and writes nothing", "[migrate][redis]") {
    World w;
    const std::string from = w.dir / "relay-data";
    REQUIRE(w.in_dir(from)->replace(sample("keap", "keap-access-token-1234")).ok());
    auto wrong = w.env;
    wrong["KEYRELAY_STORE_KEY"] = kOtherKeyHex;

    auto into = migrate({"migrate-store", "--from-data-dir", from}, wrong);
    CHECK(into.status == 1);
    CHECK(into.err.find("does not open with KEYRELAY_STORE_KEY (nothing was copied)") != std::string::npos);
    CHECK(w.redis_keys().empty());

    REQUIRE(migrate({"migrate-store", "--from-data-dir", from}, w.env).status == 0);
    const std::string back = w.dir / "back";
    auto out = migrate({"migrate-store", "--to-data-dir", back}, wrong);
    CHECK(out.status == 1);
    CHECK(out.err.find("Redis at 127.0.0.1:" + std::to_string(w.server.port()) +
                       "/0 does not open with KEYRELAY_STORE_KEY") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(back));

    SECTION("a destination sealed with another key is refused too, before anything is copied") {
        const std::string other = w.dir / "other-data";
        REQUIRE(w.in_dir(other, kOtherKeyHex)->replace(sample("jira", "jira-access-token-5678")).ok());
        auto into_other = migrate({"migrate-store", "--to-data-dir", other}, w.env);
        CHECK(into_other.status == 1);
        CHECK(into_other.err.find("the file store in " + other + " does not open with KEYRELAY_STORE_KEY") !=
              std::string::npos);
        CHECK(by_provider(*w.in_dir(other, kOtherKeyHex)).count("keap") == 0);
    }
}

TEST_CASE("migrate-store keeps a newer connection at the destination: the relays there refreshed since",
          "[migrate][redis]") {
    World w;
    const std::string from = w.dir / "relay-data";
    REQUIRE(w.in_dir(from)->replace(sample("keap", "old-access-token")).ok());
    REQUIRE(migrate({"migrate-store", "--from-data-dir", from}, w.env).status == 0);
    auto redis = w.in_redis();
    Connection refreshed = **redis->load("keap");
    refreshed.tokens.access_token = "refreshed-access-token";
    REQUIRE(redis->save(refreshed).ok());   // version 2 in Redis, version 1 in the data dir

    auto again = migrate({"migrate-store", "--from-data-dir", from}, w.env);
    INFO(again.out);
    CHECK(again.status == 0);
    CHECK(again.out.find("keap: kept the one in Redis (version 2, not older than version 1 here)") !=
          std::string::npos);
    CHECK((*redis->load("keap"))->tokens.access_token == "refreshed-access-token");
}

TEST_CASE("migrate-store moves a relay off its generated store.key onto KEYRELAY_STORE_KEY", "[migrate][redis]") {
    World w;
    const std::string from = w.dir / "relay-data";
    auto generated = load_store_keys(from, std::nullopt, std::nullopt);
    REQUIRE(generated.ok());
    REQUIRE(generated->generated);
    FileConnectionStore file(from, generated->keys, generated->current_key_id);
    REQUIRE(file.replace(sample("keap", "keap-access-token-1234")).ok());

    auto into = migrate({"migrate-store", "--from-data-dir", from}, w.env);
    INFO(into.out << into.err);
    REQUIRE(into.status == 0);
    auto in_redis = w.in_redis()->load("keap");   // opens with KEYRELAY_STORE_KEY alone
    REQUIRE(in_redis.ok());
    REQUIRE(in_redis->has_value());
    CHECK((*in_redis)->tokens.access_token == "keap-access-token-1234");
}

TEST_CASE("migrate-store says what is missing: a direction, a Redis URL, a store key, the data dir", "[migrate]") {
    relaytest::TempDir dir;
    const std::map<std::string, std::string> env{{"KEYRELAY_REDIS_URL", "redis://127.0.0.1:1/0"},
                                                 {"KEYRELAY_STORE_KEY", kKeyHex}};
    auto neither = migrate({"migrate-store"}, env);
    CHECK(neither.status == 2);
    CHECK(neither.err.find("exactly one of --from-data-dir and --to-data-dir") != std::string::npos);
    CHECK(migrate({"migrate-store", "--from-data-dir", dir.path(), "--to-data-dir", dir.path()}, env).status == 2);

    auto no_url = migrate({"migrate-store", "--from-data-dir", dir.path()}, {{"KEYRELAY_STORE_KEY", kKeyHex}});
    CHECK(no_url.status == 1);
    CHECK(no_url.err.find("KEYRELAY_REDIS_URL is not set") != std::string::npos);

    auto no_key = migrate({"migrate-store", "--from-data-dir", dir.path()},
                          {{"KEYRELAY_REDIS_URL", "redis://127.0.0.1:1/0"}});
    CHECK(no_key.status == 1);
    CHECK(no_key.err.find("KEYRELAY_STORE_KEY is not set") != std::string::npos);

    auto typo = migrate({"migrate-store", "--from-data-dir", dir / "no-such-dir"}, env);
    CHECK(typo.status == 1);
    CHECK(typo.err.find("is not a directory") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir / "no-such-dir"));

    auto unreachable = migrate({"migrate-store", "--from-data-dir", dir.path()}, env);
    CHECK(unreachable.status == 1);
    CHECK(unreachable.err.find("store.unavailable") != std::string::npos);
}
