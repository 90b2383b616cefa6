#include "http/guards.h"

#include <algorithm>
#include <memory>

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/http.h"
#include "keyrelay/proxy.h"

namespace keyrelay::relay {

void Guards::set_own_hosts(int port) {
    port_ = port;
    own_hosts_.clear();
    if (!config_.public_url.empty()) {
        if (auto u = parse_url(config_.public_url)) {
            // parse_url keeps an IPv6 literal's brackets (RFC 3986 §3.2.2), as Host carries them.
            std::string h = u->host.find(':') != std::string::npos && u->host.front() != '[' ? "[" + u->host + "]"
                                                                                            : u->host;
            bool default_port = (u->scheme == "https" && u->port == 443) || (u->scheme == "http" && u->port == 80);
            own_hosts_.push_back(h + ":" + std::to_string(u->port));
            if (default_port) own_hosts_.push_back(h);
        }
    }
    for (const char* name : {"127.0.0.1", "localhost", "[::1]"}) {
        own_hosts_.push_back(std::string(name) + ":" + std::to_string(port));
    }
}

void refuse_and_close(httplib::Response& res, int status, const Error& e) {
    res.status = status;
    res.set_header("Cache-Control", "no-store");
    res.set_header("Connection", "close");
    auto body = std::make_shared<const std::string>(error_json(e));
    res.set_content_provider(body->size(), "application/json",
                             [body](size_t offset, size_t length, httplib::DataSink& sink) {
                                 sink.write(body->data() + offset, std::min(length, body->size() - offset));
                                 return false;   // written: now fail, so that the connection is closed
                             });
}

namespace {

// RFC 9110 §5.6.2: tchar.
bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

// RFC 9110 §5.5: a field value holds no control character other than HTAB (cpp-httplib 0.11 percent-decodes values,
// so "%00" arrives here as a NUL).
bool is_field_value(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

bool expects_body(const std::string& method) { return method == "POST" || method == "PUT" || method == "PATCH"; }

// Header fields the relay cannot read unambiguously are refused with 400 (RFC 9112 §5.1: whitespace between the
// name and the colon; RFC 9110 §5.5: control characters in a value), and so are several Host fields (RFC 9112 §3.2).
bool fields_ok(const httplib::Request& req, httplib::Response& res) {
    for (const auto& [name, value] : req.headers) {
        if (!is_token(name) || !is_field_value(value)) {
            refuse_and_close(res, 400,
                             make_error("http.bad_request",
                                        "A request header field is malformed (a name that is not a token, e.g. "
                                        "with a space before the colon, or a control character in a value).",
                                        "Send each header as Name: value, with no space before the colon and no "
                                        "control characters (also not percent-encoded ones such as %00)."));
            return false;
        }
    }
    return true;
}

void add_cors_headers(httplib::Response& res, const std::string& origin) {
    res.set_header("Access-Control-Allow-Origin", origin);
    res.set_header("Access-Control-Allow-Credentials", "true");
    static const std::string kExposed = [] {
        std::string list;
        for (const std::string& name : proxy::cors_exposed_headers()) list += (list.empty() ? "" : ", ") + name;
        return list;
    }();
    res.set_header("Access-Control-Expose-Headers", kExposed);
}

Error origin_error(const std::string& origin) {
    return make_error("cors.origin_not_allowed",
                      "Requests from the origin " + origin + " are not allowed (it is not in cors_origins).",
                      "The page served by the relay needs no CORS. To call the relay from another web app, add its "
                      "exact origin (scheme://host[:port]) to \"cors_origins\" in the relay's config and restart "
                      "the relay.");
}

}  // namespace

bool Guards::admit(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) const {
    if (!fields_ok(req, res)) {
        ctx.final_answer = true;
        return false;
    }
    if (!host_allowed(req)) {
        send_error(res, 400, req.path.rfind("/proxy/", 0) == 0 ? "proxy.bad_path" : "http.bad_host",
                   "The Host header names a host this relay does not serve.",
                   "Open the relay by the address it printed (http://127.0.0.1:<port>) or by its public_url. Other "
                   "host names are refused to stop DNS-rebinding attacks on a local relay; behind a reverse proxy, "
                   "set public_url and pass the original Host.");
        return false;
    }
    if (!framing_ok(req, res) || !ranges_ok(req, res)) {
        ctx.final_answer = true;
        return false;
    }
    return cors_ok(req, res);
}

int Guards::admit_expect_continue(const httplib::Request& req, httplib::Response& res) const {
    if (req.version != "HTTP/1.1") {
        refuse_and_close(res, 400,
                         make_error("http.bad_request", "Expect: 100-continue is not valid in an HTTP/1.0 request.",
                                    "Send the request without Expect, or as HTTP/1.1."));
        return 400;
    }
    RequestContext scratch;
    httplib::Response check;
    if (fields_ok(req, check) && host_allowed(req) && framing_ok(req, check) && ranges_ok(req, check)) return 100;
    // The refusal again, into the answer itself (the checks above wrote into a scratch answer).
    if (!admit(scratch, req, res) && res.status > 0) return res.status;
    return 400;
}

// Ranges (RFC 9110 §14.2) are honoured only on the page's files, and one at a time: anything else could turn a small
// request into a large answer (a "bytes=0-,0-,..." list repeats the whole body once per range).
bool Guards::ranges_ok(const httplib::Request& req, httplib::Response& res) const {
    if (!req.has_header("Range")) return true;
    bool file = (req.method == "GET" || req.method == "HEAD") && is_file_path_ && is_file_path_(req.path);
    if (file && req.ranges.size() == 1) return true;
    // No body: cpp-httplib would apply the ranges to it too.
    res.status = 416;
    res.set_header("Cache-Control", "no-store");
    return false;
}

// DNS rebinding: a page on evil.example resolving to 127.0.0.1 would reach a loopback relay with
// "Host: evil.example". Only the relay's own names are served.
bool Guards::host_allowed(const httplib::Request& req) const {
    if (req.get_header_value_count("Host") != 1) return false;
    const std::string& host = req.get_header_value("Host");
    for (const std::string& name : own_hosts_) {
        if (iequals(host, name)) return true;
    }
    // Bound to a non-loopback address without public_url: the relay cannot know its names.
    return config_.public_url.empty() && !is_loopback_bind(config_.bind) && !host.empty();
}

// Request framing (RFC 9112 §6). cpp-httplib reads the body after the routing checks, so its size is settled here,
// and every refusal closes the connection (the unread body must never be parsed as another request).
// cpp-httplib 0.11 applies payload_max_length to Content-Length bodies only: a chunked body would be buffered whole,
// unauthenticated, with no limit. Content-Length must be one decimal number (§6.3 (5)).
bool Guards::framing_ok(const httplib::Request& req, httplib::Response& res) const {
    const std::string limit = std::to_string(config_.max_request_body);
    if (req.has_header("Transfer-Encoding")) {
        refuse_and_close(res, 411,
                         make_error("http.length_required",
                                    "The relay does not accept a chunked (or otherwise transfer-encoded) request body.",
                                    "Send the body with a Content-Length header (at most " + limit + " bytes)."));
        return false;
    }
    if (!req.has_header("Content-Length")) {
        // cpp-httplib 0.11 reads a POST, PUT or PATCH body without a length until the client closes the connection.
        if (!expects_body(req.method)) return true;
        refuse_and_close(res, 411,
                         make_error("http.length_required", "The request has no Content-Length header.",
                                    "Send " + req.method + " requests with a Content-Length header (0 for no body; "
                                    "at most " + limit + " bytes)."));
        return false;
    }
    const std::string& length = req.get_header_value("Content-Length");
    bool decimal = req.get_header_value_count("Content-Length") == 1 && !length.empty() && length.size() <= 18 &&
                   std::all_of(length.begin(), length.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (!decimal) {
        refuse_and_close(res, 400,
                         make_error("http.bad_request", "The Content-Length header is not one decimal number.",
                                    "Send exactly one Content-Length with the body's size in bytes."));
        return false;
    }
    const uint64_t declared = std::stoull(length);
    if (declared > config_.max_request_body) {
        Error e = make_error("http.payload_too_large", "The request body is too large.",
                             "The relay accepts request bodies up to " + limit + " bytes (max_request_body in the "
                             "config).");
        // A client without Expect: 100-continue is sending its body now, and closing the socket on unread bytes
        // resets the connection before the client reads the answer. A body up to a few times the limit is left to
        // cpp-httplib's own payload_max_length check, which reads and drops the declared bytes and answers 413 (the
        // error handler words it); a larger one is refused at once and the connection closed. Behind nginx such a
        // body never reaches the relay (client_max_body_size, docs/deploy.md).
        const uint64_t drain_limit = std::max<uint64_t>(8u << 20, 4 * static_cast<uint64_t>(config_.max_request_body));
        if (req.get_header_value("Expect") != "100-continue" && declared <= drain_limit) return true;
        refuse_and_close(res, 413, e);
        return false;
    }
    return true;
}

bool Guards::cors_ok(const httplib::Request& req, httplib::Response& res) const {
    // An OPTIONS request that is no CORS preflight: 204 with Allow.
    auto allow = [&res] {
        res.status = 204;
        res.set_header("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        return false;
    };
    if (!req.has_header("Origin")) return req.method == "OPTIONS" ? allow() : true;
    const std::string& origin = req.get_header_value("Origin");
    res.set_header("Vary", "Origin");
    const std::string own = std::string(config_.tls() ? "https" : "http") + "://" +
                            to_lower(req.get_header_value("Host"));
    bool cross = origin != own && !(!config_.public_url.empty() && origin == config_.base_url(port_));

    if (req.method == "OPTIONS") {
        if (cross && !origin_allowed(origin)) {
            send_error(res, 403, origin_error(origin));
            return false;
        }
        if (!req.has_header("Access-Control-Request-Method")) return allow();
        // WHATWG Fetch §4.8 (CORS-preflight fetch): 204, never a redirect, the exact origin, credentials.
        res.status = 204;
        add_cors_headers(res, origin);
        res.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers",
                       "Content-Type, X-Requested-With, Authorization, Accept, X-Request-Id");
        res.set_header("Access-Control-Max-Age", "600");
        return false;
    }
    if (cross) {
        // Navigations (the provider's redirect to /callback, links to /connect, the page's files) are not CORS.
        bool api = req.path.rfind("/api/", 0) == 0 || req.path.rfind("/proxy/", 0) == 0;
        bool safe = req.method == "GET" || req.method == "HEAD";
        if ((api || !safe) && !origin_allowed(origin)) {
            send_error(res, 403, origin_error(origin));
            return false;
        }
        if (origin_allowed(origin)) add_cors_headers(res, origin);
    }
    return true;
}

bool Guards::origin_allowed(const std::string& origin) const {
    return std::find(config_.cors_origins.begin(), config_.cors_origins.end(), origin) != config_.cors_origins.end();
}

}  // namespace keyrelay::relay
