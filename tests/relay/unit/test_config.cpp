#include <catch2/catch.hpp>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "config.h"
#include "temp_dir.h"

using namespace keyrelay;
using namespace keyrelay::relay;
using nlohmann::json;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

const char* kHash = "pbkdf2-sha256$210000$c2FsdA==$aGFzaA==";

json sandbox_config() {
    return json::parse(R"({
      "base_url": "http://127.0.0.1:9000",
      "keap": {"client_id": "kid", "client_secret": "ks+/=%:", "account": "ab123.infusionsoft.com",
               "authorize_url": "http://127.0.0.1:9000/keap/app/oauth/authorize",
               "token_url": "http://127.0.0.1:9000/keap/token", "api_base": "http://127.0.0.1:9000/keap",
               "api_key": "KeapAK-1", "pat": "KeapPAT-1"},
      "jira": {"client_id": "jid", "client_secret": "js",
               "authorize_url": "http://127.0.0.1:9000/jira/authorize",
               "token_url": "http://127.0.0.1:9000/jira/oauth/token",
               "accessible_resources_url": "http://127.0.0.1:9000/jira/oauth/token/accessible-resources",
               "api_base": "http://127.0.0.1:9000/jira", "cloud_id": "c-1",
               "site_url": "https://keyrelay-sandbox.atlassian.net", "api_token_email": "admin@example.com",
               "api_token": "tok", "pat": "pat"}
    })");
}

}  // namespace

TEST_CASE("a config without secrets loads, with built-in Keap and Jira and secrets from the environment", "[config]") {
    json doc = json::parse(R"({"port": 9443, "public_url": "https://relay.example.com/",
                               "cors_origins": ["https://app.example.com"]})");
    doc["users"] = json::array({json{{"username", "ann"}, {"password_hash", kHash}}});
    auto c = config_from_json(doc, env_of({{"KEAP_CLIENT_ID", "id"}, {"KEAP_CLIENT_SECRET", "secret"},
                                           {"KEYRELAY_API_KEY", "relay-key"}}), "/etc/keyrelay");
    REQUIRE(c.ok());
    CHECK(c->port == 9443);
    CHECK(c->redirect_uri("keap", 9443) == "https://relay.example.com/callback/keap");
    REQUIRE(c->provider("keap") != nullptr);
    CHECK(c->provider("keap")->client_id == "id");
    CHECK(c->provider("keap")->oauth_configured());
    CHECK_FALSE(c->provider("jira")->oauth_configured());
    CHECK(c->api_key == "relay-key");
    CHECK(c->cors_origins == std::vector<std::string>{"https://app.example.com"});
    CHECK(c->data_dir == "/etc/keyrelay/keyrelay-data");
}

TEST_CASE("a secret written literally in the config refuses to start and names the variable to use", "[config]") {
    auto env = env_of({});
    SECTION("a provider's client secret") {
        auto c = config_from_json(json::parse(R"({"providers": {"keap": {"client_secret": "s3cret"}}})"), env, "");
        REQUIRE_FALSE(c.ok());
        CHECK(c.error().code == "config.secret_in_file");
        CHECK(c.error().hint.find("KEAP_CLIENT_SECRET") != std::string::npos);
        CHECK(c.error().message.find("s3cret") == std::string::npos);   // never echo the secret
    }
    SECTION("an environment variable's name used as a key") {
        auto c = config_from_json(json::parse(R"({"KEYRELAY_STORE_KEY": "abcd"})"), env, "");
        REQUIRE_FALSE(c.ok());
        CHECK(c.error().code == "config.secret_in_file");
    }
    SECTION("a Keap key under an innocent name") {
        auto c = config_from_json(json::parse(R"({"users": [{"username": "KeapAK-123", "password_hash": "x"}]})"),
                                  env, "");
        REQUIRE_FALSE(c.ok());
        CHECK(c.error().code == "config.secret_in_file");
    }
}

TEST_CASE("secrets can come from files named NAME_FILE in the config", "[config]") {
    relaytest::TempDir dir;
    {
        std::ofstream(dir.path() + "/keap-secret") << "from-file\n";
    }
    json doc = {{"KEAP_CLIENT_SECRET_FILE", "keap-secret"}, {"users", json::array()}};
    auto c = config_from_json(doc, env_of({{"KEAP_CLIENT_ID", "id"}}), dir.path());
    REQUIRE(c.ok());
    CHECK(c->provider("keap")->client_secret == "from-file");

    json missing = {{"KEAP_CLIENT_SECRET_FILE", "/nonexistent/secret"}};
    auto m = config_from_json(missing, env_of({}), dir.path());
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == "config.secret_file");
}

TEST_CASE("unknown settings and wrong types are refused", "[config]") {
    auto env = env_of({});
    auto typo = config_from_json(json::parse(R"({"cors_orgins": []})"), env, "");
    REQUIRE_FALSE(typo.ok());
    CHECK(typo.error().code == "config.unknown_key");
    auto type = config_from_json(json::parse(R"({"port": "8080"})"), env, "");
    REQUIRE_FALSE(type.ok());
    CHECK(type.error().code == "config.bad_value");
    auto star = config_from_json(json::parse(R"({"cors_origins": ["*"]})"), env, "");
    REQUIRE_FALSE(star.ok());
    CHECK(star.error().code == "config.bad_value");
    auto path = config_from_json(json::parse(R"({"cors_origins": ["https://a.example/app"]})"), env, "");
    REQUIRE_FALSE(path.ok());
    auto http = config_from_json(json::parse(R"({"providers": {"keap": {"token_url": "http://evil.example/t"}}})"),
                                 env, "");
    REQUIRE_FALSE(http.ok());
    CHECK(http.error().code == "config.bad_value");
    auto comment = config_from_json(json::parse(R"({"_comment": "x", "providers": {"_comment": "y"}})"), env, "");
    CHECK(comment.ok());
}

TEST_CASE("a new OAuth2 provider is added in the config alone", "[config]") {
    json doc = json::parse(R"({"providers": {"github": {
        "authorize_url": "https://github.com/login/oauth/authorize",
        "token_url": "https://github.com/login/oauth/access_token",
        "client_auth": "post", "token_body": "form", "scopes": ["read:user"], "pkce": true,
        "api_base": "https://api.github.com", "allow": ["GET /user", {"method": "GET", "path": "/users/*"}],
        "credentials": "bearer", "rate_limit_headers": ["X-RateLimit-*"]}}})");
    auto c = config_from_json(doc, env_of({{"GITHUB_CLIENT_ID", "gid"}, {"GITHUB_CLIENT_SECRET", "gs"}}), "");
    REQUIRE(c.ok());
    const ProviderConfig* g = c->provider("github");
    REQUIRE(g != nullptr);
    CHECK(g->oauth.pkce);
    CHECK(g->oauth.client_auth == oauth2::ClientAuth::post);
    CHECK(g->allow.size() == 2);
    CHECK(g->allow[1].pattern == "/users/*");
    CHECK(g->client_id == "gid");
    CHECK(proxy::matches_header_pattern(g->rate_limit_headers, "x-ratelimit-remaining"));
    CHECK_FALSE(proxy::matches_header_pattern(g->rate_limit_headers, "set-cookie"));

    auto incomplete = config_from_json(json::parse(R"({"providers": {"x": {"api_base": "https://x.example"}}})"),
                                       env_of({}), "");
    REQUIRE_FALSE(incomplete.ok());
    CHECK(incomplete.error().code == "config.bad_value");
}

TEST_CASE("static credentials from the environment select the provider's mode", "[config]") {
    auto keap = config_from_json(json::object(), env_of({{"KEAP_API_KEY", "KeapPAT-x"}}), "");
    REQUIRE(keap.ok());
    CHECK(keap->provider("keap")->mode == Mode::api_key);

    auto jira = config_from_json(json::object(), env_of({{"JIRA_API_TOKEN", "t"}, {"JIRA_EMAIL", "a@b.c"},
                                                         {"JIRA_SITE", "https://x.atlassian.net/"}}), "");
    REQUIRE(jira.ok());
    const ProviderConfig* j = jira->provider("jira");
    CHECK(j->mode == Mode::api_token);
    CHECK(resolve_api_base(*j, "") == "https://x.atlassian.net");
    CHECK(j->static_account == "x.atlassian.net");

    auto no_email = config_from_json(json::object(), env_of({{"JIRA_API_TOKEN", "t"}}), "");
    REQUIRE_FALSE(no_email.ok());
    CHECK(no_email.error().code == "config.missing_secret");
    auto no_site = config_from_json(json::object(), env_of({{"JIRA_PAT", "p"}}), "");
    REQUIRE_FALSE(no_site.ok());
    CHECK(no_site.error().code == "config.missing_secret");
}

TEST_CASE("sandbox mode points Keap and Jira at the sandbox with its credentials", "[config]") {
    auto c = config_from_sandbox("http://127.0.0.1:9000", sandbox_config(), env_of({}));
    REQUIRE(c.ok());
    CHECK(c->sandbox);
    const ProviderConfig* k = c->provider("keap");
    const ProviderConfig* j = c->provider("jira");
    REQUIRE(k != nullptr);
    REQUIRE(j != nullptr);
    CHECK(k->client_secret == "ks+/=%:");
    CHECK(k->oauth.token_url == "http://127.0.0.1:9000/keap/token");
    CHECK(resolve_api_base(*k, "") == "http://127.0.0.1:9000/keap");
    CHECK(resolve_api_base(*j, "c-1") == "http://127.0.0.1:9000/jira/ex/jira/c-1");
    CHECK(j->accessible_resources_url == "http://127.0.0.1:9000/jira/oauth/token/accessible-resources");
    REQUIRE(c->users.size() == 1);
    CHECK(c->users[0].username == "demo");

    auto pat = config_from_sandbox("http://127.0.0.1:9000", sandbox_config(), env_of({{"KEAP_API_KEY", "KeapPAT-1"}}));
    REQUIRE(pat.ok());
    CHECK(pat->provider("keap")->mode == Mode::api_key);
    CHECK(pat->provider("keap")->static_attach == proxy::CredentialStyle::keap_api_key);

    auto dc = config_from_sandbox("http://127.0.0.1:9000", sandbox_config(), env_of({{"JIRA_PAT", "pat"}}));
    REQUIRE(dc.ok());
    CHECK(dc->provider("jira")->mode == Mode::pat);
    CHECK(resolve_api_base(*dc->provider("jira"), "") == "http://127.0.0.1:9000/jira");

    auto bad = config_from_sandbox("http://127.0.0.1:9000", json::object(), env_of({}));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == "sandbox.bad_config");
}
