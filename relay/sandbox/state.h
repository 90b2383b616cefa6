// The sandbox's whole world: registered apps, credentials, grants and tokens, sample data, statistics,
// injected failures and rate-limit buckets. One mutex guards it all: cpp-httplib serves on a thread pool and the
// token statistics must be exact under concurrency ("50 concurrent calls cause exactly one refresh").
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/result.h"
#include "sandbox.h"

namespace keyrelay::sandbox {

enum class Provider { keap, jira };
const char* provider_name(Provider p);

// Fixed identities of the sandbox. Stable across runs so that logs and bug reports can be compared.
namespace ids {
inline constexpr const char* app_name = "keyrelay demo app";
inline constexpr const char* keap_account = "ab123.infusionsoft.com";
inline constexpr const char* keap_client_id = "sandbox-keap-client-3f9a";
// RFC 6749 §2.3.1: a client that puts this secret in a Basic header without form-urlencoding it first fails,
// because '+' decodes to a space and "%ch" is not a percent escape. That is on purpose.
inline constexpr const char* keap_client_secret = "sandbox+Secret/with=odd%chars:1";
inline constexpr const char* keap_api_key = "KeapAK-sandbox-0f1e2d3c4b5a69788796a5b4c3d2e1f0";   // Service Account Key
inline constexpr const char* keap_pat = "KeapPAT-sandbox-1a2b3c4d5e6f70819283a4b5c6d7e8f9";     // Personal Access Token
inline constexpr const char* jira_client_id = "sandbox-jira-client-7c1d";
inline constexpr const char* jira_client_secret = "jira-sandbox-secret_NbV3qLw9";
inline constexpr const char* jira_cloud_id = "1c3f5a8e-7b2d-4e6a-9f01-23456789abcd";
inline constexpr const char* jira_site_name = "keyrelay-sandbox";
inline constexpr const char* jira_site_url = "https://keyrelay-sandbox.atlassian.net";
inline constexpr const char* jira_admin_email = "admin@example.com";
inline constexpr const char* jira_api_token = "ATATT3xFfGF0sandboxAdminApiToken0001";
inline constexpr const char* jira_pat = "MDk4NzY1NDMyMTpzYW5kYm94LWRjLXBhdC1hZG1pbg";
inline constexpr const char* jira_no_browse_email = "intern@example.com";
inline constexpr const char* jira_no_browse_api_token = "ATATT3xFfGF0sandboxInternApiToken0002";
}  // namespace ids

struct KeapContact {
    int64_t id = 0;
    std::string given_name;
    std::string family_name;
    std::string email;
    int64_t created = 0;   // unix seconds
    int64_t updated = 0;
    // The rest of the Contact fields the XML-RPC bridge maps (docs/xmlrpc-bridge.md); "" / 0 = no value.
    std::string email2, email3;
    std::string phone1, phone2;
    std::string company, job_title;
    std::string street1, city, region, postal_code, country;   // the billing address
    int64_t owner_id = 0;
    std::vector<int64_t> tags;   // tag ids, ascending, no repeats
};

struct JiraUser {
    std::string account_id;     // Cloud accountId
    std::string username;       // Data Center name/key
    std::string display_name;
    std::string email;
    bool active = true;
    bool email_hidden = false;  // Cloud privacy setting: emailAddress is left out of answers
    bool browse_users = true;   // the global "Browse users and groups" permission
    std::string account_type = "atlassian";
    std::string time_zone = "Europe/London";
};

struct App {
    Provider provider = Provider::keap;
    std::string client_id;
    std::string client_secret;
    std::vector<std::string> redirect_uris;
    int64_t access_ttl = 0;
    int64_t refresh_ttl = 0;
};

struct AuthCode {
    Provider provider = Provider::keap;
    std::string client_id;
    std::string redirect_uri;
    std::string scope;
    int64_t expires_at = 0;
    bool used = false;
};

struct Grant {
    int64_t id = 0;
    Provider provider = Provider::keap;
    std::string client_id;
    std::string scope;
    std::string user_email;
    int64_t created_at = 0;
    bool revoked = false;
};

struct AccessToken {
    int64_t grant = 0;
    int64_t expires_at = 0;
};

struct RefreshToken {
    int64_t grant = 0;
    int64_t expires_at = 0;
    int64_t used_at = 0;   // 0 = never used (the current one); else the time of its first use (rotation)
};

struct TokenStats {
    Provider provider = Provider::keap;
    int64_t exchanges = 0;
    int64_t exchange_failures = 0;
    int64_t refreshes = 0;
    int64_t refresh_failures = 0;
    int64_t reuses = 0;   // Jira: refreshes with an already rotated token inside the 10-minute leeway
};

struct Failure {
    std::string path;
    int count = 1;
    std::string mode;
    int status = 0;
    int delay_ms = 3000;
};

// Rate limits. Keap: PAT/SAK 10/s (keap.md), OAuth apps 1,500/min and 150,000/day per client.
// Jira has no published numbers for the sandbox to copy: a burst bucket of 100 refilled at 10/s per credential.
struct Limits {
    double keap_key_per_second = 10;
    int64_t keap_key_per_day = 30000;
    double keap_oauth_per_minute = 1500;
    int64_t keap_oauth_per_day = 150000;
    double jira_burst = 100;
    double jira_per_second = 10;
};

struct Bucket {
    double tokens = -1;   // < 0: not initialised (full)
    double last = 0;
};

struct DailyCount {
    int64_t day = -1;
    int64_t used = 0;
};

struct SampleData {
    std::vector<KeapContact> contacts;
    std::vector<JiraUser> users;
};

// Built-in data (see INTERFACE.md), or the --data file.
// Errors: "sandbox.bad_data".
Result<SampleData> load_data(const std::string& file);
SampleData builtin_data();

class State {
public:
    explicit State(Options options, SampleData data);

    std::mutex mu;

    // Everything below is guarded by mu.
    void reset();

    bool auto_approve = false;

    // The sandbox clock: wall-clock time plus an offset that /sandbox/clock moves forward.
    int64_t now() const;
    double now_precise() const;
    double clock_offset = 0;

    std::map<std::string, App> apps;   // by client_id
    std::map<std::string, AuthCode> codes;
    std::map<int64_t, Grant> grants;
    std::map<std::string, AccessToken> access_tokens;
    std::map<std::string, RefreshToken> refresh_tokens;
    int64_t next_grant = 1;

    std::vector<KeapContact> contacts;
    int64_t next_contact_id = 1;
    std::map<int64_t, std::string> keap_tags;   // tag id -> name (XML-RPC: ContactGroup)
    std::vector<JiraUser> users;

    std::map<std::string, int64_t> requests;        // "GET /path" -> count
    std::map<std::string, TokenStats> token_stats;  // by client_id
    std::vector<Failure> failures;

    Limits limits;
    std::map<std::string, Bucket> buckets;
    std::map<std::string, DailyCount> daily;

    App* app(const std::string& client_id);
    App* app_of(Provider p);
    TokenStats& stats_for(const std::string& client_id, Provider p);
    // Token-endpoint client authentication: the provider's app when id and secret match, else nullptr — and then,
    // for a known app of this provider, one more exchange or refresh failure in its stats.
    App* authenticate_client(const std::string& client_id, const std::string& secret, Provider p, bool is_refresh);

    // Issues an access token (and a refresh token when with_refresh) for the grant. Returns {access, refresh}.
    std::pair<std::string, std::string> issue_tokens(const Grant& grant, bool with_refresh);
    // A live grant for the access token, or nullptr (unknown, expired, revoked). expired tells why.
    const Grant* grant_for_access(const std::string& token, bool* expired = nullptr);
    void revoke_grant(int64_t grant_id);

    // Takes one pending failure whose path prefixes `path`.
    std::optional<Failure> take_failure(const std::string& path);

    // Token bucket: takes one token. Returns the tokens left (>= 0) or, when empty, -seconds until one is back.
    double take_token(const std::string& key, double capacity, double per_second);
    // Daily quota (UTC days): counts one call; returns the count so far today.
    int64_t count_daily(const std::string& key);

    const JiraUser* user_by_email(const std::string& email) const;
    KeapContact* contact(int64_t id);

private:
    Options options_;
    SampleData data_;
};

// base64url of n random bytes (OpenSSL RAND_bytes).
std::string random_token(size_t n);

}  // namespace keyrelay::sandbox
