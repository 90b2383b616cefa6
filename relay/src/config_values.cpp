#include "config_values.h"

#include "keyrelay/ascii.h"
#include "keyrelay/http.h"

namespace keyrelay::relay {

using nlohmann::json;

std::string upper_env_name(const std::string& name) {
    std::string out;
    for (char c : name) {
        const char u = ascii_upper(c);
        out += ((u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9')) ? u : '_';
    }
    return out;
}

std::string trim_slash(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

Error bad_value(const std::string& where, const std::string& what) {
    return make_error("config.bad_value", "The config value " + where + " " + what + ".",
                      "Fix that value in keyrelay.json; relay/keyrelay.example.json shows every setting with a valid "
                      "value.");
}

namespace {

bool is_loopback_host(const std::string& host) {
    return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

}  // namespace

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

std::string account_host(const std::string& url) {
    auto u = parse_url(url);
    return u ? u->host : url;
}

}  // namespace keyrelay::relay
