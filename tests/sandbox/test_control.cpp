// The control API: config, stats, failure injection, revoke, reset, clock, data files.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <unistd.h>

#include "keyrelay/xmlrpc.h"
#include "sandbox_fixture.h"

using namespace sbt;

namespace {

httplib::Headers pat(const Sandbox& sb) { return {{"X-Keap-API-Key", sb.config["keap"]["pat"].get<std::string>()}}; }

const std::string kContacts = "/keap/crm/rest/v1/contacts";

}  // namespace

TEST_CASE("config lists every credential and URL at the running port", "[control]") {
    Sandbox sb;
    const std::string base = "http://127.0.0.1:" + std::to_string(sb.port);
    CHECK(sb.server.base_url() == base);
    const json& c = sb.config;
    CHECK(c["base_url"] == base);
    CHECK(c["keap"]["app_name"] == "keyrelay demo app");
    CHECK(c["keap"]["account"] == "ab123.infusionsoft.com");
    CHECK(c["keap"]["authorize_url"] == base + "/keap/app/oauth/authorize");
    CHECK(c["keap"]["token_url"] == base + "/keap/token");
    CHECK(c["keap"]["api_base"] == base + "/keap");
    CHECK(c["keap"]["xmlrpc_url"] == base + "/keap/crm/xmlrpc/v1");
    CHECK(c["keap"]["pat"].get<std::string>().rfind("KeapPAT", 0) == 0);
    CHECK(c["keap"]["redirect_uris"] == json::array({"http://127.0.0.1:8080/callback/keap",
                                                     "http://127.0.0.1:8080/callback/jira",
                                                     "http://localhost:8080/callback/keap",
                                                     "http://localhost:8080/callback/jira"}));
    CHECK(c["jira"]["authorize_url"] == base + "/jira/authorize");
    CHECK(c["jira"]["token_url"] == base + "/jira/oauth/token");
    CHECK(c["jira"]["accessible_resources_url"] == base + "/jira/oauth/token/accessible-resources");
    CHECK(c["jira"]["api_base"] == base + "/jira");
    CHECK(c["jira"]["site_name"] == "keyrelay-sandbox");
    CHECK(c["jira"]["site_url"] == "https://keyrelay-sandbox.atlassian.net");
    CHECK(c["jira"]["api_token_email"] == "admin@example.com");
    CHECK(c["jira"]["no_browse_email"] == "intern@example.com");
    for (const char* k : {"client_id", "client_secret", "cloud_id", "api_token", "pat", "no_browse_api_token"}) {
        INFO(k);
        CHECK(!c["jira"][k].get<std::string>().empty());
    }
}

TEST_CASE("stats count requests by method and path without the query", "[control]") {
    Sandbox sb;
    sb.get(kContacts + "?email=a%40b.c", pat(sb));
    sb.get(kContacts + "?email=x%40y.z", pat(sb));
    sb.post(kContacts, "{}", "application/json", pat(sb));
    json r = sb.stats()["requests"];
    CHECK(r["GET /keap/crm/rest/v1/contacts"] == 2);
    CHECK(r["POST /keap/crm/rest/v1/contacts"] == 1);
    CHECK_FALSE(r.contains("GET /sandbox/config"));
}

TEST_CASE("each failure mode answers the next requests to a path as asked", "[control][fail]") {
    Sandbox sb;
    SECTION("html_502") {
        sb.fail({{"path", kContacts}, {"mode", "html_502"}});
        auto res = sb.get(kContacts, pat(sb));
        CHECK(res->status == 502);
        CHECK(res->get_header_value("Content-Type").find("text/html") == 0);
        CHECK(res->body.find("<title>502 Bad Gateway</title>") != std::string::npos);
    }
    SECTION("html_503") {
        sb.fail({{"path", kContacts}, {"mode", "html_503"}});
        auto res = sb.get(kContacts, pat(sb));
        CHECK(res->status == 503);
        CHECK(res->body.find("<title>503 Service Unavailable</title>") != std::string::npos);
    }
    SECTION("http_596") {
        sb.fail({{"path", "/keap/crm/xmlrpc/v1"}, {"mode", "http_596"}});
        auto res = sb.post("/keap/crm/xmlrpc/v1", keyrelay::xmlrpc::encode_call("DataService.getUserInfo", {}),
                           "text/xml", pat(sb));
        CHECK(res->status == 596);
        CHECK(res->body == "<h1>596 Service Not Found</h1>");
    }
    SECTION("gateway_fault") {
        sb.fail({{"path", kContacts}, {"mode", "gateway_fault"}});
        sb.fail({{"path", kContacts}, {"mode", "gateway_fault"}, {"status", 504}});
        auto first = sb.get(kContacts, pat(sb));
        CHECK(first->status == 503);
        CHECK(body_of(first)["fault"]["detail"]["errorcode"] == "messaging.adaptors.http.flow.ServiceUnavailable");
        auto second = sb.get(kContacts, pat(sb));
        CHECK(second->status == 504);
        CHECK(body_of(second)["fault"]["faultstring"] == "Gateway Timeout");
    }
    SECTION("rate_limit, Keap") {
        sb.fail({{"path", kContacts}, {"mode", "rate_limit"}});
        auto res = sb.get(kContacts, pat(sb));
        CHECK(res->status == 429);
        CHECK(body_of(res)["message"] == "Quota Exceeded");
        CHECK(res->get_header_value("x-keap-product-throttle-available") == "0");
    }
    SECTION("rate_limit, Jira") {
        sb.fail({{"path", "/jira/rest/api/3/user/search"}, {"mode", "rate_limit"}});
        auto res = sb.get("/jira/rest/api/3/user/search?query=ada");
        CHECK(res->status == 429);
        CHECK(res->get_header_value("Retry-After") == "30");
        CHECK(res->has_header("X-RateLimit-Reset"));
    }
    SECTION("slow") {
        sb.fail({{"path", kContacts}, {"mode", "slow"}, {"delay_ms", 400}});
        auto t0 = std::chrono::steady_clock::now();
        auto res = sb.get(kContacts, pat(sb));
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        CHECK(res->status == 200);
        CHECK(ms >= 400);
    }
    SECTION("reset") {
        sb.fail({{"path", kContacts}, {"mode", "reset"}});
        auto res = sb.get(kContacts, pat(sb));
        CHECK_FALSE(res);
        CHECK(sb.get(kContacts, pat(sb))->status == 200);
    }
    SECTION("bad_xml_char") {
        sb.fail({{"path", "/keap/crm/xmlrpc/v1"}, {"mode", "bad_xml_char"}});
        auto res = sb.post("/keap/crm/xmlrpc/v1", keyrelay::xmlrpc::encode_call("DataService.getUserInfo", {}),
                           "text/xml", pat(sb));
        REQUIRE(res->status == 200);
        CHECK(res->body.find('\x0B') != std::string::npos);
        auto decoded = keyrelay::xmlrpc::decode_response(res->body);
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.error().code == "xmlrpc.malformed");
    }
    SECTION("status") {
        sb.fail({{"path", "/jira/"}, {"mode", "status"}, {"status", 418}});
        auto res = sb.get("/jira/rest/api/3/myself");
        CHECK(res->status == 418);
        CHECK(body_of(res)["errorMessages"].size() == 1);
    }
}

TEST_CASE("an injected failure matches by path prefix and lasts count requests", "[control][fail]") {
    Sandbox sb;
    sb.fail({{"path", "/keap/"}, {"mode", "html_503"}, {"count", 2}});
    CHECK(sb.get(kContacts + "?email=x", pat(sb))->status == 503);
    CHECK(sb.keap_token({{"grant_type", "refresh_token"}, {"refresh_token", "x"}})->status == 503);
    CHECK(sb.get(kContacts, pat(sb))->status == 200);
    CHECK(sb.get("/jira/rest/api/3/myself")->status == 401);   // other paths never failed
}

TEST_CASE("malformed failure requests are refused with 400", "[control][fail]") {
    Sandbox sb;
    CHECK(sb.post_json("/sandbox/fail", {{"path", kContacts}, {"mode", "explode"}})->status == 400);
    CHECK(sb.post_json("/sandbox/fail", {{"path", "keap"}, {"mode", "reset"}})->status == 400);
    CHECK(sb.post_json("/sandbox/fail", {{"path", kContacts}, {"mode", "slow"}, {"count", 0}})->status == 400);
    CHECK(sb.post_json("/sandbox/fail", {{"path", kContacts}, {"mode", "status"}, {"status", "500"}})->status == 400);
    CHECK(sb.post("/sandbox/fail", "not json", "application/json")->status == 400);
    CHECK(sb.get("/sandbox/fail")->status == 405);
}

TEST_CASE("revoking by refresh token kills only that grant", "[control]") {
    Sandbox sb;
    json a = sb.keap_tokens();
    json b = sb.keap_tokens();
    auto res = sb.post_json("/sandbox/revoke", {{"refresh_token", a["refresh_token"]}});
    CHECK(body_of(res)["revoked"] == 1);
    CHECK(sb.get(kContacts, bearer(a["access_token"].get<std::string>()))->status == 401);
    CHECK(sb.get(kContacts, bearer(b["access_token"].get<std::string>()))->status == 200);
    CHECK(body_of(sb.post_json("/sandbox/revoke", {{"refresh_token", "unknown"}}))["revoked"] == 0);
    CHECK(sb.post_json("/sandbox/revoke", json::object())->status == 400);
}

TEST_CASE("revoking a provider kills all its grants and leaves the other provider alone", "[control]") {
    Sandbox sb;
    json k = sb.keap_tokens();
    json j = sb.jira_tokens();
    CHECK(body_of(sb.post_json("/sandbox/revoke", {{"provider", "jira"}}))["revoked"] == 1);
    CHECK(sb.jira_refresh(j["refresh_token"].get<std::string>())->status == 403);
    CHECK(sb.keap_refresh(k["refresh_token"].get<std::string>())->status == 200);
}

TEST_CASE("reset brings back the data and forgets grants, stats, failures, limits and redirect URIs", "[control]") {
    Sandbox sb;
    json t = sb.keap_tokens();
    sb.client().Patch((kContacts + "/101").c_str(), pat(sb), R"({"given_name":"Changed"})", "application/json");
    sb.fail({{"path", "/jira/"}, {"mode", "html_502"}, {"count", 5}});
    sb.limits({{"keap_key_per_second", 1}});
    sb.post_json("/sandbox/redirect-uris", {{"provider", "keap"}, {"redirect_uri", "http://127.0.0.1:1/cb"}});
    sb.advance(1000);
    REQUIRE(sb.post("/sandbox/reset", "", "application/json")->status == 200);

    CHECK(body_of(sb.get(kContacts + "/101", pat(sb)))["given_name"] == "Ada");
    CHECK(sb.get(kContacts, bearer(t["access_token"].get<std::string>()))->status == 401);
    CHECK(sb.get("/jira/rest/api/3/myself")->status == 401);   // no 502 any more
    json s = sb.stats();
    CHECK(s["tokens"] == json::object());
    CHECK(body_of(sb.get("/sandbox/limits"))["keap_key_per_second"] == 10);
    CHECK(body_of(sb.get("/sandbox/config"))["keap"]["redirect_uris"].size() == 4);
}

TEST_CASE("the sandbox clock only moves forward", "[control]") {
    Sandbox sb;
    CHECK(sb.post_json("/sandbox/clock", {{"advance_seconds", -5}})->status == 400);
    json a = body_of(sb.post_json("/sandbox/clock", {{"advance_seconds", 100}}));
    CHECK(a["offset_seconds"] == 100);
}

TEST_CASE("a data file replaces the sample data", "[control][data]") {
    char path[] = "/tmp/keyrelay-sandbox-data-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream out(path);
        out << R"({"keap_contacts":[{"id":7,"given_name":"Tim","family_name":"Berners-Lee","email":"tim@example.com"},
                   {"given_name":"No","family_name":"Id","email_addresses":[{"email":"noid@example.com","field":"EMAIL1"}]}],
                  "jira_users":[{"display_name":"Tim Berners-Lee","email":"tim@example.com","email_hidden":true}]})";
    }
    Options o;
    o.data_file = path;
    Sandbox sb(o);
    std::remove(path);
    json all = body_of(sb.get(kContacts, pat(sb)));
    CHECK(all["count"] == 2);
    CHECK(all["contacts"][0]["id"] == 7);
    CHECK(all["contacts"][1]["id"] == 8);
    CHECK(all["contacts"][1]["email_addresses"][0]["email"] == "noid@example.com");
    const auto admin = httplib::Headers{
        {"Authorization", "Basic " + keyrelay::base64_encode("admin@example.com:" +
                                                            sb.config["jira"]["api_token"].get<std::string>())}};
    json tim = body_of(sb.get("/jira/rest/api/3/user/search?query=tim%40example.com", admin));
    REQUIRE(tim.size() == 1);
    CHECK_FALSE(tim[0].contains("emailAddress"));
    CHECK(body_of(sb.get("/jira/rest/api/3/user/search?query=ada", admin)) == json::array());
    // The credential owners exist whatever the file says.
    CHECK(sb.get("/jira/rest/api/3/myself", admin)->status == 200);
}

TEST_CASE("an unreadable or malformed data file stops start with sandbox.bad_data", "[control][data]") {
    Options o;
    o.data_file = "/nonexistent/keyrelay-sandbox.json";
    keyrelay::sandbox::Server missing(o);
    auto r = missing.start();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "sandbox.bad_data");
    CHECK(!r.error().hint.empty());

    char path[] = "/tmp/keyrelay-sandbox-bad-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "{\"keap_contacts\": 3}", 20) == 20);
    close(fd);
    o.data_file = path;
    keyrelay::sandbox::Server bad(o);
    auto r2 = bad.start();
    std::remove(path);
    REQUIRE_FALSE(r2.ok());
    CHECK(r2.error().code == "sandbox.bad_data");
}

TEST_CASE("a port that is taken fails start with sandbox.bind_failed", "[control]") {
    Sandbox first;
    Options o;
    o.port = first.port;
    keyrelay::sandbox::Server second(o);
    auto r = second.start();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "sandbox.bind_failed");
    auto again = first.server.start();
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == "sandbox.already_started");
}

TEST_CASE("unknown paths get 404 in the provider's error shape", "[control]") {
    Sandbox sb;
    auto keap = sb.get("/keap/crm/rest/v1/nothing", pat(sb));
    CHECK(keap->status == 404);
    CHECK(body_of(keap).contains("message"));
    auto jira = sb.get("/jira/nothing");
    CHECK(jira->status == 404);
    CHECK(body_of(jira).contains("errorMessages"));
    CHECK(sb.get("/sandbox/nothing")->status == 404);
}
