#include "keyrelay/text.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace keyrelay {

std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

void utf8_append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

size_t utf8_sequence_length(std::string_view s, size_t i) {
    auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    if (i >= s.size()) return 0;
    unsigned char c = at(i);
    if (c < 0x80) return 1;
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (s.size() - i < n) return 0;
    if (at(i + 1) < lo || at(i + 1) > hi) return 0;
    for (size_t k = 2; k < n; ++k) {
        if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
    }
    return n;
}

namespace {

class JsonScanner {
public:
    explicit JsonScanner(std::string_view s) : s_(s) {}

    bool run() {
        if (s_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;
        skip_ws();
        if (!value()) return false;
        skip_ws();
        return i_ == s_.size();
    }

private:
    bool at_end() const { return i_ >= s_.size(); }
    unsigned char peek() const { return static_cast<unsigned char>(s_[i_]); }

    void skip_ws() {
        while (!at_end() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }

    bool literal(std::string_view word) {
        if (s_.substr(i_, word.size()) != word) return false;
        i_ += word.size();
        return true;
    }

    // Values, iteratively: `open` holds the brackets still open, so hostile nesting cannot exhaust the stack (a
    // string: the usual few levels fit in its inline buffer, no allocation).
    bool value() {
        std::string open;
        for (;;) {
            if (at_end()) return false;
            char c = s_[i_];
            if (c == '{' || c == '[') {
                ++i_;
                skip_ws();
                if (!at_end() && s_[i_] == (c == '{' ? '}' : ']')) {
                    ++i_;   // empty object or array: a complete value
                } else {
                    open.push_back(c);
                    if (c == '{' && !member_name()) return false;
                    continue;   // the first element or member value
                }
            } else if (c == '"') {
                if (!string()) return false;
            } else if (c == 't') {
                if (!literal("true")) return false;
            } else if (c == 'f') {
                if (!literal("false")) return false;
            } else if (c == 'n') {
                if (!literal("null")) return false;
            } else if (!number()) {
                return false;
            }
            // After a complete value: close brackets, or go on to the next element / member.
            for (;;) {
                if (open.empty()) return true;
                skip_ws();
                if (at_end()) return false;
                char top = open.back();
                if (s_[i_] == ',') {
                    ++i_;
                    skip_ws();
                    if (top == '{' && !member_name()) return false;
                    break;
                }
                if (s_[i_] != (top == '{' ? '}' : ']')) return false;
                ++i_;
                open.pop_back();
            }
        }
    }

    // `"name" :` then whitespace, before a member's value.
    bool member_name() {
        if (at_end() || s_[i_] != '"' || !string()) return false;
        skip_ws();
        if (at_end() || s_[i_] != ':') return false;
        ++i_;
        skip_ws();
        return true;
    }

    // RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, and (as nlohmann/json, §6 "good
    // interoperability") a value within the range of a double: 1e400 is refused.
    bool number() {
        const size_t start = i_;
        if (!number_syntax()) return false;
        const std::string_view token = s_.substr(start, i_ - start);
        size_t digits_only = token.find_first_not_of("-0123456789");
        if (digits_only == std::string_view::npos && token.size() <= 18) return true;   // fits an int64
        const std::string copy(token);
        return std::isfinite(std::strtod(copy.c_str(), nullptr));
    }

    bool number_syntax() {
        if (!at_end() && s_[i_] == '-') ++i_;
        if (at_end()) return false;
        if (s_[i_] == '0') {
            ++i_;
        } else if (s_[i_] >= '1' && s_[i_] <= '9') {
            while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        } else {
            return false;
        }
        if (!at_end() && s_[i_] == '.') {
            ++i_;
            if (!digits()) return false;
        }
        if (!at_end() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (!at_end() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        return true;
    }

    bool digits() {
        size_t start = i_;
        while (!at_end() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
        return i_ > start;
    }

    int hex4() {
        if (s_.size() - i_ < 4) return -1;
        int v = 0;
        for (int k = 0; k < 4; ++k) {
            char h = s_[i_ + static_cast<size_t>(k)];
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        i_ += 4;
        return v;
    }

    // RFC 8259 §7 and §8.2; UTF-8 per RFC 3629 §4.
    bool string() {
        ++i_;   // the opening quote
        const char* data = s_.data();
        const size_t size = s_.size();
        while (i_ < size) {
            // A run of printable ASCII other than '"' and '\\' needs no further look.
            while (i_ < size) {
                auto b = static_cast<unsigned char>(data[i_]);
                if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
                ++i_;
            }
            if (i_ >= size) break;
            unsigned char c = peek();
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c < 0x20) return false;
            if (c == '\\') {
                ++i_;
                if (at_end()) return false;
                char e = s_[i_++];
                if (e == 'u') {
                    int cp = hex4();
                    if (cp < 0) return false;
                    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;   // a low surrogate alone
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (s_.substr(i_, 2) != "\\u") return false;
                        i_ += 2;
                        int low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) return false;
                    }
                } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                           e != 't') {
                    return false;
                }
                continue;
            }
            if (c < 0x80) {
                ++i_;
                continue;
            }
            size_t n = utf8_sequence_length(s_, i_);
            if (n == 0) return false;
            i_ += n;
        }
        return false;
    }

    std::string_view s_;
    size_t i_ = 0;
};

}  // namespace

bool is_json_text(std::string_view text) { return JsonScanner(text).run(); }

}  // namespace keyrelay
