// The one reader of rate-limit headers (see rate_limit.h). Header facts: docs/reference/keap.md ("Rate limits"),
// docs/reference/jira.md and https://developer.atlassian.com/cloud/jira/platform/rate-limiting.
#include "keyrelay/rate_limit.h"

#include <algorithm>
#include <array>
#include <limits>

#include "keyrelay/ascii.h"

namespace keyrelay {
namespace {

// Waits longer than this are saturated: no header value can overflow a millisecond count.
constexpr int64_t kMaxSeconds = int64_t(1) << 40;

int64_t saturate(int64_t seconds) { return std::clamp<int64_t>(seconds, 0, kMaxSeconds); }

// 1*DIGIT, saturating at kMaxSeconds; nullopt for anything else (a sign, a fraction, spaces inside).
std::optional<int64_t> parse_digits(std::string_view s) {
    if (s.empty()) return std::nullopt;
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = std::min<int64_t>(v * 10 + (c - '0'), kMaxSeconds);
    }
    return v;
}

// An optionally signed decimal integer (Keap writes counts and epoch times this way); saturating.
std::optional<int64_t> parse_integer(std::string_view s) {
    s = trim(s);
    bool negative = !s.empty() && s.front() == '-';
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
    if (s.empty()) return std::nullopt;
    int64_t v = 0;
    constexpr int64_t kCap = std::numeric_limits<int64_t>::max() / 16;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = std::min<int64_t>(v * 10 + (c - '0'), kCap);
    }
    return negative ? -v : v;
}

std::optional<int64_t> header_int(const Headers& h, std::string_view name) {
    const std::string* v = h.find(name);
    if (v == nullptr) return std::nullopt;
    return parse_integer(*v);
}

std::string header_text(const Headers& h, std::string_view name) {
    const std::string* v = h.find(name);
    return v == nullptr ? std::string() : std::string(trim(*v));
}

// The first of several header names that is present.
std::string first_header(const Headers& h, std::initializer_list<std::string_view> names) {
    for (std::string_view n : names) {
        if (const std::string* v = h.find(n)) return std::string(trim(*v));
    }
    return {};
}

// Days since 1970-01-01 of a proleptic Gregorian date (the usual era/day-of-era computation).
int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2 ? 1 : 0;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;                                  // [0, 399]
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;  // [0, 365]
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          // [0, 146096]
    return era * 146097 + doe - 719468;
}

bool read_digits(std::string_view s, size_t& i, size_t count, int& out) {
    if (i + count > s.size()) return false;
    int v = 0;
    for (size_t k = 0; k < count; ++k) {
        char c = s[i + k];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    i += count;
    out = v;
    return true;
}

bool expect_char(std::string_view s, size_t& i, char c) {
    if (i >= s.size() || s[i] != c) return false;
    ++i;
    return true;
}

bool valid_time(int mo, int d, int h, int mi, int se) {
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 60;
}

// "Nov" -> 11, 0 when it is not a month name (case-insensitive, RFC 9110 §5.6.7 says "case-sensitive" for
// senders; recipients here are lenient).
int month_of(std::string_view s, size_t& i) {
    static constexpr std::array<std::string_view, 12> kMonths = {"jan", "feb", "mar", "apr", "may", "jun",
                                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
    if (i + 3 > s.size()) return 0;
    for (size_t m = 0; m < kMonths.size(); ++m) {
        if (iequals(s.substr(i, 3), kMonths[m])) {
            i += 3;
            return int(m) + 1;
        }
    }
    return 0;
}

// "08:49:37"
bool read_clock(std::string_view s, size_t& i, int& h, int& mi, int& se) {
    return read_digits(s, i, 2, h) && expect_char(s, i, ':') && read_digits(s, i, 2, mi) && expect_char(s, i, ':') &&
           read_digits(s, i, 2, se);
}

std::optional<int64_t> to_unix(int64_t year, int month, int day, int h, int mi, int se) {
    if (!valid_time(month, day, h, mi, se)) return std::nullopt;
    return days_from_civil(year, month, day) * 86400 + h * 3600 + mi * 60 + se;
}

// Milliseconds in one Keap time unit ("minute", "seconds", "MILLISECONDS", "day", ...); 0 when unknown.
int64_t unit_ms(std::string_view unit) {
    std::string u = to_lower(trim(unit));
    if (u == "ms") return 1;
    if (!u.empty() && u.back() == 's') u.pop_back();
    if (u == "millisecond") return 1;
    if (u == "second" || u == "sec") return 1000;
    if (u == "minute" || u == "min") return 60'000;
    if (u == "hour") return 3'600'000;
    if (u == "day") return 86'400'000;
    if (u == "week") return 7 * 86'400'000LL;
    if (u == "month") return 30 * 86'400'000LL;
    return 0;
}

// `"tenant-app-quota";q=100100;w=3600, "other";q=5;w=1` -> items (RFC 8941 §3.1 list of strings or tokens with
// integer parameters; anything unreadable in an item is skipped).
struct Item {
    std::string name;
    std::vector<std::pair<std::string, int64_t>> params;
};
std::vector<Item> parse_structured_list(std::string_view v) {
    std::vector<Item> out;
    size_t i = 0;
    while (i < v.size()) {
        while (i < v.size() && (is_ows(v[i]) || v[i] == ',')) ++i;
        if (i >= v.size()) break;
        Item item;
        if (v[i] == '"') {
            size_t end = v.find('"', i + 1);
            if (end == std::string_view::npos) break;
            item.name = std::string(v.substr(i + 1, end - i - 1));
            i = end + 1;
        } else {
            size_t end = v.find_first_of(";,", i);
            item.name = std::string(trim_ows(v.substr(i, end == std::string_view::npos ? v.npos : end - i)));
            i = end == std::string_view::npos ? v.size() : end;
        }
        while (i < v.size() && v[i] != ',') {
            if (v[i] != ';') {
                ++i;
                continue;
            }
            ++i;
            size_t end = v.find_first_of(";,", i);
            std::string_view param = trim_ows(v.substr(i, end == std::string_view::npos ? v.npos : end - i));
            i = end == std::string_view::npos ? v.size() : end;
            size_t eq = param.find('=');
            if (eq == std::string_view::npos) continue;
            if (auto n = parse_integer(param.substr(eq + 1))) {
                item.params.emplace_back(to_lower(trim_ows(param.substr(0, eq))), *n);
            }
        }
        out.push_back(std::move(item));
    }
    return out;
}

std::optional<int64_t> param_of(const Item& item, std::string_view key) {
    for (const auto& [k, v] : item.params) {
        if (k == key) return v;
    }
    return std::nullopt;
}

std::string plural(int64_t n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

// What a Jira RateLimit-Reason names, for a sentence.
std::string jira_reason_text(std::string_view reason) {
    if (reason == "jira-burst-based") {
        return "the per-second burst limit for this endpoint (RateLimit-Reason: jira-burst-based): slow down calls "
               "to this endpoint only";
    }
    if (reason == "jira-per-issue-on-write") {
        return "the per-issue write limit (RateLimit-Reason: jira-per-issue-on-write): space out writes to the same "
               "issue";
    }
    if (istarts_with(reason, "jira-quota-")) {
        std::string whose = reason == "jira-quota-tenant-based" ? "this site's share of your app's hourly points quota"
                            : reason == "jira-quota-global-based" ? "your app's hourly points quota across all sites"
                                                                  : "your app's hourly points quota";
        return whose + " (RateLimit-Reason: " + std::string(reason) +
               "): every call costs points until the hour resets; fewer or cheaper calls (smaller pages, fewer "
               "expanded fields) help";
    }
    if (reason == "jira-cost-based") {
        return "a cost-based limit (RateLimit-Reason: jira-cost-based): the calls are too expensive; ask for less "
               "per call";
    }
    return "Jira's rate limit (RateLimit-Reason: " + std::string(reason) + ")";
}

}  // namespace

std::string seconds_text(int64_t s) {
    if (s == 1) return "1 second";
    if (s < 120) return std::to_string(s) + " seconds";
    if (s < 7200) return "about " + std::to_string((s + 59) / 60) + " minutes";
    return "about " + std::to_string(s / 3600 + (s % 3600 > 1800 ? 1 : 0)) + " hours";   // no overflow near INT64_MAX
}

std::optional<int64_t> parse_http_date(std::string_view s) {
    s = trim(s);
    int day = 0, year = 0, h = 0, mi = 0, se = 0;
    size_t comma = s.find(',');
    if (comma != std::string_view::npos) {
        size_t i = comma + 1;
        while (i < s.size() && s[i] == ' ') ++i;
        if (!read_digits(s, i, 2, day)) return std::nullopt;
        if (i < s.size() && s[i] == '-') {
            // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"; a two-digit year in the past 50 years (§5.6.7).
            ++i;
            int month = month_of(s, i);
            int yy = 0;
            if (month == 0 || !expect_char(s, i, '-') || !read_digits(s, i, 2, yy) || !expect_char(s, i, ' ') ||
                !read_clock(s, i, h, mi, se)) {
                return std::nullopt;
            }
            return to_unix(yy >= 70 ? 1900 + yy : 2000 + yy, month, day, h, mi, se);
        }
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
        if (!expect_char(s, i, ' ')) return std::nullopt;
        int month = month_of(s, i);
        if (month == 0 || !expect_char(s, i, ' ') || !read_digits(s, i, 4, year) || !expect_char(s, i, ' ') ||
            !read_clock(s, i, h, mi, se)) {
            return std::nullopt;
        }
        return to_unix(year, month, day, h, mi, se);
    }
    // asctime: "Sun Nov  6 08:49:37 1994".
    size_t i = 0;
    if (s.size() < 4 || s[3] != ' ') return std::nullopt;
    i = 4;
    int month = month_of(s, i);
    if (month == 0 || !expect_char(s, i, ' ')) return std::nullopt;
    if (i < s.size() && s[i] == ' ') {
        ++i;
        if (!read_digits(s, i, 1, day)) return std::nullopt;
    } else if (!read_digits(s, i, 2, day)) {
        return std::nullopt;
    }
    if (!expect_char(s, i, ' ') || !read_clock(s, i, h, mi, se) || !expect_char(s, i, ' ') ||
        !read_digits(s, i, 4, year) || i != s.size()) {
        return std::nullopt;
    }
    return to_unix(year, month, day, h, mi, se);
}

std::optional<int64_t> parse_iso8601(std::string_view s) {
    s = trim(s);
    size_t i = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    if (!read_digits(s, i, 4, y) || !expect_char(s, i, '-') || !read_digits(s, i, 2, mo) || !expect_char(s, i, '-') ||
        !read_digits(s, i, 2, d)) {
        return std::nullopt;
    }
    if (i >= s.size() || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) return std::nullopt;
    ++i;
    if (!read_digits(s, i, 2, h) || !expect_char(s, i, ':') || !read_digits(s, i, 2, mi)) return std::nullopt;
    if (i < s.size() && s[i] == ':') {
        ++i;
        if (!read_digits(s, i, 2, se)) return std::nullopt;
        if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
            ++i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        }
    }
    auto t = to_unix(y, mo, d, h, mi, se);
    if (!t) return std::nullopt;
    if (i == s.size() || ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size())) return t;
    if (s[i] != '+' && s[i] != '-') return std::nullopt;
    int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int oh = 0, om = 0;
    if (!read_digits(s, i, 2, oh)) return std::nullopt;
    if (i < s.size() && s[i] == ':') ++i;
    if (i < s.size() && !read_digits(s, i, 2, om)) return std::nullopt;
    if (i != s.size() || oh > 23 || om > 59) return std::nullopt;
    // "10:08+02:00" is 08:08 UTC.
    return *t - sign * (oh * 3600 + om * 60);
}

std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now) {
    value = trim(value);
    if (auto secs = parse_digits(value)) return *secs;
    if (auto at = parse_http_date(value)) return saturate(*at - now);
    return std::nullopt;
}

RateLimitState read_rate_limit(const Headers& h, std::optional<int64_t> now) {
    RateLimitState out;
    std::optional<int64_t> reference = now;
    if (const std::string* date = h.find("Date")) {
        if (auto d = parse_http_date(*date)) reference = d;
    }

    // Every wait a header implies; Retry-After, the server's explicit ask, wins over the others.
    auto consider = [&out](int64_t ms, const char* source) {
        if (!out.wait_ms || ms > *out.wait_ms) {
            out.wait_ms = ms;
            out.wait_source = source;
        }
    };

    // Keap: per-interval throttles (product = your app, tenant = the Keap account).
    struct Throttle {
        std::string_view prefix;
        bool RateLimitState::*used_up;
        const char* source;
    };
    for (const Throttle& t : {Throttle{"x-keap-product-throttle-", &RateLimitState::keap_throttle_used_up,
                                       "keap-throttle"},
                              Throttle{"x-keap-tenant-throttle-", &RateLimitState::keap_tenant_throttle_used_up,
                                       "keap-tenant-throttle"}}) {
        std::string p(t.prefix);
        auto available = header_int(h, p + "available");
        if (!available || *available > 0) continue;
        out.*t.used_up = true;
        int64_t interval = std::max<int64_t>(1, header_int(h, p + "interval").value_or(1));
        std::string unit = header_text(h, p + "time-unit");
        if (unit.empty()) unit = "minute";   // Keap's throttles are per minute (docs/reference/keap.md)
        int64_t per = unit_ms(unit);
        if (per == 0) per = 60'000;
        int64_t ms = interval > (kMaxSeconds * 1000) / per ? kMaxSeconds * 1000 : interval * per;
        if (!out.keap_throttle_interval_ms || ms > *out.keap_throttle_interval_ms) {
            out.keap_throttle_interval_ms = ms;
            out.keap_throttle_limit = header_int(h, p + "limit");
            out.keap_throttle_unit = unit;
        }
        consider(ms, t.source);
    }

    // Keap: the daily quota. expiry-time is when the bucket refills (epoch milliseconds or seconds); Keap also says
    // the quota resets at 12:00 AM UTC.
    if (auto available = header_int(h, "x-keap-product-quota-available"); available && *available <= 0) {
        out.keap_quota_used_up = true;
        out.keap_quota_limit = header_int(h, "x-keap-product-quota-limit");
        out.keap_quota_unit = header_text(h, "x-keap-product-quota-time-unit");
        if (out.keap_quota_unit.empty()) out.keap_quota_unit = "day";
        if (auto expiry = header_int(h, "x-keap-product-quota-expiry-time"); expiry && reference) {
            int64_t at = *expiry > 100000000000 ? *expiry / 1000 : *expiry;
            if (at > *reference) out.keap_quota_refill_seconds = saturate(at - *reference);
        }
        if (!out.keap_quota_refill_seconds && reference && unit_ms(out.keap_quota_unit) == 86'400'000) {
            out.keap_quota_refill_seconds = 86400 - (((*reference % 86400) + 86400) % 86400);
        }
        if (out.keap_quota_refill_seconds) consider(*out.keap_quota_refill_seconds * 1000, "keap-quota");
    }

    // Jira Cloud: the classic headers, and the 2026 points-based ones (also sent with an X-Beta- prefix).
    out.jira_reason = first_header(h, {"RateLimit-Reason", "X-RateLimit-Reason", "X-Beta-RateLimit-Reason"});
    std::string near = first_header(h, {"X-RateLimit-NearLimit", "X-Beta-RateLimit-NearLimit"});
    out.jira_near_limit = iequals(near, "true");
    out.jira_limit = header_int(h, "X-RateLimit-Limit");
    out.jira_remaining = header_int(h, "X-RateLimit-Remaining");
    out.jira_reset = first_header(h, {"X-RateLimit-Reset", "X-Beta-RateLimit-Reset"});
    if (!out.jira_reset.empty() && reference) {
        if (auto at = parse_iso8601(out.jira_reset)) {
            out.jira_reset_seconds = saturate(*at - *reference);
            consider(*out.jira_reset_seconds * 1000, "jira-reset");
        }
    }
    auto policies = parse_structured_list(first_header(h, {"Beta-RateLimit-Policy", "RateLimit-Policy"}));
    for (const Item& item : policies) {
        RateLimitPolicy p;
        p.name = item.name;
        p.quota = param_of(item, "q");
        p.window = param_of(item, "w");
        out.jira_policies.push_back(std::move(p));
    }
    for (const Item& item : parse_structured_list(first_header(h, {"Beta-RateLimit", "RateLimit"}))) {
        auto it = std::find_if(out.jira_policies.begin(), out.jira_policies.end(),
                               [&item](const RateLimitPolicy& p) { return p.name == item.name; });
        if (it == out.jira_policies.end()) {
            out.jira_policies.push_back(RateLimitPolicy{item.name, {}, {}, {}, {}});
            it = out.jira_policies.end() - 1;
        }
        it->remaining = param_of(item, "r");
        it->reset = param_of(item, "t");
        // A used-up policy (r=0) says how long until it resets (t, seconds).
        if (it->remaining && *it->remaining <= 0 && it->reset) consider(saturate(*it->reset) * 1000, "jira-policy");
    }

    // RFC 9110 §10.2.3.
    if (const std::string* ra = h.find("Retry-After")) {
        out.retry_after = std::string(trim(*ra));
        if (auto secs = parse_retry_after(*ra, reference.value_or(0))) {
            if (parse_digits(trim(*ra)) || reference) {
                out.retry_after_seconds = *secs;
                out.wait_ms = *secs * 1000;
                out.wait_source = "retry-after";
            }
        }
    }
    return out;
}

std::string explain_rate_limit(const RateLimitState& s) {
    std::vector<std::string> parts;
    if (s.retry_after_seconds && parse_digits(s.retry_after)) {
        parts.push_back("The server asks to wait " + seconds_text(*s.retry_after_seconds) +
                        " before retrying (Retry-After).");
    } else if (s.retry_after_seconds) {
        parts.push_back("The server asks to wait until " + s.retry_after + ", " +
                        seconds_text(*s.retry_after_seconds) + " after it answered (Retry-After).");
    } else if (parse_http_date(s.retry_after)) {
        parts.push_back("The server asks to wait until " + s.retry_after + " (Retry-After).");
    }
    if (s.keap_throttle_used_up || s.keap_tenant_throttle_used_up) {
        std::string whose = s.keap_throttle_used_up ? "your app's" : "the Keap account's";
        if (s.keap_throttle_used_up && s.keap_tenant_throttle_used_up) whose = "your app's and the Keap account's";
        int64_t secs = (*s.keap_throttle_interval_ms + 999) / 1000;
        std::string rate;
        if (s.keap_throttle_limit) {
            int64_t per = unit_ms(s.keap_throttle_unit);
            int64_t count = per > 0 ? std::max<int64_t>(1, *s.keap_throttle_interval_ms / per) : 1;
            rate = " (" + std::to_string(*s.keap_throttle_limit) + " per " + std::to_string(count) + " " +
                   s.keap_throttle_unit + ")";
        }
        parts.push_back("Keap's throttle for " + whose + " calls" + rate + " is used up: retry in " +
                        seconds_text(secs) + ".");
    }
    if (s.keap_quota_used_up) {
        std::string what = "Keap's quota" +
                           (s.keap_quota_limit ? " of " + std::to_string(*s.keap_quota_limit) + " calls per " +
                                                     s.keap_quota_unit
                                               : std::string()) +
                           " is used up";
        parts.push_back(s.keap_quota_refill_seconds
                            ? what + ": it refills in " + seconds_text(*s.keap_quota_refill_seconds) + "."
                            : what + ": it resets at midnight UTC.");
    }
    if (!s.jira_reason.empty()) parts.push_back("Jira refused the call under " + jira_reason_text(s.jira_reason) + ".");
    if (!s.jira_reset.empty()) {
        parts.push_back("Jira's rate limit resets at " + s.jira_reset +
                        (s.jira_reset_seconds ? ", " + seconds_text(*s.jira_reset_seconds) + " after it answered."
                                              : std::string(".")));
    }
    for (const RateLimitPolicy& p : s.jira_policies) {
        if (!p.remaining || *p.remaining > 0) continue;
        std::string quota;
        if (p.quota && p.window) quota = " of " + std::to_string(*p.quota) + " per " + plural(*p.window, "second");
        parts.push_back("Jira's \"" + p.name + "\" budget" + quota + " is used up" +
                        (p.reset ? ": it resets in " + seconds_text(saturate(*p.reset)) + "." : std::string(".")));
    }
    if (parts.empty()) {
        return "No header says when to retry: back off exponentially (1 s, 2 s, 4 s, ... with jitter), as Keap and "
               "Atlassian recommend.";
    }
    std::string out;
    for (const std::string& p : parts) out += (out.empty() ? "" : " ") + p;
    return out;
}

std::string rate_limit_warning(const RateLimitState& s) {
    if (!s.jira_near_limit) return {};
    std::string left;
    for (const RateLimitPolicy& p : s.jira_policies) {
        if (p.remaining && p.quota) {
            left = " (\"" + p.name + "\": " + std::to_string(*p.remaining) + " of " + std::to_string(*p.quota) +
                   " left)";
            break;
        }
    }
    return "Jira says less than 20% of a rate-limit budget is left (X-RateLimit-NearLimit: true)" + left +
           ": slow down now to avoid 429 answers.";
}

}  // namespace keyrelay
