// A real redis-server for tests (testutil::RedisServer): started on a free loopback port in a private temporary
// directory (AOF on, so a restart keeps the data), killed by the destructor. stop() / start() simulate an outage and
// a recovery on the same port; pause() / resume() (SIGSTOP / SIGCONT) simulate a Redis that hangs. query() runs one
// command on a fresh connection and flattens the reply to strings, for looking at what is stored.
#pragma once

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"

namespace testutil {

class RedisServer {
public:
    // password: empty = no AUTH (requirepass otherwise).
    explicit RedisServer(std::string password = {}) : password_(std::move(password)), port_(free_port()) { start(); }
    ~RedisServer() { kill_now(); }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    int port() const { return port_; }
    std::string url() const {
        return "redis://" + (password_.empty() ? std::string() : ":" + password_ + "@") + "127.0.0.1:" +
               std::to_string(port_) + "/0";
    }
    const std::string& dir() const { return dir_.path(); }

    void start() {
        if (pid_ > 0) return;
        std::string port = std::to_string(port_);
        std::vector<std::string> args{"redis-server", "--port",        port,       "--bind",      "127.0.0.1",
                                      "--dir",        dir_.path(),     "--appendonly", "yes",      "--save",
                                      "",             "--daemonize",   "no",       "--logfile",   dir_.path() + "/redis.log"};
        if (!password_.empty()) {
            args.push_back("--requirepass");
            args.push_back(password_);
        }
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execvp("redis-server", argv.data());
            ::_exit(127);
        }
        pid_ = pid;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            if (ping()) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("redis-server exited at start (is it installed? see " + dir_.path() +
                                         "/redis.log)");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("redis-server did not answer PING within 10 s");
    }

    // A clean shutdown (SIGTERM: Redis writes its AOF and exits). The port stays reserved for start().
    void stop() {
        if (pid_ <= 0) return;
        resume();
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    void pause() {
        if (pid_ > 0) ::kill(pid_, SIGSTOP);
    }
    void resume() {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
    }

    // One command; the reply flattened: a string, status or integer is one element, an array its elements
    // (nested arrays flattened), nil is "(nil)". Throws when Redis cannot be reached or answers an error.
    std::vector<std::string> query(const std::vector<std::string>& argv) const {
        redisContext* c = connect();
        if (c == nullptr) throw std::runtime_error("cannot connect to the test redis-server");
        std::vector<const char*> p;
        std::vector<size_t> len;
        for (const auto& a : argv) {
            p.push_back(a.data());
            len.push_back(a.size());
        }
        auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(p.size()), p.data(), len.data()));
        if (r == nullptr) {
            redisFree(c);
            throw std::runtime_error("the test redis-server dropped the connection");
        }
        std::vector<std::string> out;
        std::string error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : std::string();
        flatten(r, out);
        freeReplyObject(r);
        redisFree(c);
        if (!error.empty()) throw std::runtime_error("redis: " + error);
        return out;
    }
    std::string query_one(const std::vector<std::string>& argv) const {
        auto r = query(argv);
        return r.empty() ? std::string() : r.front();
    }

private:
    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        socklen_t n = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0) {
            if (fd >= 0) ::close(fd);
            throw std::runtime_error("no free port");
        }
        ::close(fd);
        return ntohs(a.sin_port);
    }
    redisContext* connect() const {
        timeval tv{1, 0};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
        if (c == nullptr || c->err != 0) {
            if (c != nullptr) redisFree(c);
            return nullptr;
        }
        redisSetTimeout(c, tv);
        if (!password_.empty()) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "AUTH %s", password_.c_str()));
            bool ok = r != nullptr && r->type != REDIS_REPLY_ERROR;
            if (r != nullptr) freeReplyObject(r);
            if (!ok) {
                redisFree(c);
                return nullptr;
            }
        }
        return c;
    }
    bool ping() const {
        redisContext* c = connect();
        if (c == nullptr) return false;
        auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
        bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
        if (r != nullptr) freeReplyObject(r);
        redisFree(c);
        return ok;
    }
    static void flatten(const redisReply* r, std::vector<std::string>& out) {
        switch (r->type) {
            case REDIS_REPLY_ARRAY:
                for (size_t i = 0; i < r->elements; ++i) flatten(r->element[i], out);
                break;
            case REDIS_REPLY_INTEGER: out.push_back(std::to_string(r->integer)); break;
            case REDIS_REPLY_NIL: out.push_back("(nil)"); break;
            default: out.emplace_back(r->str, r->len);
        }
    }
    void kill_now() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    TempDir dir_;
    std::string password_;
    int port_;
    pid_t pid_ = -1;
};

}  // namespace testutil
