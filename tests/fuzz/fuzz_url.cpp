// URL, query and form parsing, percent and base64 codecs, and the OAuth callback parser on hostile text.
// Properties:
//  - decoders invert encoders (percent, form, base64) for every byte string;
//  - parse_url only accepts http(s) URLs with a host, a port in 1..65535, a path starting with '/', and no
//    control characters or spaces (RFC 3986 §3);
//  - parse_callback returns a code and a state, or one of its documented errors.
#include "fuzz_common.h"
#include "keyrelay/http.h"
#include "keyrelay/oauth2.h"

using namespace keyrelay;

namespace {

bool only_unreserved_or_escapes(std::string_view s, bool plus_for_space) {
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved || (plus_for_space && c == '+')) continue;
        if (c != '%' || i + 2 >= s.size()) return false;
        i += 2;
    }
    return true;
}

void check_percent(std::string_view in) {
    for (bool plus : {false, true}) {
        auto d = percent_decode(in, plus);
        if (!d) {
            fuzz::check_error(d.error(), "percent_decode");
            FUZZ_CHECK(d.error().code == "http.bad_percent_encoding", "percent_decode: " + d.error().code);
            FUZZ_CHECK(in.find('%') != std::string_view::npos, "percent_decode refused text without '%'");
        } else {
            FUZZ_CHECK(d->size() <= in.size(), "percent_decode grew the text");
        }
    }
    const std::string e = percent_encode(in);
    FUZZ_CHECK(only_unreserved_or_escapes(e, false), "percent_encode left a reserved character: " + e);
    auto back = percent_decode(e);
    FUZZ_CHECK(back && *back == in, "percent_decode(percent_encode(x)) != x");

    const std::string f = form_urlencode(in);
    FUZZ_CHECK(only_unreserved_or_escapes(f, true), "form_urlencode left a reserved character: " + f);
    auto fback = percent_decode(f, true);
    FUZZ_CHECK(fback && *fback == in, "form decoding of form_urlencode(x) != x");
}

void check_form(std::string_view in) {
    auto params = form_decode(in);
    auto query = parse_query(in);
    if (!params) {
        fuzz::check_error(params.error(), "form_decode");
        FUZZ_CHECK(params.error().code == "http.bad_percent_encoding", "form_decode: " + params.error().code);
    } else {
        const std::string again = form_encode(*params);
        auto back = form_decode(again);
        FUZZ_CHECK(back && *back == *params, "form_decode(form_encode(p)) != p for " + again);
    }
    if (!query) {
        fuzz::check_error(query.error(), "parse_query");
        FUZZ_CHECK(query.error().code == "http.bad_percent_encoding", "parse_query: " + query.error().code);
    }
    // A bare "a=b&c=d" (no '?', '#', scheme or leading '/') is a query by itself.
    const bool bare = in.find_first_of("?#") == std::string_view::npos && in.find("://") == std::string_view::npos &&
                      (in.empty() || in.front() != '/');
    if (bare) {
        FUZZ_CHECK(params.ok() == query.ok(), "parse_query and form_decode disagree on a bare query");
        if (params) FUZZ_CHECK(*params == *query, "parse_query and form_decode disagree on a bare query");
    }
}

void check_base64(std::string_view in) {
    auto d = base64_decode(in);
    if (!d) {
        fuzz::check_error(d.error(), "base64_decode");
        FUZZ_CHECK(d.error().code == "base64.invalid", "base64_decode: " + d.error().code);
    } else {
        auto again = base64_decode(base64_encode(*d));
        FUZZ_CHECK(again && *again == *d, "base64 round trip of a decoded value");
    }
    const std::string e = base64_encode(in);
    FUZZ_CHECK(e.size() % 4 == 0, "base64_encode without padding");
    auto back = base64_decode(e);
    FUZZ_CHECK(back && *back == in, "base64_decode(base64_encode(x)) != x");
    const std::string u = base64url_encode(in);
    FUZZ_CHECK(u.find_first_of("+/=") == std::string::npos, "base64url_encode used + / or =: " + u);
}

void check_url(std::string_view in) {
    auto u = parse_url(in);
    if (!u) {
        fuzz::check_error(u.error(), "parse_url");
        FUZZ_CHECK(u.error().code == "http.bad_url", "parse_url: " + u.error().code);
        return;
    }
    FUZZ_CHECK(u->scheme == "http" || u->scheme == "https", "parse_url scheme " + u->scheme);
    FUZZ_CHECK(!u->host.empty(), "parse_url accepted an empty host");
    FUZZ_CHECK(u->port >= 1 && u->port <= 65535, "parse_url port " + std::to_string(u->port));
    FUZZ_CHECK(!u->path.empty() && u->path.front() == '/', "parse_url path " + u->path);
    for (const std::string* part : {&u->host, &u->path, &u->query}) {
        FUZZ_CHECK(!fuzz::has_control(*part) && part->find(' ') == std::string::npos,
                   "parse_url kept a control character or a space");
    }
    FUZZ_CHECK(u->host.find_first_of("/?#@") == std::string::npos, "parse_url host " + u->host);
    FUZZ_CHECK(u->path.find_first_of("?#") == std::string::npos, "parse_url path " + u->path);
    FUZZ_CHECK(u->query.find('#') == std::string::npos, "parse_url query " + u->query);
    // join_url never loses the base's authority.
    const std::string joined = join_url(in, "/x");
    auto j = parse_url(joined);
    FUZZ_CHECK(j && j->host == u->host && j->port == u->port, "join_url changed the host: " + joined);
}

void check_callback(std::string_view in) {
    auto c = oauth2::parse_callback(in);
    if (!c) {
        fuzz::check_error(c.error(), "parse_callback");
        FUZZ_CHECK(fuzz::one_of(c.error().code, {"oauth.access_denied", "oauth.callback_error", "oauth.missing_code",
                                                 "oauth.missing_state", "http.bad_percent_encoding"}),
                   "parse_callback: " + c.error().code);
        return;
    }
    FUZZ_CHECK(!c->code.empty() && !c->state.empty(), "parse_callback without code or state");
    const std::string account = oauth2::account_from_scope(c->scope);
    FUZZ_CHECK(account.find_first_of(" \t") == std::string::npos, "account_from_scope kept a space: " + account);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view in = fuzz::text(data, size);
    check_percent(in);
    check_form(in);
    check_base64(in);
    check_url(in);
    check_callback(in);
    return 0;
}
