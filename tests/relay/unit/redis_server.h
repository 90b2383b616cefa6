// A throw-away redis-server for tests: a free loopback port, a private temporary directory, AOF on, a random
// password; killed (and the directory removed) by the destructor. Tests that need it skip when redis-server is not
// installed (scripts/setup installs it).
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "state/crypto.h"
#include "state/redis.h"
#include "temp_dir.h"

namespace testutil {

inline bool have_redis_server() { return ::access("/usr/bin/redis-server", X_OK) == 0; }

inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
    ::close(fd);
    return ntohs(a.sin_port);
}

class RedisServer {
public:
    explicit RedisServer(std::vector<std::string> extra = {}) : password_(keyrelay::relay::random_token(16)) {
        port_ = free_port();
        std::vector<std::string> args{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                      "--dir", dir_.path(), "--appendonly", "yes", "--save", "",
                                      "--requirepass", password_, "--daemonize", "no", "--logfile", dir_ / "redis.log"};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = ::fork();
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        // Ready when it answers PING.
        auto r = client();
        for (int i = 0; i < 200; ++i) {
            if (r->command({"PING"})) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
    }
    ~RedisServer() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return port_; }
    const std::string& password() const { return password_; }
    std::string url() const { return "redis://:" + password_ + "@127.0.0.1:" + std::to_string(port_) + "/0"; }
    std::unique_ptr<keyrelay::relay::Redis> client(int64_t timeout_ms = 500) const {
        keyrelay::relay::RedisUrl u;
        u.port = port_;
        u.password = password_;
        keyrelay::relay::RedisOptions o;
        o.connect_timeout_ms = timeout_ms;
        o.command_timeout_ms = timeout_ms;
        return std::make_unique<keyrelay::relay::Redis>(u, o);
    }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

private:
    TempDir dir_;
    int port_ = 0;
    std::string password_;
    pid_t pid_ = -1;
};

}  // namespace testutil
