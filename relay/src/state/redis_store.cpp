#include "state/redis_store.h"

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

namespace keyrelay::relay {
namespace {

using json = nlohmann::json;

// KEYS[1]: keyrelay:conn:<provider>. ARGV[1]: the version the writer read ("" = write whatever is stored),
// ARGV[2]: the version to store, ARGV[3]: the sealed record. Returns {1 if written else 0, the version stored
// before ("0" when nothing was)}.
constexpr const char* kCompareAndSetScript = R"lua(
local stored = redis.call('HGET', KEYS[1], 'version') or '0'
if ARGV[1] ~= '' and stored ~= ARGV[1] then
  return {0, stored}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'record', ARGV[3])
return {1, stored}
)lua";

RecordPlace place_of(const std::string& provider) {
    return {"The Redis record " + connection_key(provider),
            "delete it with `redis-cli DEL " + connection_key(provider) + "` and connect the provider again"};
}

std::optional<uint64_t> parse_version(const std::string& text) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return v;
}

}  // namespace

std::string connection_key(const std::string& provider) { return std::string(kRedisKeyPrefix) + "conn:" + provider; }

RedisConnectionStore::RedisConnectionStore(Redis& redis, std::map<std::string, std::string> keys,
                                           std::string current_key_id, LeaseOptions lease)
    : redis_(redis), keyring_{std::move(keys), std::move(current_key_id)}, lease_(lease) {}

Result<std::optional<Connection>> RedisConnectionStore::decode(const std::string& provider,
                                                               const RedisReply& hmget) const {
    if (hmget.elements.size() != 2) {
        return make_error("store.redis_error", "Redis answered HMGET with " + std::to_string(hmget.elements.size()) +
                                                   " values instead of 2.");
    }
    const RedisReply& version = hmget.elements[0];
    const RedisReply& record = hmget.elements[1];
    RecordPlace place = place_of(provider);
    if (version.nil && record.nil) return std::optional<Connection>();
    if (version.nil || record.nil) {
        return store_corrupt(place, std::string("it has no \"") + (version.nil ? "version" : "record") +
                                        "\" field.");
    }
    auto v = parse_version(version.str);
    if (!v) return store_corrupt(place, "its version \"" + version.str.substr(0, 24) + "\" is not a number.");
    json j = json::parse(record.str, nullptr, false);
    if (j.is_discarded()) return store_corrupt(place, "its record is not valid JSON.");
    auto sealed = record_from_json(j, place, "its record");
    if (!sealed) return sealed.error();
    if (sealed->id != provider) return store_corrupt(place, "it holds the record \"" + sealed->id + "\".");
    if (sealed->version != *v) {
        return store_corrupt(place, "its version field says " + std::to_string(*v) + " and its record " +
                                        std::to_string(sealed->version) + ".");
    }
    auto conn = open_record(keyring_, *sealed, place);
    if (!conn) return conn.error();
    return std::optional<Connection>(std::move(conn.value()));
}

Result<std::optional<Connection>> RedisConnectionStore::load(const std::string& provider) const {
    auto r = redis_.command({"HMGET", connection_key(provider), "version", "record"});
    if (!r) return r.error();
    return decode(provider, *r);
}

Result<std::vector<Connection>> RedisConnectionStore::load_all() const {
    // A handful of connections: SCAN to the end, then read them all in one pipelined round trip.
    std::string pattern = connection_key("*");
    std::vector<std::string> providers;
    std::string cursor = "0";
    do {
        auto r = redis_.command({"SCAN", cursor, "MATCH", pattern, "COUNT", "100"});
        if (!r) return r.error();
        if (r->elements.size() != 2) return make_error("store.redis_error", "Redis answered SCAN in an unknown shape.");
        cursor = r->elements[0].str;
        std::string prefix = connection_key("");
        for (const RedisReply& key : r->elements[1].elements) {
            if (key.str.rfind(prefix, 0) == 0) providers.push_back(key.str.substr(prefix.size()));
        }
    } while (cursor != "0");
    std::sort(providers.begin(), providers.end());
    providers.erase(std::unique(providers.begin(), providers.end()), providers.end());
    std::vector<Connection> out;
    if (providers.empty()) return out;
    std::vector<std::vector<std::string>> commands;
    for (const auto& p : providers) commands.push_back({"HMGET", connection_key(p), "version", "record"});
    auto replies = redis_.pipeline(commands);
    if (!replies) return replies.error();
    for (size_t i = 0; i < providers.size(); ++i) {
        auto c = decode(providers[i], (*replies)[i]);
        if (!c) return c.error();
        if (c->has_value()) out.push_back(std::move(**c));   // deleted between SCAN and HMGET: skipped
    }
    return out;
}

Result<std::string> RedisConnectionStore::stamp(const std::string& provider) const {
    auto r = redis_.command({"HGET", connection_key(provider), "version"});
    if (!r) return r.error();
    return r->str;   // "" for nil
}

Result<RedisConnectionStore::Cas> RedisConnectionStore::compare_and_set(const SealedRecord& sealed,
                                                                        std::optional<uint64_t> expected) {
    std::string record = record_to_json(sealed).dump();
    auto r = redis_.eval(kCompareAndSetScript, {connection_key(sealed.id)},
                         {expected ? std::to_string(*expected) : std::string(), std::to_string(sealed.version),
                          record});
    if (!r) return r.error();
    if (r->elements.size() != 2) return make_error("store.redis_error", "The compare-and-set script answered oddly.");
    auto stored = parse_version(r->elements[1].str);
    if (!stored) return store_corrupt(place_of(sealed.id), "its version is not a number.");
    return Cas{r->elements[0].integer == 1, *stored};
}

Result<Connection> RedisConnectionStore::save(Connection c) {
    uint64_t read_at = c.version;
    c.version = read_at + 1;
    auto sealed = seal_record(keyring_, c);
    if (!sealed) return sealed.error();
    auto cas = compare_and_set(*sealed, read_at);
    if (!cas) return cas.error();
    if (!cas->written) return store_conflict(c.provider, read_at, cas->stored);
    return c;
}

Result<Connection> RedisConnectionStore::replace(Connection c) {
    // The version is inside the sealed data, so the record is sealed for the version it will have: read the stored
    // version, seal for the next one, compare-and-set; another writer in between only means one more round.
    for (int attempt = 1;; ++attempt) {
        auto stored = stamp(c.provider);
        if (!stored) return stored.error();
        c.version = parse_version(*stored).value_or(0);   // "": nothing stored
        auto saved = save(c);
        if (saved || saved.error().code != "store.conflict" || attempt == 20) return saved;
    }
}

Result<Unit> RedisConnectionStore::put(const Connection& c) {
    auto sealed = seal_record(keyring_, c);
    if (!sealed) return sealed.error();
    auto cas = compare_and_set(*sealed, std::nullopt);
    if (!cas) return cas.error();
    return Unit{};
}

Result<Unit> RedisConnectionStore::remove(const std::string& provider) {
    auto r = redis_.command({"DEL", connection_key(provider)});
    if (!r) return r.error();
    return Unit{};
}

Result<size_t> RedisConnectionStore::rotate() {
    auto all = load_all();
    if (!all) return all.error();
    size_t n = 0;
    for (Connection c : *all) {
        // Re-sealed with the same version: nothing about the connection changed. A relay that refreshed in between
        // wrote a newer record (sealed with whichever key it runs with): read it again and re-seal that one.
        for (int attempt = 0;; ++attempt) {
            auto sealed = seal_record(keyring_, c);
            if (!sealed) return sealed.error();
            auto cas = compare_and_set(*sealed, c.version);
            if (!cas) return cas.error();
            if (cas->written) break;
            if (attempt == 20) return store_conflict(c.provider, c.version, cas->stored);
            auto again = load(c.provider);
            if (!again) return again.error();
            if (!again->has_value()) break;   // removed meanwhile
            c = **again;
        }
        ++n;
    }
    return n;
}

Result<std::unique_ptr<RefreshLock>> RedisConnectionStore::lock_refresh(const std::string& provider) {
    auto lease = RedisRefreshLease::acquire(redis_, refresh_lease_key(provider), lease_);
    if (!lease) return lease.error();
    return std::unique_ptr<RefreshLock>(std::move(lease.value()));
}

}  // namespace keyrelay::relay
