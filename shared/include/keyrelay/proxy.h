// Proxy policy, as data: which methods and paths a provider's API may be called with through the relay.
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

}  // namespace keyrelay::proxy
