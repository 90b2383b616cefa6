// The Redis store, for several relays sharing one Redis. Layout (every key starts with kRedisKeyPrefix):
//   keyrelay:conn:<provider>          a hash with two fields:
//       version   the record's version, plaintext decimal ("3"), so operators and tests can read it and a cache
//                 can check it with one HGET;
//       record    the sealed record, the same JSON as one entry of tokens.json (state/sealed_record.h):
//                 {"id":"keap","key_id":"1a2b3c4d","version":3,"sealed":"<base64>"}.
//   keyrelay:lock:refresh:<provider>  the refresh lease (state/refresh_lease.h), a random owner token with a TTL.
// Nothing else is stored in plaintext: tokens, secrets and account details are only inside the sealed data.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/result.h"
#include "state/connection_store.h"
#include "state/redis.h"
#include "state/refresh_lease.h"
#include "state/sealed_record.h"

namespace keyrelay::relay {

// "keyrelay:conn:<provider>".
std::string connection_key(const std::string& provider);

class RedisConnectionStore : public ConnectionStore {
public:
    // keys and current_key_id as for FileConnectionStore; `lease` for lock_refresh.
    RedisConnectionStore(Redis& redis, std::map<std::string, std::string> keys, std::string current_key_id,
                         LeaseOptions lease);

    std::string backend() const override { return "redis"; }
    // SCAN for keyrelay:conn:*, then one pipelined round trip for the records.
    Result<std::vector<Connection>> load_all() const override;
    Result<std::optional<Connection>> load(const std::string& provider) const override;
    // HGET keyrelay:conn:<provider> version ("" when nothing is stored).
    Result<std::string> stamp(const std::string& provider) const override;
    // A Lua compare-and-set on the version field (one round trip).
    Result<Connection> save(Connection c) override;
    Result<Connection> replace(Connection c) override;
    Result<Unit> put(const Connection& c) override;
    Result<Unit> remove(const std::string& provider) override;
    Result<size_t> rotate() override;
    Result<std::unique_ptr<RefreshLock>> lock_refresh(const std::string& provider) override;

private:
    // Writes `sealed` if the stored version is `expected` (nullopt: whatever it is). Returns the version that was
    // stored before, and whether the write happened.
    struct Cas {
        bool written = false;
        uint64_t stored = 0;
    };
    Result<Cas> compare_and_set(const SealedRecord& sealed, std::optional<uint64_t> expected);
    // The connection in a reply to HMGET keyrelay:conn:<provider> version record.
    Result<std::optional<Connection>> decode(const std::string& provider, const RedisReply& hmget) const;

    Redis& redis_;
    StoreKeyring keyring_;
    LeaseOptions lease_;
};

}  // namespace keyrelay::relay
