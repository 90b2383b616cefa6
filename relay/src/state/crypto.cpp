// OpenSSL 3 EVP primitives for the relay: CSPRNG, AES-256-GCM (NIST SP 800-38D), PBKDF2-HMAC-SHA256
// (RFC 8018 §5.2), constant-time comparison, and store-key parsing.
#include "state/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "keyrelay/ascii.h"
#include "keyrelay/http.h"
#include "keyrelay/sha256.h"

namespace keyrelay::relay {

namespace {

constexpr size_t kKeyBytes = 32;    // AES-256
constexpr size_t kIvBytes = 12;     // SP 800-38D §8.2: 96-bit IVs are the recommended, most efficient length
constexpr size_t kTagBytes = 16;    // full 128-bit tag (SP 800-38D §5.2.1.2)
constexpr size_t kSaltBytes = 16;   // SP 800-132 §5.1: at least 128 bits of random salt
constexpr size_t kHashBytes = 32;   // one SHA-256 block of PBKDF2 output
constexpr long kMaxIterations = 100'000'000;

struct CtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "keyrelay: fatal: %s\n", what);
    std::abort();
}

const unsigned char* bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

int b64_value(char c, bool& saw_std, bool& saw_url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '/') {
        saw_std = true;
        return c == '+' ? 62 : 63;
    }
    if (c == '-' || c == '_') {
        saw_url = true;
        return c == '-' ? 62 : 63;
    }
    return -1;
}

// Strict RFC 4648 decoding: §4 (standard) or §5 (url-safe) alphabet but not a mix, optional '=' padding that must
// then be complete, no whitespace, and zero unused bits in the last symbol (§3.5: canonical encoding only).
std::optional<std::string> strict_base64(std::string_view text, bool allow_url) {
    size_t end = text.size();
    size_t padding = 0;
    while (end > 0 && text[end - 1] == '=') {
        --end;
        ++padding;
    }
    if (padding > 2) return std::nullopt;
    if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
    if (end % 4 == 1 || end == 0) return std::nullopt;
    bool saw_std = false;
    bool saw_url = false;
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < end; ++i) {
        int v = b64_value(text[i], saw_std, saw_url);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    if ((saw_url && !allow_url) || (saw_std && saw_url)) return std::nullopt;
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, int iterations, size_t length) {
    std::string out(length, '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), int(password.size()), bytes(salt), int(salt.size()), iterations,
                          EVP_sha256(), int(length), bytes(out)) != 1) {
        die("PKCS5_PBKDF2_HMAC failed");
    }
    return out;
}

}  // namespace

std::string random_bytes(size_t n) {
    std::string out(n, '\0');
    if (n > size_t(INT_MAX) || (n > 0 && RAND_bytes(bytes(out), int(n)) != 1)) die("RAND_bytes failed");
    return out;
}

std::string random_token(size_t n) { return base64url_encode(random_bytes(n)); }

std::string aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad) {
    if (key.size() != kKeyBytes) die("aes256gcm_encrypt: the key is not 32 bytes (use parse_store_key)");
    if (plaintext.size() > size_t(INT_MAX) - 64 || aad.size() > size_t(INT_MAX)) die("aes256gcm_encrypt: too large");
    std::string iv = random_bytes(kIvBytes);
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) die("EVP_CIPHER_CTX_new failed");
    std::string out(kIvBytes + plaintext.size() + kTagBytes, '\0');
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kIvBytes), nullptr) == 1 &&
              EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(iv)) == 1;
    if (ok && !aad.empty()) ok = EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), int(aad.size())) == 1;
    unsigned char* ct = bytes(out) + kIvBytes;
    int written = 0;
    if (ok && !plaintext.empty()) {
        ok = EVP_EncryptUpdate(ctx.get(), ct, &len, bytes(plaintext), int(plaintext.size())) == 1;
        written = len;
    }
    if (ok) {
        ok = EVP_EncryptFinal_ex(ctx.get(), ct + written, &len) == 1;
        written += len;
    }
    if (ok) ok = size_t(written) == plaintext.size();
    if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, int(kTagBytes), ct + written) == 1;
    if (!ok) die("AES-256-GCM encryption failed");
    std::copy(iv.begin(), iv.end(), out.begin());
    return out;
}

Result<std::string> aes256gcm_decrypt(std::string_view key, std::string_view sealed, std::string_view aad) {
    if (key.size() != kKeyBytes) {
        return make_error("store.bad_key_length",
                          "The store key is " + std::to_string(key.size()) + " bytes long; AES-256 needs 32.",
                          kStoreKeyHint);
    }
    auto failed = [] {
        return make_error("store.decrypt_failed",
                          "The sealed data did not authenticate: wrong key, wrong record id, or the data was "
                          "modified.",
                          "Check that KEYRELAY_STORE_KEY is the key the data was written with; if it is, the file "
                          "was altered or damaged outside keyrelay.");
    };
    if (sealed.size() < kIvBytes + kTagBytes || sealed.size() > size_t(INT_MAX) || aad.size() > size_t(INT_MAX)) {
        return failed();
    }
    std::string_view iv = sealed.substr(0, kIvBytes);
    std::string_view ct = sealed.substr(kIvBytes, sealed.size() - kIvBytes - kTagBytes);
    std::string tag(sealed.substr(sealed.size() - kTagBytes));
    CipherCtx ctx(EVP_CIPHER_CTX_new());
    if (!ctx) die("EVP_CIPHER_CTX_new failed");
    std::string out(ct.size(), '\0');
    int len = 0;
    int written = 0;
    bool ok = EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(kIvBytes), nullptr) == 1 &&
              EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(iv)) == 1;
    if (ok && !aad.empty()) ok = EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), int(aad.size())) == 1;
    if (ok && !ct.empty()) {
        ok = EVP_DecryptUpdate(ctx.get(), bytes(out), &len, bytes(ct), int(ct.size())) == 1;
        written = len;
    }
    if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, int(kTagBytes), bytes(tag)) == 1;
    // SP 800-38D §7.2: the plaintext is released only when the tag verifies.
    if (ok) ok = EVP_DecryptFinal_ex(ctx.get(), bytes(out) + written, &len) == 1;
    if (!ok) {
        OPENSSL_cleanse(out.data(), out.size());
        return failed();
    }
    out.resize(size_t(written + len));
    return out;
}

std::string hash_password(std::string_view password, int iterations) {
    if (iterations < 1) iterations = 1;
    std::string salt = random_bytes(kSaltBytes);
    std::string hash = pbkdf2(password, salt, iterations, kHashBytes);
    return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + base64_encode(salt) + "$" + base64_encode(hash);
}

bool verify_password(std::string_view password, std::string_view encoded) {
    constexpr std::string_view scheme = "pbkdf2-sha256$";
    if (encoded.substr(0, scheme.size()) != scheme) return false;
    std::string_view rest = encoded.substr(scheme.size());
    size_t d1 = rest.find('$');
    if (d1 == std::string_view::npos) return false;
    size_t d2 = rest.find('$', d1 + 1);
    if (d2 == std::string_view::npos || rest.find('$', d2 + 1) != std::string_view::npos) return false;
    int iterations = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + d1, iterations);
    if (ec != std::errc() || end != rest.data() + d1 || rest[0] == '0' || iterations < 1 ||
        iterations > kMaxIterations) {
        return false;
    }
    auto salt = strict_base64(rest.substr(d1 + 1, d2 - d1 - 1), false);
    auto expected = strict_base64(rest.substr(d2 + 1), false);
    if (!salt || !expected || salt->empty() || expected->size() < 16 || expected->size() > 64) return false;
    std::string actual = pbkdf2(password, *salt, iterations, expected->size());
    bool equal = CRYPTO_memcmp(actual.data(), expected->data(), actual.size()) == 0;
    OPENSSL_cleanse(actual.data(), actual.size());
    return equal;
}

std::string to_hex(std::string_view bytes) {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += kHex[c >> 4];
        out += kHex[c & 0x0F];
    }
    return out;
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256(data)); }

bool secure_equals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        // Same work as a real comparison of `a`, so the time depends on the lengths only, never on the content.
        volatile int sink = CRYPTO_memcmp(a.data(), a.data(), a.size());
        (void)sink;
        return false;
    }
    return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Result<std::string> parse_store_key(std::string_view text) {
    std::string_view t = trim(text);
    if (t.size() == 2 * kKeyBytes) {
        std::string key;
        key.reserve(kKeyBytes);
        bool hex = true;
        for (size_t i = 0; i < t.size() && hex; i += 2) {
            int hi = hex_value(t[i]);
            int lo = hex_value(t[i + 1]);
            hex = hi >= 0 && lo >= 0;
            if (hex) key += static_cast<char>(hi * 16 + lo);
        }
        if (hex) return key;
        OPENSSL_cleanse(key.data(), key.size());
    }
    if (auto decoded = strict_base64(t, true)) {
        if (decoded->size() == kKeyBytes) return std::move(*decoded);
        std::string message = "The store key is base64 of " + std::to_string(decoded->size()) + " bytes, not 32.";
        OPENSSL_cleanse(decoded->data(), decoded->size());
        return make_error("store.bad_key_length", std::move(message), kStoreKeyHint);
    }
    std::string message =
        t.empty() ? std::string("The store key is empty.")
                  : "The store key (" + std::to_string(t.size()) +
                        " characters) is neither 64 hex characters nor base64 of 32 bytes.";
    return make_error("store.bad_key_length", std::move(message), kStoreKeyHint);
}

}  // namespace keyrelay::relay
