// The store key: KEYRELAY_STORE_KEY (and KEYRELAY_STORE_KEY_PREVIOUS during a rotation), or a generated 0600 key
// file in the data dir for a single relay; and the clean-up of temporary files an interrupted write left behind.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "keyrelay/result.h"

namespace keyrelay::relay {

// The key id recorded with each sealed record: the first 8 hex characters of SHA-256(key). (Additive.)
std::string store_key_id(std::string_view key);

// Key loading for `serve`: KEYRELAY_STORE_KEY (hex or base64) -> key id "k1"-style derived from the key's hash;
// without it, <data_dir>/store.key is created with mode 0600 (and `generated` is set so the caller logs loudly).
// KEYRELAY_STORE_KEY_PREVIOUS may hold the old key during a rotation.
struct StoreKeys {
    std::map<std::string, std::string> keys;
    std::string current_key_id;
    bool generated = false;
    std::string key_file;   // set when the key came from / went to a file
};
Result<StoreKeys> load_store_keys(const std::string& data_dir, const std::optional<std::string>& key_text,
                                  const std::optional<std::string>& previous_key_text);

// The text of <data_dir>/store.key, the key a relay generated when it ran without KEYRELAY_STORE_KEY (rotate-key
// and migrate-store open the old records with it); nullopt when there is no readable file.
std::optional<std::string> generated_key_text(const std::string& data_dir);

// A writer killed between creating its temp file and the rename leaves <file>.tmp.<pid>[.<random>] behind
// (tokens.json, sessions.json, store.key); nothing ever reads those. Removes the ones whose process no longer runs
// (another relay sharing the data dir may be writing its own right now), and this process's own pid's, since it
// calls this before it writes anything. Returns how many were removed. (Additive.)
size_t remove_stale_temp_files(const std::string& data_dir);

}  // namespace keyrelay::relay
