#include "config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "keyrelay/http.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

std::string upper_env_name(const std::string& name) {
    std::string out;
    for (char c : name) {
        if (c >= 'a' && c <= 'z') {
            out += static_cast<char>(c - 'a' + 'A');
        } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            out += c;
        } else {
            out += '_';
        }
    }
    return out;
}

std::string lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

std::string trim_trailing(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
}

Error bad_value(const std::string& where, const std::string& what) {
    return make_error("config.bad_value", "The config value " + where + " " + what + ".",
                      "Fix that value in keyrelay.json; relay/keyrelay.example.json shows every setting with a valid "
                      "value.");
}

// Names that hold secrets: they may appear in the config only as NAME_FILE (a path), never with a value.
const std::set<std::string>& secret_key_names() {
    static const std::set<std::string> kNames{
        "client_secret", "clientsecret", "secret", "api_key", "apikey", "api_token", "pat", "password",
        "store_key", "access_token", "refresh_token", "token", "client_id",
        "keap_client_id", "keap_client_secret", "keap_api_key", "jira_client_id", "jira_client_secret",
        "jira_api_token", "jira_pat", "keyrelay_store_key", "keyrelay_store_key_previous", "keyrelay_api_key"};
    return kNames;
}

// Values that are unmistakably credentials, whatever key they sit under.
bool looks_like_secret_value(const std::string& v) {
    return v.rfind("KeapAK-", 0) == 0 || v.rfind("KeapPAT-", 0) == 0 || v.rfind("ATATT", 0) == 0;
}

std::optional<Error> find_literal_secret(const json& j, const std::string& where) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            std::string key = lower(it.key());
            std::string path = where.empty() ? it.key() : where + "." + it.key();
            if (secret_key_names().count(key) && !(it.value().is_string() && it.value().get<std::string>().empty())) {
                std::string env = upper_env_name(it.key());
                if (env.rfind("KEAP_", 0) != 0 && env.rfind("JIRA_", 0) != 0 && env.rfind("KEYRELAY_", 0) != 0) {
                    // Inside providers.<name>: that provider's variables (KEAP_CLIENT_SECRET, ...).
                    std::string provider = "<PROVIDER>";
                    if (where.rfind("providers.", 0) == 0) {
                        std::string rest = where.substr(10);
                        provider = upper_env_name(rest.substr(0, rest.find('.')));
                    }
                    env = provider + "_" + env;
                }
                return make_error("config.secret_in_file",
                                  "The config file holds a secret under \"" + path + "\"; keyrelay refuses to start.",
                                  "Secrets never go in keyrelay.json (it gets copied, committed and shown). Put the "
                                  "value in the environment variable " + env + ", or put it in a file readable only "
                                  "by the relay and name that file in the config as \"" + env + "_FILE\". Then "
                                  "remove \"" + path + "\" from the config.");
            }
            if (auto e = find_literal_secret(it.value(), path)) return e;
        }
    } else if (j.is_array()) {
        for (size_t i = 0; i < j.size(); ++i) {
            if (auto e = find_literal_secret(j[i], where + "[" + std::to_string(i) + "]")) return e;
        }
    } else if (j.is_string() && looks_like_secret_value(j.get<std::string>())) {
        return make_error("config.secret_in_file",
                          "The config value \"" + where + "\" is a Keap or Atlassian key; keyrelay refuses to start.",
                          "Secrets never go in keyrelay.json. Put the key in the environment (KEAP_API_KEY, "
                          "JIRA_API_TOKEN) or in a 0600 file named by KEAP_API_KEY_FILE / JIRA_API_TOKEN_FILE.");
    }
    return std::nullopt;
}

bool is_loopback_host(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

// Upstream URLs must be HTTPS, except on loopback (the sandbox, local tests).
Result<Unit> check_upstream_url(const std::string& where, const std::string& url) {
    if (url.empty()) return Unit{};
    auto u = parse_url(url);
    if (!u) return bad_value(where, "is not a valid URL (" + u.error().message + ")");
    if (u->scheme != "https" && !(u->scheme == "http" && is_loopback_host(u->host))) {
        return make_error("config.bad_value", "The config value " + where + " is not an HTTPS URL: " + url,
                          "Tokens and API keys travel to this URL: use https:// (plain http is accepted only for "
                          "127.0.0.1/localhost, e.g. the sandbox).");
    }
    return Unit{};
}

Result<std::string> string_value(const json& j, const std::string& where) {
    if (!j.is_string()) return bad_value(where, "must be a string");
    return j.get<std::string>();
}

Result<std::vector<std::string>> string_list(const json& j, const std::string& where) {
    if (!j.is_array()) return bad_value(where, "must be an array of strings");
    std::vector<std::string> out;
    for (const auto& v : j) {
        if (!v.is_string()) return bad_value(where, "must be an array of strings");
        out.push_back(v.get<std::string>());
    }
    return out;
}

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

Result<int64_t> int_value(const json& j, const std::string& where, int64_t min, int64_t max) {
    if (!j.is_number_integer()) return bad_value(where, "must be an integer");
    auto v = j.get<int64_t>();
    if (v < min || v > max) {
        return bad_value(where, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return v;
}

Result<bool> bool_value(const json& j, const std::string& where) {
    if (!j.is_boolean()) return bad_value(where, "must be true or false");
    return j.get<bool>();
}

Result<Attach> attach_value(const std::string& s, const std::string& where) {
    if (s == "bearer") return Attach::bearer;
    if (s == "x-keap-api-key") return Attach::keap_api_key;
    if (s == "basic") return Attach::basic;
    return bad_value(where, "must be \"bearer\", \"x-keap-api-key\" or \"basic\"");
}

Result<oauth2::ClientAuth> client_auth_value(const std::string& s, const std::string& where) {
    if (s == "basic") return oauth2::ClientAuth::basic;
    if (s == "post") return oauth2::ClientAuth::post;
    return bad_value(where, "must be \"basic\" (HTTP Basic, RFC 6749 §2.3.1) or \"post\" (client_secret_post)");
}

Result<std::string> read_secret_file(const std::string& path, const std::string& name) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return make_error("config.secret_file", name + "_FILE names " + path + ", which cannot be read.",
                          "Check the path and that the relay's user can read it (chmod 0400, owned by the relay's "
                          "user).");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return trim_trailing(ss.str());
}

// NAME from the environment, else NAME_FILE from the environment, else NAME_FILE from the config's top level.
Result<std::optional<std::string>> lookup_secret(const std::string& name, const EnvLookup& env, const json& refs) {
    if (auto v = env(name); v && !v->empty()) return std::optional<std::string>(trim_trailing(*v));
    std::string file;
    if (auto f = env(name + "_FILE"); f && !f->empty()) {
        file = *f;
    } else if (refs.is_object() && refs.contains(name + "_FILE") && refs[name + "_FILE"].is_string()) {
        file = refs[name + "_FILE"].get<std::string>();
    }
    if (file.empty()) return std::optional<std::string>();
    auto text = read_secret_file(file, name);
    if (!text) return text.error();
    return std::optional<std::string>(*text);
}

std::string account_host(const std::string& url) {
    auto u = parse_url(url);
    return u ? u->host : url;
}

}  // namespace

EnvLookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* v = std::getenv(name.c_str());
        if (v == nullptr) return std::nullopt;
        return std::string(v);
    };
}

const char* mode_name(Mode mode) {
    switch (mode) {
        case Mode::oauth: return "oauth";
        case Mode::api_key: return "api_key";
        case Mode::api_token: return "api_token";
        case Mode::pat: return "pat";
    }
    return "oauth";
}

const ProviderConfig* Config::provider(const std::string& name) const {
    for (const auto& p : providers) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

std::string Config::base_url(int actual_port) const {
    if (!public_url.empty()) {
        std::string u = public_url;
        while (!u.empty() && u.back() == '/') u.pop_back();
        return u;
    }
    std::string host = (bind.empty() || bind == "0.0.0.0" || bind == "::") ? "127.0.0.1" : bind;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return std::string(tls() ? "https" : "http") + "://" + host + ":" + std::to_string(actual_port);
}

std::string Config::redirect_uri(const std::string& provider, int actual_port) const {
    return base_url(actual_port) + "/callback/" + provider;
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
    p.attach = Attach::bearer;
    p.static_attach = Attach::keap_api_key;
    p.rate_limit_headers = {"retry-after", "x-keap-product-*", "x-keap-tenant-*"};
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
    p.attach = Attach::bearer;
    p.static_attach = Attach::basic;
    p.rate_limit_headers = {"retry-after", "x-ratelimit-*", "ratelimit-*"};
    p.keepalive_refresh = false;
    return p;
}

std::string resolve_api_base(const ProviderConfig& p, const std::string& cloud_id) {
    std::string base = p.mode == Mode::oauth ? p.api_base : (p.static_api_base.empty() ? p.api_base
                                                                                        : p.static_api_base);
    const std::string key = "{cloud_id}";
    size_t at = base.find(key);
    if (at != std::string::npos) base.replace(at, key.size(), percent_encode(cloud_id));
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
}

bool is_rate_limit_header(const ProviderConfig& p, const std::string& name) {
    const std::string_view n(name);
    for (const auto& h : p.rate_limit_headers) {
        if (!h.empty() && h.back() == '*') {
            const std::string_view prefix = std::string_view(h).substr(0, h.size() - 1);
            if (n.size() >= prefix.size() && iequals(n.substr(0, prefix.size()), prefix)) return true;
        } else if (iequals(n, h)) {
            return true;
        }
    }
    return false;
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
            for (auto& h : *l) p.rate_limit_headers.push_back(lower(h));
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

Result<Unit> resolve_provider_secrets(ProviderConfig& p, const EnvLookup& env, const json& refs) {
    const std::string& pre = p.env_prefix;
    auto get = [&](const std::string& suffix) { return lookup_secret(pre + "_" + suffix, env, refs); };

    auto id = get("CLIENT_ID");
    if (!id) return id.error();
    auto secret = get("CLIENT_SECRET");
    if (!secret) return secret.error();
    if (id->has_value()) p.client_id = **id;
    if (secret->has_value()) p.client_secret = **secret;

    auto api_key = get("API_KEY");
    if (!api_key) return api_key.error();
    auto api_token = get("API_TOKEN");
    if (!api_token) return api_token.error();
    auto pat = get("PAT");
    if (!pat) return pat.error();
    auto email = env(pre + "_EMAIL");
    auto site = env(pre + "_SITE");
    auto account = env(pre + "_ACCOUNT");

    if (api_key->has_value()) {
        // Keap: a Personal Access Token or Service Account Key, sent as X-Keap-API-Key (docs/reference/keap.md).
        p.mode = Mode::api_key;
        p.static_secret = **api_key;
        p.static_account = account.value_or("");
    } else if (api_token->has_value()) {
        // Jira Cloud API token: HTTP Basic email:token against the site (docs/reference/jira.md).
        if (!email || email->empty()) {
            return make_error("config.missing_secret", pre + "_API_TOKEN is set but " + pre + "_EMAIL is not.",
                              "An Atlassian API token is used with the email address of the account that made it: "
                              "set " + pre + "_EMAIL=you@example.com (and " + pre + "_SITE=https://your-site."
                              "atlassian.net).");
        }
        p.mode = Mode::api_token;
        p.static_secret = **api_token;
        p.static_email = *email;
    } else if (pat->has_value()) {
        // Jira Data Center Personal Access Token: Bearer against the server (docs/reference/jira.md).
        p.mode = Mode::pat;
        p.static_secret = **pat;
    }
    if (p.mode == Mode::api_token || p.mode == Mode::pat) {
        if (site && !site->empty()) {
            std::string s = *site;
            while (!s.empty() && s.back() == '/') s.pop_back();
            if (auto ok = check_upstream_url(pre + "_SITE", s); !ok) return ok.error();
            p.static_api_base = s;
        }
        if (p.static_api_base.empty()) {
            return make_error("config.missing_secret",
                              pre + (p.mode == Mode::pat ? "_PAT" : "_API_TOKEN") + " is set but " + pre +
                                  "_SITE is not.",
                              "Say which Jira to call: " + pre + "_SITE=https://your-site.atlassian.net (Cloud) or "
                              "https://jira.example.com (Data Center).");
        }
        p.static_account = account.value_or(account_host(p.static_api_base));
    }
    return Unit{};
}

Result<Config> config_from_sandbox(const std::string& sandbox_url, const json& sc, const EnvLookup& env) {
    Config c;
    c.sandbox = true;
    c.sandbox_url = sandbox_url;
    auto str = [](const json& obj, const char* key) -> std::string {
        if (obj.is_object() && obj.contains(key) && obj[key].is_string()) return obj[key].get<std::string>();
        return {};
    };
    if (!sc.is_object() || !sc.contains("keap") || !sc["keap"].is_object() || !sc.contains("jira") ||
        !sc["jira"].is_object()) {
        return make_error("sandbox.bad_config", "The sandbox's /sandbox/config has no keap and jira sections.",
                          "Is " + sandbox_url + " a keyrelay-sandbox? Start it with build/native/bin/keyrelay-sandbox "
                          "and pass the URL it prints.");
    }
    const json& k = sc["keap"];
    const json& jr = sc["jira"];

    ProviderConfig keap = builtin_keap();
    keap.oauth.authorize_url = str(k, "authorize_url");
    keap.oauth.token_url = str(k, "token_url");
    keap.api_base = str(k, "api_base");
    keap.client_id = str(k, "client_id");
    keap.client_secret = str(k, "client_secret");
    keap.static_account = str(k, "account");

    ProviderConfig jira = builtin_jira();
    jira.oauth.authorize_url = str(jr, "authorize_url");
    jira.oauth.token_url = str(jr, "token_url");
    jira.accessible_resources_url = str(jr, "accessible_resources_url");
    std::string jira_base = str(jr, "api_base");
    jira.api_base = jira_base + "/ex/jira/{cloud_id}";
    jira.client_id = str(jr, "client_id");
    jira.client_secret = str(jr, "client_secret");

    for (auto* p : {&keap, &jira}) {
        if (p->oauth.authorize_url.empty() || p->oauth.token_url.empty() || p->api_base.empty() ||
            p->client_id.empty() || p->client_secret.empty()) {
            return make_error("sandbox.bad_config",
                              "The sandbox's /sandbox/config lacks URLs or credentials for " + p->name + ".",
                              "Use a keyrelay-sandbox built from this tree (relay/sandbox/INTERFACE.md).");
        }
    }

    // Static modes against the sandbox, selected by the same environment variables as in production.
    if (auto v = env("KEAP_API_KEY"); v && !v->empty()) {
        keap.mode = Mode::api_key;
        keap.static_secret = *v;
    }
    if (auto v = env("JIRA_API_TOKEN"); v && !v->empty()) {
        auto email = env("JIRA_EMAIL");
        if (!email || email->empty()) {
            return make_error("config.missing_secret", "JIRA_API_TOKEN is set but JIRA_EMAIL is not.",
                              "The sandbox's API token belongs to " + str(jr, "api_token_email") +
                                  ": set JIRA_EMAIL to it.");
        }
        jira.mode = Mode::api_token;
        jira.static_secret = *v;
        jira.static_email = *email;
        // The site itself, as https://<site>.atlassian.net/rest/api/3/... (Basic email:api_token).
        jira.static_api_base = jira_base;
        jira.static_account = str(jr, "site_url");
    } else if (auto pat = env("JIRA_PAT"); pat && !pat->empty()) {
        // Data Center paths: <server>/rest/api/2/...
        jira.mode = Mode::pat;
        jira.static_secret = *pat;
        jira.static_api_base = jira_base;
        jira.static_account = account_host(jira_base);
    }
    c.providers = {keap, jira};
    if (auto v = env("KEYRELAY_API_KEY"); v && !v->empty()) c.api_key = *v;
    if (auto v = env("KEYRELAY_STORE_KEY"); v && !v->empty()) c.store_key = *v;
    if (auto v = env("KEYRELAY_STORE_KEY_PREVIOUS"); v && !v->empty()) c.store_key_previous = *v;
    if (auto v = env("KEYRELAY_REDIS_URL"); v && !v->empty()) c.redis_url = *v;
    c.users.push_back(User{"demo", ""});   // the password hash is made at start (sandbox mode only)
    return c;
}

Result<Config> config_from_json(const json& doc, const EnvLookup& env, const std::string& config_dir) {
    if (!doc.is_object()) {
        return make_error("config.not_json", "The config file is not a JSON object.",
                          "Start from relay/keyrelay.example.json.");
    }
    if (auto e = find_literal_secret(doc, "")) return *e;

    Config c;
    json refs = json::object();   // NAME_FILE entries
    auto rel = [&](const std::string& path) {
        if (path.empty() || path[0] == '/' || config_dir.empty()) return path;
        return config_dir + "/" + path;
    };
    for (auto it = doc.begin(); it != doc.end(); ++it) {
        const std::string& k = it.key();
        const json& v = it.value();
        if (!k.empty() && k[0] == '_') continue;
        if (k.size() > 5 && k.compare(k.size() - 5, 5, "_FILE") == 0 && upper_env_name(k) == k) {
            auto s = string_value(v, k);
            if (!s) return s.error();
            refs[k] = rel(*s);
            continue;
        }
        if (k == "port") {
            auto n = int_value(v, k, 0, 65535);
            if (!n) return n.error();
            c.port = static_cast<int>(*n);
        } else if (k == "redis_url") {
            auto s = string_value(v, k);
            if (!s) return s.error();
            c.redis_url = *s;
        } else if (k == "bind" || k == "public_url" || k == "data_dir" || k == "web_dir" || k == "wasm_dir" || k == "tls_cert" ||
                   k == "tls_key" || k == "ca_file") {
            auto s = string_value(v, k);
            if (!s) return s.error();
            if (k == "bind") c.bind = *s;
            if (k == "public_url") {
                auto u = parse_url(*s);
                if (!u || (u->scheme != "https" && u->scheme != "http")) {
                    return bad_value(k, "must be the relay's public address, e.g. https://relay.example.com");
                }
                c.public_url = *s;
            }
            if (k == "data_dir") c.data_dir = rel(*s);
            if (k == "web_dir") c.web_dir = rel(*s);
            if (k == "wasm_dir") c.wasm_dir = rel(*s);
            if (k == "tls_cert") c.tls_cert = rel(*s);
            if (k == "tls_key") c.tls_key = rel(*s);
            if (k == "ca_file") c.ca_file = rel(*s);
        } else if (k == "users") {
            if (!v.is_array()) return bad_value(k, "must be an array of {username, password_hash}");
            for (const auto& u : v) {
                if (!u.is_object() || !u.contains("username") || !u["username"].is_string() ||
                    !u.contains("password_hash") || !u["password_hash"].is_string()) {
                    return bad_value(k, "must hold {\"username\": ..., \"password_hash\": ...} objects (make a hash "
                                        "with: keyrelay hash-password)");
                }
                std::string hash = u["password_hash"].get<std::string>();
                if (hash.rfind("pbkdf2-sha256$", 0) != 0) {
                    return bad_value(k, "has a password_hash that is not a keyrelay hash (make one with: keyrelay "
                                        "hash-password)");
                }
                c.users.push_back(User{u["username"].get<std::string>(), hash});
            }
        } else if (k == "log_queries") {
            auto b = bool_value(v, k);
            if (!b) return b.error();
            c.log_queries = *b;
        } else if (k == "cors_origins") {
            auto l = string_list(v, k);
            if (!l) return l.error();
            for (auto& o : *l) {
                while (!o.empty() && o.back() == '/') o.pop_back();
                auto u = parse_url(o);
                if (o == "*" || !u || u->path != "/" || !u->query.empty() || o.find('/', o.find("://") + 3) !=
                                                                                   std::string::npos) {
                    return bad_value(k, "must list exact origins like \"https://app.example.com\" (scheme, host, "
                                        "optional port; no path, no \"*\"): got \"" + o + "\"");
                }
                c.cors_origins.push_back(o);
            }
        } else if (k == "refresh_margin_seconds" || k == "keepalive_refresh_days" || k == "keepalive_check_seconds" ||
                   k == "session_hours" || k == "upstream_connect_timeout_ms" || k == "upstream_read_timeout_ms" ||
                   k == "max_request_body" || k == "max_upstream_body" || k == "server_threads" ||
                   k == "redis_connect_timeout_ms" || k == "redis_command_timeout_ms" || k == "refresh_lease_ms") {
            auto n = int_value(v, k, 0, int64_t(1) << 40);
            if (!n) return n.error();
            if (k == "refresh_margin_seconds") c.refresh_margin_seconds = *n;
            if (k == "keepalive_refresh_days") c.keepalive_refresh_days = *n;
            if (k == "keepalive_check_seconds") c.keepalive_check_seconds = *n > 0 ? *n : 1;
            if (k == "session_hours") c.session_hours = *n > 0 ? *n : 1;
            if (k == "upstream_connect_timeout_ms") c.upstream_connect_timeout_ms = *n;
            if (k == "upstream_read_timeout_ms") c.upstream_read_timeout_ms = *n;
            if (k == "max_request_body") c.max_request_body = static_cast<size_t>(*n);
            if (k == "max_upstream_body") c.max_upstream_body = static_cast<size_t>(*n);
            if (k == "server_threads") c.server_threads = *n > 0 ? static_cast<int>(*n) : 1;
            if (k == "redis_connect_timeout_ms") c.redis_connect_timeout_ms = std::max<int64_t>(*n, 1);
            if (k == "redis_command_timeout_ms") c.redis_command_timeout_ms = std::max<int64_t>(*n, 1);
            if (k == "refresh_lease_ms") c.refresh_lease_ms = std::max<int64_t>(*n, 300);
        } else if (k == "providers") {
            // handled below, after the built-ins exist
        } else {
            return make_error("config.unknown_key", "The config has an unknown setting \"" + k + "\".",
                              "Check the spelling against relay/keyrelay.example.json.");
        }
    }

    c.providers = {builtin_keap(), builtin_jira()};
    if (doc.contains("providers")) {
        const json& ps = doc["providers"];
        if (!ps.is_object()) return bad_value("providers", "must be an object keyed by provider name");
        for (auto it = ps.begin(); it != ps.end(); ++it) {
            const std::string& name = it.key();
            if (!name.empty() && name[0] == '_') continue;   // "_comment"
            bool valid_name = !name.empty() && name.size() <= 32;
            for (char ch : name) {
                valid_name = valid_name && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                                            ch == '-');
            }
            if (!valid_name) {
                return bad_value("providers." + name, "has a name that is not [a-z0-9_-]{1,32} (it appears in URLs "
                                                      "and cookie names)");
            }
            ProviderConfig* target = nullptr;
            for (auto& p : c.providers) {
                if (p.name == name) target = &p;
            }
            if (target == nullptr) {
                if (it.value().is_null()) continue;
                ProviderConfig fresh;
                fresh.name = name;
                fresh.oauth.name = name;
                fresh.env_prefix = upper_env_name(name);
                c.providers.push_back(fresh);
                target = &c.providers.back();
            }
            if (auto ok = apply_provider_json(*target, it.value()); !ok) return ok.error();
            if (target->oauth.authorize_url.empty() || target->oauth.token_url.empty() || target->api_base.empty()) {
                return bad_value("providers." + name, "needs authorize_url, token_url and api_base");
            }
        }
    }
    for (auto& p : c.providers) {
        if (auto ok = resolve_provider_secrets(p, env, refs); !ok) return ok.error();
    }

    auto secret = [&](const std::string& name) { return lookup_secret(name, env, refs); };
    auto api_key = secret("KEYRELAY_API_KEY");
    if (!api_key) return api_key.error();
    if (api_key->has_value()) c.api_key = **api_key;
    auto store_key = secret("KEYRELAY_STORE_KEY");
    if (!store_key) return store_key.error();
    c.store_key = *store_key;
    auto previous = secret("KEYRELAY_STORE_KEY_PREVIOUS");
    if (!previous) return previous.error();
    c.store_key_previous = *previous;
    // The URL may hold Redis's password: the environment (or KEYRELAY_REDIS_URL_FILE) wins over the config file.
    auto redis_url = secret("KEYRELAY_REDIS_URL");
    if (!redis_url) return redis_url.error();
    if (redis_url->has_value() && !(*redis_url)->empty()) c.redis_url = **redis_url;
    if (c.data_dir.empty()) {
        auto state_dir = env("STATE_DIRECTORY");   // systemd StateDirectory=
        c.data_dir = state_dir && !state_dir->empty() ? *state_dir : rel("keyrelay-data");
    }
    return c;
}

}  // namespace keyrelay::relay
