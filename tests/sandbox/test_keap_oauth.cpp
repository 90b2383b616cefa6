// Keap's OAuth2 authorization-code flow as the sandbox plays it (shared/reference/keap.md).
#include <atomic>
#include <regex>
#include <thread>
#include <vector>

#include "sandbox_fixture.h"

using namespace sbt;

namespace {

std::string authorize_url(const Sandbox& sb, const std::string& redirect, const std::string& extra = "") {
    return "/keap/app/oauth/authorize?" + keyrelay::form_encode({{"client_id", sb.keap_id()},
                                                                 {"redirect_uri", redirect},
                                                                 {"response_type", "code"},
                                                                 {"scope", "full"},
                                                                 {"state", "a&b=<c>"}}) +
           extra;
}

}  // namespace

TEST_CASE("the Keap consent page names the app and the account and posts every parameter back", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.get(authorize_url(sb, kKeapRedirect));
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->get_header_value("Content-Type").find("text/html") == 0);
    const std::string& html = res->body;
    CHECK(html.find("keyrelay demo app") != std::string::npos);
    CHECK(html.find("ab123.infusionsoft.com") != std::string::npos);
    CHECK(html.find("<form method=\"post\" action=\"/keap/app/oauth/authorize\">") != std::string::npos);
    CHECK(html.find("<input type=\"hidden\" name=\"redirect_uri\" value=\"" + kKeapRedirect + "\">") !=
          std::string::npos);
    // The state comes back HTML-escaped, never as markup.
    CHECK(html.find("name=\"state\" value=\"a&amp;b=&lt;c&gt;\"") != std::string::npos);
    CHECK(html.find("value=\"allow\"") != std::string::npos);
    CHECK(html.find("value=\"deny\"") != std::string::npos);
    CHECK(html.find(">Allow</button>") != std::string::npos);
    CHECK(html.find(">Deny</button>") != std::string::npos);
}

TEST_CASE("Allow redirects to the registered URI with a code, Keap's scope and the state", "[keap][oauth]") {
    Sandbox sb;
    const std::string answer = sb.raw_http("POST", "/keap/app/oauth/authorize",
                                           keyrelay::form_encode({{"client_id", sb.keap_id()},
                                                                  {"redirect_uri", kKeapRedirect},
                                                                  {"response_type", "code"},
                                                                  {"scope", "full"},
                                                                  {"state", "state with space&more"},
                                                                  {"decision", "allow"}}));
    CHECK(answer.rfind("HTTP/1.1 302", 0) == 0);
    const std::string loc = Sandbox::raw_header(answer, "Location");
    INFO(loc);
    CHECK(loc.rfind(kKeapRedirect + "?code=", 0) == 0);
    CHECK(loc.find("&scope=full%7Cab123.infusionsoft.com&state=state+with+space%26more") != std::string::npos);
    CHECK(qparam(loc, "code").size() >= 8);
    CHECK(qparam(loc, "state") == "state with space&more");
}

TEST_CASE("Deny redirects with access_denied and Keap's description", "[keap][oauth]") {
    Sandbox sb;
    CHECK(sb.keap_decide("deny", kKeapRedirect, "s1") ==
          kKeapRedirect + "?state=s1&error=access_denied&error_description=User+denied+access+to+resource");
}

TEST_CASE("an unknown client_id gets an error page, never a redirect", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.get("/keap/app/oauth/authorize?client_id=nobody&redirect_uri=" +
                      keyrelay::form_urlencode(kKeapRedirect) + "&response_type=code&scope=full");
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK_FALSE(res->has_header("Location"));
    CHECK(res->body.find("Invalid client_id") != std::string::npos);
}

TEST_CASE("a redirect_uri that is not registered exactly gets an error page, never a redirect", "[keap][oauth]") {
    Sandbox sb;
    std::string bad = GENERATE(std::string("http://127.0.0.1:8080/callback/keap/"),
                               std::string("http://127.0.0.1:8081/callback/keap"),
                               std::string("https://127.0.0.1:8080/callback/keap"),
                               std::string("http://127.0.0.1:8080/callback/KEAP"),
                               std::string("http://127.0.0.1:8080/callback/keap?x=1"),
                               std::string("http://evil.example/callback/keap"), std::string(""));
    INFO(bad);
    SECTION("on the GET page") {
        auto res = sb.get(authorize_url(sb, bad));
        REQUIRE(res);
        CHECK(res->status == 400);
        CHECK_FALSE(res->has_header("Location"));
        CHECK(res->body.find("Invalid redirect_uri") != std::string::npos);
    }
    SECTION("on the form POST") {
        auto res = sb.post_form("/keap/app/oauth/authorize", {{"client_id", sb.keap_id()},
                                                              {"redirect_uri", bad},
                                                              {"response_type", "code"},
                                                              {"scope", "full"},
                                                              {"decision", "allow"}});
        REQUIRE(res);
        CHECK(res->status == 400);
        CHECK_FALSE(res->has_header("Location"));
    }
}

TEST_CASE("a response_type other than code or a scope other than full goes back as an OAuth error",
          "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.get("/keap/app/oauth/authorize?" + keyrelay::form_encode({{"client_id", sb.keap_id()},
                                                                            {"redirect_uri", kKeapRedirect},
                                                                            {"response_type", "token"},
                                                                            {"state", "s"}}));
    REQUIRE(res->status == 302);
    CHECK(qparam(res->get_header_value("Location"), "error") == "unsupported_response_type");
    res = sb.get("/keap/app/oauth/authorize?" + keyrelay::form_encode({{"client_id", sb.keap_id()},
                                                                      {"redirect_uri", kKeapRedirect},
                                                                      {"response_type", "code"},
                                                                      {"scope", "contacts"}}));
    REQUIRE(res->status == 302);
    CHECK(qparam(res->get_header_value("Location"), "error") == "invalid_scope");
}

TEST_CASE("with auto-approve the authorize page redirects at once with a code", "[keap][oauth]") {
    Options o;
    o.auto_approve = true;
    Sandbox sb(o);
    const std::string answer = sb.raw_http("GET", authorize_url(sb, kKeapRedirect));
    REQUIRE(answer.rfind("HTTP/1.1 302", 0) == 0);
    std::string loc = Sandbox::raw_header(answer, "Location");
    CHECK(qparam(loc, "state") == "a&b=<c>");
    CHECK(qparam(loc, "scope") == "full|ab123.infusionsoft.com");
    auto tok = sb.keap_token({{"grant_type", "authorization_code"}, {"code", qparam(loc, "code")},
                              {"redirect_uri", kKeapRedirect}});
    CHECK(tok->status == 200);
}

TEST_CASE("extra redirect URIs can be registered by option and through the control API", "[keap][oauth]") {
    Options o;
    o.redirect_uris = {"https://relay.example.com/callback/keap"};
    Sandbox sb(o);
    CHECK(sb.get(authorize_url(sb, "https://relay.example.com/callback/keap"))->status == 200);
    const std::string late = "http://127.0.0.1:9999/callback/keap";
    CHECK(sb.get(authorize_url(sb, late))->status == 400);
    auto reg = sb.post_json("/sandbox/redirect-uris", {{"provider", "keap"}, {"redirect_uri", late}});
    REQUIRE(reg->status == 200);
    CHECK(sb.get(authorize_url(sb, late))->status == 200);
    // Jira's list is its own.
    auto jira = sb.get("/jira/authorize?" + keyrelay::form_encode({{"audience", "api.atlassian.com"},
                                                                  {"client_id", sb.jira_id()},
                                                                  {"scope", "read:jira-user"},
                                                                  {"redirect_uri", late},
                                                                  {"response_type", "code"}}));
    CHECK(jira->status == 400);
}

TEST_CASE("the code exchange with urlencoded Basic credentials returns Keap's token answer", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.keap_token({{"grant_type", "authorization_code"}, {"code", sb.keap_code()},
                              {"redirect_uri", kKeapRedirect}});
    REQUIRE(res->status == 200);
    json t = body_of(res);
    CHECK(t["token_type"] == "bearer");
    CHECK(t["expires_in"] == 86400);
    CHECK(t["scope"] == "full|ab123.infusionsoft.com");
    const std::regex at("sbx_keap_at_[A-Za-z0-9_-]{20,}"), rt("sbx_keap_rt_[A-Za-z0-9_-]{20,}");
    CHECK(std::regex_match(t["access_token"].get<std::string>(), at));
    CHECK(std::regex_match(t["refresh_token"].get<std::string>(), rt));
    CHECK(t["access_token"] != t["refresh_token"]);
    CHECK(res->get_header_value("Cache-Control") == "no-store");
}

TEST_CASE("client credentials in the form body work as well as Basic", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.post_form("/keap/token", {{"client_id", sb.keap_id()},
                                            {"client_secret", sb.keap_secret()},
                                            {"code", sb.keap_code()},
                                            {"grant_type", "authorization_code"},
                                            {"redirect_uri", kKeapRedirect}});
    REQUIRE(res->status == 200);
    json t = body_of(res);
    auto refresh = sb.post_form("/keap/token", {{"client_id", sb.keap_id()},
                                                {"client_secret", sb.keap_secret()},
                                                {"grant_type", "refresh_token"},
                                                {"refresh_token", t["refresh_token"].get<std::string>()}});
    CHECK(refresh->status == 200);
}

TEST_CASE("the client secret holds + / = % : so that a Basic header without urlencoding fails", "[keap][oauth]") {
    Sandbox sb;
    const std::string secret = sb.keap_secret();
    for (char c : std::string("+/=%:")) CHECK(secret.find(c) != std::string::npos);
    const std::string raw = "Basic " + keyrelay::base64_encode(sb.keap_id() + ":" + secret);
    auto res = sb.post_form("/keap/token", {{"grant_type", "authorization_code"}, {"code", sb.keap_code()},
                                            {"redirect_uri", kKeapRedirect}},
                            {{"Authorization", raw}});
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(body_of(res)["error"] == "invalid_client");
}

TEST_CASE("an Authorization header without the Basic prefix gets Keap's 401", "[keap][oauth]") {
    Sandbox sb;
    const std::string creds = keyrelay::base64_encode(keyrelay::form_urlencode(sb.keap_id()) + ":" +
                                                      keyrelay::form_urlencode(sb.keap_secret()));
    auto res = sb.post_form("/keap/token", {{"grant_type", "refresh_token"}, {"refresh_token", "whatever"}},
                            {{"Authorization", creds}});
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(body_of(res) ==
          json{{"error", "invalid_grant"}, {"error_description", "Unable to authenticate username and password"}});
}

TEST_CASE("a wrong client secret gets 401 invalid_client and counts as a failure", "[keap][oauth]") {
    Sandbox sb;
    json t = sb.keap_tokens();
    auto res = sb.post_form("/keap/token", {{"grant_type", "refresh_token"},
                                            {"refresh_token", t["refresh_token"].get<std::string>()}},
                            {{"Authorization", basic(sb.keap_id(), "not-the-secret")}});
    REQUIRE(res);
    CHECK(res->status == 401);
    CHECK(body_of(res)["error"] == "invalid_client");
    CHECK(sb.stats()["tokens"][sb.keap_id()]["refresh_failures"] == 1);
    // The refresh token was not consumed by the failed attempt.
    CHECK(sb.keap_refresh(t["refresh_token"].get<std::string>())->status == 200);
}

TEST_CASE("a JSON body at the Keap token endpoint gets Keap's invalid_request answer", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.post_json("/keap/token", {{"grant_type", "authorization_code"},
                                            {"code", sb.keap_code()},
                                            {"redirect_uri", kKeapRedirect}},
                            {{"Authorization", basic(sb.keap_id(), sb.keap_secret())}});
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(body_of(res) == json{{"error", "invalid_request"},
                               {"error_description", "response_type or grant_type is required"}});
}

TEST_CASE("an authorization code works exactly once", "[keap][oauth]") {
    Sandbox sb;
    const std::string code = sb.keap_code();
    Params form{{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kKeapRedirect}};
    CHECK(sb.keap_token(form)->status == 200);
    auto again = sb.keap_token(form);
    CHECK(again->status == 400);
    CHECK(body_of(again) == json{{"error", "invalid_grant"}, {"error_description", "Invalid authorization code"}});
    json s = sb.stats()["tokens"][sb.keap_id()];
    CHECK(s["exchanges"] == 1);
    CHECK(s["exchange_failures"] == 1);
}

TEST_CASE("an authorization code is bound to the redirect_uri it was issued for", "[keap][oauth]") {
    Sandbox sb;
    const std::string code = sb.keap_code();
    auto wrong = sb.keap_token({{"grant_type", "authorization_code"}, {"code", code},
                                {"redirect_uri", "http://localhost:8080/callback/keap"}});
    CHECK(wrong->status == 400);
    CHECK(body_of(wrong) == json{{"error", "invalid_request"}, {"error_description", "Invalid redirect_uri"}});
    auto missing = sb.keap_token({{"grant_type", "authorization_code"}, {"code", code}});
    CHECK(missing->status == 400);
    auto right = sb.keap_token({{"grant_type", "authorization_code"}, {"code", code},
                                {"redirect_uri", kKeapRedirect}});
    CHECK(right->status == 200);
}

TEST_CASE("an authorization code expires after 10 minutes", "[keap][oauth]") {
    Sandbox sb;
    const std::string code = sb.keap_code();
    Params form{{"grant_type", "authorization_code"}, {"code", code}, {"redirect_uri", kKeapRedirect}};
    SECTION("just before") {
        sb.advance(590);
        CHECK(sb.keap_token(form)->status == 200);
    }
    SECTION("just after") {
        sb.advance(601);
        auto res = sb.keap_token(form);
        CHECK(res->status == 400);
        CHECK(body_of(res)["error"] == "invalid_grant");
    }
}

TEST_CASE("a refresh rotates the pair and the old refresh token is dead at once", "[keap][oauth]") {
    Sandbox sb;
    json first = sb.keap_tokens();
    auto res = sb.keap_refresh(first["refresh_token"].get<std::string>());
    REQUIRE(res->status == 200);
    json second = body_of(res);
    CHECK(second["access_token"] != first["access_token"]);
    CHECK(second["refresh_token"] != first["refresh_token"]);
    CHECK(second["scope"] == "full|ab123.infusionsoft.com");

    auto reuse = sb.keap_refresh(first["refresh_token"].get<std::string>());
    CHECK(reuse->status == 400);
    CHECK(body_of(reuse) == json{{"error", "invalid_grant"}, {"error_description", "Invalid refresh token"}});
    // The new refresh token works, and the old access token keeps working until its own expiry.
    CHECK(sb.keap_refresh(second["refresh_token"].get<std::string>())->status == 200);
    CHECK(sb.get("/keap/crm/rest/v1/contacts?limit=1", bearer(first["access_token"]))->status == 200);
    json s = sb.stats()["tokens"][sb.keap_id()];
    CHECK(s["provider"] == "keap");
    CHECK(s["exchanges"] == 1);
    CHECK(s["refreshes"] == 2);
    CHECK(s["refresh_failures"] == 1);
}

TEST_CASE("an expired refresh token is refused", "[keap][oauth]") {
    Options o;
    o.refresh_ttl = 100;
    Sandbox sb(o);
    json t = sb.keap_tokens();
    sb.advance(101);
    auto res = sb.keap_refresh(t["refresh_token"].get<std::string>());
    CHECK(res->status == 400);
    CHECK(body_of(res)["error"] == "invalid_grant");
}

TEST_CASE("the default refresh token lifetime is Keap's 45 days", "[keap][oauth]") {
    Sandbox sb;
    json t = sb.keap_tokens();
    SECTION("valid on day 44") {
        sb.advance(44 * 86400.0);
        CHECK(sb.keap_refresh(t["refresh_token"].get<std::string>())->status == 200);
    }
    SECTION("dead after 45 days") {
        sb.advance(45 * 86400.0 + 1);
        CHECK(sb.keap_refresh(t["refresh_token"].get<std::string>())->status == 400);
    }
}

TEST_CASE("a revoked grant kills its access and refresh tokens at once", "[keap][oauth]") {
    Sandbox sb;
    json t = sb.keap_tokens();
    auto rev = sb.post_json("/sandbox/revoke", {{"provider", "keap"}});
    REQUIRE(rev->status == 200);
    CHECK(body_of(rev)["revoked"] == 1);
    auto api = sb.get("/keap/crm/rest/v1/contacts", bearer(t["access_token"]));
    CHECK(api->status == 401);
    CHECK(sb.keap_refresh(t["refresh_token"].get<std::string>())->status == 400);
}

TEST_CASE("concurrent refreshes with one token: exactly one wins and the stats are exact", "[keap][oauth]") {
    Sandbox sb;
    json t = sb.keap_tokens();
    const std::string rt = t["refresh_token"].get<std::string>();
    std::atomic<int> ok{0}, refused{0}, other{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) {
        threads.emplace_back([&] {
            auto res = sb.client().Post("/keap/token", {{"Authorization", basic(sb.keap_id(), sb.keap_secret())}},
                                        keyrelay::form_encode({{"grant_type", "refresh_token"}, {"refresh_token", rt}}),
                                        "application/x-www-form-urlencoded");
            if (res && res->status == 200) ++ok;
            else if (res && res->status == 400) ++refused;
            else ++other;
        });
    }
    for (auto& th : threads) th.join();
    CHECK(ok == 1);
    CHECK(refused == 15);
    CHECK(other == 0);
    json s = sb.stats()["tokens"][sb.keap_id()];
    CHECK(s["refreshes"] == 1);
    CHECK(s["refresh_failures"] == 15);
}

TEST_CASE("an unknown grant_type is unsupported_grant_type", "[keap][oauth]") {
    Sandbox sb;
    auto res = sb.keap_token({{"grant_type", "password"}, {"username", "a"}, {"password", "b"}});
    CHECK(res->status == 400);
    CHECK(body_of(res)["error"] == "unsupported_grant_type");
}
