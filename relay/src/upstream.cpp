#include "upstream.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/x509.h>

#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include "keyrelay/ascii.h"

namespace keyrelay::relay {

// Where an http(s) URL's requests go. RFC 3986 §3.2.2: an IPv6 address in a URL is an IP-literal in brackets ("[::1]",
// as parse_url keeps it in Url::host); the brackets belong to the URI syntax, so the address connected to (and named
// in the certificate, RFC 6125 §6.2 / RFC 5280 §4.2.1.6 iPAddress) is without them, while the Host field (RFC 9110
// §7.2: uri-host [":" port]) and the origin keep them. Host names and IPv4 addresses are written as they are.
struct Endpoint {
    std::string host;         // to connect to: a host name, or an IP address without brackets
    int port = 0;
    bool tls = false;         // https
    bool ipv6 = false;        // the URL wrote an IPv6 literal in brackets
    std::string origin;       // "scheme://host:port", IPv6 in brackets: the pool key
    std::string host_field;   // the Host value: the port only when not the scheme's default (RFC 3986 §6.2.3)
};

namespace {

using Clock = std::chrono::steady_clock;

X509_STORE* make_ca_store(const std::string& extra_ca_file) {
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr) return nullptr;
    X509_STORE_set_default_paths(store);
    if (!extra_ca_file.empty()) X509_STORE_load_file(store, extra_ca_file.c_str());
    return store;
}

// cpp-httplib's error for a failed send(). httplib reports a read timeout and a connection closed mid-answer both as
// Error::Read: the elapsed time tells them apart. The message and hint reach the page and API callers: they never
// name the upstream's address (an internal URL in many deployments) and never ask the caller to change the relay's
// config.
Error transport_error(httplib::Error err, double seconds, int64_t read_timeout_ms, const std::string& ca_file) {
    const std::string detail = httplib::to_string(err);
    switch (err) {
        case httplib::Error::Connection:
        case httplib::Error::ConnectionTimeout:
        case httplib::Error::BindIPAddress:
            return make_error("upstream.unreachable", "The relay could not connect to the provider's API.",
                              "The provider may be down, or the relay's machine cannot reach it (DNS, firewall, "
                              "outbound proxy, a wrong API base URL in the relay's config). Try again in a minute; "
                              "if it persists, tell whoever runs the relay. Against the sandbox: is "
                              "keyrelay-sandbox still running?");
        case httplib::Error::Read:
            if (seconds * 1000 >= static_cast<double>(read_timeout_ms) * 0.95) {
                return make_error("upstream.timeout",
                                  "The provider's API did not answer within " +
                                      std::to_string(read_timeout_ms / 1000) + " s.",
                                  "The provider is slow or overloaded. Try again in a minute; if it persists, check "
                                  "the provider's status page.");
            }
            return make_error("upstream.connection_reset",
                              "The provider's API closed the connection without an answer.",
                              "A gateway or load balancer in front of the provider dropped the request; this is "
                              "usually transient. Try again; if it keeps happening, check the provider's status "
                              "page.");
        case httplib::Error::Write:
            return make_error("upstream.connection_reset", "The connection to the provider's API broke while sending.",
                              "Usually transient; try again.");
        case httplib::Error::SSLConnection:
        case httplib::Error::SSLLoadingCerts:
        case httplib::Error::SSLServerVerification:
            return make_error("upstream.tls", "The TLS connection to the provider's API failed: " + detail + ".",
                              ca_file.empty()
                                  ? "The provider's certificate is not trusted by this machine's CA store. If a "
                                    "company proxy intercepts TLS, or for a local test server, set ca_file in the "
                                    "config (or --ca-file) to the CA certificate that issued it; never turn "
                                    "verification off."
                                  : "The certificate is trusted neither by the system CAs nor by the ca_file " +
                                        ca_file + ". Check that ca_file is the CA that issued the server's "
                                        "certificate and that the certificate names this host.");
        case httplib::Error::Canceled:   // the content receiver stopped at max_body
            return make_error("upstream.too_large",
                              "The answer from the provider's API is larger than the relay accepts.",
                              "Ask for less (a smaller limit or page size); the relay caps upstream bodies "
                              "(max_upstream_body in the config).");
        default:
            return make_error("upstream.error", "The request to the provider's API failed: " + detail + ".",
                              "Try again; if it persists, check the provider's API base URL in the relay's config.");
    }
}

// nullopt when the scheme is not http(s), or when brackets enclose something other than an IPv6 address (an
// IPvFuture literal or a zone identifier, neither of which the relay can connect to).
std::optional<Endpoint> endpoint_of(const Url& url) {
    if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
    Endpoint e;
    e.port = url.port;
    e.tls = url.scheme == "https";
    // RFC 3986 §3.2.2: IP-literal = "[" ( IPv6address / IPvFuture ) "]"; parse_url keeps the brackets.
    e.ipv6 = !url.host.empty() && url.host.front() == '[';
    e.host = url.host;
    if (e.ipv6) {
        if (url.host.size() < 2 || url.host.back() != ']') return std::nullopt;
        e.host = url.host.substr(1, url.host.size() - 2);
        in6_addr a6{};
        if (::inet_pton(AF_INET6, e.host.c_str(), &a6) != 1) return std::nullopt;
    }
    // url.host is the authority's host as written (brackets kept for IPv6): what Host and the origin carry.
    e.origin = url.scheme + "://" + url.host + ":" + std::to_string(url.port);
    e.host_field = url.host;
    if (url.port != (e.tls ? 443 : 80)) e.host_field += ":" + std::to_string(url.port);
    return e;
}

}  // namespace

Upstream::Upstream(UpstreamOptions options) : options_(std::move(options)) {}

Upstream::~Upstream() {
    idle_.clear();
    if (ca_store_ != nullptr) X509_STORE_free(ca_store_);
}

std::unique_ptr<httplib::ClientImpl> Upstream::acquire(const Endpoint& endpoint) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        auto& list = idle_[endpoint.origin];
        if (!list.empty()) {
            auto client = std::move(list.back());
            list.pop_back();
            return client;
        }
    }
    // The client is built from the host and port, not from an origin string: httplib's "scheme://host:port" parser
    // takes only digits and colons between brackets, so most IPv6 literals (2001:db8::1) would not parse.
    std::unique_ptr<httplib::ClientImpl> client;
    httplib::SSLClient* tls = nullptr;
    if (endpoint.tls) {
        auto c = std::make_unique<httplib::SSLClient>(endpoint.host, endpoint.port);
        tls = c.get();
        client = std::move(c);
    } else {
        client = std::make_unique<httplib::ClientImpl>(endpoint.host, endpoint.port);
    }
    // An IPv6 literal is an address already (RFC 3986 §3.2.2): connect to it as a numeric address, never through DNS.
    if (endpoint.ipv6) client->set_hostname_addr_map({{endpoint.host, endpoint.host}});
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);   // headers and body go out in separate writes (Nagle + delayed ACK: ~40 ms)
    client->set_follow_location(false);   // a redirect is answered to the caller, never followed with credentials
    client->set_url_encode(false);        // proxy::validate_path already produced a correctly encoded target
    client->set_connection_timeout(options_.connect_timeout_ms / 1000, (options_.connect_timeout_ms % 1000) * 1000);
    client->set_read_timeout(options_.read_timeout_ms / 1000, (options_.read_timeout_ms % 1000) * 1000);
    client->set_write_timeout(options_.read_timeout_ms / 1000, (options_.read_timeout_ms % 1000) * 1000);
    if (tls != nullptr) {
        tls->enable_server_certificate_verification(true);
        // Loading the system CA bundle takes milliseconds: it is done once and shared (each client's SSL_CTX owns
        // one reference).
        std::lock_guard<std::mutex> lock(mutex_);
        if (ca_store_ == nullptr) ca_store_ = make_ca_store(options_.ca_file);
        if (ca_store_ != nullptr && X509_STORE_up_ref(ca_store_) == 1) tls->set_ca_cert_store(ca_store_);
    }
    return client;
}

void Upstream::release(const std::string& origin, std::unique_ptr<httplib::ClientImpl> client) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& list = idle_[origin];
    if (list.size() < options_.max_idle_per_origin) list.push_back(std::move(client));
}

Result<HttpResponse> Upstream::send(const HttpRequest& request) {
    auto url = parse_url(request.url);
    std::optional<Endpoint> endpoint = url ? endpoint_of(*url) : std::nullopt;
    if (!endpoint) {
        return make_error("upstream.bad_url", "The upstream URL is not a valid http(s) URL.",
                          "Check the provider's URLs (api_base, token_url) in the config.");
    }

    httplib::Request req;
    req.method = request.method;
    req.path = url->path + (url->query.empty() ? "" : "?" + url->query);
    for (const auto& [name, value] : request.headers.items()) {
        if (iequals(name, "Content-Length") || iequals(name, "Host")) continue;   // httplib writes both
        req.headers.emplace(name, value);
    }
    // RFC 9110 §7.2: Host is uri-host [":" port], and an IPv6 uri-host keeps its brackets (RFC 3986 §3.2.2). httplib
    // would write the bare address when the port is the scheme's default.
    if (endpoint->ipv6) req.headers.emplace("Host", endpoint->host_field);
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
        req.body = request.body;
        if (!req.has_header("Content-Type") && !req.body.empty()) {
            req.headers.emplace("Content-Type", "application/octet-stream");
        }
    }
    std::string body;
    bool too_large = false;
    const size_t limit = options_.max_body;
    req.content_receiver = [&body, &too_large, limit](const char* data, size_t n, uint64_t, uint64_t) {
        if (body.size() + n > limit) {
            too_large = true;
            return false;
        }
        body.append(data, n);
        return true;
    };

    auto client = acquire(*endpoint);
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    auto started = Clock::now();
    bool ok = client->send(req, res, err);
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (!ok) {
        // The connection state is unknown after a failure: drop this client.
        if (too_large) err = httplib::Error::Canceled;
        return transport_error(err, seconds, options_.read_timeout_ms, options_.ca_file);
    }
    bool reusable = true;
    HttpResponse out;
    out.status = res.status;
    for (const auto& [name, value] : res.headers) {
        if (iequals(name, "Connection") && icontains(value, "close")) reusable = false;
        out.headers.add(name, value);
    }
    out.body = std::move(body);
    if (reusable) release(endpoint->origin, std::move(client));
    return out;
}

Result<HttpResponse> Upstream::send_with_retries(const HttpRequest& request, const retry::Policy& policy,
                                                 const std::function<void(const Attempt&)>& observe) {
    thread_local std::minstd_rand random{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    int64_t waited = 0;
    for (int attempt = 0;; ++attempt) {
        auto started = Clock::now();
        auto outcome = send(request);
        Attempt info;
        info.attempt = attempt;
        info.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        info.outcome = outcome.ok() ? std::to_string(outcome->status) : outcome.error().code;
        info.retry_in_ms = retry::delay_ms(request.method, attempt, outcome, waited, policy, std::time(nullptr),
                                           jitter(random));
        if (observe) observe(info);
        if (!info.retry_in_ms) return outcome;
        std::this_thread::sleep_for(std::chrono::milliseconds(*info.retry_in_ms));
        waited += *info.retry_in_ms;
    }
}

}  // namespace keyrelay::relay
