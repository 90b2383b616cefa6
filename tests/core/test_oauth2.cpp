#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/fixtures.h"
#include "keyrelay/oauth2.h"

using namespace keyrelay;
using namespace keyrelay::oauth2;
using json = nlohmann::json;

namespace {

Provider keap_provider() {
    Provider p;
    p.name = "keap";
    p.authorize_url = "https://accounts.infusionsoft.com/app/oauth/authorize";
    p.token_url = "https://api.infusionsoft.com/token";
    p.client_auth = ClientAuth::basic;
    p.token_body = BodyFormat::form;
    p.scopes = {"full"};
    p.account_from_scope = true;
    return p;
}

Provider jira_provider() {
    Provider p;
    p.name = "jira";
    p.authorize_url = "https://auth.atlassian.com/authorize";
    p.token_url = "https://auth.atlassian.com/oauth/token";
    p.client_auth = ClientAuth::post;
    p.token_body = BodyFormat::json;
    p.scopes = {"read:jira-user", "offline_access"};
    p.extra_authorize_params = {{"audience", "api.atlassian.com"}, {"prompt", "consent"}};
    return p;
}

Client client() { return {"my-client", "a+b/c=d%e:f g", "https://relay.example/oauth/keap/callback"}; }

HttpResponse response(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = std::move(body);
    return r;
}

Params query_of(const std::string& url) {
    auto q = parse_query(url);
    REQUIRE(q.ok());
    return *q;
}

Params form_of(const HttpRequest& request) {
    auto f = form_decode(request.body);
    REQUIRE(f.ok());
    return *f;
}

}  // namespace

// ---------------------------------------------------------------- client authentication

TEST_CASE("the Basic header form-urlencodes id and secret before base64", "[oauth2]") {
    // Expected values computed independently (Python: quote_plus, b64encode).
    CHECK(basic_auth_header("my-client", "a+b/c=d%e:f g") == "Basic bXktY2xpZW50OmElMkJiJTJGYyUzRGQlMjVlJTNBZitn");
    CHECK(basic_auth_header("abc123", "s3cr3t") == "Basic YWJjMTIzOnMzY3IzdA==");
}

TEST_CASE("a server decoding the Basic header gets the exact secret back", "[oauth2]") {
    auto secret = GENERATE(as<std::string>{}, "plain", "with+plus", "with/slash", "with=equals", "100%", "a:b:c",
                           "has space", "+/=%: all", "\xc3\xa9t\xc3\xa9");
    std::string header = basic_auth_header("client:id", secret);
    REQUIRE(header.rfind("Basic ", 0) == 0);
    auto decoded = base64_decode(header.substr(6));
    REQUIRE(decoded.ok());
    // RFC 6749 §2.3.1: the first ':' separates id and secret because both are urlencoded.
    size_t colon = decoded->find(':');
    REQUIRE(colon != std::string::npos);
    CHECK(percent_decode(decoded->substr(0, colon), true).value() == "client:id");
    CHECK(percent_decode(decoded->substr(colon + 1), true).value() == secret);
}

// ---------------------------------------------------------------- authorize URL

TEST_CASE("PKCE S256 matches RFC 7636 Appendix B", "[oauth2]") {
    CHECK(pkce_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") ==
          "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST_CASE("Keap's authorize URL carries response_type, client_id, redirect_uri, scope and state", "[oauth2]") {
    std::string url = build_authorize_url(keap_provider(), client(), "st&te=1");
    CHECK(url.rfind("https://accounts.infusionsoft.com/app/oauth/authorize?", 0) == 0);
    CHECK(url.find("redirect_uri=https%3A%2F%2Frelay.example%2Foauth%2Fkeap%2Fcallback") != std::string::npos);
    CHECK(url.find("state=st%26te%3D1") != std::string::npos);
    Params q = query_of(url);
    CHECK(param(q, "response_type") == std::optional<std::string>("code"));
    CHECK(param(q, "client_id") == std::optional<std::string>("my-client"));
    CHECK(param(q, "redirect_uri") == std::optional<std::string>("https://relay.example/oauth/keap/callback"));
    CHECK(param(q, "scope") == std::optional<std::string>("full"));
    CHECK(param(q, "state") == std::optional<std::string>("st&te=1"));
    CHECK_FALSE(param(q, "code_challenge").has_value());
}

TEST_CASE("Atlassian's authorize URL joins scopes with %20 and adds audience and prompt", "[oauth2]") {
    std::string url = build_authorize_url(jira_provider(), client(), "s1");
    CHECK(url.find("scope=read%3Ajira-user%20offline_access") != std::string::npos);
    Params q = query_of(url);
    CHECK(param(q, "audience") == std::optional<std::string>("api.atlassian.com"));
    CHECK(param(q, "prompt") == std::optional<std::string>("consent"));
    CHECK(param(q, "scope") == std::optional<std::string>("read:jira-user offline_access"));
}

TEST_CASE("the authorize URL carries an S256 challenge only when the provider uses PKCE", "[oauth2]") {
    const std::string verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    Provider p = keap_provider();
    CHECK_FALSE(param(query_of(build_authorize_url(p, client(), "s", verifier)), "code_challenge").has_value());
    p.pkce = true;
    Params q = query_of(build_authorize_url(p, client(), "s", verifier));
    CHECK(param(q, "code_challenge") == std::optional<std::string>("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    CHECK(param(q, "code_challenge_method") == std::optional<std::string>("S256"));
    CHECK_FALSE(param(query_of(build_authorize_url(p, client(), "s")), "code_challenge").has_value());
}

TEST_CASE("an authorize URL that already has a query gets '&'", "[oauth2]") {
    Provider p = keap_provider();
    p.authorize_url = "https://signin.example/authorize?tenant=x";
    std::string url = build_authorize_url(p, client(), "s");
    CHECK(url.rfind("https://signin.example/authorize?tenant=x&response_type=code&", 0) == 0);
}

// ---------------------------------------------------------------- token requests

TEST_CASE("Keap's code exchange is a form POST with a Basic header and no secret in the body", "[oauth2]") {
    HttpRequest r = build_code_exchange(keap_provider(), client(), "code/1+2");
    CHECK(r.method == "POST");
    CHECK(r.url == "https://api.infusionsoft.com/token");
    CHECK(r.headers.get("content-type") == std::optional<std::string>("application/x-www-form-urlencoded"));
    CHECK(r.headers.get("accept") == std::optional<std::string>("application/json"));
    CHECK(r.headers.get("authorization") == std::optional<std::string>(basic_auth_header("my-client", "a+b/c=d%e:f g")));
    CHECK(r.body.find("client_secret") == std::string::npos);
    CHECK(r.body.find("a%2Bb") == std::string::npos);
    Params f = form_of(r);
    CHECK(param(f, "grant_type") == std::optional<std::string>("authorization_code"));
    CHECK(param(f, "code") == std::optional<std::string>("code/1+2"));
    CHECK(param(f, "redirect_uri") == std::optional<std::string>("https://relay.example/oauth/keap/callback"));
    CHECK_FALSE(param(f, "code_verifier").has_value());
}

TEST_CASE("client_secret_post puts the credentials in the form body and sends no Authorization", "[oauth2]") {
    Provider p = keap_provider();
    p.client_auth = ClientAuth::post;
    HttpRequest r = build_refresh(p, client(), "rt+1");
    CHECK_FALSE(r.headers.has("Authorization"));
    Params f = form_of(r);
    CHECK(param(f, "grant_type") == std::optional<std::string>("refresh_token"));
    CHECK(param(f, "refresh_token") == std::optional<std::string>("rt+1"));
    CHECK(param(f, "client_id") == std::optional<std::string>("my-client"));
    CHECK(param(f, "client_secret") == std::optional<std::string>("a+b/c=d%e:f g"));
}

TEST_CASE("Keap's refresh sends grant_type and refresh_token with the Basic header", "[oauth2]") {
    HttpRequest r = build_refresh(keap_provider(), client(), "Rt8vH2kJ5nM1pQ4wE7yU0iO3");
    CHECK(r.method == "POST");
    CHECK(r.headers.get("Authorization") ==
          std::optional<std::string>("Basic bXktY2xpZW50OmElMkJiJTJGYyUzRGQlMjVlJTNBZitn"));
    CHECK(r.body == "grant_type=refresh_token&refresh_token=Rt8vH2kJ5nM1pQ4wE7yU0iO3");
}

TEST_CASE("Atlassian's code exchange is a JSON body with the client credentials", "[oauth2]") {
    HttpRequest r = build_code_exchange(jira_provider(), client(), "the-code");
    CHECK(r.url == "https://auth.atlassian.com/oauth/token");
    CHECK(r.headers.get("Content-Type") == std::optional<std::string>("application/json"));
    CHECK(r.headers.get("Accept") == std::optional<std::string>("application/json"));
    CHECK_FALSE(r.headers.has("Authorization"));
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body == json{{"grant_type", "authorization_code"},
                       {"client_id", "my-client"},
                       {"client_secret", "a+b/c=d%e:f g"},
                       {"code", "the-code"},
                       {"redirect_uri", "https://relay.example/oauth/keap/callback"}});
}

TEST_CASE("Atlassian's refresh is a JSON body with grant_type, client_id, client_secret, refresh_token", "[oauth2]") {
    HttpRequest r = build_refresh(jira_provider(), client(), "rt");
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body == json{{"grant_type", "refresh_token"},
                       {"client_id", "my-client"},
                       {"client_secret", "a+b/c=d%e:f g"},
                       {"refresh_token", "rt"}});
}

TEST_CASE("a JSON body with Basic authentication keeps the secret out of the body", "[oauth2]") {
    Provider p = jira_provider();
    p.client_auth = ClientAuth::basic;
    HttpRequest r = build_refresh(p, client(), "rt");
    CHECK(r.headers.has("Authorization"));
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK_FALSE(body.contains("client_secret"));
    CHECK(body == json{{"grant_type", "refresh_token"}, {"refresh_token", "rt"}});
}

TEST_CASE("the code exchange carries code_verifier when the provider uses PKCE", "[oauth2]") {
    Provider p = keap_provider();
    p.pkce = true;
    Params f = form_of(build_code_exchange(p, client(), "c", "verifier-123"));
    CHECK(param(f, "code_verifier") == std::optional<std::string>("verifier-123"));

    Provider j = jira_provider();
    j.pkce = true;
    json body = json::parse(build_code_exchange(j, client(), "c", "verifier-123").body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body.value("code_verifier", "") == "verifier-123");
}

TEST_CASE("a token request with invalid UTF-8 in a JSON value does not throw", "[oauth2]") {
    HttpRequest r = build_refresh(jira_provider(), client(), "bad\xff\xfe");
    json body = json::parse(r.body, nullptr, false);
    CHECK(body.is_object());
}

// ---------------------------------------------------------------- callback

TEST_CASE("the callback gives code, state and Keap's scope", "[oauth2]") {
    auto cb = parse_callback("https://relay.example/oauth/keap/callback?code=c0de&scope=full%7Cab123.infusionsoft.com&state=s1");
    REQUIRE(cb.ok());
    CHECK(cb->code == "c0de");
    CHECK(cb->state == "s1");
    CHECK(cb->scope == "full|ab123.infusionsoft.com");
    CHECK(account_from_scope(cb->scope) == "ab123.infusionsoft.com");
}

TEST_CASE("Keap's Deny redirect is oauth.access_denied", "[oauth2]") {
    auto cb = parse_callback("?state=&error=access_denied&error_description=User+denied+access+to+resource");
    REQUIRE_FALSE(cb.ok());
    CHECK(cb.error().code == "oauth.access_denied");
    CHECK(cb.error().message.find("User denied access to resource") != std::string::npos);
    CHECK_FALSE(cb.error().hint.empty());
}

TEST_CASE("other callback errors, a missing code or state are each their own code", "[oauth2]") {
    std::string input, code;
    std::tie(input, code) = GENERATE(table<std::string, std::string>({
        {"error=invalid_scope&state=s", "oauth.callback_error"},
        {"error=server_error", "oauth.callback_error"},
        {"state=s", "oauth.missing_code"},
        {"code=&state=s", "oauth.missing_code"},
        {"https://relay.example/cb", "oauth.missing_code"},
        {"code=c", "oauth.missing_state"},
        {"code=c&state=", "oauth.missing_state"},
        {"code=c%zz&state=s", "http.bad_percent_encoding"},
    }));
    auto cb = parse_callback(input);
    REQUIRE_FALSE(cb.ok());
    CHECK(cb.error().code == code);
    CHECK_FALSE(cb.error().hint.empty());
}

// ---------------------------------------------------------------- token responses

TEST_CASE("Keap's token response gives the tokens, the expiry and the account", "[oauth2]") {
    auto t = parse_token_response(response(200, fixtures::read("oauth/keap_token.json")), 1700000000);
    REQUIRE(t.ok());
    CHECK(t->access_token == "Kz3qT7wQ1vXbYp9cLmN2rS4t");
    CHECK(t->refresh_token == "Rt8vH2kJ5nM1pQ4wE7yU0iO3");
    CHECK(t->token_type == "bearer");
    CHECK(t->scope == "full|ab123.infusionsoft.com");
    CHECK(t->account == "ab123.infusionsoft.com");
    CHECK(t->expires_in == 86400);
    CHECK(t->obtained_at == 1700000000);
    CHECK(t->expires_at == 1700086400);
}

TEST_CASE("expires_in as a string counts and a missing refresh_token keeps the previous one", "[oauth2]") {
    TokenSet previous;
    previous.refresh_token = "old-refresh";
    previous.account = "ab123.infusionsoft.com";
    auto body = fixtures::read("oauth/keap_token_string_expiry_no_refresh.json");
    auto t = parse_token_response(response(200, body), 1000, &previous);
    REQUIRE(t.ok());
    CHECK(t->access_token == "Aq7wE2rT9yU4iO1pL6kJ3hG8");
    CHECK(t->expires_in == 86400);
    CHECK(t->expires_at == 87400);
    CHECK(t->refresh_token == "old-refresh");

    auto without_previous = parse_token_response(response(200, body), 1000);
    REQUIRE(without_previous.ok());
    CHECK(without_previous->refresh_token.empty());
}

TEST_CASE("a new refresh token replaces the previous one (rotation)", "[oauth2]") {
    TokenSet previous;
    previous.refresh_token = "old-refresh";
    auto t = parse_token_response(response(200, fixtures::read("oauth/keap_token.json")), 0, &previous);
    REQUIRE(t.ok());
    CHECK(t->refresh_token == "Rt8vH2kJ5nM1pQ4wE7yU0iO3");
}

TEST_CASE("Atlassian's token response has no account in its scope", "[oauth2]") {
    auto t = parse_token_response(response(200, fixtures::read("oauth/atlassian_token.json")), 50, nullptr, false);
    REQUIRE(t.ok());
    CHECK(t->token_type == "Bearer");
    CHECK(t->scope == "read:jira-user offline_access");
    CHECK(t->account.empty());
    CHECK(t->expires_at == 3650);
    CHECK_FALSE(t->refresh_token.empty());
}

TEST_CASE("the account is read from the scope only when asked", "[oauth2]") {
    auto t = parse_token_response(response(200, fixtures::read("oauth/keap_token.json")), 0, nullptr, false);
    REQUIRE(t.ok());
    CHECK(t->account.empty());
}

TEST_CASE("a response without scope keeps the previous scope and account", "[oauth2]") {
    TokenSet previous;
    previous.scope = "full|ab123.infusionsoft.com";
    previous.account = "ab123.infusionsoft.com";
    auto t = parse_token_response(response(200, R"({"access_token":"a","expires_in":60})"), 10, &previous);
    REQUIRE(t.ok());
    CHECK(t->scope == "full|ab123.infusionsoft.com");
    CHECK(t->account == "ab123.infusionsoft.com");
}

TEST_CASE("an unusable expires_in means the expiry is unknown", "[oauth2]") {
    std::string expires = GENERATE(as<std::string>{}, R"("soon")", "null", "-5", R"("")", "{}", R"("12x")");
    auto t = parse_token_response(response(200, R"({"access_token":"a","expires_in":)" + expires + "}"), 100);
    REQUIRE(t.ok());
    CHECK(t->expires_in == 0);
    CHECK(t->expires_at == 0);
    CHECK_FALSE(needs_refresh(*t, 1000000, 60));
}

TEST_CASE("a fractional expires_in is truncated to seconds", "[oauth2]") {
    auto t = parse_token_response(response(200, R"({"access_token":"a","expires_in":3599.9})"), 1);
    REQUIRE(t.ok());
    CHECK(t->expires_in == 3599);
    CHECK(t->expires_at == 3600);
}

TEST_CASE("a 200 without access_token is oauth.missing_access_token", "[oauth2]") {
    auto body = GENERATE(as<std::string>{}, R"({"token_type":"bearer"})", R"({"access_token":""})",
                         R"({"access_token":42})");
    auto t = parse_token_response(response(200, body), 0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == "oauth.missing_access_token");
}

TEST_CASE("an HTML page instead of JSON is oauth.not_json and names the page", "[oauth2]") {
    HttpResponse r = response(200, fixtures::read("oauth/html_error_page.html"));
    r.headers.set("Content-Type", "text/html");
    auto t = parse_token_response(r, 0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == "oauth.not_json");
    CHECK(t.error().message.find("502 Bad Gateway") != std::string::npos);
    CHECK(t.error().hint.find("token URL") != std::string::npos);

    r.status = 502;
    auto e = parse_token_response(r, 0);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == "oauth.not_json");
    CHECK(e.error().hint.find("Retry") != std::string::npos);
}

TEST_CASE("a 200 with an empty body or a JSON array is oauth.not_json", "[oauth2]") {
    auto body = GENERATE(as<std::string>{}, "", "[]", "\"token\"", "{\"access_token\":");
    auto t = parse_token_response(response(200, body), 0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == "oauth.not_json");
}

// ---------------------------------------------------------------- token errors

TEST_CASE("token endpoint errors map to specific codes", "[oauth2]") {
    int status;
    std::string fixture, code;
    std::tie(status, fixture, code) = GENERATE(table<int, std::string, std::string>({
        {400, "oauth/keap_invalid_grant.json", "oauth.invalid_grant"},
        {400, "oauth/keap_invalid_refresh_token.json", "oauth.invalid_refresh_token"},
        {400, "oauth/keap_invalid_redirect_uri.json", "oauth.invalid_redirect_uri"},
        {401, "oauth/keap_401_unable_to_authenticate.json", "oauth.invalid_client"},
        {400, "oauth/keap_json_body_rejected.json", "oauth.invalid_request"},
        {401, "oauth/empty_body.txt", "oauth.unauthorized"},
        {403, "oauth/atlassian_403_invalid_grant.json", "oauth.invalid_grant"},
        {400, "oauth/html_error_page.html", "oauth.not_json"},
    }));
    HttpResponse r = response(status, fixtures::read(fixture));
    Error e = parse_token_error(r);
    CHECK(e.code == code);
    CHECK_FALSE(e.message.empty());
    CHECK_FALSE(e.hint.empty());
    // parse_token_response reports the same error for a non-2xx status.
    auto t = parse_token_response(r, 0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == code);
}

TEST_CASE("the error message quotes the provider's description", "[oauth2]") {
    Error e = parse_token_error(response(400, fixtures::read("oauth/keap_invalid_refresh_token.json")));
    CHECK(e.message.find("400") != std::string::npos);
    CHECK(e.message.find("invalid_request") != std::string::npos);
    CHECK(e.message.find("Invalid Refresh Token") != std::string::npos);
}

TEST_CASE("a dead refresh token tells the person to connect again", "[oauth2]") {
    Error grant = parse_token_error(response(400, fixtures::read("oauth/keap_invalid_grant.json")));
    Error request = parse_token_error(response(400, fixtures::read("oauth/keap_invalid_refresh_token.json")));
    Error atlassian = parse_token_error(response(403, fixtures::read("oauth/atlassian_403_invalid_grant.json")));
    for (const Error* e : {&grant, &request, &atlassian}) {
        CHECK(is_dead_grant(*e));
        CHECK(e->hint.find("Connect the account again") != std::string::npos);
        CHECK(e->hint.find("rotate") != std::string::npos);
    }
}

TEST_CASE("client and configuration errors are not dead grants", "[oauth2]") {
    Error client = parse_token_error(response(401, fixtures::read("oauth/keap_401_unable_to_authenticate.json")));
    Error unauthorized = parse_token_error(response(401, ""));
    Error redirect = parse_token_error(response(400, fixtures::read("oauth/keap_invalid_redirect_uri.json")));
    for (const Error* e : {&client, &unauthorized, &redirect}) CHECK_FALSE(is_dead_grant(*e));
    CHECK_FALSE(is_dead_grant(make_error("oauth.error", "x")));
}

TEST_CASE("a 401 without an OAuth body explains the Basic header", "[oauth2]") {
    HttpResponse r = response(401, fixtures::read("oauth/empty_body.txt"));
    Error e = parse_token_error(r);
    CHECK(e.code == "oauth.unauthorized");
    CHECK(e.message.find("401") != std::string::npos);
    CHECK(e.hint.find("Authorization: Basic ") != std::string::npos);
    CHECK(e.hint.find("the word Basic and a space are required") != std::string::npos);
    CHECK(e.hint.find("client id and secret") != std::string::npos);

    Error html = parse_token_error(response(401, fixtures::read("oauth/html_error_page.html")));
    CHECK(html.code == "oauth.unauthorized");
}

TEST_CASE("Keap's 401 'Unable to authenticate username and password' points at the client credentials",
          "[oauth2]") {
    Error e = parse_token_error(response(401, fixtures::read("oauth/keap_401_unable_to_authenticate.json")));
    CHECK(e.code == "oauth.invalid_client");
    CHECK(e.message.find("Unable to authenticate username and password") != std::string::npos);
    CHECK(e.hint.find("Authorization: Basic ") != std::string::npos);
}

TEST_CASE("a JSON body sent to Keap's token endpoint is explained", "[oauth2]") {
    Error e = parse_token_error(response(400, fixtures::read("oauth/keap_json_body_rejected.json")));
    CHECK(e.code == "oauth.invalid_request");
    CHECK(e.hint.find("form") != std::string::npos);
}

TEST_CASE("other OAuth errors, gateway faults and rate limits are oauth.error", "[oauth2]") {
    int status;
    std::string body, hint_part;
    std::tie(status, body, hint_part) = GENERATE(table<int, std::string, std::string>({
        {400, R"({"error":"unsupported_grant_type"})", "grant_type"},
        {400, R"({"error":"invalid_scope","error_description":"bad scope"})", "scope"},
        {400, R"({"error":"temporarily_unavailable"})", "developer app"},
        {429, R"({"code":"429","message":"Quota Exceeded","status":"Request Throttled","details":null})", "Retry-After"},
        {503, R"({"fault":{"faultstring":"Service unavailable","detail":{"errorcode":"x"}}})", "Retry"},
        {404, R"({"message":"Not found"})", "token URL"},
    }));
    Error e = parse_token_error(response(status, body));
    CHECK(e.code == "oauth.error");
    CHECK(e.hint.find(hint_part) != std::string::npos);
}

TEST_CASE("an invalid_client body is oauth.invalid_client whatever the status", "[oauth2]") {
    auto status = GENERATE(400, 401);
    Error e = parse_token_error(response(status, R"({"error":"invalid_client","error_description":"Bad client"})"));
    CHECK(e.code == "oauth.invalid_client");
}

TEST_CASE("a 200 carrying an error member is an error", "[oauth2]") {
    auto t = parse_token_response(response(200, fixtures::read("oauth/keap_invalid_grant.json")), 0);
    REQUIRE_FALSE(t.ok());
    CHECK(t.error().code == "oauth.invalid_grant");
}

// ---------------------------------------------------------------- expiry

TEST_CASE("needs_refresh looks ahead by the margin and ignores an unknown expiry", "[oauth2]") {
    TokenSet t;
    t.expires_at = 1000;
    CHECK_FALSE(needs_refresh(t, 800, 100));
    CHECK(needs_refresh(t, 900, 100));
    CHECK(needs_refresh(t, 950, 100));
    CHECK(needs_refresh(t, 2000, 0));
    CHECK_FALSE(needs_refresh(t, 999, 0));
    t.expires_at = 0;
    CHECK_FALSE(needs_refresh(t, 1 << 30, 3600));
}

TEST_CASE("account_from_scope reads the part after '|'", "[oauth2]") {
    CHECK(account_from_scope("full|ab123.infusionsoft.com") == "ab123.infusionsoft.com");
    CHECK(account_from_scope("full") == "");
    CHECK(account_from_scope("") == "");
    CHECK(account_from_scope("full|xx123.infusionsoft.com other") == "xx123.infusionsoft.com");
}
