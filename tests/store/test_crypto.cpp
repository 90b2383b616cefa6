#include <catch2/catch.hpp>

#include <string>

#include "state/crypto.h"
#include "keyrelay/http.h"
#include "temp_dir.h"

using namespace keyrelay::relay;

namespace {

// 0xe0 .. 0xff: its standard base64 has '+' and '/', so it also exercises the url-safe alphabet.
const std::string kKey = [] {
    std::string k;
    for (int b = 0xe0; b <= 0xff; ++b) k += static_cast<char>(b);
    return k;
}();
const std::string kOtherKey(32, '\x42');

const std::string kKeyHint =
    "KEYRELAY_STORE_KEY must be 32 bytes: 64 hex characters (make one with `openssl rand -hex 32`) or base64 of "
    "32 bytes";

}  // namespace

TEST_CASE("random_bytes returns the requested number of fresh bytes", "[crypto]") {
    CHECK(random_bytes(0).empty());
    std::string a = random_bytes(32);
    std::string b = random_bytes(32);
    CHECK(a.size() == 32);
    CHECK(b.size() == 32);
    CHECK(a != b);
}

TEST_CASE("random_token is unpadded base64url of n random bytes", "[crypto]") {
    std::string t = random_token();
    CHECK(t.size() == 43);   // ceil(32 * 4 / 3) without '=' (RFC 4648 §5)
    CHECK(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
    CHECK(random_token(16).size() == 22);
    CHECK(random_token() != random_token());
}

TEST_CASE("AES-256-GCM sealing round-trips and lays out iv, ciphertext and tag", "[crypto]") {
    std::string plaintext = R"({"provider":"keap","tokens":{"access_token":"at-123"}})";
    std::string sealed = aes256gcm_encrypt(kKey, plaintext, "keap");
    CHECK(sealed.size() == 12 + plaintext.size() + 16);
    CHECK(sealed.find("at-123") == std::string::npos);

    auto opened = aes256gcm_decrypt(kKey, sealed, "keap");
    REQUIRE(opened.ok());
    CHECK(opened.value() == plaintext);

    SECTION("the same plaintext seals differently each time (random IV)") {
        std::string again = aes256gcm_encrypt(kKey, plaintext, "keap");
        CHECK(again.substr(0, 12) != sealed.substr(0, 12));
        CHECK(again != sealed);
    }
    SECTION("an empty plaintext and an empty aad are fine") {
        std::string empty = aes256gcm_encrypt(kKey, "", "");
        CHECK(empty.size() == 28);
        auto back = aes256gcm_decrypt(kKey, empty, "");
        REQUIRE(back.ok());
        CHECK(back.value().empty());
        CHECK(aes256gcm_decrypt(kKey, empty, "keap").error().code == "store.decrypt_failed");
    }
}

TEST_CASE("tampered ciphertext, tag, iv or associated data fail with store.decrypt_failed", "[crypto]") {
    std::string plaintext = "refresh-token-secret";
    std::string sealed = aes256gcm_encrypt(kKey, plaintext, "keap");
    size_t at = GENERATE(0, 11, 12, 20, 31, 32, 47);   // iv: 0..11, ciphertext: 12..31, tag: 32..47
    CAPTURE(at);
    std::string tampered = sealed;
    tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
    auto r = aes256gcm_decrypt(kKey, tampered, "keap");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.decrypt_failed");
    CHECK_FALSE(r.error().hint.empty());
}

TEST_CASE("a record sealed for one id does not open under another id", "[crypto]") {
    std::string sealed = aes256gcm_encrypt(kKey, "tokens", "keap");
    auto r = aes256gcm_decrypt(kKey, sealed, "jira");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.decrypt_failed");
}

TEST_CASE("truncated sealed data fails with store.decrypt_failed", "[crypto]") {
    std::string sealed = aes256gcm_encrypt(kKey, "tokens", "keap");
    CHECK(aes256gcm_decrypt(kKey, sealed.substr(0, sealed.size() - 1), "keap").error().code == "store.decrypt_failed");
    CHECK(aes256gcm_decrypt(kKey, sealed.substr(0, 27), "keap").error().code == "store.decrypt_failed");
    CHECK(aes256gcm_decrypt(kKey, "", "keap").error().code == "store.decrypt_failed");
}

TEST_CASE("decrypting with another key fails instead of returning garbage", "[crypto]") {
    std::string sealed = aes256gcm_encrypt(kKey, "tokens", "keap");
    auto r = aes256gcm_decrypt(kOtherKey, sealed, "keap");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.decrypt_failed");
}

TEST_CASE("decrypting with a key that is not 32 bytes is store.bad_key_length", "[crypto]") {
    std::string sealed = aes256gcm_encrypt(kKey, "tokens", "keap");
    auto r = aes256gcm_decrypt(kKey.substr(0, 16), sealed, "keap");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "store.bad_key_length");
    CHECK(r.error().hint == kKeyHint);
}

TEST_CASE("store keys parse from 64 hex characters or base64 of 32 bytes", "[crypto][keys]") {
    auto [text, what] = GENERATE(table<std::string, std::string>({
        {"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "lowercase hex"},
        {"E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF", "uppercase hex"},
        {"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff\n", "hex with a trailing newline"},
        {"4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=", "standard base64"},
        {"4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8", "standard base64 without padding"},
        {"4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8=", "base64url"},
        {"4OHi4-Tl5ufo6err7O3u7_Dx8vP09fb3-Pn6-_z9_v8", "base64url without padding"},
        {"  4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8=\r\n", "base64 with surrounding whitespace"},
    }));
    CAPTURE(what);
    auto key = parse_store_key(text);
    REQUIRE(key.ok());
    CHECK(key.value() == kKey);
}

TEST_CASE("anything else is refused as store.bad_key_length with a hint on making a key", "[crypto][keys]") {
    auto [text, what] = GENERATE(table<std::string, std::string>({
        {"", "empty"},
        {"   \n", "only whitespace"},
        {"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfef", "63 hex characters"},
        {"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0", "65 hex characters"},
        {"g0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "64 characters, not all hex"},
        {"00112233445566778899aabbccddeeff", "32 hex characters (a 16-byte key)"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "base64 of 31 bytes"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "base64 of 33 bytes"},
        {"4OHi4+Tl5ufo6err7O3u7_Dx8vP09fb3+Pn6+/z9/v8=", "standard and url alphabets mixed"},
        {"4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v9=", "non-canonical trailing bits"},
        {"4OHi4+Tl5ufo6err7O3u7/Dx 8vP09fb3+Pn6+/z9/v8=", "whitespace inside"},
        {"4OHi4+Tl5ufo6err7O3u7/Dx8vP09fb3+Pn6+/z9/v8==", "too much padding"},
        {"correct horse battery staple", "a passphrase"},
    }));
    CAPTURE(what);
    auto key = parse_store_key(text);
    REQUIRE_FALSE(key.ok());
    CHECK(key.error().code == "store.bad_key_length");
    CHECK(key.error().hint == kKeyHint);
    if (text.size() > 8) CHECK(key.error().message.find(text) == std::string::npos);   // never echo a secret
}

TEST_CASE("a password hash has the documented format and verifies with the right password only", "[crypto][password]") {
    std::string encoded = hash_password("hunter2", 1000);
    CAPTURE(encoded);
    REQUIRE(encoded.rfind("pbkdf2-sha256$1000$", 0) == 0);
    std::string rest = encoded.substr(std::string("pbkdf2-sha256$1000$").size());
    size_t dollar = rest.find('$');
    REQUIRE(dollar != std::string::npos);
    auto salt = keyrelay::base64_decode(rest.substr(0, dollar));
    auto hash = keyrelay::base64_decode(rest.substr(dollar + 1));
    REQUIRE(salt.ok());
    REQUIRE(hash.ok());
    CHECK(salt.value().size() == 16);
    CHECK(hash.value().size() == 32);

    CHECK(verify_password("hunter2", encoded));
    CHECK_FALSE(verify_password("hunter3", encoded));
    CHECK_FALSE(verify_password("", encoded));
    CHECK_FALSE(verify_password("hunter2 ", encoded));
    CHECK(hash_password("hunter2", 1000) != encoded);   // a fresh salt every time
}

TEST_CASE("the default password hash uses 210000 iterations", "[crypto][password]") {
    std::string encoded = hash_password("demo");
    CHECK(encoded.rfind("pbkdf2-sha256$210000$", 0) == 0);
    CHECK(verify_password("demo", encoded));
}

TEST_CASE("verify_password is PBKDF2-HMAC-SHA256 (RFC 7914 §11 test vector)", "[crypto][password]") {
    // P = "passwd", S = "salt", c = 1, dkLen = 64.
    std::string dk =
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783";
    std::string bytes;
    for (size_t i = 0; i < dk.size(); i += 2) bytes += static_cast<char>(std::stoi(dk.substr(i, 2), nullptr, 16));
    std::string encoded = "pbkdf2-sha256$1$" + keyrelay::base64_encode("salt") + "$" + keyrelay::base64_encode(bytes);
    CHECK(verify_password("passwd", encoded));
    CHECK_FALSE(verify_password("passwe", encoded));
}

TEST_CASE("verify_password refuses malformed encodings", "[crypto][password]") {
    std::string good = hash_password("pw", 1000);
    REQUIRE(verify_password("pw", good));
    size_t salt_at = good.find('$', std::string("pbkdf2-sha256$").size()) + 1;
    size_t hash_at = good.find('$', salt_at) + 1;
    std::string salt = good.substr(salt_at, hash_at - salt_at - 1);
    std::string hash = good.substr(hash_at);
    auto [encoded, what] = GENERATE_COPY(table<std::string, std::string>({
        {"", "empty"},
        {"pw", "the password itself"},
        {"pbkdf2-sha1$1000$" + salt + "$" + hash, "another scheme"},
        {"PBKDF2-SHA256$1000$" + salt + "$" + hash, "scheme in another case"},
        {"pbkdf2-sha256$1000$" + salt, "no hash"},
        {"pbkdf2-sha256$1000$" + salt + "$" + hash + "$", "an extra field"},
        {"pbkdf2-sha256$$" + salt + "$" + hash, "no iterations"},
        {"pbkdf2-sha256$0$" + salt + "$" + hash, "zero iterations"},
        {"pbkdf2-sha256$01000$" + salt + "$" + hash, "iterations with a leading zero"},
        {"pbkdf2-sha256$-1000$" + salt + "$" + hash, "negative iterations"},
        {"pbkdf2-sha256$1e3$" + salt + "$" + hash, "iterations not in decimal"},
        {"pbkdf2-sha256$999999999999$" + salt + "$" + hash, "absurd iterations"},
        {"pbkdf2-sha256$1000$$" + hash, "empty salt"},
        {"pbkdf2-sha256$1000$" + salt + "$", "empty hash"},
        {"pbkdf2-sha256$1000$" + salt + "$" + hash.substr(0, 8), "a truncated hash"},
        {"pbkdf2-sha256$1000$" + salt + "!$" + hash, "salt not base64"},
        {"pbkdf2-sha256$1000$" + salt + "$ " + hash, "whitespace in the hash"},
        {"pbkdf2-sha256$1001$" + salt + "$" + hash, "another iteration count"},
    }));
    CAPTURE(what, encoded);
    CHECK_FALSE(verify_password("pw", encoded));
}

TEST_CASE("secure_equals compares content and length", "[crypto]") {
    CHECK(secure_equals("", ""));
    CHECK(secure_equals("api-key-123", "api-key-123"));
    CHECK_FALSE(secure_equals("api-key-123", "api-key-124"));
    CHECK_FALSE(secure_equals("api-key-123", "bpi-key-123"));
    CHECK_FALSE(secure_equals("api-key-123", "api-key-12"));
    CHECK_FALSE(secure_equals("api-key-12", "api-key-123"));
    CHECK_FALSE(secure_equals("", "x"));
    CHECK_FALSE(secure_equals("x", ""));
    CHECK(secure_equals(std::string("a\0b", 3), std::string("a\0b", 3)));
    CHECK_FALSE(secure_equals(std::string("a\0b", 3), std::string("a\0c", 3)));
}
