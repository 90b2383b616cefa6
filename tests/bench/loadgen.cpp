// keyrelay_loadgen: a fixed-rate (open-loop) HTTP/1.1 load generator for "p99 added latency at 1,000 req/s".
// wrk only runs closed-loop (as fast as it can) and Debian has no wrk2, so this is the small part of wrk2 we need:
//
//   keyrelay_loadgen --url http://127.0.0.1:PORT/path?query --rate 1000 --duration 10 [--warmup 1]
//                    [--connections 16] [--header "Name: value"]... [--timeout 5] [--latencies FILE]
//
// Requests are scheduled at t0 + i/rate, whatever happened before (open loop). Each latency is measured from the
// request's SCHEDULED time to the end of its response, so a stall delays the requests queued behind it and they
// count (no "coordinated omission", as in wrk2). Keep-alive connections (RFC 9112 §9.3), used round robin; a request
// waits for an idle one, and is retried once when a reused connection closes before answering it. Responses are framed by Content-Length or chunked transfer coding (RFC 9112 §6.3, §7.1), or by the
// connection closing. Latencies of the first --warmup seconds are dropped.
//
// Prints one JSON object: {rate, duration_s, scheduled, completed, errors, non_2xx, timeouts, reconnects, retries,
// achieved_rate, latency_us: {p50, p90, p99, p999, max, mean}}; --latencies FILE also writes every measured latency
// (microseconds, one per line) so that runs can be merged. Exit status 0 when it ran (the caller judges the
// figures), 1 when it could not connect at all, 2 on bad arguments.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct Options {
    std::string host = "127.0.0.1";
    std::string port = "80";
    std::string target = "/";
    std::vector<std::string> headers;
    double rate = 1000;
    double duration = 10;
    double warmup = 1;
    double timeout = 5;
    int connections = 16;
    std::string latencies_file;   // --latencies: every measured latency (us), one per line
};

bool parse_url(const std::string& url, Options& o) {
    const std::string scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return false;
    std::string rest = url.substr(scheme.size());
    size_t slash = rest.find('/');
    std::string authority = slash == std::string::npos ? rest : rest.substr(0, slash);
    o.target = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = authority.rfind(':');
    if (colon == std::string::npos) {
        o.host = authority;
    } else {
        o.host = authority.substr(0, colon);
        o.port = authority.substr(colon + 1);
    }
    return !o.host.empty();
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// One response being read. Framing per RFC 9112 §6.3.
struct Parser {
    enum class State { head, body_length, chunk_size, chunk_data, chunk_crlf, trailers, body_until_close, done };
    State state = State::head;
    int status = 0;
    size_t remaining = 0;
    bool close_after = false;

    void reset() { *this = Parser{}; }

    // Consumes from buf[pos..); returns false on a protocol error.
    bool feed(const std::string& buf, size_t& pos) {
        while (pos < buf.size() && state != State::done) {
            switch (state) {
                case State::head: {
                    size_t end = buf.find("\r\n\r\n", pos);
                    if (end == std::string::npos) return true;
                    std::string head = buf.substr(pos, end - pos);
                    pos = end + 4;
                    if (head.compare(0, 5, "HTTP/") != 0 || head.size() < 12) return false;
                    status = std::atoi(head.c_str() + 9);
                    bool chunked = false;
                    bool has_length = false;
                    size_t length = 0;
                    size_t line = head.find("\r\n");
                    while (line != std::string::npos) {
                        size_t next = head.find("\r\n", line + 2);
                        std::string h = head.substr(line + 2, next == std::string::npos ? std::string::npos
                                                                                         : next - line - 2);
                        size_t c = h.find(':');
                        if (c != std::string::npos) {
                            std::string name = lower(h.substr(0, c));
                            std::string value = h.substr(c + 1);
                            value.erase(0, value.find_first_not_of(" \t"));
                            if (name == "content-length") {
                                has_length = true;
                                length = static_cast<size_t>(std::strtoull(value.c_str(), nullptr, 10));
                            } else if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) {
                                chunked = true;
                            } else if (name == "connection" && lower(value).find("close") != std::string::npos) {
                                close_after = true;
                            }
                        }
                        line = next;
                    }
                    if (head.compare(0, 8, "HTTP/1.0") == 0) close_after = true;
                    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
                        state = State::done;
                    } else if (chunked) {
                        state = State::chunk_size;
                    } else if (has_length) {
                        remaining = length;
                        state = length == 0 ? State::done : State::body_length;
                    } else {
                        close_after = true;
                        state = State::body_until_close;
                    }
                    break;
                }
                case State::body_length: {
                    size_t take = std::min(remaining, buf.size() - pos);
                    pos += take;
                    remaining -= take;
                    if (remaining == 0) state = State::done;
                    break;
                }
                case State::chunk_size: {
                    size_t end = buf.find("\r\n", pos);
                    if (end == std::string::npos) return true;
                    remaining = static_cast<size_t>(std::strtoull(buf.c_str() + pos, nullptr, 16));
                    pos = end + 2;
                    state = remaining == 0 ? State::trailers : State::chunk_data;
                    break;
                }
                case State::chunk_data: {
                    size_t take = std::min(remaining, buf.size() - pos);
                    pos += take;
                    remaining -= take;
                    if (remaining == 0) state = State::chunk_crlf;
                    break;
                }
                case State::chunk_crlf: {
                    if (buf.size() - pos < 2) return true;
                    pos += 2;
                    state = State::chunk_size;
                    break;
                }
                case State::trailers: {
                    size_t end = buf.find("\r\n", pos);
                    if (end == std::string::npos) return true;
                    bool empty = end == pos;
                    pos = end + 2;
                    if (empty) state = State::done;
                    break;
                }
                case State::body_until_close:
                    pos = buf.size();
                    break;
                case State::done:
                    break;
            }
        }
        return true;
    }
};

struct Conn {
    int fd = -1;
    bool connected = false;
    bool busy = false;
    int64_t scheduled = 0;   // of the request in flight
    long served = 0;         // responses completed on this connection
    bool got_bytes = false;  // any byte of the current response
    std::string out;
    size_t out_pos = 0;
    std::string in;
    Parser parser;
};

struct Stats {
    std::vector<int64_t> latencies_ns;
    long completed = 0;
    long errors = 0;
    long non_2xx = 0;
    long timeouts = 0;
    long reconnects = 0;
    long connect_failures = 0;
    long retries = 0;
};

class Generator {
public:
    explicit Generator(Options o) : o_(std::move(o)) {}

    int run() {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        if (int rc = getaddrinfo(o_.host.c_str(), o_.port.c_str(), &hints, &res); rc != 0 || res == nullptr) {
            std::fprintf(stderr, "keyrelay_loadgen: cannot resolve %s:%s: %s\n", o_.host.c_str(), o_.port.c_str(),
                         gai_strerror(rc));
            return 1;
        }
        addr_.assign(reinterpret_cast<const char*>(res->ai_addr), res->ai_addrlen);
        family_ = res->ai_family;
        freeaddrinfo(res);

        request_ = "GET " + o_.target + " HTTP/1.1\r\nHost: " + o_.host + ":" + o_.port + "\r\n";
        for (const auto& h : o_.headers) request_ += h + "\r\n";
        request_ += "\r\n";

        ep_ = epoll_create1(EPOLL_CLOEXEC);
        tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        epoll_event tev{};
        tev.events = EPOLLIN;
        tev.data.u64 = UINT64_MAX;
        epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &tev);

        conns_.resize(static_cast<size_t>(o_.connections));
        for (size_t i = 0; i < conns_.size(); ++i) {
            if (!open_conn(i)) {
                std::fprintf(stderr, "keyrelay_loadgen: cannot connect to %s:%s: %s\n", o_.host.c_str(),
                             o_.port.c_str(), std::strerror(errno));
                return 1;
            }
        }

        const int64_t interval = static_cast<int64_t>(1e9 / o_.rate);
        const long total = static_cast<long>(std::llround(o_.rate * o_.duration));
        const int64_t warmup_end_offset = static_cast<int64_t>(o_.warmup * 1e9);
        t0_ = now_ns() + 50'000'000;   // 50 ms for the connections to finish their handshakes
        warmup_end_ = t0_ + warmup_end_offset;
        long next = 0;
        const int64_t deadline_pad = static_cast<int64_t>(o_.timeout * 1e9);
        std::vector<epoll_event> events(64);

        for (;;) {
            int64_t now = now_ns();
            while (next < total && t0_ + next * interval <= now) {
                pending_.push_back(t0_ + next * interval);
                ++next;
            }
            dispatch();
            expire(now);
            if (next >= total && pending_.empty() && in_flight() == 0) break;
            if (next >= total && now > t0_ + (total - 1) * interval + deadline_pad) break;

            int64_t wake = next < total ? t0_ + next * interval : now + 10'000'000;
            itimerspec its{};
            its.it_value.tv_sec = wake / 1000000000LL;
            its.it_value.tv_nsec = wake % 1000000000LL;
            timerfd_settime(tfd_, TFD_TIMER_ABSTIME, &its, nullptr);

            int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
            if (n < 0 && errno != EINTR) {
                std::perror("epoll_wait");
                return 1;
            }
            for (int k = 0; k < n; ++k) {
                if (events[static_cast<size_t>(k)].data.u64 == UINT64_MAX) {
                    uint64_t expirations = 0;
                    ssize_t r = read(tfd_, &expirations, sizeof expirations);
                    (void)r;
                    continue;
                }
                on_event(static_cast<size_t>(events[static_cast<size_t>(k)].data.u64),
                         events[static_cast<size_t>(k)].events);
            }
        }
        // Whatever is still queued or in flight at the end timed out.
        stats_.timeouts += static_cast<long>(pending_.size()) + in_flight();
        for (auto& c : conns_) {
            if (c.fd >= 0) close(c.fd);
        }
        report(total);
        return 0;
    }

private:
    long in_flight() const {
        long n = 0;
        for (const auto& c : conns_) n += c.busy ? 1 : 0;
        return n;
    }

    bool open_conn(size_t i) {
        Conn& c = conns_[i];
        c = Conn{};
        c.fd = socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c.fd < 0) return false;
        int one = 1;
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(addr_.data()), static_cast<socklen_t>(addr_.size()));
        if (rc < 0 && errno != EINPROGRESS) {
            close(c.fd);
            c.fd = -1;
            return false;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
        ev.data.u64 = i;
        epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
        return true;
    }

    void drop_conn(size_t i, bool count_error) {
        Conn& c = conns_[i];
        if (c.busy && count_error) {
            // RFC 9112 §9.3.1 / RFC 9110 §9.2.2: a server may close an idle keep-alive connection just as a request
            // is sent on it; a client retries such an idempotent request once on a new connection. Its latency still
            // runs from the original scheduled time.
            if (c.served > 0 && !c.got_bytes) {
                stats_.retries++;
                pending_.push_front(c.scheduled);
            } else {
                stats_.errors++;
            }
        }
        if (c.fd >= 0) {
            epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
            close(c.fd);
        }
        c = Conn{};
        stats_.reconnects++;
        if (!open_conn(i)) stats_.connect_failures++;
    }

    // Round robin over the idle connections, so that none sits idle long enough for the server's keep-alive timeout.
    void dispatch() {
        for (size_t k = 0; k < conns_.size() && !pending_.empty(); ++k) {
            size_t i = (next_conn_ + k) % conns_.size();
            Conn& c = conns_[i];
            if (c.fd < 0 || !c.connected || c.busy) continue;
            next_conn_ = (i + 1) % conns_.size();
            c.got_bytes = false;
            c.busy = true;
            c.scheduled = pending_.front();
            pending_.pop_front();
            c.out = request_;
            c.out_pos = 0;
            c.parser.reset();
            flush(i);
        }
    }

    // Requests whose scheduled time is older than the timeout are counted as timeouts.
    void expire(int64_t now) {
        const int64_t limit = static_cast<int64_t>(o_.timeout * 1e9);
        while (!pending_.empty() && now - pending_.front() > limit) {
            pending_.pop_front();
            stats_.timeouts++;
        }
        for (size_t i = 0; i < conns_.size(); ++i) {
            if (conns_[i].busy && now - conns_[i].scheduled > limit) {
                stats_.timeouts++;
                conns_[i].busy = false;
                drop_conn(i, false);
            }
        }
    }

    void flush(size_t i) {
        Conn& c = conns_[i];
        while (c.out_pos < c.out.size()) {
            ssize_t w = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                drop_conn(i, true);
                return;
            }
            c.out_pos += static_cast<size_t>(w);
        }
    }

    void on_event(size_t i, uint32_t ev) {
        Conn& c = conns_[i];
        if (c.fd < 0) return;
        if (!c.connected && (ev & EPOLLOUT)) {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                stats_.connect_failures++;
                epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
                close(c.fd);
                c = Conn{};
                return;
            }
            c.connected = true;
            epoll_event mod{};
            mod.events = EPOLLIN | EPOLLRDHUP;
            mod.data.u64 = i;
            epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &mod);
            dispatch();
            return;
        }
        if (c.busy && c.out_pos < c.out.size()) flush(i);
        if (c.fd < 0) return;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            char buf[16384];
            for (;;) {
                ssize_t r = recv(c.fd, buf, sizeof buf, 0);
                if (r > 0) {
                    c.in.append(buf, static_cast<size_t>(r));
                    c.got_bytes = true;
                    continue;
                }
                if (r == 0) {
                    // The peer closed: a body framed by the close is complete now.
                    if (c.busy && c.parser.state == Parser::State::body_until_close) {
                        complete(i);
                        drop_conn(i, false);
                    } else {
                        drop_conn(i, c.busy);
                    }
                    return;
                }
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                drop_conn(i, true);
                return;
            }
            if (!c.busy) {
                c.in.clear();
                return;
            }
            size_t pos = 0;
            if (!c.parser.feed(c.in, pos)) {
                drop_conn(i, true);
                return;
            }
            c.in.erase(0, pos);
            if (c.parser.state == Parser::State::done) {
                bool close_after = c.parser.close_after;
                complete(i);
                if (close_after) {
                    drop_conn(i, false);
                } else {
                    dispatch();
                }
            }
        }
    }

    void complete(size_t i) {
        Conn& c = conns_[i];
        int64_t end = now_ns();
        c.busy = false;
        c.served++;
        stats_.completed++;
        if (c.parser.status < 200 || c.parser.status > 299) stats_.non_2xx++;
        if (c.scheduled >= warmup_end_) stats_.latencies_ns.push_back(end - c.scheduled);
    }

    void report(long total) {
        auto& v = stats_.latencies_ns;
        std::sort(v.begin(), v.end());
        if (!o_.latencies_file.empty()) {
            if (FILE* f = std::fopen(o_.latencies_file.c_str(), "w")) {
                for (auto x : v) std::fprintf(f, "%.1f\n", static_cast<double>(x) / 1000.0);
                std::fclose(f);
            }
        }
        auto pct = [&v](double p) -> double {
            if (v.empty()) return 0;
            size_t idx = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) ;
            idx = idx == 0 ? 0 : idx - 1;
            if (idx >= v.size()) idx = v.size() - 1;
            return static_cast<double>(v[idx]) / 1000.0;
        };
        double mean = 0;
        for (auto x : v) mean += static_cast<double>(x);
        mean = v.empty() ? 0 : mean / static_cast<double>(v.size()) / 1000.0;
        const double measured_s = o_.duration - o_.warmup;
        std::printf(
            "{\"rate\":%.0f,\"duration_s\":%.1f,\"warmup_s\":%.1f,\"connections\":%d,\"scheduled\":%ld,"
            "\"completed\":%ld,\"measured\":%zu,\"errors\":%ld,\"non_2xx\":%ld,\"timeouts\":%ld,\"reconnects\":%ld,"
            "\"connect_failures\":%ld,\"retries\":%ld,\"achieved_rate\":%.1f,\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,"
            "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}}\n",
            o_.rate, o_.duration, o_.warmup, o_.connections, total, stats_.completed, v.size(), stats_.errors,
            stats_.non_2xx, stats_.timeouts, stats_.reconnects,
            stats_.connect_failures, stats_.retries, measured_s > 0 ? static_cast<double>(v.size()) / measured_s : 0.0, pct(50),
            pct(90), pct(99), pct(99.9), v.empty() ? 0.0 : static_cast<double>(v.back()) / 1000.0, mean);
    }

    Options o_;
    std::string addr_;
    int family_ = AF_INET;
    std::string request_;
    int ep_ = -1;
    int tfd_ = -1;
    int64_t t0_ = 0;
    int64_t warmup_end_ = 0;
    std::vector<Conn> conns_;
    std::deque<int64_t> pending_;
    size_t next_conn_ = 0;
    Stats stats_;
};

int usage() {
    std::fprintf(stderr,
                 "usage: keyrelay_loadgen --url http://HOST:PORT/PATH --rate R --duration S [--warmup S]\n"
                 "                        [--connections N] [--header \"Name: value\"]... [--timeout S]\n"
                 "                        [--latencies FILE]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool have_url = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        const char* v = nullptr;
        if (a == "--url" && (v = next())) {
            if (!parse_url(v, o)) return usage();
            have_url = true;
        } else if (a == "--rate" && (v = next())) {
            o.rate = std::atof(v);
        } else if (a == "--duration" && (v = next())) {
            o.duration = std::atof(v);
        } else if (a == "--warmup" && (v = next())) {
            o.warmup = std::atof(v);
        } else if (a == "--connections" && (v = next())) {
            o.connections = std::atoi(v);
        } else if (a == "--header" && (v = next())) {
            o.headers.emplace_back(v);
        } else if (a == "--timeout" && (v = next())) {
            o.timeout = std::atof(v);
        } else if (a == "--latencies" && (v = next())) {
            o.latencies_file = v;
        } else {
            return usage();
        }
    }
    if (!have_url || o.rate <= 0 || o.duration <= 0 || o.connections <= 0 || o.warmup < 0 ||
        o.warmup >= o.duration) {
        return usage();
    }
    return Generator(o).run();
}
