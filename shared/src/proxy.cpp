#include "keyrelay/proxy.h"

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/ascii.h"

namespace keyrelay::proxy {
namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

// RFC 3986 §3.3 pchar without '%': unreserved / sub-delims / ":" / "@". As a table: every byte of every proxied path
// and query is looked up.
constexpr std::array<bool, 256> make_pchar_table() {
    std::array<bool, 256> table{};
    for (int c = 0; c < 256; ++c) {
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        bool other = false;
        for (char ch : std::string_view("-._~!$&'()*+,;=:@")) other = other || c == static_cast<unsigned char>(ch);
        table[static_cast<size_t>(c)] = alnum || other;   // unreserved, sub-delims, ":" and "@"
    }
    return table;
}
constexpr std::array<bool, 256> kPchar = make_pchar_table();

bool is_pchar(unsigned char c) { return kPchar[c]; }

constexpr char kHex[] = "0123456789ABCDEF";

void append_pct(std::string& out, unsigned char c) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
}

Error bad_path(std::string message, std::string hint) {
    return make_error("proxy.bad_path", std::move(message), std::move(hint));
}

std::string shown(std::string_view raw) {
    std::string out;
    for (char ch : raw.substr(0, 120)) {
        auto c = static_cast<unsigned char>(ch);
        if (is_control(c)) {
            append_pct(out, c);
        } else {
            out += ch;
        }
    }
    if (raw.size() > 120) out += "...";
    return out;
}

// Calls f(segment) for each '/'-separated part of s (empty parts included) until f returns false.
template <class F>
bool each_segment(std::string_view s, F f) {
    size_t pos = 0;
    while (true) {
        size_t next = s.find('/', pos);
        if (!f(s.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos))) return false;
        if (next == std::string_view::npos) return true;
        pos = next + 1;
    }
}

constexpr const char* kPathHint =
    "Pass the provider's API path after /proxy/{provider}/, e.g. crm/rest/v1/contacts?email=a%40b.com, with each "
    "segment percent-encoded once.";

// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". True when the segment starts with one.
bool starts_with_scheme(std::string_view decoded) {
    size_t colon = decoded.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    for (size_t k = 0; k < colon; ++k) {
        char ch = decoded[k];
        bool alpha = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
        if (!(alpha || (k > 0 && ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.')))) return false;
    }
    return true;
}

// Checks one path segment (still percent-encoded) and appends its normalized form to out.
std::optional<Error> check_segment(std::string_view raw, std::string_view segment, size_t index, std::string& out) {
    if (segment.empty()) {
        return bad_path("The path \"" + shown(raw) + "\" has an empty segment (\"//\" or a trailing '/').",
                        std::string("Remove the doubled or trailing slash. ") + kPathHint);
    }
    // The common case, a segment of plain pchars: it decodes to itself and is sent as it is.
    if (std::all_of(segment.begin(), segment.end(), [](char ch) { return is_pchar(static_cast<unsigned char>(ch)); })) {
        std::string_view bare = segment.substr(0, segment.find(';'));
        if (bare != "." && bare != ".." && (index != 0 || !starts_with_scheme(segment))) {
            out += '/';
            out += segment;
            return std::nullopt;
        }
    }
    std::string decoded;
    std::string normalized;
    for (size_t i = 0; i < segment.size(); ++i) {
        auto c = static_cast<unsigned char>(segment[i]);
        if (c == '%') {
            int hi = i + 2 < segment.size() ? hex_value(segment[i + 1]) : -1;
            int lo = i + 2 < segment.size() ? hex_value(segment[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return bad_path("The path \"" + shown(raw) + "\" has a '%' not followed by two hex digits.",
                                "Encode a literal '%' as %25 (RFC 3986 §2.1).");
            }
            auto byte = static_cast<unsigned char>((hi << 4) | lo);
            if (byte == '/' || byte == '\\') {
                // An encoded separator can be decoded by the provider's gateway into a real one (path traversal).
                return bad_path("The path \"" + shown(raw) + "\" contains an encoded slash or backslash (%2F, %5C).",
                                "A segment cannot contain '/' or '\\' through the relay: encoded separators are "
                                "refused because some servers decode them and walk out of the allowed path.");
            }
            if (is_control(byte)) {
                return bad_path("The path \"" + shown(raw) + "\" contains an encoded control character.",
                                "CR, LF, NUL and other control characters never belong in an API path (header "
                                "injection / request splitting).");
            }
            decoded += static_cast<char>(byte);
            normalized.append(segment.substr(i, 3));
            i += 2;
            continue;
        }
        if (c == '\\') {
            return bad_path("The path \"" + shown(raw) + "\" contains a backslash.",
                            "Use '/' between segments; a backslash is refused because some servers treat it as a "
                            "separator.");
        }
        decoded += static_cast<char>(c);
        if (is_pchar(c)) {
            normalized += static_cast<char>(c);
        } else {
            append_pct(normalized, c);   // e.g. a raw space or non-ASCII byte: send it encoded
        }
    }
    // Double encoding, however it is spelled ("%252F", "%25%32%46", "%25%32F"): decoded once, the segment must hold
    // no escape that a second decoder (a gateway, a servlet container) would turn into '/', '.' or anything else.
    for (size_t k = 0; k + 2 < decoded.size(); ++k) {
        if (decoded[k] == '%' && hex_value(decoded[k + 1]) >= 0 && hex_value(decoded[k + 2]) >= 0) {
            return bad_path("The path \"" + shown(raw) + "\" is percent-encoded twice (it decodes to \"%" +
                                decoded.substr(k + 1, 2) + "\").",
                            "Encode each segment exactly once: double encoding is a classic way past path "
                            "checks, so the relay refuses it.");
        }
    }
    // RFC 3986 §5.2.4: "." and ".." are dot-segments, whatever their encoding (%2e). Servlet containers also
    // strip ";params" from a segment before resolving dots, so "..;x" counts as "..".
    std::string bare = decoded.substr(0, decoded.find(';'));
    if (bare == "." || bare == "..") {
        return bad_path("The path \"" + shown(raw) + "\" contains a \"" + bare + "\" segment.",
                        "Dot-segments are refused: they would move the request outside the allowed API paths. "
                        "Write the path without them.");
    }
    if (index == 0 && starts_with_scheme(decoded)) {
        return bad_path("The path \"" + shown(raw) + "\" starts with a URL scheme (\"" +
                            decoded.substr(0, decoded.find(':') + 1) + "\").",
                        "The relay only calls the provider's configured API host; pass a path such as "
                        "crm/rest/v1/contacts, never a full URL.");
    }
    out += '/';
    out += normalized;
    return std::nullopt;
}

}  // namespace

Result<std::string> validate_path(std::string_view raw) {
    for (char ch : raw) {
        auto c = static_cast<unsigned char>(ch);
        if (is_control(c)) {
            return bad_path("The path \"" + shown(raw) + "\" contains a control character (CR, LF, NUL, ...).",
                            "Control characters are refused anywhere in a proxied path or query: they could split "
                            "the upstream request. Percent-encode data in query values.");
        }
        if (c == '#') {
            return bad_path("The path \"" + shown(raw) + "\" contains '#'.",
                            "A fragment is never sent to a server; a '#' in data must be percent-encoded as %23.");
        }
    }
    std::string_view rest = raw;
    if (rest.substr(0, 2) == "//") {
        return bad_path("The path \"" + shown(raw) + "\" starts with \"//\" (a network-path reference to another host).",
                        "The relay only calls the provider's configured API host; pass a path such as "
                        "crm/rest/v1/contacts.");
    }
    if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    size_t q = rest.find('?');
    std::string_view path = rest.substr(0, q);
    std::string_view query = q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1);
    if (path.empty()) {
        return bad_path("The proxied path is empty.",
                        "Call /proxy/{provider}/<api path>, e.g. /proxy/keap/crm/rest/v1/contacts?email=a%40b.com.");
    }
    std::string out;
    out.reserve(raw.size() + 16);
    std::optional<Error> error;
    size_t index = 0;
    each_segment(path, [&](std::string_view segment) {
        error = check_segment(raw, segment, index++, out);
        return !error;
    });
    if (error) return *error;
    if (!query.empty()) {
        // The query is data for the provider: encoded control characters are allowed in values, but every '%'
        // must start a valid escape so the provider decodes what the caller meant.
        out += '?';
        for (size_t i = 0; i < query.size();) {
            // RFC 3986 §3.4: query = *( pchar / "/" / "?" ), passed on as it is.
            size_t start = i;
            while (i < query.size() && (is_pchar(static_cast<unsigned char>(query[i])) || query[i] == '/' ||
                                        query[i] == '?')) {
                ++i;
            }
            out.append(query.substr(start, i - start));
            if (i >= query.size()) break;
            auto c = static_cast<unsigned char>(query[i]);
            if (c == '%') {
                if (i + 2 >= query.size() || hex_value(query[i + 1]) < 0 || hex_value(query[i + 2]) < 0) {
                    return bad_path("The query of \"" + shown(raw) + "\" has a '%' not followed by two hex digits.",
                                    "Percent-encode query values (a literal '%' is %25), e.g. email=a%40b.com.");
                }
                out += '%';
            } else {
                append_pct(out, c);
            }
            ++i;
        }
    }
    return out;
}

bool allowed(const std::vector<Rule>& rules, std::string_view method, std::string_view path) {
    size_t q = path.find('?');
    if (q != std::string_view::npos) path = path.substr(0, q);
    if (path.empty() || path.front() != '/') return false;
    path.remove_prefix(1);
    size_t count = 0;
    bool valid = each_segment(path, [&](std::string_view s) {
        ++count;
        return !(s.empty() || s == "." || s == "..");   // never valid after validate_path
    });
    if (!valid) return false;
    for (const auto& rule : rules) {
        // RFC 9110 §9.1: method names are case-sensitive.
        if (rule.method != "*" && rule.method != method) continue;
        std::string_view pattern = rule.pattern;
        if (pattern.empty() || pattern.front() != '/') continue;
        // The pattern's and the path's segments side by side (this runs for every rule of every proxied call: no
        // allocation).
        pattern.remove_prefix(1);
        bool match = true;
        size_t i = 0;
        size_t at = 0;   // the path's next segment starts here
        for (size_t pos = 0;; ++i) {
            size_t next = pattern.find('/', pos);
            bool last = next == std::string_view::npos;
            std::string_view part = pattern.substr(pos, last ? std::string_view::npos : next - pos);
            if (part == "**") {
                // "**" is only meaningful last; it matches one or more remaining segments.
                match = last && count > i;
                i = count;
                break;
            }
            if (i >= count) {
                match = false;
                break;
            }
            size_t end = path.find('/', at);
            std::string_view segment =
                path.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
            at = end == std::string_view::npos ? path.size() : end + 1;
            if (part != "*" && part != segment) {
                match = false;
                break;
            }
            if (last) {
                ++i;
                break;
            }
            pos = next + 1;
        }
        if (match && i == count) return true;
    }
    return false;
}

}  // namespace keyrelay::proxy
