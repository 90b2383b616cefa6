#include <catch2/catch.hpp>

#include "keyrelay/reauthorization.h"

using namespace keyrelay::reauthorization;

namespace {
constexpr int64_t kDay = 86400;
constexpr int64_t kGranted = 1764633600;   // 2025-12-02T00:00:00Z
constexpr int64_t kDeadline = kGranted + 365 * kDay;   // 2026-12-02T00:00:00Z
}  // namespace

TEST_CASE("the relay's provider names map to provider kinds", "[reauthorization]") {
    CHECK(kind_of("jira") == ProviderKind::atlassian);
    CHECK(kind_of("keap") == ProviderKind::keap);
    CHECK(kind_of("Jira") == ProviderKind::other);
    CHECK(kind_of("") == ProviderKind::other);
}

TEST_CASE("an Atlassian grant must be renewed 365 days after consent, however often it was refreshed",
          "[reauthorization]") {
    // docs/reference/jira.md: the absolute expiry counts from the first consent, not from the last refresh.
    auto [now, what] = GENERATE(table<int64_t, std::string>({
        {kGranted, "right after consent"},
        {kGranted + 200 * kDay, "after 200 days of daily refreshes"},
        {kGranted + 334 * kDay, "31 days before the end"},
    }));
    CAPTURE(what);
    Outlook o = outlook(ProviderKind::atlassian, kGranted, now);
    REQUIRE(o.reauthorize_by.has_value());
    CHECK(*o.reauthorize_by == kGranted + 365 * kDay);
    CHECK(o.warnings.empty());
}

TEST_CASE("30 days before an Atlassian grant ends the outlook warns, with the date and what to press",
          "[reauthorization]") {
    const int64_t deadline = kDeadline;
    SECTION("exactly 30 days ahead") {
        Outlook o = outlook(ProviderKind::atlassian, kGranted, deadline - 30 * kDay);
        REQUIRE(o.warnings.size() == 1);
        CHECK(o.warnings[0].code == "connection.reauthorize_soon");
        CHECK(o.warnings[0].message ==
              "Atlassian ends this Jira grant on 2026-12-02 (UTC), in 30 days: its refresh tokens expire 365 days "
              "after consent, however often they are used. Press Connect for Jira before then; the new grant lasts "
              "another 365 days.");
    }
    SECTION("an hour ahead counts as one day") {
        Outlook o = outlook(ProviderKind::atlassian, kGranted, deadline - 3600);
        REQUIRE(o.warnings.size() == 1);
        CHECK(o.warnings[0].code == "connection.reauthorize_soon");
        CHECK(o.warnings[0].message.find("in 1 day:") != std::string::npos);
    }
    SECTION("a custom warning window") {
        CHECK(outlook(ProviderKind::atlassian, kGranted, deadline - 10 * kDay, 7 * kDay).warnings.empty());
        CHECK(outlook(ProviderKind::atlassian, kGranted, deadline - 7 * kDay, 7 * kDay).warnings.size() == 1);
    }
}

TEST_CASE("once an Atlassian grant has ended the outlook says so", "[reauthorization]") {
    auto now = GENERATE(values<int64_t>({kDeadline, kDeadline + 1, kDeadline + 400 * kDay}));
    CAPTURE(now);
    Outlook o = outlook(ProviderKind::atlassian, kGranted, now);
    REQUIRE(o.reauthorize_by == kDeadline);
    REQUIRE(o.warnings.size() == 1);
    CHECK(o.warnings[0].code == "connection.grant_expired");
    CHECK(o.warnings[0].message ==
          "Atlassian ended this Jira grant on 2026-12-02 (UTC): its refresh tokens expire 365 days after consent, "
          "however often they are used. Press Connect for Jira to grant access again.");
}

TEST_CASE("Keap, other providers and unknown grant times have no deadline and no warning", "[reauthorization]") {
    const int64_t late = kGranted + 1000 * kDay;
    for (ProviderKind kind : {ProviderKind::keap, ProviderKind::other}) {
        Outlook o = outlook(kind, kGranted, late);
        CHECK_FALSE(o.reauthorize_by.has_value());
        CHECK(o.warnings.empty());
    }
    for (int64_t unknown : {int64_t{0}, int64_t{-5}}) {
        Outlook o = outlook(ProviderKind::atlassian, unknown, late);
        CHECK_FALSE(o.reauthorize_by.has_value());
        CHECK(o.warnings.empty());
    }
}

TEST_CASE("utc_date gives the UTC calendar date of a unix time", "[reauthorization]") {
    auto [t, date] = GENERATE(table<int64_t, std::string>({
        {0, "1970-01-01"},
        {86399, "1970-01-01"},
        {86400, "1970-01-02"},
        {951782400, "2000-02-29"},        // a leap day in a year divisible by 400
        {1767225599, "2025-12-31"},
        {1767225600, "2026-01-01"},
        {4107542400, "2100-03-01"},       // 2100 is not a leap year
        {-1, "1969-12-31"},
    }));
    CAPTURE(t);
    CHECK(utc_date(t) == date);
}
