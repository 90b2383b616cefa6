#include "async_upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "keyrelay/text.h"

// Timeouts, as cpp-httplib applies them in Upstream: connect_timeout_ms bounds each TCP connect attempt (one per
// resolved address); read_timeout_ms bounds every wait for progress after that (TLS handshake, sending, and each wait
// for more of the answer). It is an inactivity timeout, not a total deadline: an answer that keeps trickling in is not
// cut off, exactly like httplib's per-read timeout.

namespace keyrelay::relay {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHead = 64 * 1024;   // status line + header fields (and, separately, the chunked trailer section)
constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kKeepCapacity = 64 * 1024;   // larger buffers are freed after an exchange, not kept for the next
constexpr auto kDnsTtl = std::chrono::seconds(60);
constexpr size_t kMaxOrigins = 16;       // origins whose parsed form is cached
constexpr size_t kSpareExchanges = 16;   // finished exchanges kept for reuse

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Comma-separated list elements (RFC 9110 §5.6.1) of every field called `name`, in order, trimmed, empty ones
// dropped: `f(element)` for each until it returns false.
template <class F>
void for_each_element(const Headers& headers, std::string_view name, F f) {
    for (const auto& [n, v] : headers.items()) {
        if (!iequals(n, name)) continue;
        std::string_view rest = v;
        while (!rest.empty()) {
            size_t comma = rest.find(',');
            std::string_view item = trim(rest.substr(0, comma));
            if (!item.empty() && !f(item)) return;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
}

bool has_element(const Headers& headers, std::string_view name, std::string_view token) {
    bool found = false;
    for_each_element(headers, name, [&](std::string_view item) {
        found = iequals(item, token);
        return !found;
    });
    return found;
}

// RFC 3986 §3: an absolute URL's scheme and authority, everything before its path, query or fragment; empty when it
// has no "://" (parse_url() refuses it then).
std::string_view origin_prefix(std::string_view url) {
    size_t colon = url.find("://");
    if (colon == std::string_view::npos || colon == 0) return {};
    return url.substr(0, url.find_first_of("/?#", colon + 3));
}

// What parse_url() refuses anywhere in a URL.
bool has_space_or_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c <= 0x20 || c == 0x7F;
    });
}

void append_decimal(std::string& out, uint64_t v) {
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) out += digits[--n];
}

struct Address {
    sockaddr_storage addr{};
    socklen_t len = 0;
};
using Addresses = std::vector<Address>;

// An IP literal, without blocking.
std::optional<Address> ip_literal(const std::string& host, int port) {
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.addr);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        a.len = sizeof(sockaddr_in);
        return a;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        a.len = sizeof(sockaddr_in6);
        return a;
    }
    return std::nullopt;
}

void set_port(Address& a, int port) {
    if (a.addr.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&a.addr)->sin_port = htons(static_cast<uint16_t>(port));
    } else if (a.addr.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&a.addr)->sin6_port = htons(static_cast<uint16_t>(port));
    }
}

std::string openssl_reason() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "the connection closed during the handshake";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// Incremental HTTP/1.1 response parser (RFC 9112). Fed with whatever the socket delivers.
class ResponseParser {
public:
    enum class Step { more, done, failed };

    ResponseParser() = default;
    ResponseParser(bool head_request, size_t max_body) : head_request_(head_request), max_body_(max_body) {}

    // Ready for the next exchange on the same connection. The read buffer's room is kept (a pooled connection reads
    // answers of similar size), unless a large answer grew it.
    void reset(bool head_request, size_t max_body) {
        std::string buf = std::move(buf_);
        *this = ResponseParser(head_request, max_body);
        if (buf.capacity() <= kKeepCapacity) {
            buf.clear();
            buf_ = std::move(buf);
        }
    }

    Step feed(const char* data, size_t n) {
        if (n > 0) received_ = true;
        buf_.append(data, n);
        Step s = run();
        if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 16384)) {
            buf_.erase(0, pos_);
            pos_ = 0;
        }
        return s;
    }

    // The server closed the connection.
    Step eof() {
        switch (phase_) {
            case Phase::until_close:
                return finish();
            case Phase::done:
                return Step::done;
            case Phase::failed:
                return Step::failed;
            default:
                // RFC 9112 §8: a message whose framing says more is coming, cut by a close, is incomplete.
                return fail(TransportFailure::reset_reading, "");
        }
    }

    bool received() const { return received_; }
    bool keep_alive() const { return keep_alive_; }
    TransportFailure failure() const { return failure_; }
    const std::string& detail() const { return detail_; }
    HttpResponse take() {
        HttpResponse r;
        r.status = status_;
        r.headers = std::move(headers_);
        r.body = std::move(body_);
        return r;
    }

private:
    enum class Phase { head, length, chunk_size, chunk_data, chunk_crlf, trailers, until_close, done, failed };

    Step fail(TransportFailure kind, std::string detail) {
        failure_ = kind;
        detail_ = std::move(detail);
        phase_ = Phase::failed;
        return Step::failed;
    }

    Step finish() {
        phase_ = Phase::done;
        if (pos_ < buf_.size()) keep_alive_ = false;   // bytes nobody asked for: the connection is not trusted again
        return Step::done;
    }

    // One line without its terminator. RFC 9112 §2.2: CRLF ends a line; a bare LF is accepted too.
    bool next_line(std::string_view& line) {
        size_t nl = buf_.find('\n', pos_);
        if (nl == std::string::npos) return false;
        line = std::string_view(buf_).substr(pos_, nl - pos_);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        pos_ = nl + 1;
        return true;
    }

    bool take_body(size_t n) {
        if (body_.size() + n > max_body_) return false;
        body_.append(buf_, pos_, n);
        pos_ += n;
        return true;
    }

    Step too_large() { return fail(TransportFailure::too_large, ""); }

    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
    bool parse_status_line(std::string_view line) {
        if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
        if (line[7] != '0' && line[7] != '1') return false;
        http10_ = line[7] == '0';
        int status = 0;
        for (size_t i = 9; i < 12; ++i) {
            if (line[i] < '0' || line[i] > '9') return false;
            status = status * 10 + (line[i] - '0');
        }
        if (line.size() > 12 && line[12] != ' ') return false;
        if (status < 100) return false;
        status_ = status;
        return true;
    }

    Step end_of_head() {
        // RFC 9110 §15.2: 1xx answers are interim; the final answer follows on the same connection.
        if (status_ < 200) {
            if (status_ == 101) {
                return fail(TransportFailure::other, "the server switched protocols (101) without being asked");
            }
            status_seen_ = false;
            status_ = 0;
            field_open_ = false;
            head_bytes_ = 0;
            return Step::more;
        }
        end_field();

        // No Accept-Encoding was sent, so only identity is acceptable (RFC 9110 §8.4, §12.5.3).
        std::string_view coding;
        for_each_element(headers_, "Content-Encoding", [&](std::string_view c) {
            if (iequals(c, "identity")) return true;
            coding = c;
            return false;
        });
        if (!coding.empty()) {
            return fail(TransportFailure::other, "the answer is compressed with Content-Encoding " +
                                                     std::string(coding) + ", which the relay did not ask for");
        }
        // RFC 9112 §9.3: HTTP/1.1 connections persist unless "Connection: close"; HTTP/1.0 ones only with
        // "Connection: keep-alive".
        keep_alive_ = http10_ ? has_element(headers_, "Connection", "keep-alive")
                              : !has_element(headers_, "Connection", "close");

        // RFC 9112 §6.3, in order: (1) HEAD, 1xx, 204 and 304 answers have no content.
        if (head_request_ || status_ == 204 || status_ == 304) return finish();
        // (3) Transfer-Encoding overrides Content-Length; chunked must be the final (here: only) coding.
        size_t codings = 0;
        std::string_view first;
        for_each_element(headers_, "Transfer-Encoding", [&](std::string_view t) {
            if (codings++ == 0) first = t;
            return true;
        });
        if (codings > 0) {
            if (codings != 1 || !iequals(first, "chunked")) {
                std::string all;
                for_each_element(headers_, "Transfer-Encoding", [&](std::string_view t) {
                    if (!all.empty()) all += ", ";
                    all += t;
                    return true;
                });
                return fail(TransportFailure::other,
                            "the answer uses Transfer-Encoding " + all + ", which the relay cannot decode");
            }
            // Both fields, or TE in HTTP/1.0, hint at request smuggling: use the answer, never the connection.
            if (headers_.has("Content-Length") || http10_) keep_alive_ = false;
            phase_ = Phase::chunk_size;
            return Step::more;
        }
        // (5) Content-Length: every value must be the same decimal number.
        if (headers_.has("Content-Length")) {
            std::optional<uint64_t> length;
            bool invalid = false;
            bool differ = false;
            for_each_element(headers_, "Content-Length", [&](std::string_view l) {
                if (l.size() > 18 || !std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                    invalid = true;
                    return false;
                }
                uint64_t v = 0;
                for (char c : l) v = v * 10 + static_cast<uint64_t>(c - '0');
                if (length && *length != v) {
                    differ = true;
                    return false;
                }
                length = v;
                return true;
            });
            if (invalid) return fail(TransportFailure::other, "the answer has an invalid Content-Length");
            if (differ) return fail(TransportFailure::other, "the answer has two Content-Lengths");
            if (!length) return fail(TransportFailure::other, "the answer has an invalid Content-Length");
            if (*length > max_body_) return too_large();
            remaining_ = *length;
            if (remaining_ == 0) return finish();
            // Room for what is announced, up to 64 KiB: a length claimed but never sent must not hold memory.
            body_.reserve(static_cast<size_t>(std::min<uint64_t>(remaining_, 64 * 1024)));
            phase_ = Phase::length;
            return Step::more;
        }
        // (7) Otherwise the content runs until the server closes the connection.
        keep_alive_ = false;
        phase_ = Phase::until_close;
        return Step::more;
    }

    Step run() {
        for (;;) {
            std::string_view line;
            switch (phase_) {
                case Phase::head: {
                    if (!next_line(line)) {
                        if (head_bytes_ + (buf_.size() - pos_) > kMaxHead) return head_too_large();
                        return Step::more;
                    }
                    head_bytes_ += line.size() + 2;
                    if (head_bytes_ > kMaxHead) return head_too_large();
                    if (!status_seen_) {
                        if (!parse_status_line(line)) {
                            return fail(TransportFailure::other, "the answer does not start with an HTTP/1.x status line");
                        }
                        status_seen_ = true;
                        headers_.reserve(8);
                        break;
                    }
                    if (line.empty()) {
                        Step s = end_of_head();
                        if (s != Step::more) return s;
                        break;
                    }
                    // RFC 9112 §5.2: obsolete line folding is replaced by a space.
                    if (line.front() == ' ' || line.front() == '\t') {
                        if (!field_open_) return fail(TransportFailure::other, "the answer has a malformed header");
                        if (keep_fields()) {
                            field_value_ += ' ';
                            field_value_ += trim(line);
                        }
                        break;
                    }
                    // RFC 9112 §5.1: no whitespace is allowed between the field name and the colon.
                    size_t colon = line.find(':');
                    if (colon == 0 || colon == std::string_view::npos ||
                        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
                        return fail(TransportFailure::other, "the answer has a malformed header");
                    }
                    end_field();
                    field_open_ = true;
                    if (keep_fields()) {
                        field_name_.assign(line.substr(0, colon));
                        field_value_.assign(trim(line.substr(colon + 1)));
                    }
                    break;
                }
                case Phase::length:
                case Phase::chunk_data: {
                    size_t avail = buf_.size() - pos_;
                    if (avail == 0) return Step::more;
                    size_t n = static_cast<size_t>(std::min<uint64_t>(avail, remaining_));
                    if (!take_body(n)) return too_large();
                    remaining_ -= n;
                    if (remaining_ > 0) return Step::more;
                    if (phase_ == Phase::length) return finish();
                    phase_ = Phase::chunk_crlf;
                    break;
                }
                case Phase::chunk_size: {
                    // RFC 9112 §7.1: chunk-size [ chunk-ext ] CRLF; extensions are ignored.
                    if (!next_line(line)) {
                        if (buf_.size() - pos_ > kMaxChunkLine) return bad_chunk();
                        return Step::more;
                    }
                    line = trim(line.substr(0, line.find(';')));
                    if (line.empty() || line.size() > 15) return bad_chunk();
                    uint64_t size = 0;
                    for (char c : line) {
                        int d = (c >= '0' && c <= '9')   ? c - '0'
                                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                         : -1;
                        if (d < 0) return bad_chunk();
                        size = size * 16 + static_cast<uint64_t>(d);
                    }
                    if (size == 0) {
                        phase_ = Phase::trailers;
                        head_bytes_ = 0;
                        break;
                    }
                    if (body_.size() + size > max_body_) return too_large();
                    remaining_ = size;
                    phase_ = Phase::chunk_data;
                    break;
                }
                case Phase::chunk_crlf:
                    if (!next_line(line)) {
                        if (buf_.size() - pos_ > 2) return bad_chunk();
                        return Step::more;
                    }
                    if (!line.empty()) return bad_chunk();
                    phase_ = Phase::chunk_size;
                    break;
                case Phase::trailers:
                    // RFC 9112 §7.1.2: trailer fields may be discarded; the section ends with an empty line.
                    if (!next_line(line)) {
                        if (head_bytes_ + (buf_.size() - pos_) > kMaxHead) return head_too_large();
                        return Step::more;
                    }
                    head_bytes_ += line.size() + 2;
                    if (head_bytes_ > kMaxHead) return head_too_large();
                    if (line.empty()) return finish();
                    break;
                case Phase::until_close: {
                    size_t avail = buf_.size() - pos_;
                    if (!take_body(avail)) return too_large();
                    return Step::more;
                }
                case Phase::done:
                    return Step::done;
                case Phase::failed:
                    return Step::failed;
            }
        }
    }

    // RFC 9110 §15.2: an interim (1xx) answer's fields describe that answer only: they are checked, not kept.
    bool keep_fields() const { return status_ >= 200; }

    // The field read last is complete once the next line is not its continuation (obs-fold).
    void end_field() {
        if (field_open_ && keep_fields()) headers_.add(std::move(field_name_), std::move(field_value_));
        field_open_ = false;
    }

    Step head_too_large() { return fail(TransportFailure::other, "the answer's header section is larger than 64 KiB"); }
    Step bad_chunk() { return fail(TransportFailure::other, "the answer's chunked encoding is malformed"); }

    bool head_request_ = false;
    size_t max_body_ = 0;
    std::string buf_;
    size_t pos_ = 0;
    Phase phase_ = Phase::head;
    bool received_ = false;
    bool status_seen_ = false;
    bool http10_ = false;
    bool keep_alive_ = false;
    int status_ = 0;
    size_t head_bytes_ = 0;
    uint64_t remaining_ = 0;
    bool field_open_ = false;   // a field line was read; obs-fold lines may still extend its value
    std::string field_name_;
    std::string field_value_;
    Headers headers_;
    std::string body_;
    TransportFailure failure_ = TransportFailure::other;
    std::string detail_;
};

struct Target {
    std::string host;     // without brackets
    int port = 0;
    bool tls = false;
    bool ip = false;      // an IP literal: no DNS, no SNI, the certificate must name the address
    std::string origin;   // "https://host:port", IPv6 bracketed: the pool key and the name in messages
};

struct Exchange {
    std::shared_ptr<const Target> target;   // shared with the origin cache (Impl::origins)
    std::string method;
    std::string head;   // request line + header section (and, for TLS, the body too: one record when it fits)
    std::string body;
    size_t written = 0;
    AsyncUpstream::Done done;
    Clock::time_point started;
    bool clock_started = false;
    bool retried = false;
    Addresses addresses;
    size_t next_address = 0;
};

struct Conn;

// getaddrinfo() blocks: it runs on a worker thread that hands the answer back with EventLoop::post(). The worker owns
// `shared` with the Impl; after the Impl is gone (stop set under the mutex) it never touches the loop again.
struct ResolverShared {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::string> jobs;   // host names to look up
    bool stop = false;
};

}  // namespace

struct AsyncUpstream::Impl {
    Impl(EventLoop& l, UpstreamOptions o) : loop(l), options(std::move(o)), alive(std::make_shared<char>(0)) {
        origins.reserve(kMaxOrigins);
        spare.reserve(kSpareExchanges);
    }
    ~Impl();

    void send(const HttpRequest& request, Done done);
    struct Origin;
    const Origin* origin_of(std::string_view url);
    std::unique_ptr<Exchange> new_exchange();
    void recycle(std::unique_ptr<Exchange> ex);
    void start(std::unique_ptr<Exchange> ex);
    void connect_fresh(std::unique_ptr<Exchange> ex);
    void connect_next(std::unique_ptr<Exchange> ex);
    void on_resolved(const std::string& host, Addresses addresses, const std::string& problem);
    void on_io(Conn* c, uint32_t events);
    void on_timer(Conn* c);
    void connect_done(Conn* c, int error);
    void connected(Conn* c);
    void handshake(Conn* c);
    void begin_exchange(Conn* c, std::unique_ptr<Exchange> ex);
    void write_some(Conn* c);
    void read_some(Conn* c);
    void answer_complete(Conn* c);
    void broke(Conn* c, TransportFailure kind, const std::string& detail);
    void fail(std::unique_ptr<Exchange> ex, TransportFailure kind, const std::string& detail);
    void deliver(Done done, Result<HttpResponse> outcome, double seconds);
    void watch(Conn* c, uint32_t events);
    void arm(Conn* c, int64_t ms);
    void timer_fired(Conn* c);
    void close(Conn* c);
    bool still_open(Conn* c);
    SSL_CTX* tls_context();
    void ensure_resolver();

    EventLoop& loop;
    UpstreamOptions options;
    std::shared_ptr<char> alive;   // posted callbacks hold a weak_ptr: they do nothing once the Impl is gone
    int in_send = 0;
    SSL_CTX* ctx = nullptr;
    std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
    std::map<std::string, std::vector<Conn*>> idle;   // origin -> pooled connections, most recent last
    // max_conns_per_origin: connections per origin (any state), and the exchanges waiting for one of them. A burst
    // of 500 calls then shares a bounded set of connections (keep-alive, one exchange after the other) instead of
    // opening 500 connections and TLS handshakes at once.
    std::map<std::string, size_t> open_per_origin;
    std::map<std::string, std::deque<std::unique_ptr<Exchange>>> queued;
    bool destroying = false;
    void release_slot(const std::string& origin);
    struct Cached {
        Addresses addresses;
        Clock::time_point expires;
    };
    std::map<std::string, Cached> dns_cache;
    std::map<std::string, std::vector<std::unique_ptr<Exchange>>> resolving;   // host -> exchanges waiting for it
    std::shared_ptr<ResolverShared> resolver;
    // The origins of recent URLs (a relay talks to a few providers), so that a URL's scheme and authority are parsed
    // once per origin rather than once per call.
    struct Origin {
        std::string prefix;   // the URL up to the end of its authority, byte for byte: "https://api.example.com:8443"
        std::shared_ptr<const Target> target;
        std::string host_field;   // RFC 9112 §3.2: the Host header's value, the port only when it is not the default
    };
    std::vector<Origin> origins;   // oldest first
    // Finished exchanges, kept with the room of their request buffers for the next send().
    std::vector<std::unique_ptr<Exchange>> spare;
};

namespace {

struct Conn final : EventLoop::Handler {
    enum class State { connecting, handshaking, writing, reading, idle };

    Conn(AsyncUpstream::Impl* o, int f) : owner(o), fd(f) {}
    void on_io(uint32_t events) override { owner->on_io(this, events); }

    AsyncUpstream::Impl* owner;
    int fd;
    SSL* ssl = nullptr;
    State state = State::connecting;
    std::string origin;
    std::unique_ptr<Exchange> ex;
    ResponseParser parser;   // the current exchange's answer; its read buffer serves every answer on the connection
    bool reused = false;   // the current exchange runs on a connection that already carried one
    EventLoop::TimerId timer = 0;
    Clock::time_point timer_at;   // when `timer` fires
    Clock::time_point deadline;   // when the current wait times out (progress moves it; the timer catches up)
    uint32_t events = 0;
};

}  // namespace

AsyncUpstream::Impl::~Impl() {
    destroying = true;
    if (resolver) {
        std::lock_guard<std::mutex> lock(resolver->mutex);
        resolver->stop = true;
        resolver->cv.notify_all();
    }
    while (!conns.empty()) close(conns.begin()->first);
    if (ctx != nullptr) SSL_CTX_free(ctx);
}

void AsyncUpstream::Impl::ensure_resolver() {
    if (resolver) return;
    resolver = std::make_shared<ResolverShared>();
    std::weak_ptr<char> token = alive;
    Impl* self = this;
    EventLoop* l = &loop;
    // Detached: a lookup stuck in the system resolver must not hold up the destructor.
    std::thread([shared = resolver, token, self, l] {
        for (;;) {
            std::string job;
            {
                std::unique_lock<std::mutex> lock(shared->mutex);
                shared->cv.wait(lock, [&] { return shared->stop || !shared->jobs.empty(); });
                if (shared->stop) return;
                job = std::move(shared->jobs.front());
                shared->jobs.pop_front();
            }
            addrinfo hints{};
            hints.ai_family = AF_UNSPEC;
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_protocol = IPPROTO_TCP;
            addrinfo* list = nullptr;
            int rc = ::getaddrinfo(job.c_str(), nullptr, &hints, &list);
            Addresses found;
            std::string problem;
            if (rc != 0) {
                problem = ::gai_strerror(rc);
            } else {
                for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
                    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(sockaddr_storage)) {
                        continue;
                    }
                    Address a;
                    std::memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
                    a.len = static_cast<socklen_t>(ai->ai_addrlen);
                    found.push_back(a);
                }
                ::freeaddrinfo(list);
                if (found.empty()) problem = "no IPv4 or IPv6 address";
            }
            std::lock_guard<std::mutex> lock(shared->mutex);
            if (shared->stop) return;
            l->post([token, self, host = job, found = std::move(found), problem]() mutable {
                if (token.expired()) return;
                self->on_resolved(host, std::move(found), problem);
            });
        }
    }).detach();
}

SSL_CTX* AsyncUpstream::Impl::tls_context() {
    if (ctx != nullptr) return ctx;
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c == nullptr) return nullptr;
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_default_verify_paths(c);
    // A missing or unreadable ca_file is not fatal here: verification then fails with the hint naming ca_file.
    if (!options.ca_file.empty()) X509_STORE_load_file(SSL_CTX_get_cert_store(c), options.ca_file.c_str());
    ERR_clear_error();
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    // SSL_write is retried with the same bytes, but the std::string may have moved in between.
    SSL_CTX_set_mode(c, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    ctx = c;
    return ctx;
}

void AsyncUpstream::Impl::deliver(Done done, Result<HttpResponse> outcome, double seconds) {
    if (!done) return;
    if (in_send > 0) {
        std::weak_ptr<char> token = alive;
        loop.post([token, done = std::move(done), outcome = std::move(outcome), seconds]() mutable {
            if (token.expired()) return;
            try {
                done(std::move(outcome), seconds);
            } catch (...) {
            }
        });
        return;
    }
    try {
        done(std::move(outcome), seconds);
    } catch (...) {
    }
}

void AsyncUpstream::Impl::fail(std::unique_ptr<Exchange> ex, TransportFailure kind, const std::string& detail) {
    double seconds = ex->clock_started ? std::chrono::duration<double>(loop.now() - ex->started).count() : 0.0;
    deliver(std::move(ex->done),
            transport_failure(kind, ex->target->origin, detail, options.read_timeout_ms, options.ca_file), seconds);
}

void AsyncUpstream::Impl::send(const HttpRequest& request, Done done) {
    ++in_send;
    struct Guard {
        int& n;
        ~Guard() { --n; }
    } guard{in_send};
    try {
        const Origin* origin = origin_of(request.url);
        if (origin == nullptr) {
            deliver(std::move(done),
                    make_error("upstream.bad_url", "The upstream URL is not a valid http(s) URL.",
                               "Check the provider's URLs (api_base, token_url) in the config."),
                    0.0);
            return;
        }
        auto ex = new_exchange();
        ex->done = std::move(done);
        ex->method = request.method;
        ex->target = origin->target;
        const bool tls = origin->target->tls;

        // RFC 9112 §3: request-line = method SP request-target SP HTTP-version; the origin-form target is the path
        // ("/" when empty) and the query, without the fragment (RFC 9112 §3.2.1). §3.2: Host is required.
        std::string_view rest = std::string_view(request.url).substr(origin->prefix.size());
        rest = rest.substr(0, rest.find('#'));
        size_t q = rest.find('?');
        std::string_view path = rest.substr(0, q);
        std::string& h = ex->head;
        h.reserve(256);
        h += request.method;
        h += ' ';
        h += path.empty() ? std::string_view("/") : path;
        if (q != std::string_view::npos && q + 1 < rest.size()) {
            h += '?';
            h += rest.substr(q + 1);
        }
        h += " HTTP/1.1\r\nHost: ";
        h += origin->host_field;
        h += "\r\n";
        for (const auto& [name, value] : request.headers.items()) {
            if (iequals(name, "Content-Length") || iequals(name, "Host")) continue;
            // A line break inside a field would split the request (RFC 9110 §5.5): never sent.
            if (has_line_break(name) || name.find(':') != std::string::npos || has_line_break(value) ||
                name.empty()) {
                fail(std::move(ex), TransportFailure::other, "the request header " + name + " contains a line break");
                return;
            }
            h += name;
            h += ": ";
            h += value;
            h += "\r\n";
        }
        // RFC 9112 §6.2: a request with content says how long it is; POST, PUT and PATCH always do (an empty body is
        // Content-Length: 0), as cpp-httplib does for Upstream.
        const std::string& m = request.method;
        if (!request.body.empty() || m == "POST" || m == "PUT" || m == "PATCH") {
            h += "Content-Length: ";
            append_decimal(h, request.body.size());
            h += "\r\n";
            if (!request.body.empty() && !request.headers.has("Content-Type")) {
                h += "Content-Type: application/octet-stream\r\n";
            }
        }
        h += "\r\n";
        if (tls) {
            h += request.body;
        } else {
            ex->body = request.body;
        }
        start(std::move(ex));
    } catch (...) {
        // Only allocation can throw here; the exchange (and its done) may be gone with it.
    }
}

const AsyncUpstream::Impl::Origin* AsyncUpstream::Impl::origin_of(std::string_view url) {
    std::string_view prefix = origin_prefix(url);
    if (!prefix.empty() && !has_space_or_control(url.substr(prefix.size()))) {
        for (const Origin& o : origins) {
            if (o.prefix == prefix) return &o;
        }
    }
    auto url_parts = parse_url(url);
    if (!url_parts) return nullptr;
    // RFC 3986 §3.2.2: an IPv6 literal is connected to without its brackets, and keeps them in Host and the origin.
    auto endpoint = endpoint_of(*url_parts);
    if (!endpoint) return nullptr;
    auto t = std::make_shared<Target>();
    t->host = std::move(endpoint->host);
    t->port = endpoint->port;
    t->tls = endpoint->tls;
    t->ip = endpoint->ip;
    t->origin = std::move(endpoint->origin);
    Origin o;
    o.prefix = std::string(prefix);
    o.host_field = std::move(endpoint->host_field);
    o.target = std::move(t);
    if (origins.size() >= kMaxOrigins) origins.erase(origins.begin());
    origins.push_back(std::move(o));
    return &origins.back();
}

std::unique_ptr<Exchange> AsyncUpstream::Impl::new_exchange() {
    if (spare.empty()) return std::make_unique<Exchange>();
    auto ex = std::move(spare.back());
    spare.pop_back();
    return ex;
}

void AsyncUpstream::Impl::recycle(std::unique_ptr<Exchange> ex) {
    if (spare.size() >= kSpareExchanges || ex->head.capacity() > kKeepCapacity || ex->body.capacity() > kKeepCapacity) {
        return;
    }
    std::string head = std::move(ex->head);
    std::string body = std::move(ex->body);
    *ex = Exchange{};
    head.clear();
    body.clear();
    ex->head = std::move(head);
    ex->body = std::move(body);
    spare.push_back(std::move(ex));
}

bool AsyncUpstream::Impl::still_open(Conn* c) {
    // An idle connection is watched for EPOLLIN|EPOLLRDHUP, so a close the server made while it sat in the pool has
    // already dropped it; no extra syscall per request. A close that crosses the new request is the retry-once case
    // (broke()). TLS: bytes OpenSSL already holds (a late session ticket) are not an answer to this request.
    return c->ssl == nullptr || SSL_pending(c->ssl) == 0;
}

void AsyncUpstream::Impl::start(std::unique_ptr<Exchange> ex) {
    auto it = idle.find(ex->target->origin);
    while (it != idle.end() && !it->second.empty()) {
        Conn* c = it->second.back();
        it->second.pop_back();   // an emptied pool keeps its entry: the connection comes back to it after the answer
        if (!still_open(c)) {
            close(c);
            it = idle.find(ex->target->origin);
            continue;
        }
        c->reused = true;
        if (!ex->clock_started) {
            ex->started = loop.now();
            ex->clock_started = true;
        }
        begin_exchange(c, std::move(ex));
        return;
    }
    if (options.max_conns_per_origin > 0) {
        auto open = open_per_origin.find(ex->target->origin);
        if (open != open_per_origin.end() && open->second >= options.max_conns_per_origin) {
            const std::string origin = ex->target->origin;
            queued[origin].push_back(std::move(ex));   // the next connection that frees up takes it
            return;
        }
    }
    connect_fresh(std::move(ex));
}

// A connection of `origin` closed: a waiting exchange may open another (after the current event, not inside it).
void AsyncUpstream::Impl::release_slot(const std::string& origin) {
    auto open = open_per_origin.find(origin);
    if (open != open_per_origin.end() && --open->second == 0) open_per_origin.erase(open);
    if (destroying) return;
    auto q = queued.find(origin);
    if (q == queued.end() || q->second.empty()) return;
    std::weak_ptr<char> token = alive;
    loop.add_timer(Clock::now(), [this, token, origin] {
        if (token.expired()) return;
        auto waiting = queued.find(origin);
        if (waiting == queued.end() || waiting->second.empty()) return;
        auto next = std::move(waiting->second.front());
        waiting->second.pop_front();
        if (waiting->second.empty()) queued.erase(waiting);
        start(std::move(next));
    });
}

void AsyncUpstream::Impl::connect_fresh(std::unique_ptr<Exchange> ex) {
    ex->next_address = 0;
    if (auto a = ip_literal(ex->target->host, ex->target->port)) {
        ex->addresses = {*a};
        connect_next(std::move(ex));
        return;
    }
    std::string host = ex->target->host;
    auto cached = dns_cache.find(host);
    if (cached != dns_cache.end()) {
        if (cached->second.expires > Clock::now()) {
            ex->addresses = cached->second.addresses;
            for (auto& a : ex->addresses) set_port(a, ex->target->port);
            connect_next(std::move(ex));
            return;
        }
        dns_cache.erase(cached);
    }
    auto& waiting = resolving[host];
    waiting.push_back(std::move(ex));
    if (waiting.size() > 1) return;   // a lookup for this host is already running
    ensure_resolver();
    std::lock_guard<std::mutex> lock(resolver->mutex);
    resolver->jobs.push_back(host);
    resolver->cv.notify_one();
}

void AsyncUpstream::Impl::on_resolved(const std::string& host, Addresses addresses, const std::string& problem) {
    auto node = resolving.extract(host);
    if (node.empty()) return;
    if (problem.empty()) dns_cache[host] = Cached{addresses, Clock::now() + kDnsTtl};
    std::weak_ptr<char> token = alive;
    for (auto& ex : node.mapped()) {
        if (token.expired()) return;   // a done callback destroyed the AsyncUpstream
        if (!problem.empty()) {
            fail(std::move(ex), TransportFailure::unreachable, "cannot resolve " + host + ": " + problem);
            continue;
        }
        ex->addresses = addresses;
        for (auto& a : ex->addresses) set_port(a, ex->target->port);
        connect_next(std::move(ex));
    }
}

void AsyncUpstream::Impl::connect_next(std::unique_ptr<Exchange> ex) {
    // An exchange's time is measured on the loop's clock, read once per wake-up: from the wake-up that sent it to the
    // one that saw its answer (the upstream latency metric counts in milliseconds).
    if (!ex->clock_started) {
        ex->started = loop.now();
        ex->clock_started = true;
    }
    std::string last_problem = "no address";
    while (ex->next_address < ex->addresses.size()) {
        const Address& a = ex->addresses[ex->next_address++];
        int fd = ::socket(a.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_problem = std::strerror(errno);
            continue;
        }
        // Nagle + delayed ACK would hold a small request back for ~40 ms.
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len);
        if (rc != 0 && errno != EINPROGRESS) {
            last_problem = std::strerror(errno);
            ::close(fd);
            continue;
        }
        auto owned = std::make_unique<Conn>(this, fd);
        Conn* c = owned.get();
        c->origin = ex->target->origin;
        c->ex = std::move(ex);
        conns.emplace(c, std::move(owned));
        ++open_per_origin[c->origin];
        if (!loop.add(fd, 0, c)) {
            ex = std::move(c->ex);
            last_problem = "cannot watch the socket";
            close(c);
            continue;
        }
        if (rc == 0) {
            connected(c);
        } else {
            watch(c, EPOLLOUT);
            arm(c, options.connect_timeout_ms);
        }
        return;
    }
    fail(std::move(ex), TransportFailure::unreachable, last_problem);
}

void AsyncUpstream::Impl::watch(Conn* c, uint32_t events) {
    if (c->events == events) return;
    c->events = events;
    loop.modify(c->fd, events, c);
}

// Every bit of progress moves the deadline; the loop's timer is only re-set when it would fire too late, and a timer
// that fires before the deadline sets itself again for it. So a busy connection costs no timer operation per read.
void AsyncUpstream::Impl::arm(Conn* c, int64_t ms) {
    // From the loop's time of this wake-up (read once per wake-up): a deadline of seconds needs no fresher clock.
    c->deadline = loop.now() + std::chrono::milliseconds(ms);
    if (c->timer != 0 && c->timer_at <= c->deadline) return;
    if (c->timer != 0) loop.cancel_timer(c->timer);
    c->timer_at = c->deadline;
    c->timer = loop.add_timer(c->timer_at, [this, c] { timer_fired(c); });
}

void AsyncUpstream::Impl::timer_fired(Conn* c) {
    c->timer = 0;
    if (c->state == Conn::State::idle) return;   // the exchange ended; the deadline is from then
    if (Clock::now() < c->deadline) {
        c->timer_at = c->deadline;
        c->timer = loop.add_timer(c->timer_at, [this, c] { timer_fired(c); });
        return;
    }
    on_timer(c);
}

void AsyncUpstream::Impl::close(Conn* c) {
    auto it = conns.find(c);
    if (it == conns.end()) return;
    if (c->timer != 0) loop.cancel_timer(c->timer);
    c->timer = 0;
    if (c->state == Conn::State::idle) {
        auto pool = idle.find(c->origin);
        if (pool != idle.end()) {
            auto& v = pool->second;
            v.erase(std::remove(v.begin(), v.end(), c), v.end());
            if (v.empty()) idle.erase(pool);
        }
    }
    loop.remove(c->fd);
    if (c->ssl != nullptr) SSL_free(c->ssl);
    c->ssl = nullptr;
    ::close(c->fd);
    c->fd = -1;
    c->ex.reset();
    std::unique_ptr<EventLoop::Handler> handler = std::move(it->second);
    conns.erase(it);
    const std::string origin = c->origin;
    loop.retire(std::move(handler));
    release_slot(origin);
}

void AsyncUpstream::Impl::on_timer(Conn* c) {
    switch (c->state) {
        case Conn::State::connecting:
            connect_done(c, ETIMEDOUT);
            return;
        case Conn::State::idle:
            return;
        default: {
            auto ex = std::move(c->ex);
            close(c);
            fail(std::move(ex), TransportFailure::timeout, "");
            return;
        }
    }
}

void AsyncUpstream::Impl::on_io(Conn* c, uint32_t events) {
    switch (c->state) {
        case Conn::State::connecting: {
            int error = 0;
            socklen_t len = sizeof error;
            if (::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
            if (error == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) error = ECONNREFUSED;
            connect_done(c, error);
            return;
        }
        case Conn::State::handshaking:
            handshake(c);
            return;
        case Conn::State::writing:
            write_some(c);
            return;
        case Conn::State::reading:
            read_some(c);
            return;
        case Conn::State::idle:
            // RFC 9112 §9.6: a server may close an idle connection at any time; anything else arriving unasked makes
            // the connection unusable too.
            close(c);
            return;
    }
}

void AsyncUpstream::Impl::connect_done(Conn* c, int error) {
    if (error == 0) {
        connected(c);
        return;
    }
    auto ex = std::move(c->ex);
    close(c);
    if (ex->next_address < ex->addresses.size()) {
        connect_next(std::move(ex));
        return;
    }
    fail(std::move(ex), TransportFailure::unreachable, std::strerror(error));
}

void AsyncUpstream::Impl::connected(Conn* c) {
    if (!c->ex->target->tls) {
        begin_exchange(c, std::move(c->ex));
        return;
    }
    const Target& t = *c->ex->target;
    SSL_CTX* context = tls_context();
    SSL* ssl = context != nullptr ? SSL_new(context) : nullptr;
    if (ssl == nullptr) {
        auto ex = std::move(c->ex);
        close(c);
        fail(std::move(ex), TransportFailure::tls, "cannot set up TLS: " + openssl_reason());
        return;
    }
    c->ssl = ssl;
    SSL_set_fd(ssl, c->fd);
    // RFC 6066 §3: SNI carries host names only; RFC 6125: the certificate must name the host (or the IP address).
    if (t.ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t.host.c_str());
    } else {
        SSL_set_tlsext_host_name(ssl, t.host.c_str());
        SSL_set1_host(ssl, t.host.c_str());
    }
    SSL_set_connect_state(ssl);
    c->state = Conn::State::handshaking;
    arm(c, options.read_timeout_ms);
    handshake(c);
}

void AsyncUpstream::Impl::handshake(Conn* c) {
    ERR_clear_error();
    int rc = SSL_connect(c->ssl);
    if (rc == 1) {
        begin_exchange(c, std::move(c->ex));
        return;
    }
    int err = SSL_get_error(c->ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
        watch(c, EPOLLIN);
        return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        watch(c, EPOLLOUT);
        return;
    }
    long verify = SSL_get_verify_result(c->ssl);
    std::string detail = verify != X509_V_OK
                             ? std::string("certificate verification failed (") +
                                   X509_verify_cert_error_string(verify) + ")"
                             : "handshake failed (" + openssl_reason() + ")";
    ERR_clear_error();
    auto ex = std::move(c->ex);
    close(c);
    fail(std::move(ex), TransportFailure::tls, detail);
}

void AsyncUpstream::Impl::begin_exchange(Conn* c, std::unique_ptr<Exchange> ex) {
    ex->written = 0;
    c->parser.reset(ex->method == "HEAD", options.max_body);
    c->ex = std::move(ex);
    c->state = Conn::State::writing;
    arm(c, options.read_timeout_ms);
    write_some(c);
}

void AsyncUpstream::Impl::write_some(Conn* c) {
    Exchange& ex = *c->ex;
    const size_t total = ex.head.size() + ex.body.size();
    bool progress = false;
    while (ex.written < total) {
        ssize_t n;
        if (c->ssl != nullptr) {
            ERR_clear_error();
            int rc = SSL_write(c->ssl, ex.head.data() + ex.written, static_cast<int>(ex.head.size() - ex.written));
            if (rc <= 0) {
                int err = SSL_get_error(c->ssl, rc);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                    watch(c, err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
                    if (progress) arm(c, options.read_timeout_ms);
                    return;
                }
                ERR_clear_error();
                broke(c, TransportFailure::reset_writing, "");
                return;
            }
            n = rc;
        } else {
            // Head and body leave in one system call (one segment when they fit).
            iovec iov[2];
            int count = 0;
            if (ex.written < ex.head.size()) {
                iov[count++] = {const_cast<char*>(ex.head.data()) + ex.written, ex.head.size() - ex.written};
                if (!ex.body.empty()) iov[count++] = {const_cast<char*>(ex.body.data()), ex.body.size()};
            } else {
                size_t off = ex.written - ex.head.size();
                iov[count++] = {const_cast<char*>(ex.body.data()) + off, ex.body.size() - off};
            }
            if (count == 1) {
                n = ::send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);   // no iovec to copy in
            } else {
                msghdr msg{};
                msg.msg_iov = iov;
                msg.msg_iovlen = static_cast<size_t>(count);
                n = ::sendmsg(c->fd, &msg, MSG_NOSIGNAL);
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    watch(c, EPOLLOUT);
                    if (progress) arm(c, options.read_timeout_ms);
                    return;
                }
                broke(c, TransportFailure::reset_writing, "");
                return;
            }
        }
        ex.written += static_cast<size_t>(n);
        progress = true;
    }
    c->state = Conn::State::reading;
    watch(c, EPOLLIN | EPOLLRDHUP);
    arm(c, options.read_timeout_ms);
}

void AsyncUpstream::Impl::read_some(Conn* c) {
    char buf[16384];
    bool progress = false;
    bool want_write = false;
    for (;;) {
        ssize_t n;
        bool eof = false;
        if (c->ssl != nullptr) {
            // OpenSSL may hold decrypted records epoll cannot see: read until it asks for more from the socket.
            ERR_clear_error();
            int rc = SSL_read(c->ssl, buf, sizeof buf);
            if (rc > 0) {
                n = rc;
            } else {
                int err = SSL_get_error(c->ssl, rc);
                if (err == SSL_ERROR_WANT_READ) break;
                if (err == SSL_ERROR_WANT_WRITE) {
                    want_write = true;
                    break;
                }
                ERR_clear_error();
                // A clean close_notify, or (common in practice) a TCP close without one.
                n = 0;
                eof = true;
            }
        } else {
            n = ::recv(c->fd, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                n = 0;   // ECONNRESET and friends: the answer is cut like by a close
            }
            eof = n == 0;
        }
        ResponseParser& p = c->parser;
        if (eof) {
            if (!p.received()) {
                broke(c, TransportFailure::reset_reading, "");
                return;
            }
            if (p.eof() == ResponseParser::Step::done) {
                answer_complete(c);
                return;
            }
            TransportFailure kind = p.failure();
            std::string detail = p.detail();
            auto ex = std::move(c->ex);
            close(c);
            fail(std::move(ex), kind, detail);
            return;
        }
        progress = true;
        auto step = p.feed(buf, static_cast<size_t>(n));
        if (step == ResponseParser::Step::done) {
            answer_complete(c);
            return;
        }
        if (step == ResponseParser::Step::failed) {
            TransportFailure kind = p.failure();
            std::string detail = p.detail();
            auto ex = std::move(c->ex);
            close(c);
            fail(std::move(ex), kind, detail);
            return;
        }
    }
    watch(c, want_write ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
    if (progress) arm(c, options.read_timeout_ms);
}

// The connection failed before or while the answer came. RFC 9112 §9.3.1: a request on a reused connection may
// meet the server's close of that idle connection; an idempotent one is sent again once, on a new connection.
void AsyncUpstream::Impl::broke(Conn* c, TransportFailure kind, const std::string& detail) {
    auto ex = std::move(c->ex);
    bool retry = c->reused && !ex->retried && !c->parser.received() && is_idempotent(ex->method);
    close(c);
    if (retry) {
        ex->retried = true;
        connect_fresh(std::move(ex));
        return;
    }
    fail(std::move(ex), kind, detail);
}

void AsyncUpstream::Impl::answer_complete(Conn* c) {
    auto ex = std::move(c->ex);   // the pending timer stays: it finds the connection idle (or moved on) and goes
    bool keep = c->parser.keep_alive();
    HttpResponse response = c->parser.take();
    Done done = std::move(ex->done);
    const Clock::time_point started = ex->started;
    recycle(std::move(ex));
    auto waiting = queued.find(c->origin);
    if (keep && waiting != queued.end() && !waiting->second.empty()) {
        // A call is waiting for a connection to this origin: this one carries it next.
        auto next = std::move(waiting->second.front());
        waiting->second.pop_front();
        if (waiting->second.empty()) queued.erase(waiting);
        c->reused = true;
        if (!next->clock_started) {
            next->started = loop.now();
            next->clock_started = true;
        }
        begin_exchange(c, std::move(next));
        double seconds = std::chrono::duration<double>(loop.now() - started).count();
        deliver(std::move(done), std::move(response), seconds);
        return;
    }
    auto& pool = idle[c->origin];
    if (keep && pool.size() < options.max_idle_per_origin) {
        c->state = Conn::State::idle;
        c->reused = false;
        watch(c, EPOLLIN | EPOLLRDHUP);
        pool.push_back(c);
    } else {
        if (pool.empty()) idle.erase(c->origin);
        close(c);
    }
    double seconds = std::chrono::duration<double>(loop.now() - started).count();
    deliver(std::move(done), std::move(response), seconds);
}

AsyncUpstream::AsyncUpstream(EventLoop& loop, UpstreamOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

AsyncUpstream::~AsyncUpstream() = default;

void AsyncUpstream::send(const HttpRequest& request, Done done) { impl_->send(request, std::move(done)); }

size_t AsyncUpstream::idle_connections() const {
    size_t n = 0;
    for (const auto& [origin, list] : impl_->idle) n += list.size();
    return n;
}

}  // namespace keyrelay::relay
