// Checked reading of keyrelay.json values, shared by the config's readers: each error is "config.bad_value" and
// names the setting and what a valid value looks like.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

// "config.bad_value": "The config value <where> <what>."
Error bad_value(const std::string& where, const std::string& what);

Result<std::string> string_value(const nlohmann::json& j, const std::string& where);
Result<std::vector<std::string>> string_list(const nlohmann::json& j, const std::string& where);
Result<int64_t> int_value(const nlohmann::json& j, const std::string& where, int64_t min, int64_t max);
Result<bool> bool_value(const nlohmann::json& j, const std::string& where);

// Upstream URLs must be HTTPS, except on loopback (the sandbox, local tests). An empty URL passes.
Result<Unit> check_upstream_url(const std::string& where, const std::string& url);

// Without trailing slashes: "https://relay.example.com/" -> "https://relay.example.com".
std::string trim_slash(std::string s);

// A name as an environment variable: A-Z and 0-9 kept, a-z upper-cased, anything else '_'.
std::string upper_env_name(const std::string& name);

// The host of a URL (what /api/connections shows as the account of a static credential), or the text itself.
std::string account_host(const std::string& url);

// Errors "config.secret_in_file" when the config holds a secret literally (a secret's key with a value, or a value
// that is unmistakably a Keap or Atlassian key); `where` is the path of `j` in the config ("" at the top).
std::optional<Error> find_literal_secret(const nlohmann::json& j, const std::string& where);

// NAME from the environment, else NAME_FILE from the environment, else NAME_FILE from the config's top level
// (`refs`); nullopt when none is set. Error "config.secret_file" when the named file cannot be read.
Result<std::optional<std::string>> lookup_secret(const std::string& name, const EnvLookup& env,
                                                 const nlohmann::json& refs);

}  // namespace keyrelay::relay
