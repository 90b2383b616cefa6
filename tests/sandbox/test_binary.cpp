// The built keyrelay-sandbox program: its first stdout line, its flags and a clean stop on SIGTERM.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "sandbox_fixture.h"

using namespace sbt;

namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;   // the child's stdout
    int err = -1;   // the child's stderr

    explicit Child(std::vector<std::string> args) {
        args.insert(args.begin(), KEYRELAY_SANDBOX_BIN);
        int o[2], e[2];
        REQUIRE(pipe(o) == 0);
        REQUIRE(pipe(e) == 0);
        pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            dup2(o[1], 1);
            dup2(e[1], 2);
            close(o[0]);
            close(e[0]);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        close(o[1]);
        close(e[1]);
        out = o[0];
        err = e[0];
    }

    std::string line() const {
        std::string s;
        char c;
        while (read(out, &c, 1) == 1 && c != '\n') s += c;
        return s;
    }

    std::string rest_of_stderr() const {
        std::string s;
        char buf[512];
        ssize_t n;
        while ((n = read(err, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
        return s;
    }

    int wait_exit() {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    ~Child() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        if (out >= 0) close(out);
        if (err >= 0) close(err);
    }
};

}  // namespace

TEST_CASE("the keyrelay-sandbox program prints its URL first, serves at once and stops on SIGTERM", "[binary]") {
    Child child({"--port", "0", "--auto-approve", "--access-ttl", "5"});
    const std::string first = child.line();
    std::smatch m;
    REQUIRE(std::regex_match(first, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))")));
    const int port = std::stoi(m[1]);
    CHECK(port > 0);

    httplib::Client cli("127.0.0.1", port);
    auto config = cli.Get("/sandbox/config");
    REQUIRE(config);
    json c = body_of(config);
    CHECK(c["base_url"] == "http://127.0.0.1:" + std::to_string(port));
    CHECK(c["keap"]["access_ttl"] == 5);
    CHECK(c["jira"]["access_ttl"] == 5);

    // --auto-approve: the authorize page redirects with a code at once.
    auto res = cli.Get(("/keap/app/oauth/authorize?client_id=" + c["keap"]["client_id"].get<std::string>() +
                        "&redirect_uri=" + keyrelay::form_urlencode(kKeapRedirect) + "&response_type=code&scope=full")
                           .c_str());
    REQUIRE(res);
    CHECK(res->status == 302);
    CHECK(qparam(res->get_header_value("Location"), "code") != "<absent>");

    REQUIRE(kill(child.pid, SIGTERM) == 0);
    CHECK(child.wait_exit() == 0);
}

TEST_CASE("keyrelay-sandbox stops at once on SIGINT even with an idle keep-alive connection open", "[binary]") {
    Child child({});
    std::smatch m;
    const std::string first = child.line();
    REQUIRE(std::regex_match(first, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))")));
    httplib::Client cli("127.0.0.1", std::stoi(m[1]));
    cli.set_keep_alive(true);
    REQUIRE(cli.Get("/sandbox/stats"));
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(kill(child.pid, SIGINT) == 0);
    CHECK(child.wait_exit() == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
}

TEST_CASE("keyrelay-sandbox refuses bad arguments with status 2 and the usage", "[binary]") {
    const std::vector<std::string> bad = GENERATE(std::vector<std::string>{"--port", "70000"},
                                                  std::vector<std::string>{"--port"},
                                                  std::vector<std::string>{"--access-ttl", "soon"},
                                                  std::vector<std::string>{"--frobnicate"});
    Child child(bad);
    CHECK(child.line().empty());
    CHECK(child.wait_exit() == 2);
    CHECK(child.rest_of_stderr().find("keyrelay-sandbox: ") == 0);
}

TEST_CASE("keyrelay-sandbox explains a data file it cannot read and exits 1", "[binary]") {
    Child child({"--data", "/nonexistent/data.json"});
    CHECK(child.wait_exit() == 1);
    const std::string err = child.rest_of_stderr();
    CHECK(err.find("cannot be read") != std::string::npos);
    CHECK(err.find("hint: ") != std::string::npos);
}
