// Diagnostics: what came back, why, and what to do. Every branch here is a failure someone met for real; the
// shapes are in docs/reference/keap.md and docs/reference/jira.md (and the fixtures under tests/fixtures/diagnose/).
#include "keyrelay/diagnose.h"
#include "keyrelay/text.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/oauth2.h"
#include "keyrelay/xmlrpc.h"

#include "explain.h"
#include "json_util.h"

namespace keyrelay {
namespace explain {
namespace {

// ---- looking at bodies -----------------------------------------------------------------------------------------

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
           c == '-' || c == '.';
}

// The name of the first element of a markup document, skipping the XML declaration, comments and a DOCTYPE;
// "" when the body does not start like markup.
std::string root_element(std::string_view body) {
    std::string_view s = trim_body(body);
    for (int guard = 0; guard < 64; ++guard) {
        if (s.empty() || s.front() != '<') return {};
        if (s.substr(0, 2) == "<?") {
            size_t end = s.find("?>");
            if (end == std::string_view::npos) return {};
            s = trim_body(s.substr(end + 2));
        } else if (s.substr(0, 4) == "<!--") {
            size_t end = s.find("-->");
            if (end == std::string_view::npos) return {};
            s = trim_body(s.substr(end + 3));
        } else if (s.substr(0, 2) == "<!") {
            // <!DOCTYPE x [ internal subset ]>
            size_t bracket = s.find('[');
            size_t gt = s.find('>');
            if (gt == std::string_view::npos) return {};
            if (bracket != std::string_view::npos && bracket < gt) {
                size_t end = s.find("]>", bracket);
                if (end == std::string_view::npos) return {};
                gt = end + 1;
            }
            s = trim_body(s.substr(gt + 1));
        } else {
            size_t i = 1;
            while (i < s.size() && is_name_char(s[i])) ++i;
            return std::string(s.substr(1, i - 1));
        }
    }
    return {};
}

bool looks_like_html(std::string_view body, std::string_view media) {
    std::string_view s = trim_body(body);
    if (s.empty() || s.front() != '<') return false;
    if (istarts_with(s, "<!doctype html")) return true;
    if (media == "text/html" || media == "application/xhtml+xml") {
        return !iequals(root_element(s), "methodResponse");
    }
    std::string root = to_lower(root_element(s));
    static const char* html_roots[] = {"html", "head", "body", "title", "h1", "h2", "h3", "p", "div", "center", "pre"};
    for (const char* r : html_roots) {
        if (root == r) return true;
    }
    return false;
}

bool is_xml_media(std::string_view media) {
    return media == "text/xml" || media == "application/xml" ||
           (media.size() > 4 && media.substr(media.size() - 4) == "+xml");
}

bool is_json_media(std::string_view media) {
    return media == "application/json" || (media.size() > 5 && media.substr(media.size() - 5) == "+json");
}

// The text of the first <tag>...</tag> (case-insensitive), entity-decoded and whitespace-collapsed.
std::string decode_entities_collapse(std::string_view raw);

std::string element_text(std::string_view html, std::string_view tag) {
    std::string open = "<" + std::string(tag);
    size_t from = 0;
    while (true) {
        size_t at = ifind(html, open, from);
        if (at == std::string_view::npos) return {};
        size_t after = at + open.size();
        if (after < html.size() && (html[after] == '>' || is_ascii_space(html[after]))) {
            size_t gt = html.find('>', after);
            if (gt == std::string_view::npos) return {};
            size_t close = ifind(html, "</" + std::string(tag), gt + 1);
            if (close == std::string_view::npos) return {};
            return decode_entities_collapse(html.substr(gt + 1, close - gt - 1));
        }
        from = after;
    }
}

// HTML character references: the named ones error pages use, and numeric ones (&#39; &#x27;).
std::string decode_entities_collapse(std::string_view raw) {
    std::string decoded;
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] != '&') {
            decoded += raw[i];
            continue;
        }
        size_t semi = raw.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            decoded += '&';
            continue;
        }
        std::string_view name = raw.substr(i + 1, semi - i - 1);
        std::optional<uint32_t> cp;
        if (name == "amp") cp = '&';
        else if (name == "lt") cp = '<';
        else if (name == "gt") cp = '>';
        else if (name == "quot") cp = '"';
        else if (name == "apos") cp = '\'';
        else if (name == "nbsp") cp = ' ';
        else if (name.size() >= 2 && name[0] == '#') {
            bool hex = name[1] == 'x' || name[1] == 'X';
            std::string_view digits = name.substr(hex ? 2 : 1);
            uint32_t v = 0;
            bool good = !digits.empty() && digits.size() <= 7;
            for (char c : digits) {
                if (!good) break;
                uint32_t d = 0;
                if (c >= '0' && c <= '9') d = uint32_t(c - '0');
                else if (hex && c >= 'a' && c <= 'f') d = uint32_t(c - 'a' + 10);
                else if (hex && c >= 'A' && c <= 'F') d = uint32_t(c - 'A' + 10);
                else good = false;
                v = v * (hex ? 16 : 10) + d;
            }
            if (good && v > 0 && v < 0x110000 && !(v >= 0xD800 && v <= 0xDFFF)) cp = v;
        }
        if (!cp) {
            decoded += '&';
            continue;
        }
        utf8_append(decoded, *cp);
        i = semi;
    }
    // Collapse whitespace runs to one space and trim.
    std::string out;
    bool space = false;
    for (char c : decoded) {
        if (is_ascii_space(c)) {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

// The most telling sentence a provider put in an error body: Keap v1 {"message"}, Keap v2 {"code","message",
// "status"}, Jira {"errorMessages":[..],"errors":{..}}, OAuth {"error","error_description"}, gateway faults.
std::string provider_message(const json_util::json& j) {
    using namespace json_util;
    if (const json* fault = get_object(j, "fault")) {
        if (auto s = get_string(*fault, "faultstring")) return *s;
    }
    std::string out;
    if (const json* messages = get_array(j, "errorMessages")) {
        for (const auto& m : *messages) {
            if (!m.is_string()) continue;
            if (!out.empty()) out += "; ";
            out += m.get_ref<const std::string&>();
        }
    }
    if (const json* errors = get_object(j, "errors")) {
        for (auto it = errors->begin(); it != errors->end(); ++it) {
            if (!it.value().is_string()) continue;
            if (!out.empty()) out += "; ";
            out += it.key() + ": " + it.value().get_ref<const std::string&>();
        }
    }
    if (!out.empty()) return out;
    if (auto m = get_string(j, "message")) return *m;
    if (auto d = get_string(j, "error_description")) return *d;
    if (auto e = get_string(j, "error")) return *e;
    if (auto e = get_string(j, "detail")) return *e;
    return {};
}

struct Body {
    std::string_view text;    // trimmed
    std::string media;        // content type
    json_util::json json;     // discarded unless the body is JSON
    bool html = false;
    std::optional<int64_t> now;   // for rate-limit times when the answer has no Date header
    bool is_json() const { return !json.is_discarded(); }
};

// What the body is, in a few words, for a summary.
std::string describe_body(const Body& b) {
    if (b.text.empty()) return "an empty body";
    if (b.html) {
        std::string title = html_title(b.text);
        if (title.empty()) title = element_text(b.text, "h1");
        return title.empty() ? std::string("an HTML page") : "an HTML page titled \"" + one_line(title, 120) + "\"";
    }
    if (b.is_json()) {
        std::string m = provider_message(b.json);
        return m.empty() ? "JSON " + one_line(b.text, 120) : "\"" + one_line(m) + "\"";
    }
    return "\"" + one_line(b.text, 120) + "\"";
}

std::string content_type_note(const Body& b, Expect expect) {
    if (b.media.empty()) return {};
    bool fits = expect == Expect::xmlrpc ? is_xml_media(b.media) : is_json_media(b.media);
    if (fits) return {};
    return std::string(" (Content-Type: ") + b.media + ", where " +
           (expect == Expect::xmlrpc ? "text/xml" : "application/json") + " was expected)";
}

const char* expected_name(Expect e) {
    switch (e) {
        case Expect::token: return "a token response (JSON)";
        case Expect::xmlrpc: return "an XML-RPC methodResponse";
        case Expect::json: break;
    }
    return "JSON";
}

// Summaries and hints quote the server's headers and bodies (Content-Type, errorcode, error_description, ...) and
// are shown and logged as text: a control byte from the server (NUL, ESC, CR, LF) becomes a space.
std::string printable(std::string s) {
    for (char& c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
    }
    return s;
}

Diagnosis make(std::string code, std::string summary, std::string hint) {
    Diagnosis d;
    d.code = std::move(code);
    d.summary = printable(std::move(summary));
    d.hint = printable(std::move(hint));
    return d;
}

// "Developer Inactive" is Mashery's answer for an inactive or unknown client key; Keap left Mashery for Apigee in
// January 2020 (docs/reference/keap.md), so it comes from an old code path, not necessarily a legacy key.
constexpr const char* kLegacyKeyHint =
    "\"Developer Inactive\" comes from Mashery, Keap's API gateway until January 2020: the client key sent is "
    "inactive or unknown, so this code uses a very old path (an old host, library or key; legacy API keys were sunset "
    "from 31 Oct 2024). Connect with OAuth (keyrelay runs the flow and keeps the tokens fresh), or create a Personal "
    "Access Token / Service Account Key in Keap and send it in the X-Keap-API-Key header to "
    "https://api.infusionsoft.com/crm/....";

constexpr const char* kRelayHint =
    " keyrelay's proxy does this for you: call /proxy/<provider>/... on the relay.";

// ---- the classifications ---------------------------------------------------------------------------------------

Diagnosis rate_limited(const HttpResponse& r, std::optional<int64_t> now, std::string what, std::string cause = {}) {
    RateLimit rl = rate_limit(r, now);
    Diagnosis d = make("rate_limited", std::move(what),
                       cause + rl.when + " Spread the calls out (keyrelay's proxy passes the rate-limit headers through so "
                                 "you can pace yourself) and cache lookups you repeat.");
    d.retry_after_seconds = rl.retry_after_seconds;
    return d;
}

Diagnosis html_page(const HttpResponse& r, const Body& b, Expect expect) {
    std::string summary = explain::status_line(r.status) + " with " + describe_body(b) + " where " +
                          expected_name(expect) + " was expected" + content_type_note(b, expect) + ".";
    std::string hint;
    if (r.status == 401 || r.status == 403) {
        hint = "An HTML page with " + std::to_string(r.status) +
               " comes from a login wall, a firewall or a proxy, not from the API: the request most likely went to "
               "a website instead of the API host, or the credentials were refused before the API saw them. Check "
               "the URL and that the token or key is sent.";
    } else if (r.status == 404) {
        hint = "The URL is wrong: a web server answered \"not found\" for an API path. Check the base URL (Keap: "
               "https://api.infusionsoft.com/crm/rest/v1 or .../crm/xmlrpc/v1; Jira Cloud: "
               "https://api.atlassian.com/ex/jira/<cloud id>/rest/api/3) and the path's spelling and version.";
    } else if (r.status >= 500) {
        hint = "A proxy or the provider's gateway failed and answered with its own error page: the API itself may "
               "be down or slow. Retry with exponential backoff; if it persists, check the provider's status page.";
    } else {
        hint = "A web page answered instead of the API: the URL points at a website or a login page (e.g. the "
               "Keap app's own host instead of api.infusionsoft.com, or a followed redirect to a sign-in page). Use "
               "the API base URL.";
    }
    if (expect == Expect::xmlrpc) {
        hint += " This is what XML-RPC libraries report as \"root element not methodResponse\".";
    }
    return make("html_page", summary, hint);
}

Diagnosis gateway_fault(const HttpResponse& r, std::optional<int64_t> now, std::string faultstring,
                        std::string errorcode) {
    std::string summary = explain::status_line(r.status) + " with an API-gateway fault \"" + one_line(faultstring) +
                          "\"" + (errorcode.empty() ? std::string() : " (errorcode " + errorcode + ")") + ".";
    std::string code = to_lower(errorcode + " " + faultstring);
    if (code.find("ratelimit") != std::string::npos || code.find("quotaviolation") != std::string::npos ||
        code.find("spikearrest") != std::string::npos || code.find("quota") != std::string::npos) {
        RateLimit rl = rate_limit(r, now);
        Diagnosis d = make("gateway_fault", summary,
                           "The gateway's rate limit stopped the call before it reached the API. " + rl.when);
        d.retry_after_seconds = rl.retry_after_seconds;
        return d;
    }
    if (code.find("token") != std::string::npos || code.find("keymanagement") != std::string::npos ||
        code.find("apikey") != std::string::npos || code.find("oauth") != std::string::npos) {
        return make("gateway_fault", summary,
                    "The gateway refused the credentials: the access token expired, was revoked or is not a token "
                    "of this API (or the API key is wrong). keyrelay refreshes OAuth tokens before they expire; if "
                    "this persists, reconnect the account. With a Personal Access Token or Service Account Key, "
                    "check the X-Keap-API-Key header.");
    }
    if (code.find("serviceunavailable") != std::string::npos || code.find("timeout") != std::string::npos ||
        code.find("targetserver") != std::string::npos || code.find("unresolved") != std::string::npos) {
        return make("gateway_fault", summary,
                    "The gateway could not reach the API behind it. Retry with exponential backoff; if it persists, "
                    "check the provider's status page.");
    }
    if (code.find("notfound") != std::string::npos || code.find("not found") != std::string::npos ||
        code.find("classification") != std::string::npos) {
        return make("gateway_fault", summary,
                    "The gateway has no route for this path: the URL or API version is wrong or retired. Check the "
                    "base URL (https://api.infusionsoft.com/crm/rest/v1, .../v2 or .../crm/xmlrpc/v1).");
    }
    return make("gateway_fault", summary,
                "The API gateway in front of the provider rejected the request before the API ran; its faultstring "
                "says why. This JSON is also what XML-RPC clients choke on as \"root element not methodResponse\".");
}

Diagnosis status_based(const HttpResponse& r, const Body& b, Expect expect) {
    std::string what = describe_body(b);
    std::string summary = explain::status_line(r.status) + " with " + what;
    if (expect == Expect::xmlrpc && !b.text.empty()) {
        summary += b.is_json() ? " (JSON, not XML-RPC)" : "";
    }
    summary += ".";
    std::string all = std::string(b.text);
    if (r.status == 401) {
        return make("unauthorized", summary,
                    "The API did not accept the credentials: the access token expired, was revoked or belongs to "
                    "another app, or the API key is wrong. keyrelay refreshes OAuth tokens for you; if this "
                    "persists, reconnect. With a key, check the header: Keap takes X-Keap-API-Key, Jira Cloud takes "
                    "Basic email:api_token.");
    }
    if (r.status == 403) {
        if (icontains(all, "XSRF")) {
            return make("forbidden", summary,
                        "Jira's XSRF check refused a write that carried a browser User-Agent or cookies. Call from a "
                        "server without the browser's User-Agent and cookies (keyrelay's proxy drops them).");
        }
        return make("forbidden", summary,
                    "The credentials are valid but not allowed to do this: the user or key lacks the permission or "
                    "the OAuth scope (Keap: the user's role; Jira: e.g. 'Browse users and groups', scope "
                    "read:jira-user). Ask an admin to grant it, then reconnect so the new scope applies.");
    }
    if (r.status == 404) {
        return make("not_found", summary,
                    "No such path or record: check the base URL, the API version and the id. Some Jira endpoints "
                    "also answer 404 when the credentials cannot see the resource.");
    }
    if (r.status == 400 || r.status == 422) {
        return make("bad_request", summary,
                    "The API refused the request as invalid; its message names the field or parameter. Check the "
                    "parameter names and the body's JSON shape against the API reference.");
    }
    if (r.status >= 500) {
        return make("server_error", summary,
                    "The provider failed on its side. Retry with exponential backoff; if it persists, check the "
                    "provider's status page.");
    }
    return make("http_error", summary,
                r.status >= 300 && r.status < 400
                    ? "A redirect instead of an answer: the URL is not the API's (http instead of https, a missing "
                      "path segment, or a login page). Use the exact API base URL."
                    : "The API answered with a status this call does not expect; the body says what it objects to.");
}

std::string control_char_note(std::string_view body) {
    int line = 1;
    int column = 1;
    for (char ch : body) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            static const char* hex = "0123456789ABCDEF";
            std::string code = "0x";
            code += hex[c >> 4];
            code += hex[c & 15];
            return " It contains the control character " + code + " at line " + std::to_string(line) +
                   ", column " + std::to_string(column) + ", which XML 1.0 forbids.";
        }
        if (ch == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return {};
}

bool looks_truncated_xml(std::string_view body) {
    std::string_view s = trim_body(body);
    std::string root = root_element(s);
    if (root.empty()) return false;
    if (s.size() >= 2 && s.substr(s.size() - 2) == "/>") return false;
    std::string close = "</" + root;
    size_t at = s.rfind(close);
    if (at == std::string_view::npos) return true;
    size_t i = at + close.size();
    while (i < s.size() && is_ascii_space(s[i])) ++i;
    return i >= s.size() || s[i] != '>';
}

std::string root_cause(std::string_view root) {
    std::string r = to_lower(root);
    if (r == "methodcall") {
        return "a methodCall is a request, not an answer: the URL points at something that echoes or forwards "
               "requests, not at the XML-RPC endpoint";
    }
    if (r == "fault" || r == "error" || r == "errors") {
        return "an error document from a gateway or proxy in front of the API: the request was refused before "
               "XML-RPC ran (often a wrong URL, bad credentials or a rate limit)";
    }
    if (r.find("envelope") != std::string::npos) {
        return "a SOAP envelope: the URL points at a SOAP service, not at the XML-RPC endpoint";
    }
    return "another kind of XML document: the URL most likely points at a different service or a proxy's error "
           "document";
}

Diagnosis diagnose_xmlrpc(const HttpResponse& r, const Body& b) {
    const Expect ex = Expect::xmlrpc;
    if (b.text.empty()) {
        if (r.status >= 200 && r.status < 300) {
            return make("empty_body", explain::status_line(r.status) + " with an empty body where an XML-RPC "
                                      "methodResponse was expected.",
                        "Something between you and the API swallowed the answer (a proxy or a timeout), or the "
                        "request never reached the XML-RPC endpoint as a POST with Content-Type text/xml. Check the "
                        "URL (https://api.infusionsoft.com/crm/xmlrpc/v1) and retry once.");
        }
        return status_based(r, b, ex);
    }
    if (b.is_json()) {
        if (r.status < 200 || r.status >= 300) return status_based(r, b, ex);
        return make("not_method_response",
                    explain::status_line(r.status) + " with JSON instead of an XML-RPC methodResponse: " +
                        one_line(b.text, 160) + content_type_note(b, ex),
                    "JSON is what REST APIs and API gateways answer: the URL is a REST path rather than "
                    "/crm/xmlrpc/v1, or a gateway answered before XML-RPC ran. Point the XML-RPC client at "
                    "https://api.infusionsoft.com/crm/xmlrpc/v1.");
    }
    if (b.text.front() != '<') {
        if (r.status < 200 || r.status >= 300) return status_based(r, b, ex);
        return make("wrong_content_type",
                    explain::status_line(r.status) + " with text that is not XML: \"" + one_line(b.text, 120) +
                        "\"" + content_type_note(b, ex) + ".",
                    "The endpoint is not an XML-RPC server. Point the client at "
                    "https://api.infusionsoft.com/crm/xmlrpc/v1 and send POST with Content-Type text/xml.");
    }
    // XML-RPC has no DTD: a DOCTYPE or ENTITY declaration is refused before anything else (XXE, "billion laughs").
    if (ifind(b.text, "<!DOCTYPE") != std::string_view::npos || ifind(b.text, "<!ENTITY") != std::string_view::npos) {
        return make("doctype_refused",
                    "The answer declares a DOCTYPE or entities, which keyrelay never processes (no XXE, no entity "
                    "expansion)" + content_type_note(b, ex) + ".",
                    "A real XML-RPC answer never carries a DOCTYPE: something other than the API answered (an "
                    "error page, or a hostile server). Check the URL.");
    }
    auto decoded = xmlrpc::decode_response(r.body);
    if (decoded.ok()) {
        const xmlrpc::Response& resp = decoded.value();
        if (resp.is_fault) {
            return make("xmlrpc_fault",
                        "XML-RPC fault " + std::to_string(resp.fault.code) + ": \"" + one_line(resp.fault.string) +
                            "\".",
                        xmlrpc_fault_hint(resp.fault.string));
        }
        if (r.status < 200 || r.status >= 300) return status_based(r, b, ex);
        return make("ok", explain::status_line(r.status) + " with an XML-RPC methodResponse.", "Nothing to do.");
    }
    const Error& e = decoded.error();
    std::string note = content_type_note(b, ex);
    if (e.code == "xmlrpc.doctype_refused") {
        return make("doctype_refused",
                    "The answer declares a DOCTYPE or entities, which keyrelay never processes (no XXE, no entity "
                    "expansion)" + note + ".",
                    "A real XML-RPC answer never carries a DOCTYPE: something other than the API answered (an "
                    "error page, or a hostile server). Check the URL.");
    }
    if (e.code == "xmlrpc.not_method_response") {
        std::string root = root_element(b.text);
        std::string r_lower = to_lower(root);
        if (r_lower == "fault") {
            std::string fs = element_text(b.text, "faultstring");
            std::string ec = element_text(b.text, "errorcode");
            if (!fs.empty()) return gateway_fault(r, b.now, fs, ec);
        }
        if (root.empty() || root == "methodResponse") {
            return make("not_method_response", e.message + note + ".", e.hint);
        }
        return make("not_method_response",
                    "The root element is <" + root + ">, not <methodResponse>" + note + ": " + root_cause(root) + ".",
                    "Check the endpoint URL (Keap: https://api.infusionsoft.com/crm/xmlrpc/v1) and read the "
                    "document's text: it usually names the problem.");
    }
    if (e.code == "xmlrpc.malformed") {
        if (looks_truncated_xml(b.text)) {
            std::string tail = std::string(b.text.substr(b.text.size() > 40 ? b.text.size() - 40 : 0));
            return make("truncated_xml",
                        "The XML-RPC answer stops in the middle (" + std::to_string(r.body.size()) +
                            " bytes, ending \"" + one_line(tail, 60) + "\").",
                        "The connection was cut before the answer ended: a proxy timeout or size limit, or the "
                        "server failed while writing. Retry; for large DataService.query or findByField pages, ask "
                        "for fewer rows (limit) or fewer fields.");
        }
        return make("malformed_xml",
                    "The XML-RPC answer is not well-formed XML: " + e.message + "." + control_char_note(r.body) +
                        note,
                    "Usually a character XML forbids (a control character pasted into a contact field) that the "
                    "server did not escape; the line and column point at it. Find that record and clean the field; "
                    "until then, leave that field out of the returned fields.");
    }
    if (e.code == "xmlrpc.empty") {
        return make("empty_body", explain::status_line(r.status) + " with no XML in the body.",
                    "Something swallowed the answer; check the URL and retry once.");
    }
    if (e.code == "xmlrpc.too_large" || e.code == "xmlrpc.too_deep") {
        return make(e.code.substr(7), e.message,
                    "keyrelay limits size and nesting to stay safe on hostile input. Ask for fewer rows (limit) or "
                    "fewer fields.");
    }
    return make("invalid_xmlrpc", "A methodResponse that breaks the XML-RPC format: " + e.message + note,
                e.hint.empty() ? std::string("The server does not speak standard XML-RPC; check the URL.") : e.hint);
}

Diagnosis diagnose_token(const HttpResponse& r, const Body& b) {
    const bool success = r.status >= 200 && r.status < 300;
    if (b.is_json() && json_util::get_string(b.json, "error")) {
        Error e = oauth2::parse_token_error(r);
        return make("oauth_error", e.message, e.hint);
    }
    if (success) {
        if (b.text.empty()) {
            return make("empty_body", explain::status_line(r.status) + " with an empty body where a token response "
                                      "was expected.",
                        "Check the token URL (Keap: https://api.infusionsoft.com/token; Atlassian: "
                        "https://auth.atlassian.com/oauth/token) and that the request is a POST.");
        }
        if (!b.is_json()) {
            return make(b.media.empty() || is_json_media(b.media) ? "not_json" : "wrong_content_type",
                        explain::status_line(r.status) + " with a body that is not JSON: \"" + one_line(b.text, 120) +
                            "\"" + content_type_note(b, Expect::token) + ".",
                        "A token endpoint answers JSON (RFC 6749 §5.1). Check the token URL; a form-encoded answer "
                        "means the endpoint is not the provider's OAuth 2.0 token endpoint.");
        }
        if (json_util::get_string(b.json, "access_token")) {
            return make("ok", explain::status_line(r.status) + " with a token response.", "Nothing to do.");
        }
        return make("unexpected_shape",
                    explain::status_line(r.status) + " with JSON that has no access_token: " + one_line(b.text, 120),
                    "A successful token response carries access_token (RFC 6749 §5.1): the URL is another "
                    "endpoint. Check the token URL.");
    }
    return status_based(r, b, Expect::token);
}

Diagnosis diagnose_json(const HttpResponse& r, const Body& b) {
    const bool success = r.status >= 200 && r.status < 300;
    if (!success) return status_based(r, b, Expect::json);
    if (b.text.empty()) {
        if (r.status == 204) return make("ok", "HTTP 204 No Content.", "Nothing to do.");
        return make("empty_body", explain::status_line(r.status) + " with an empty body where JSON was expected.",
                    "Something between you and the API swallowed the answer (a proxy or a timeout), or the URL is "
                    "not the API's. Check the URL and retry once.");
    }
    if (b.is_json()) return make("ok", explain::status_line(r.status) + " with JSON.", "Nothing to do.");
    if (!b.media.empty() && !is_json_media(b.media)) {
        return make("wrong_content_type",
                    explain::status_line(r.status) + " with " + b.media + " where JSON was expected: \"" +
                        one_line(b.text, 120) + "\".",
                    "Ask for JSON with the header Accept: application/json (keyrelay's request builders send it); "
                    "if the answer is still not JSON, the URL is not the JSON API.");
    }
    return make("not_json",
                explain::status_line(r.status) + " with a body that is not valid JSON: \"" + one_line(b.text, 120) +
                    "\".",
                "The body is cut off or broken: a proxy or timeout may have cut the connection. Retry once; if it "
                "persists, check what is between you and the API.");
}

}  // namespace

// ---- shared with keap.cpp and jira.cpp -------------------------------------------------------------------------

std::string status_line(int status) {
    const char* reason = "";
    switch (status) {
        case 200: reason = " OK"; break;
        case 201: reason = " Created"; break;
        case 204: reason = " No Content"; break;
        case 301: reason = " Moved Permanently"; break;
        case 302: reason = " Found"; break;
        case 400: reason = " Bad Request"; break;
        case 401: reason = " Unauthorized"; break;
        case 403: reason = " Forbidden"; break;
        case 404: reason = " Not Found"; break;
        case 405: reason = " Method Not Allowed"; break;
        case 409: reason = " Conflict"; break;
        case 422: reason = " Unprocessable Content"; break;
        case 429: reason = " Too Many Requests"; break;
        case 500: reason = " Internal Server Error"; break;
        case 502: reason = " Bad Gateway"; break;
        case 503: reason = " Service Unavailable"; break;
        case 504: reason = " Gateway Timeout"; break;
        default: break;
    }
    return "HTTP " + std::to_string(status) + reason;
}

std::string media_type(const HttpResponse& response) {
    auto ct = response.headers.get("Content-Type");
    if (!ct) return {};
    std::string_view v = *ct;
    size_t semi = v.find(';');
    if (semi != std::string_view::npos) v = v.substr(0, semi);
    return to_lower(trim_body(v));
}

RateLimit rate_limit(const HttpResponse& r, std::optional<int64_t> now) {
    RateLimitState state = read_rate_limit(r.headers, now);
    RateLimit out;
    if (state.wait_ms) out.retry_after_seconds = int(std::min<int64_t>((*state.wait_ms + 999) / 1000,
                                                                      std::numeric_limits<int>::max()));
    out.when = explain_rate_limit(state);
    return out;
}

std::string xmlrpc_fault_hint(std::string_view fault) {
    if (icontains(fault, "[InvalidConfig]")) {
        return "The legacy API key or the app name is dead or wrong: since 31 Oct 2024 Keap has sunset legacy API "
               "keys. Use OAuth through keyrelay (it keeps the tokens fresh) or a Personal Access Token / Service "
               "Account Key in the X-Keap-API-Key header, against https://api.infusionsoft.com/crm/xmlrpc/v1.";
    }
    if (icontains(fault, "[FailedLoginAttempt]")) {
        return "The key is invalid: Keap did not recognise the API key (or legacy key) sent. Create a new Personal "
               "Access Token or Service Account Key and send it in X-Keap-API-Key, or connect with OAuth through "
               "keyrelay.";
    }
    if (icontains(fault, "[InvalidKey]")) {
        return "Keap rejected the key parameter: legacy encrypted keys no longer work. With OAuth or X-Keap-API-Key "
               "the first parameter is only a placeholder; check that the header carries a valid token or key.";
    }
    if (icontains(fault, "No such handler")) {
        std::string_view name = fault.substr(ifind(fault, "No such handler") + 15);
        while (!name.empty() && (name.front() == ':' || is_ascii_space(name.front()))) name.remove_prefix(1);
        std::string which = name.empty() ? std::string() : " (\"" + one_line(name, 80) + "\")";
        return "Keap has no method by that name" + which +
               ": XML-RPC method names are case-sensitive, e.g. ContactService.update, not ContactService.Update; "
               "DataService.findByField, not DataService.FindByField. Check the spelling against Keap's XML-RPC "
               "reference.";
    }
    if (icontains(fault, "No method matching arguments")) {
        return "The method exists but not with these parameter types or this count: ids are <int>, not <string>; "
               "the first parameter is the key (a placeholder with OAuth); DataService.getUserInfo takes no "
               "parameter at all.";
    }
    if (icontains(fault, "Failed to parse XML-RPC request") || icontains(fault, "Premature end of file")) {
        return "Keap could not read the request: the body was empty, cut off or not XML. Send the whole methodCall "
               "as the POST body with Content-Type text/xml (keyrelay's builders do).";
    }
    if (icontains(fault, "[NoTableAccess]") || icontains(fault, "[NoFieldAccess]")) {
        return "The table or field is not available to the API, or its name is misspelled: XML-RPC table and field "
               "names are PascalCase (Contact, FirstName, LastName, Email).";
    }
    if (icontains(fault, "[RecordNotFound]")) {
        return "No record has that id: look it up first (DataService.findByField on Email).";
    }
    if (icontains(fault, "[InvalidParameter]") || icontains(fault, "[DatabaseError]")) {
        return "Keap refused a parameter value: check field names (PascalCase), types (ints for ids, "
               "dateTime.iso8601 for dates) and that the fields exist on the table.";
    }
    if (icontains(fault, "[TooManyRequests]") || icontains(fault, "rate limit") || icontains(fault, "quota")) {
        return "Rate limited: back off exponentially and retry later.";
    }
    return "Keap's XML-RPC API refused the call; its faultString says why. XML-RPC is deprecated at Keap: for new "
           "code prefer the REST API (keyrelay's keap::find_contacts_by_email and friends).";
}

}  // namespace explain

// ---- public API ------------------------------------------------------------------------------------------------

Expect expect_from_string(std::string_view s) {
    std::string v = to_lower(trim(s));
    if (v == "token") return Expect::token;
    if (v == "xmlrpc" || v == "xml-rpc") return Expect::xmlrpc;
    return Expect::json;
}

std::string html_title(std::string_view html) { return explain::element_text(html, "title"); }

namespace {

Diagnosis classify(const HttpResponse& response, Expect expect, std::optional<int64_t> now) {
    using namespace explain;
    Body b;
    b.now = now;
    b.text = trim_body(response.body);
    b.media = media_type(response);
    b.html = looks_like_html(b.text, b.media);
    b.json = json_util::json::value_t::discarded;
    if (!b.text.empty() && (b.text.front() == '{' || b.text.front() == '[')) b.json = json_util::parse(b.text);
    const int status = response.status;

    // HTTP 596 is not a registered status: Mashery, Keap's gateway before 2020, used it when no service matched the
    // path (docs/reference/keap.md).
    if (status == 596) {
        return make("http_596", "HTTP 596 from Keap's API gateway: " + describe_body(b) + ".",
                    "596 means the gateway could not map the request to a service: the endpoint is wrong or retired "
                    "(e.g. the legacy https://APPNAME.infusionsoft.com/api/xmlrpc, or a misspelled path or version). "
                    "Use https://api.infusionsoft.com/crm/rest/v1 (or v2), or .../crm/xmlrpc/v1, with OAuth or a "
                    "Personal Access Token.");
    }
    // Keap's old gateway answered with bare HTML pages: <h1>Developer Inactive</h1>, <h1>Developer Over Qps</h1>.
    if (b.html && icontains(b.text, "Developer Inactive")) {
        return make("legacy_key_dead",
                    status_line(status) + " with Keap's old gateway page \"Developer Inactive\" where " +
                        expected_name(expect) + " was expected.",
                    kLegacyKeyHint);
    }
    if (b.html && icontains(b.text, "Developer Over Qps")) {
        return rate_limited(response, now,
                            status_line(status) + " with Keap's old gateway page \"Developer Over Qps\": too many "
                                                  "calls per second.",
                            "The gateway counts calls per second (queries per second, QPS): slow down to a few calls "
                            "a second (a Personal Access Token or Service Account Key allows 10). ");
    }
    // RFC 6585 §4.
    if (status == 429) {
        return rate_limited(response, now, status_line(status) + " with " + describe_body(b) + ".");
    }
    if (status == 403 && icontains(b.text, "CORS origin denied")) {
        return make("cors_origin_denied",
                    "HTTP 403 \"CORS origin denied\": the API refused a call made from a web page's origin.",
                    std::string("Never call Keap from the browser: its API refuses cross-origin calls, and a page "
                                "must never hold a client secret or a token anyway. Call through a server on the "
                                "page's own origin.") + kRelayHint);
    }
    // RFC 6749 §5.2: invalid_client may come back as 401; a 401 from the token endpoint is the client credentials.
    if (expect == Expect::token && status == 401) {
        std::string detail = b.text.empty() ? std::string("an empty body") : describe_body(b);
        if (b.is_json()) {
            auto err = json_util::get_string(b.json, "error");
            auto desc = json_util::get_string(b.json, "error_description");
            if (err) detail = "OAuth error \"" + *err + "\"" + (desc ? ": \"" + *desc + "\"" : std::string());
        }
        return make("token_unauthorized", "The token endpoint answered HTTP 401 Unauthorized with " + detail + ".",
                    "The token endpoint did not accept the client credentials. The Authorization header must be "
                    "exactly \"Basic \" (the word Basic and one space) followed by base64(client_id:client_secret) "
                    "— a header without the \"Basic \" prefix is the classic cause — and the client id and secret "
                    "must be the developer app's current ones (copy them again; watch for a trailing space or "
                    "newline). keyrelay builds this header for you (RFC 6749 §2.3.1).");
    }
    if (b.html) return html_page(response, b, expect);
    // Apigee-style gateway faults: {"fault":{"faultstring":"...","detail":{"errorcode":"..."}}}.
    if (const auto* fault = json_util::get_object(b.json, "fault")) {
        std::string fs = json_util::string_or(*fault, "faultstring");
        std::string ec;
        if (const auto* detail = json_util::get_object(*fault, "detail")) ec = json_util::string_or(*detail, "errorcode");
        return gateway_fault(response, now, fs, ec);
    }
    switch (expect) {
        case Expect::token: return diagnose_token(response, b);
        case Expect::xmlrpc: return diagnose_xmlrpc(response, b);
        case Expect::json: break;
    }
    return diagnose_json(response, b);
}

}  // namespace

Diagnosis diagnose(const HttpResponse& response, Expect expect, std::optional<int64_t> now) {
    Diagnosis d = classify(response, expect, now);
    d.warning = explain::printable(rate_limit_warning(read_rate_limit(response.headers, now)));
    return d;
}

}  // namespace keyrelay
