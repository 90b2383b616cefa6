// Keap REST v1/v2, credentials, rate-limit headers and CORS (shared/reference/keap.md).
#include <chrono>

#include "sandbox_fixture.h"

using namespace sbt;

namespace {

httplib::Headers api_key(const std::string& key) { return {{"X-Keap-API-Key", key}}; }

std::string access_token(const Sandbox& sb) { return sb.keap_tokens()["access_token"].get<std::string>(); }

}  // namespace

TEST_CASE("v1 finds a contact by email with Keap's list shape", "[keap][rest]") {
    Sandbox sb;
    auto res = sb.get("/keap/crm/rest/v1/contacts?email=paul%40example.com&limit=1", bearer(access_token(sb)));
    REQUIRE(res->status == 200);
    json j = body_of(res);
    CHECK(j["count"] == 1);
    REQUIRE(j["contacts"].size() == 1);
    json c = j["contacts"][0];
    CHECK(c["id"] == 5);
    CHECK(c["given_name"] == "Paul");
    CHECK(c["family_name"] == "Grover");
    CHECK(c["email_addresses"] == json::array({{{"email", "paul@example.com"}, {"field", "EMAIL1"}}}));
    CHECK(j["next"].get<std::string>().find("/keap/crm/rest/v1/contacts/?limit=1&offset=1") != std::string::npos);
    CHECK(j.contains("previous"));
}

TEST_CASE("v1 email matching ignores case and an unknown email gives an empty list", "[keap][rest]") {
    Sandbox sb;
    const std::string t = access_token(sb);
    json found = body_of(sb.get("/keap/crm/rest/v1/contacts?email=ADA%40Example.com", bearer(t)));
    CHECK(found["count"] == 1);
    CHECK(found["contacts"][0]["id"] == 101);
    json none = body_of(sb.get("/keap/crm/rest/v1/contacts?email=nobody%40example.com", bearer(t)));
    CHECK(none["count"] == 0);
    CHECK(none["contacts"] == json::array());
}

TEST_CASE("v1 limit and offset page through the contacts in id order", "[keap][rest]") {
    Sandbox sb;
    const auto key = api_key(sb.config["keap"]["api_key"].get<std::string>());
    json p1 = body_of(sb.get("/keap/crm/rest/v1/contacts?limit=2", key));
    json p2 = body_of(sb.get("/keap/crm/rest/v1/contacts?limit=2&offset=2", key));
    CHECK(p1["count"] == 3);
    REQUIRE(p1["contacts"].size() == 2);
    CHECK(p1["contacts"][0]["id"] == 5);
    CHECK(p1["contacts"][1]["id"] == 101);
    REQUIRE(p2["contacts"].size() == 1);
    CHECK(p2["contacts"][0]["id"] == 4393);
    CHECK(sb.get("/keap/crm/rest/v1/contacts?limit=x", key)->status == 400);
}

TEST_CASE("v1 reads, patches and creates contacts", "[keap][rest]") {
    Sandbox sb;
    const auto auth = bearer(access_token(sb));
    auto missing = sb.get("/keap/crm/rest/v1/contacts/999", auth);
    CHECK(missing->status == 404);
    CHECK(body_of(missing) == json{{"message", "Contact with ID 999 not found"}});

    auto patched = sb.client().Patch("/keap/crm/rest/v1/contacts/4393", auth,
                                     R"({"given_name":"Joe","family_name":"Bobertson"})", "application/json");
    REQUIRE(patched->status == 200);
    CHECK(body_of(patched)["given_name"] == "Joe");
    json read = body_of(sb.get("/keap/crm/rest/v1/contacts/4393", auth));
    CHECK(read["family_name"] == "Bobertson");
    CHECK(read["email_addresses"][0]["email"] == "ben.anderson@example.com");

    auto bad = sb.client().Patch("/keap/crm/rest/v1/contacts/4393", auth, "{not json", "application/json");
    CHECK(bad->status == 400);

    auto created = sb.post_json("/keap/crm/rest/v1/contacts",
                                {{"given_name", "Grace"},
                                 {"family_name", "Hopper"},
                                 {"email_addresses", {{{"email", "grace@example.com"}, {"field", "EMAIL1"}}}}},
                                auth);
    REQUIRE(created->status == 201);
    json c = body_of(created);
    CHECK(c["id"].get<int64_t>() > 4393);
    json found = body_of(sb.get("/keap/crm/rest/v1/contacts?email=grace%40example.com", auth));
    CHECK(found["contacts"][0]["id"] == c["id"]);

    auto empty = sb.post_json("/keap/crm/rest/v1/contacts", {{"given_name", "No"}, {"family_name", "Email"}}, auth);
    CHECK(empty->status == 400);
    CHECK(body_of(empty)["message"] ==
          "Contact must contain at least one item in email_addresses or phone_numbers");
}

TEST_CASE("userinfo describes the user who approved the app", "[keap][rest]") {
    Sandbox sb;
    json u = body_of(sb.get("/keap/crm/rest/v1/oauth/connect/userinfo", bearer(access_token(sb))));
    CHECK(u["email"] == "admin@example.com");
    CHECK(u["given_name"] == "Sandbox");
    CHECK(u["family_name"] == "Admin");
    CHECK(u["global_user_id"].is_number_integer());
    CHECK(u["infusionsoft_id"] == "admin@example.com");
    CHECK(u["sub"] == "1");
}

TEST_CASE("v2 filters contacts by email and pages with tokens", "[keap][rest]") {
    Sandbox sb;
    const auto auth = bearer(access_token(sb));
    json j = body_of(sb.get("/keap/crm/rest/v2/contacts?filter=email%3D%3Dben.anderson%40example.com", auth));
    REQUIRE(j["contacts"].size() == 1);
    CHECK(j["contacts"][0]["id"] == "4393");
    CHECK(j["contacts"][0]["email_addresses"][0]["email"] == "ben.anderson@example.com");
    CHECK(j["next_page_token"] == "");

    json p1 = body_of(sb.get("/keap/crm/rest/v2/contacts?page_size=2", auth));
    REQUIRE(p1["contacts"].size() == 2);
    const std::string token = p1["next_page_token"].get<std::string>();
    REQUIRE(!token.empty());
    json p2 = body_of(sb.get("/keap/crm/rest/v2/contacts?page_size=2&page_token=" + keyrelay::form_urlencode(token),
                             auth));
    REQUIRE(p2["contacts"].size() == 1);
    CHECK(p2["next_page_token"] == "");

    auto bad = sb.get("/keap/crm/rest/v2/contacts?filter=phone%3D%3D1", auth);
    CHECK(bad->status == 400);
    CHECK(body_of(bad)["status"] == "INVALID_ARGUMENT");
}

TEST_CASE("the SAK and the PAT work as X-Keap-API-Key, other keys do not", "[keap][rest]") {
    Sandbox sb;
    for (const char* which : {"api_key", "pat"}) {
        auto res = sb.get("/keap/crm/rest/v1/contacts?email=ada%40example.com",
                          api_key(sb.config["keap"][which].get<std::string>()));
        REQUIRE(res);
        CHECK(res->status == 200);
    }
    CHECK(sb.config["keap"]["api_key"].get<std::string>().rfind("KeapAK", 0) == 0);
    auto bad = sb.get("/keap/crm/rest/v1/contacts", api_key("KeapAK-not-a-real-key"));
    CHECK(bad->status == 401);
    CHECK(body_of(bad)["fault"]["faultstring"] == "Invalid ApiKey");
}

TEST_CASE("missing, unknown and expired access tokens get Keap's 401 JSON", "[keap][rest]") {
    Sandbox sb;
    auto none = sb.get("/keap/crm/rest/v1/contacts");
    CHECK(none->status == 401);
    CHECK(body_of(none)["fault"]["detail"]["errorcode"] == "keymanagement.service.invalid_access_token");
    auto unknown = sb.get("/keap/crm/rest/v1/contacts", bearer("not-a-token"));
    CHECK(unknown->status == 401);
    CHECK(body_of(unknown)["fault"]["faultstring"] == "Invalid Access Token");
    const std::string t = access_token(sb);
    sb.advance(86400);
    auto expired = sb.get("/keap/crm/rest/v2/contacts", bearer(t));
    CHECK(expired->status == 401);
    CHECK(body_of(expired)["fault"]["faultstring"] == "Access Token expired");
}

TEST_CASE("the access_ttl option shortens Keap access tokens", "[keap][rest]") {
    Options o;
    o.access_ttl = 30;
    Sandbox sb(o);
    json t = sb.keap_tokens();
    CHECK(t["expires_in"] == 30);
    CHECK(sb.get("/keap/crm/rest/v1/contacts", bearer(t["access_token"].get<std::string>()))->status == 200);
    sb.advance(30);
    CHECK(sb.get("/keap/crm/rest/v1/contacts", bearer(t["access_token"].get<std::string>()))->status == 401);
}

TEST_CASE("every Keap API answer carries the quota, throttle and tenant headers", "[keap][rest]") {
    Sandbox sb;
    SECTION("an OAuth client: 1,500 per minute, 150,000 per day") {
        auto res = sb.get("/keap/crm/rest/v1/contacts", bearer(access_token(sb)));
        REQUIRE(res->status == 200);
        CHECK(res->get_header_value("x-keap-product-throttle-limit") == "1500");
        CHECK(res->get_header_value("x-keap-product-throttle-time-unit") == "minute");
        CHECK(res->get_header_value("x-keap-product-throttle-available") == "1499");
        CHECK(res->get_header_value("x-keap-product-throttle-used") == "1");
        CHECK(res->get_header_value("x-keap-product-quota-limit") == "150000");
        CHECK(res->get_header_value("x-keap-product-quota-used") == "1");
        CHECK(res->get_header_value("x-keap-product-quota-available") == "149999");
    }
    SECTION("an API key: 10 per second, 30,000 per day") {
        auto res = sb.get("/keap/crm/rest/v2/contacts", api_key(sb.config["keap"]["pat"].get<std::string>()));
        REQUIRE(res->status == 200);
        CHECK(res->get_header_value("x-keap-product-throttle-limit") == "10");
        CHECK(res->get_header_value("x-keap-product-throttle-time-unit") == "second");
        CHECK(res->get_header_value("x-keap-product-quota-limit") == "30000");
    }
    SECTION("the error answers too") {
        auto res = sb.get("/keap/crm/rest/v1/contacts/777", bearer(access_token(sb)));
        REQUIRE(res->status == 404);
        for (const char* h : {"x-keap-product-quota-limit", "x-keap-product-quota-time-unit",
                              "x-keap-product-quota-interval", "x-keap-product-quota-available",
                              "x-keap-product-quota-used", "x-keap-product-quota-expiry-time",
                              "x-keap-product-throttle-limit", "x-keap-product-throttle-time-unit",
                              "x-keap-product-throttle-interval", "x-keap-product-throttle-available",
                              "x-keap-product-throttle-used"}) {
            INFO(h);
            CHECK(res->has_header(h));
        }
        CHECK(res->get_header_value("x-keap-tenant-id") == "ab123.infusionsoft.com");
        CHECK(std::stoll(res->get_header_value("x-keap-product-quota-expiry-time")) % 86400000 == 0);
    }
}

TEST_CASE("an API key over 10 requests per second gets Keap's 429", "[keap][rest]") {
    Sandbox sb;
    const auto key = api_key(sb.config["keap"]["api_key"].get<std::string>());
    auto cli = sb.client();
    cli.set_keep_alive(true);
    int status = 0, n = 0;
    std::string body, available;
    for (; n < 200 && status != 429; ++n) {
        auto res = cli.Get("/keap/crm/rest/v1/contacts?limit=1", key);
        REQUIRE(res);
        status = res->status;
        body = res->body;
        available = res->get_header_value("x-keap-product-throttle-available");
        if (status != 429) REQUIRE(status == 200);
    }
    REQUIRE(status == 429);
    CHECK(n > 10);
    CHECK(json::parse(body) ==
          json{{"code", "429"}, {"message", "Quota Exceeded"}, {"status", "Request Throttled"}, {"details", nullptr}});
    CHECK(available == "0");
    // The PAT has its own bucket.
    CHECK(sb.get("/keap/crm/rest/v1/contacts?limit=1", api_key(sb.config["keap"]["pat"].get<std::string>()))
              ->status == 200);
}

TEST_CASE("the OAuth throttle and the daily quota can be lowered through the control API", "[keap][rest]") {
    Options o;
    o.access_ttl = 3 * 86400;   // the test moves the clock a day forward
    Sandbox sb(o);
    const auto auth = bearer(access_token(sb));
    SECTION("throttle") {
        sb.limits({{"keap_oauth_per_minute", 2}});
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 200);
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 200);
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 429);
        sb.advance(31);   // one token back per 30 s
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 200);
    }
    SECTION("daily quota") {
        sb.limits({{"keap_oauth_per_day", 1}});
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 200);
        auto res = sb.get("/keap/crm/rest/v1/contacts", auth);
        CHECK(res->status == 429);
        CHECK(res->get_header_value("x-keap-product-quota-available") == "0");
        sb.advance(86400);
        CHECK(sb.get("/keap/crm/rest/v1/contacts", auth)->status == 200);
    }
    CHECK(sb.post_json("/sandbox/limits", {{"jira_burst", -1}})->status == 400);
}

TEST_CASE("any API request with an Origin header gets 403 CORS origin denied", "[keap][jira][cors]") {
    Sandbox sb;
    const std::string path = GENERATE(std::string("/keap/token"), std::string("/keap/crm/rest/v1/contacts"),
                                      std::string("/keap/crm/rest/v2/contacts"), std::string("/keap/crm/xmlrpc/v1"),
                                      std::string("/jira/oauth/token"),
                                      std::string("/jira/oauth/token/accessible-resources"),
                                      std::string("/jira/rest/api/3/myself"),
                                      std::string("/jira/ex/jira/1c3f5a8e-7b2d-4e6a-9f01-23456789abcd/rest/api/3/"
                                                  "myself"));
    INFO(path);
    httplib::Headers h = api_key(sb.config["keap"]["pat"].get<std::string>());
    h.emplace("Origin", "http://localhost:3000");
    SECTION("GET") {
        auto res = sb.get(path, h);
        REQUIRE(res);
        CHECK(res->status == 403);
        CHECK(res->body == "CORS origin denied");
        CHECK_FALSE(res->has_header("Access-Control-Allow-Origin"));
    }
    SECTION("POST") {
        auto res = sb.post(path, "grant_type=refresh_token", "application/x-www-form-urlencoded", h);
        REQUIRE(res);
        CHECK(res->status == 403);
    }
    SECTION("an OPTIONS preflight, with or without Origin") {
        auto res = sb.client().Options(path.c_str(), h);
        REQUIRE(res);
        CHECK(res->status == 403);
        CHECK_FALSE(res->has_header("Access-Control-Allow-Origin"));
        CHECK(sb.client().Options(path.c_str())->status == 403);
    }
}

TEST_CASE("the consent pages are pages, not APIs: a same-site form post with an Origin works", "[keap][cors]") {
    Sandbox sb;
    auto res = sb.post_form("/keap/app/oauth/authorize", {{"client_id", sb.keap_id()},
                                                          {"redirect_uri", kKeapRedirect},
                                                          {"response_type", "code"},
                                                          {"scope", "full"},
                                                          {"decision", "allow"}},
                            {{"Origin", "http://127.0.0.1:" + std::to_string(sb.port)}});
    REQUIRE(res);
    CHECK(res->status == 302);
    CHECK(sb.client().Options("/keap/app/oauth/authorize")->status == 403);
}
