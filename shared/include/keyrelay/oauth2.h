// OAuth 2.0 authorization-code flow (RFC 6749), driven by a provider description that is data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace keyrelay::oauth2 {

enum class ClientAuth { basic, post };   // RFC 6749 §2.3.1: HTTP Basic, or client_id/secret in the body
enum class BodyFormat { form, json };    // Keap: form; Atlassian: JSON

struct Provider {
    std::string name;                    // "keap", "jira"
    std::string authorize_url;
    std::string token_url;
    ClientAuth client_auth = ClientAuth::basic;
    BodyFormat token_body = BodyFormat::form;
    std::vector<std::string> scopes;     // joined with a space in the authorize URL
    Params extra_authorize_params;       // e.g. {"audience","api.atlassian.com"}, {"prompt","consent"}
    bool pkce = false;                   // send an S256 code_challenge / code_verifier
    // Keap names the account after '|' in the token's scope ("full|ab123.infusionsoft.com").
    bool account_from_scope = false;
};

struct Client {
    std::string client_id;
    std::string client_secret;
    std::string redirect_uri;
};

struct TokenSet {
    std::string access_token;
    std::string refresh_token;   // may be empty when the provider gave none
    std::string token_type;      // "bearer"
    std::string scope;
    std::string account;         // Keap: "ab123.infusionsoft.com"; empty when unknown
    int64_t expires_in = 0;      // seconds, as the provider said (0 = not said)
    int64_t obtained_at = 0;     // `now` passed to the parser (unix seconds)
    int64_t expires_at = 0;      // obtained_at + expires_in, or 0 when unknown
};

// "Basic " + base64(urlencode(id) ":" urlencode(secret)) — RFC 6749 §2.3.1 form-urlencodes both before base64.
std::string basic_auth_header(std::string_view client_id, std::string_view client_secret);

// RFC 7636 §4.2: base64url(sha256(verifier)), no padding.
std::string pkce_challenge_s256(std::string_view verifier);

// Authorize URL with response_type=code, client_id, redirect_uri, scope, state, the provider's extra parameters,
// and code_challenge/code_challenge_method=S256 when provider.pkce and a verifier is given.
std::string build_authorize_url(const Provider& provider, const Client& client, std::string_view state,
                                std::string_view pkce_verifier = {});

// POST to token_url with grant_type=authorization_code, code, redirect_uri (+ code_verifier),
// client authentication per provider.client_auth, body per provider.token_body.
HttpRequest build_code_exchange(const Provider& provider, const Client& client, std::string_view code,
                                std::string_view pkce_verifier = {});

// POST to token_url with grant_type=refresh_token, refresh_token.
HttpRequest build_refresh(const Provider& provider, const Client& client, std::string_view refresh_token);

struct Callback {
    std::string code;
    std::string state;
    std::string scope;   // Keap sends "full|ab123.infusionsoft.com" here too
};
// Parses the redirect back from the authorize page (a full URL or its query).
// Errors: "oauth.access_denied" (the user pressed Deny), "oauth.callback_error" (any other error=...),
// "oauth.missing_code", "oauth.missing_state", "http.bad_percent_encoding".
Result<Callback> parse_callback(std::string_view url_or_query);

// Parses a token endpoint response. `now` is unix seconds. When the response has no refresh_token, the one in
// `previous` is kept (RFC 6749 §6). expires_in may be a number or a numeric string.
// Errors (see parse_token_error): "oauth.invalid_grant", "oauth.invalid_refresh_token", "oauth.invalid_client",
// "oauth.invalid_redirect_uri", "oauth.invalid_request", "oauth.unauthorized" (401 with no OAuth body),
// "oauth.error" (other OAuth error), "oauth.not_json", "oauth.missing_access_token".
Result<TokenSet> parse_token_response(const HttpResponse& response, int64_t now,
                                      const TokenSet* previous = nullptr, bool account_from_scope = true);

// Classifies a failed token endpoint response into one of the codes above, with a hint for a person.
Error parse_token_error(const HttpResponse& response);

// True when the access token expires within `margin` seconds of `now` (or already has).
// False when the expiry is unknown (expires_at == 0).
bool needs_refresh(const TokenSet& tokens, int64_t now, int64_t margin);

// "full|ab123.infusionsoft.com" -> "ab123.infusionsoft.com"; "" when there is no '|'.
std::string account_from_scope(std::string_view scope);

// True when the error means the refresh token is dead and the user has to connect again.
bool is_dead_grant(const Error& error);

}  // namespace keyrelay::oauth2
