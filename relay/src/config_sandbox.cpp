// The configuration for a keyrelay-sandbox: Keap and Jira pointed at the sandbox's fake servers
// (relay/sandbox/INTERFACE.md), with its demo credentials.
#include "config_values.h"

namespace keyrelay::relay {

using nlohmann::json;

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

}  // namespace keyrelay::relay
