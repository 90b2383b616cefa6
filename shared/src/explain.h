// Internal: text helpers and the explanations shared by diagnose.cpp, keap.cpp and jira.cpp.
// The functions declared (not defined) here live in diagnose.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "keyrelay/http.h"

namespace keyrelay::explain {

inline char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower_ascii(c);
    return out;
}

// ASCII case-insensitive substring search.
inline size_t ifind(std::string_view haystack, std::string_view needle, size_t from = 0) {
    if (needle.empty()) return from <= haystack.size() ? from : std::string_view::npos;
    if (haystack.size() < needle.size()) return std::string_view::npos;
    for (size_t i = from; i + needle.size() <= haystack.size(); ++i) {
        size_t k = 0;
        while (k < needle.size() && lower_ascii(haystack[i + k]) == lower_ascii(needle[k])) ++k;
        if (k == needle.size()) return i;
    }
    return std::string_view::npos;
}

inline bool icontains(std::string_view haystack, std::string_view needle) {
    return ifind(haystack, needle) != std::string_view::npos;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && ifind(s.substr(0, prefix.size()), prefix) == 0;
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

// Trims ASCII whitespace, and a UTF-8 byte order mark at the front.
inline std::string_view trim(std::string_view s) {
    if (s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// One line for a person: whitespace runs collapse to one space, control bytes become spaces, at most max bytes
// (cut on a UTF-8 boundary, with "..." appended).
inline std::string one_line(std::string_view s, size_t max = 200) {
    s = trim(s);
    std::string out;
    bool space = false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F || ch == ' ') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += ch;
        if (out.size() >= max) break;
    }
    if (out.size() >= max && out.size() < s.size()) {
        while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
        if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
        out += "...";
    }
    return out;
}

// "HTTP 404 Not Found"
std::string status_line(int status);

// The media type of the response, lowercase, without parameters ("application/json"); "" when absent.
std::string media_type(const HttpResponse& response);

// What a rate-limited response says about when to retry (Retry-After; Keap's x-keap-*-throttle-* and
// x-keap-product-quota-*; Jira's X-RateLimit-Reset), measured against the response's own Date header when a
// header gives a point in time: the core has no clock.
struct RateLimit {
    std::optional<int> retry_after_seconds;
    std::string when;   // one or two sentences for a person: which limit, and when to retry
};
RateLimit rate_limit(const HttpResponse& response);

// A hint for a Keap XML-RPC faultString ([InvalidConfig], [FailedLoginAttempt], "No such handler: X", ...).
std::string xmlrpc_fault_hint(std::string_view fault_string);

}  // namespace keyrelay::explain
