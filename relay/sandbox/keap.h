// The fake Keap's parts, one file each: OAuth (keap_oauth.cpp), API credentials and rate limits
// (keap_access.cpp), REST v1/v2 contacts (keap_rest.cpp), XML-RPC (keap_xmlrpc.cpp); keap.cpp routes to them.
// Every behaviour follows docs/reference/keap.md (cited as keap.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common.h"

namespace keyrelay::sandbox::keap {

inline constexpr const char* kRest1 = "/keap/crm/rest/v1";
inline constexpr const char* kRest2 = "/keap/crm/rest/v2";
inline constexpr const char* kXmlRpc = "/keap/crm/xmlrpc/v1";
inline constexpr const char* kAuthorize = "/keap/app/oauth/authorize";
inline constexpr const char* kToken = "/keap/token";

// "full|ab123.infusionsoft.com": the scope of every Keap grant.
std::string scope();

// keap_oauth.cpp: the authorize page (GET shows consent, POST takes the decision) and the token endpoint.
Reply authorize(State& s, const Req& r);
Reply token(State& s, const Req& r);

// keap_rest.cpp: everything under kRest1 and kRest2, after the credential and rate-limit checks.
Reply rest(State& s, const Req& r);

// keap_xmlrpc.cpp: POST kXmlRpc, the XML-RPC methods the bridge translates, with Keap's faults.
Reply xml_rpc(State& s, const Req& r);

// keap_access.cpp: API credentials and rate limits (keap.md "Credentials that need no OAuth flow", "Rate limits").
struct Credential {
    bool api_key = false;   // PAT or SAK (X-Keap-API-Key); else an OAuth access token
    std::string bucket;     // rate-limit key: the API key, or the OAuth client (limits are per client)
};

// The Apigee gateway in front of Keap answers credential failures itself, in its own JSON.
Reply gateway_fault(int status, const char* faultstring, const char* errorcode);
// The token of an "Authorization: Bearer" header.
std::optional<std::string> bearer_of(const Req& r);
// The 401 for an unknown or expired Keap access token, or nullopt with `cred` filled in. Caller holds s.mu.
std::optional<Reply> check_bearer(State& s, const std::string& token, Credential& cred);
// A Personal Access Token or a legacy API key the sandbox knows.
bool valid_api_key(const std::string& key);
// x-keap-product-quota-* / x-keap-product-throttle-* / x-keap-tenant-id (keap.md "Rate limits").
void limit_headers(State& s, Reply& reply, bool api_key, double throttle_left, int64_t used_today);
// Keap's 429 body.
Reply throttled_body();
// Counts the call against the credential's bucket and daily quota. Caller holds s.mu.
// On success fills `headers_out` with the limit headers; when over a limit returns the 429.
std::optional<Reply> meter(State& s, const Credential& cred, Reply& headers_out);

}  // namespace keyrelay::sandbox::keap
