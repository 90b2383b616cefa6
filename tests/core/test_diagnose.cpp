#include <catch2/catch.hpp>

#include <string>

#include "core/fixtures.h"
#include "keyrelay/diagnose.h"

using keyrelay::Diagnosis;
using keyrelay::Expect;
using keyrelay::HttpResponse;
using keyrelay::diagnose;

namespace {

HttpResponse response(int status, std::string body, std::string content_type = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (!content_type.empty()) r.headers.set("Content-Type", content_type);
    return r;
}

HttpResponse fixture(int status, const std::string& name, std::string content_type = {}) {
    return response(status, fixtures::read("diagnose/" + name), std::move(content_type));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("an HTML error page where JSON was expected is html_page and its summary quotes the title", "[diagnose]") {
    Diagnosis d = diagnose(fixture(502, "html_502_nginx.html", "text/html"), Expect::json);
    CHECK(d.code == "html_page");
    CHECK(contains(d.summary, "\"502 Bad Gateway\""));
    CHECK(contains(d.summary, "HTTP 502"));
    CHECK(contains(d.hint, "Retry"));
    CHECK_FALSE(d.retry_after_seconds.has_value());
}

TEST_CASE("an HTML page is recognised without a content type", "[diagnose]") {
    Diagnosis d = diagnose(fixture(200, "html_login_page.html"), Expect::json);
    CHECK(d.code == "html_page");
    CHECK(contains(d.summary, "\"Keap & Infusionsoft \xE2\x80\x94 Sign In\""));
    CHECK(contains(d.hint, "api.infusionsoft.com"));
}

TEST_CASE("an HTML page where XML-RPC was expected names the classic root-element error", "[diagnose]") {
    Diagnosis d = diagnose(fixture(404, "html_404_entities.html", "text/html; charset=iso-8859-1"), Expect::xmlrpc);
    CHECK(d.code == "html_page");
    CHECK(contains(d.summary, "Page <not> found \"crm\" 'v3'"));
    CHECK(contains(d.summary, "Content-Type: text/html"));
    CHECK(contains(d.hint, "root element not methodResponse"));
    CHECK(contains(d.hint, "URL is wrong"));
}

TEST_CASE("Keap's old Developer Inactive page means the legacy key is dead", "[diagnose]") {
    auto expect = GENERATE(Expect::json, Expect::xmlrpc);
    Diagnosis d = diagnose(fixture(403, "developer_inactive.html", "text/html"), expect);
    CHECK(d.code == "legacy_key_dead");
    CHECK(contains(d.summary, "Developer Inactive"));
    CHECK(contains(d.hint, "31 Oct 2024"));
    CHECK(contains(d.hint, "OAuth"));
    CHECK(contains(d.hint, "X-Keap-API-Key"));
}

TEST_CASE("Keap's old Developer Over Qps page is a rate limit", "[diagnose]") {
    Diagnosis d = diagnose(fixture(403, "developer_over_qps.html"), Expect::xmlrpc);
    CHECK(d.code == "rate_limited");
    CHECK(contains(d.summary, "Developer Over Qps"));
    CHECK(contains(d.hint, "QPS"));
    CHECK(contains(d.hint, "back off exponentially"));
}

TEST_CASE("a gateway JSON fault is gateway_fault and its errorcode chooses the hint", "[diagnose]") {
    SECTION("a quota violation is a rate limit") {
        Diagnosis d = diagnose(fixture(500, "gateway_fault_quota.json", "application/json"), Expect::json);
        CHECK(d.code == "gateway_fault");
        CHECK(contains(d.summary, "Rate limit quota violation"));
        CHECK(contains(d.summary, "policies.ratelimit.QuotaViolation"));
        CHECK(contains(d.hint, "rate limit"));
    }
    SECTION("an invalid access token is about the credentials") {
        Diagnosis d = diagnose(fixture(401, "gateway_fault_invalid_token.json"), Expect::json);
        CHECK(d.code == "gateway_fault");
        CHECK(contains(d.summary, "Invalid Access Token"));
        CHECK(contains(d.hint, "keyrelay refreshes"));
    }
    SECTION("where XML-RPC was expected it is still a gateway fault") {
        Diagnosis d = diagnose(fixture(200, "gateway_fault_quota.json", "application/json"), Expect::xmlrpc);
        CHECK(d.code == "gateway_fault");
    }
    SECTION("an XML gateway fault is recognised too") {
        Diagnosis d = diagnose(fixture(401, "gateway_fault.xml", "application/xml"), Expect::xmlrpc);
        CHECK(d.code == "gateway_fault");
        CHECK(contains(d.summary, "Invalid ApiKey"));
        CHECK(contains(d.summary, "oauth.v2.InvalidApiKey"));
    }
}

TEST_CASE("a quota-violation gateway fault carries the retry time from Keap's headers", "[diagnose]") {
    HttpResponse r = fixture(500, "gateway_fault_quota.json", "application/json");
    r.headers.set("x-keap-product-throttle-available", "0");
    r.headers.set("x-keap-product-throttle-limit", "1500");
    r.headers.set("x-keap-product-throttle-time-unit", "minute");
    r.headers.set("x-keap-product-throttle-interval", "1");
    Diagnosis d = diagnose(r, Expect::json);
    CHECK(d.code == "gateway_fault");
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 60);
}

TEST_CASE("a 401 from the token endpoint points at the Basic header and the client credentials", "[diagnose]") {
    SECTION("with Keap's misleading invalid_grant body") {
        Diagnosis d = diagnose(fixture(401, "token_401_unable_to_authenticate.json"), Expect::token);
        CHECK(d.code == "token_unauthorized");
        CHECK(contains(d.summary, "Unable to authenticate username and password"));
        CHECK(contains(d.hint, "\"Basic \""));
        CHECK(contains(d.hint, "client id and secret"));
    }
    SECTION("with an empty body") {
        Diagnosis d = diagnose(response(401, ""), Expect::token);
        CHECK(d.code == "token_unauthorized");
        CHECK(contains(d.summary, "empty body"));
    }
    SECTION("but a 401 from a REST endpoint is about the access token") {
        Diagnosis d = diagnose(fixture(401, "rest_401_v1.json", "application/json"), Expect::json);
        CHECK(d.code == "unauthorized");
        CHECK(contains(d.summary, "Invalid Access Token"));
        CHECK(contains(d.hint, "keyrelay refreshes"));
    }
}

TEST_CASE("an OAuth error body from the token endpoint is oauth_error with oauth2's explanation", "[diagnose]") {
    Diagnosis d = diagnose(fixture(400, "token_invalid_grant.json", "application/json"), Expect::token);
    CHECK(d.code == "oauth_error");
    CHECK(contains(d.summary, "Invalid refresh token"));
    CHECK_FALSE(d.hint.empty());
}

TEST_CASE("a token response with an access token is ok", "[diagnose]") {
    CHECK(diagnose(fixture(200, "token_ok.json", "application/json"), Expect::token).code == "ok");
    CHECK(diagnose(response(200, R"({"token_type":"bearer"})"), Expect::token).code == "unexpected_shape");
    CHECK(diagnose(response(200, "access_token=x&token_type=bearer", "application/x-www-form-urlencoded"),
                   Expect::token)
              .code == "wrong_content_type");
}

TEST_CASE("403 CORS origin denied tells the person to call through the relay", "[diagnose]") {
    SECTION("as Keap words it") {
        Diagnosis d = diagnose(fixture(403, "cors_origin_denied.txt", "text/plain"), Expect::json);
        CHECK(d.code == "cors_origin_denied");
        CHECK(contains(d.hint, "Never call Keap from the browser"));
        CHECK(contains(d.hint, "/proxy/"));
    }
    SECTION("in any case, inside JSON") {
        Diagnosis d = diagnose(response(403, R"({"message":"cors ORIGIN denied"})"), Expect::json);
        CHECK(d.code == "cors_origin_denied");
    }
    SECTION("but only on a 403") {
        CHECK(diagnose(response(400, "CORS origin denied"), Expect::json).code == "bad_request");
    }
}

TEST_CASE("429 takes its retry time from Retry-After seconds", "[diagnose]") {
    HttpResponse r = fixture(429, "keap_429_quota.json", "application/json");
    r.headers.set("Retry-After", "17");
    Diagnosis d = diagnose(r, Expect::json);
    CHECK(d.code == "rate_limited");
    CHECK(contains(d.summary, "Quota Exceeded"));
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 17);
    CHECK(contains(d.hint, "17 seconds"));
}

TEST_CASE("429 with a Retry-After date is measured against the response's Date header", "[diagnose]") {
    HttpResponse r = response(429, "");
    r.headers.set("Date", "Tue, 02 Jan 2024 03:04:05 GMT");
    r.headers.set("Retry-After", "Tue, 02 Jan 2024 03:06:05 GMT");
    Diagnosis d = diagnose(r, Expect::json);
    CHECK(d.code == "rate_limited");
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 120);

    r.headers.remove("Date");
    d = diagnose(r, Expect::json);
    CHECK_FALSE(d.retry_after_seconds.has_value());
    CHECK(contains(d.hint, "Tue, 02 Jan 2024 03:06:05 GMT"));
}

TEST_CASE("429 with Keap's throttle headers retries after the throttle's interval", "[diagnose]") {
    HttpResponse r = fixture(429, "keap_429_quota.json", "application/json");
    r.headers.set("x-keap-product-throttle-limit", "1500");
    r.headers.set("x-keap-product-throttle-time-unit", "minute");
    r.headers.set("x-keap-product-throttle-interval", "1");
    r.headers.set("x-keap-product-throttle-available", "0");
    r.headers.set("x-keap-product-throttle-used", "1500");
    r.headers.set("x-keap-product-quota-available", "120000");
    Diagnosis d = diagnose(r, Expect::json);
    CHECK(d.code == "rate_limited");
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 60);
    CHECK(contains(d.hint, "1500 per 1 minute"));
}

TEST_CASE("429 with Keap's daily quota used up waits for the quota to refill", "[diagnose]") {
    HttpResponse r = fixture(429, "keap_429_quota.json", "application/json");
    r.headers.set("x-keap-product-quota-limit", "150000");
    r.headers.set("x-keap-product-quota-time-unit", "day");
    r.headers.set("x-keap-product-quota-available", "0");
    SECTION("from the expiry time, in milliseconds") {
        r.headers.set("Date", "Tue, 02 Jan 2024 23:00:00 GMT");   // 1704236400
        r.headers.set("x-keap-product-quota-expiry-time", "1704238200000");
        Diagnosis d = diagnose(r, Expect::json);
        REQUIRE(d.retry_after_seconds.has_value());
        CHECK(*d.retry_after_seconds == 1800);
    }
    SECTION("from midnight UTC when there is no expiry time") {
        r.headers.set("Date", "Tue, 02 Jan 2024 23:00:00 GMT");
        Diagnosis d = diagnose(r, Expect::json);
        REQUIRE(d.retry_after_seconds.has_value());
        CHECK(*d.retry_after_seconds == 3600);
    }
    SECTION("without a Date the hint still says when") {
        Diagnosis d = diagnose(r, Expect::json);
        CHECK_FALSE(d.retry_after_seconds.has_value());
        CHECK(contains(d.hint, "midnight UTC"));
    }
}

TEST_CASE("429 with Jira's X-RateLimit-Reset is measured against the Date header", "[diagnose]") {
    HttpResponse r = response(429, R"({"errorMessages":["Rate limit exceeded."],"errors":{}})");
    r.headers.set("Date", "Thu, 25 Apr 2024 10:07:30 GMT");
    r.headers.set("X-RateLimit-Reset", "2024-04-25T10:08Z");
    r.headers.set("RateLimit-Reason", "jira-burst-based");
    Diagnosis d = diagnose(r, Expect::json);
    CHECK(d.code == "rate_limited");
    CHECK(contains(d.summary, "Rate limit exceeded."));
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 30);
    CHECK(contains(d.hint, "jira-burst-based"));

    r.headers.set("X-RateLimit-Reset", "2024-04-25T12:09:00.000+02:00");
    d = diagnose(r, Expect::json);
    REQUIRE(d.retry_after_seconds.has_value());
    CHECK(*d.retry_after_seconds == 90);
}

TEST_CASE("429 with no header about time says to back off exponentially", "[diagnose]") {
    Diagnosis d = diagnose(fixture(429, "keap_429_quota.json"), Expect::xmlrpc);
    CHECK(d.code == "rate_limited");
    CHECK_FALSE(d.retry_after_seconds.has_value());
    CHECK(contains(d.hint, "back off exponentially"));
}

TEST_CASE("an empty body is empty_body for every expectation", "[diagnose]") {
    CHECK(diagnose(response(200, ""), Expect::json).code == "empty_body");
    CHECK(diagnose(response(200, "  \r\n"), Expect::xmlrpc).code == "empty_body");
    CHECK(diagnose(response(200, ""), Expect::token).code == "empty_body");
    CHECK(diagnose(response(204, ""), Expect::json).code == "ok");
}

TEST_CASE("HTTP 596 is Keap's gateway failing to map the service", "[diagnose]") {
    auto expect = GENERATE(Expect::json, Expect::xmlrpc, Expect::token);
    Diagnosis d = diagnose(fixture(596, "http_596.json", "application/json"), expect);
    CHECK(d.code == "http_596");
    CHECK(contains(d.hint, "service"));
    CHECK(contains(d.hint, "https://api.infusionsoft.com/crm/rest/v1"));
}

TEST_CASE("a valid methodResponse is ok and a fault struct is xmlrpc_fault", "[diagnose]") {
    CHECK(diagnose(fixture(200, "xmlrpc_ok.xml", "text/xml"), Expect::xmlrpc).code == "ok");
    Diagnosis d = diagnose(fixture(200, "xmlrpc_fault.xml", "text/xml"), Expect::xmlrpc);
    CHECK(d.code == "xmlrpc_fault");
    CHECK(contains(d.summary, "No such handler: ContactService.Update"));
    CHECK(contains(d.hint, "case-sensitive"));
}

TEST_CASE("XML-RPC cut off in the middle is truncated_xml", "[diagnose]") {
    Diagnosis d = diagnose(fixture(200, "xmlrpc_truncated.xml", "text/xml"), Expect::xmlrpc);
    CHECK(d.code == "truncated_xml");
    CHECK(contains(d.summary, "LastN"));
    CHECK(contains(d.hint, "limit"));
}

TEST_CASE("XML broken by a control character is malformed_xml with its position", "[diagnose]") {
    Diagnosis d = diagnose(fixture(200, "xmlrpc_bad_char.xml", "text/xml"), Expect::xmlrpc);
    CHECK(d.code == "malformed_xml");
    CHECK(contains(d.summary, "line"));
    CHECK(contains(d.summary, "0x0B at line 3, column 55"));
    CHECK(contains(d.hint, "control character"));
}

TEST_CASE("a DOCTYPE in an XML-RPC answer is refused", "[diagnose]") {
    Diagnosis d = diagnose(fixture(200, "xmlrpc_doctype.xml", "text/xml"), Expect::xmlrpc);
    CHECK(d.code == "doctype_refused");
    CHECK(contains(d.hint, "never carries a DOCTYPE"));
}

TEST_CASE("another root element is not_method_response naming the root and its cause", "[diagnose]") {
    SECTION("an XML error document") {
        Diagnosis d = diagnose(fixture(200, "xmlrpc_other_root.xml", "application/xml"), Expect::xmlrpc);
        CHECK(d.code == "not_method_response");
        CHECK(contains(d.summary, "<Error>"));
        CHECK(contains(d.summary, "gateway or proxy"));
    }
    SECTION("a methodCall") {
        Diagnosis d = diagnose(response(200, "<?xml version=\"1.0\"?><methodCall><methodName>x</methodName>"
                                             "<params/></methodCall>"),
                               Expect::xmlrpc);
        CHECK(d.code == "not_method_response");
        CHECK(contains(d.summary, "<methodCall>"));
        CHECK(contains(d.summary, "request, not an answer"));
    }
    SECTION("JSON that is not a gateway fault, with a wrong content type") {
        Diagnosis d = diagnose(response(200, R"({"contacts":[]})", "application/json"), Expect::xmlrpc);
        CHECK(d.code == "not_method_response");
        CHECK(contains(d.summary, "JSON"));
        CHECK(contains(d.summary, "Content-Type: application/json, where text/xml was expected"));
    }
}

TEST_CASE("plain text where XML-RPC was expected is wrong_content_type", "[diagnose]") {
    Diagnosis d = diagnose(response(200, "OK", "text/plain"), Expect::xmlrpc);
    CHECK(d.code == "wrong_content_type");
    CHECK(contains(d.summary, "text/plain"));
}

TEST_CASE("REST answers are classified by shape and status", "[diagnose]") {
    CHECK(diagnose(response(200, R"({"contacts":[]})", "application/json"), Expect::json).code == "ok");
    CHECK(diagnose(response(200, R"({"contacts":[)", "application/json"), Expect::json).code == "not_json");
    CHECK(diagnose(response(200, "<ok/>", "text/xml"), Expect::json).code == "wrong_content_type");
    CHECK(diagnose(fixture(403, "jira_403.json"), Expect::json).code == "forbidden");
    CHECK(diagnose(response(404, R"({"message":"Not Found"})"), Expect::json).code == "not_found");
    CHECK(diagnose(response(500, "oops"), Expect::json).code == "server_error");
    CHECK(diagnose(response(302, ""), Expect::json).code == "http_error");
    Diagnosis d = diagnose(fixture(403, "jira_403.json"), Expect::json);
    CHECK(contains(d.summary, "You do not have the permission to see the specified user."));
}

TEST_CASE("expect_from_string maps names and defaults to json", "[diagnose]") {
    CHECK(keyrelay::expect_from_string("token") == Expect::token);
    CHECK(keyrelay::expect_from_string("xmlrpc") == Expect::xmlrpc);
    CHECK(keyrelay::expect_from_string("json") == Expect::json);
    CHECK(keyrelay::expect_from_string("") == Expect::json);
    CHECK(keyrelay::expect_from_string("soap") == Expect::json);
}

TEST_CASE("html_title decodes entities and collapses whitespace", "[diagnose]") {
    using keyrelay::html_title;
    CHECK(html_title("<title>  A &amp; B\n\t &lt;C&gt; &quot;D&quot; &#39;E&#39; </title>") == "A & B <C> \"D\" 'E'");
    CHECK(html_title("<TITLE lang=\"en\">Up</TITLE>") == "Up");
    CHECK(html_title("<titlebar>no</titlebar><title>yes</title>") == "yes");
    CHECK(html_title("<html><body>no title</body></html>").empty());
    CHECK(html_title("<title>never closed").empty());
    CHECK(html_title("<title>&bogus; &amp</title>") == "&bogus; &amp");
}

TEST_CASE("every prefix of every ugly body is classified with a code, a summary and a hint", "[diagnose]") {
    // Truncation at every byte is what a dropped connection produces; none of it may crash or go unexplained.
    const char* names[] = {"html_502_nginx.html", "html_login_page.html", "html_404_entities.html",
                           "developer_inactive.html", "developer_over_qps.html", "gateway_fault_quota.json",
                           "gateway_fault.xml", "keap_429_quota.json", "token_invalid_grant.json", "token_ok.json",
                           "xmlrpc_ok.xml", "xmlrpc_fault.xml", "xmlrpc_bad_char.xml", "xmlrpc_doctype.xml",
                           "xmlrpc_other_root.xml"};
    const int statuses[] = {200, 401, 403, 429, 502};
    for (const char* name : names) {
        std::string body = fixtures::read(std::string("diagnose/") + name);
        for (size_t n = 0; n <= body.size(); ++n) {
            for (Expect e : {Expect::json, Expect::xmlrpc, Expect::token}) {
                for (int status : statuses) {
                    Diagnosis d = diagnose(response(status, body.substr(0, n)), e);
                    if (d.code.empty() || d.summary.empty() || d.hint.empty()) {
                        FAIL_CHECK(name << " cut at " << n << " (status " << status << ") gave no diagnosis");
                    }
                    if (status != 200 && d.code == "ok") {
                        FAIL_CHECK(name << " cut at " << n << " (status " << status << ") called ok");
                    }
                }
            }
        }
    }
}

TEST_CASE("a truncated methodResponse at any point after the root opens is truncated_xml", "[diagnose]") {
    std::string body = fixtures::read("diagnose/xmlrpc_ok.xml");
    size_t root = body.find("<methodResponse>") + std::string("<methodResponse>").size();
    size_t end = body.find("</methodResponse>");
    for (size_t n = root; n < end; ++n) {
        Diagnosis d = diagnose(response(200, body.substr(0, n), "text/xml"), Expect::xmlrpc);
        if (d.code != "truncated_xml") FAIL_CHECK("cut at " << n << ": " << d.code << " " << d.summary);
    }
}

TEST_CASE("summaries never carry the server's control bytes into logs", "[diagnose]") {
    HttpResponse r = response(200, R"({"contacts":[]})");
    r.headers.set("Content-Type", "text/plain\r\nX-Injected: yes");
    Diagnosis d = diagnose(r, Expect::xmlrpc);
    CHECK(d.code == "not_method_response");
    CHECK(contains(d.summary, "x-injected: yes"));
    CHECK(d.summary.find_first_of("\r\n") == std::string::npos);

    Diagnosis f = diagnose(response(502, R"({"fault":{"faultstring":"bad\u0000\u001b[31m","detail":{"errorcode":"x\ny"}}})"),
                           Expect::json);
    CHECK(f.code == "gateway_fault");
    for (char c : f.summary) CHECK(static_cast<unsigned char>(c) >= 0x20);
}
