// A decoded XML-RPC value as JSON text (value_json.h says why and how dates and bytes travel).
#include "value_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace keyrelay::wasm {
namespace {

// Days from 1970-01-01 to the first of January of year y (proleptic Gregorian, as ECMAScript's MakeDay).
int64_t days_before_year(int64_t y) {
    auto floor_div = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
    const int64_t before = y - 1;
    // 477 leap days fall in the years 1 to 1969.
    return 365 * (y - 1970) + floor_div(before, 4) - floor_div(before, 100) + floor_div(before, 400) - 477;
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// ECMAScript MakeDate(MakeDay(y, mo - 1, d), MakeTime(h, mi, s, ms)), which is what
// new Date(0).setUTCFullYear(y, mo - 1, d) followed by setUTCHours(h, mi, s, ms) computes.
int64_t utc_ms(int y, int mo, int d, int h, int mi, int sec, int ms) {
    static constexpr int kDaysBeforeMonth[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    const int64_t day = days_before_year(y) + kDaysBeforeMonth[mo - 1] + (mo > 2 && is_leap(y) ? 1 : 0) + (d - 1);
    return day * 86400000 + h * 3600000LL + mi * 60000LL + sec * 1000LL + ms;
}

bool digits(std::string_view s, size_t& pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    pos += n;
    return true;
}

bool skip(std::string_view s, size_t& pos, char c) {
    if (pos < s.size() && s[pos] == c) {
        ++pos;
        return true;
    }
    return false;
}

// Appends to a std::string through a cursor. std::string's push_back and append are compiled into Emscripten's
// libc++ (an extern template, built for size): a call per character. Here the common case is a store.
class Output {
public:
    explicit Output(std::string& s) : s_(s), n_(s.size()) {}
    ~Output() { s_.resize(n_); }
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;

    void put(char c) {
        if (n_ == s_.size()) grow(1);
        s_[n_++] = c;
    }
    void put(const char* p, size_t k) {
        if (s_.size() - n_ < k) grow(k);
        std::memcpy(&s_[n_], p, k);
        n_ += k;
    }
    template <size_t N>
    void put(const char (&literal)[N]) {
        put(literal, N - 1);
    }

private:
    void grow(size_t k) { s_.resize(std::max(s_.size() * 2, n_ + k + 256)); }

    std::string& s_;
    size_t n_;
};

class Writer {
public:
    Writer(std::string& json, std::string& bytes) : json_(json), bytes_(bytes) {}

    bool tagged() const { return tagged_; }

    void value(const xmlrpc::Value& v) {
        using T = xmlrpc::Value::Type;
        switch (v.type) {
            case T::nil: json_.put("null"); return;
            case T::integer: integer(v.i); return;
            case T::boolean:
                if (v.b) {
                    json_.put("true");
                } else {
                    json_.put("false");
                }
                return;
            case T::string: string(v.s); return;
            case T::double_: number(v.d); return;
            case T::datetime: {
                int64_t ms;
                if (!datetime_ms(v.s, ms)) {
                    string(v.s);
                    return;
                }
                json_.put("{\"\\u0000\":");
                integer(ms);
                json_.put('}');
                tagged_ = true;
                return;
            }
            case T::base64:
                json_.put("{\"\\u0000\":[");
                integer(static_cast<int64_t>(bytes_.size()));
                json_.put(',');
                integer(static_cast<int64_t>(v.s.size()));
                json_.put("]}");
                bytes_ += v.s;
                tagged_ = true;
                return;
            case T::array: {
                json_.put('[');
                for (size_t i = 0; i < v.array.size(); ++i) {
                    if (i != 0) json_.put(',');
                    value(v.array[i]);
                }
                json_.put(']');
                return;
            }
            case T::struct_: {
                json_.put('{');
                for (size_t i = 0; i < v.members.size(); ++i) {
                    if (i != 0) json_.put(',');
                    string(v.members[i].first);
                    json_.put(':');
                    value(v.members[i].second);
                }
                json_.put('}');
                return;
            }
        }
        json_.put("null");
    }

private:
    void integer(int64_t n) { decimal(n, 0); }

    // n * 10^-scale in plain decimal: 8338, 2 -> "83.38"; 5, 3 -> "0.005".
    void decimal(int64_t n, int scale) {
        char buf[48];
        char* const end = buf + sizeof buf;
        char* p = end;
        uint64_t u = n < 0 ? 0 - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
        for (int i = 0; i < scale; ++i) {
            *--p = static_cast<char>('0' + u % 10);
            u /= 10;
        }
        if (scale > 0) *--p = '.';
        do {
            *--p = static_cast<char>('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (n < 0) *--p = '-';
        json_.put(p, static_cast<size_t>(end - p));
    }

    // The decoder's doubles are finite. JSON.parse rounds the decimal text to the nearest double, so any text
    // whose exact value rounds to d reads back as d. A server's doubles are mostly short decimals ("83.38"): when
    // n = d * 10^k is an integer below 2^53 and n / 10^k (one correctly rounded IEEE 754 division, i.e. the
    // nearest double to the exact n * 10^-k) is d again, "n * 10^-k" is such a text. Otherwise 17 significant
    // digits always are (IEEE 754-2008 §5.12.2).
    void number(double d) {
        static constexpr double kPow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
        constexpr double kExactIntegers = 9007199254740992.0;   // 2^53
        if (d == 0) {
            if (std::signbit(d)) json_.put('-');
            json_.put('0');
            return;
        }
        for (int k = 0; k < 9; ++k) {
            const double scaled = d * kPow10[k];
            if (!(std::fabs(scaled) < kExactIntegers)) break;
            const double n = std::nearbyint(scaled);
            if (n / kPow10[k] == d) {
                decimal(static_cast<int64_t>(n), k);
                return;
            }
        }
        char buf[32];
        const int n = std::snprintf(buf, sizeof buf, "%.17g", d);
        json_.put(buf, static_cast<size_t>(n));
    }

    // RFC 8259 §7: '"', '\' and the control characters are escaped; everything else (valid UTF-8, as the decoder
    // checked) is copied as it is.
    void string(std::string_view s) {
        static constexpr char kHex[] = "0123456789abcdef";
        json_.put('"');
        size_t run = 0;
        for (size_t i = 0; i < s.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(s[i]);
            if (c >= 0x20 && c != '"' && c != '\\') continue;
            json_.put(s.data() + run, i - run);
            run = i + 1;
            switch (c) {
                case '"': json_.put("\\\""); break;
                case '\\': json_.put("\\\\"); break;
                case '\n': json_.put("\\n"); break;
                case '\r': json_.put("\\r"); break;
                case '\t': json_.put("\\t"); break;
                default: {
                    const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                    json_.put(esc, sizeof esc);
                }
            }
        }
        json_.put(s.data() + run, s.size() - run);
        json_.put('"');
    }

    Output json_;
    std::string& bytes_;
    bool tagged_ = false;
};

}  // namespace

bool write_json(const xmlrpc::Value& v, std::string& json, std::string& bytes) {
    Writer writer(json, bytes);
    writer.value(v);
    return writer.tagged();
}

bool datetime_ms(std::string_view s, int64_t& out) {
    size_t i = 0;
    int y, mo, d, h, mi, sec, ms = 0, offset_minutes = 0;
    bool ok = digits(s, i, 4, y);
    const bool dashes = ok && skip(s, i, '-');
    ok = ok && digits(s, i, 2, mo) && (!dashes || skip(s, i, '-')) && digits(s, i, 2, d) && skip(s, i, 'T') &&
         digits(s, i, 2, h);
    if (ok) {
        skip(s, i, ':');
        ok = digits(s, i, 2, mi);
    }
    if (ok) {
        skip(s, i, ':');
        ok = digits(s, i, 2, sec);
    }
    if (ok && (skip(s, i, '.') || skip(s, i, ','))) {
        int scale = 100;   // milliseconds: digits past the third are dropped
        const size_t first = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        ok = i > first;
    }
    if (ok && !skip(s, i, 'Z') && i < s.size() && (s[i] == '+' || s[i] == '-')) {
        const int sign = s[i++] == '-' ? -1 : 1;
        int oh, om;
        ok = digits(s, i, 2, oh);
        skip(s, i, ':');
        ok = ok && digits(s, i, 2, om);
        offset_minutes = ok ? sign * (oh * 60 + om) : 0;
    }
    ok = ok && i == s.size() && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 24 && mi <= 59 && sec <= 60;
    if (!ok) return false;
    out = utc_ms(y, mo, d, h, mi, sec, ms) - offset_minutes * 60000LL;
    return true;
}

}  // namespace keyrelay::wasm
