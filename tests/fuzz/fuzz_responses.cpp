// The provider-response parsers on hostile responses (status, headers and body from the input, see
// fuzz_common.h): OAuth token endpoint answers, Keap REST and XML-RPC answers, Jira user lookups. Properties:
//  - errors are the codes each header documents, with a message and a hint;
//  - only a 2xx answer parses (RFC 6749 §5.1 for tokens; the REST parsers say "non-2xx answers become errors");
//  - a parsed token has an access token and expires_at = now + expires_in (or 0), never overflowing;
//  - RFC 6749 §6: without a new refresh_token, the previous one is kept.
#include "fuzz_common.h"
#include "keyrelay/jira.h"
#include "keyrelay/keap.h"
#include "keyrelay/oauth2.h"

using namespace keyrelay;

namespace {

constexpr int64_t kNow = 1767225600;   // 2026-01-01T00:00:00Z

bool success(int status) { return status >= 200 && status < 300; }

void check_token_error(const Error& e) {
    fuzz::check_error(e, "oauth2");
    FUZZ_CHECK(fuzz::one_of(e.code, {"oauth.invalid_grant", "oauth.invalid_refresh_token", "oauth.invalid_client",
                                     "oauth.invalid_redirect_uri", "oauth.invalid_request", "oauth.unauthorized",
                                     "oauth.error", "oauth.not_json", "oauth.missing_access_token"}),
               "undocumented token error " + e.code + ": " + e.message);
}

void check_tokens(const HttpResponse& r) {
    oauth2::TokenSet previous;
    previous.access_token = "old-access";
    previous.refresh_token = "old-refresh";
    previous.scope = "full|ab123.infusionsoft.com";
    previous.account = "ab123.infusionsoft.com";

    const oauth2::TokenSet* const none = nullptr;
    const oauth2::TokenSet* const with_previous = &previous;
    for (const oauth2::TokenSet* prev : {none, with_previous}) {
        for (bool account_from_scope : {true, false}) {
            auto t = oauth2::parse_token_response(r, kNow, prev, account_from_scope);
            if (!t) {
                check_token_error(t.error());
                continue;
            }
            FUZZ_CHECK(success(r.status), "a token parsed from HTTP " + std::to_string(r.status));
            FUZZ_CHECK(!t->access_token.empty(), "a token set without an access token");
            FUZZ_CHECK(t->expires_in >= 0, "negative expires_in " + std::to_string(t->expires_in));
            FUZZ_CHECK(t->obtained_at == kNow, "obtained_at is not now");
            FUZZ_CHECK(t->expires_at == (t->expires_in > 0 ? kNow + t->expires_in : 0),
                       "expires_at " + std::to_string(t->expires_at) + " is not now + " +
                           std::to_string(t->expires_in));
            if (prev != nullptr) {
                FUZZ_CHECK(!t->refresh_token.empty(), "the previous refresh token was lost");
                FUZZ_CHECK(!t->account.empty(), "the previous account was lost");
            }
            FUZZ_CHECK(!oauth2::needs_refresh(*t, kNow, 300) || t->expires_at != 0,
                       "needs_refresh with an unknown expiry");
        }
    }
    // parse_token_error classifies any answer, including a 200 (a token endpoint's answer without a token).
    check_token_error(oauth2::parse_token_error(r));
}

template <class T>
void check_keap_rest(const Result<T>& result, const HttpResponse& r, std::string_view what) {
    if (result) {
        FUZZ_CHECK(success(r.status), std::string(what) + " parsed from HTTP " + std::to_string(r.status));
        return;
    }
    const Error& e = result.error();
    fuzz::check_error(e, what);
    FUZZ_CHECK(fuzz::one_of(e.code, {"keap.unauthorized", "keap.forbidden", "keap.not_found", "keap.rate_limited",
                                     "keap.http_error", "keap.not_json", "keap.unexpected_shape"}),
               std::string(what) + ": undocumented error " + e.code + ": " + e.message);
}

template <class T>
void check_jira(const Result<T>& result, const HttpResponse& r, std::string_view what) {
    if (result) {
        FUZZ_CHECK(success(r.status), std::string(what) + " parsed from HTTP " + std::to_string(r.status));
        return;
    }
    const Error& e = result.error();
    fuzz::check_error(e, what);
    FUZZ_CHECK(fuzz::one_of(e.code, {"jira.unauthorized", "jira.forbidden", "jira.not_found", "jira.rate_limited",
                                     "jira.http_error", "jira.not_json", "jira.unexpected_shape"}),
               std::string(what) + ": undocumented error " + e.code + ": " + e.message);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const HttpResponse r = fuzz::response_from(fuzz::text(data, size));

    check_tokens(r);

    check_keap_rest(keap::parse_contacts(r), r, "keap::parse_contacts");
    check_keap_rest(keap::parse_contact(r), r, "keap::parse_contact");
    check_keap_rest(keap::parse_userinfo(r), r, "keap::parse_userinfo");

    auto x = keap::parse_xmlrpc(r);
    if (!x) {
        fuzz::check_error(x.error(), "keap::parse_xmlrpc");
        FUZZ_CHECK(x.error().code.rfind("keap.", 0) == 0 || x.error().code.rfind("xmlrpc.", 0) == 0,
                   "keap::parse_xmlrpc: unexpected error " + x.error().code);
    }

    auto users = jira::parse_users(r, "ada@example.com");
    check_jira(users, r, "jira::parse_users");
    if (users) {
        FUZZ_CHECK(users->users.empty() == users->caveat.has_value(), "the empty-search caveat is set wrongly");
        for (const auto& u : users->users) FUZZ_CHECK(!u.account_id.empty(), "a user without an id");
    }
    auto me = jira::parse_myself(r);
    check_jira(me, r, "jira::parse_myself");
    if (me) FUZZ_CHECK(!me->account_id.empty(), "myself without an id");
    auto resources = jira::parse_accessible_resources(r);
    check_jira(resources, r, "jira::parse_accessible_resources");
    if (resources) {
        for (const auto& res : *resources) FUZZ_CHECK(!res.id.empty(), "a resource without an id");
    }
    return 0;
}
