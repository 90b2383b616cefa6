// The allowlisted proxy: /proxy/{provider}/{api path}. Checks the caller and the allowlist, attaches the provider's
// credential, sends the call (retrying per the retry policy, refreshing once on a 401), and passes the answer back
// or wraps one that is not the API's as 502 upstream.<diagnosis>.
#pragma once

#include <httplib.h>

#include <optional>
#include <string>

#include "config.h"
#include "http/caller.h"
#include "http/context.h"
#include "keyrelay/http.h"
#include "obs/metrics.h"
#include "state/tokens.h"
#include "upstream.h"

namespace keyrelay::relay {

// A proxied call, checked and ready to send.
struct ProxyCall {
    const ProviderConfig* p = nullptr;
    std::string bare;                  // the API path without the query, for the allowlist and the diagnosis
    std::optional<Connection> conn;    // OAuth providers: the connection whose token is attached
    HttpRequest up;
};

class ProxyRoute {
public:
    ProxyRoute(const Config& config, Callers& callers, TokenManager& tokens, Upstream& upstream, Metrics& metrics)
        : config_(config), callers_(callers), tokens_(tokens), upstream_(upstream), metrics_(metrics) {}

    void handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

    // One call to provider p's API for another route of the relay (the XML-RPC bridge, routes/bridge.h): `up.url` is
    // a path under the provider's API base. The machinery of a proxied call — the connection, its credential,
    // retries, one refresh on a 401, metrics, scrubbing — without the caller check and the allowlist, which are the
    // other route's to apply. Errors: "connection.*" (not connected, needs reauthorization), "upstream.*".
    Result<HttpResponse> send(RequestContext& ctx, const ProviderConfig& p, HttpRequest up);

private:
    // Checks the call (caller, path, allowlist, connection) and builds the provider request; on a refusal the
    // answer is in res and the result is empty.
    std::optional<ProxyCall> prepare(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);
    // Sends `up`; on a 401 refreshes the connection's token once and sends again; scrubs the credential from the answer.
    Result<HttpResponse> exchange(RequestContext& ctx, const ProviderConfig& p, HttpRequest& up,
                                  const std::optional<Connection>& conn);
    Result<HttpResponse> forward(RequestContext& ctx, const ProviderConfig& p, const HttpRequest& up);
    void relay_answer(RequestContext& ctx, const ProviderConfig& p, const std::string& method,
                      const std::string& path, HttpResponse& answer, httplib::Response& res);

    const Config& config_;
    Callers& callers_;
    TokenManager& tokens_;
    Upstream& upstream_;
    Metrics& metrics_;
};

}  // namespace keyrelay::relay
