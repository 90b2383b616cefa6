// The relay's HTTP client adapter: sends a core HttpRequest with cpp-httplib and returns a core HttpResponse.
// Keep-alive connections are pooled per origin (a cpp-httplib Client serves one request at a time, so each request
// borrows a client and gives it back). TLS is verified against the system CAs plus an optional extra CA file.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/result.h"
#include "keyrelay/retry.h"

namespace httplib {
class ClientImpl;
}
struct x509_store_st;

namespace keyrelay::relay {

struct UpstreamOptions {
    int64_t connect_timeout_ms = 5000;
    int64_t read_timeout_ms = 30000;
    size_t max_body = 10 << 20;   // larger answers are refused (upstream.too_large)
    std::string ca_file;          // extra trusted CA (PEM), added to the system CAs
    size_t max_idle_per_origin = 16;
};

// How an exchange failed below HTTP, for transport_failure().
enum class TransportFailure {
    unreachable,     // could not connect (refused, no route, connect timeout, name not resolved)
    timeout,         // connected, but the answer did not come within read_timeout_ms
    reset_reading,   // the connection closed or broke before the answer was complete
    reset_writing,   // the connection broke while the request was being sent
    tls,             // handshake failed or the certificate was not trusted
    too_large,       // the answer is larger than max_body
    other,           // anything else (malformed answer, unsupported encoding, ...)
};

// The error for a transport failure:
// "upstream.unreachable", "upstream.timeout", "upstream.connection_reset" (reset_reading, reset_writing),
// "upstream.tls", "upstream.too_large", "upstream.error". `origin` is "scheme://host:port", never named in the
// message (callers see it); `detail` is named in the message of tls and other; read_timeout_ms and ca_file shape
// the timeout message and the TLS hint.
Error transport_failure(TransportFailure kind, const std::string& origin, const std::string& detail,
                        int64_t read_timeout_ms, const std::string& ca_file);

// Where an http(s) URL's requests go, as both clients need it. RFC 3986 §3.2.2: an IPv6 address in a URL is an
// IP-literal in brackets ("[::1]", as parse_url keeps it in Url::host); the brackets belong to the URI syntax, so the
// address connected to (and named in the certificate, RFC 6125 §6.2 / RFC 5280 §4.2.1.6 iPAddress) is without them,
// while the Host field (RFC 9110 §7.2: uri-host [":" port]) and the origin keep them. Host names and IPv4 addresses
// are written as they are.
struct Endpoint {
    std::string host;         // to connect to: a host name, or an IP address without brackets
    int port = 0;
    bool tls = false;         // https
    bool ip = false;          // an IP literal (IPv4 or IPv6): no DNS; a certificate must name the address
    bool ipv6 = false;        // the URL wrote an IPv6 literal in brackets
    std::string origin;       // "scheme://host:port", IPv6 in brackets: the pool key and the name in messages
    std::string host_field;   // the Host value: the port only when not the scheme's default (RFC 3986 §6.2.3)
};
// nullopt when the scheme is not http(s), or when brackets enclose something other than an IPv6 address (an
// IPvFuture literal or a zone identifier, neither of which the relay can connect to).
std::optional<Endpoint> endpoint_of(const Url& url);

class Upstream {
public:
    explicit Upstream(UpstreamOptions options);
    ~Upstream();
    Upstream(const Upstream&) = delete;
    Upstream& operator=(const Upstream&) = delete;

    // One exchange. Errors: "upstream.bad_url", "upstream.unreachable" (cannot connect), "upstream.timeout",
    // "upstream.connection_reset" (closed without an answer), "upstream.tls" (certificate not trusted or handshake
    // failed), "upstream.too_large", "upstream.error".
    Result<HttpResponse> send(const HttpRequest& request);

    struct Attempt {
        int attempt = 0;
        double seconds = 0;
        std::optional<int64_t> retry_in_ms;   // set when another attempt follows
        std::string outcome;                  // "200", "503", "upstream.connection_reset", ...
    };
    // send() with retries per retry::delay_ms() (the clock and a random jitter supplied here); `observe` sees every
    // attempt (metrics, logs).
    Result<HttpResponse> send_with_retries(const HttpRequest& request, const retry::Policy& policy,
                                           const std::function<void(const Attempt&)>& observe = {});

    const UpstreamOptions& options() const { return options_; }

private:
    std::unique_ptr<httplib::ClientImpl> acquire(const Endpoint& endpoint);
    void release(const std::string& origin, std::unique_ptr<httplib::ClientImpl> client);

    UpstreamOptions options_;
    std::mutex mutex_;
    std::map<std::string, std::vector<std::unique_ptr<httplib::ClientImpl>>> idle_;
    x509_store_st* ca_store_ = nullptr;   // the trusted CAs, loaded once, shared by every TLS client
};

}  // namespace keyrelay::relay
