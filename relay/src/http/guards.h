// The checks every request passes before its route: well-formed header fields, the Host allowlist (DNS rebinding),
// request framing (RFC 9112 §6), ranges (RFC 9110 §14) and CORS (WHATWG Fetch). Each refusal is written to the
// response; a refusal of the framing or of the header fields also closes the connection (refuse_and_close).
#pragma once

#include <httplib.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "http/context.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

class Guards {
public:
    // is_file_path: whether a path is answered by the page's files (the only answers that honour a Range).
    Guards(const Config& config, std::function<bool(std::string_view)> is_file_path)
        : config_(config), is_file_path_(std::move(is_file_path)) {}

    // The Host values that name this relay: public_url's host (with its port, and without it when that is the
    // scheme's default), and the loopback names with `port`. Call once the port is known.
    void set_own_hosts(int port);

    // True: the request may go on to its route. False: the answer (a refusal, or a CORS preflight's 204) is in res.
    // ctx.final_answer is set when the answer must stay as written (no body for the error handler to fill).
    bool admit(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) const;
    // For a request with "Expect: 100-continue", before cpp-httplib would send "100 Continue": 100 when the request
    // may go on, or the status of the refusal written to res (never 100 for an HTTP/1.0 request, RFC 9110 §10.1.1).
    int admit_expect_continue(const httplib::Request& req, httplib::Response& res) const;

private:
    bool host_allowed(const httplib::Request& req) const;
    bool ranges_ok(const httplib::Request& req, httplib::Response& res) const;
    bool framing_ok(const httplib::Request& req, httplib::Response& res) const;
    bool cors_ok(const httplib::Request& req, httplib::Response& res) const;
    bool origin_allowed(const std::string& origin) const;

    const Config& config_;
    std::function<bool(std::string_view)> is_file_path_;
    int port_ = 0;
    std::vector<std::string> own_hosts_;
};

// Writes the error and makes cpp-httplib close the connection after it: the body comes from a content provider that
// reports failure once it has written everything, and a failed write ends cpp-httplib's keep-alive loop. Whatever
// the client sent after the refused head (an unread body) is never parsed as a request.
void refuse_and_close(httplib::Response& res, int status, const Error& e);

}  // namespace keyrelay::relay
