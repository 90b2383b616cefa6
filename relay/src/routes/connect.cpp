#include "routes/connect.h"

#include "http/respond.h"
#include "http/util.h"
#include "keyrelay/jira.h"
#include "keyrelay/oauth2.h"
#include "keyrelay/redact.h"
#include "keyrelay/sha256.h"
#include "obs/log.h"
#include "state/crypto.h"

namespace keyrelay::relay {
namespace {

const char* post_connect_name(PostConnect step) {
    switch (step) {
        case PostConnect::jira_accessible_resources: return "jira_accessible_resources";
    }
    return "unknown";
}

}  // namespace

// GET /connect/{provider}: RFC 6749 §4.1.1 with a one-time state bound to this browser (§10.12) and PKCE
// (RFC 7636) where the provider has it.
void ConnectRoutes::connect(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    const ProviderConfig* p = provider_or_404(config_, ctx, req, res, true);
    if (p == nullptr) return;
    if (!callers_.page_session(req, res, true)) return;
    auto id = callers_.session_id(req);
    if (p->mode != Mode::oauth) {
        send_error_for(req, res, 409,
                       make_error("connection.static", p->name + " uses a static credential (" +
                                                           mode_name(p->mode) + "); there is nothing to connect.",
                                  "It is connected already. To use OAuth instead, remove " + p->env_prefix +
                                      "_API_KEY / _API_TOKEN / _PAT from the relay's environment."));
        return;
    }
    if (!p->oauth_configured()) {
        send_error_for(req, res, 409,
                       make_error("oauth.not_configured", p->name + " has no OAuth client configured.",
                                  "Register an app at the provider with the redirect URI " + redirect_uri(*p) +
                                      ", then set " + p->env_prefix + "_CLIENT_ID and " + p->env_prefix +
                                      "_CLIENT_SECRET in the relay's environment and restart it."));
        return;
    }
    int64_t now = unix_now();
    std::string state = random_token(32);
    std::string verifier = p->oauth.pkce ? random_token(48) : std::string();   // RFC 7636 §4.1: 43..128 chars
    if (auto put = states_.put(state, PendingAuthorization{p->name, verifier, sha256_hex(*id), now + 600}, now); !put) {
        log_line(LogLevel::warn, "connect refused: shared state unavailable",
                 {{"request_id", ctx.id}, {"provider", p->name}, {"error", put.error().code}});
        send_error_for(req, res, store_error_status(put.error()), put.error());
        return;
    }
    oauth2::Client client{p->client_id, p->client_secret, redirect_uri(*p)};
    std::string url = oauth2::build_authorize_url(p->oauth, client, state, verifier);
    res.set_header("Set-Cookie", callers_.cookie("keyrelay_oauth_" + p->name, state, "Lax", "/callback/" + p->name, 600));
    res.set_header("Cache-Control", "no-store");
    res.set_redirect(url, 302);
}

// GET /callback/{provider}: RFC 6749 §4.1.2 / §4.1.3.
//
// The provider's consent page is on another site, so this request is a cross-site navigation and the browser
// withholds the SameSite=Strict session cookie (RFC 6265bis §5.5: "strict" cookies go only with same-site requests).
// What ties the callback to the person who pressed Connect instead:
// - the state cookie: SameSite=Lax (sent on a top-level GET navigation), HttpOnly, scoped to this callback path,
//   one-time, set by /connect in this browser; it must equal the query's state (RFC 6749 §10.12);
// - the server-side record of that state, made by /connect for the session that pressed Connect, which must still
//   be live. If the session cookie does arrive (a same-site setup), it must be that session.
// Nothing else about the session is weakened: it stays Strict for every other request.
void ConnectRoutes::callback(RequestContext& ctx, const httplib::Request& req, httplib::Response& res) {
    const ProviderConfig* p = provider_or_404(config_, ctx, req, res, true);
    if (p == nullptr) return;
    const std::string state_cookie_name = "keyrelay_oauth_" + p->name;
    // A refused callback: a log line saying why (never a token or a code), and a page saying what to do.
    auto refuse = [&](LogLevel level, const char* why, int status, const Error& e, nlohmann::json fields) {
        fields["request_id"] = ctx.id;
        fields["provider"] = p->name;
        log_line(level, why, fields);
        send_page(res, status, e);
    };
    auto unavailable = [&](const Error& e) {
        refuse(LogLevel::warn, "callback refused: shared state unavailable", store_error_status(e), e,
               {{"error", e.code}});
    };
    // Whatever happens next, the state cookie has done its job.
    res.set_header("Set-Cookie", callers_.cookie(state_cookie_name, "", "Lax", "/callback/" + p->name, 0));
    const std::string cookies = req.get_header_value("Cookie");
    auto browser_state = cookie_value(cookies, state_cookie_name);

    auto cb = oauth2::parse_callback(req.target);
    if (!cb) {
        auto st = query_param(req.target, "state");
        bool this_browser = st && browser_state && secure_equals(*st, *browser_state);
        // A denial also consumes the pending authorization, when it is this browser's.
        if (this_browser) (void)states_.take(*st, unix_now());   // best effort: it expires anyway
        log_line(LogLevel::info, "authorization not completed",
                 {{"request_id", ctx.id}, {"provider", p->name}, {"error", cb.error().code}});
        bool provider_said_no = cb.error().code == "oauth.access_denied" || cb.error().code == "oauth.callback_error";
        if (this_browser && provider_said_no) {
            // Back to the page, which explains it (docs/api.md): only the code travels, never the provider's
            // free-text error_description.
            res.set_header("Cache-Control", "no-store");
            res.set_redirect("/?connect_failed=" + p->name + "&code=" + cb.error().code, 302);
            return;
        }
        send_page(res, 400, cb.error());
        return;
    }
    if (!browser_state || !secure_equals(*browser_state, cb->state)) {
        return refuse(LogLevel::warn, "callback refused: state does not match this browser", 400,
                      make_error("oauth.state_mismatch",
                                 "This authorization was not started by this browser (the state does not match).",
                                 "The link may have been sent by someone else, or the connection was started in "
                                 "another tab or browser. Go back to the relay's page and press Connect again."),
                      {{"state_cookie", browser_state.has_value()}});
    }
    auto taken = states_.take(cb->state, unix_now());
    if (!taken) return unavailable(taken.error());
    const std::optional<PendingAuthorization>& pending = *taken;
    auto session_id = callers_.session_id(req);
    if (!pending || pending->provider != p->name ||
        (session_id && !secure_equals(pending->session_hash, sha256_hex(*session_id)))) {
        return refuse(LogLevel::warn, "callback refused: unknown, used or expired state", 400,
                      make_error("oauth.state_unknown",
                                 "This authorization was already completed, has expired, or was started by another "
                                 "session.",
                                 "Each authorization can be completed once, within 10 minutes. Go back to the "
                                 "relay's page and press Connect again."),
                      nlohmann::json::object());
    }
    auto starter = sessions_.find_by_hash(pending->session_hash, unix_now());
    if (!starter) return unavailable(starter.error());
    if (!starter->has_value()) {
        return refuse(LogLevel::warn, "callback refused: the session that pressed Connect has ended", 401,
                      make_error("auth.no_session",
                                 "The relay session that pressed Connect has ended (logged out or expired).",
                                 "Log in on the relay's page, then press Connect again."),
                      nlohmann::json::object());
    }

    oauth2::Client client{p->client_id, p->client_secret, redirect_uri(*p)};
    HttpRequest exchange = oauth2::build_code_exchange(p->oauth, client, cb->code, pending->pkce_verifier);
    // What the exchange sent (the client secret, the code, the verifier) never reaches this page, whatever the
    // token endpoint quotes back.
    Redactor sent;
    sent.add_request(exchange);
    auto answer = send_(p->name, exchange);
    if (!answer) {
        return refuse(LogLevel::warn, "code exchange failed: provider unreachable", 502, answer.error(),
                      {{"error", answer.error().code}});
    }
    int64_t now = unix_now();
    auto tokens = oauth2::parse_token_response(*answer, now, nullptr, p->oauth.account_from_scope);
    if (!tokens) {
        Error e = tokens.error();
        sent.redact_error(e);
        bool used_code = e.code == "oauth.invalid_grant";
        if (used_code) {
            e.hint = "The code was already used or has expired (codes are single-use and short-lived). Go back "
                     "to the relay's page and press Connect again. " + e.hint;
        }
        return refuse(LogLevel::warn, "code exchange refused", used_code ? 400 : 502, e, {{"error", e.code}});
    }
    Connection c;
    c.provider = p->name;
    c.tokens = *tokens;
    c.account = tokens->account;
    if (c.account.empty() && p->oauth.account_from_scope) c.account = oauth2::account_from_scope(cb->scope);
    c.connected_at = now;
    c.refresh_token_issued_at = now;
    for (PostConnect step : p->post_connect) {
        auto ok = run_step(step, *p, c);
        if (!ok) {
            return refuse(LogLevel::warn, "post-connect step failed", 502, ok.error(),
                          {{"step", post_connect_name(step)}, {"error", ok.error().code}});
        }
    }
    auto saved = tokens_.save(c);
    if (!saved) {
        return refuse(LogLevel::error, "could not store the new connection", store_error_status(saved.error()),
                      saved.error(), {{"error", saved.error().code}, {"detail", saved.error().message}});
    }
    log_line(LogLevel::info, "connected",
             {{"request_id", ctx.id}, {"provider", p->name}, {"account", saved->account},
              {"expires_at", saved->tokens.expires_at}});
    // The only place a callback redirects to: the relay's own page (no caller-supplied target, RFC 9700 §4.11).
    res.set_header("Cache-Control", "no-store");
    res.set_redirect("/?connected=" + p->name, 302);
}

Result<Unit> ConnectRoutes::run_step(PostConnect step, const ProviderConfig& p, Connection& c) {
    switch (step) {
        case PostConnect::jira_accessible_resources: return jira_accessible_resources(p, c);
    }
    return Unit{};
}

// Atlassian 3LO: the token is for api.atlassian.com; the site's cloud id comes from accessible-resources.
Result<Unit> ConnectRoutes::jira_accessible_resources(const ProviderConfig& p, Connection& c) {
    if (p.accessible_resources_url.empty()) {
        return make_error("config.bad_value", "The provider " + p.name + " has no accessible_resources_url.",
                          "Set providers." + p.name + ".accessible_resources_url in the config.");
    }
    HttpRequest request = jira::accessible_resources(p.accessible_resources_url, c.tokens.access_token);
    auto answer = send_(p.name, request);
    if (!answer) return answer.error();
    auto resources = jira::parse_accessible_resources(*answer);
    if (!resources) return resources.error();
    if (resources->empty()) {
        return make_error("jira.no_site", "The authorization gives access to no Jira site.",
                          "On the consent page, pick the Jira site to use (the app must be installed on it), "
                          "then connect again.");
    }
    const jira::Resource* chosen = &resources->front();
    if (auto site = process_env()("JIRA_SITE"); site && !site->empty()) {
        for (const auto& r : *resources) {
            if (r.url == *site || r.name == *site) chosen = &r;
        }
    }
    c.cloud_id = chosen->id;
    c.account = chosen->url.empty() ? chosen->name : chosen->url;
    return Unit{};
}

}  // namespace keyrelay::relay
