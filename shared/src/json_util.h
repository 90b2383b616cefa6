// Internal: typed, non-throwing access to nlohmann::json for the core (keap.cpp, jira.cpp, diagnose.cpp).
// nlohmann's get<T>(), value() and operator[] on a const object throw or assert when the type or key is wrong;
// the core must never throw (it also runs in Wasm without exceptions), so every read goes through these helpers.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace keyrelay::json_util {

using json = nlohmann::json;

// Parses text; a discarded value (is_discarded()) when it is not JSON. Never throws.
inline json parse(std::string_view text) {
    return json::parse(text.begin(), text.end(), nullptr, false);
}

// Serializes without throwing: invalid UTF-8 in a string becomes U+FFFD instead of a type_error (316).
inline std::string dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The member `key` of an object; nullptr when j is not an object or has no such member.
inline const json* member(const json& j, std::string_view key) {
    if (!j.is_object()) return nullptr;
    auto it = j.find(std::string(key));
    if (it == j.end()) return nullptr;
    return &*it;
}

// A string member; nullopt when absent, null or of another type.
inline std::optional<std::string> get_string(const json& j, std::string_view key) {
    const json* m = member(j, key);
    if (m == nullptr || !m->is_string()) return std::nullopt;
    return m->get_ref<const std::string&>();
}

inline std::string string_or(const json& j, std::string_view key, std::string fallback = {}) {
    auto s = get_string(j, key);
    return s ? *s : std::move(fallback);
}

// A decimal integer written as a string ("42", "-7"); nullopt for anything else (including overflow).
inline std::optional<int64_t> parse_int64(std::string_view s) {
    if (s.empty()) return std::nullopt;
    bool negative = false;
    size_t i = 0;
    if (s[0] == '-' || s[0] == '+') {
        negative = s[0] == '-';
        i = 1;
        if (s.size() == 1) return std::nullopt;
    }
    uint64_t magnitude = 0;
    const uint64_t limit = negative ? uint64_t(std::numeric_limits<int64_t>::max()) + 1
                                    : uint64_t(std::numeric_limits<int64_t>::max());
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        uint64_t digit = uint64_t(s[i] - '0');
        if (magnitude > (limit - digit) / 10) return std::nullopt;
        magnitude = magnitude * 10 + digit;
    }
    if (negative) {
        return magnitude == uint64_t(std::numeric_limits<int64_t>::max()) + 1
                   ? std::numeric_limits<int64_t>::min()
                   : -int64_t(magnitude);
    }
    return int64_t(magnitude);
}

// An integer value: a JSON integer, or a string holding one (Keap REST v2 sends ids as strings).
inline std::optional<int64_t> as_int64(const json& v) {
    if (v.is_number_integer() && !v.is_number_unsigned()) return v.get<int64_t>();
    if (v.is_number_unsigned()) {
        auto u = v.get<uint64_t>();
        if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return int64_t(u);
    }
    if (v.is_string()) return parse_int64(v.get_ref<const std::string&>());
    return std::nullopt;
}

inline std::optional<int64_t> get_int64(const json& j, std::string_view key) {
    const json* m = member(j, key);
    if (m == nullptr) return std::nullopt;
    return as_int64(*m);
}

inline std::optional<bool> get_bool(const json& j, std::string_view key) {
    const json* m = member(j, key);
    if (m == nullptr || !m->is_boolean()) return std::nullopt;
    return m->get<bool>();
}

// A scalar rendered as text: strings as they are, integers in decimal; nullopt for anything else.
inline std::optional<std::string> get_text(const json& j, std::string_view key) {
    const json* m = member(j, key);
    if (m == nullptr) return std::nullopt;
    if (m->is_string()) return m->get_ref<const std::string&>();
    if (auto i = as_int64(*m)) return std::to_string(*i);
    return std::nullopt;
}

// The array member `key`; nullptr when absent or not an array.
inline const json* get_array(const json& j, std::string_view key) {
    const json* m = member(j, key);
    return (m != nullptr && m->is_array()) ? m : nullptr;
}

inline const json* get_object(const json& j, std::string_view key) {
    const json* m = member(j, key);
    return (m != nullptr && m->is_object()) ? m : nullptr;
}

}  // namespace keyrelay::json_util
