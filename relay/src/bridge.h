// POST /bridge/keap/xmlrpc: Keap's XML-RPC API, answered with Keap's REST API (docs/xmlrpc-bridge.md).
// A handler: parse the methodCall, run the core's conversation (keyrelay/keap_bridge.h), send each REST request
// through the relay's Keap connection, write the XML-RPC answer. Every answer is HTTP 200 with a methodResponse or a
// fault: XML-RPC clients read faults, not status codes.
#pragma once

#include <functional>
#include <string>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace keyrelay::relay {

struct BridgeContext {
    std::string api_key;   // the relay API key (KEYRELAY_API_KEY); empty: the relay accepts none
    // Sends one Keap REST request (its url a path such as "/crm/rest/v2/contacts") through the relay's Keap
    // connection: credentials, refresh on 401, retries, metrics. Errors: "connection.*" (not connected, needs
    // reauthorization), "upstream.*" (unreachable, timeout, ...), "provider.unknown" (no Keap in the config).
    std::function<Result<HttpResponse>(HttpRequest)> send_keap;
    // Copies Keap's quota and throttle headers (x-keap-product-*, Retry-After) from an answer to the response.
    std::function<void(const HttpResponse&, httplib::Response&)> pass_rate_limit_headers;
};

void serve_keap_bridge(const httplib::Request& req, httplib::Response& res, const BridgeContext& context);

}  // namespace keyrelay::relay
