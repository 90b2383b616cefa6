// Proxy policy, as data: which methods and paths a provider's API may be called with through the relay, which of
// the caller's headers go upstream, how the credential is attached, and what of the provider's answer comes back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/diagnose.h"
#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace keyrelay::proxy {

struct Rule {
    std::string method;    // "GET", "PATCH", ... or "*"
    std::string pattern;   // path pattern: literal segments, "*" = one segment, "**" = the rest (only last)
};

// Validates the path part a caller put after /proxy/{provider}/ (with its query, raw, still percent-encoded).
// Returns the normalized "/path?query" to append to the provider's API base.
// Errors ("proxy.bad_path"): absolute URLs or scheme/authority ("//host", "http:"), ".." or "." segments (also as
// %2e%2e), encoded slashes or backslashes (%2f %5c), double encoding (%25..), CR/LF or other control characters,
// NUL, empty segments.
Result<std::string> validate_path(std::string_view raw);

// True when method + path (without query) matches a rule.
bool allowed(const std::vector<Rule>& rules, std::string_view method, std::string_view path);

// ---- the request that goes upstream --------------------------------------------------------------------------

// May a caller's request header of this name go to the provider? Yes for Accept, Accept-Language, Content-Type, the
// conditional headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) and other X-* headers;
// no for everything else: Cookie, Authorization, Origin, Referer, User-Agent, hop-by-hop headers (RFC 9110 §7.6.1),
// and the X-* headers that carry a credential or override a host, path or method (X-Requested-With, X-Forwarded-*,
// X-Real-IP, X-Keap-API-Key, X-Original-*, X-Rewrite-URL, X-HTTP-Method*, X-Method-Override, X-Host,
// X-Request-Id, X-CSRF*, X-XSRF*, X-API-Key, X-Auth*, X-Amz-*, X-Client-IP, X-Cluster-Client-IP, X-Proxy*,
// X-Access-Token, X-Override*). `connection` is the caller's Connection header value: a header it names is
// hop-by-hop too (RFC 9110 §7.6.1). Names compare case-insensitively.
bool forwardable(std::string_view name, std::string_view connection = {});

// The caller's headers that forwardable() keeps, in order (the Connection header is read from `caller`).
Headers forwarded_headers(const Headers& caller);

// How the provider wants its credential.
enum class CredentialStyle {
    bearer,         // Authorization: Bearer <secret> (OAuth access token, Keap PAT/SAK, Jira PAT), RFC 6750 §2.1
    basic,          // Authorization: Basic base64(<user>:<secret>) (Jira Cloud email + API token), RFC 7617 §2
    keap_api_key,   // X-Keap-API-Key: <secret> (Keap PAT/SAK)
};

// "bearer" | "basic" | "keap_api_key" (also "x-keap-api-key") -> the style; nullopt for anything else.
std::optional<CredentialStyle> credential_style_from_string(std::string_view name);

struct Credential {
    CredentialStyle style = CredentialStyle::bearer;
    std::string secret;   // the token or key
    std::string user;     // basic only: the account email
};

// Replaces any Authorization and X-Keap-API-Key header in `request` with the credential.
void attach_credential(HttpRequest& request, const Credential& credential);

// The request the relay sends for a caller's /proxy call: method, the provider URL (built by the caller from the
// API base and validate_path()), the forwardable caller headers, User-Agent, the credential, and the body, except
// for GET, HEAD and DELETE, which go without one (Jira Cloud's CDN refuses a GET with a body,
// docs/reference/jira.md).
HttpRequest upstream_request(std::string_view method, std::string url, const Headers& caller_headers,
                             std::string body, const Credential& credential, std::string_view user_agent);

// ---- the answer that comes back ------------------------------------------------------------------------------

// Answer headers that pass through to the caller as rate-limit information, per provider: lowercase names, a
// trailing '*' matches a prefix. Keap: Retry-After, x-keap-product-*, x-keap-tenant-*. Jira: Retry-After,
// X-RateLimit-*, RateLimit-*, Beta-RateLimit*, X-Beta-RateLimit-* (Jira Cloud's points-based limits,
// docs/reference/jira.md).
const std::vector<std::string>& keap_rate_limit_headers();
const std::vector<std::string>& jira_rate_limit_headers();

// Does `name` match one of the patterns above (case-insensitive, trailing '*' = prefix)?
bool matches_header_pattern(const std::vector<std::string>& patterns, std::string_view name);

// The answer headers a page on another origin may read (Access-Control-Expose-Headers, WHATWG Fetch §3.2.4): the
// relay's X-Request-Id and every rate-limit header Keap and Jira document. A credentialed request cannot use "*"
// there, so these are names, each matched by keap_rate_limit_headers() or jira_rate_limit_headers().
const std::vector<std::string>& cors_exposed_headers();

// A 2xx (not 204) with a JSON media type (application/json, RFC 8259 §11, or a +json suffix, RFC 6839 §3.1) and a
// body that is one valid JSON object or array with no "fault" member anywhere: an answer from the API itself, which
// diagnose() would call "ok". A validating scan; nothing is built.
bool looks_like_api_json(const HttpResponse& answer);

// Is a diagnosis of an upstream answer a reason to replace that answer with the relay's own 502? Always for an answer
// that is not the API's: html_page, gateway_fault, not_method_response, truncated_xml, malformed_xml,
// doctype_refused, http_596, legacy_key_dead, cors_origin_denied, too_deep, too_large, invalid_xmlrpc. For an XML-RPC
// call also empty_body, wrong_content_type and not_json; for a JSON call not_json when the body is not empty (and
// the status is not 204). Everything else (the API's own 4xx and 5xx JSON errors, a 429 with JSON) passes through.
bool wraps(const Diagnosis& diagnosis, const HttpResponse& answer, bool xmlrpc);

struct AnswerPolicy {
    bool xmlrpc = false;                       // the call is to an XML-RPC endpoint (the provider's xmlrpc paths)
    std::vector<std::string> pass_headers;     // rate-limit header patterns (keap_rate_limit_headers(), ...)
};

// What the relay answers its caller for a provider's answer.
struct ShapedAnswer {
    // True: answer 502 with error code "upstream." + diagnosis.code, message diagnosis.summary, hint
    // diagnosis.hint, and `headers` (the rate-limit ones) added. False: pass the answer through with `status`,
    // `headers` and, when `send_body`, the provider's body.
    bool wrapped = false;
    Diagnosis diagnosis;      // "ok" for an answer recognised as the API's without a full diagnosis
    int status = 0;
    // Passed through: the rate-limit headers (always), and when not wrapped also Content-Type (the provider's, or
    // application/octet-stream), ETag, Last-Modified, Cache-Control (no-store when the provider sent none) and
    // Content-Security-Policy "default-src 'none'; sandbox" (the provider's bytes are served from the relay's
    // origin and may not run script there).
    Headers headers;
    bool send_body = true;    // false for 204, 304 and HEAD
};

// Classifies the provider's answer (looks_like_api_json(), else diagnose() with Expect::xmlrpc or Expect::json,
// measured against `now`) and decides per wraps(). The answer should already be redacted (Redactor): its headers
// are copied as they are.
ShapedAnswer shape_answer(const HttpResponse& answer, std::string_view method, const AnswerPolicy& policy,
                          std::optional<int64_t> now = std::nullopt);

}  // namespace keyrelay::proxy
