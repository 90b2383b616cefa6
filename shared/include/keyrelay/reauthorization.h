// When a provider ends a grant whatever the client does, and when to tell the person: a pure function of the
// provider, the time of consent and now (no clock of its own).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyrelay::reauthorization {

enum class ProviderKind { keap, atlassian, other };

// The relay's provider names: "keap" -> keap, "jira" -> atlassian, anything else -> other.
ProviderKind kind_of(std::string_view provider_name);

// Atlassian's 3LO refresh tokens expire 365 days after the consent, however often they are refreshed; the 90-day
// inactivity expiry restarts with every refresh (docs/reference/jira.md). Keap documents no absolute lifetime.
inline constexpr int64_t kAtlassianGrantLifetime = 365 * 86400;
// Tell the person this long before the end, so that someone can press Connect in time.
inline constexpr int64_t kWarnBefore = 30 * 86400;

struct Warning {
    std::string code;      // "connection.reauthorize_soon" or "connection.grant_expired"
    std::string message;   // for the person: when, why, and what to press
};

struct Outlook {
    std::optional<int64_t> reauthorize_by;   // unix seconds: consent is needed again by then; nullopt = no fixed end
    std::vector<Warning> warnings;           // empty, or one warning
};

// granted_at and now are unix seconds; granted_at <= 0 means "unknown" (no deadline, no warning).
// Atlassian: reauthorize_by = granted_at + kAtlassianGrantLifetime; from warn_before ahead of it a
// "connection.reauthorize_soon" warning, and once it has passed "connection.grant_expired".
// Keap and other providers: no deadline, no warning.
Outlook outlook(ProviderKind kind, int64_t granted_at, int64_t now, int64_t warn_before = kWarnBefore);

// "YYYY-MM-DD" (UTC) of a unix time: proleptic Gregorian calendar.
std::string utc_date(int64_t unix_seconds);

}  // namespace keyrelay::reauthorization
