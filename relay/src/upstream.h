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

struct Endpoint;   // where a URL's requests go (upstream.cpp)

struct UpstreamOptions {
    int64_t connect_timeout_ms = 5000;
    int64_t read_timeout_ms = 30000;
    size_t max_body = 10 << 20;   // larger answers are refused (upstream.too_large)
    std::string ca_file;          // extra trusted CA (PEM), added to the system CAs
    size_t max_idle_per_origin = 16;
};

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

private:
    std::unique_ptr<httplib::ClientImpl> acquire(const Endpoint& endpoint);
    void release(const std::string& origin, std::unique_ptr<httplib::ClientImpl> client);

    UpstreamOptions options_;
    std::mutex mutex_;
    std::map<std::string, std::vector<std::unique_ptr<httplib::ClientImpl>>> idle_;
    x509_store_st* ca_store_ = nullptr;   // the trusted CAs, loaded once, shared by every TLS client
};

}  // namespace keyrelay::relay
