// keyrelay-sandbox [--port P] [--auto-approve] [--access-ttl S] [--refresh-ttl S] [--data FILE]
//                  [--redirect-uri URI]...
// First stdout line: "listening on http://127.0.0.1:<port>". SIGINT/SIGTERM stop it.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <future>
#include <thread>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "sandbox.h"

namespace {

const char* kUsage =
    "usage: keyrelay-sandbox [--port P] [--auto-approve] [--access-ttl SECONDS] [--refresh-ttl SECONDS]\n"
    "                        [--data FILE] [--redirect-uri URI]...\n"
    "Fake Keap and Jira servers on 127.0.0.1 for keyrelay's tests and demo. Credentials: GET /sandbox/config.\n";

bool parse_int(const char* s, long long min, long long max, long long& out) {
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return false;
    out = v;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    keyrelay::sandbox::Options options;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&](const char* what) -> const char* {
            if (i + 1 >= argc) {
                std::cerr << "keyrelay-sandbox: " << arg << " needs " << what << "\n" << kUsage;
                std::exit(2);
            }
            return argv[++i];
        };
        long long n = 0;
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        } else if (arg == "--auto-approve") {
            options.auto_approve = true;
        } else if (arg == "--port") {
            const char* v = value("a port number");
            if (!parse_int(v, 0, 65535, n)) {
                std::cerr << "keyrelay-sandbox: --port must be 0..65535, not \"" << v << "\"\n";
                return 2;
            }
            options.port = static_cast<int>(n);
        } else if (arg == "--access-ttl" || arg == "--refresh-ttl") {
            const char* v = value("a number of seconds");
            if (!parse_int(v, 1, 10LL * 365 * 86400, n)) {
                std::cerr << "keyrelay-sandbox: " << arg << " must be a positive number of seconds, not \"" << v
                          << "\"\n";
                return 2;
            }
            (arg == "--access-ttl" ? options.access_ttl : options.refresh_ttl) = n;
        } else if (arg == "--data") {
            options.data_file = value("a JSON file");
        } else if (arg == "--redirect-uri") {
            options.redirect_uris.push_back(value("a URI"));
        } else {
            std::cerr << "keyrelay-sandbox: unknown argument \"" << arg << "\"\n" << kUsage;
            return 2;
        }
    }

    // Block SIGINT/SIGTERM in every thread (the server's threads inherit the mask) and wait for them here.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    keyrelay::sandbox::Server server(options);
    auto port = server.start();
    if (!port) {
        std::cerr << "keyrelay-sandbox: " << port.error().message << "\n  hint: " << port.error().hint << "\n";
        return 1;
    }
    std::printf("listening on %s\n", server.base_url().c_str());
    std::fflush(stdout);

    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "keyrelay-sandbox: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    // A graceful stop waits for idle keep-alive connections (up to cpp-httplib's 5 s keep-alive timeout). The
    // sandbox keeps nothing on disk, so after a short grace period it simply exits.
    std::promise<void> stopped;
    auto done = stopped.get_future();
    std::thread([&server, &stopped] {
        server.stop();
        stopped.set_value();
    }).detach();
    if (done.wait_for(std::chrono::milliseconds(500)) != std::future_status::ready) std::_Exit(0);
    return 0;
}
