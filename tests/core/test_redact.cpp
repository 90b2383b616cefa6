#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "keyrelay/http.h"
#include "keyrelay/oauth2.h"
#include "keyrelay/redact.h"

using namespace keyrelay;

namespace {

// A client secret with the characters that every encoding spells differently: space, '+', '/', '=', '&', '"', '%'.
const std::string kSecret = "s3cr et+/=&\"%Zq";

}  // namespace

TEST_CASE("every form of an echoed secret is redacted", "[redact]") {
    Redactor r({kSecret});
    std::string name, echoed;
    std::tie(name, echoed) = GENERATE(table<std::string, std::string>({
        {"raw", "s3cr et+/=&\"%Zq"},
        {"percent-encoded, upper hex", "s3cr%20et%2B%2F%3D%26%22%25Zq"},
        {"percent-encoded, lower hex", "s3cr%20et%2b%2f%3d%26%22%25Zq"},
        {"percent-encoded, every byte", "%73%33%63%72%20%65%74%2B%2F%3D%26%22%25%5A%71"},
        {"form-encoded (+ for space)", "s3cr+et%2B%2F%3D%26%22%25Zq"},
        {"JSON-escaped, minimal", "s3cr et+/=&\\\"%Zq"},
        {"JSON-escaped, \\/ for slash", "s3cr et+\\/=&\\\"%Zq"},
        {"JSON-escaped, \\u00XX lower hex (Gson's HTML-safe style)", "s3cr et+/\\u003d\\u0026\\u0022%Zq"},
        {"JSON-escaped, \\u00XX upper hex", "s3cr\\u0020et\\u002B/\\u003D\\u0026\"\\u0025Zq"},
        {"JSON-escaped percent-encoding", "s3cr%20et%2B\\/%3D%26%22%25Zq"},
        {"HTML character references", "s3cr et+/=&amp;&quot;&#37;Zq"},
        {"HTML hex references", "s3cr&#x20;et&#X2b;/=&#38;&#34;%Zq"},
        {"base64", base64_encode(kSecret)},
        {"base64url", base64url_encode(kSecret)},
        {"base64 of id:secret (RFC 7617)", base64_encode("client-id:" + kSecret)},
        {"base64 of id:secret after a one-byte id", base64_encode("c:" + kSecret)},
        {"base64 of id:secret after a two-byte id", base64_encode("cl:" + kSecret)},
        {"the RFC 6749 Basic value", oauth2::basic_auth_header("client-id", kSecret).substr(6)},
    }));
    INFO(name);
    const std::string text = "error_description=invalid+grant: {" + echoed + "} end";
    const std::string out = r.redact(text);
    CHECK(out.find("[redacted]") != std::string::npos);
    CHECK(out.rfind("error_description=invalid+grant: {", 0) == 0);
    CHECK(out.size() >= 4);
    CHECK(out.substr(out.size() - 5) == "} end");
    // Nothing of the secret's distinctive letters survives.
    CHECK(out.find("s3cr") == std::string::npos);
    CHECK(out.find("%73%33") == std::string::npos);
    CHECK(out.find(echoed) == std::string::npos);
}

TEST_CASE("a redacted body keeps everything around the secret byte for byte", "[redact]") {
    Redactor r({"tok-1234567890"});
    CHECK(r.redact(R"({"error":"invalid_token","token":"tok-1234567890","n":1})") ==
          R"({"error":"invalid_token","token":"[redacted]","n":1})");
    CHECK(r.redact("Bearer tok-1234567890, again tok%2D1234567890.") == "Bearer [redacted], again [redacted].");
    CHECK(r.redact("no secret here") == "no secret here");
    CHECK(r.redact("") == "");
}

TEST_CASE("the whole base64 run around a secret is redacted, not just the part that spells it", "[redact]") {
    const std::string secret = "very-secret-value";
    Redactor r({secret});
    const std::string basic = base64_encode("someone@example.com:" + secret);
    CHECK(r.redact("Authorization: Basic " + basic + "\r\nHost: x") == "Authorization: Basic [redacted]\r\nHost: x");
}

TEST_CASE("secrets shorter than eight bytes are not redacted", "[redact]") {
    Redactor r({"abc", "1234567"});
    CHECK(r.empty());
    CHECK(r.redact("abc 1234567") == "abc 1234567");
}

TEST_CASE("overlapping and adjacent secrets become one marker each", "[redact]") {
    Redactor r({"AAAABBBBCCCC", "BBBBCCCCDDDD"});
    CHECK(r.redact("xAAAABBBBCCCCDDDDx") == "x[redacted]x");
    CHECK(r.redact("AAAABBBBCCCC AAAABBBBCCCC") == "[redacted] [redacted]");
}

TEST_CASE("a secret whose raw and escaped readings compete is still found", "[redact]") {
    // The secret has a literal "%41"; the text may spell it raw, or escape the '%' itself.
    Redactor r({"key%41value%2Bx"});
    CHECK(r.redact("[key%41value%2Bx]") == "[[redacted]]");
    CHECK(r.redact("[key%2541value%252Bx]") == "[[redacted]]");
    CHECK(r.redact("[keyAvalue+x]") == "[keyAvalue+x]");
}

TEST_CASE("a secret with non-ASCII characters is found raw and as JSON \\u escapes", "[redact]") {
    Redactor r({"p\xC3\xA4ssw\xC3\xB6rd-\xF0\x9F\x94\x91"});   // "pässwörd-" + U+1F511
    CHECK(r.redact("x p\xC3\xA4ssw\xC3\xB6rd-\xF0\x9F\x94\x91 y") == "x [redacted] y");
    CHECK(r.redact(R"(x p\u00e4ssw\u00F6rd-\ud83d\udd11 y)") == "x [redacted] y");
    CHECK(r.redact("x p%C3%A4ssw%C3%B6rd-%F0%9F%94%91 y") == "x [redacted] y");
}

TEST_CASE("headers are redacted value by value, names kept", "[redact]") {
    Redactor r({"at-0123456789abcdef"});
    HttpResponse answer;
    answer.status = 429;
    answer.headers = {{"Retry-After", "at-0123456789abcdef"},
                      {"x-keap-product-throttle-available", "0"},
                      {"x-keap-tenant-id", "echo:at%2D0123456789abcdef"},
                      {"Set-Cookie", "a=b"}};
    answer.body = R"({"message":"bad token at-0123456789abcdef"})";
    CHECK(r.redact_response(answer));
    CHECK(answer.headers.items() == std::vector<std::pair<std::string, std::string>>{
                                        {"Retry-After", "[redacted]"},
                                        {"x-keap-product-throttle-available", "0"},
                                        {"x-keap-tenant-id", "echo:[redacted]"},
                                        {"Set-Cookie", "a=b"}});
    CHECK(answer.body == R"({"message":"bad token [redacted]"})");
    CHECK_FALSE(r.redact_response(answer));
}

TEST_CASE("a token endpoint's error that quotes the request loses the secrets it quotes", "[redact]") {
    oauth2::Provider jira;
    jira.token_url = "https://auth.atlassian.com/oauth/token";
    jira.client_auth = oauth2::ClientAuth::post;
    jira.token_body = oauth2::BodyFormat::json;
    const oauth2::Client client{"the-client-id", "jira-client-secret", "https://relay.example/callback"};
    HttpRequest sent = oauth2::build_refresh(jira, client, "refresh-token-abcdef");
    HttpResponse answer;
    answer.status = 400;
    answer.headers = {{"Content-Type", "application/json"}};
    // A gateway that puts its request into error_description, JSON-escaped.
    std::string quoted;
    for (char c : sent.body) quoted += c == '"' ? std::string("\\\"") : std::string(1, c);
    answer.body = R"({"error":"invalid_grant","error_description":")" + quoted + R"("})";
    Error e = oauth2::parse_token_error(answer);
    REQUIRE(e.message.find("jira-client-secret") != std::string::npos);   // the echo reached the message
    Redactor r;
    r.add_request(sent);
    r.redact_error(e);
    CHECK(e.message.find("jira-client-secret") == std::string::npos);
    CHECK(e.message.find("refresh-token-abcdef") == std::string::npos);
    CHECK(e.hint.find("jira-client-secret") == std::string::npos);
    CHECK(e.code.rfind("oauth.", 0) == 0);
}

TEST_CASE("the secrets of a token request are its credentials, never its client id", "[redact]") {
    oauth2::Provider keap;
    keap.token_url = "https://api.infusionsoft.com/token";
    keap.client_auth = oauth2::ClientAuth::basic;
    keap.token_body = oauth2::BodyFormat::form;
    oauth2::Provider jira;
    jira.token_url = "https://auth.atlassian.com/oauth/token";
    jira.client_auth = oauth2::ClientAuth::post;
    jira.token_body = oauth2::BodyFormat::json;
    jira.pkce = true;
    const oauth2::Client client{"the-client-id", "the client secret+/", "https://relay.example/callback"};

    SECTION("Keap: Basic header, form body with the code") {
        HttpRequest req = oauth2::build_code_exchange(keap, client, "auth-code-123456");
        auto secrets = secrets_of(req);
        CHECK(std::find(secrets.begin(), secrets.end(), "the client secret+/") != secrets.end());
        CHECK(std::find(secrets.begin(), secrets.end(), "auth-code-123456") != secrets.end());
        CHECK(std::find(secrets.begin(), secrets.end(), "the-client-id") == secrets.end());
        Redactor r;
        r.add_request(req);
        // What a misconfigured gateway answers: its request body and headers, echoed.
        std::string echo = "400 {\"error\":\"invalid_grant\",\"error_description\":\"" + req.body + " / " +
                           *req.headers.get("Authorization") + "\"}";
        std::string out = r.redact(echo);
        CHECK(out.find("client secret") == std::string::npos);
        CHECK(out.find("client+secret") == std::string::npos);
        CHECK(out.find("auth-code-123456") == std::string::npos);
        CHECK(out.find(req.headers.get("Authorization")->substr(6)) == std::string::npos);
        CHECK(out.find("invalid_grant") != std::string::npos);
    }
    SECTION("Jira: JSON body with the secret, the refresh token and the PKCE verifier") {
        HttpRequest req = oauth2::build_refresh(jira, client, "refresh-token-abcdef");
        HttpRequest code = oauth2::build_code_exchange(jira, client, "code-abcdefgh", "verifier-0123456789");
        Redactor r;
        r.add_request(req);
        r.add_request(code);
        CHECK(r.redact(req.body).find("refresh-token-abcdef") == std::string::npos);
        CHECK(r.redact(req.body).find("the client secret") == std::string::npos);
        CHECK(r.redact(code.body).find("verifier-0123456789") == std::string::npos);
        CHECK(r.redact(code.body).find("code-abcdefgh") == std::string::npos);
        CHECK(r.redact(code.body).find("the-client-id") != std::string::npos);
    }
    SECTION("a proxied call: the Bearer token and X-Keap-API-Key") {
        HttpRequest req;
        req.method = "GET";
        req.url = "https://api.infusionsoft.com/crm/rest/v1/contacts";
        req.headers = {{"Authorization", "Bearer at-0123456789"}, {"X-Keap-API-Key", "KeapAK-abcdefghij"}};
        CHECK(secrets_of(req) == std::vector<std::string>{"at-0123456789", "KeapAK-abcdefghij"});
    }
}

TEST_CASE("a long run of escapes that almost spell a secret is scanned without a match", "[redact]") {
    // Every position starts an escape that decodes to the secret's next byte, and the secret never completes.
    Redactor r({std::string(40, '%') + "!"});
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "%25";
    CHECK(r.redact(text) == text);
}

TEST_CASE("a long text full of '&' without ';' is scanned in linear time", "[redact]") {
    // Each '&' may start an HTML character reference; the ';' is looked for within the longest one only.
    Redactor r({"secret-value-1234"});
    std::string text;
    for (int i = 0; i < 200000; ++i) text += "&x";
    text += "secret-value-1234";
    const std::string out = r.redact(text);
    CHECK(out.size() == text.size() - std::string("secret-value-1234").size() + kRedacted.size());
    CHECK(out.substr(out.size() - kRedacted.size()) == kRedacted);
}
