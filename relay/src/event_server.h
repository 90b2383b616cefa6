// The relay's HTTP/1.1 front end for plain-HTTP listeners: a few epoll loops (event_loop.h) own every client
// connection, read each request whole (head, then a Content-Length body) and hand it to one of two paths:
//  - fast: on the loop's own thread, without blocking (the relay's /proxy calls with an API key whose credential is
//    ready: the upstream exchange is non-blocking too, async_upstream.h);
//  - slow: everything else, on a worker thread, through cpp-httplib's own request processing (the same routes,
//    handlers, error handler and logger as a TLS listener uses), fed the request's bytes from memory.
// Idle and half-sent connections cost a few hundred bytes instead of a thread each. Timeouts: an idle keep-alive
// connection is closed after keep_alive_timeout, a request must arrive whole within request_timeout of its first
// byte, and an answer that the client does not read within write_timeout closes the connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "event_loop.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

struct EventServerOptions {
    int threads = 2;                                   // event loops (one thread each)
    size_t max_head = 64 * 1024;                       // request line + headers
    size_t max_body = 1 << 20;                         // larger Content-Length: the slow path answers 413
    std::chrono::milliseconds keep_alive_timeout{2000};
    std::chrono::milliseconds request_timeout{10000};
    std::chrono::milliseconds write_timeout{10000};
    size_t keep_alive_max_count = 1000;                // requests per connection
    size_t max_connections = 10000;                    // beyond: new connections are closed at once
    size_t slow_workers = 64;                          // worker threads of the slow path at most
};

// One request as read from a connection.
struct IncomingRequest {
    std::string raw;        // the request's bytes: head, then the body when it is framed
    bool framed = false;    // head parsed and Content-Length body complete; false: the bytes go to the slow path as
                            // they are (it answers 400/411/413 and the connection closes)
    std::string method, target, version;
    std::vector<std::pair<std::string, std::string>> headers;   // as sent, in order
    size_t body_offset = 0;  // raw.substr(body_offset) is the body
    std::string remote_ip;
    int remote_port = 0;
    bool close = false;      // the connection closes after this answer
    bool sent_continue = false;   // "100 Continue" already written by the front end

    // The first header of that name (case-insensitive), or nullptr.
    const std::string* header(std::string_view name) const;
    size_t header_count(std::string_view name) const;
    std::string_view body() const { return std::string_view(raw).substr(body_offset); }
};

struct OutgoingResponse {
    std::string bytes;   // status line, headers, body
    bool close = false;  // close the connection once written
    // From the fast path only: serve the request on the slow path after all, running slow_setup on the worker
    // thread first (it may leave thread-local context for the slow hook).
    bool to_slow = false;
    std::function<void()> slow_setup;
};

// Called on the loop thread that owns the connection, at most once per request.
using Respond = std::function<void(OutgoingResponse)>;

class EventServer {
public:
    struct Hooks {
        // Loop thread. Returns true when it takes the request; it then calls respond exactly once, later, on this
        // loop's thread. Must not block.
        std::function<bool(const IncomingRequest&, size_t loop_index, EventLoop& loop, const Respond& respond)> fast;
        // Worker thread: the whole answer.
        std::function<OutgoingResponse(const IncomingRequest&)> slow;
        // Loop thread, once, before the loop serves anything (per-loop state such as an AsyncUpstream).
        std::function<void(size_t loop_index, EventLoop& loop)> loop_started;
        // Loop thread, once, after the loop stopped.
        std::function<void(size_t loop_index)> loop_stopped;
    };

    EventServer(EventServerOptions options, Hooks hooks);
    ~EventServer();
    EventServer(const EventServer&) = delete;
    EventServer& operator=(const EventServer&) = delete;

    // Binds host:port (0 = any free port). Returns the port. Errors: "server.bind_failed".
    Result<int> bind(const std::string& host, int port);
    // Serves until stop(): the calling thread runs loop 0, the others get threads of their own.
    bool run();
    void stop();   // thread-safe

    struct Stats {
        size_t connections = 0;
        size_t fast = 0;
        size_t slow = 0;
    };
    Stats stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyrelay::relay
