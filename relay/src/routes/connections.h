// The connections' status and their removal: GET /api/connections, POST /api/connections/{provider}/disconnect.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "http/caller.h"
#include "http/context.h"
#include "state/tokens.h"

namespace keyrelay::relay {

class ConnectionsRoutes {
public:
    ConnectionsRoutes(const Config& config, Callers& callers, TokenManager& tokens)
        : config_(config), callers_(callers), tokens_(tokens) {}

    void list(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);
    void disconnect(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

private:
    // One entry of the list (docs/api.md "Connections"); never a token.
    nlohmann::json connection_json(const ProviderConfig& p);

    const Config& config_;
    Callers& callers_;
    TokenManager& tokens_;
};

}  // namespace keyrelay::relay
