#include "http/util.h"

#include <nlohmann/json.hpp>

#include "keyrelay/http.h"

namespace keyrelay::relay {

bool is_loopback_bind(std::string_view address) {
    return address == "127.0.0.1" || address == "localhost" || address == "::1" ||
           address.substr(0, 4) == "127.";
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
    size_t pos = 0;
    while (pos < header.size()) {
        size_t end = header.find(';', pos);
        std::string_view pair = header.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        size_t eq = pair.find('=');
        if (eq != std::string_view::npos && trim_ows(pair.substr(0, eq)) == name) {
            std::string value = trim_ascii(pair.substr(eq + 1));
            // RFC 6265 §4.1.1: a value may be wrapped in double quotes.
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
            return value;
        }
        if (end == std::string_view::npos) break;
        pos = end + 1;
    }
    return std::nullopt;
}

std::string error_json(const Error& e) {
    nlohmann::json body = {{"error", {{"code", e.code}, {"message", e.message}, {"hint", e.hint}}}};
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string html_error_page(const Error& e) {
    std::string title = "keyrelay: not connected";
    if (e.code == "oauth.access_denied") title = "Access was denied";
    return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<title>" + html_escape(title) + "</title>"
           "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
           "line-height:1.5}code{background:#eee;padding:0 .3em}</style></head><body>"
           "<h1>" + html_escape(title) + "</h1>"
           "<p>" + html_escape(e.message) + "</p>"
           "<p><strong>What to do:</strong> " + html_escape(e.hint) + "</p>"
           "<p>Error code: <code>" + html_escape(e.code) + "</code></p>"
           "<p><a href=\"/\">Back to keyrelay</a></p>"
           "</body></html>\n";
}

std::optional<std::string> query_param(std::string_view target, std::string_view name) {
    auto params = parse_query(target);
    if (!params) return std::nullopt;
    return param(*params, name);
}

std::string content_type_for(std::string_view path) {
    size_t dot = path.rfind('.');
    size_t slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
        return "application/octet-stream";
    }
    std::string ext = to_lower(path.substr(dot + 1));
    if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
    // RFC 9239: JavaScript is text/javascript, for classic scripts and modules alike.
    if (ext == "js" || ext == "mjs" || ext == "cjs") return "text/javascript; charset=utf-8";
    if (ext == "wasm") return "application/wasm";   // required by WebAssembly.instantiateStreaming
    if (ext == "css") return "text/css; charset=utf-8";
    if (ext == "json" || ext == "map") return "application/json";
    if (ext == "svg") return "image/svg+xml";
    if (ext == "png") return "image/png";
    if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
    if (ext == "gif") return "image/gif";
    if (ext == "ico") return "image/x-icon";
    if (ext == "webp") return "image/webp";
    if (ext == "txt" || ext == "md") return "text/plain; charset=utf-8";
    if (ext == "woff2") return "font/woff2";
    if (ext == "woff") return "font/woff";
    return "application/octet-stream";
}

}  // namespace keyrelay::relay
