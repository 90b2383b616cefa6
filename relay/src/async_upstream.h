// The relay's non-blocking HTTP/1.1 client, for the event loop's proxy fast path (event_server.h): the same
// exchange as Upstream::send() (upstream.h) — same request bytes, same limits, same error codes and hints — without
// a thread waiting on the socket. Keep-alive connections are pooled per origin, per loop. TLS is verified against the
// system CAs plus the optional ca_file, with the host name checked (RFC 6125), as Upstream does.
// Not thread-safe: one AsyncUpstream per EventLoop, used only on that loop's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "event_loop.h"
#include "keyrelay/http.h"
#include "keyrelay/result.h"
#include "upstream.h"

namespace keyrelay::relay {

class AsyncUpstream {
public:
    // `done` runs exactly once, on the loop's thread, never inside send() itself. `seconds` is the exchange's
    // duration (connect to the end of the answer).
    using Done = std::function<void(Result<HttpResponse> outcome, double seconds)>;

    AsyncUpstream(EventLoop& loop, UpstreamOptions options);
    ~AsyncUpstream();   // closes every connection; pending `done`s are not called
    AsyncUpstream(const AsyncUpstream&) = delete;
    AsyncUpstream& operator=(const AsyncUpstream&) = delete;

    // Sends one request (absolute http:// or https:// URL). Errors as Upstream::send: "upstream.bad_url",
    // "upstream.unreachable", "upstream.timeout", "upstream.connection_reset", "upstream.tls", "upstream.too_large",
    // "upstream.error".
    void send(const HttpRequest& request, Done done);

    size_t idle_connections() const;   // for tests

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyrelay::relay
