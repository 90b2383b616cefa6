// Type-checked reads of optional JSON fields for the stores' records; the first problem is kept in `bad`.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace keyrelay::relay {

struct JsonFields {
    const nlohmann::json& o;
    std::string bad;

    const nlohmann::json* find(const char* k) const {
        auto it = o.find(k);
        return it == o.end() ? nullptr : &*it;
    }
    void fail(const char* k, const char* want) {
        if (bad.empty()) bad = std::string("field \"") + k + "\" is not " + want;
    }
    void str(const char* k, std::string& out) {
        if (const nlohmann::json* v = find(k)) {
            if (v->is_string()) out = v->get_ref<const std::string&>();
            else fail(k, "a string");
        }
    }
    void i64(const char* k, int64_t& out) {
        if (const nlohmann::json* v = find(k)) {
            if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) fail(k, "a 64-bit integer");
            else if (v->is_number_integer()) out = v->get<int64_t>();
            else fail(k, "an integer");
        }
    }
    void u64(const char* k, uint64_t& out) {
        if (const nlohmann::json* v = find(k)) {
            if (v->is_number_unsigned()) out = v->get<uint64_t>();
            else fail(k, "a non-negative integer");
        }
    }
    void boolean(const char* k, bool& out) {
        if (const nlohmann::json* v = find(k)) {
            if (v->is_boolean()) out = v->get<bool>();
            else fail(k, "true or false");
        }
    }
};

}  // namespace keyrelay::relay
