// Explains any response in plain words: what came back, why, and what to do.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "keyrelay/http.h"

namespace keyrelay {

enum class Expect { token, json, xmlrpc };

struct Diagnosis {
    // "ok" when the response is what was expected. Otherwise one of:
    //  html_page, gateway_fault, token_unauthorized, cors_origin_denied, rate_limited, empty_body,
    //  truncated_xml, wrong_content_type, not_method_response, xmlrpc_fault, oauth_error, unauthorized,
    //  forbidden, not_found, server_error, http_596, not_json, malformed_xml, doctype_refused, legacy_key_dead,
    //  bad_request (400/422), http_error (other statuses), unexpected_shape (token JSON without access_token),
    //  invalid_xmlrpc, too_large, too_deep.
    std::string code;
    std::string summary;   // one sentence: what came back
    std::string hint;      // what most likely caused it, and what to do
    // Set when the answer says when to retry: rate_limited, or a gateway_fault that is a quota violation.
    std::optional<int> retry_after_seconds;
    // A caution that does not change the code, e.g. Jira's X-RateLimit-NearLimit: true ("less than 20% of a rate
    // limit budget is left") on an answer that is otherwise ok; "" when there is none.
    std::string warning;
};

// Explains `response`. Rate-limit times (an HTTP-date Retry-After, Keap's quota expiry, Jira's reset) are measured
// against the response's Date header, else against `now` (unix seconds) when given (read_rate_limit()).
Diagnosis diagnose(const HttpResponse& response, Expect expect, std::optional<int64_t> now = std::nullopt);

// "token" | "json" | "xmlrpc" -> Expect; anything else -> json.
Expect expect_from_string(std::string_view s);

// The <title> of an HTML page, entity-decoded and trimmed; "" when there is none.
std::string html_title(std::string_view html);

}  // namespace keyrelay
