#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/util.h"
#include "obs/log.h"
#include "obs/metrics.h"

using namespace keyrelay;
using namespace keyrelay::relay;

TEST_CASE("request targets are logged with credential-like query values redacted", "[log]") {
    CHECK(redact_target("/callback/keap?code=abc123&state=xyz&scope=full%7Cab123.infusionsoft.com") ==
          "/callback/keap?code=REDACTED&state=REDACTED&scope=full%7Cab123.infusionsoft.com");
    CHECK(redact_target("/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com&limit=1") ==
          "/proxy/keap/crm/rest/v1/contacts?email=ada%40example.com&limit=1");
    SECTION("names are matched case-insensitively and as substrings") {
        CHECK(redact_target("/x?Access_Token=t1&refresh_token=t2&api_key=k&X-Api-Key=k2&password=p") ==
              "/x?Access_Token=REDACTED&refresh_token=REDACTED&api_key=REDACTED&X-Api-Key=REDACTED&password=REDACTED");
    }
    SECTION("a percent-encoded name is decoded before the check") {
        CHECK(redact_target("/x?acc%65ss_token=secret") == "/x?acc%65ss_token=REDACTED");
    }
    SECTION("an undecodable name is redacted") { CHECK(redact_target("/x?to%zzken=secret") == "/x?to%zzken=REDACTED"); }
    SECTION("a target without a query is unchanged") { CHECK(redact_target("/healthz") == "/healthz"); }
    SECTION("a parameter without a value is kept as is") { CHECK(redact_target("/x?flag&code=1") == "/x?flag&code=REDACTED"); }
}

TEST_CASE("cookie values are found by exact name in a Cookie header", "[http_util]") {
    const std::string header = "keyrelay_oauth_keap=st4te; keyrelay_session=abc; x=\"quoted\"";
    CHECK(cookie_value(header, "keyrelay_session") == std::optional<std::string>("abc"));
    CHECK(cookie_value(header, "keyrelay_oauth_keap") == std::optional<std::string>("st4te"));
    CHECK(cookie_value(header, "x") == std::optional<std::string>("quoted"));
    CHECK_FALSE(cookie_value(header, "keyrelay").has_value());
    CHECK_FALSE(cookie_value(header, "session").has_value());
    CHECK_FALSE(cookie_value("", "keyrelay_session").has_value());
    CHECK(cookie_value("a=1;b=2", "b") == std::optional<std::string>("2"));
}

TEST_CASE("errors are serialized as the one JSON shape", "[http_util]") {
    auto body = nlohmann::json::parse(error_json(make_error("proxy.bad_path", "bad \"path\"", "fix it")));
    CHECK(body == nlohmann::json{{"error", {{"code", "proxy.bad_path"}, {"message", "bad \"path\""}, {"hint", "fix it"}}}});
}

TEST_CASE("HTML error pages escape everything they show and link back", "[http_util]") {
    std::string page = html_error_page(make_error("oauth.callback_error", "<script>alert(1)</script>", "a & b \"c\" 'd'"));
    CHECK(page.find("<script>") == std::string::npos);
    CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    CHECK(page.find("a &amp; b &quot;c&quot; &#39;d&#39;") != std::string::npos);
    CHECK(page.find("<a href=\"/\">") != std::string::npos);
    CHECK(page.find("oauth.callback_error") != std::string::npos);
}

TEST_CASE("static files get the content types browsers require", "[http_util]") {
    CHECK(content_type_for("/web/index.html") == "text/html; charset=utf-8");
    CHECK(content_type_for("/web/app.js") == "text/javascript; charset=utf-8");
    CHECK(content_type_for("/web/keyrelay.mjs") == "text/javascript; charset=utf-8");
    CHECK(content_type_for("/web/keyrelay.wasm") == "application/wasm");
    CHECK(content_type_for("/web/style.CSS") == "text/css; charset=utf-8");
    CHECK(content_type_for("/web/README") == "application/octet-stream");
    CHECK(content_type_for("/web.d/README") == "application/octet-stream");
}

TEST_CASE("query parameters are read from a raw request target", "[http_util]") {
    CHECK(query_param("/callback/keap?state=a%2Bb&code=1", "state") == std::optional<std::string>("a+b"));
    CHECK_FALSE(query_param("/callback/keap?code=1", "state").has_value());
    CHECK_FALSE(query_param("/callback/keap?state=%zz", "state").has_value());
}

TEST_CASE("metrics render as Prometheus text with cumulative histogram buckets", "[metrics]") {
    Metrics m;
    m.add_provider("keap");
    m.count_request("keap", 200);
    m.count_request("keap", 200);
    m.count_request("relay", 404);
    m.observe_upstream_latency("keap", 0.004);
    m.observe_upstream_latency("keap", 0.3);
    m.observe_upstream_latency("keap", 100);
    m.count_refresh("keap");
    m.set_reauth_gauge([] { return int64_t(2); });
    std::string text = m.render();
    CHECK(text.find("keyrelay_requests_total{provider=\"keap\",status=\"200\"} 2\n") != std::string::npos);
    CHECK(text.find("keyrelay_requests_total{provider=\"relay\",status=\"404\"} 1\n") != std::string::npos);
    CHECK(text.find("# TYPE keyrelay_upstream_latency_seconds histogram\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"0.005\"} 1\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"0.25\"} 1\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"0.5\"} 2\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"30\"} 2\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_count{provider=\"keap\"} 3\n") != std::string::npos);
    CHECK(text.find("keyrelay_refreshes_total{provider=\"keap\"} 1\n") != std::string::npos);
    CHECK(text.find("keyrelay_refresh_failures_total{provider=\"keap\"} 0\n") != std::string::npos);
    CHECK(text.find("keyrelay_connections_needing_reauth 2\n") != std::string::npos);
}

TEST_CASE("metrics counted on many threads add up to the totals", "[metrics]") {
    Metrics m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 12; ++t) {
        threads.emplace_back([&m, t] {
            for (int i = 0; i < 1000; ++i) {
                m.count_request("keap", t % 2 == 0 ? 200 : 502);
                m.observe_upstream_latency("keap", t % 2 == 0 ? 0.001 : 1.5);
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(m.requests("keap", 200) == 6000);
    CHECK(m.requests("keap", 502) == 6000);
    std::string text = m.render();
    CHECK(text.find("keyrelay_requests_total{provider=\"keap\",status=\"200\"} 6000\n") != std::string::npos);
    CHECK(text.find("keyrelay_requests_total{provider=\"keap\",status=\"502\"} 6000\n") != std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"0.005\"} 6000\n") !=
          std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_bucket{provider=\"keap\",le=\"2.5\"} 12000\n") !=
          std::string::npos);
    CHECK(text.find("keyrelay_upstream_latency_seconds_count{provider=\"keap\"} 12000\n") != std::string::npos);
    // One line per provider and status, however many threads counted it.
    size_t lines = 0;
    for (size_t at = text.find("keyrelay_requests_total{"); at != std::string::npos;
         at = text.find("keyrelay_requests_total{", at + 1)) {
        ++lines;
    }
    CHECK(lines == 2);
}

TEST_CASE("Prometheus label values escape backslash, quote and newline", "[metrics]") {
    CHECK(prometheus_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
}
