#include "state/connection.h"

#include <nlohmann/json.hpp>

#include "state/json_fields.h"

namespace keyrelay::relay {

using json = nlohmann::json;

std::string to_json(const Connection& c) {
    const oauth2::TokenSet& t = c.tokens;
    json tokens = {{"access_token", t.access_token}, {"refresh_token", t.refresh_token},
                   {"token_type", t.token_type},     {"scope", t.scope},
                   {"account", t.account},           {"expires_in", t.expires_in},
                   {"obtained_at", t.obtained_at},   {"expires_at", t.expires_at}};
    json j = {{"provider", c.provider},
              {"tokens", std::move(tokens)},
              {"account", c.account},
              {"cloud_id", c.cloud_id},
              {"connected_at", c.connected_at},
              {"refresh_token_issued_at", c.refresh_token_issued_at},
              {"last_refresh_at", c.last_refresh_at},
              {"last_refresh_result", c.last_refresh_result},
              {"needs_reauth", c.needs_reauth},
              {"version", c.version}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Connection> connection_from_json(std::string_view text) {
    auto bad = [](const std::string& why) {
        return make_error("store.corrupt", "The stored connection is unreadable: " + why + ".",
                          "The record was written by an incompatible keyrelay or altered; connect the provider "
                          "again.");
    };
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("it is not a JSON object");
    Connection c;
    JsonFields f{j, {}};
    f.str("provider", c.provider);
    f.str("account", c.account);
    f.str("cloud_id", c.cloud_id);
    f.i64("connected_at", c.connected_at);
    f.i64("refresh_token_issued_at", c.refresh_token_issued_at);
    f.i64("last_refresh_at", c.last_refresh_at);
    f.str("last_refresh_result", c.last_refresh_result);
    f.boolean("needs_reauth", c.needs_reauth);
    f.u64("version", c.version);
    if (!f.bad.empty()) return bad(f.bad);
    if (c.provider.empty()) return bad("it has no \"provider\"");
    auto tokens = j.find("tokens");
    if (tokens == j.end() || !tokens->is_object()) return bad("it has no \"tokens\" object");
    JsonFields t{*tokens, {}};
    t.str("access_token", c.tokens.access_token);
    t.str("refresh_token", c.tokens.refresh_token);
    t.str("token_type", c.tokens.token_type);
    t.str("scope", c.tokens.scope);
    t.str("account", c.tokens.account);
    t.i64("expires_in", c.tokens.expires_in);
    t.i64("obtained_at", c.tokens.obtained_at);
    t.i64("expires_at", c.tokens.expires_at);
    if (!t.bad.empty()) return bad("tokens: " + t.bad);
    return c;
}

}  // namespace keyrelay::relay
