// The redactor: the first line of the input is a secret, the rest a provider's answer that may echo it.
// Properties (when the secret is long enough to be redacted and holds no '[' or ']', which "[redacted]" could
// complete):
//  - the output contains neither the raw secret, nor its percent-encoding, nor its base64 or base64url;
//  - the secret, planted raw, percent-encoded and base64-encoded into the answer, is gone from the output;
//  - a text without the secret's first byte, without any escape and without base64 letters comes back unchanged.
#include <string>

#include "fuzz_common.h"
#include "keyrelay/redact.h"

using namespace keyrelay;

namespace {

void check_gone(const std::string& out, const std::string& secret) {
    FUZZ_CHECK(out.find(secret) == std::string::npos, "the raw secret survived in " + out);
    FUZZ_CHECK(out.find(percent_encode(secret)) == std::string::npos, "the percent-encoded secret survived");
    FUZZ_CHECK(out.find(base64_encode(secret)) == std::string::npos, "the base64 secret survived");
    FUZZ_CHECK(out.find(base64url_encode(secret)) == std::string::npos, "the base64url secret survived");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in = fuzz::text(data, size);
    const size_t eol = in.find('\n');
    if (eol == std::string_view::npos) return 0;
    const std::string secret(in.substr(0, eol));
    const std::string text(in.substr(eol + 1));
    Redactor r({secret});
    const std::string out = r.redact(text);
    if (secret.size() < Redactor::kMinSecretLength) {
        FUZZ_CHECK(out == text, "a short secret changed the text");
        return 0;
    }
    if (secret.find_first_of("[]") != std::string::npos) return 0;
    check_gone(out, secret);
    const std::string planted = text + "|" + secret + "|" + percent_encode(secret) + "|" + base64_encode(secret) + "|" +
                                text;
    check_gone(r.redact(planted), secret);
    static const std::string kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_-";
    bool plain = text.find(secret[0]) == std::string::npos && text.find_first_of("%\\&+") == std::string::npos &&
                 text.find_first_of(kBase64) == std::string::npos;
    if (plain) FUZZ_CHECK(out == text, "a text that cannot spell the secret changed");
    return 0;
}
