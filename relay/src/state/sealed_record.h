// The sealed record: one connection encrypted with AES-256-GCM under a store key, the same in every backend
// (tokens.json and Redis), so records can be copied between them as they are:
//   {"id":"keap","key_id":"1a2b3c4d","version":3,"sealed":"<base64 of iv(12) || ciphertext || tag(16)>"}
// The plaintext is to_json(Connection); the record id is the associated data, so a record cannot be moved to
// another id; key_id names the key it was sealed with (store_key_id), so keys can be rotated.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "keyrelay/result.h"
#include "state/connection.h"

namespace keyrelay::relay {

struct SealedRecord {
    std::string id;
    std::string key_id;
    uint64_t version = 0;   // also inside the sealed data; the two must agree
    std::string sealed;     // raw iv || ciphertext || tag
};

// The keys a store opens records with, and the one it seals new records with.
struct StoreKeyring {
    std::map<std::string, std::string> keys;   // key id -> 32-byte key
    std::string current_key_id;
};

// Where records live, for messages: `name` is "The token store /var/lib/keyrelay/tokens.json" or "The Redis record
// keyrelay:conn:keap"; `start_over` says how to give up on it ("move tokens.json aside ...").
struct RecordPlace {
    std::string name;
    std::string start_over;
};

// Whether new records can be sealed: the current key is configured and 32 bytes. Errors: "store.bad_key_length".
Result<Unit> check_current_key(const StoreKeyring& keyring);

// Seals c, with c.version as the record's version. Errors: "store.bad_id" (no provider), "store.bad_key_length"
// (the current key is missing or not 32 bytes).
Result<SealedRecord> seal_record(const StoreKeyring& keyring, const Connection& c);

// Decrypts and checks a record. Errors: "store.unknown_key_id" and "store.wrong_key" (the key is wrong: never
// garbage), "store.corrupt" (decrypts but is not this record's connection, or the versions disagree).
Result<Connection> open_record(const StoreKeyring& keyring, const SealedRecord& r, const RecordPlace& place);

nlohmann::json record_to_json(const SealedRecord& r);
// `label` names the record in messages ("record #2"). Errors: "store.corrupt".
Result<SealedRecord> record_from_json(const nlohmann::json& j, const RecordPlace& place, const std::string& label);

// "store.corrupt": `place` is damaged (detail says how); never overwritten.
Error store_corrupt(const RecordPlace& place, const std::string& detail);
// "store.conflict": a compare-and-set found `stored` where the writer had read `expected`.
Error store_conflict(const std::string& provider, uint64_t expected, uint64_t stored);

}  // namespace keyrelay::relay
