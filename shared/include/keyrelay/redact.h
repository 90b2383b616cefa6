// Redaction of the secrets the relay sent, wherever an answer echoes them back.
// A token endpoint, a gateway or a misconfigured proxy may answer with its request inside (an error_description
// holding the request body, a title holding the Authorization header, a header repeating a token). The relay knows
// every secret it sent, so it can take each out of any text before that text reaches a page, a JSON error, a log
// line, a diagnosis hint, a proxied body or a passed-through header (docs/reference/security.md).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/http.h"

namespace keyrelay {

// What replaces a secret.
inline constexpr std::string_view kRedacted = "[redacted]";

class Redactor {
public:
    // Secrets shorter than this are not redacted: replacing every "abc" would shred an answer and hide nothing.
    static constexpr size_t kMinSecretLength = 8;

    Redactor() = default;
    explicit Redactor(const std::vector<std::string>& secrets);

    // Adds a secret (ignored when shorter than kMinSecretLength or already known).
    void add(std::string_view secret);
    // Adds every secret an outgoing request carries (secrets_of()).
    void add_request(const HttpRequest& sent);
    bool empty() const { return secrets_.empty(); }
    const std::vector<std::string>& secrets() const { return secrets_; }

    // `text` with every occurrence of every secret replaced by kRedacted, in each of these forms:
    //  - raw;
    //  - percent-encoded (RFC 3986 §2.1, %XX in upper or lower hex, any mix of encoded and plain characters);
    //  - form-encoded (application/x-www-form-urlencoded: '+' for a space);
    //  - JSON-escaped (RFC 8259 §7: \uXXXX in either case for any character, \/ \\ \" and the short escapes);
    //  - HTML character references (&#NN; &#xHH; &amp; &lt; &gt; &quot; &#39; &apos;);
    //  - base64 and base64url (RFC 4648 §4, §5) of the secret, alone or inside a longer base64 text such as the
    //    Basic credential base64(id ":" secret): the whole base64 run holding it is replaced; also the base64 of
    //    its form-encoding (RFC 6749 §2.3.1 form-encodes id and secret before base64).
    // Matching is per character, so the forms mix (a JSON-escaped percent-encoding still matches).
    std::string redact(std::string_view text) const;
    // In place; returns true when something was replaced.
    bool redact_in_place(std::string& text) const;
    // Every header value (names are kept).
    bool redact_headers(Headers& headers) const;
    // The body and every header value.
    bool redact_response(HttpResponse& response) const;
    // An error's message and hint (a parsed OAuth error_description, a diagnosis quoting the body).
    bool redact_error(Error& error) const;

private:
    void add_needle(std::string needle, bool base64);

    std::vector<std::string> secrets_;
    // What the text is scanned for: each secret, and its base64 forms (base64 = true: the whole base64 run around a
    // match is redacted). Other forms are matched per character.
    struct Needle {
        std::string text;
        bool base64 = false;
    };
    std::vector<Needle> needles_;
    // Needles by the byte a match may start with: their first byte, or a byte that starts an escape.
    std::array<std::vector<uint32_t>, 256> by_first_{};
};

// The secrets in a request the relay is about to send: the credential of an Authorization header (a Bearer token,
// a Basic value and, decoded, its "id:secret" and the secret after the ':'), X-Keap-API-Key, and in a form or JSON
// body the values of client_secret, refresh_token, access_token, code, code_verifier, password, assertion and
// client_assertion. Never the client_id alone (it is public: it is in every authorize URL).
std::vector<std::string> secrets_of(const HttpRequest& sent);

}  // namespace keyrelay
