// The HTTP front of the sandbox: one dispatcher for every request, which counts it, applies an injected failure
// if one is pending for its path, and hands it to the Keap, Jira or control routes.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "common.h"
#include "http/listen_backlog.h"
#include "http/task_queue.h"
#include "sandbox.h"

namespace keyrelay::sandbox {
namespace {

int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
}

// The "reset" failure mode: close the connection without an answer. cpp-httplib does not hand handlers their
// socket, so find it: the one socket of this process whose local port is the server's and whose peer port is
// this request's. shutdown() sends the FIN at once; with SO_LINGER 0 the final close() by cpp-httplib sends an RST.
// The response cpp-httplib then tries to write goes nowhere (its write fails with EPIPE, SIGPIPE is ignored).
bool abort_connection(const httplib::Request& req, int server_port) {
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return false;
    bool done = false;
    while (dirent* e = readdir(dir)) {
        char* end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
        struct stat st {};
        if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        sockaddr_storage local{}, peer{};
        socklen_t ll = sizeof local, pl = sizeof peer;
        if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;
        if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
        const int want_local = req.local_port > 0 ? req.local_port : server_port;
        if (port_of(local) != want_local || port_of(peer) != req.remote_port) continue;
        linger lg{1, 0};
        setsockopt(static_cast<int>(fd), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        shutdown(static_cast<int>(fd), SHUT_RDWR);
        done = true;
        break;
    }
    closedir(dir);
    return done;
}

// "XML broken by a bad character" (docs/reference/keap.md, infusionsoft-php #339): a control character XML 1.0 forbids, inside
// the first value of the answer.
void insert_bad_char(std::string& body) {
    size_t at = body.find("<string>");
    if (at != std::string::npos) {
        at += 8;
    } else if ((at = body.find("<value>")) != std::string::npos) {
        at += 7;
    } else {
        at = body.size() / 2;
    }
    body.insert(at, 1, '\x0B');
}

Reply failure_reply(State& s, const Failure& f, const std::string& path) {
    const bool jira = starts_with(path, "/jira");
    if (f.mode == "html_502") {
        return html_reply(f.status ? f.status : 502,
                          "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
                          "Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n");
    }
    if (f.mode == "html_503") {
        return html_reply(f.status ? f.status : 503,
                          "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>503 Service "
                          "Unavailable</title>\n</head><body>\n<h1>Service Unavailable</h1>\n<p>The server is "
                          "temporarily unable to service your request due to maintenance downtime or capacity "
                          "problems. Please try again later.</p>\n</body></html>\n");
    }
    if (f.mode == "http_596") {
        // The old Mashery gateway's "596 Service Not Found" (docs/reference/keap.md "What comes back that is NOT XML-RPC").
        return html_reply(596, "<h1>596 Service Not Found</h1>");
    }
    if (f.mode == "gateway_fault") {
        const int status = f.status ? f.status : 503;
        const bool timeout = status == 504;
        return json_reply(status, json{{"fault",
                                        {{"faultstring", timeout ? "Gateway Timeout"
                                                                 : "The Service is temporarily unavailable"},
                                         {"detail", {{"errorcode", timeout
                                                                       ? "messaging.adaptors.http.flow.GatewayTimeout"
                                                                       : "messaging.adaptors.http.flow."
                                                                         "ServiceUnavailable"}}}}}});
    }
    if (f.mode == "rate_limit") {
        return jira ? jira_throttled(s, 30, s.limits.jira_burst) : keap_throttled(s, "oauth");
    }
    if (f.mode == "points_limit") {
        // Jira Cloud's 2026 points-based hourly quota used up (docs/reference/jira.md): the reason, the quota policy
        // and what is left of it.
        if (!jira) return keap_throttled(s, "oauth");
        Reply r = json_reply(429, json{{"errorMessages", {"Rate limit exceeded."}}, {"errors", json::object()}});
        r.with("Retry-After", "1800")
            .with("RateLimit-Reason", "jira-quota-tenant-based")
            .with("Beta-RateLimit-Policy", "\"tenant-app-quota\";q=100100;w=3600")
            .with("Beta-RateLimit", "\"tenant-app-quota\";r=0;t=1800")
            .with("X-RateLimit-NearLimit", "true");
        return r;
    }
    // "status": the chosen status with the provider's ordinary JSON error body.
    const std::string message = "keyrelay-sandbox: injected HTTP " + std::to_string(f.status);
    if (jira) return json_reply(f.status, json{{"errorMessages", {message}}, {"errors", json::object()}});
    return json_reply(f.status, json{{"message", message}});
}

Reply not_found(const std::string& path) {
    if (starts_with(path, "/keap/")) return json_reply(404, json{{"message", "HTTP 404 Not Found"}});
    if (starts_with(path, "/jira/")) {
        return json_reply(404, json{{"errorMessages", {"null for uri: " + path}}, {"errors", json::object()}});
    }
    return json_reply(404, json{{"error", "no such sandbox endpoint: " + path}});
}

Reply index_page(const std::string& base) {
    std::string body = "<h1>keyrelay-sandbox</h1><p>Fake Keap and Jira servers for keyrelay's tests and demo.</p><ul>"
                       "<li><a href=\"/sandbox/config\">/sandbox/config</a>: credentials and URLs</li>"
                       "<li><a href=\"/sandbox/stats\">/sandbox/stats</a>: request and token counts</li>"
                       "<li>Keap: " + html_escape(base) + "/keap/...</li><li>Jira: " + html_escape(base) +
                       "/jira/...</li></ul>";
    return html_reply(200, page("keyrelay-sandbox", body));
}

void write(const Reply& rep, httplib::Response& res) {
    res.status = rep.status;
    for (const auto& [k, v] : rep.headers) res.set_header(k, v);
    res.set_content(rep.body, rep.content_type.c_str());
}

}  // namespace

struct Server::Impl {
    Options options;
    std::unique_ptr<State> state;
    std::unique_ptr<httplib::Server> http;
    std::thread thread;
    std::atomic<int> port{0};

    std::string base() const { return "http://127.0.0.1:" + std::to_string(port.load()); }

    // The sandbox answers in the name it was called by, 127.0.0.1 or localhost: with the relay on the other one,
    // the providers are on another site than the relay, as Keap's and Atlassian's are in production.
    std::string base_for(const httplib::Request& raw) const {
        const std::string localhost = "localhost:" + std::to_string(port.load());
        return raw.get_header_value("Host") == localhost ? "http://" + localhost : base();
    }

    void handle(const httplib::Request& raw, httplib::Response& res) {
        Req r{raw, raw.method == "HEAD" ? "GET" : raw.method, raw.path, {}, true, base_for(raw)};
        auto q = parse_query(raw.target);
        if (q) {
            r.query = std::move(*q);
        } else {
            r.query_ok = false;
        }
        State& s = *state;
        const bool control = starts_with(r.path, "/sandbox/");
        std::optional<Failure> failure;
        if (!control) {
            std::lock_guard<std::mutex> lock(s.mu);
            s.requests[raw.method + " " + raw.path]++;
            failure = s.take_failure(raw.path);
        }
        bool corrupt = false;
        if (failure) {
            if (failure->mode == "slow") {
                std::this_thread::sleep_for(std::chrono::milliseconds(failure->delay_ms));
            } else if (failure->mode == "reset") {
                abort_connection(raw, port.load());
                res.status = 500;
                return;
            } else if (failure->mode == "bad_xml_char") {
                corrupt = true;
            } else {
                Reply rep;
                {
                    std::lock_guard<std::mutex> lock(s.mu);
                    rep = failure_reply(s, *failure, raw.path);
                }
                write(rep, res);
                return;
            }
        }
        std::optional<Reply> rep;
        if (!r.query_ok) {
            rep = text_reply(400, "Bad Request: malformed percent-encoding in the query string");
        } else if (starts_with(r.path, "/keap/")) {
            rep = route_keap(s, r);
        } else if (starts_with(r.path, "/jira/")) {
            rep = route_jira(s, r);
        } else if (control) {
            rep = route_control(s, r);
        } else if (r.path == "/" && r.method == "GET") {
            rep = index_page(r.base_url);
        }
        if (!rep) rep = not_found(r.path);
        if (corrupt) insert_bad_char(rep->body);
        write(*rep, res);
    }
};

Server::Server(Options options) : impl_(std::make_unique<Impl>()) { impl_->options = std::move(options); }

Server::~Server() { stop(); }

Result<int> Server::start() {
    if (impl_->http) {
        return make_error("sandbox.already_started", "This sandbox server is already started.",
                          "Create a new keyrelay::sandbox::Server to run another one.");
    }
    auto data = load_data(impl_->options.data_file);
    if (!data) return data.error();
    impl_->state = std::make_unique<State>(impl_->options, std::move(*data));

    // A client that closes early must not kill the process (cpp-httplib writes without MSG_NOSIGNAL).
    std::signal(SIGPIPE, SIG_IGN);
    auto http = std::make_unique<httplib::Server>();
    // cpp-httplib gives each connection a worker for its whole keep-alive life, and a relay's idle pooled connections
    // each hold one: workers start on demand, up to 1024, and the extra ones exit when idle, so that a burst of new
    // connections is not kept waiting behind idle ones (Keap does not do that). Beyond 1024, connections wait in
    // the queue: cpp-httplib 0.11 listens with a backlog of 5, so the accepting thread must not stop accepting.
    http->new_task_queue = [] {
        keyrelay::relay::ElasticQueueOptions o;
        o.core = 8;
        o.max = 1024;
        o.max_queued = 4096;
        return new keyrelay::relay::ElasticQueue(o);
    };
    http->set_keep_alive_max_count(1000);
    http->set_tcp_nodelay(true);   // headers and body go out in two writes: Nagle + delayed ACK would add ~40 ms
    // SO_REUSEADDR without SO_REUSEPORT, and a listen queue wider than cpp-httplib's 5 (http/listen_backlog.h).
    keyrelay::relay::ListenBacklog backlog;
    http->set_socket_options(backlog.socket_options());
    Impl* impl = impl_.get();
    auto handler = [impl](const httplib::Request& req, httplib::Response& res) { impl->handle(req, res); };
    http->Get(".*", handler);
    http->Post(".*", handler);
    http->Put(".*", handler);
    http->Patch(".*", handler);
    http->Delete(".*", handler);
    http->Options(".*", handler);
    http->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        res.status = 500;
        res.set_content(json{{"error", "keyrelay-sandbox internal error: " + what}}.dump(), "application/json");
    });

    int port = impl_->options.port;
    if (port == 0) {
        port = http->bind_to_any_port("127.0.0.1");
    } else if (!http->bind_to_port("127.0.0.1", port)) {
        port = -1;
    }
    if (port <= 0) {
        return make_error("sandbox.bind_failed",
                          "Could not listen on 127.0.0.1:" + std::to_string(impl_->options.port) + ".",
                          "Another program probably uses that port: pick another with --port, or --port 0 to let "
                          "the system choose.");
    }
    backlog.widen();
    impl_->port = port;
    impl_->http = std::move(http);
    httplib::Server* raw = impl_->http.get();
    impl_->thread = std::thread([raw] { raw->listen_after_bind(); });
    // cpp-httplib 0.11 has no wait_until_ready(): poll is_running().
    for (int i = 0; i < 5000 && !raw->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return port;
}

void Server::stop() {
    if (!impl_ || !impl_->http) return;
    impl_->http->stop();
    if (impl_->thread.joinable()) impl_->thread.join();
}

std::string Server::base_url() const { return impl_->base(); }

}  // namespace keyrelay::sandbox
