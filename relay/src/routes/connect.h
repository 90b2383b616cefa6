// Connecting a provider: GET /connect/{provider} starts the OAuth code flow (RFC 6749 §4.1) and
// GET /callback/{provider} finishes it, runs the provider's post-connect steps and saves the connection.
#pragma once

#include <httplib.h>

#include <functional>
#include <string>

#include "config.h"
#include "http/caller.h"
#include "http/context.h"
#include "keyrelay/http.h"
#include "keyrelay/result.h"
#include "state/oauth_states.h"
#include "state/sessions.h"
#include "state/tokens.h"

namespace keyrelay::relay {

// One exchange with a provider (token endpoint, accessible-resources), timed in the metrics by the caller.
using SendUpstream = std::function<Result<HttpResponse>(const std::string& provider, const HttpRequest& request)>;

class ConnectRoutes {
public:
    ConnectRoutes(const Config& config, const int& port, Callers& callers, SessionStore& sessions, StateStore& states,
                  TokenManager& tokens, SendUpstream send)
        : config_(config), port_(port), callers_(callers), sessions_(sessions), states_(states), tokens_(tokens),
          send_(std::move(send)) {}

    void connect(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);
    void callback(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

private:
    std::string redirect_uri(const ProviderConfig& p) const { return config_.redirect_uri(p.name, port_); }
    Result<Unit> run_step(PostConnect step, const ProviderConfig& p, Connection& c);
    Result<Unit> jira_accessible_resources(const ProviderConfig& p, Connection& c);

    const Config& config_;
    const int& port_;
    Callers& callers_;
    SessionStore& sessions_;
    StateStore& states_;
    TokenManager& tokens_;
    SendUpstream send_;
};

}  // namespace keyrelay::relay
