#include "event_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "keyrelay/text.h"
#include "log.h"
#include "task_queue.h"

namespace keyrelay::relay {
namespace {

using Clock = EventLoop::Clock;

bool iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

const std::string* IncomingRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequal(n, name)) return &v;
    }
    return nullptr;
}

size_t IncomingRequest::header_count(std::string_view name) const {
    size_t n = 0;
    for (const auto& h : headers) n += iequal(h.first, name) ? 1 : 0;
    return n;
}

struct EventServer::Impl {
    struct Loop;

    struct Conn final : EventLoop::Handler {
        enum class State { reading, busy, writing };
        Loop* owner = nullptr;
        uint64_t id = 0;
        int fd = -1;
        std::string ip;
        int port = 0;
        std::string in;
        size_t scanned = 0;          // bytes of `in` already searched for the end of the head
        std::string out;
        size_t out_pos = 0;
        State state = State::reading;
        uint32_t events = 0;         // what epoll watches now
        bool peer_eof = false;       // the client shut its side: answer what is in flight, then close
        bool close_after_write = false;
        bool sent_continue = false;
        size_t served = 0;
        IncomingRequest pending;     // the request the fast path took, kept for a hand-over to the slow path
        bool fast_inflight = false;
        Clock::time_point idle_since;      // reading with an empty buffer
        Clock::time_point request_started; // reading with a partial request
        Clock::time_point write_progress;  // writing
        void on_io(uint32_t ev) override { owner->on_conn_io(*this, ev); }
    };

    struct Listener final : EventLoop::Handler {
        Loop* owner = nullptr;
        void on_io(uint32_t) override { owner->accept_all(); }
    };

    struct Loop {
        Impl& server;
        size_t index;
        EventLoop loop;
        Listener listener;
        std::unordered_map<uint64_t, Conn*> conns;   // owned: retired through the loop when closed
        uint64_t next_id = 1;
        bool draining = false;
        EventLoop::TimerId sweep_timer = 0;
        char read_buffer[16384];
        bool accept_paused = false;
        bool warned_fds = false;

        Loop(Impl& s, size_t i) : server(s), index(i) { listener.owner = this; }

        ~Loop() {
            for (auto& [id, c] : conns) {
                ::close(c->fd);
                delete c;
            }
        }

        void watch(Conn& c, uint32_t events) {
            if (c.events == events) return;
            loop.modify(c.fd, events, &c);
            c.events = events;
        }

        void accept_all() {
            for (int i = 0; i < 64; ++i) {
                sockaddr_storage addr{};
                socklen_t len = sizeof addr;
                int fd = ::accept4(server.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno == EMFILE || errno == ENFILE) pause_accepting();
                    return;   // EAGAIN (another loop took it), or a transient error
                }
                if (server.connections.load() >= server.options.max_connections) {
                    ::close(fd);
                    continue;
                }
                int one = 1;
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                // Connections are spread round robin over the loops: a burst of connects would otherwise all land
                // on whichever loop woke first, and one core would serve them all.
                size_t target = server.next_loop.fetch_add(1) % server.loops.size();
                if (target != index) {
                    Loop* other = server.loops[target].get();
                    other->loop.post([other, fd, addr] { other->adopt(fd, addr); });
                    continue;
                }
                adopt(fd, addr);
            }
        }

        // Out of file descriptors: the pending connection stays in the backlog, and a level-triggered listening
        // socket would wake this loop again at once, forever. Stop watching it for a moment instead.
        void pause_accepting() {
            if (accept_paused || draining) return;
            accept_paused = true;
            loop.remove(server.listen_fd);
            if (!warned_fds) {
                warned_fds = true;
                log_line(LogLevel::warn, "out of file descriptors: new connections wait in the listen backlog",
                         {{"connections", server.connections.load()},
                          {"hint", "Raise the open-file limit (LimitNOFILE= in the systemd unit, or ulimit -n)."}});
            }
            loop.add_timer(std::chrono::milliseconds(100), [this] {
                accept_paused = false;
                if (!draining) loop.add(server.listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &listener);
            });
        }

        void adopt(int fd, const sockaddr_storage& addr) {
            {
                auto* c = new Conn();
                c->owner = this;
                c->id = next_id++;
                c->fd = fd;
                char host[INET6_ADDRSTRLEN] = {0};
                if (addr.ss_family == AF_INET) {
                    auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
                    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
                    c->port = ntohs(a->sin_port);
                } else if (addr.ss_family == AF_INET6) {
                    auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
                    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
                    c->port = ntohs(a->sin6_port);
                }
                c->ip = host;
                c->idle_since = loop.now();
                c->events = EPOLLIN | EPOLLRDHUP;
                if (draining || !loop.add(fd, c->events, c)) {
                    ::close(fd);
                    delete c;
                    return;
                }
                conns.emplace(c->id, c);
                ++server.connections;
            }
        }

        void close_conn(Conn& c) {
            loop.remove(c.fd);
            ::close(c.fd);
            conns.erase(c.id);
            --server.connections;
            loop.retire(std::unique_ptr<EventLoop::Handler>(&c));
            maybe_finish_drain();
        }

        void on_conn_io(Conn& c, uint32_t ev) {
            if (ev & (EPOLLERR | EPOLLHUP)) {
                // Reset, or both directions shut: nothing more can be read or written.
                close_conn(c);
                return;
            }
            if ((ev & EPOLLOUT) && c.state == Conn::State::writing) {
                if (!flush(c)) return;
            }
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                if (!read_some(c)) return;
                if (c.state == Conn::State::reading) try_dispatch(c);
            }
        }

        // Reads what is there. Returns false when the connection was closed.
        bool read_some(Conn& c) {
            const size_t cap = server.options.max_head + server.options.max_body + 4096;
            for (;;) {
                if (c.in.size() >= cap) {
                    // Enough buffered for any valid request (or a pipelined burst): stop reading until it is served.
                    watch(c, c.state == Conn::State::writing ? uint32_t{EPOLLOUT} : 0u);
                    return true;
                }
                size_t want = std::min<size_t>(cap - c.in.size(), sizeof read_buffer);
                ssize_t n = ::recv(c.fd, read_buffer, want, 0);
                if (n > 0) {
                    c.in.append(read_buffer, static_cast<size_t>(n));
                    if (static_cast<size_t>(n) < want) return true;
                    continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
                if (n < 0 && errno == EINTR) continue;
                if (n == 0 && c.state != Conn::State::reading) {
                    // Half-close while an answer is on its way: finish it, then close.
                    c.peer_eof = true;
                    c.close_after_write = true;
                    watch(c, c.state == Conn::State::writing ? uint32_t{EPOLLOUT} : 0u);
                    return true;
                }
                if (n == 0 && c.state == Conn::State::reading && !c.in.empty()) {
                    // A request followed by a half-close: serve what is complete, then close.
                    c.peer_eof = true;
                    c.close_after_write = true;
                    watch(c, 0);
                    return true;
                }
                close_conn(c);
                return false;
            }
        }

        // Parses the buffered bytes; dispatches one complete request.
        void try_dispatch(Conn& c) {
            if (c.state != Conn::State::reading || draining_refuses(c)) return;
            if (c.in.empty()) {
                if (c.peer_eof) close_conn(c);
                return;
            }
            if (c.request_started == Clock::time_point{}) c.request_started = loop.now();
            // RFC 9112 §2.2: a server SHOULD ignore at least one empty line received before the request-line.
            while (c.in.size() >= 2 && c.in[0] == '\r' && c.in[1] == '\n') {
                c.in.erase(0, 2);
                c.scanned = 0;
            }
            size_t from = c.scanned > 3 ? c.scanned - 3 : 0;
            size_t end = c.in.find("\r\n\r\n", from);
            size_t head_len = end == std::string::npos ? std::string::npos : end + 4;
            if (head_len == std::string::npos) {
                size_t lf = c.in.find("\n\n", from > 0 ? from - 1 : 0);
                if (lf != std::string::npos) head_len = lf + 2;   // bare LF: the slow path judges it
            }
            if (head_len == std::string::npos) {
                c.scanned = c.in.size();
                if (c.in.size() > server.options.max_head || c.peer_eof) {
                    // Too large a head, or cut short: cpp-httplib answers it from what there is (400), then close.
                    IncomingRequest r;
                    r.raw = std::move(c.in);
                    c.in.clear();
                    r.close = true;
                    dispatch(c, std::move(r), false);
                }
                return;
            }
            IncomingRequest r;
            bool ok = parse_head(std::string_view(c.in.data(), head_len), r);
            size_t total = head_len;
            if (ok) {
                if (r.header("Transfer-Encoding") != nullptr) {
                    ok = false;   // the slow path answers 411
                } else if (r.header_count("Content-Length") > 0) {
                    const std::string* cl = r.header("Content-Length");
                    bool decimal = r.header_count("Content-Length") == 1 && !cl->empty() && cl->size() <= 18 &&
                                   cl->find_first_not_of("0123456789") == std::string::npos;
                    if (!decimal || std::stoull(*cl) > server.options.max_body) {
                        ok = false;   // the slow path answers 400 / 413
                    } else {
                        total = head_len + std::stoull(*cl);
                    }
                }
            }
            if (ok && c.in.size() < total) {
                // RFC 9110 §10.1.1: a client that sent Expect: 100-continue waits for this before the body.
                if (!c.sent_continue && c.in.size() == head_len) {
                    if (const std::string* e = r.header("Expect"); e != nullptr && iequal(*e, "100-continue")) {
                        c.sent_continue = true;
                        ::send(c.fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL);
                    }
                }
                // The head is whole; wait for the body. The next search starts just before the same blank line.
                c.scanned = head_len >= 4 ? head_len - 4 : 0;
                if (c.peer_eof) {
                    r = IncomingRequest{};
                    r.raw = std::move(c.in);
                    c.in.clear();
                    r.close = true;
                    dispatch(c, std::move(r), false);
                }
                return;
            }
            if (!ok) total = head_len;   // only the head: the body is never read as another request
            r.raw.assign(c.in, 0, total);
            c.in.erase(0, total);
            c.scanned = 0;
            r.framed = ok;
            if (!ok) r.close = true;
            r.body_offset = head_len;
            if (ok) {
                // cpp-httplib's rules (RFC 9112 §9.3): "Connection: close", or HTTP/1.0 without keep-alive.
                const std::string* conn = r.header("Connection");
                if (conn != nullptr && *conn == "close") r.close = true;
                if (r.version == "HTTP/1.0" && (conn == nullptr || *conn != "Keep-Alive")) r.close = true;
            }
            if (c.served + 1 >= server.options.keep_alive_max_count) r.close = true;
            dispatch(c, std::move(r), ok);
        }

        bool draining_refuses(Conn& c) {
            if (!draining) return false;
            close_conn(c);
            return true;
        }

        static bool parse_head(std::string_view head, IncomingRequest& r) {
            size_t eol = head.find("\r\n");
            if (eol == std::string_view::npos) return false;
            std::string_view line = head.substr(0, eol);
            size_t sp1 = line.find(' ');
            size_t sp2 = line.rfind(' ');
            if (sp1 == std::string_view::npos || sp2 == sp1) return false;
            r.method.assign(line.substr(0, sp1));
            r.target.assign(line.substr(sp1 + 1, sp2 - sp1 - 1));
            r.version.assign(line.substr(sp2 + 1));
            if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") return false;
            if (r.target.empty() || r.target.find(' ') != std::string::npos) return false;
            size_t pos = eol + 2;
            r.headers.reserve(8);   // 8 fields: 512 bytes, within malloc's per-thread cache
            while (pos < head.size()) {
                size_t e = head.find("\r\n", pos);
                if (e == std::string_view::npos) return false;
                if (e == pos) break;   // the empty line
                std::string_view h = head.substr(pos, e - pos);
                size_t colon = h.find(':');
                // RFC 9112 §5.1: no whitespace between the field name and the colon.
                if (colon == std::string_view::npos || colon == 0 || h[colon - 1] == ' ' || h[colon - 1] == '\t') {
                    return false;
                }
                std::string_view value = trim_ows(h.substr(colon + 1));
                if (has_line_break(value)) return false;
                r.headers.emplace_back(std::string(h.substr(0, colon)), std::string(value));
                pos = e + 2;
            }
            return true;
        }

        void dispatch(Conn& c, IncomingRequest r, bool framed) {
            r.framed = framed;
            r.remote_ip = c.ip;
            r.remote_port = c.port;
            r.sent_continue = c.sent_continue;
            c.sent_continue = false;
            c.state = Conn::State::busy;
            c.request_started = Clock::time_point{};
            if (r.close) c.close_after_write = true;
            uint64_t id = c.id;
            if (framed && server.hooks.fast) {
                Loop* self = this;
                Respond respond = [self, id](OutgoingResponse resp) { self->deliver(id, std::move(resp)); };
                c.pending = std::move(r);
                bool taken = false;
                try {
                    taken = server.hooks.fast(c.pending, index, loop, respond);
                } catch (...) {
                    taken = false;
                }
                if (taken) {
                    c.fast_inflight = true;
                    return;
                }
                r = std::move(c.pending);
                c.pending = IncomingRequest{};
            }
            to_slow(id, std::move(r), nullptr);
        }

        void to_slow(uint64_t id, IncomingRequest r, std::function<void()> setup) {
            ++server.slow_count;
            Loop* self = this;
            auto job = std::make_shared<IncomingRequest>(std::move(r));
            server.workers->enqueue([self, id, job, setup = std::move(setup)] {
                OutgoingResponse resp;
                try {
                    if (setup) setup();
                    resp = self->server.hooks.slow(*job);
                } catch (...) {
                    resp.bytes = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    resp.close = true;
                }
                if (job->sent_continue && resp.bytes.compare(0, kContinue.size(), kContinue) == 0) {
                    resp.bytes.erase(0, kContinue.size());   // the front end sent it already
                }
                self->loop.post([self, id, resp = std::move(resp)]() mutable { self->deliver(id, std::move(resp)); });
            });
        }

        void deliver(uint64_t id, OutgoingResponse resp) {
            auto it = conns.find(id);
            if (it == conns.end()) return;   // the client went away meanwhile
            Conn& c = *it->second;
            if (c.fast_inflight && !resp.to_slow) ++server.fast_count;
            c.fast_inflight = false;
            if (resp.to_slow) {
                // The fast path handed the request back (a retry or a token refresh is needed: both may wait).
                IncomingRequest r = std::move(c.pending);
                c.pending = IncomingRequest{};
                to_slow(id, std::move(r), std::move(resp.slow_setup));
                return;
            }
            c.pending = IncomingRequest{};
            if (resp.close) c.close_after_write = true;
            if (c.out_pos == c.out.size()) {
                c.out = std::move(resp.bytes);
                c.out_pos = 0;
            } else {
                c.out += resp.bytes;
            }
            c.state = Conn::State::writing;
            c.write_progress = loop.now();
            ++c.served;
            flush(c);
        }

        // Writes what it can. Returns false when the connection was closed.
        bool flush(Conn& c) {
            while (c.out_pos < c.out.size()) {
                ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
                if (n > 0) {
                    c.out_pos += static_cast<size_t>(n);
                    c.write_progress = loop.now();
                    continue;
                }
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    watch(c, c.peer_eof ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN | EPOLLRDHUP | EPOLLOUT});
                    return true;
                }
                close_conn(c);
                return false;
            }
            c.out.clear();
            c.out_pos = 0;
            if (c.close_after_write || draining) {
                ::shutdown(c.fd, SHUT_WR);
                close_conn(c);
                return false;
            }
            c.state = Conn::State::reading;
            c.idle_since = loop.now();
            watch(c, EPOLLIN | EPOLLRDHUP);
            try_dispatch(c);   // a pipelined request may be buffered already
            return conns.count(c.id) != 0 ? true : false;
        }

        void sweep() {
            const auto now = loop.now();
            const auto& o = server.options;
            std::vector<Conn*> expired;
            for (auto& [id, c] : conns) {
                bool late = false;
                if (c->state == Conn::State::reading) {
                    late = c->in.empty() ? now - c->idle_since > o.keep_alive_timeout
                                         : (c->request_started != Clock::time_point{} &&
                                            now - c->request_started > o.request_timeout);
                } else if (c->state == Conn::State::writing) {
                    late = now - c->write_progress > o.write_timeout;
                }
                if (late) expired.push_back(c);
            }
            for (Conn* c : expired) close_conn(*c);
            sweep_timer = loop.add_timer(std::chrono::milliseconds(250), [this] { sweep(); });
        }

        void start_drain() {
            draining = true;
            if (!accept_paused) loop.remove(server.listen_fd);
            std::vector<Conn*> idle;
            for (auto& [id, c] : conns) {
                if (c->state == Conn::State::reading) idle.push_back(c);
            }
            for (Conn* c : idle) close_conn(*c);
            maybe_finish_drain();
            // In-flight answers get a few seconds to finish.
            loop.add_timer(std::chrono::milliseconds(5000), [this] { loop.stop(); });
        }

        void maybe_finish_drain() {
            if (draining && conns.empty()) loop.stop();
        }
    };

    EventServerOptions options;
    Hooks hooks;
    int listen_fd = -1;
    std::vector<std::unique_ptr<Loop>> loops;
    std::unique_ptr<ElasticQueue> workers;
    std::atomic<size_t> connections{0};
    std::atomic<size_t> next_loop{0};
    std::atomic<size_t> fast_count{0};
    std::atomic<size_t> slow_count{0};
    std::mutex stop_mutex;
    bool running = false;
    bool stop_requested = false;

    Impl(EventServerOptions o, Hooks h) : options(std::move(o)), hooks(std::move(h)) {}
};

EventServer::EventServer(EventServerOptions options, Hooks hooks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(hooks))) {}

EventServer::~EventServer() {
    if (impl_->workers) impl_->workers->shutdown();   // posts of finishing jobs land in loops that still exist
    impl_->loops.clear();
    if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
}

Result<int> EventServer::bind(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* list = nullptr;
    std::string service = std::to_string(port);
    auto failed = [&](const std::string& why) {
        return make_error("server.bind_failed",
                          "Could not listen on " + host + ":" + std::to_string(port) + " (" + why + ").",
                          "Another program (or another keyrelay) probably uses that port: pick another with --port, "
                          "or --port 0 to let the system choose.");
    };
    int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
    if (rc != 0) return failed(::gai_strerror(rc));
    int fd = -1;
    std::string why = "no usable address";
    for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 512) != 0) {
            why = std::strerror(errno);
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(list);
    if (fd < 0) return failed(why);
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    int bound = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                           : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    impl_->listen_fd = fd;
    return bound;
}

bool EventServer::run() {
    Impl& m = *impl_;
    if (m.listen_fd < 0) return false;
    ElasticQueueOptions q;
    q.max = std::max<size_t>(1, m.options.slow_workers);
    q.core = std::min<size_t>(32, q.max);   // warm workers for bursts of page and OAuth calls
    q.max_queued = 1 << 16;
    m.workers = std::make_unique<ElasticQueue>(q);
    size_t n = static_cast<size_t>(std::max(1, m.options.threads));
    for (size_t i = 0; i < n; ++i) {
        auto loop = std::make_unique<Impl::Loop>(m, i);
        if (!loop->loop.ok() || !loop->loop.add(m.listen_fd, EPOLLIN | EPOLLEXCLUSIVE, &loop->listener)) {
            return false;
        }
        m.loops.push_back(std::move(loop));
    }
    {
        std::lock_guard<std::mutex> lock(m.stop_mutex);
        m.running = true;
        if (m.stop_requested) {
            for (auto& l : m.loops) l->loop.post([p = l.get()] { p->start_drain(); });
        }
    }
    auto serve = [&m](Impl::Loop& l) {
        if (m.hooks.loop_started) m.hooks.loop_started(l.index, l.loop);
        l.sweep_timer = l.loop.add_timer(std::chrono::milliseconds(250), [p = &l] { p->sweep(); });
        l.loop.run();
        if (m.hooks.loop_stopped) m.hooks.loop_stopped(l.index);
    };
    std::vector<std::thread> threads;
    for (size_t i = 1; i < n; ++i) threads.emplace_back([&, i] { serve(*m.loops[i]); });
    serve(*m.loops[0]);
    for (auto& t : threads) t.join();
    m.workers->shutdown();
    return true;
}

void EventServer::stop() {
    Impl& m = *impl_;
    std::lock_guard<std::mutex> lock(m.stop_mutex);
    if (m.stop_requested) return;
    m.stop_requested = true;
    if (!m.running) return;
    for (auto& l : m.loops) l->loop.post([p = l.get()] { p->start_drain(); });
}

EventServer::Stats EventServer::stats() const {
    Stats s;
    s.connections = impl_->connections.load();
    s.fast = impl_->fast_count.load();
    s.slow = impl_->slow_count.load();
    return s;
}

}  // namespace keyrelay::relay
