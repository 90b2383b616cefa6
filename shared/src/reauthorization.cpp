#include "keyrelay/reauthorization.h"

#include <cstdio>

namespace keyrelay::reauthorization {

ProviderKind kind_of(std::string_view provider_name) {
    if (provider_name == "keap") return ProviderKind::keap;
    if (provider_name == "jira") return ProviderKind::atlassian;
    return ProviderKind::other;
}

namespace {

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }

// Days since 1970-01-01 -> civil date (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days).
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const int64_t era = floor_div(z, 146097);
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

std::string days_text(int64_t seconds) {
    const int64_t days = (seconds + 86399) / 86400;   // a part of a day counts as a day
    return days == 1 ? "1 day" : std::to_string(days) + " days";
}

}  // namespace

std::string utc_date(int64_t unix_seconds) {
    int64_t y = 0;
    unsigned m = 0, d = 0;
    civil_from_days(floor_div(unix_seconds, 86400), y, m, d);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
    return buf;
}

Outlook outlook(ProviderKind kind, int64_t granted_at, int64_t now, int64_t warn_before) {
    Outlook out;
    if (kind != ProviderKind::atlassian || granted_at <= 0) return out;
    const int64_t deadline = granted_at + kAtlassianGrantLifetime;
    out.reauthorize_by = deadline;
    const std::string date = utc_date(deadline);
    if (now >= deadline) {
        out.warnings.push_back(
            {"connection.grant_expired",
             "Atlassian ended this Jira grant on " + date +
                 " (UTC): its refresh tokens expire 365 days after consent, however often they are used. Press "
                 "Connect for Jira to grant access again."});
    } else if (deadline - now <= warn_before) {
        out.warnings.push_back(
            {"connection.reauthorize_soon",
             "Atlassian ends this Jira grant on " + date + " (UTC), in " + days_text(deadline - now) +
                 ": its refresh tokens expire 365 days after consent, however often they are used. Press Connect "
                 "for Jira before then; the new grant lasts another 365 days."});
    }
    return out;
}

}  // namespace keyrelay::reauthorization
