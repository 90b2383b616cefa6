#include "common.h"

#include <ctime>

namespace keyrelay::sandbox {

std::optional<std::string> Req::header(const char* name) const {
    if (!raw.has_header(name)) return std::nullopt;
    return raw.get_header_value(name);
}

Reply json_reply(int status, const json& body) {
    Reply r;
    r.status = status;
    r.body = body.dump();
    return r;
}

Reply text_reply(int status, std::string body, std::string content_type) {
    Reply r;
    r.status = status;
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return r;
}

Reply html_reply(int status, std::string html) { return text_reply(status, std::move(html), "text/html;charset=UTF-8"); }

Reply redirect_to(std::string location) {
    Reply r = html_reply(302, "");
    r.with("Location", std::move(location));
    r.with("Cache-Control", "no-store");
    return r;
}

std::string iso8601(int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::string add_query(const std::string& url, const Params& params) {
    std::string out = url;
    std::string q = form_encode(params);
    if (q.empty()) return out;
    out += (url.find('?') == std::string::npos) ? '?' : '&';
    return out + q;
}

std::optional<json> parse_json(std::string_view text) {
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

std::string jstr(const json& obj, const char* name) {
    if (!obj.is_object()) return {};
    auto it = obj.find(name);
    return (it != obj.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

std::string page(std::string_view title, std::string_view body_html) {
    std::string out;
    out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>";
    out += html_escape(title);
    out += "</title><style>"
           "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:3em 1em;color:#172b4d}"
           "main{max-width:28em;margin:auto;background:#fff;border-radius:8px;padding:2em;"
           "box-shadow:0 1px 3px rgba(0,0,0,.2)}"
           "h1{font-size:1.3em;margin-top:0}.who{color:#5e6c84;font-size:.9em}"
           "ul{padding-left:1.2em}.buttons{display:flex;gap:1em;margin-top:1.5em}"
           "button{font-size:1em;padding:.6em 1.4em;border-radius:4px;border:1px solid #c1c7d0;cursor:pointer}"
           "button.allow{background:#0052cc;color:#fff;border-color:#0052cc}"
           ".error{color:#bf2600}.sandbox{font-size:.8em;color:#97a0af;margin-top:2em}"
           "</style></head><body><main>";
    out += body_html;
    out += "<p class=\"sandbox\">keyrelay-sandbox: a fake provider for tests and demos. No real account is "
           "involved.</p></main></body></html>\n";
    return out;
}

}  // namespace keyrelay::sandbox

namespace keyrelay::sandbox {

Reply error_page(int status, std::string_view title, std::string_view message) {
    std::string body = "<h1>" + html_escape(title) + "</h1><p class=\"error\" id=\"error\">" + html_escape(message) +
                       "</p>";
    return html_reply(status, page(title, body));
}

std::string hidden_fields(const Params& params) {
    std::string out;
    for (const auto& [k, v] : params) {
        out += "<input type=\"hidden\" name=\"" + html_escape(k) + "\" value=\"" + html_escape(v) + "\">";
    }
    return out;
}

std::string consent_form(std::string_view action, const Params& params, std::string_view allow_label,
                         std::string_view deny_label) {
    return "<form method=\"post\" action=\"" + html_escape(action) + "\">" + hidden_fields(params) +
           "<div class=\"buttons\"><button type=\"submit\" name=\"decision\" value=\"allow\" class=\"allow\" "
           "id=\"allow\">" + html_escape(allow_label) + "</button><button type=\"submit\" name=\"decision\" "
           "value=\"deny\" id=\"deny\">" + html_escape(deny_label) + "</button></div></form>";
}

Reply oauth_error(int status, const char* error, const std::string& description) {
    Reply r = json_reply(status, json{{"error", error}, {"error_description", description}});
    r.with("Cache-Control", "no-store").with("Pragma", "no-cache");
    return r;
}

std::optional<Reply> deny_cross_origin(const Req& req) {
    if (req.method == "OPTIONS" || req.header("Origin")) {
        return text_reply(403, "CORS origin denied");
    }
    return std::nullopt;
}

std::optional<Reply> check_client_redirect(State& state, Provider provider, const std::string& client_id,
                                           const std::string& redirect_uri) {
    const App* app = state.app(client_id);
    if (client_id.empty() || !app || app->provider != provider) {
        return error_page(400, "Invalid client_id",
                          "The application asking for access is not known (client_id \"" + client_id + "\").");
    }
    bool registered = false;
    for (const auto& r : app->redirect_uris) registered = registered || r == redirect_uri;
    if (redirect_uri.empty() || !registered) {
        return error_page(400, "Invalid redirect_uri",
                          "Invalid redirect_uri: \"" + redirect_uri +
                              "\" is not one of the redirect URIs registered for this application. It must match "
                              "a registered URI exactly (scheme, host, port, path).");
    }
    return std::nullopt;
}

std::string issue_code(State& state, Provider provider, const std::string& client_id,
                       const std::string& redirect_uri, const std::string& scope) {
    std::string code = (provider == Provider::keap ? "sbx_keap_code_" : "sbx_jira_code_") +
                       random_token(provider == Provider::keap ? 9 : 24);
    AuthCode c;
    c.provider = provider;
    c.client_id = client_id;
    c.redirect_uri = redirect_uri;
    c.scope = scope;
    c.expires_at = state.now() + kCodeLifetime;
    state.codes[code] = c;
    return code;
}

}  // namespace keyrelay::sandbox
