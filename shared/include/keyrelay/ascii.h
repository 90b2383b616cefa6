// ASCII text helpers: case folding, case-insensitive comparison and search, whitespace trimming.
// HTTP field names, media types, tokens and dates are ASCII and case-insensitive (RFC 9110 §5.1, §8.3.1); these
// never look at the locale (std::tolower does), and leave every byte >= 0x80 as it is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace keyrelay {

constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }
constexpr char ascii_upper(char c) { return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c; }

// A copy with A-Z folded to a-z (to_lower) or a-z to A-Z (to_upper).
inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}
inline std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_upper(c);
    return out;
}

// Equal when A-Z and a-z are taken as the same letter.
constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}
constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}
constexpr bool iends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

// Position of the first case-insensitive occurrence of needle at or after `from`; npos when there is none.
// An empty needle is found at `from` (when from <= size).
constexpr size_t ifind(std::string_view haystack, std::string_view needle, size_t from = 0) {
    if (needle.empty()) return from <= haystack.size() ? from : std::string_view::npos;
    if (haystack.size() < needle.size()) return std::string_view::npos;
    for (size_t i = from; i + needle.size() <= haystack.size(); ++i) {
        if (iequals(haystack.substr(i, needle.size()), needle)) return i;
    }
    return std::string_view::npos;
}
constexpr bool icontains(std::string_view haystack, std::string_view needle) {
    return ifind(haystack, needle) != std::string_view::npos;
}

// HTTP's optional whitespace: SP and HTAB (RFC 9110 §5.6.3).
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }
// The C locale's isspace set: SP, HT, LF, VT, FF, CR.
constexpr bool is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// Without leading and trailing is_ascii_space bytes.
constexpr std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
    return s;
}
// Without trailing is_ascii_space bytes (a secret read from a file loses its final newline, not its leading bytes).
constexpr std::string_view trim_end(std::string_view s) {
    while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
    return s;
}
// Without leading and trailing SP / HTAB: a field value as RFC 9110 §5.5 defines it.
constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

// The value of a hexadecimal digit (either case), or -1.
constexpr int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace keyrelay
