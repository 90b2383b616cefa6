// Leg (e) of scripts/bench: cpp-httplib alone, with nothing of keyrelay — the same forwarding as the node proxy of
// leg (d) (GET /proxy/keap/<path> to one upstream with X-Keap-API-Key injected, status, Content-Type and body back),
// written with the library's public API the way its README shows a server and a client, with the relay's socket
// settings (TCP_NODELAY both ways, up to 1,000 requests per keep-alive connection; cpp-httplib's defaults, Nagle
// and 5 requests, cost tens of milliseconds a call). It is the floor of the stack keyrelay is built on: the relay's
// CPU per request over this leg's is what keyrelay's own code adds.
//   keyrelay_bench_httplib_proxy <upstream host> <upstream port> <api key>
//   prints "listening on http://127.0.0.1:<port>"
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: keyrelay_bench_httplib_proxy <upstream host> <upstream port> <api key>\n");
        return 2;
    }
    const std::string host = argv[1];
    const int port = std::atoi(argv[2]);
    const std::string key = argv[3];

    httplib::Server server;
    // One worker per connection, as many as the relay's pool grows to, so that 64 keep-alive clients are all served.
    server.new_task_queue = [] { return new httplib::ThreadPool(256); };
    server.set_tcp_nodelay(true);
    server.set_keep_alive_max_count(1000);
    server.Get("/proxy/keap/(.*)", [&](const httplib::Request& req, httplib::Response& res) {
        thread_local httplib::Client upstream(host, port);   // one keep-alive connection per worker
        upstream.set_keep_alive(true);
        upstream.set_tcp_nodelay(true);
        httplib::Headers headers{{"X-Keap-API-Key", key},
                                 {"Accept", req.has_header("Accept") ? req.get_header_value("Accept") : "*/*"}};
        const std::string path = req.target.substr(std::string("/proxy/keap").size());
        auto answer = upstream.Get(path, headers);
        if (!answer) {
            res.status = 502;
            return;
        }
        res.status = answer->status;
        res.set_content(answer->body, answer->has_header("Content-Type") ? answer->get_header_value("Content-Type")
                                                                         : "application/octet-stream");
    });
    const int bound = server.bind_to_any_port("127.0.0.1");
    std::printf("listening on http://127.0.0.1:%d\n", bound);
    std::fflush(stdout);
    return server.listen_after_bind() ? 0 : 1;
}
