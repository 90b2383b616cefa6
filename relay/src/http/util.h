// Small pure helpers of the relay's HTTP layer: cookies, the one JSON error shape, HTML error pages, content
// types of the page's files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "keyrelay/ascii.h"
#include "keyrelay/result.h"
#include "keyrelay/text.h"

namespace keyrelay::relay {

// The value of cookie `name` in a Cookie header ("a=1; b=2"), RFC 6265 §5.4. The first match wins.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);

// {"error":{"code":...,"message":...,"hint":...}} (docs/api.md).
std::string error_json(const Error& e);

// A small self-contained HTML page for errors met during a browser navigation (callback, connect): title, what
// happened, what to do, the error code, and a link back to the page. Everything is HTML-escaped.
std::string html_error_page(const Error& e);

// First value of a query parameter of a request target; nullopt when absent or badly encoded.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

// Content-Type by file extension: text/html, text/javascript (.js, .mjs), application/wasm, text/css, ...
std::string content_type_for(std::string_view path);

// Without leading and trailing SP / HTAB, as a string (keyrelay/ascii.h's trim_ows is the one implementation).
inline std::string trim_ascii(std::string_view s) { return std::string(trim_ows(s)); }
bool is_loopback_bind(std::string_view address);

}  // namespace keyrelay::relay
