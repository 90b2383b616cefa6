// Internal: the explanations shared by diagnose.cpp, keap.cpp and jira.cpp.
// The functions declared (not defined) here live in diagnose.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "keyrelay/ascii.h"
#include "keyrelay/http.h"
#include "keyrelay/rate_limit.h"

namespace keyrelay::explain {

// Trims ASCII whitespace, and a UTF-8 byte order mark at the front: what a body starts with is what counts.
inline std::string_view trim_body(std::string_view s) {
    s = trim(s);
    if (s.size() >= 3 && s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
    return trim(s);
}

// One line for a person: whitespace runs collapse to one space, control bytes become spaces, at most max bytes
// (cut on a UTF-8 boundary, with "..." appended).
inline std::string one_line(std::string_view s, size_t max = 200) {
    s = trim_body(s);
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

// What a rate-limited response says about when to retry: read_rate_limit() in words.
struct RateLimit {
    std::optional<int> retry_after_seconds;
    std::string when;   // one or two sentences for a person: which limit, and when to retry
};
RateLimit rate_limit(const HttpResponse& response, std::optional<int64_t> now);

// A hint for a Keap XML-RPC faultString ([InvalidConfig], [FailedLoginAttempt], "No such handler: X", ...).
std::string xmlrpc_fault_hint(std::string_view fault_string);

}  // namespace keyrelay::explain
