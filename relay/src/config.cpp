// Reading keyrelay.json: the top-level settings, then the providers (config_providers.cpp) and the secrets
// (config_env.cpp).
#include "config.h"

#include <algorithm>
#include <map>

#include "config_values.h"
#include "keyrelay/http.h"

namespace keyrelay::relay {

using nlohmann::json;

const ProviderConfig* Config::provider(const std::string& name) const {
    for (const auto& p : providers) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

std::string Config::base_url(int actual_port) const {
    if (!public_url.empty()) return trim_slash(public_url);
    std::string host = (bind.empty() || bind == "0.0.0.0" || bind == "::") ? "127.0.0.1" : bind;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return std::string(tls() ? "https" : "http") + "://" + host + ":" + std::to_string(actual_port);
}

std::string Config::redirect_uri(const std::string& provider, int actual_port) const {
    return base_url(actual_port) + "/callback/" + provider;
}

Result<Config> config_from_json(const json& doc, const EnvLookup& env, const std::string& config_dir) {
    // The string settings; `true`: a path, relative to the config file's directory.
    static const std::map<std::string, std::pair<std::string Config::*, bool>> kStrings{
        {"bind", {&Config::bind, false}},         {"public_url", {&Config::public_url, false}},
        {"redis_url", {&Config::redis_url, false}}, {"data_dir", {&Config::data_dir, true}},
        {"web_dir", {&Config::web_dir, true}},     {"wasm_dir", {&Config::wasm_dir, true}},
        {"tls_cert", {&Config::tls_cert, true}},   {"tls_key", {&Config::tls_key, true}},
        {"ca_file", {&Config::ca_file, true}}};
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
        } else if (auto field = kStrings.find(k); field != kStrings.end()) {
            auto s = string_value(v, k);
            if (!s) return s.error();
            if (k == "public_url") {
                auto u = parse_url(*s);
                if (!u || (u->scheme != "https" && u->scheme != "http")) {
                    return bad_value(k, "must be the relay's public address, e.g. https://relay.example.com");
                }
            }
            c.*(field->second.first) = field->second.second ? rel(*s) : *s;
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
                o = trim_slash(o);
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
            auto name_char = [](char ch) {
                return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
            };
            if (name.empty() || name.size() > 32 || !std::all_of(name.begin(), name.end(), name_char)) {
                return bad_value("providers." + name, "has a name that is not [a-z0-9_-]{1,32} (it appears in URLs "
                                                      "and cookie names)");
            }
            auto target = std::find_if(c.providers.begin(), c.providers.end(),
                                       [&name](const ProviderConfig& p) { return p.name == name; });
            if (target == c.providers.end()) {
                if (it.value().is_null()) continue;
                ProviderConfig fresh;
                fresh.name = name;
                fresh.oauth.name = name;
                fresh.env_prefix = upper_env_name(name);
                c.providers.push_back(fresh);
                target = c.providers.end() - 1;
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
