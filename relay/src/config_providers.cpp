// The provider descriptions: the built-in Keap and Jira, and the "providers" section of keyrelay.json that
// overrides them or adds any OAuth2 API.
#include "config_values.h"
#include "keyrelay/ascii.h"
#include "keyrelay/http.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

Result<std::vector<proxy::Rule>> rule_list(const json& j, const std::string& where) {
    if (!j.is_array()) return bad_value(where, "must be an array of rules like \"GET /crm/rest/v1/contacts\"");
    std::vector<proxy::Rule> out;
    for (const auto& v : j) {
        proxy::Rule rule;
        if (v.is_string()) {
            std::string s = v.get<std::string>();
            size_t sp = s.find(' ');
            if (sp == std::string::npos) return bad_value(where, "has a rule without a method: \"" + s + "\"");
            rule.method = s.substr(0, sp);
            rule.pattern = s.substr(s.find_first_not_of(' ', sp));
        } else if (v.is_object() && v.contains("method") && v["method"].is_string() && v.contains("path") &&
                   v["path"].is_string()) {
            rule.method = v["method"].get<std::string>();
            rule.pattern = v["path"].get<std::string>();
        } else {
            return bad_value(where, "must hold rules like \"GET /path/*\" or {\"method\":\"GET\",\"path\":\"/path\"}");
        }
        if (rule.pattern.empty() || rule.pattern.front() != '/') {
            return bad_value(where, "has a path pattern that does not start with '/': \"" + rule.pattern + "\"");
        }
        out.push_back(rule);
    }
    return out;
}

Result<proxy::CredentialStyle> attach_value(const std::string& s, const std::string& where) {
    if (auto style = proxy::credential_style_from_string(s)) return *style;
    return bad_value(where, "must be \"bearer\", \"x-keap-api-key\" or \"basic\"");
}

Result<oauth2::ClientAuth> client_auth_value(const std::string& s, const std::string& where) {
    if (s == "basic") return oauth2::ClientAuth::basic;
    if (s == "post") return oauth2::ClientAuth::post;
    return bad_value(where, "must be \"basic\" (HTTP Basic, RFC 6749 §2.3.1) or \"post\" (client_secret_post)");
}

}  // namespace

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::oauth: return "oauth";
        case Mode::api_key: return "api_key";
        case Mode::api_token: return "api_token";
        case Mode::pat: return "pat";
    }
    return "oauth";
}

ProviderConfig builtin_keap() {
    ProviderConfig p;
    p.name = "keap";
    p.env_prefix = "KEAP";
    p.oauth.name = "keap";
    // docs/reference/keap.md: authorize on accounts.infusionsoft.com, token on api.infusionsoft.com, form bodies; the code
    // exchange carries client_id/client_secret in the body, the refresh uses HTTP Basic (infusionsoft-php).
    p.oauth.authorize_url = "https://accounts.infusionsoft.com/app/oauth/authorize";
    p.oauth.token_url = "https://api.infusionsoft.com/token";
    p.oauth.client_auth = oauth2::ClientAuth::post;
    p.refresh_client_auth = oauth2::ClientAuth::basic;
    p.oauth.token_body = oauth2::BodyFormat::form;
    p.oauth.scopes = {"full"};
    p.oauth.pkce = false;
    p.oauth.account_from_scope = true;
    p.api_base = "https://api.infusionsoft.com";
    p.allow = {{"GET", "/crm/rest/v1/contacts"},
               {"POST", "/crm/rest/v1/contacts"},
               {"GET", "/crm/rest/v1/contacts/*"},
               {"PATCH", "/crm/rest/v1/contacts/*"},
               {"GET", "/crm/rest/v1/oauth/connect/userinfo"},
               {"GET", "/crm/rest/v2/contacts"},
               {"GET", "/crm/rest/v2/contacts/*"},
               {"PATCH", "/crm/rest/v2/contacts/*"},
               {"POST", "/crm/xmlrpc/v1"}};
    p.xmlrpc_paths = {{"*", "/crm/xmlrpc/**"}};
    p.attach = proxy::CredentialStyle::bearer;
    p.static_attach = proxy::CredentialStyle::keap_api_key;
    p.rate_limit_headers = proxy::keap_rate_limit_headers();
    p.keepalive_refresh = true;
    return p;
}

ProviderConfig builtin_jira() {
    ProviderConfig p;
    p.name = "jira";
    p.env_prefix = "JIRA";
    p.oauth.name = "jira";
    // docs/reference/jira.md: Atlassian 3LO with JSON token bodies and the client credentials in the body; offline_access for a
    // refresh token; the cloud id comes from accessible-resources after the exchange.
    p.oauth.authorize_url = "https://auth.atlassian.com/authorize";
    p.oauth.token_url = "https://auth.atlassian.com/oauth/token";
    p.oauth.client_auth = oauth2::ClientAuth::post;
    p.oauth.token_body = oauth2::BodyFormat::json;
    p.oauth.scopes = {"read:jira-user", "read:jira-work", "offline_access"};
    p.oauth.extra_authorize_params = {{"audience", "api.atlassian.com"}, {"prompt", "consent"}};
    p.oauth.pkce = false;
    p.oauth.account_from_scope = false;
    p.api_base = "https://api.atlassian.com/ex/jira/{cloud_id}";
    p.accessible_resources_url = "https://api.atlassian.com/oauth/token/accessible-resources";
    p.post_connect = {PostConnect::jira_accessible_resources};
    p.allow = {{"GET", "/rest/api/3/user/search"},
               {"GET", "/rest/api/3/myself"},
               {"GET", "/rest/api/2/user/search"},
               {"GET", "/rest/api/2/myself"}};
    p.attach = proxy::CredentialStyle::bearer;
    p.static_attach = proxy::CredentialStyle::basic;
    p.rate_limit_headers = proxy::jira_rate_limit_headers();
    p.keepalive_refresh = false;
    return p;
}

std::string resolve_api_base(const ProviderConfig& p, const std::string& cloud_id) {
    std::string base = p.mode == Mode::oauth ? p.api_base : (p.static_api_base.empty() ? p.api_base
                                                                                        : p.static_api_base);
    const std::string key = "{cloud_id}";
    size_t at = base.find(key);
    if (at != std::string::npos) base.replace(at, key.size(), percent_encode(cloud_id));
    return trim_slash(base);
}

proxy::Credential ProviderConfig::credential(const std::string& access_token) const {
    switch (mode) {
        case Mode::oauth: return {attach, access_token, {}};
        case Mode::api_key: return {static_attach, static_secret, {}};
        case Mode::api_token: return {proxy::CredentialStyle::basic, static_secret, static_email};
        case Mode::pat: return {proxy::CredentialStyle::bearer, static_secret, {}};
    }
    return {attach, access_token, {}};
}

Result<Unit> apply_provider_json(ProviderConfig& p, const json& j) {
    const std::string at = "providers." + p.name;
    if (!j.is_object()) return bad_value(at, "must be an object");
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        const json& v = it.value();
        std::string where = at + "." + k;
        if (!k.empty() && k[0] == '_') continue;   // "_comment"
        if (k == "authorize_url" || k == "token_url" || k == "api_base" || k == "accessible_resources_url") {
            auto s = string_value(v, where);
            if (!s) return s.error();
            if (auto ok = check_upstream_url(where, *s); !ok) return ok.error();
            if (k == "authorize_url") p.oauth.authorize_url = *s;
            if (k == "token_url") p.oauth.token_url = *s;
            if (k == "api_base") p.api_base = *s;
            if (k == "accessible_resources_url") p.accessible_resources_url = *s;
        } else if (k == "client_auth" || k == "refresh_client_auth") {
            auto s = string_value(v, where);
            if (!s) return s.error();
            auto a = client_auth_value(*s, where);
            if (!a) return a.error();
            if (k == "client_auth") {
                p.oauth.client_auth = *a;
            } else {
                p.refresh_client_auth = *a;
            }
        } else if (k == "token_body") {
            auto s = string_value(v, where);
            if (!s) return s.error();
            if (*s == "form") {
                p.oauth.token_body = oauth2::BodyFormat::form;
            } else if (*s == "json") {
                p.oauth.token_body = oauth2::BodyFormat::json;
            } else {
                return bad_value(where, "must be \"form\" or \"json\"");
            }
        } else if (k == "scopes") {
            auto l = string_list(v, where);
            if (!l) return l.error();
            p.oauth.scopes = *l;
        } else if (k == "authorize_params") {
            if (!v.is_object()) return bad_value(where, "must be an object of strings");
            p.oauth.extra_authorize_params.clear();
            for (auto pit = v.begin(); pit != v.end(); ++pit) {
                if (!pit.value().is_string()) return bad_value(where, "must be an object of strings");
                p.oauth.extra_authorize_params.emplace_back(pit.key(), pit.value().get<std::string>());
            }
        } else if (k == "pkce" || k == "account_from_scope" || k == "keepalive_refresh") {
            auto b = bool_value(v, where);
            if (!b) return b.error();
            if (k == "pkce") p.oauth.pkce = *b;
            if (k == "account_from_scope") p.oauth.account_from_scope = *b;
            if (k == "keepalive_refresh") p.keepalive_refresh = *b;
        } else if (k == "allow" || k == "xmlrpc_paths") {
            auto rules = rule_list(v, where);
            if (!rules) return rules.error();
            (k == "allow" ? p.allow : p.xmlrpc_paths) = *rules;
        } else if (k == "credentials" || k == "static_credentials") {
            auto s = string_value(v, where);
            if (!s) return s.error();
            auto a = attach_value(*s, where);
            if (!a) return a.error();
            (k == "credentials" ? p.attach : p.static_attach) = *a;
        } else if (k == "rate_limit_headers") {
            auto l = string_list(v, where);
            if (!l) return l.error();
            p.rate_limit_headers.clear();
            for (auto& h : *l) p.rate_limit_headers.push_back(to_lower(h));
        } else if (k == "post_connect") {
            auto l = string_list(v, where);
            if (!l) return l.error();
            p.post_connect.clear();
            for (const auto& step : *l) {
                if (step != "jira_accessible_resources") {
                    return bad_value(where, "has an unknown step \"" + step + "\" (known: jira_accessible_resources)");
                }
                p.post_connect.push_back(PostConnect::jira_accessible_resources);
            }
        } else if (k == "env_prefix") {
            auto s = string_value(v, where);
            if (!s) return s.error();
            p.env_prefix = upper_env_name(*s);
        } else {
            return make_error("config.unknown_key", "The config has an unknown setting \"" + where + "\".",
                              "Check the spelling against relay/keyrelay.example.json (provider settings: "
                              "authorize_url, token_url, client_auth, refresh_client_auth, token_body, scopes, "
                              "authorize_params, pkce, account_from_scope, api_base, allow, xmlrpc_paths, "
                              "credentials, static_credentials, rate_limit_headers, post_connect, "
                              "accessible_resources_url, keepalive_refresh, env_prefix).");
        }
    }
    p.oauth.name = p.name;
    return Unit{};
}

}  // namespace keyrelay::relay
