// OpenSSL-backed primitives for the relay (the core stays free of them: it also runs in Wasm).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "keyrelay/result.h"

namespace keyrelay::relay {

// Cryptographically secure random bytes (RAND_bytes). Aborts the process if the CSPRNG fails.
std::string random_bytes(size_t n);
// n random bytes as base64url without padding: state values, PKCE verifiers, session ids, request ids.
std::string random_token(size_t n = 32);

// AES-256-GCM with a random 12-byte IV and a 16-byte tag; `aad` is authenticated, not encrypted.
// Output layout: iv(12) || ciphertext || tag(16). key must be 32 bytes.
std::string aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad);
// Errors: "store.bad_key_length", "store.decrypt_failed" (wrong key, wrong aad, or tampered data).
Result<std::string> aes256gcm_decrypt(std::string_view key, std::string_view sealed, std::string_view aad);

// Iterations for new page-user hashes: OWASP's figure for PBKDF2-HMAC-SHA256 (210,000 is its SHA-512 figure);
// see docs/reference/security.md. The count is stored in each hash, so hashes made with fewer still verify.
constexpr int kPasswordHashIterations = 600000;

// Password hashes for page users: "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>".
std::string hash_password(std::string_view password, int iterations = kPasswordHashIterations);
bool verify_password(std::string_view password, std::string_view encoded);

// Hex SHA-256: how sessions, OAuth states and client addresses are keyed wherever they are stored (never the value
// itself).
std::string sha256_hex(std::string_view data);
// Lowercase hex of any bytes.
std::string to_hex(std::string_view bytes);

// Constant-time equality (CRYPTO_memcmp) for secrets of any length.
bool secure_equals(std::string_view a, std::string_view b);

// The hint when a store key is not a usable AES-256 key.
constexpr const char* kStoreKeyHint =
    "KEYRELAY_STORE_KEY must be 32 bytes: 64 hex characters (make one with `openssl rand -hex 32`) or base64 of "
    "32 bytes";
// Parses a store key given as 64 hex characters or base64 of 32 bytes. Errors: "store.bad_key_length".
Result<std::string> parse_store_key(std::string_view text);

}  // namespace keyrelay::relay
