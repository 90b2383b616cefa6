// A sandbox server started in-process on 127.0.0.1 port 0, and the small client steps the tests repeat.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "keyrelay/http.h"
#include "sandbox.h"

namespace sbt {

using json = nlohmann::json;
using keyrelay::Params;
using keyrelay::sandbox::Options;

inline const std::string kKeapRedirect = "http://127.0.0.1:8080/callback/keap";
inline const std::string kJiraRedirect = "http://127.0.0.1:8080/callback/jira";

inline json body_of(const httplib::Result& res) {
    REQUIRE(res);
    json j = json::parse(res->body, nullptr, false);
    INFO("body: " << res->body);
    REQUIRE(!j.is_discarded());
    return j;
}

// RFC 6749 §2.3.1: Basic base64(urlencode(id) ":" urlencode(secret)).
inline std::string basic(const std::string& id, const std::string& secret) {
    return "Basic " + keyrelay::base64_encode(keyrelay::form_urlencode(id) + ":" + keyrelay::form_urlencode(secret));
}

inline Params query_of(const std::string& url) {
    auto q = keyrelay::parse_query(url);
    REQUIRE(q.ok());
    return *q;
}

inline std::string qparam(const std::string& url, const char* name) {
    return keyrelay::param(query_of(url), name).value_or("<absent>");
}

struct Sandbox {
    keyrelay::sandbox::Server server;
    int port = 0;
    json config;

    explicit Sandbox(Options options = {}) : server(std::move(options)) {
        auto p = server.start();
        INFO((p.ok() ? std::string() : p.error().message));
        REQUIRE(p.ok());
        port = *p;
        config = body_of(client().Get("/sandbox/config"));
    }

    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_connection_timeout(5);
        c.set_read_timeout(15);
        c.set_url_encode(false);   // the tests encode their queries themselves (0.11 turns "+" into %2B)
        return c;
    }

    httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) const {
        return client().Get(path.c_str(), headers);
    }
    httplib::Result post(const std::string& path, const std::string& body, const char* content_type,
                         const httplib::Headers& headers = {}) const {
        return client().Post(path.c_str(), headers, body, content_type);
    }
    httplib::Result post_form(const std::string& path, const Params& form, const httplib::Headers& headers = {}) const {
        return post(path, keyrelay::form_encode(form), "application/x-www-form-urlencoded", headers);
    }
    httplib::Result post_json(const std::string& path, const json& body, const httplib::Headers& headers = {}) const {
        return post(path, body.dump(), "application/json", headers);
    }

    // The exact bytes of an answer. cpp-httplib 0.11's client percent-decodes response header values (Location
    // included), so exact-encoding checks read the wire instead.
    std::string raw_http(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "application/x-www-form-urlencoded") const {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
        if (!body.empty() || method == "POST") {
            req += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
        }
        req += "\r\n" + body;
        REQUIRE(send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size()));
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
        close(fd);
        return out;
    }
    // The raw value of a header in a raw answer ("" when absent).
    static std::string raw_header(const std::string& answer, const std::string& name) {
        const std::string head = answer.substr(0, answer.find("\r\n\r\n"));
        size_t pos = 0;
        while ((pos = head.find("\r\n", pos)) != std::string::npos) {
            pos += 2;
            size_t colon = head.find(':', pos);
            size_t end = head.find("\r\n", pos);
            if (colon == std::string::npos || (end != std::string::npos && colon > end)) continue;
            if (keyrelay::iequals(head.substr(pos, colon - pos), name)) {
                size_t v = head.find_first_not_of(' ', colon + 1);
                return head.substr(v, (end == std::string::npos ? head.size() : end) - v);
            }
        }
        return "";
    }

    std::string keap_secret() const { return config["keap"]["client_secret"].get<std::string>(); }
    std::string keap_id() const { return config["keap"]["client_id"].get<std::string>(); }
    std::string jira_id() const { return config["jira"]["client_id"].get<std::string>(); }
    std::string jira_secret() const { return config["jira"]["client_secret"].get<std::string>(); }

    // Presses Allow on the Keap consent page; returns the redirect's Location.
    std::string keap_decide(const std::string& decision, const std::string& redirect = kKeapRedirect,
                            const std::string& state = "st-1") const {
        const std::string answer = raw_http("POST", "/keap/app/oauth/authorize",
                                            keyrelay::form_encode({{"client_id", keap_id()},
                                                                   {"redirect_uri", redirect},
                                                                   {"response_type", "code"},
                                                                   {"scope", "full"},
                                                                   {"state", state},
                                                                   {"decision", decision}}));
        INFO(answer);
        REQUIRE(answer.rfind("HTTP/1.1 302 ", 0) == 0);
        return raw_header(answer, "Location");
    }
    std::string keap_code(const std::string& redirect = kKeapRedirect) const {
        return qparam(keap_decide("allow", redirect), "code");
    }
    httplib::Result keap_token(const Params& form) const {
        return post_form("/keap/token", form, {{"Authorization", basic(keap_id(), keap_secret())}});
    }
    json keap_tokens() const {
        auto res = keap_token({{"grant_type", "authorization_code"}, {"code", keap_code()},
                               {"redirect_uri", kKeapRedirect}});
        REQUIRE(res->status == 200);
        return body_of(res);
    }
    httplib::Result keap_refresh(const std::string& refresh_token) const {
        return keap_token({{"grant_type", "refresh_token"}, {"refresh_token", refresh_token}});
    }

    std::string jira_decide(const std::string& decision, const std::string& scope,
                            const std::string& redirect = kJiraRedirect) const {
        const std::string answer = raw_http("POST", "/jira/authorize",
                                            keyrelay::form_encode({{"audience", "api.atlassian.com"},
                                                                   {"client_id", jira_id()},
                                                                   {"scope", scope},
                                                                   {"redirect_uri", redirect},
                                                                   {"state", "js-1"},
                                                                   {"response_type", "code"},
                                                                   {"prompt", "consent"},
                                                                   {"decision", decision}}));
        INFO(answer);
        REQUIRE(answer.rfind("HTTP/1.1 302 ", 0) == 0);
        return raw_header(answer, "Location");
    }
    httplib::Result jira_token(const json& body) const { return post_json("/jira/oauth/token", body); }
    json jira_tokens(const std::string& scope = "read:jira-user offline_access") const {
        auto res = jira_token({{"grant_type", "authorization_code"},
                               {"client_id", jira_id()},
                               {"client_secret", jira_secret()},
                               {"code", qparam(jira_decide("allow", scope), "code")},
                               {"redirect_uri", kJiraRedirect}});
        REQUIRE(res->status == 200);
        return body_of(res);
    }
    httplib::Result jira_refresh(const std::string& refresh_token) const {
        return jira_token({{"grant_type", "refresh_token"},
                           {"client_id", jira_id()},
                           {"client_secret", jira_secret()},
                           {"refresh_token", refresh_token}});
    }

    void advance(double seconds) const {
        auto res = post_json("/sandbox/clock", {{"advance_seconds", seconds}});
        REQUIRE(res->status == 200);
    }
    json stats() const { return body_of(get("/sandbox/stats")); }
    void fail(const json& spec) const {
        auto res = post_json("/sandbox/fail", spec);
        REQUIRE(res);
        REQUIRE(res->status == 200);
    }
    void limits(const json& spec) const {
        auto res = post_json("/sandbox/limits", spec);
        REQUIRE(res);
        REQUIRE(res->status == 200);
    }
};

inline httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

}  // namespace sbt
