// The relay's configuration: providers as data (built-in Keap and Jira, overridable, plus any OAuth2 API added in
// the config alone), page users, CORS origins, TLS, and secrets — which come only from the environment or from
// files named in the config, never from the config file itself.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keyrelay/oauth2.h"
#include "keyrelay/proxy.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

// oauth: tokens from the authorization-code flow, refreshed by the relay. The others need no flow:
// api_key (Keap PAT/SAK, X-Keap-API-Key), api_token (Jira Cloud email + API token, Basic), pat (Jira Data Center,
// Bearer).
enum class Mode { oauth, api_key, api_token, pat };

// A step run after a successful code exchange, before the connection is saved. jira_accessible_resources: Atlassian
// 3LO tokens are for api.atlassian.com; the site's cloud id comes from the accessible-resources call.
enum class PostConnect { jira_accessible_resources };

struct ProviderConfig {
    std::string name;
    oauth2::Provider oauth;                      // authorize/token URLs, client auth, body, scopes, PKCE, ...
    std::optional<oauth2::ClientAuth> refresh_client_auth;   // Keap: body for the exchange, Basic for refresh
    std::string api_base;                        // may contain "{cloud_id}" (Jira Cloud via api.atlassian.com)
    std::vector<proxy::Rule> allow;              // the proxy allowlist
    std::vector<proxy::Rule> xmlrpc_paths;       // answers expected to be XML-RPC (for the diagnosis)
    proxy::CredentialStyle attach = proxy::CredentialStyle::bearer;          // for oauth mode
    proxy::CredentialStyle static_attach = proxy::CredentialStyle::bearer;   // api_key mode (Keap: X-Keap-API-Key)
    std::vector<std::string> rate_limit_headers; // answer headers passed through (proxy::matches_header_pattern)
    std::vector<PostConnect> post_connect;
    std::string accessible_resources_url;
    bool keepalive_refresh = false;              // refresh idle connections whose refresh token gets old (Keap)
    std::string env_prefix;                      // "KEAP" -> KEAP_CLIENT_ID, KEAP_CLIENT_SECRET, ...

    // Credentials, resolved from the environment (or *_FILE paths).
    Mode mode = Mode::oauth;
    std::string client_id;
    std::string client_secret;
    std::string static_secret;                   // api key / API token / PAT
    std::string static_email;                    // Jira API token mode
    std::string static_account;                  // what /api/connections shows as account in a static mode
    std::string static_api_base;                 // API base in a static mode (Jira: the site)

    bool oauth_configured() const { return !client_id.empty() && !client_secret.empty(); }
    // The credential a proxied call carries: the connection's access token in oauth mode, else the static secret
    // (api_key: static_attach; api_token: Basic email:token; pat: Bearer).
    proxy::Credential credential(const std::string& access_token) const;
};

struct User {
    std::string username;
    std::string password_hash;   // crypto.h hash_password() format
};

struct Config {
    std::string bind = "127.0.0.1";
    int port = 8080;
    std::string public_url;           // "https://relay.example.com" (redirect URIs); default http://127.0.0.1:<port>
    std::string data_dir;
    std::string web_dir;
    std::string wasm_dir;             // served under /wasm/ when web_dir has no wasm/ (default <source>/build/wasm)
    std::vector<User> users;
    std::vector<std::string> cors_origins;
    bool log_queries = false;   // log query values as sent (default: names kept, values masked)
    int64_t refresh_margin_seconds = 300;
    int64_t keepalive_refresh_days = 30;
    int64_t keepalive_check_seconds = 300;
    int64_t session_hours = 12;
    std::string tls_cert;
    std::string tls_key;
    std::string ca_file;
    int64_t upstream_connect_timeout_ms = 5000;
    int64_t upstream_read_timeout_ms = 30000;
    size_t max_request_body = 1 << 20;          // 1 MiB from callers
    size_t max_upstream_body = 10 << 20;        // 10 MiB from providers
    int server_threads = 1024;   // connections served at once (one worker each, started on demand)

    // Several relays sharing one Redis (docs/deploy.md, "Two or more relays"). Empty = the file store in data_dir.
    std::string redis_url;                 // KEYRELAY_REDIS_URL (wins) or "redis_url"
    int64_t redis_connect_timeout_ms = 1000;
    int64_t redis_command_timeout_ms = 2000;
    int64_t refresh_lease_ms = 10000;      // the cross-relay refresh lease, renewed every third of it

    std::string api_key;              // KEYRELAY_API_KEY
    std::optional<std::string> store_key;            // KEYRELAY_STORE_KEY
    std::optional<std::string> store_key_previous;   // KEYRELAY_STORE_KEY_PREVIOUS

    std::vector<ProviderConfig> providers;
    bool sandbox = false;
    std::string sandbox_url;
    std::string config_path;
    bool offline_checks = false;      // doctor --offline: no requests to the providers

    const ProviderConfig* provider(const std::string& name) const;
    bool tls() const { return !tls_cert.empty() || !tls_key.empty(); }
    // public_url without a trailing slash, or http(s)://127.0.0.1:<port>.
    std::string base_url(int actual_port) const;
    std::string redirect_uri(const std::string& provider, int actual_port) const;
};

// Reads a secret: the environment variable NAME, else the file named by NAME_FILE in the environment or in the
// config's top level ("KEAP_CLIENT_SECRET_FILE": "/etc/keyrelay/keap-secret"). Trailing newlines are trimmed.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

// The built-in descriptions, pointing at the real services.
ProviderConfig builtin_keap();
ProviderConfig builtin_jira();

// Builds the Keap and Jira descriptions from a sandbox's GET /sandbox/config answer.
Result<Config> config_from_sandbox(const std::string& sandbox_url, const nlohmann::json& sandbox_config,
                                   const EnvLookup& env);

// Parses a keyrelay.json. Errors: "config.not_json", "config.secret_in_file" (a secret written literally),
// "config.bad_value" (a wrong type or an unknown enum value), "config.unknown_key", "config.secret_file"
// (a *_FILE path that cannot be read).
Result<Config> config_from_json(const nlohmann::json& doc, const EnvLookup& env, const std::string& config_dir);

// Applies a provider description (built-in override or a new provider) from JSON onto `p`.
Result<Unit> apply_provider_json(ProviderConfig& p, const nlohmann::json& j);

// Resolves a provider's credentials and mode from the environment (or *_FILE). Called by both builders.
Result<Unit> resolve_provider_secrets(ProviderConfig& p, const EnvLookup& env, const nlohmann::json& file_refs);

// The API base for one connection: "{cloud_id}" replaced.
std::string resolve_api_base(const ProviderConfig& p, const std::string& cloud_id);

const char* mode_name(Mode mode);

}  // namespace keyrelay::relay
