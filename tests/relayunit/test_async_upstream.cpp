// AsyncUpstream against real sockets on 127.0.0.1 (and ::1 for IPv6 literals, when the machine has it): a cpp-httplib
// server for ordinary answers, small scripted raw servers for the edge cases of RFC 9112 framing and persistence, and
// an httplib::SSLServer with a throwaway self-signed certificate for TLS.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "async_upstream.h"
#include "event_loop.h"
#include "temp_dir.h"
#include "upstream.h"

using namespace keyrelay;
using namespace keyrelay::relay;
using namespace std::chrono_literals;

namespace {

struct Outcome {
    Result<HttpResponse> result;
    double seconds = 0;
    bool inside_send = false;   // done ran before send() returned
};

// An EventLoop on its own thread with one AsyncUpstream, used only from that thread.
class Harness {
public:
    explicit Harness(UpstreamOptions options = {}) {
        std::signal(SIGPIPE, SIG_IGN);   // as the relay's main() does: a peer's close must not kill the process
        up_ = std::make_unique<AsyncUpstream>(loop_, std::move(options));
        thread_ = std::thread([this] { loop_.run(); });
    }
    ~Harness() {
        loop_.stop();
        thread_.join();
        up_.reset();
    }

    template <class F>
    auto on_loop(F f) -> decltype(f()) {
        auto p = std::make_shared<std::promise<decltype(f())>>();
        auto fut = p->get_future();
        loop_.post([p, f] { p->set_value(f()); });
        return fut.get();
    }

    Outcome send(HttpRequest request) {
        auto p = std::make_shared<std::promise<Outcome>>();
        auto fut = p->get_future();
        loop_.post([this, p, request] {
            auto inside = std::make_shared<bool>(true);
            up_->send(request, [p, inside](Result<HttpResponse> r, double s) {
                p->set_value(Outcome{std::move(r), s, *inside});
            });
            *inside = false;
        });
        REQUIRE(fut.wait_for(15s) == std::future_status::ready);
        return fut.get();
    }

    size_t idle() {
        return on_loop([this] { return up_->idle_connections(); });
    }

    bool wait_idle(size_t n) {
        for (int i = 0; i < 200; ++i) {
            if (idle() == n) return true;
            std::this_thread::sleep_for(10ms);
        }
        return false;
    }

    EventLoop& loop() { return loop_; }
    std::unique_ptr<AsyncUpstream>& upstream() { return up_; }

private:
    EventLoop loop_;
    std::unique_ptr<AsyncUpstream> up_;
    std::thread thread_;
};

HttpRequest get(const std::string& url) { return HttpRequest{"GET", url, {}, {}}; }

// A cpp-httplib server on 127.0.0.1 (or `address`), port chosen by the system.
template <class Server>
class Running {
public:
    template <class... Args>
    explicit Running(Args&&... args) : server(std::forward<Args>(args)...) {}
    void start(const char* address = "127.0.0.1") {
        port = server.bind_to_any_port(address);
        REQUIRE(port > 0);
        thread_ = std::thread([this] { server.listen_after_bind(); });
        while (!server.is_running()) std::this_thread::sleep_for(1ms);
    }
    ~Running() {
        server.stop();
        if (thread_.joinable()) thread_.join();
    }
    Server server;
    int port = 0;

private:
    std::thread thread_;
};

bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) == 1;
}

// One request (head and Content-Length body) as bytes; empty when the client closed first.
std::string read_request(int fd) {
    std::string in;
    char buf[4096];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
        if (!wait_readable(fd, 5000)) return {};
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return {};
        in.append(buf, static_cast<size_t>(n));
        end = in.find("\r\n\r\n");
    }
    size_t length = 0;
    auto cl = in.find("Content-Length: ");
    if (cl != std::string::npos && cl < end) length = std::stoul(in.substr(cl + 16));
    while (in.size() < end + 4 + length) {
        if (!wait_readable(fd, 5000)) return {};
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return {};
        in.append(buf, static_cast<size_t>(n));
    }
    return in;
}

void write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<size_t>(n);
    }
}

// A loopback address with a port the system chose: 127.0.0.1, or ::1 when `ipv6`.
struct Loopback {
    explicit Loopback(bool ipv6) {
        if (ipv6) {
            auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_loopback;
            len = sizeof(sockaddr_in6);
        } else {
            auto* a = reinterpret_cast<sockaddr_in*>(&addr);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof(sockaddr_in);
        }
    }
    int family() const { return addr.ss_family; }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&addr); }
    int port() const {
        return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port
                                                : reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    }
    sockaddr_storage addr{};
    socklen_t len = 0;
};

// Whether this machine has an IPv6 loopback (::1) to listen on; some containers have none.
bool have_ipv6_loopback() {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    Loopback a(true);
    bool ok = ::bind(fd, a.get(), a.len) == 0;
    ::close(fd);
    return ok;
}

// A scripted HTTP server: each accepted connection is handed to `script(fd, n)` (n = 1 for the first accept) on the
// server's thread, then closed. It listens on 127.0.0.1, or on ::1 when `ipv6`.
class RawServer {
public:
    using Script = std::function<void(int fd, int n)>;
    explicit RawServer(Script script, bool ipv6 = false) : script_(std::move(script)) {
        Loopback a(ipv6);
        fd_ = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        REQUIRE(::bind(fd_, a.get(), a.len) == 0);
        REQUIRE(::listen(fd_, 16) == 0);
        ::getsockname(fd_, a.get(), &a.len);
        port_ = a.port();
        thread_ = std::thread([this] {
            while (!stop_) {
                if (!wait_readable(fd_, 50)) continue;
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) continue;
                int n = ++accepts_;
                script_(c, n);
                ::close(c);
            }
        });
    }
    ~RawServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    int port() const { return port_; }
    int accepts() const { return accepts_; }
    std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

private:
    Script script_;
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepts_{0};
    std::thread thread_;
};

// A RawServer that keeps each connection for as many requests as the client sends, records every request and
// answers each with `answer`. One connection at a time: a second one waits until the first closes.
class Recorder {
public:
    explicit Recorder(std::string answer = "HTTP/1.1 204 No Content\r\n\r\n", bool ipv6 = false)
        : answer_(std::move(answer)),
          server_(
              [this](int fd, int) {
                  for (;;) {
                      std::string r = read_request(fd);
                      if (r.empty()) return;
                      {
                          std::lock_guard<std::mutex> lock(m_);
                          seen_.push_back(std::move(r));
                      }
                      write_all(fd, answer_);
                  }
              },
              ipv6) {}
    std::vector<std::string> requests() {
        std::lock_guard<std::mutex> lock(m_);
        return seen_;
    }
    std::string port() const { return std::to_string(server_.port()); }
    int accepts() const { return server_.accepts(); }

private:
    std::string answer_;
    std::mutex m_;
    std::vector<std::string> seen_;
    RawServer server_;   // last: its thread stops before the rest goes
};

// A port nothing listens on (on 127.0.0.1, or ::1 when `ipv6`): bound once, then released.
int closed_port(bool ipv6 = false) {
    Loopback a(ipv6);
    int fd = ::socket(a.family(), SOCK_STREAM, 0);
    ::bind(fd, a.get(), a.len);
    ::getsockname(fd, a.get(), &a.len);
    ::close(fd);
    return a.port();
}

// A throwaway self-signed certificate (P-256) naming `san` ("DNS:localhost"), written as PEM files.
void make_certificate(const std::string& san, const std::string& cert_path, const std::string& key_path) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("keyrelay test"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, san},
                              std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        REQUIRE(ext != nullptr);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
    BIO* out = BIO_new_file(cert_path.c_str(), "w");
    PEM_write_bio_X509(out, x);
    BIO_free(out);
    out = BIO_new_file(key_path.c_str(), "w");
    PEM_write_bio_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
    BIO_free(out);
    X509_free(x);
    EVP_PKEY_free(key);
}

}  // namespace

TEST_CASE("a GET with a Content-Length answer arrives whole, as Upstream::send receives it", "[async]") {
    Running<httplib::Server> srv;
    srv.server.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
        res.set_header("X-Answer", "42");
        res.set_content("hello world", "text/plain");
    });
    srv.start();
    std::string url = "http://127.0.0.1:" + std::to_string(srv.port) + "/hello";
    Harness h;
    auto out = h.send(get(url));
    REQUIRE(out.result.ok());
    CHECK_FALSE(out.inside_send);
    CHECK(out.result->status == 200);
    CHECK(out.result->body == "hello world");
    CHECK(out.result->headers.get("x-answer") == std::optional<std::string>("42"));
    CHECK(out.result->headers.get("Content-Type") == std::optional<std::string>("text/plain"));
    CHECK(out.seconds > 0);
    CHECK(out.seconds < 5);

    Upstream blocking(UpstreamOptions{});
    auto same = blocking.send(get(url));
    REQUIRE(same.ok());
    CHECK(same->status == out.result->status);
    CHECK(same->body == out.result->body);
}

TEST_CASE("a chunked answer is decoded, extensions and trailers dropped, even when it trickles in", "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        const std::string answer =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
            "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
        for (size_t i = 0; i < answer.size(); i += 7) {   // odd pieces: every parser state sees a cut
            write_all(fd, answer.substr(i, 7));
            std::this_thread::sleep_for(1ms);
        }
        read_request(fd);   // keep the connection until the client goes
    });
    Harness h;
    auto out = h.send(get(srv.url("/chunks")));
    REQUIRE(out.result.ok());
    CHECK(out.result->status == 200);
    CHECK(out.result->body == "hello world");
    CHECK_FALSE(out.result->headers.has("X-Trailer"));
    CHECK(h.idle() == 1);   // a complete chunked answer leaves the connection reusable
}

TEST_CASE("an answer without length runs until the server closes, and its connection is not reused", "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it");
        std::this_thread::sleep_for(20ms);
        write_all(fd, ", and more");
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE(out.result.ok());
    CHECK(out.result->body == "all of it, and more");
    CHECK(h.idle() == 0);
}

TEST_CASE("a POST sends exactly its bytes: Host, Content-Length, default Content-Type, no Accept-Encoding", "[async]") {
    std::promise<std::string> seen;
    RawServer srv([&seen](int fd, int) {
        seen.set_value(read_request(fd));
        write_all(fd, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    });
    Harness h;
    HttpRequest req{"POST", srv.url("/submit?x=1&y=%20"), {}, "hello"};
    req.headers.add("Host", "evil.example");         // the caller's Host and Content-Length are replaced
    req.headers.add("Content-Length", "999");
    req.headers.add("Authorization", "Bearer t0k");
    req.headers.add("X-Custom", "v");
    auto out = h.send(req);
    REQUIRE(out.result.ok());
    CHECK(out.result->status == 201);
    std::string port = std::to_string(srv.port());
    CHECK(seen.get_future().get() == "POST /submit?x=1&y=%20 HTTP/1.1\r\n"
                                     "Host: 127.0.0.1:" + port + "\r\n"
                                     "Authorization: Bearer t0k\r\n"
                                     "X-Custom: v\r\n"
                                     "Content-Length: 5\r\n"
                                     "Content-Type: application/octet-stream\r\n"
                                     "\r\n"
                                     "hello");
}

TEST_CASE("the request head follows the method: empty POST gets Content-Length 0, GET none, the caller's type wins",
          "[async]") {
    std::vector<std::string> seen;
    std::mutex m;
    RawServer srv([&](int fd, int) {
        for (;;) {
            std::string r = read_request(fd);
            if (r.empty()) return;
            {
                std::lock_guard<std::mutex> lock(m);
                seen.push_back(r);
            }
            write_all(fd, "HTTP/1.1 204 No Content\r\n\r\n");
        }
    });
    Harness h;
    std::string base = "http://127.0.0.1:" + std::to_string(srv.port());
    REQUIRE(h.send(HttpRequest{"POST", base + "/a", {}, ""}).result.ok());
    REQUIRE(h.send(get(base)).result.ok());
    REQUIRE(h.send(HttpRequest{"PUT", base + "/b", {{"Content-Type", "application/json"}}, "{}"}).result.ok());
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(seen.size() == 3);
    CHECK(seen[0] == "POST /a HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) +
                         "\r\nContent-Length: 0\r\n\r\n");
    CHECK(seen[1] == "GET / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) + "\r\n\r\n");
    CHECK(seen[2] == "PUT /b HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(srv.port()) +
                         "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    CHECK(srv.accepts() == 1);   // 204 has no content (RFC 9112 §6.3): the connection carried all three
}

TEST_CASE("keep-alive: a second request reuses the pooled connection", "[async]") {
    Running<httplib::Server> srv;
    std::mutex m;
    std::vector<int> ports;
    srv.server.Get("/n", [&](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard<std::mutex> lock(m);
        ports.push_back(req.remote_port);
        res.set_content(std::to_string(ports.size()), "text/plain");
    });
    srv.start();
    std::string url = "http://127.0.0.1:" + std::to_string(srv.port) + "/n";
    Harness h;
    auto first = h.send(get(url));
    REQUIRE(first.result.ok());
    CHECK(h.idle() == 1);
    auto second = h.send(get(url));
    REQUIRE(second.result.ok());
    CHECK(second.result->body == "2");
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(ports.size() == 2);
    CHECK(ports[0] == ports[1]);   // same client port: same TCP connection
}

TEST_CASE("a pooled connection the server closes while idle is dropped at once, and the next request connects anew",
          "[async]") {
    RawServer srv([](int fd, int n) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + std::to_string(n));
        // returning closes the connection: the server's idle timeout, at once
    });
    Harness h;
    auto first = h.send(get(srv.url()));
    REQUIRE(first.result.ok());
    CHECK(first.result->body == "1");
    CHECK(h.wait_idle(0));
    auto second = h.send(get(srv.url()));
    REQUIRE(second.result.ok());
    CHECK(second.result->body == "2");
    CHECK(srv.accepts() == 2);
}

TEST_CASE("a reused connection that breaks before the answer is retried once for GET, never for POST", "[async]") {
    // The server answers one request, then closes the connection when the next one arrives (a keep-alive race).
    RawServer srv([](int fd, int n) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + std::to_string(n));
        read_request(fd);
    });
    Harness h;
    REQUIRE(h.send(get(srv.url())).result.ok());
    REQUIRE(h.idle() == 1);
    SECTION("GET") {
        auto out = h.send(get(srv.url()));
        REQUIRE(out.result.ok());
        CHECK(out.result->body == "2");
        CHECK(srv.accepts() == 2);
    }
    SECTION("POST") {
        auto out = h.send(HttpRequest{"POST", srv.url(), {}, "x"});
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.connection_reset");
        CHECK(srv.accepts() == 1);
    }
}

TEST_CASE("a closed port is upstream.unreachable, with the same message as Upstream::send", "[async]") {
    std::string url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
    Harness h;
    auto out = h.send(get(url));
    REQUIRE_FALSE(out.result.ok());
    CHECK_FALSE(out.inside_send);
    CHECK(out.result.error().code == "upstream.unreachable");
    Upstream blocking(UpstreamOptions{});
    auto same = blocking.send(get(url));
    REQUIRE_FALSE(same.ok());
    CHECK(same.error().code == out.result.error().code);
    CHECK(same.error().message == out.result.error().message);
    CHECK(same.error().hint == out.result.error().hint);
}

TEST_CASE("a server that never answers is upstream.timeout after read_timeout_ms of silence", "[async]") {
    RawServer srv([](int fd, int) {
        read_request(fd);
        wait_readable(fd, 5000);   // until the client gives up and closes
    });
    UpstreamOptions o;
    o.read_timeout_ms = 200;
    Harness h(o);
    auto out = h.send(get(srv.url()));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.timeout");
    CHECK(out.seconds >= 0.19);
    CHECK(out.seconds < 2);
}

TEST_CASE("an answer larger than max_body is upstream.too_large, whatever its framing", "[async]") {
    auto answer = GENERATE(std::string("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n01234567890123456789"),
                           std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "8\r\n01234567\r\n8\r\n01234567\r\n0\r\n\r\n"),
                           std::string("HTTP/1.1 200 OK\r\n\r\n01234567890123456789"));
    RawServer srv([&answer](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, answer);
    });
    UpstreamOptions o;
    o.max_body = 10;
    Harness h(o);
    auto out = h.send(get(srv.url()));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.too_large");
    CHECK(h.idle() == 0);
}

TEST_CASE("a HEAD answer has no content even with a Content-Length, and keeps the connection", "[async]") {
    RawServer srv([](int fd, int) {
        for (int i = 0; i < 2; ++i) {
            std::string r = read_request(fd);
            if (r.empty()) return;
            if (r.rfind("HEAD", 0) == 0) {
                write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
            } else {
                write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nget");
            }
        }
    });
    Harness h;
    auto out = h.send(HttpRequest{"HEAD", srv.url(), {}, {}});
    REQUIRE(out.result.ok());
    CHECK(out.result->body.empty());
    CHECK(out.result->headers.get("Content-Length") == std::optional<std::string>("1234"));
    auto next = h.send(get(srv.url()));
    REQUIRE(next.result.ok());
    CHECK(next.result->body == "get");
    CHECK(srv.accepts() == 1);
}

TEST_CASE("interim 1xx answers are skipped and the final answer returned", "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        std::this_thread::sleep_for(5ms);
        write_all(fd, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
                      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /x/1\r\n\r\nok");
    });
    Harness h;
    auto out = h.send(HttpRequest{"POST", srv.url(), {}, "{}"});
    REQUIRE(out.result.ok());
    CHECK(out.result->status == 201);
    CHECK(out.result->body == "ok");
    CHECK(out.result->headers.get("Location") == std::optional<std::string>("/x/1"));
    CHECK_FALSE(out.result->headers.has("Link"));
}

TEST_CASE("answers the relay cannot use are upstream.error naming why (list-valued fields: their elements)",
          "[async]") {
    auto [answer, words] = GENERATE(table<std::string, std::string>({
        {"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", "Content-Encoding gzip"},
        {"HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'a') + "\r\n\r\n", "64 KiB"},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "status line"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunked"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "Content-Length"},
        // List-valued fields: the message names the elements.
        {"HTTP/1.1 200 OK\r\nContent-Encoding: identity, br\r\nContent-Length: 2\r\n\r\nxx", "Content-Encoding br,"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok", "two Content-Lengths"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: ,\r\n\r\nok", "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\nok", "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding gzip, chunked,"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
         "Transfer-Encoding chunked, chunked,"},
    }));
    RawServer srv([a = answer](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, a);
        wait_readable(fd, 2000);
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.error");
    CHECK(out.result.error().message.find(words) != std::string::npos);
}

TEST_CASE("an answer cut short by a close is upstream.connection_reset", "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.connection_reset");
}

TEST_CASE("a bad URL is upstream.bad_url, reported after send() returns", "[async]") {
    Harness h;
    for (const char* url : {"ftp://example.com/", "not a url", "/relative/only"}) {
        auto out = h.send(get(url));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.bad_url");
        CHECK_FALSE(out.inside_send);
    }
}

TEST_CASE("a host name (localhost) is resolved off the loop and works", "[async]") {
    Running<httplib::Server> srv;
    std::promise<std::string> host;
    srv.server.Get("/", [&host](const httplib::Request& req, httplib::Response& res) {
        host.set_value(req.get_header_value("Host"));
        res.set_content("named", "text/plain");
    });
    srv.start();
    Harness h;
    auto out = h.send(get("http://localhost:" + std::to_string(srv.port) + "/"));
    REQUIRE(out.result.ok());
    CHECK_FALSE(out.inside_send);
    CHECK(out.result->body == "named");
    CHECK(host.get_future().get() == "localhost:" + std::to_string(srv.port));
}

TEST_CASE("destroying the AsyncUpstream drops pending exchanges without calling them", "[async]") {
    RawServer srv([](int fd, int) {
        read_request(fd);
        wait_readable(fd, 3000);
    });
    Harness h;
    auto called = std::make_shared<std::atomic<bool>>(false);
    h.on_loop([&] {
        h.upstream()->send(get(srv.url()), [called](Result<HttpResponse>, double) { *called = true; });
        return 0;
    });
    while (srv.accepts() == 0) std::this_thread::sleep_for(1ms);
    h.on_loop([&] {
        h.upstream().reset();
        return 0;
    });
    std::this_thread::sleep_for(50ms);
    h.on_loop([] { return 0; });
    CHECK_FALSE(*called);
}

TEST_CASE("https: the certificate must be trusted and name the host", "[async]") {
    relaytest::TempDir dir;
    make_certificate("DNS:localhost", dir / "cert.pem", dir / "key.pem");
    make_certificate("DNS:keyrelay.invalid", dir / "other.pem", dir / "other-key.pem");
    Running<httplib::SSLServer> srv((dir / "cert.pem").c_str(), (dir / "key.pem").c_str());
    REQUIRE(srv.server.is_valid());
    srv.server.Get("/secure", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("over tls", "text/plain");
    });
    srv.start();
    std::string port = std::to_string(srv.port);

    SECTION("not trusted: upstream.tls, with Upstream's hint") {
        Harness h;
        auto out = h.send(get("https://localhost:" + port + "/secure"));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.tls");
        Upstream blocking(UpstreamOptions{});
        auto same = blocking.send(get("https://localhost:" + port + "/secure"));
        REQUIRE_FALSE(same.ok());
        CHECK(same.error().code == "upstream.tls");
        CHECK(same.error().hint == out.result.error().hint);
    }
    SECTION("trusted through ca_file: 200, and the connection is reused") {
        UpstreamOptions o;
        o.ca_file = dir / "cert.pem";
        Harness h(o);
        for (int i = 0; i < 2; ++i) {
            auto out = h.send(get("https://localhost:" + port + "/secure"));
            REQUIRE(out.result.ok());
            CHECK(out.result->status == 200);
            CHECK(out.result->body == "over tls");
        }
        CHECK(h.idle() == 1);
    }
    SECTION("trusted, but the certificate names another host: upstream.tls") {
        UpstreamOptions o;
        o.ca_file = dir / "cert.pem";
        Harness h(o);
        auto out = h.send(get("https://127.0.0.1:" + port + "/secure"));   // the certificate names no IP address
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.tls");
        CHECK(out.result.error().hint.find(o.ca_file) != std::string::npos);
    }
    SECTION("a CA that did not issue the certificate: upstream.tls") {
        UpstreamOptions o;
        o.ca_file = dir / "other.pem";
        Harness h(o);
        auto out = h.send(get("https://localhost:" + port + "/secure"));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.tls");
    }
}

TEST_CASE("https: a certificate for another name is refused even when trusted", "[async]") {
    relaytest::TempDir dir;
    make_certificate("DNS:keyrelay.invalid", dir / "cert.pem", dir / "key.pem");
    Running<httplib::SSLServer> srv((dir / "cert.pem").c_str(), (dir / "key.pem").c_str());
    REQUIRE(srv.server.is_valid());
    srv.server.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content("x", "text/plain"); });
    srv.start();
    UpstreamOptions o;
    o.ca_file = dir / "cert.pem";
    Harness h(o);
    auto out = h.send(get("https://localhost:" + std::to_string(srv.port) + "/"));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.tls");
    CHECK(out.result.error().message.find("hostname mismatch") != std::string::npos);
}

TEST_CASE("max_conns_per_origin: a burst of calls shares that many connections, one call after the other on each",
          "[async]") {
    Running<httplib::Server> srv;
    std::mutex m;
    std::set<int> ports;
    int busy = 0, most = 0;
    srv.server.Get("/slow", [&](const httplib::Request& req, httplib::Response& res) {
        {
            std::lock_guard<std::mutex> lock(m);
            ports.insert(req.remote_port);
            most = std::max(most, ++busy);
        }
        std::this_thread::sleep_for(30ms);
        {
            std::lock_guard<std::mutex> lock(m);
            --busy;
        }
        res.set_content("ok", "text/plain");
    });
    srv.start();
    UpstreamOptions o;
    o.max_conns_per_origin = 2;
    Harness h(o);
    const std::string url = "http://127.0.0.1:" + std::to_string(srv.port) + "/slow";
    auto results = std::make_shared<std::vector<std::promise<Outcome>>>(8);
    std::vector<std::future<Outcome>> futures;
    for (auto& p : *results) futures.push_back(p.get_future());
    h.on_loop([&h, results, url] {
        for (auto& p : *results) {
            h.upstream()->send(get(url), [&p](Result<HttpResponse> r, double s) {
                p.set_value(Outcome{std::move(r), s, false});
            });
        }
        return 0;
    });
    for (auto& f : futures) {
        REQUIRE(f.wait_for(15s) == std::future_status::ready);
        auto o2 = f.get();
        REQUIRE(o2.result.ok());
        CHECK(o2.result->body == "ok");
    }
    std::lock_guard<std::mutex> lock(m);
    CHECK(ports.size() == 2);   // two connections carried all eight calls
    CHECK(most <= 2);
}

TEST_CASE("each URL form gives the request-target and Host it always did, for every origin sent to", "[async]") {
    Recorder a, b;
    const std::string pa = a.port(), pb = b.port();
    Harness h;
    // Interleaved: each origin keeps its own Host, however often the other one was used in between.
    const std::string a_base = "http://127.0.0.1:" + pa, b_base = "http://127.0.0.1:" + pb;
    for (const std::string& url : {a_base, b_base + "/x/y?q=1&r=%20", a_base + "?only=query", b_base + "/p?",
                                   a_base + "/f?q=1#frag?x", b_base + "#frag/x",
                                   "HTTP://127.0.0.1:" + pa + "/Upper/Case", b_base + "/last"}) {
        INFO(url);
        REQUIRE(h.send(get(url)).result.ok());
    }
    const std::string ha = "\r\nHost: 127.0.0.1:" + pa + "\r\n\r\n", hb = "\r\nHost: 127.0.0.1:" + pb + "\r\n\r\n";
    CHECK(a.requests() == std::vector<std::string>{"GET / HTTP/1.1" + ha, "GET /?only=query HTTP/1.1" + ha,
                                                   "GET /f?q=1 HTTP/1.1" + ha,
                                                   "GET /Upper/Case HTTP/1.1" + ha});
    CHECK(b.requests() == std::vector<std::string>{"GET /x/y?q=1&r=%20 HTTP/1.1" + hb, "GET /p HTTP/1.1" + hb,
                                                   "GET / HTTP/1.1" + hb, "GET /last HTTP/1.1" + hb});
    CHECK(a.accepts() == 1);   // one origin however it is spelled: one pooled connection
    CHECK(b.accepts() == 1);
}

TEST_CASE("more URL origins than are remembered: every call still goes to its own host and port", "[async]") {
    Recorder a, b;
    Harness h;
    // 20 spellings of each origin (the scheme and host are case-insensitive), one pooled connection per server.
    for (int i = 0; i < 20; ++i) {
        std::string host = "localhost";
        for (size_t k = 0; k < host.size(); ++k) {
            if ((i >> k) & 1) host[k] = static_cast<char>(host[k] - 'a' + 'A');
        }
        const std::string scheme = i % 2 == 0 ? "http" : "HTTP";
        REQUIRE(h.send(get(scheme + "://" + host + ":" + a.port() + "/a/" + std::to_string(i))).result.ok());
        REQUIRE(h.send(get(scheme + "://" + host + ":" + b.port() + "/b/" + std::to_string(i))).result.ok());
    }
    auto ra = a.requests(), rb = b.requests();
    REQUIRE(ra.size() == 20);
    REQUIRE(rb.size() == 20);
    for (int i = 0; i < 20; ++i) {
        CHECK(ra[i] == "GET /a/" + std::to_string(i) + " HTTP/1.1\r\nHost: localhost:" + a.port() + "\r\n\r\n");
        CHECK(rb[i] == "GET /b/" + std::to_string(i) + " HTTP/1.1\r\nHost: localhost:" + b.port() + "\r\n\r\n");
    }
    CHECK(a.accepts() == 1);
    CHECK(b.accepts() == 1);
}

TEST_CASE("a URL is checked whole even when its origin was used before", "[async]") {
    Recorder srv;
    Harness h;
    const std::string base = "http://127.0.0.1:" + srv.port();
    REQUIRE(h.send(get(base + "/ok")).result.ok());
    for (const std::string& url : {base + "/a b", base + "/tab\t", base + "/x?y=\x7f", base + "/nl\n"}) {
        auto out = h.send(get(url));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.bad_url");
    }
    REQUIRE(h.send(get(base + "/fine")).result.ok());
    CHECK(srv.requests().size() == 2);
}

TEST_CASE("a request's body is sent with that request only, never again with the next one", "[async]") {
    Recorder srv;
    Harness h;
    const std::string base = "http://127.0.0.1:" + srv.port();
    const std::string big(100000, 'z');
    REQUIRE(h.send(HttpRequest{"POST", base + "/a", {}, "hello"}).result.ok());
    REQUIRE(h.send(get(base + "/b")).result.ok());
    REQUIRE(h.send(HttpRequest{"POST", base + "/c", {}, ""}).result.ok());
    REQUIRE(h.send(HttpRequest{"PUT", base + "/d", {{"Content-Type", "text/plain"}}, big}).result.ok());
    REQUIRE(h.send(get(base + "/e")).result.ok());
    const std::string host = "\r\nHost: 127.0.0.1:" + srv.port() + "\r\n";
    CHECK(srv.requests() ==
          std::vector<std::string>{
              "POST /a HTTP/1.1" + host + "Content-Length: 5\r\nContent-Type: application/octet-stream\r\n\r\nhello",
              "GET /b HTTP/1.1" + host + "\r\n", "POST /c HTTP/1.1" + host + "Content-Length: 0\r\n\r\n",
              "PUT /d HTTP/1.1" + host + "Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n" + big,
              "GET /e HTTP/1.1" + host + "\r\n"});
    CHECK(srv.accepts() == 1);
}

TEST_CASE("an interim answer's fields do not reach the final answer, nor decide its framing or persistence",
          "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 103 Early Hints\r\nX-Stage: interim\r\nLink: </a>\r\n </b>\r\nContent-Length: 999\r\n"
                      "Connection: close\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nX-Stage: final\r\nContent-Length: 2\r\n\r\nok");
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
        read_request(fd);
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE(out.result.ok());
    CHECK(out.result->status == 200);
    CHECK(out.result->body == "ok");
    CHECK(out.result->headers.items() ==
          std::vector<std::pair<std::string, std::string>>{{"X-Stage", "final"}, {"Content-Length", "2"}});
    CHECK(h.idle() == 1);
    auto next = h.send(get(srv.url()));
    REQUIRE(next.result.ok());
    CHECK(next.result->body == "two");
    CHECK(next.result->headers.items() == std::vector<std::pair<std::string, std::string>>{{"Content-Length", "3"}});
    CHECK(srv.accepts() == 1);
}

TEST_CASE("a malformed field in an interim answer is still an error", "[async]") {
    RawServer srv([](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 103 Early Hints\r\n folded: first\r\n\r\n"
                      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        wait_readable(fd, 2000);
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.error");
    CHECK(out.result.error().message.find("malformed header") != std::string::npos);
}

TEST_CASE("a pooled connection reused after a large answer reads the next answers right", "[async]") {
    const std::string big_field(60000, 'f');   // one long line: the read buffer grows past what is kept
    const std::string big_body(300000, 'b');
    RawServer srv([&](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nX-Big: " + big_field + "\r\nContent-Length: " +
                          std::to_string(big_body.size()) + "\r\n\r\n" + big_body);
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        if (read_request(fd).empty()) return;
        write_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-N: 3\r\n\r\nhello");
        read_request(fd);
    });
    Harness h;
    auto first = h.send(get(srv.url("/1")));
    REQUIRE(first.result.ok());
    CHECK(first.result->body == big_body);
    CHECK(first.result->headers.get("X-Big") == std::optional<std::string>(big_field));
    auto second = h.send(get(srv.url("/2")));
    REQUIRE(second.result.ok());
    CHECK(second.result->body == "abc");
    CHECK(second.result->headers.items() ==
          std::vector<std::pair<std::string, std::string>>{{"Transfer-Encoding", "chunked"}});
    auto third = h.send(get(srv.url("/3")));
    REQUIRE(third.result.ok());
    CHECK(third.result->body == "hello");
    CHECK(third.result->headers.items() ==
          std::vector<std::pair<std::string, std::string>>{{"Content-Length", "5"}, {"X-N", "3"}});
    CHECK(srv.accepts() == 1);
}

TEST_CASE("list-valued fields are read element by element, folded lines join with a space, and HTTP/1.0 or "
          "Connection: close answers are not pooled",
          "[async]") {
    // answer, expected body, pooled afterwards
    auto [answer, body, pooled] = GENERATE(table<std::string, std::string, size_t>({
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 0},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", 0},
        {"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", "ok", 1},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
        {"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: , Chunked ,\r\n\r\n2\r\nok\r\n0\r\n\r\n", "ok", 1},
        {"HTTP/1.0 200 OK\r\nConnection: foo, Keep-Alive\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: foo, CLOSE\r\nContent-Length: 2\r\n\r\nok", "ok", 0},
    }));
    RawServer srv([a = answer](int fd, int) {
        if (read_request(fd).empty()) return;
        write_all(fd, a);
        read_request(fd);
    });
    Harness h;
    auto out = h.send(get(srv.url()));
    REQUIRE(out.result.ok());
    CHECK(out.result->body == body);
    if (answer.find("X-Folded") != std::string::npos) {
        CHECK(out.result->headers.get("X-Folded") == std::optional<std::string>("a b c"));
    }
    CHECK(h.wait_idle(pooled));
}

// RFC 3986 §3.2.2: an IPv6 address in a URL is an IP-literal in brackets. The brackets are URI syntax: the address
// connected to is without them, while Host (RFC 9110 §7.2: uri-host [":" port]) and the origin keep them.
TEST_CASE("endpoint_of: an IPv6 literal is connected to bare, and keeps its brackets in Host and the origin",
          "[async][ipv6]") {
    auto [url, host, ip, ipv6, origin, host_field] =
        GENERATE(table<std::string, std::string, bool, bool, std::string, std::string>({
            {"http://[::1]:8080/crm?q=1", "::1", true, true, "http://[::1]:8080", "[::1]:8080"},
            {"http://[::1]/", "::1", true, true, "http://[::1]:80", "[::1]"},
            {"https://[2001:DB8::1]/rest", "2001:db8::1", true, true, "https://[2001:db8::1]:443", "[2001:db8::1]"},
            {"https://[::1]:80/", "::1", true, true, "https://[::1]:80", "[::1]:80"},
            {"http://[::1]:443/", "::1", true, true, "http://[::1]:443", "[::1]:443"},
            {"http://[::ffff:127.0.0.1]:9/", "::ffff:127.0.0.1", true, true, "http://[::ffff:127.0.0.1]:9",
             "[::ffff:127.0.0.1]:9"},
            // Names and IPv4 addresses: as they always were.
            {"http://127.0.0.1:8080/", "127.0.0.1", true, false, "http://127.0.0.1:8080", "127.0.0.1:8080"},
            {"https://127.0.0.1/", "127.0.0.1", true, false, "https://127.0.0.1:443", "127.0.0.1"},
            {"https://API.Example.com/crm", "api.example.com", false, false, "https://api.example.com:443",
             "api.example.com"},
            {"http://localhost:8080/", "localhost", false, false, "http://localhost:8080", "localhost:8080"},
            {"http://example.com:443/", "example.com", false, false, "http://example.com:443", "example.com:443"},
        }));
    INFO(url);
    auto u = parse_url(url);
    REQUIRE(u.ok());
    auto e = endpoint_of(*u);
    REQUIRE(e.has_value());
    CHECK(e->host == host);
    CHECK(e->ip == ip);
    CHECK(e->ipv6 == ipv6);
    CHECK(e->origin == origin);
    CHECK(e->host_field == host_field);
    CHECK(e->port == u->port);
    CHECK(e->tls == (u->scheme == "https"));
}

TEST_CASE("brackets around anything but an IPv6 address are upstream.bad_url in both clients, never looked up",
          "[async][ipv6]") {
    // RFC 3986 §3.2.2: an IP-literal is an IPv6 address or an IPvFuture; a name in brackets is not a URL, and a zone
    // identifier (RFC 6874) is not something the relay can connect to.
    Harness h;
    Upstream blocking(UpstreamOptions{});
    for (const char* url : {"http://[localhost]:8080/", "https://[example.com]/", "http://[v1.fe80::1]/",
                            "http://[fe80::1%25eth0]:8080/", "http://[127.0.0.1]/", "http://[]/"}) {
        INFO(url);
        auto u = parse_url(url);
        if (u.ok()) CHECK_FALSE(endpoint_of(*u).has_value());
        auto out = h.send(get(url));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.bad_url");
        auto same = blocking.send(get(url));
        REQUIRE_FALSE(same.ok());
        CHECK(same.error().code == "upstream.bad_url");
    }
}

TEST_CASE("an IPv6 literal URL reaches ::1 through both clients, with the brackets kept in Host", "[async][ipv6]") {
    if (!have_ipv6_loopback()) {
        WARN("This machine has no IPv6 loopback (::1 cannot be bound): the IPv6 literal test is skipped.");
        return;
    }
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    Recorder async_srv(ok, true), blocking_srv(ok, true);   // each serves one connection at a time: one per client
    const std::string pa = async_srv.port(), pb = blocking_srv.port();

    Harness h;
    for (int i = 0; i < 2; ++i) {
        auto out = h.send(get("http://[::1]:" + pa + "/path?q=1"));
        REQUIRE(out.result.ok());
        CHECK(out.result->status == 200);
        CHECK(out.result->body == "ok");
    }
    CHECK(async_srv.requests() ==
          std::vector<std::string>(2, "GET /path?q=1 HTTP/1.1\r\nHost: [::1]:" + pa + "\r\n\r\n"));
    CHECK(async_srv.accepts() == 1);   // the second call reused the connection pooled under http://[::1]:port

    Upstream blocking(UpstreamOptions{});
    for (int i = 0; i < 2; ++i) {
        auto out = blocking.send(get("http://[::1]:" + pb + "/path?q=1"));
        REQUIRE(out.ok());
        CHECK(out->status == 200);
        CHECK(out->body == "ok");
    }
    auto seen = blocking_srv.requests();
    REQUIRE(seen.size() == 2);
    for (const auto& r : seen) {
        INFO(r);
        CHECK(r.rfind("GET /path?q=1 HTTP/1.1\r\n", 0) == 0);
        CHECK(r.find("\r\nHost: [::1]:" + pb + "\r\n") != std::string::npos);
        CHECK(r.find("Host:") == r.rfind("Host:"));   // one Host field only
    }
    CHECK(blocking_srv.accepts() == 1);
}

TEST_CASE("an IPv6 literal with letters (an IPv4-mapped address) works in both clients", "[async][ipv6]") {
    // cpp-httplib's "scheme://host:port" parser takes only digits and colons in brackets: Upstream must not rely on it.
    if (!have_ipv6_loopback()) {
        WARN("This machine has no IPv6 loopback (::1 cannot be bound): the IPv4-mapped address test is skipped.");
        return;
    }
    std::string v6only;
    if (FILE* f = std::fopen("/proc/sys/net/ipv6/bindv6only", "r")) {
        char c = 0;
        if (std::fread(&c, 1, 1, f) == 1) v6only = c;
        std::fclose(f);
    }
    if (v6only == "1") {
        WARN("IPv6 sockets are IPv6-only here (net.ipv6.bindv6only=1): the IPv4-mapped address test is skipped.");
        return;
    }
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nmapped";
    Recorder async_srv(ok), blocking_srv(ok);   // on 127.0.0.1, reached as ::ffff:127.0.0.1
    Harness h;
    auto out = h.send(get("http://[::FFFF:127.0.0.1]:" + async_srv.port() + "/m"));
    REQUIRE(out.result.ok());
    CHECK(out.result->body == "mapped");
    CHECK(async_srv.requests() ==
          std::vector<std::string>{"GET /m HTTP/1.1\r\nHost: [::ffff:127.0.0.1]:" + async_srv.port() + "\r\n\r\n"});
    Upstream blocking(UpstreamOptions{});
    auto same = blocking.send(get("http://[::FFFF:127.0.0.1]:" + blocking_srv.port() + "/m"));
    REQUIRE(same.ok());
    CHECK(same->body == "mapped");
    auto seen = blocking_srv.requests();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].find("\r\nHost: [::ffff:127.0.0.1]:" + blocking_srv.port() + "\r\n") != std::string::npos);
}

TEST_CASE("a closed port on ::1 is upstream.unreachable in both clients, without naming the address",
          "[async][ipv6]") {
    if (!have_ipv6_loopback()) {
        WARN("This machine has no IPv6 loopback (::1 cannot be bound): the closed IPv6 port test is skipped.");
        return;
    }
    const std::string port = std::to_string(closed_port(true));
    const std::string url = "http://[::1]:" + port + "/";
    Harness h;
    auto out = h.send(get(url));
    REQUIRE_FALSE(out.result.ok());
    CHECK(out.result.error().code == "upstream.unreachable");
    CHECK(out.result.error().message == "The relay could not connect to the provider's API.");
    Upstream blocking(UpstreamOptions{});
    auto same = blocking.send(get(url));
    REQUIRE_FALSE(same.ok());
    CHECK(same.error().code == out.result.error().code);
    CHECK(same.error().message == out.result.error().message);
}

TEST_CASE("https to an IPv6 literal: the certificate must name that address, in both clients", "[async][ipv6]") {
    if (!have_ipv6_loopback()) {
        WARN("This machine has no IPv6 loopback (::1 cannot be bound): the https IPv6 literal test is skipped.");
        return;
    }
    // RFC 6125 §6.2.1 / RFC 5280 §4.2.1.6: an IP address is matched against an iPAddress subjectAltName.
    relaytest::TempDir dir;
    make_certificate("IP:::1", dir / "ip.pem", dir / "ip-key.pem");
    make_certificate("DNS:localhost", dir / "name.pem", dir / "name-key.pem");
    Running<httplib::SSLServer> by_ip((dir / "ip.pem").c_str(), (dir / "ip-key.pem").c_str());
    Running<httplib::SSLServer> by_name((dir / "name.pem").c_str(), (dir / "name-key.pem").c_str());
    REQUIRE(by_ip.server.is_valid());
    REQUIRE(by_name.server.is_valid());
    std::promise<std::string> async_host, blocking_host;
    auto handler = [&](const httplib::Request& req, httplib::Response& res) {
        (req.get_header_value("User-Agent").empty() ? async_host : blocking_host)
            .set_value(req.get_header_value("Host"));
        res.set_content("v6 tls", "text/plain");
    };
    by_ip.server.Get("/secure", handler);
    by_name.server.Get("/secure", [](const httplib::Request&, httplib::Response& res) {
        res.set_content("x", "text/plain");
    });
    by_ip.start("::1");
    by_name.start("::1");

    SECTION("a trusted certificate naming ::1: 200, with Host [::1]:port") {
        const std::string port = std::to_string(by_ip.port);
        UpstreamOptions o;
        o.ca_file = dir / "ip.pem";
        Harness h(o);
        auto out = h.send(get("https://[::1]:" + port + "/secure"));
        REQUIRE(out.result.ok());
        CHECK(out.result->body == "v6 tls");
        CHECK(async_host.get_future().get() == "[::1]:" + port);
        Upstream blocking(o);
        auto same = blocking.send(get("https://[::1]:" + port + "/secure"));
        REQUIRE(same.ok());
        CHECK(same->body == "v6 tls");
        CHECK(blocking_host.get_future().get() == "[::1]:" + port);
    }
    SECTION("a trusted certificate naming only localhost: upstream.tls") {
        const std::string url = "https://[::1]:" + std::to_string(by_name.port) + "/secure";
        UpstreamOptions o;
        o.ca_file = dir / "name.pem";
        Harness h(o);
        auto out = h.send(get(url));
        REQUIRE_FALSE(out.result.ok());
        CHECK(out.result.error().code == "upstream.tls");
        // The message reaches page and API callers: it says what failed, not where (the address may be internal).
        CHECK(out.result.error().message.rfind("The TLS connection to the provider's API failed: ", 0) == 0);
        CHECK(out.result.error().message.find("[::1]") == std::string::npos);
        Upstream blocking(o);
        auto same = blocking.send(get(url));
        REQUIRE_FALSE(same.ok());
        CHECK(same.error().code == "upstream.tls");
    }
}

TEST_CASE("IPv4 and host name URLs keep the Host they always had, in both clients", "[async][ipv6]") {
    // One server per client and URL: a Recorder serves one connection at a time, and each origin is pooled apart.
    Recorder async_v4, async_name, blocking_v4, blocking_name;
    Harness h;
    REQUIRE(h.send(get("http://127.0.0.1:" + async_v4.port() + "/a?q=1")).result.ok());
    REQUIRE(h.send(get("http://LocalHost:" + async_name.port() + "/b")).result.ok());
    CHECK(async_v4.requests() ==
          std::vector<std::string>{"GET /a?q=1 HTTP/1.1\r\nHost: 127.0.0.1:" + async_v4.port() + "\r\n\r\n"});
    CHECK(async_name.requests() ==
          std::vector<std::string>{"GET /b HTTP/1.1\r\nHost: localhost:" + async_name.port() + "\r\n\r\n"});

    Upstream blocking(UpstreamOptions{});
    REQUIRE(blocking.send(get("http://127.0.0.1:" + blocking_v4.port() + "/a?q=1")).ok());
    REQUIRE(blocking.send(get("http://LocalHost:" + blocking_name.port() + "/b")).ok());
    auto v4 = blocking_v4.requests(), name = blocking_name.requests();
    REQUIRE(v4.size() == 1);
    REQUIRE(name.size() == 1);
    CHECK(v4[0].rfind("GET /a?q=1 HTTP/1.1\r\n", 0) == 0);
    CHECK(v4[0].find("\r\nHost: 127.0.0.1:" + blocking_v4.port() + "\r\n") != std::string::npos);
    CHECK(name[0].rfind("GET /b HTTP/1.1\r\n", 0) == 0);
    CHECK(name[0].find("\r\nHost: localhost:" + blocking_name.port() + "\r\n") != std::string::npos);
}
