// Secrets come only from the environment or from files named in the config or the environment; a secret written
// in the config file itself is refused.
#include <cstdlib>
#include <map>
#include <set>

#include "config_values.h"
#include "keyrelay/ascii.h"
#include "state/files.h"

namespace keyrelay::relay {
namespace {

using nlohmann::json;

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

Result<std::string> read_secret_file(const std::string& path, const std::string& name) {
    std::string text;
    if (files::read_file(path, text) != 0) {
        return make_error("config.secret_file", name + "_FILE names " + path + ", which cannot be read.",
                          "Check the path and that the relay's user can read it (chmod 0400, owned by the relay's "
                          "user).");
    }
    return std::string(trim_end(text));
}

}  // namespace

std::optional<Error> find_literal_secret(const json& j, const std::string& where) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            std::string key = to_lower(it.key());
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

Result<std::optional<std::string>> lookup_secret(const std::string& name, const EnvLookup& env, const json& refs) {
    if (auto v = env(name); v && !v->empty()) return std::optional<std::string>(std::string(trim_end(*v)));
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

EnvLookup process_env() {
    return [](const std::string& name) -> std::optional<std::string> {
        if (const char* v = std::getenv(name.c_str())) return std::string(v);
        return std::nullopt;
    };
}

Result<Unit> resolve_provider_secrets(ProviderConfig& p, const EnvLookup& env, const json& refs) {
    const std::string& pre = p.env_prefix;
    // <PREFIX>_<suffix> -> its value, when set (read in this order: the first unreadable *_FILE is the error).
    std::map<std::string, std::optional<std::string>> secrets;
    for (const char* suffix : {"CLIENT_ID", "CLIENT_SECRET", "API_KEY", "API_TOKEN", "PAT"}) {
        auto value = lookup_secret(pre + "_" + suffix, env, refs);
        if (!value) return value.error();
        secrets[suffix] = *value;
    }
    const auto& api_key = secrets["API_KEY"];
    const auto& api_token = secrets["API_TOKEN"];
    const auto& pat = secrets["PAT"];
    if (secrets["CLIENT_ID"]) p.client_id = *secrets["CLIENT_ID"];
    if (secrets["CLIENT_SECRET"]) p.client_secret = *secrets["CLIENT_SECRET"];
    auto email = env(pre + "_EMAIL");
    auto site = env(pre + "_SITE");
    auto account = env(pre + "_ACCOUNT");

    if (api_key) {
        // Keap: a Personal Access Token or Service Account Key, sent as X-Keap-API-Key (docs/reference/keap.md).
        p.mode = Mode::api_key;
        p.static_secret = *api_key;
        p.static_account = account.value_or("");
    } else if (api_token) {
        // Jira Cloud API token: HTTP Basic email:token against the site (docs/reference/jira.md).
        if (!email || email->empty()) {
            return make_error("config.missing_secret", pre + "_API_TOKEN is set but " + pre + "_EMAIL is not.",
                              "An Atlassian API token is used with the email address of the account that made it: "
                              "set " + pre + "_EMAIL=you@example.com (and " + pre + "_SITE=https://your-site."
                              "atlassian.net).");
        }
        p.mode = Mode::api_token;
        p.static_secret = *api_token;
        p.static_email = *email;
    } else if (pat) {
        // Jira Data Center Personal Access Token: Bearer against the server (docs/reference/jira.md).
        p.mode = Mode::pat;
        p.static_secret = *pat;
    }
    if (p.mode == Mode::api_token || p.mode == Mode::pat) {
        if (site && !site->empty()) {
            std::string s = trim_slash(*site);
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

}  // namespace keyrelay::relay
