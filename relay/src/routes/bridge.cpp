#include "routes/bridge.h"

#include <utility>

#include "keyrelay/diagnose.h"
#include "keyrelay/keap_bridge.h"
#include "keyrelay/text.h"
#include "state/crypto.h"

namespace keyrelay::relay {
namespace {

namespace bridge = keap::bridge;

// The answer is moved into the response (a list answer can be hundreds of KB); set_content would copy it.
void write(RequestContext& ctx, httplib::Response& res, std::string xml) {
    ctx.final_answer = true;
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_header("Content-Type", "text/xml; charset=UTF-8");
    res.body = std::move(xml);
}

// The relay API key, from Authorization: Bearer or from the privateKey parameter, where old clients keep "the API
// key" (their only change is that setting).
bool authorized(const httplib::Request& req, const xmlrpc::Call& call, const std::string& api_key) {
    if (api_key.empty()) return false;
    if (Callers::is_bearer(req.get_header_value("Authorization"), api_key)) return true;
    auto key = bridge::private_key(call);
    return key && secure_equals(*key, api_key);
}

// A failure below Keap's API (no connection, Keap unreachable) as a fault the old client can show.
std::string fault_for(const Error& e) {
    if (e.code == "connection.needs_reauth" || e.code == "connection.not_connected" ||
        e.code == "connection.refresh_failed") {
        return "[ConnectionNeedsReauth]" + e.message + " " + e.hint;
    }
    return "[UpstreamError]" + e.message + (e.hint.empty() ? "" : " " + e.hint);
}

}  // namespace

void KeapBridgeRoute::handle(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    const bridge::Options options;
    bridge::Conversation conversation;
    auto call = xmlrpc::decode_call(req.body, options.limits);
    if (!call) {
        write(ctx, res, bridge::encode(bridge::begin(req.body, conversation, options)));
        return;
    }
    if (!authorized(req, *call, config_.api_key)) {
        write(ctx, res, xmlrpc::encode_fault(0, config_.api_key.empty()
            ? "[InvalidKey]This relay has no API key: start it with KEYRELAY_API_KEY set, then send that key as the "
              "privateKey parameter or as Authorization: Bearer."
            : "[InvalidKey]Invalid key: send the relay's API key (KEYRELAY_API_KEY) as the privateKey parameter or "
              "as Authorization: Bearer, not a Keap key."));
        return;
    }
    const ProviderConfig* keap = config_.provider("keap");
    if (keap == nullptr) {
        write(ctx, res, xmlrpc::encode_fault(0, "[InvalidConfig]This relay has no provider named \"keap\": add Keap "
                                                "to its config (providers) to use the XML-RPC bridge."));
        return;
    }
    ctx.provider = keap->name;
    bridge::Step step = bridge::begin(*call, conversation, options);
    while (step.kind == bridge::Step::Kind::send) {
        auto answer = proxy_.send(ctx, *keap, step.request);
        if (!answer) {
            write(ctx, res, xmlrpc::encode_fault(0, fault_for(answer.error())));
            return;
        }
        // Keap's quota and throttle headers, as /proxy/keap passes them on.
        for (const auto& [name, value] : answer->headers.items()) {
            if (proxy::matches_header_pattern(keap->rate_limit_headers, name)) res.set_header(name, value);
        }
        // An answer that is not Keap's JSON (an HTML error page, a gateway fault): the relay's diagnosis says what
        // it is and what to do.
        if (!answer->body.empty() && !is_json_text(answer->body)) {
            const Diagnosis d = diagnose(*answer, Expect::json);
            write(ctx, res, xmlrpc::encode_fault(0, "[InvalidResponse]" + d.summary + " " + d.hint));
            return;
        }
        step = bridge::resume(conversation, *answer);
    }
    write(ctx, res, bridge::encode(std::move(step)));
}

}  // namespace keyrelay::relay
