// Jira: Atlassian 3LO, Cloud and Data Center user search, the three credential kinds, rate limits
// (shared/reference/jira.md).
#include <regex>
#include <set>

#include "sandbox_fixture.h"

using namespace sbt;

namespace {

const std::string kCloud = "1c3f5a8e-7b2d-4e6a-9f01-23456789abcd";
const std::string kApi3 = "/jira/ex/jira/" + kCloud + "/rest/api/3";

httplib::Headers jira_basic(const std::string& email, const std::string& token) {
    return {{"Authorization", "Basic " + keyrelay::base64_encode(email + ":" + token)}};
}

httplib::Headers admin_basic(const Sandbox& sb) {
    return jira_basic(sb.config["jira"]["api_token_email"].get<std::string>(),
                      sb.config["jira"]["api_token"].get<std::string>());
}

std::set<std::string> names(const json& users) {
    std::set<std::string> out;
    for (const auto& u : users) out.insert(u["displayName"].get<std::string>());
    return out;
}

std::string authorize_query(const Sandbox& sb, const std::string& scope, const std::string& audience) {
    return "/jira/authorize?" + keyrelay::form_encode({{"audience", audience},
                                                      {"client_id", sb.jira_id()},
                                                      {"scope", scope},
                                                      {"redirect_uri", kJiraRedirect},
                                                      {"state", "js-1"},
                                                      {"response_type", "code"},
                                                      {"prompt", "consent"}});
}

}  // namespace

TEST_CASE("the Jira consent page lists the scopes, and Accept redirects with a code and the state", "[jira][oauth]") {
    Sandbox sb;
    auto page = sb.get(authorize_query(sb, "read:jira-user offline_access", "api.atlassian.com"));
    REQUIRE(page->status == 200);
    CHECK(page->body.find("keyrelay demo app") != std::string::npos);
    CHECK(page->body.find("keyrelay-sandbox.atlassian.net") != std::string::npos);
    CHECK(page->body.find("<code>read:jira-user</code>") != std::string::npos);
    CHECK(page->body.find("<form method=\"post\" action=\"/jira/authorize\">") != std::string::npos);
    CHECK(page->body.find("name=\"audience\" value=\"api.atlassian.com\"") != std::string::npos);

    std::string loc = sb.jira_decide("allow", "read:jira-user offline_access");
    CHECK(loc.rfind(kJiraRedirect + "?code=", 0) == 0);
    CHECK(qparam(loc, "state") == "js-1");
}

TEST_CASE("Cancel on the Jira consent page redirects with access_denied", "[jira][oauth]") {
    Sandbox sb;
    std::string loc = sb.jira_decide("deny", "read:jira-user");
    CHECK(qparam(loc, "error") == "access_denied");
    CHECK(qparam(loc, "state") == "js-1");
    CHECK(qparam(loc, "code") == "<absent>");
}

TEST_CASE("a wrong audience or an unknown scope goes back as an error, a bad redirect_uri gets a page",
          "[jira][oauth]") {
    Sandbox sb;
    auto aud = sb.get(authorize_query(sb, "read:jira-user", "api.example.com"));
    REQUIRE(aud->status == 302);
    CHECK(qparam(aud->get_header_value("Location"), "error") == "invalid_request");
    auto scope = sb.get(authorize_query(sb, "read:jira-user write:everything", "api.atlassian.com"));
    REQUIRE(scope->status == 302);
    CHECK(qparam(scope->get_header_value("Location"), "error") == "invalid_scope");
    auto redirect = sb.get("/jira/authorize?" + keyrelay::form_encode({{"audience", "api.atlassian.com"},
                                                                      {"client_id", sb.jira_id()},
                                                                      {"scope", "read:jira-user"},
                                                                      {"redirect_uri", "http://127.0.0.1:8080/cb"},
                                                                      {"response_type", "code"}}));
    CHECK(redirect->status == 400);
    CHECK_FALSE(redirect->has_header("Location"));
    // The Keap client is not a Jira app.
    auto client = sb.get("/jira/authorize?" + keyrelay::form_encode({{"audience", "api.atlassian.com"},
                                                                    {"client_id", sb.keap_id()},
                                                                    {"scope", "read:jira-user"},
                                                                    {"redirect_uri", kJiraRedirect},
                                                                    {"response_type", "code"}}));
    CHECK(client->status == 400);
}

TEST_CASE("the Jira token endpoint takes JSON and answers with Atlassian's token shape", "[jira][oauth]") {
    Sandbox sb;
    json t = sb.jira_tokens("read:jira-user offline_access");
    CHECK(t["token_type"] == "Bearer");
    CHECK(t["expires_in"] == 3600);
    CHECK(t["scope"] == "read:jira-user offline_access");
    CHECK(std::regex_match(t["access_token"].get<std::string>(), std::regex("sbx_jira_at_[A-Za-z0-9_-]{20,}")));
    CHECK(std::regex_match(t["refresh_token"].get<std::string>(), std::regex("sbx_jira_rt_[A-Za-z0-9_-]{20,}")));
    CHECK(sb.stats()["tokens"][sb.jira_id()]["provider"] == "jira");
}

TEST_CASE("the Jira token endpoint also takes the client credentials as a Basic header", "[jira][oauth]") {
    Sandbox sb;
    json t = sb.jira_tokens();
    auto res = sb.post_json("/jira/oauth/token",
                            {{"grant_type", "refresh_token"}, {"refresh_token", t["refresh_token"]}},
                            {{"Authorization", basic(sb.jira_id(), sb.jira_secret())}});
    CHECK(res->status == 200);
    auto wrong = sb.post_json("/jira/oauth/token",
                              {{"grant_type", "refresh_token"}, {"refresh_token", t["refresh_token"]}},
                              {{"Authorization", basic(sb.jira_id(), "nope")}});
    CHECK(wrong->status == 401);
}

TEST_CASE("without offline_access the Jira token answer has no refresh token", "[jira][oauth]") {
    Sandbox sb;
    json t = sb.jira_tokens("read:jira-user");
    CHECK(t["access_token"].is_string());
    CHECK_FALSE(t.contains("refresh_token"));
}

TEST_CASE("the Jira token endpoint refuses a form body and bad client credentials", "[jira][oauth]") {
    Sandbox sb;
    const std::string code = qparam(sb.jira_decide("allow", "read:jira-user"), "code");
    auto form = sb.post_form("/jira/oauth/token", {{"grant_type", "authorization_code"},
                                                   {"client_id", sb.jira_id()},
                                                   {"client_secret", sb.jira_secret()},
                                                   {"code", code},
                                                   {"redirect_uri", kJiraRedirect}});
    CHECK(form->status == 400);
    CHECK(body_of(form)["error"] == "invalid_request");
    auto secret = sb.jira_token({{"grant_type", "authorization_code"},
                                 {"client_id", sb.jira_id()},
                                 {"client_secret", "wrong"},
                                 {"code", code},
                                 {"redirect_uri", kJiraRedirect}});
    CHECK(secret->status == 401);
    CHECK(body_of(secret) == json{{"error", "access_denied"}, {"error_description", "Unauthorized"}});
    auto redirect = sb.jira_token({{"grant_type", "authorization_code"},
                                   {"client_id", sb.jira_id()},
                                   {"client_secret", sb.jira_secret()},
                                   {"code", code},
                                   {"redirect_uri", kKeapRedirect}});
    CHECK(redirect->status == 403);
    CHECK(body_of(redirect)["error"] == "invalid_grant");
    // Still unused: the right redirect_uri works, once.
    json good{{"grant_type", "authorization_code"}, {"client_id", sb.jira_id()}, {"client_secret", sb.jira_secret()},
              {"code", code}, {"redirect_uri", kJiraRedirect}};
    CHECK(sb.jira_token(good)->status == 200);
    auto again = sb.jira_token(good);
    CHECK(again->status == 403);
    CHECK(body_of(again) == json{{"error", "invalid_grant"}, {"error_description", "Invalid authorization code"}});
}

TEST_CASE("a Jira refresh rotates, and reusing the old token inside 10 minutes gets a fresh pair", "[jira][oauth]") {
    Sandbox sb;
    json first = sb.jira_tokens();
    const std::string old_rt = first["refresh_token"].get<std::string>();
    auto r1 = sb.jira_refresh(old_rt);
    REQUIRE(r1->status == 200);
    json second = body_of(r1);
    CHECK(second["refresh_token"] != first["refresh_token"]);
    sb.advance(9 * 60);
    auto r2 = sb.jira_refresh(old_rt);
    REQUIRE(r2->status == 200);
    json third = body_of(r2);
    CHECK(third["refresh_token"] != second["refresh_token"]);
    CHECK(third["access_token"] != second["access_token"]);
    // Both successors are valid.
    CHECK(sb.jira_refresh(second["refresh_token"].get<std::string>())->status == 200);
    json s = sb.stats()["tokens"][sb.jira_id()];
    CHECK(s["refreshes"] == 3);
    CHECK(s["reuses"] == 1);
    CHECK(s["refresh_failures"] == 0);
}

TEST_CASE("reusing a rotated Jira refresh token after 10 minutes kills every token of the grant", "[jira][oauth]") {
    Sandbox sb;
    json first = sb.jira_tokens();
    json second = body_of(sb.jira_refresh(first["refresh_token"].get<std::string>()));
    sb.advance(10 * 60 + 1);
    auto reuse = sb.jira_refresh(first["refresh_token"].get<std::string>());
    CHECK(reuse->status == 403);
    CHECK(body_of(reuse) ==
          json{{"error", "invalid_grant"}, {"error_description", "Unknown or invalid refresh token."}});
    CHECK(sb.jira_refresh(second["refresh_token"].get<std::string>())->status == 403);
    CHECK(sb.get(kApi3 + "/myself", bearer(second["access_token"].get<std::string>()))->status == 401);
    CHECK(sb.stats()["tokens"][sb.jira_id()]["refresh_failures"] == 2);
}

TEST_CASE("Jira access tokens last one hour", "[jira][oauth]") {
    Sandbox sb;
    const std::string t = sb.jira_tokens()["access_token"].get<std::string>();
    sb.advance(3590);
    CHECK(sb.get(kApi3 + "/myself", bearer(t))->status == 200);
    sb.advance(10);
    auto res = sb.get(kApi3 + "/myself", bearer(t));
    CHECK(res->status == 401);
    CHECK(body_of(res) == json{{"code", 401}, {"message", "Unauthorized"}});
}

TEST_CASE("accessible-resources lists the sandbox site with its cloud id", "[jira][oauth]") {
    Sandbox sb;
    const std::string t = sb.jira_tokens()["access_token"].get<std::string>();
    json list = body_of(sb.get("/jira/oauth/token/accessible-resources", bearer(t)));
    REQUIRE(list.size() == 1);
    CHECK(list[0]["id"] == kCloud);
    CHECK(list[0]["id"] == sb.config["jira"]["cloud_id"]);
    CHECK(list[0]["name"] == "keyrelay-sandbox");
    CHECK(list[0]["url"] == "https://keyrelay-sandbox.atlassian.net");
    CHECK(list[0]["scopes"] == json::array({"read:jira-user"}));
    CHECK(list[0]["avatarUrl"].is_string());
    CHECK(sb.get("/jira/oauth/token/accessible-resources")->status == 401);
}

TEST_CASE("Cloud user search matches name words and emails by prefix, ignoring case, active users only",
          "[jira][search]") {
    Sandbox sb;
    const auto auth = bearer(sb.jira_tokens()["access_token"].get<std::string>());
    auto search = [&](const std::string& q) {
        return body_of(sb.get(kApi3 + "/user/search?query=" + keyrelay::form_urlencode(q), auth));
    };
    json ada = search("ada@example.com");
    REQUIRE(ada.size() == 1);
    CHECK(ada[0]["displayName"] == "Ada Lovelace");
    CHECK(ada[0]["emailAddress"] == "ada@example.com");
    CHECK(ada[0]["accountType"] == "atlassian");
    CHECK(ada[0]["active"] == true);
    CHECK(ada[0]["accountId"].is_string());
    CHECK(ada[0]["avatarUrls"].contains("48x48"));
    CHECK(names(search("LOVE")) == std::set<std::string>{"Ada Lovelace"});
    CHECK(names(search("gr")) == std::set<std::string>{"Grace Hopper"});
    CHECK(names(search("ben.and")) == std::set<std::string>{"Ben Anderson"});
    CHECK(search("nobody@example.com") == json::array());
    CHECK(search("former") == json::array());   // inactive
    CHECK(search("velace") == json::array());   // not a prefix
    CHECK(sb.get(kApi3 + "/user/search", auth)->status == 400);
}

TEST_CASE("a user who hides their email is found only by the exact address and shows none", "[jira][search]") {
    Sandbox sb;
    const auto auth = admin_basic(sb);
    json exact = body_of(sb.get("/jira/rest/api/3/user/search?query=private%40example.com", auth));
    REQUIRE(exact.size() == 1);
    CHECK(exact[0]["displayName"] == "Private User");
    CHECK_FALSE(exact[0].contains("emailAddress"));
    CHECK(body_of(sb.get("/jira/rest/api/3/user/search?query=private%40", auth)) == json::array());
    CHECK(body_of(sb.get("/jira/rest/api/3/user/search?query=private", auth)).size() == 1);   // by name
}

TEST_CASE("the account without Browse users gets an empty array, not an error", "[jira][search]") {
    Sandbox sb;
    const auto intern = jira_basic(sb.config["jira"]["no_browse_email"].get<std::string>(),
                                   sb.config["jira"]["no_browse_api_token"].get<std::string>());
    auto res = sb.get("/jira/rest/api/3/user/search?query=ada%40example.com", intern);
    REQUIRE(res->status == 200);
    CHECK(body_of(res) == json::array());
    json me = body_of(sb.get("/jira/rest/api/3/myself", intern));
    CHECK(me["emailAddress"] == "intern@example.com");
    CHECK(body_of(sb.get("/jira/rest/api/3/user/search?query=ada%40example.com", admin_basic(sb))).size() == 1);
}

TEST_CASE("myself answers for each kind of Jira credential", "[jira][auth]") {
    Sandbox sb;
    SECTION("3LO through the gateway") {
        json me = body_of(sb.get(kApi3 + "/myself", bearer(sb.jira_tokens()["access_token"].get<std::string>())));
        CHECK(me["emailAddress"] == "admin@example.com");
        CHECK(me["displayName"] == "Sandbox Admin");
    }
    SECTION("API token Basic on the site, v3 and v2") {
        CHECK(body_of(sb.get("/jira/rest/api/3/myself", admin_basic(sb)))["accountId"].is_string());
        CHECK(body_of(sb.get("/jira/rest/api/2/myself", admin_basic(sb)))["emailAddress"] == "admin@example.com");
    }
    SECTION("a Data Center PAT") {
        json me = body_of(sb.get("/jira/rest/api/2/myself", bearer(sb.config["jira"]["pat"].get<std::string>())));
        CHECK(me["name"] == "admin");
        CHECK(me["emailAddress"] == "admin@example.com");
    }
}

TEST_CASE("bad Jira credentials get 401 with Jira's error shape", "[jira][auth]") {
    Sandbox sb;
    auto wrong = sb.get("/jira/rest/api/3/myself", jira_basic("admin@example.com", "wrong-token"));
    CHECK(wrong->status == 401);
    CHECK(body_of(wrong)["errorMessages"].size() == 1);
    CHECK(body_of(wrong)["errors"] == json::object());
    CHECK(sb.get("/jira/rest/api/3/myself")->status == 401);
    // A PAT is not a Cloud token, and a 3LO token does not work on the site URL.
    CHECK(sb.get(kApi3 + "/myself", bearer(sb.config["jira"]["pat"].get<std::string>()))->status == 401);
    CHECK(sb.get("/jira/rest/api/2/myself", bearer(sb.jira_tokens()["access_token"].get<std::string>()))->status ==
          401);
    // Data Center has no REST v3.
    CHECK(sb.get("/jira/rest/api/3/myself", bearer(sb.config["jira"]["pat"].get<std::string>()))->status == 404);
}

TEST_CASE("Data Center user search takes username= and a PAT", "[jira][search]") {
    Sandbox sb;
    const auto pat = bearer(sb.config["jira"]["pat"].get<std::string>());
    json found = body_of(sb.get("/jira/rest/api/2/user/search?username=grace%40example.com", pat));
    REQUIRE(found.size() == 1);
    CHECK(found[0]["name"] == "grace");
    CHECK(found[0]["emailAddress"] == "grace@example.com");
    CHECK(body_of(sb.get("/jira/rest/api/2/user/search?username=ben", pat)).size() == 1);
    CHECK(sb.get("/jira/rest/api/2/user/search?query=ben", pat)->status == 400);
}

TEST_CASE("Cloud refuses username= as GDPR strict mode does", "[jira][search]") {
    Sandbox sb;
    auto res = sb.get("/jira/rest/api/3/user/search?username=ada", admin_basic(sb));
    CHECK(res->status == 400);
    CHECK(body_of(res)["errorMessages"][0] == "The query parameter 'username' is not supported in GDPR strict mode.");
}

TEST_CASE("maxResults and startAt page the Cloud search", "[jira][search]") {
    Sandbox sb;
    const auto auth = admin_basic(sb);
    json all = body_of(sb.get("/jira/rest/api/3/user/search?query=a", auth));
    REQUIRE(all.size() >= 2);
    json one = body_of(sb.get("/jira/rest/api/3/user/search?query=a&maxResults=1&startAt=1", auth));
    REQUIRE(one.size() == 1);
    CHECK(one[0]["accountId"] == all[1]["accountId"]);
}

TEST_CASE("the gateway checks the cloud id and the token's scopes", "[jira][auth]") {
    Sandbox sb;
    auto wrong_site = sb.get("/jira/ex/jira/00000000-0000-0000-0000-000000000000/rest/api/3/myself",
                             bearer(sb.jira_tokens()["access_token"].get<std::string>()));
    CHECK(wrong_site->status == 404);
    auto no_scope = sb.get(kApi3 + "/myself", bearer(sb.jira_tokens("read:jira-work")["access_token"]
                                                         .get<std::string>()));
    CHECK(no_scope->status == 401);
    CHECK(body_of(no_scope)["message"] == "Unauthorized; scope does not match");
}

TEST_CASE("over its burst limit Jira answers 429 with Retry-After and the X-RateLimit headers", "[jira][limits]") {
    Sandbox sb;
    sb.limits({{"jira_burst", 3}, {"jira_per_second", 0.01}});   // one request back every 100 s
    const auto auth = admin_basic(sb);
    for (int i = 0; i < 3; ++i) REQUIRE(sb.get("/jira/rest/api/3/myself", auth)->status == 200);
    auto res = sb.get("/jira/rest/api/3/myself", auth);
    REQUIRE(res->status == 429);
    const int retry = std::stoi(res->get_header_value("Retry-After"));
    CHECK(retry >= 50);   // (1 - the little refilled since the burst) / 0.01, even on a slow machine
    CHECK(retry <= 100);
    CHECK(res->get_header_value("X-RateLimit-Limit") == "3");
    CHECK(res->get_header_value("X-RateLimit-Remaining") == "0");
    const std::string reset = res->get_header_value("X-RateLimit-Reset");
    CHECK(reset.size() == 20);
    CHECK(reset[10] == 'T');
    CHECK(reset.back() == 'Z');
    CHECK(res->get_header_value("RateLimit-Reason") == "jira-burst-based");
    CHECK(body_of(res)["errorMessages"].size() == 1);
    // Another credential has its own bucket; time refills this one.
    CHECK(sb.get("/jira/rest/api/2/myself", bearer(sb.config["jira"]["pat"].get<std::string>()))->status == 200);
    sb.advance(retry);
    CHECK(sb.get("/jira/rest/api/3/myself", auth)->status == 200);
}
