#include "bridge.h"

#include <httplib.h>

#include "crypto.h"
#include "keyrelay/diagnose.h"
#include "keyrelay/keap_bridge.h"
#include "keyrelay/text.h"

namespace keyrelay::relay {
namespace {

namespace bridge = keap::bridge;

void write(httplib::Response& res, const std::string& xml) {
    res.status = 200;
    res.set_header("Cache-Control", "no-store");
    res.set_content(xml, "text/xml; charset=UTF-8");
}

void write_fault(httplib::Response& res, const std::string& text) { write(res, xmlrpc::encode_fault(0, text)); }

// The relay API key, from Authorization: Bearer or from the privateKey parameter where old clients keep "the API
// key" (their only change is that setting).
bool authorized(const httplib::Request& req, const xmlrpc::Call& call, const std::string& api_key) {
    if (api_key.empty()) return false;
    const std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view prefix = "Bearer ";
    if (auth.size() > prefix.size() && iequals(std::string_view(auth).substr(0, prefix.size()), prefix) &&
        secure_equals(std::string_view(auth).substr(prefix.size()), api_key)) {
        return true;
    }
    auto key = bridge::private_key(call);
    return key && secure_equals(*key, api_key);
}

// A failure below the REST API (no connection, Keap unreachable) as a fault the old client can show.
std::string fault_for(const Error& e) {
    if (e.code == "connection.needs_reauth" || e.code == "connection.not_connected" ||
        e.code == "connection.refresh_failed") {
        return "[ConnectionNeedsReauth]" + e.message + " " + e.hint;
    }
    if (e.code == "provider.unknown") return "[InvalidConfig]" + e.message + " " + e.hint;
    return "[UpstreamError]" + e.message + (e.hint.empty() ? "" : " " + e.hint);
}

}  // namespace

void serve_keap_bridge(const httplib::Request& req, httplib::Response& res, const BridgeContext& context) {
    const bridge::Options options;
    auto call = xmlrpc::decode_call(req.body, options.limits);
    bridge::Conversation conversation;
    if (!call) {
        write(res, bridge::encode(bridge::begin(req.body, conversation, options)));
        return;
    }
    if (!authorized(req, *call, context.api_key)) {
        write_fault(res, context.api_key.empty()
                             ? "[InvalidKey]This relay has no API key: start it with KEYRELAY_API_KEY set, then send "
                               "that key as the privateKey parameter or as Authorization: Bearer."
                             : "[InvalidKey]Invalid key: send the relay's API key (KEYRELAY_API_KEY) as the "
                               "privateKey parameter or as Authorization: Bearer, not a Keap key.");
        return;
    }
    bridge::Step step = bridge::begin(*call, conversation, options);
    while (step.kind == bridge::Step::Kind::send) {
        auto answer = context.send_keap(step.request);
        if (!answer) {
            write_fault(res, fault_for(answer.error()));
            return;
        }
        context.pass_rate_limit_headers(*answer, res);
        // An answer that is not Keap's JSON (an HTML error page, a gateway fault): the relay's diagnosis says what
        // it is and what to do.
        if (!answer->body.empty() && !is_json_text(answer->body)) {
            const Diagnosis d = diagnose(*answer, Expect::json);
            write_fault(res, "[InvalidResponse]" + d.summary + " " + d.hint);
            return;
        }
        step = bridge::resume(conversation, *answer);
    }
    write(res, bridge::encode(step));
}

}  // namespace keyrelay::relay
