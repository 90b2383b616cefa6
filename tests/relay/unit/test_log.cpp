#include <catch2/catch.hpp>

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "obs/log.h"

using namespace keyrelay::relay;

namespace {

// Runs fn with stderr redirected into a pipe; returns what was written.
template <class Fn>
std::string capture_stderr(Fn fn) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    int saved = ::dup(STDERR_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    fn();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fds[1]);
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    return out;
}

}  // namespace

TEST_CASE("log lines reach a pipe whole and in order, also next to another thread's lines", "[log]") {
    const std::string long_path = "/proxy/keap/" + std::string(PIPE_BUF + 100, 'x');   // one line > PIPE_BUF
    std::string out = capture_stderr([&] {
        std::thread other([] {
            for (int i = 0; i < 200; ++i) {
                RequestLogLine l;
                l.request_id = "other";
                l.method = "GET";
                l.path = "/healthz";
                l.status = 200;
                log_request(l);
            }
        });
        for (int i = 0; i < 300; ++i) {
            std::string id = "batch-" + std::to_string(i);
            RequestLogLine l;
            l.request_id = id;
            l.method = "GET";
            l.path = i == 150 ? std::string_view(long_path) : std::string_view("/proxy/keap/crm/rest/v1/contacts");
            l.status = 200;
            l.provider = "keap";
            log_request(l);
        }
        other.join();
    });
    std::istringstream lines(out);
    std::string line;
    int next = 0, others = 0;
    while (std::getline(lines, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());   // no line was cut or interleaved
        std::string id = j.value("request_id", "");
        if (id == "other") {
            ++others;
            continue;
        }
        CHECK(id == "batch-" + std::to_string(next));
        ++next;
    }
    CHECK(next == 300);
    CHECK(others == 200);
}

TEST_CASE("log lines written to a regular file by three threads arrive whole and in order", "[log]") {
    char path[] = "/tmp/keyrelay-log-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    int saved = ::dup(STDERR_FILENO);
    ::dup2(fd, STDERR_FILENO);
    auto writer = [](const std::string& who, int count) {
        for (int i = 0; i < count; ++i) {
            std::string id = who + "-" + std::to_string(i);
            RequestLogLine l;
            l.request_id = id;
            l.method = "GET";
            l.path = "/proxy/keap/crm/rest/v1/contacts?email=ada@example.com";
            l.status = 200;
            log_request(l);
        }
    };
    std::thread a(writer, "a", 2000);
    std::thread b(writer, "b", 2000);
    std::thread c(writer, "c", 500);
    a.join();
    b.join();
    c.join();
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    ::close(fd);
    std::ifstream in(path);
    std::string line;
    std::map<char, int> next;
    size_t lines = 0;
    while (std::getline(in, line)) {
        ++lines;
        auto j = nlohmann::json::parse(line, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());   // no line was cut or interleaved
        std::string id = j.value("request_id", "");
        REQUIRE(id.size() > 2);
        CHECK(id.substr(2) == std::to_string(next[id[0]]++));   // each writer's lines in its order
    }
    ::unlink(path);
    CHECK(lines == 4500);
    CHECK(next['a'] == 2000);
    CHECK(next['b'] == 2000);
    CHECK(next['c'] == 500);
}

TEST_CASE("log strings are escaped as JSON and invalid UTF-8 becomes U+FFFD", "[log]") {
    struct Case {
        std::string in;
        std::string decoded;   // what a JSON parser reads back
    };
    const std::vector<Case> cases = {
        {"", ""},
        {"/proxy/keap/crm/rest/v1/contacts?email=ada@example.com",
         "/proxy/keap/crm/rest/v1/contacts?email=ada@example.com"},
        {"a\"b\\c", "a\"b\\c"},
        {"line\nbreak\r\ttab\x01\x7f", "line\nbreak\r\ttab\x01\x7f"},
        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},
        {"bad \xff byte", "bad \xef\xbf\xbd byte"},
        {"cut \xe2\x82", "cut \xef\xbf\xbd\xef\xbf\xbd"},
        {std::string("nul\0x", 5), std::string("nul\0x", 5)},
    };
    for (const auto& c : cases) {
        std::string out;
        append_json_string(out, c.in);
        INFO(out);
        auto j = nlohmann::json::parse(out, nullptr, false);
        REQUIRE(j.is_string());
        CHECK(j.get<std::string>() == c.decoded);
        for (char ch : out) CHECK((static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f));   // nothing raw in a line
    }
}
