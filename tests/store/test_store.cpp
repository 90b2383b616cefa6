#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>

#include "state/crypto.h"
#include "keyrelay/http.h"
#include "state/store.h"
#include "temp_dir.h"

using namespace keyrelay::relay;
using json = nlohmann::json;
using testutil::TempDir;

namespace {

const std::string kKey(32, '\x11');
const std::string kNewKey(32, '\x22');

FileConnectionStore open_store(const std::string& dir, const std::string& key = kKey) {
    return FileConnectionStore(dir, {{store_key_id(key), key}}, store_key_id(key));
}

// Every field set to something other than its default.
Connection sample(const std::string& provider = "keap") {
    Connection c;
    c.provider = provider;
    c.tokens.access_token = "at-" + provider + "-0001";
    c.tokens.refresh_token = "rt-" + provider + "-0001";
    c.tokens.token_type = "bearer";
    c.tokens.scope = "full|ab123.infusionsoft.com";
    c.tokens.account = "ab123.infusionsoft.com";
    c.tokens.expires_in = 86400;
    c.tokens.obtained_at = 1767225600;
    c.tokens.expires_at = 1767312000;
    c.account = "ab123.infusionsoft.com";
    c.cloud_id = "11223344-a1b2-3b33-c444-def123456789";
    c.connected_at = 1767225000;
    c.refresh_token_issued_at = 1767225601;
    c.last_refresh_at = 1767225602;
    c.last_refresh_result = "oauth.invalid_grant";
    c.needs_reauth = true;
    c.version = 0;
    return c;
}

void check_same(const Connection& a, const Connection& b) {
    CHECK(a.provider == b.provider);
    CHECK(a.tokens.access_token == b.tokens.access_token);
    CHECK(a.tokens.refresh_token == b.tokens.refresh_token);
    CHECK(a.tokens.token_type == b.tokens.token_type);
    CHECK(a.tokens.scope == b.tokens.scope);
    CHECK(a.tokens.account == b.tokens.account);
    CHECK(a.tokens.expires_in == b.tokens.expires_in);
    CHECK(a.tokens.obtained_at == b.tokens.obtained_at);
    CHECK(a.tokens.expires_at == b.tokens.expires_at);
    CHECK(a.account == b.account);
    CHECK(a.cloud_id == b.cloud_id);
    CHECK(a.connected_at == b.connected_at);
    CHECK(a.refresh_token_issued_at == b.refresh_token_issued_at);
    CHECK(a.last_refresh_at == b.last_refresh_at);
    CHECK(a.last_refresh_result == b.last_refresh_result);
    CHECK(a.needs_reauth == b.needs_reauth);
    CHECK(a.version == b.version);
}

json read_json(const std::string& path) { return json::parse(testutil::read_file(path)); }

}  // namespace

// ---------------------------------------------------------------- Connection JSON

TEST_CASE("a connection survives to_json and connection_from_json with every field", "[store][json]") {
    Connection c = sample();
    c.version = 7;
    c.tokens.expires_at = -5;   // signed fields stay signed
    auto back = connection_from_json(to_json(c));
    REQUIRE(back.ok());
    check_same(back.value(), c);
}

TEST_CASE("connection_from_json fills absent optional fields with defaults", "[store][json]") {
    auto c = connection_from_json(R"({"provider":"jira","tokens":{"access_token":"a"}})");
    REQUIRE(c.ok());
    CHECK(c->provider == "jira");
    CHECK(c->tokens.access_token == "a");
    CHECK(c->tokens.refresh_token.empty());
    CHECK(c->version == 0);
    CHECK_FALSE(c->needs_reauth);
}

TEST_CASE("connection_from_json rejects malformed records with store.corrupt", "[store][json]") {
    auto [text, what] = GENERATE(table<std::string, std::string>({
        {"", "empty"},
        {"{\"provider\":\"keap\"", "truncated JSON"},
        {"[]", "an array"},
        {R"({"tokens":{}})", "no provider"},
        {R"({"provider":"","tokens":{}})", "empty provider"},
        {R"({"provider":"keap"})", "no tokens"},
        {R"({"provider":"keap","tokens":"at"})", "tokens not an object"},
        {R"({"provider":7,"tokens":{}})", "provider not a string"},
        {R"({"provider":"keap","tokens":{},"version":-1})", "negative version"},
        {R"({"provider":"keap","tokens":{},"version":1.5})", "fractional version"},
        {R"({"provider":"keap","tokens":{},"needs_reauth":"yes"})", "needs_reauth not a boolean"},
        {R"({"provider":"keap","tokens":{},"connected_at":"2026"})", "a time as a string"},
        {R"({"provider":"keap","tokens":{"expires_at":"5"}})", "tokens.expires_at as a string"},
        {R"({"provider":"keap","tokens":{"expires_in":18446744073709551615}})", "tokens.expires_in too large"},
        {R"({"provider":"keap","tokens":{"refresh_token":null}})", "tokens.refresh_token null"},
    }));
    CAPTURE(what);
    auto c = connection_from_json(text);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == "store.corrupt");
}

// ---------------------------------------------------------------- load and save

TEST_CASE("a missing store file is an empty store", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    CHECK(store.path() == dir / "tokens.json");
    auto all = store.load_all();
    REQUIRE(all.ok());
    CHECK(all->empty());
    auto one = store.load("keap");
    REQUIRE(one.ok());
    CHECK_FALSE(one->has_value());
    CHECK_FALSE(testutil::exists(store.path()));   // reading never creates the file
}

TEST_CASE("save then load returns every field, and each save bumps the version", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    Connection c = sample();

    auto first = store.save(c);
    REQUIRE(first.ok());
    CHECK(first->version == 1);
    auto loaded = store.load("keap");
    REQUIRE(loaded.ok());
    REQUIRE(loaded->has_value());
    c.version = 1;
    check_same(**loaded, c);

    c.tokens.refresh_token = "rt-keap-0002";
    c.version = 77;   // not the version that is stored: a compare-and-set refuses it and writes nothing
    auto stale = store.save(c);
    REQUIRE_FALSE(stale.ok());
    CHECK(stale.error().code == "store.conflict");
    CHECK(stale.error().message.find("version 77") != std::string::npos);
    c.version = 0;   // "nothing stored" is stale too
    CHECK(store.save(c).error().code == "store.conflict");
    c.version = 1;   // the version it was read at
    auto second = store.save(c);
    REQUIRE(second.ok());
    CHECK(second->version == 2);
    auto again = store.load("keap");
    REQUIRE(again.ok());
    REQUIRE(again->has_value());
    CHECK((*again)->version == 2);
    CHECK((*again)->tokens.refresh_token == "rt-keap-0002");

    SECTION("another store object on the same directory sees the writes (no caching)") {
        FileConnectionStore other = open_store(dir.path());
        REQUIRE(other.save(sample("jira")).ok());
        auto all = store.load_all();
        REQUIRE(all.ok());
        REQUIRE(all->size() == 2);
        CHECK((*all)[0].provider == "jira");
        CHECK((*all)[1].provider == "keap");
    }
}

TEST_CASE("a connection without a provider name is refused", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    auto r = store.save(sample(""));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.bad_id");
}

TEST_CASE("the store file holds only sealed records, bound to their id", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    REQUIRE(store.save(sample("keap")).ok());
    std::string text = testutil::read_file(store.path());
    CHECK(text.find("at-keap-0001") == std::string::npos);
    CHECK(text.find("rt-keap-0001") == std::string::npos);
    CHECK(text.find("infusionsoft") == std::string::npos);

    json doc = json::parse(text);
    CHECK(doc["format"] == 1);
    REQUIRE(doc["records"].size() == 1);
    const json& r = doc["records"][0];
    CHECK(r["id"] == "keap");
    CHECK(r["key_id"] == store_key_id(kKey));
    CHECK(r["version"] == 1);
    auto sealed = keyrelay::base64_decode(r["sealed"].get<std::string>());
    REQUIRE(sealed.ok());
    auto plain = aes256gcm_decrypt(kKey, sealed.value(), "keap");
    REQUIRE(plain.ok());
    auto c = connection_from_json(plain.value());
    REQUIRE(c.ok());
    CHECK(c->tokens.access_token == "at-keap-0001");
    CHECK(aes256gcm_decrypt(kKey, sealed.value(), "jira").error().code == "store.decrypt_failed");
}

TEST_CASE("the key id is the first 8 hex characters of SHA-256 of the key", "[store][keys]") {
    CHECK(store_key_id(std::string(32, '\0')) == "66687aad");
    CHECK(store_key_id(kKey) != store_key_id(kNewKey));
}

TEST_CASE("after a save the data directory holds no temporary files", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    for (int i = 0; i < 5; ++i) REQUIRE(store.replace(sample(i % 2 ? "keap" : "jira")).ok());
    REQUIRE(store.remove("jira").ok());
    CHECK(testutil::list_dir(dir.path()) == std::set<std::string>{"tokens.json", "store.lock"});
}

TEST_CASE("the data directory is created 0700 and the files 0600, whatever the umask", "[store]") {
    TempDir dir;
    mode_t old = ::umask(0);
    std::string data = dir / "nested/data";
    FileConnectionStore store = open_store(data);
    auto saved = store.save(sample());
    ::umask(old);
    REQUIRE(saved.ok());
    CHECK(testutil::mode_of(dir / "nested") == 0700);
    CHECK(testutil::mode_of(data) == 0700);
    CHECK(testutil::mode_of(data + "/tokens.json") == 0600);
    CHECK(testutil::mode_of(data + "/store.lock") == 0600);
}

TEST_CASE("remove deletes one record and keeps the others", "[store]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    REQUIRE(store.save(sample("keap")).ok());
    REQUIRE(store.save(sample("jira")).ok());
    REQUIRE(store.remove("keap").ok());
    auto all = store.load_all();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].provider == "jira");
    CHECK(store.remove("keap").ok());   // removing what is not there is not an error
    auto after = store.load("keap");
    REQUIRE(after.ok());
    CHECK_FALSE(after->has_value());
}

// ---------------------------------------------------------------- damaged files and wrong keys

TEST_CASE("a damaged tokens.json is reported and never overwritten", "[store][corrupt]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    REQUIRE(store.save(sample("keap")).ok());
    json doc = read_json(store.path());
    std::string good_sealed = doc["records"][0]["sealed"];

    std::string damaged;
    std::string code = "store.corrupt";
    SECTION("truncated JSON") { damaged = testutil::read_file(store.path()).substr(0, 40); }
    SECTION("an empty file") { damaged = ""; }
    SECTION("not an object") { damaged = "[]"; }
    SECTION("no records array") { damaged = R"({"format":1,"records":{}})"; }
    SECTION("no format") { damaged = R"({"records":[]})"; }
    SECTION("a record that is not an object") { damaged = R"({"format":1,"records":["keap"]})"; }
    SECTION("a record without a key id") {
        doc["records"][0].erase("key_id");
        damaged = doc.dump();
    }
    SECTION("sealed data that is not base64") {
        doc["records"][0]["sealed"] = "%%%";
        damaged = doc.dump();
    }
    SECTION("the same id twice") {
        doc["records"].push_back(doc["records"][0]);
        damaged = doc.dump();
    }
    SECTION("an outer version that disagrees with the sealed one") {
        doc["records"][0]["version"] = 5;
        damaged = doc.dump();
    }
    SECTION("a format from another keyrelay version") {
        doc["format"] = 2;
        damaged = doc.dump();
        code = "store.unsupported_format";
    }
    CAPTURE(damaged);
    testutil::write_file(store.path(), damaged);

    auto loaded = store.load_all();
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().code == code);
    CHECK(loaded.error().message.find(store.path()) != std::string::npos);
    CHECK_FALSE(loaded.error().hint.empty());

    auto saved = store.save(sample("jira"));
    REQUIRE_FALSE(saved.ok());
    CHECK(saved.error().code == code);
    CHECK(store.remove("keap").error().code == code);
    CHECK(store.rotate().error().code == code);
    CHECK(testutil::read_file(store.path()) == damaged);   // nothing lost
}

TEST_CASE("a record whose id was changed in the file does not decrypt", "[store][corrupt]") {
    TempDir dir;
    FileConnectionStore store = open_store(dir.path());
    REQUIRE(store.save(sample("keap")).ok());
    json doc = read_json(store.path());
    doc["records"][0]["id"] = "jira";   // the id is the associated data: moving a record breaks the tag
    testutil::write_file(store.path(), doc.dump());
    auto loaded = store.load_all();
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().code == "store.wrong_key");
}

TEST_CASE("a store read with another key reports the key problem, never garbage", "[store][keys]") {
    TempDir dir;
    FileConnectionStore writer = open_store(dir.path(), kKey);
    REQUIRE(writer.save(sample("keap")).ok());
    std::string before = testutil::read_file(writer.path());

    SECTION("a key with another id: store.unknown_key_id") {
        FileConnectionStore reader = open_store(dir.path(), kNewKey);
        auto loaded = reader.load_all();
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().code == "store.unknown_key_id");
        CHECK(loaded.error().message.find("written with another key") != std::string::npos);
        CHECK(loaded.error().message.find(store_key_id(kKey)) != std::string::npos);
        CHECK(loaded.error().hint.find("KEYRELAY_STORE_KEY_PREVIOUS") != std::string::npos);
        CHECK(loaded.error().hint.find("Never guess") != std::string::npos);
        CHECK(reader.save(sample("jira")).error().code == "store.unknown_key_id");
    }
    SECTION("a key whose id collides with the right one: store.wrong_key") {
        FileConnectionStore reader(dir.path(), {{store_key_id(kKey), kNewKey}}, store_key_id(kKey));
        auto loaded = reader.load_all();
        REQUIRE_FALSE(loaded.ok());
        CHECK(loaded.error().code == "store.wrong_key");
        CHECK(loaded.error().message.find("written with another key") != std::string::npos);
        CHECK(loaded.error().hint.find("KEYRELAY_STORE_KEY") != std::string::npos);
        CHECK(reader.save(sample("jira")).error().code == "store.wrong_key");
    }
    CHECK(testutil::read_file(writer.path()) == before);
}

// ---------------------------------------------------------------- rotation

TEST_CASE("rotate re-seals every record under the current key, after which the old key alone fails", "[store][keys]") {
    TempDir dir;
    FileConnectionStore old_store = open_store(dir.path(), kKey);
    REQUIRE(old_store.save(sample("keap")).ok());
    REQUIRE(old_store.save(sample("jira")).ok());
    REQUIRE(old_store.replace(sample("jira")).ok());

    FileConnectionStore rotating(dir.path(), {{store_key_id(kKey), kKey}, {store_key_id(kNewKey), kNewKey}},
                        store_key_id(kNewKey));
    SECTION("saving during a rotation keeps old records readable") {
        REQUIRE(rotating.replace(sample("keap")).ok());
        json doc = read_json(rotating.path());
        CHECK(doc["records"][0]["key_id"] == store_key_id(kKey));      // jira: untouched
        CHECK(doc["records"][1]["key_id"] == store_key_id(kNewKey));   // keap: sealed with the new key
        auto all = rotating.load_all();
        REQUIRE(all.ok());
        CHECK(all->size() == 2);
    }
    auto n = rotating.rotate();
    REQUIRE(n.ok());
    CHECK(n.value() == 2);

    json doc = read_json(rotating.path());
    for (const json& r : doc["records"]) CHECK(r["key_id"] == store_key_id(kNewKey));

    auto with_new = open_store(dir.path(), kNewKey).load_all();
    REQUIRE(with_new.ok());
    REQUIRE(with_new->size() == 2);
    CHECK((*with_new)[0].provider == "jira");
    CHECK((*with_new)[0].version == 2);   // rotation re-seals; it does not change the content
    CHECK((*with_new)[1].tokens.refresh_token == "rt-keap-0001");

    auto with_old = old_store.load_all();
    REQUIRE_FALSE(with_old.ok());
    CHECK(with_old.error().code == "store.unknown_key_id");
}

TEST_CASE("rotating an empty store re-seals nothing and succeeds", "[store][keys]") {
    TempDir dir;
    auto n = open_store(dir.path()).rotate();
    REQUIRE(n.ok());
    CHECK(n.value() == 0);
}

// ---------------------------------------------------------------- locking and concurrency

TEST_CASE("FileLock excludes every other holder until it is released", "[store][lock]") {
    TempDir dir;
    auto lock = FileLock::acquire(dir.path(), "store");
    REQUIRE(lock.ok());
    CHECK(lock->held());
    CHECK(testutil::mode_of(dir / "store.lock") == 0600);

    // flock(2) locks belong to the open file description, so a second open in this process is another holder.
    auto try_lock = [&] {
        int fd = ::open((dir / "store.lock").c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        bool got = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
        ::close(fd);
        return got;
    };
    CHECK_FALSE(try_lock());

    FileLock moved = std::move(lock.value());
    CHECK_FALSE(lock->held());
    CHECK(moved.held());
    CHECK_FALSE(try_lock());

    moved = FileLock();
    CHECK(try_lock());
}

namespace {

// In a child process: `rounds` read-modify-writes of `provider`, each with a new refresh token, retried on
// store.conflict (the other process wrote in between). Exits 0 on success.
[[noreturn]] void child_saves(const std::string& dir, const std::string& provider, int rounds) {
    FileConnectionStore store = open_store(dir);
    for (int i = 0; i < rounds; ++i) {
        for (;;) {
            auto current = store.load(provider);
            if (!current.ok()) ::_exit(1);
            Connection c = current->has_value() ? **current : sample(provider);
            c.tokens.refresh_token = "rt-" + provider + "-" + std::to_string(i);
            auto saved = store.save(c);
            if (saved.ok()) break;
            if (saved.error().code != "store.conflict") ::_exit(1);
        }
    }
    ::_exit(0);
}

int wait_for(pid_t pid) {
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("two processes saving different records concurrently lose nothing", "[store][lock]") {
    TempDir dir;
    constexpr int kRounds = 100;
    pid_t a = ::fork();
    REQUIRE(a >= 0);
    if (a == 0) child_saves(dir.path(), "keap", kRounds);
    pid_t b = ::fork();
    REQUIRE(b >= 0);
    if (b == 0) child_saves(dir.path(), "jira", kRounds);
    CHECK(wait_for(a) == 0);
    CHECK(wait_for(b) == 0);

    auto all = open_store(dir.path()).load_all();
    REQUIRE(all.ok());
    REQUIRE(all->size() == 2);
    for (const Connection& c : all.value()) {
        CAPTURE(c.provider);
        CHECK(c.version == kRounds);
        CHECK(c.tokens.refresh_token == "rt-" + c.provider + "-" + std::to_string(kRounds - 1));
    }
    CHECK(testutil::list_dir(dir.path()) == std::set<std::string>{"tokens.json", "store.lock"});
}

TEST_CASE("two processes saving the same record concurrently count every save", "[store][lock]") {
    TempDir dir;
    constexpr int kRounds = 50;
    pid_t a = ::fork();
    REQUIRE(a >= 0);
    if (a == 0) child_saves(dir.path(), "keap", kRounds);
    pid_t b = ::fork();
    REQUIRE(b >= 0);
    if (b == 0) child_saves(dir.path(), "keap", kRounds);
    CHECK(wait_for(a) == 0);
    CHECK(wait_for(b) == 0);
    auto keap = open_store(dir.path()).load("keap");
    REQUIRE(keap.ok());
    REQUIRE(keap->has_value());
    CHECK((*keap)->version == 2 * kRounds);   // every save counted: none overwrote the other's
}

// ---------------------------------------------------------------- key loading

TEST_CASE("KEYRELAY_STORE_KEY gives the current key and its id, and no key file", "[store][keys]") {
    TempDir dir;
    auto keys = load_store_keys(dir.path(), std::string(64, '0') + "\n", std::nullopt);
    REQUIRE(keys.ok());
    CHECK(keys->current_key_id == "66687aad");   // SHA-256 of 32 zero bytes starts 66687aad
    REQUIRE(keys->keys.size() == 1);
    CHECK(keys->keys.at("66687aad") == std::string(32, '\0'));
    CHECK_FALSE(keys->generated);
    CHECK(keys->key_file.empty());
    CHECK_FALSE(testutil::exists(dir / "store.key"));
}

TEST_CASE("a KEYRELAY_STORE_KEY of the wrong length is refused with a hint", "[store][keys]") {
    TempDir dir;
    auto keys = load_store_keys(dir.path(), std::string("0123abcd"), std::nullopt);
    REQUIRE_FALSE(keys.ok());
    CHECK(keys.error().code == "store.bad_key_length");
    CHECK(keys.error().message.rfind("KEYRELAY_STORE_KEY: ", 0) == 0);
    CHECK(keys.error().hint.find("openssl rand -hex 32") != std::string::npos);
    CHECK_FALSE(testutil::exists(dir / "store.key"));
}

TEST_CASE("without a key, a 0600 key file is generated once and reused", "[store][keys]") {
    TempDir dir;
    std::string data = dir / "data";
    mode_t old = ::umask(0);
    auto first = load_store_keys(data, std::nullopt, std::nullopt);
    ::umask(old);
    REQUIRE(first.ok());
    CHECK(first->generated);
    CHECK(first->key_file == data + "/store.key");
    CHECK(testutil::mode_of(data) == 0700);
    CHECK(testutil::mode_of(first->key_file) == 0600);
    REQUIRE(first->keys.size() == 1);
    const std::string& key = first->keys.at(first->current_key_id);
    CHECK(key.size() == 32);
    CHECK(first->current_key_id == store_key_id(key));
    CHECK(testutil::read_file(first->key_file) == testutil::hex(key) + "\n");
    CHECK(testutil::list_dir(data) == std::set<std::string>{"store.key"});

    auto second = load_store_keys(data, std::nullopt, std::nullopt);
    REQUIRE(second.ok());
    CHECK_FALSE(second->generated);
    CHECK(second->key_file == first->key_file);
    CHECK(second->current_key_id == first->current_key_id);
    CHECK(second->keys == first->keys);
}

TEST_CASE("a key file readable by group or others is refused with a chmod hint", "[store][keys]") {
    TempDir dir;
    auto made = load_store_keys(dir.path(), std::nullopt, std::nullopt);
    REQUIRE(made.ok());
    int mode = GENERATE(0640, 0604, 0644);
    CAPTURE(mode);
    REQUIRE(::chmod(made->key_file.c_str(), mode_t(mode)) == 0);
    auto keys = load_store_keys(dir.path(), std::nullopt, std::nullopt);
    REQUIRE_FALSE(keys.ok());
    CHECK(keys.error().code == "store.key_file_permissions");
    CHECK(keys.error().hint.find("chmod 600 " + made->key_file) != std::string::npos);
}

TEST_CASE("a damaged key file is store.bad_key_length and is left alone", "[store][keys]") {
    TempDir dir;
    std::string path = dir / "store.key";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "abc\n", 4) == 4);
    ::close(fd);
    auto keys = load_store_keys(dir.path(), std::nullopt, std::nullopt);
    REQUIRE_FALSE(keys.ok());
    CHECK(keys.error().code == "store.bad_key_length");
    CHECK(keys.error().message.find(path) != std::string::npos);
    CHECK(testutil::read_file(path) == "abc\n");
}

TEST_CASE("KEYRELAY_STORE_KEY_PREVIOUS adds the old key for reading", "[store][keys]") {
    TempDir dir;
    std::string old_hex = testutil::hex(kKey);
    std::string new_b64 = keyrelay::base64_encode(kNewKey);
    auto keys = load_store_keys(dir.path(), new_b64, old_hex);
    REQUIRE(keys.ok());
    CHECK(keys->current_key_id == store_key_id(kNewKey));
    REQUIRE(keys->keys.size() == 2);
    CHECK(keys->keys.at(store_key_id(kKey)) == kKey);
    CHECK(keys->keys.at(store_key_id(kNewKey)) == kNewKey);

    auto bad = load_store_keys(dir.path(), new_b64, std::string("short"));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == "store.bad_key_length");
    CHECK(bad.error().message.rfind("KEYRELAY_STORE_KEY_PREVIOUS: ", 0) == 0);
}

TEST_CASE("loaded keys open a store end to end, across a rotation", "[store][keys]") {
    TempDir dir;
    auto generated = load_store_keys(dir.path(), std::nullopt, std::nullopt);
    REQUIRE(generated.ok());
    FileConnectionStore first(dir.path(), generated->keys, generated->current_key_id);
    REQUIRE(first.save(sample()).ok());

    std::string old_hex = testutil::read_file(generated->key_file);
    std::string new_hex = testutil::hex(kNewKey);
    auto rotating = load_store_keys(dir.path(), new_hex, old_hex);
    REQUIRE(rotating.ok());
    FileConnectionStore second(dir.path(), rotating->keys, rotating->current_key_id);
    auto n = second.rotate();
    REQUIRE(n.ok());
    CHECK(n.value() == 1);

    auto after = load_store_keys(dir.path(), new_hex, std::nullopt);
    REQUIRE(after.ok());
    auto keap = FileConnectionStore(dir.path(), after->keys, after->current_key_id).load("keap");
    REQUIRE(keap.ok());
    REQUIRE(keap->has_value());
    CHECK((*keap)->tokens.access_token == "at-keap-0001");
}
