// POST /bridge/keap/xmlrpc: Keap's XML-RPC API, answered with Keap's REST API (docs/xmlrpc-bridge.md).
// A handler: parse the methodCall, check the relay API key, run the core's conversation (keyrelay/keap_bridge.h),
// send each REST request through the relay's Keap connection (ProxyRoute::send), write the XML-RPC answer. Every
// answer is HTTP 200 with a methodResponse or a fault: XML-RPC clients read faults, not status codes.
#pragma once

#include <httplib.h>

#include "config.h"
#include "http/context.h"
#include "routes/proxy.h"

namespace keyrelay::relay {

class KeapBridgeRoute {
public:
    KeapBridgeRoute(const Config& config, ProxyRoute& proxy) : config_(config), proxy_(proxy) {}

    void handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res);

private:
    const Config& config_;
    ProxyRoute& proxy_;
};

}  // namespace keyrelay::relay
