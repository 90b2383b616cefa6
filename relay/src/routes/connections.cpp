#include "routes/connections.h"

#include "http/respond.h"
#include "keyrelay/reauthorization.h"
#include "obs/log.h"

namespace keyrelay::relay {

using nlohmann::json;

json ConnectionsRoutes::connection_json(const ProviderConfig& p) {
    json out = {{"provider", p.name}, {"mode", mode_name(p.mode)}, {"connected", true}, {"account", nullptr},
                {"expires_at", nullptr}, {"last_refresh_at", nullptr}, {"last_refresh_result", nullptr},
                {"needs_reauth", false}, {"reauthorize_by", nullptr}, {"warnings", json::array()}};
    if (p.mode != Mode::oauth) {
        out["configured"] = true;
        if (!p.static_account.empty()) out["account"] = p.static_account;
        return out;
    }
    out["configured"] = p.oauth_configured();
    auto c = tokens_.get(p.name);
    if (!c || !c->has_value()) {
        out["connected"] = false;
        if (!c) out["store_error"] = c.error().code;
        return out;
    }
    const Connection& k = **c;
    out["account"] = k.account.empty() ? json(nullptr) : json(k.account);
    out["expires_at"] = k.tokens.expires_at > 0 ? json(k.tokens.expires_at) : json(nullptr);
    out["last_refresh_at"] = k.last_refresh_at > 0 ? json(k.last_refresh_at) : json(nullptr);
    out["last_refresh_result"] = k.last_refresh_result.empty() ? json(nullptr) : json(k.last_refresh_result);
    out["needs_reauth"] = k.needs_reauth;
    out["connected_at"] = k.connected_at;
    auto outlook = reauthorization::outlook(reauthorization::kind_of(p.name), k.connected_at, unix_now());
    if (outlook.reauthorize_by) out["reauthorize_by"] = *outlook.reauthorize_by;
    for (const auto& w : outlook.warnings) out["warnings"].push_back({{"code", w.code}, {"message", w.message}});
    return out;
}

void ConnectionsRoutes::list(RequestContext&, const httplib::Request& req, httplib::Response& res) {
    if (callers_.authenticate(req, res, false) == Caller::none) return;
    json list = json::array();
    for (const auto& p : config_.providers) list.push_back(connection_json(p));
    send_json(res, 200, {{"connections", list}});
}

void ConnectionsRoutes::disconnect(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    const ProviderConfig* p = provider_or_404(config_, ctx, req, res, false);
    if (p == nullptr) return;
    if (callers_.authenticate(req, res, true) == Caller::none) return;
    if (p->mode != Mode::oauth) {
        send_error(res, 409, "connection.static",
                   p->name + " uses a static credential from the relay's environment.",
                   "Remove " + p->env_prefix + "_API_KEY / _API_TOKEN / _PAT from the relay's environment and "
                   "restart it to disconnect.");
        return;
    }
    auto removed = tokens_.remove(p->name);
    if (!removed) {
        send_error(res, store_error_status(removed.error()), removed.error());
        return;
    }
    log_line(LogLevel::info, "disconnected", {{"request_id", ctx.id}, {"provider", p->name}});
    res.set_header("Cache-Control", "no-store");
    res.status = 204;
}

}  // namespace keyrelay::relay
