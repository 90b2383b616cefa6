// HTTP values and codecs. No I/O: requests are built here and sent by an adapter
// (the relay's cpp-httplib client, the page's fetch()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyrelay/ascii.h"
#include "keyrelay/result.h"

namespace keyrelay {

using Params = std::vector<std::pair<std::string, std::string>>;

// Ordered header list; name lookups are ASCII case-insensitive (RFC 9110 §5.1, iequals from ascii.h).
class Headers {
public:
    Headers() = default;
    Headers(std::initializer_list<std::pair<std::string, std::string>> init);

    // First value for name, if any.
    std::optional<std::string> get(std::string_view name) const;
    // The first value of that name without a copy, or nullptr; valid until the headers change.
    const std::string* find(std::string_view name) const;
    bool has(std::string_view name) const;
    // Replaces every existing value of name.
    void set(std::string name, std::string value);
    // Appends another value (e.g. Set-Cookie).
    void add(std::string name, std::string value);
    void remove(std::string_view name);
    // Room for n fields without reallocating.
    void reserve(size_t n) { items_.reserve(n); }

    const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
    bool empty() const { return items_.empty(); }

private:
    std::vector<std::pair<std::string, std::string>> items_;
};

struct HttpRequest {
    std::string method;   // "GET", "POST", ...
    std::string url;      // absolute ("https://host/path?q") or origin-relative ("/proxy/keap/...")
    Headers headers;
    std::string body;
};

struct HttpResponse {
    int status = 0;
    Headers headers;
    std::string body;
};

// RFC 3986 §2.3: everything except unreserved characters is %XX-encoded (uppercase hex).
std::string percent_encode(std::string_view s);
// Decodes %XX; with plus_as_space, '+' becomes ' ' (application/x-www-form-urlencoded).
// Errors: "http.bad_percent_encoding" for a '%' not followed by two hex digits.
Result<std::string> percent_decode(std::string_view s, bool plus_as_space = false);

// application/x-www-form-urlencoded (WHATWG URL §5): space -> '+', unreserved kept, rest %XX.
std::string form_urlencode(std::string_view s);
std::string form_encode(const Params& params);
// Errors: "http.bad_percent_encoding".
Result<Params> form_decode(std::string_view body);

// Parses the query of a URL, a "?a=b" string or a bare "a=b&c=d" string.
// Errors: "http.bad_percent_encoding".
Result<Params> parse_query(std::string_view url_or_query);
// First value of name in params.
std::optional<std::string> param(const Params& params, std::string_view name);

// RFC 4648 §4 base64 with padding.
std::string base64_encode(std::string_view bytes);
// Accepts padded or unpadded input, ignores ASCII whitespace. Errors: "base64.invalid".
Result<std::string> base64_decode(std::string_view text);
// RFC 4648 §5 base64url without padding (PKCE, RFC 7636 §4.2).
std::string base64url_encode(std::string_view bytes);

struct Url {
    std::string scheme;   // lowercase, "https"
    std::string host;     // lowercase
    int port = 0;         // explicit port or the scheme default (80/443)
    std::string path;     // "/..." (at least "/")
    std::string query;    // without '?'
};
// Errors: "http.bad_url" with a hint naming what is wrong.
Result<Url> parse_url(std::string_view url);

// Joins a base ("https://h/a" or "/proxy/keap") and a path ("/b?x=1").
std::string join_url(std::string_view base, std::string_view path);

}  // namespace keyrelay
