#include "state/sealed_record.h"

#include <openssl/crypto.h>

#include "keyrelay/http.h"
#include "state/crypto.h"
#include "state/json_fields.h"

namespace keyrelay::relay {
namespace {

using json = nlohmann::json;

std::string key_ids_text(const std::map<std::string, std::string>& keys) {
    std::string out;
    for (const auto& [id, key] : keys) out += (out.empty() ? "" : ", ") + id;
    return out.empty() ? "none" : out;
}

std::string wrong_key_hint(const RecordPlace& place) {
    return "Set KEYRELAY_STORE_KEY to the key this store was written with. During a key rotation, put the old key "
           "in KEYRELAY_STORE_KEY_PREVIOUS and the new one in KEYRELAY_STORE_KEY, then run `keyrelay rotate-key`. "
           "Never guess or generate a new key for an existing store: without the original key the tokens cannot be "
           "recovered (the only other way out is to " + place.start_over + ").";
}

Error bad_store_key(const std::string& what) {
    return make_error("store.bad_key_length", "The store's current key " + what + ".", kStoreKeyHint);
}

}  // namespace

Error store_corrupt(const RecordPlace& place, const std::string& detail) {
    return make_error("store.corrupt", place.name + " is damaged: " + detail,
                      "keyrelay will not overwrite it. Restore it from a backup; or " + place.start_over +
                          " (the tokens in it are lost).");
}

Error store_conflict(const std::string& provider, uint64_t expected, uint64_t stored) {
    return make_error("store.conflict",
                      "The " + provider + " connection changed while it was being updated (read at version " +
                          std::to_string(expected) + ", stored version " + std::to_string(stored) + ").",
                      "Another relay or request updated it first; read it again and retry if still needed.");
}

Result<Unit> check_current_key(const StoreKeyring& keyring) {
    auto key = keyring.keys.find(keyring.current_key_id);
    if (key == keyring.keys.end()) {
        return bad_store_key("(id " + keyring.current_key_id + ") is not among the configured keys");
    }
    if (key->second.size() != 32) return bad_store_key("is " + std::to_string(key->second.size()) + " bytes long");
    return Unit{};
}

Result<SealedRecord> seal_record(const StoreKeyring& keyring, const Connection& c) {
    if (c.provider.empty()) {
        return make_error("store.bad_id", "A connection without a provider name cannot be stored.",
                          "This is a bug in the caller: set Connection::provider.");
    }
    if (auto usable = check_current_key(keyring); !usable) return usable.error();
    const std::string& key = keyring.keys.at(keyring.current_key_id);
    std::string plaintext = to_json(c);
    SealedRecord r{c.provider, keyring.current_key_id, c.version, aes256gcm_encrypt(key, plaintext, c.provider)};
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return r;
}

Result<Connection> open_record(const StoreKeyring& keyring, const SealedRecord& r, const RecordPlace& place) {
    std::string where = "record \"" + r.id + "\"";
    auto key = keyring.keys.find(r.key_id);
    if (key == keyring.keys.end()) {
        return make_error("store.unknown_key_id",
                          place.name + " was written with another key: " + where + " is sealed with key id " +
                              r.key_id + ", but the configured key ids are " + key_ids_text(keyring.keys) + ".",
                          wrong_key_hint(place));
    }
    auto plain = aes256gcm_decrypt(key->second, r.sealed, r.id);
    if (!plain) {
        if (plain.error().code == "store.bad_key_length") return plain.error();
        return make_error("store.wrong_key",
                          place.name + " was written with another key: " + where +
                              " does not decrypt with the configured key " + r.key_id + " (or it was modified).",
                          wrong_key_hint(place));
    }
    auto conn = connection_from_json(plain.value());
    OPENSSL_cleanse(plain.value().data(), plain.value().size());
    if (!conn) return store_corrupt(place, where + " decrypts but does not hold a connection: " + conn.error().message);
    if (conn->provider != r.id) return store_corrupt(place, where + " holds the connection \"" + conn->provider + "\".");
    if (conn->version != r.version) {
        return store_corrupt(place, where + " says version " + std::to_string(r.version) + " outside and " +
                                        std::to_string(conn->version) + " inside the sealed data.");
    }
    return conn;
}

json record_to_json(const SealedRecord& r) {
    return {{"id", r.id}, {"key_id", r.key_id}, {"version", r.version}, {"sealed", base64_encode(r.sealed)}};
}

Result<SealedRecord> record_from_json(const json& j, const RecordPlace& place, const std::string& label) {
    if (!j.is_object()) return store_corrupt(place, label + " is not an object.");
    JsonFields f{j, {}};
    SealedRecord r;
    std::string sealed_b64;
    f.str("id", r.id);
    f.str("key_id", r.key_id);
    f.str("sealed", sealed_b64);
    f.u64("version", r.version);
    if (!f.bad.empty()) return store_corrupt(place, label + ": " + f.bad + ".");
    if (r.id.empty() || r.key_id.empty() || sealed_b64.empty() || !j.contains("version")) {
        return store_corrupt(place, label + " lacks one of id, key_id, version, sealed.");
    }
    auto sealed = base64_decode(sealed_b64);
    if (!sealed) return store_corrupt(place, "record \"" + r.id + "\": \"sealed\" is not base64.");
    r.sealed = std::move(sealed.value());
    return r;
}

}  // namespace keyrelay::relay
