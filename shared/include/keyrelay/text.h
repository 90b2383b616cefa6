// Small text helpers shared by the core, the relay and the sandbox.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keyrelay {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// Appends the UTF-8 encoding of a Unicode code point (RFC 3629 §3). The caller checks that cp is a valid scalar.
void utf8_append(std::string& out, uint32_t cp);

// Does s contain CR or LF? (A header field value never does, RFC 9110 §5.5; one that does would split a message.)
inline bool has_line_break(std::string_view s) {
    for (char c : s) {
        if (c == '\r' || c == '\n') return true;
    }
    return false;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629 §4: no overlong forms, no surrogates, nothing
// above U+10FFFF), 0 when there is none. ASCII is 1.
size_t utf8_sequence_length(std::string_view s, size_t i);

// Is `text` one JSON text (RFC 8259 §2) in UTF-8: any value, whitespace around it, strings of valid UTF-8 without
// control characters, escapes with paired surrogates (§7, §8.2)? A leading UTF-8 byte order mark is skipped. The
// same answer as nlohmann::json::accept (tests/fuzz checks them against each other) except on a NUL byte, which
// nlohmann takes for the end of its input and this refuses; one pass without building anything; nesting depth is
// limited only by memory (one byte per open bracket).
bool is_json_text(std::string_view text);

}  // namespace keyrelay
