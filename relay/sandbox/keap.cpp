// The fake Keap: which of its parts answers a path (see keap.h), and its 429 for failure injection.
#include "keap.h"

namespace keyrelay::sandbox {

Reply keap_throttled(State& s, const std::string& credential_kind) {
    Reply r = keap::throttled_body();
    keap::limit_headers(s, r, credential_kind == "api_key", 0, 0);
    return r;
}

std::optional<Reply> route_keap(State& s, const Req& r) {
    if (r.path == keap::kAuthorize) {
        if (r.method == "OPTIONS") return deny_cross_origin(r);
        return keap::authorize(s, r);
    }
    if (r.path == keap::kToken) return keap::token(s, r);
    if (r.path == keap::kXmlRpc) return keap::xml_rpc(s, r);
    if (starts_with(r.path, std::string(keap::kRest1) + "/") || starts_with(r.path, std::string(keap::kRest2) + "/")) {
        return keap::rest(s, r);
    }
    if (auto denied = deny_cross_origin(r)) return *denied;
    return std::nullopt;
}

}  // namespace keyrelay::sandbox
