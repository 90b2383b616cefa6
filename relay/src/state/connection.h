// One provider connection as the relay keeps it, and its JSON form (the plaintext inside a sealed record).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keyrelay/oauth2.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

struct Connection {
    std::string provider;                 // record id: "keap", "jira", or a configured provider name
    oauth2::TokenSet tokens;
    std::string account;                  // "ab123.infusionsoft.com", Jira site URL, ...
    std::string cloud_id;                 // Jira Cloud: from accessible-resources
    int64_t connected_at = 0;
    int64_t refresh_token_issued_at = 0;  // when the current refresh token was obtained (keep-alive age)
    int64_t last_refresh_at = 0;
    std::string last_refresh_result;      // "ok", or an error code such as "oauth.invalid_grant"
    bool needs_reauth = false;
    // The stored version this copy was read at (0: never stored). Every write is a compare-and-set on it and
    // stores version + 1, so a writer holding an old copy cannot overwrite a newer record.
    uint64_t version = 0;
};

// Serialization used inside the encrypted records (JSON).
std::string to_json(const Connection& c);
// Errors: "store.corrupt".
Result<Connection> connection_from_json(std::string_view text);

}  // namespace keyrelay::relay
