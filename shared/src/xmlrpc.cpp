// XML-RPC (http://xmlrpc.com/spec.md) over a small, strict XML 1.0 parser (https://www.w3.org/TR/xml/).
//
// No XML library exists for the Wasm build, so the parser lives here. It is a pull lexer over a string_view:
// text that needs no decoding is handed out as a view into the body; only text with references, CDATA or CR
// goes through one reused buffer. It never processes a DOCTYPE or an entity declaration (no XXE, no entity
// expansion: only the five predefined entities and character references exist), and the decoder's recursion is
// bounded by Limits::max_depth.
#include "keyrelay/xmlrpc.h"
#include "keyrelay/text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "keyrelay/http.h"

// The Wasm build is -Os, which leaves even one-line helpers out of line in the hot loops.
#define KR_INLINE inline __attribute__((always_inline))

namespace keyrelay::xmlrpc {

// ------------------------------------------------------------------------------------------------- value model

Value Value::nil() { return Value{}; }

Value Value::integer(int64_t v) {
    Value x;
    x.type = Type::integer;
    x.i = v;
    return x;
}

Value Value::boolean(bool v) {
    Value x;
    x.type = Type::boolean;
    x.b = v;
    return x;
}

Value Value::string(std::string v) {
    Value x;
    x.type = Type::string;
    x.s = std::move(v);
    return x;
}

Value Value::double_(double v) {
    Value x;
    x.type = Type::double_;
    x.d = v;
    return x;
}

Value Value::datetime(std::string iso8601) {
    Value x;
    x.type = Type::datetime;
    x.s = std::move(iso8601);
    return x;
}

Value Value::base64(std::string bytes) {
    Value x;
    x.type = Type::base64;
    x.s = std::move(bytes);
    return x;
}

Value Value::array_of(Array items) {
    Value x;
    x.type = Type::array;
    x.array = std::move(items);
    return x;
}

Value Value::struct_of(Struct members) {
    Value x;
    x.type = Type::struct_;
    x.members = std::move(members);
    return x;
}

const Value* Value::get(std::string_view name) const {
    if (type != Type::struct_) return nullptr;
    for (const auto& m : members) {
        if (m.first == name) return &m.second;
    }
    return nullptr;
}

bool operator==(const Value& a, const Value& b) {
    if (a.type != b.type) return false;
    switch (a.type) {
        case Value::Type::nil: return true;
        case Value::Type::integer: return a.i == b.i;
        case Value::Type::boolean: return a.b == b.b;
        case Value::Type::double_: return a.d == b.d;
        case Value::Type::string:
        case Value::Type::datetime:
        case Value::Type::base64: return a.s == b.s;
        case Value::Type::array: return a.array == b.array;
        case Value::Type::struct_: return a.members == b.members;
    }
    return false;
}

namespace {

using namespace std::string_view_literals;

constexpr size_t npos = std::string_view::npos;

// ------------------------------------------------------------------------------------------------- characters

// XML 1.0 §2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
bool is_xml_char(uint32_t c) {
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

// XML 1.0 §2.3: S ::= (#x20 | #x9 | #xD | #xA)+
KR_INLINE bool is_xml_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool all_space(std::string_view s) {
    for (char c : s) {
        if (!is_xml_space(c)) return false;
    }
    return true;
}

// Without leading and trailing XML whitespace (S above).
std::string_view trim_xml_space(std::string_view s) {
    while (!s.empty() && is_xml_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_xml_space(s.back())) s.remove_suffix(1);
    return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool starts_with(std::string_view s, size_t at, std::string_view prefix) {
    return s.size() >= at && s.size() - at >= prefix.size() && s.compare(at, prefix.size(), prefix) == 0;
}

bool istarts_with_at(std::string_view s, size_t at, std::string_view prefix) {
    return s.size() >= at && istarts_with(s.substr(at), prefix);
}

// XML 1.0 §2.3 NameStartChar / NameChar, ASCII exactly; every non-ASCII byte is accepted (UTF-8 validity is
// checked separately for the whole document). Plain arrays: the Wasm build is -Os, which does not inline
// std::array::operator[] in the hot loops.
struct ByteTable {
    bool v[256];
};

constexpr ByteTable make_name_table(bool start) {
    ByteTable t{};
    for (int c = 'A'; c <= 'Z'; ++c) t.v[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t.v[c] = true;
    t.v[int('_')] = true;
    t.v[int(':')] = true;
    for (int c = 0x80; c < 0x100; ++c) t.v[c] = true;
    if (!start) {
        for (int c = '0'; c <= '9'; ++c) t.v[c] = true;
        t.v[int('-')] = true;
        t.v[int('.')] = true;
    }
    return t;
}
constexpr ByteTable kNameStart = make_name_table(true);
constexpr ByteTable kNameChar = make_name_table(false);

KR_INLINE bool name_start(char c) { return kNameStart.v[static_cast<unsigned char>(c)]; }
KR_INLINE bool name_char(char c) { return kNameChar.v[static_cast<unsigned char>(c)]; }

// Bytes that end a plain run of character data.
constexpr ByteTable make_text_specials() {
    ByteTable t{};
    t.v[int('<')] = true;
    t.v[int('&')] = true;
    t.v[int(']')] = true;
    t.v[int('\r')] = true;
    return t;
}
constexpr ByteTable kTextSpecial = make_text_specials();

// Byte equality without libc++'s char_traits machinery (not inlined at -Os).
KR_INLINE bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// RFC 3629 §4: one UTF-8 sequence at s[i]; its length (1-4) and code point, or 0 when it is not valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8_decode(std::string_view s, size_t i, uint32_t& cp) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    if (c0 < 0x80) {
        cp = c0;
        return 1;
    }
    size_t len;
    uint32_t min;
    if (c0 >= 0xC2 && c0 <= 0xDF) {
        len = 2;
        cp = c0 & 0x1Fu;
        min = 0x80;
    } else if (c0 >= 0xE0 && c0 <= 0xEF) {
        len = 3;
        cp = c0 & 0x0Fu;
        min = 0x800;
    } else if (c0 >= 0xF0 && c0 <= 0xF4) {
        len = 4;
        cp = c0 & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (s.size() - i < len) return 0;
    for (size_t k = 1; k < len; ++k) {
        const auto ck = static_cast<unsigned char>(s[i + k]);
        if ((ck & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (ck & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

// A valid UTF-8 lead byte followed by too few continuation bytes before the end: the body was cut mid-character.
bool utf8_cut_at_end(std::string_view s, size_t i) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    size_t len = (c0 >= 0xC2 && c0 <= 0xDF) ? 2 : (c0 >= 0xE0 && c0 <= 0xEF) ? 3 : (c0 >= 0xF0 && c0 <= 0xF4) ? 4 : 0;
    if (len == 0 || s.size() - i >= len) return false;
    for (size_t k = i + 1; k < s.size(); ++k) {
        if ((static_cast<unsigned char>(s[k]) & 0xC0) != 0x80) return false;
    }
    return true;
}

std::string code_point_name(uint32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
    return buf;
}

// The first character XML 1.0 forbids, or the first byte that is not UTF-8. One pass, 8 bytes at a time while
// they are all printable ASCII (the bulk of any XML-RPC document).
struct BadChar {
    enum class Kind { none, forbidden, bad_utf8, cut_utf8 };
    Kind kind = Kind::none;
    size_t pos = npos;
    uint32_t value = 0;
};

BadChar find_bad_char(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    constexpr uint64_t ones = 0x0101010101010101ull;
    constexpr uint64_t highs = 0x8080808080808080ull;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            std::memcpy(&w, p + i, 8);
            // Zero when every byte is in [0x20, 0x7F]: a byte below 0x20 borrows into its high bit.
            if ((((w - ones * 0x20) | w) & highs) == 0) {
                i += 8;
                continue;
            }
        }
        const unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return {BadChar::Kind::forbidden, i, c};
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const size_t len = utf8_decode(s, i, cp);
        if (len == 0) return {utf8_cut_at_end(s, i) ? BadChar::Kind::cut_utf8 : BadChar::Kind::bad_utf8, i, c};
        if (!is_xml_char(cp)) return {BadChar::Kind::forbidden, i, cp};
        i += len;
    }
    return {};
}

// 1-based line and column of a byte offset. XML 1.0 §2.11: CR LF and a lone CR each end a line. Columns count
// characters (code points), not bytes, so they match what an editor shows.
struct LineCol {
    size_t line = 1;
    size_t column = 1;
};

LineCol line_col(std::string_view s, size_t pos) {
    LineCol lc;
    size_t i = starts_with(s, 0, "\xEF\xBB\xBF") && pos >= 3 ? 3 : 0;
    for (; i < pos && i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n' || (c == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n'))) {
            ++lc.line;
            lc.column = 1;
        } else if (c != '\r' && (c & 0xC0) != 0x80) {
            ++lc.column;
        }
    }
    return lc;
}

// A short, printable excerpt of untrusted text for an error message.
std::string excerpt(std::string_view s, size_t max = 40) {
    std::string out;
    size_t i = 0;
    while (i < s.size() && out.size() < max) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\n' || c == '\r' || c == '\t') {
            if (!out.empty() && out.back() != ' ') out += ' ';
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            ++i;
        } else if (c < 0x80) {
            out += char(c);
            ++i;
        } else {
            uint32_t cp = 0;
            const size_t len = utf8_decode(s, i, cp);
            if (len == 0) {
                out += '?';
                ++i;
            } else {
                out.append(s.substr(i, len));
                i += len;
            }
        }
    }
    if (i < s.size()) out += "...";
    return out;
}

// ------------------------------------------------------------------------------------------------- errors

constexpr const char* kHintMalformed =
    "The body is not well-formed XML, so it cannot be XML-RPC. Look at the body around that line and column: a "
    "proxy or the server produced broken output.";
constexpr const char* kHintTruncated =
    "The response was cut off before the document ended: a timeout, a proxy's size limit or a dropped "
    "connection. Retry; if it keeps happening, ask for fewer records per call (DataService.query's limit) and page "
    "through the results.";
constexpr const char* kHintBadChar =
    "The server put a character that XML 1.0 forbids (a control character, or bytes that are not UTF-8) into "
    "the response, usually copied into a contact field from another system (Keap issue #339, \"XML broken by bad "
    "characters\"). Find the record around that line and column, clean the field in Keap, or use the REST API, "
    "which returns JSON.";
constexpr const char* kHintJson =
    "The body is JSON where XML-RPC was expected: typically a gateway error such as "
    "{\"fault\":{\"faultstring\":...,\"detail\":{\"errorcode\":...}}} (rate limit, bad or expired credentials, "
    "unknown URL). Read its faultstring and errorcode.";
constexpr const char* kHintNotXml =
    "The body is plain text, not XML: usually an error from a gateway or proxy. Check the HTTP status and the "
    "endpoint URL (https://api.infusionsoft.com/crm/xmlrpc/v1).";
constexpr const char* kHintDoctype =
    "keyrelay never processes a DOCTYPE or entity declaration (they enable XXE file disclosure and "
    "\"billion laughs\" entity expansion). No real XML-RPC server sends one: check that the URL points at the real "
    "Keap endpoint and not at something that forges responses.";
constexpr const char* kHintInvalid =
    "The XML is well-formed but breaks the XML-RPC rules (http://xmlrpc.com/spec.md). The server or a proxy in "
    "between produced an unexpected answer; compare the body with the spec around that line and column.";
constexpr const char* kHintEmpty =
    "The server answered with an empty body. A gateway or proxy may have dropped the answer (look at the HTTP "
    "status), or the URL is not an XML-RPC endpoint (https://api.infusionsoft.com/crm/xmlrpc/v1). Retry once; if it "
    "persists, check the URL and the credentials.";

std::string located(std::string_view doc, size_t pos, std::string_view prefix, std::string_view detail) {
    const LineCol lc = line_col(doc, pos);
    std::string m(prefix);
    m += " at line " + std::to_string(lc.line) + ", column " + std::to_string(lc.column) + ": ";
    m += detail;
    return m;
}

Error bad_char_error(std::string_view doc, const BadChar& bad) {
    switch (bad.kind) {
        case BadChar::Kind::forbidden:
            return make_error("xmlrpc.malformed",
                              located(doc, bad.pos, "malformed XML",
                                      "character " + code_point_name(bad.value) + " is not allowed in XML"),
                              kHintBadChar);
        case BadChar::Kind::bad_utf8: {
            char buf[8];
            std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(bad.value));
            return make_error("xmlrpc.malformed",
                              located(doc, bad.pos, "malformed XML",
                                      std::string("byte ") + buf +
                                          " is not valid UTF-8 (was the body sent as ISO-8859-1 or Windows-1252 "
                                          "without saying so?)"),
                              kHintBadChar);
        }
        case BadChar::Kind::cut_utf8:
        case BadChar::Kind::none: break;
    }
    return make_error("xmlrpc.malformed",
                      located(doc, bad.pos, "malformed XML",
                              "unexpected end of document in the middle of a UTF-8 character (truncated?)"),
                      kHintTruncated);
}

std::string wrong_root_hint(std::string_view root, std::string_view expected) {
    const bool response = expected == "methodResponse";
    if (iequals(root, "html") || iequals(root, "head") || iequals(root, "body")) {
        return "The server sent an HTML page instead of XML-RPC: typically a gateway or proxy error page "
               "(502/503/504), a login or maintenance page, or a wrong URL. Look at the HTTP status and the page's "
               "<title>; the Keap XML-RPC endpoint is https://api.infusionsoft.com/crm/xmlrpc/v1.";
    }
    if (iequals(root, "h1")) {
        return "An HTML fragment such as <h1>Developer Inactive</h1> or <h1>Developer Over Qps</h1> comes from "
               "Keap's old API gateway: the app or key is inactive, or over its rate limit. Check the app and its "
               "key in the Keap developer portal, or slow down and retry later.";
    }
    if (response && root == "methodCall") {
        return "The server sent back a request (<methodCall>) instead of an answer: the URL points at something "
               "that echoes requests, not at an XML-RPC server.";
    }
    if (!response && root == "methodResponse") {
        return "This is an XML-RPC response, not a request: POST a <methodCall> to an XML-RPC endpoint.";
    }
    if (response) {
        return "The body is XML but not an XML-RPC answer: check that the request went to the XML-RPC endpoint "
               "(https://api.infusionsoft.com/crm/xmlrpc/v1), not to a REST, SOAP or web page URL.";
    }
    return "An XML-RPC request body must be a <methodCall> document (http://xmlrpc.com/spec.md).";
}

// ------------------------------------------------------------------------------------------------- lexer

enum class Kind { start, end, text, eof };

// Raw pointer and length rather than a string_view: the Wasm build is -Os with -fno-inline-functions, which
// leaves libc++'s one-line accessors as calls in the per-token paths.
struct Span {
    const char* p = nullptr;
    size_t n = 0;
    std::string_view view() const { return std::string_view(p, n); }
};

KR_INLINE Span span_of(std::string_view v) { return Span{v.data(), v.size()}; }

KR_INLINE bool same_span(Span a, Span b) {
    if (a.n != b.n) return false;
    for (size_t i = 0; i < a.n; ++i) {
        if (a.p[i] != b.p[i]) return false;
    }
    return true;
}

template <size_t N>
KR_INLINE bool is_literal(Span a, const char (&lit)[N]) {
    if (a.n != N - 1) return false;
    for (size_t i = 0; i + 1 < N; ++i) {
        if (a.p[i] != lit[i]) return false;
    }
    return true;
}

struct Token {
    Kind kind = Kind::eof;
    Span name;     // start, end
    Span text;     // text: valid until the next text token
    size_t pos = 0;   // byte offset of the '<' or of the first character of the text
};

// A pull lexer for one XML 1.0 document. It decides on the root element as soon as its name is read, so an HTML
// page that is not well-formed (<br>, <hr>) is still reported as "not a methodResponse" and not as malformed.
class Lexer {
public:
    Lexer(std::string_view doc, std::string_view expected_root, const char* wrong_root_code, size_t element_limit)
        : s_(doc), d_(doc.data()), n_(doc.size()), root_(expected_root), wrong_root_code_(wrong_root_code),
          element_limit_(element_limit), bad_(find_bad_char(doc)) {
        if (starts_with(s_, 0, "\xEF\xBB\xBF")) p_ = start_ = 3;   // UTF-8 byte order mark
        stack_.resize(32);
    }

    // The next token; false with error() set when the document breaks XML 1.0 (or is refused).
    bool next(Token& t) {
        if (pending_end_) {
            pending_end_ = false;
            t = Token{Kind::end, stack_[--depth_], {}, pending_pos_};
            return true;
        }
        for (;;) {
            if (depth_ != 0) {
                if (p_ >= n_) return truncated("inside <" + std::string(stack_[depth_ - 1].view()) + ">");
                if (d_[p_] == '<' && p_ + 1 < n_) {
                    if (d_[p_ + 1] == '/') return end_tag(t);
                    if (name_start(d_[p_ + 1])) return start_tag(t);
                }
                bool got = false;
                if (!text(t, got)) return false;
                if (got) return true;
                continue;
            }
            if (!misc()) return false;
            if (p_ >= n_) {
                if (!seen_root_) return truncated("before the root element <" + std::string(root_) + ">");
                t = Token{Kind::eof, {}, {}, n_};
                return true;
            }
            if (seen_root_) {
                return malformed(p_, "content after the end of the root element </" + std::string(root_) + ">");
            }
            return start_tag(t);
        }
    }

    const Error& error() const { return *error_; }
    std::string_view doc() const { return s_; }

private:
    bool fail(Error e) {
        error_ = std::move(e);
        return false;
    }

    // The first forbidden character wins over any error found at or after it: it is the more precise diagnosis.
    bool malformed(size_t pos, const std::string& detail, const char* hint = kHintMalformed) {
        if (bad_.kind != BadChar::Kind::none && bad_.pos <= pos) return fail(bad_char_error(s_, bad_));
        return fail(make_error("xmlrpc.malformed", located(s_, pos, "malformed XML", detail), hint));
    }

    bool truncated(const std::string& where) {
        return malformed(n_, "unexpected end of document " + where + " (truncated?)", kHintTruncated);
    }

    bool wrong_root(std::string_view name, std::string_view how = {}) {
        std::string m(how);
        m += "the root element is <" + std::string(name) + ">, not <" + std::string(root_) + ">";
        return fail(make_error(wrong_root_code_, m, wrong_root_hint(name, root_)));
    }

    size_t scan_name(size_t q) const {
        if (q < n_ && name_start(d_[q])) {
            ++q;
            while (q < n_ && name_char(d_[q])) ++q;
        }
        return q;
    }

    size_t skip_space(size_t q) const {
        while (q < n_ && is_xml_space(d_[q])) ++q;
        return q;
    }

    // Prolog and epilog (XML 1.0 §2.8): whitespace, comments, processing instructions; a DOCTYPE is refused.
    // Stops at a start tag or at the end.
    bool misc() {
        while (p_ < n_) {
            const char c = d_[p_];
            if (is_xml_space(c)) {
                ++p_;
                continue;
            }
            if (c != '<') {
                if (seen_root_) {
                    return malformed(p_, "text after the end of the root element </" + std::string(root_) + ">");
                }
                return text_before_root();
            }
            if (p_ + 1 >= n_) return truncated("after '<'");
            if (d_[p_ + 1] == '?') {
                if (!pi()) return false;
                continue;
            }
            if (starts_with(s_, p_, "<!--")) {
                if (!comment()) return false;
                continue;
            }
            if (istarts_with_at(s_, p_, "<!DOCTYPE")) return doctype();
            if (starts_with(s_, p_, "<!ENTITY")) {
                return fail(make_error("xmlrpc.doctype_refused",
                                       located(s_, p_, "refused XML", "an entity declaration (<!ENTITY) is never processed"),
                                       kHintDoctype));
            }
            if (name_start(d_[p_ + 1])) return true;
            if (s_.size() - p_ < 9 && (std::string_view("<!DOCTYPE").substr(0, n_ - p_) == s_.substr(p_) ||
                                       std::string_view("<!--").substr(0, n_ - p_) == s_.substr(p_))) {
                return truncated("inside markup");
            }
            return malformed(p_, "'<' is not followed by an element name");
        }
        return true;
    }

    bool text_before_root() {
        const char c = d_[p_];
        if (c == '{' || c == '[') {
            return malformed(p_, std::string("the body starts with '") + c + "' and looks like JSON, not XML", kHintJson);
        }
        return malformed(p_, "the body is not XML: it starts with text (\"" + excerpt(s_.substr(p_)) + "\") instead of '<'",
                         kHintNotXml);
    }

    // XML 1.0 §2.8 [28]: only the name of the root element is read; the declaration itself is never processed.
    bool doctype() {
        size_t q = skip_space(p_ + 9);
        const size_t name_end = scan_name(q);
        const std::string_view name = s_.substr(q, name_end - q);
        if (!name.empty() && name != "methodResponse" && name != "methodCall") {
            return wrong_root(name, "the document declares <!DOCTYPE " + std::string(name) + ">: ");
        }
        return fail(make_error("xmlrpc.doctype_refused",
                               located(s_, p_, "refused XML",
                                       "a DOCTYPE declaration is never processed (no external entities, no entity "
                                       "expansion)"),
                               kHintDoctype));
    }

    bool comment() {   // XML 1.0 §2.5: '<!--' ((Char - '-') | ('-' (Char - '-')))* '-->'
        const size_t dashes = s_.find("--", p_ + 4);
        if (dashes == npos || dashes + 2 >= n_) return truncated("inside a comment");
        if (d_[dashes + 2] != '>') return malformed(dashes, "'--' is not allowed inside a comment");
        p_ = dashes + 3;
        return true;
    }

    // XML 1.0 §2.6 processing instructions; §2.8 the XML declaration, only at the very start.
    bool pi() {
        const size_t target_end = scan_name(p_ + 2);
        const std::string_view target = s_.substr(p_ + 2, target_end - p_ - 2);
        if (target.empty()) {
            if (target_end >= n_) return truncated("inside a processing instruction");
            return malformed(p_, "a processing instruction needs a target name after '<?'");
        }
        if (iequals(target, "xml")) {
            if (p_ != start_ || seen_decl_) {
                return malformed(p_, "the XML declaration <?xml ...?> must be the very first thing in the document");
            }
            seen_decl_ = true;
            return declaration(target_end);
        }
        const size_t end = s_.find("?>", target_end);
        if (end == npos) return truncated("inside the processing instruction <?" + std::string(target));
        if (end != target_end && !is_xml_space(d_[target_end])) {
            return malformed(target_end, "expected whitespace after the processing instruction target");
        }
        p_ = end + 2;
        return true;
    }

    // <?xml version="1.0" encoding="UTF-8" standalone="yes"?>: version required, encoding UTF-8 (or a declared
    // ISO-8859-1 that decode_document already transcoded).
    bool declaration(size_t q) {
        int seen = 0;
        for (;;) {
            const size_t before = q;
            q = skip_space(q);
            if (q + 1 >= n_) return truncated("inside the XML declaration");
            if (d_[q] == '?' && d_[q + 1] == '>') break;
            if (q == before) return malformed(q, "expected whitespace in the XML declaration");
            const size_t name_end = scan_name(q);
            const std::string_view name = s_.substr(q, name_end - q);
            size_t v = skip_space(name_end);
            if (name.empty() || v >= n_ || d_[v] != '=') {
                if (v >= n_) return truncated("inside the XML declaration");
                return malformed(q, "expected name=\"value\" in the XML declaration");
            }
            v = skip_space(v + 1);
            if (v >= n_) return truncated("inside the XML declaration");
            const char quote = d_[v];
            if (quote != '"' && quote != '\'') return malformed(v, "expected a quoted value in the XML declaration");
            const size_t close = s_.find(quote, v + 1);
            if (close == npos) return truncated("inside the XML declaration");
            const std::string_view value = s_.substr(v + 1, close - v - 1);
            if (name == "version" && seen == 0) {
                if (value.size() < 3 || value.substr(0, 2) != "1." ||
                    value.substr(2).find_first_not_of("0123456789") != npos) {
                    return malformed(v, "unsupported XML version \"" + excerpt(value) + "\"");
                }
                seen = 1;
            } else if (name == "encoding" && seen == 1) {
                if (!iequals(value, "UTF-8") && !iequals(value, "UTF8") && !iequals(value, "US-ASCII") &&
                    !iequals(value, "ASCII") && !iequals(value, "ISO-8859-1") &&
                    !iequals(value, "latin1") && !iequals(value, "Latin-1")) {
                    return malformed(v, "the document declares encoding \"" + excerpt(value) +
                                            "\"; only UTF-8 (and ISO-8859-1) is supported");
                }
                seen = 2;
            } else if (name == "standalone" && seen >= 1 && seen <= 2) {
                if (value != "yes" && value != "no") return malformed(v, "standalone must be \"yes\" or \"no\"");
                seen = 3;
            } else {
                return malformed(q, "unexpected \"" + excerpt(name) + "\" in the XML declaration");
            }
            q = close + 1;
        }
        if (seen == 0) return malformed(p_, "the XML declaration has no version");
        p_ = q + 2;
        return true;
    }

    // XML 1.0 §4.1 references: the five predefined entities (§4.6) and character references. Nothing else
    // exists, because no DTD is ever read. Decoded bytes go to out (up to 4).
    bool reference(size_t& q, char* out, size_t& out_len) {
        const size_t amp = q;
        if (q + 1 >= n_) return truncated("inside a reference");
        if (d_[q + 1] == '#') {
            size_t d = q + 2;
            const bool hex = d < n_ && d_[d] == 'x';
            if (hex) ++d;
            const size_t digits_start = d;
            uint32_t cp = 0;
            bool overflow = false;
            for (; d < n_; ++d) {
                const char c = d_[d];
                int v;
                if (is_digit(c)) {
                    v = c - '0';
                } else if (hex && c >= 'a' && c <= 'f') {
                    v = c - 'a' + 10;
                } else if (hex && c >= 'A' && c <= 'F') {
                    v = c - 'A' + 10;
                } else {
                    break;
                }
                if (!overflow) cp = cp * (hex ? 16u : 10u) + uint32_t(v);
                if (cp > 0x10FFFF) overflow = true;
            }
            if (d >= n_) return truncated("inside a character reference");
            if (d == digits_start || d_[d] != ';') return malformed(amp, "malformed character reference");
            if (overflow || !is_xml_char(cp)) {
                return malformed(amp, "character reference &" + std::string(s_.substr(amp + 1, d - amp)) +
                                          " is not a valid XML character" +
                                          (overflow ? std::string() : " (" + code_point_name(cp) + ")"));
            }
            std::string tmp;
            utf8_append(tmp, cp);
            std::memcpy(out, tmp.data(), tmp.size());
            out_len = tmp.size();
            q = d + 1;
            return true;
        }
        const size_t name_end = scan_name(q + 1);
        if (name_end >= n_) return truncated("inside an entity reference");
        const std::string_view name = s_.substr(q + 1, name_end - q - 1);
        if (name.empty() || d_[name_end] != ';') return malformed(amp, "a bare '&' must be written &amp;");
        char c;
        if (name == "lt") {
            c = '<';
        } else if (name == "gt") {
            c = '>';
        } else if (name == "amp") {
            c = '&';
        } else if (name == "quot") {
            c = '"';
        } else if (name == "apos") {
            c = '\'';
        } else {
            return malformed(amp, "undefined entity &" + std::string(name) + ";");
        }
        out[0] = c;
        out_len = 1;
        q = name_end + 1;
        return true;
    }

    // XML 1.0 §3.1 start tags and empty-element tags. Attributes are checked for well-formedness and ignored:
    // XML-RPC has none.
    bool start_tag(Token& t) {
        const size_t lt = p_;
        size_t q = scan_name(p_ + 1);
        const std::string_view name(d_ + p_ + 1, q - p_ - 1);
        if (!seen_root_) {
            if (!same(name, root_) && !(q >= n_ && same(root_.substr(0, name.size()), name))) return wrong_root(name);
            seen_root_ = true;
            if (bad_.kind != BadChar::Kind::none) return fail(bad_char_error(s_, bad_));
        }
        auto where = [&] { return "inside the start tag <" + std::string(name) + ">"; };   // errors only
        bool empty_element = false;
        size_t attr_count = 0;
        for (;;) {
            const size_t before = q;
            q = skip_space(q);
            if (q >= n_) return truncated(where());
            const char c = d_[q];
            if (c == '>') {
                ++q;
                break;
            }
            if (c == '/') {
                if (q + 1 >= n_) return truncated(where());
                if (d_[q + 1] != '>') return malformed(q, "expected '>' after '/' " + where());
                q += 2;
                empty_element = true;
                break;
            }
            if (q == before) return malformed(q, "expected whitespace, '>' or '/>' " + where());
            if (!name_start(c)) return malformed(q, "unexpected character '" + excerpt(s_.substr(q, 1)) + "' " + where());
            const size_t attr_start = q;
            q = scan_name(q);
            const std::string_view attr = s_.substr(attr_start, q - attr_start);
            q = skip_space(q);
            if (q >= n_) return truncated(where());
            if (d_[q] != '=') return malformed(q, "expected '=' after the attribute " + std::string(attr) + " " + where());
            q = skip_space(q + 1);
            if (q >= n_) return truncated(where());
            const char quote = d_[q];
            if (quote != '"' && quote != '\'') return malformed(q, "attribute values must be quoted " + where());
            ++q;
            for (;;) {   // XML 1.0 §2.3 [10] AttValue: no '<', references well-formed
                if (q >= n_) return truncated(where());
                const char v = d_[q];
                if (v == quote) break;
                if (v == '<') return malformed(q, "'<' is not allowed in an attribute value " + where());
                if (v == '&') {
                    char buf[4];
                    size_t len = 0;
                    if (!reference(q, buf, len)) return false;
                    continue;
                }
                ++q;
            }
            ++q;
            // XML 1.0 §3.1 WFC "Unique Att Spec": compare with the attributes before it (tags have few).
            if (++attr_count > 1 && !unique_attribute(lt, attr_start, attr)) {
                return malformed(attr_start, "attribute " + std::string(attr) + " appears twice " + where());
            }
        }
        if (depth_ >= element_limit_) {
            return fail(make_error("xmlrpc.too_deep",
                                   located(s_, lt, "refused XML",
                                           "elements nest deeper than " + std::to_string(element_limit_) + " levels"),
                                   "The document nests far deeper than any real XML-RPC answer (a \"depth bomb\"). "
                                   "Check that the URL points at the real endpoint."));
        }
        if (depth_ == stack_.size()) stack_.resize(depth_ * 2);
        stack_[depth_++] = span_of(name);
        p_ = q;
        if (empty_element) {
            pending_end_ = true;
            pending_pos_ = lt;
        }
        t = Token{Kind::start, span_of(name), {}, lt};
        return true;
    }

    // Rescans the tag from its start: the earlier attribute names are all before attr_start.
    bool unique_attribute(size_t lt, size_t attr_start, std::string_view attr) const {
        size_t q = scan_name(lt + 1);
        while (q < attr_start) {
            q = skip_space(q);
            if (q >= attr_start) break;
            const size_t e = scan_name(q);
            if (s_.substr(q, e - q) == attr) return false;
            q = skip_space(e) + 1;         // '='
            q = skip_space(q);
            const char quote = d_[q];
            q = s_.find(quote, q + 1) + 1;   // known to be there: the value was already scanned
        }
        return true;
    }

    bool end_tag(Token& t) {   // XML 1.0 §3.1 [42]: '</' Name S? '>'
        const size_t lt = p_;
        const size_t name_end = scan_name(p_ + 2);
        const std::string_view name(d_ + p_ + 2, name_end - p_ - 2);
        if (name.empty()) {
            if (name_end >= n_) return truncated("inside an end tag");
            return malformed(p_, "'</' is not followed by an element name");
        }
        const size_t q = skip_space(name_end);
        if (q >= n_) return truncated("inside the end tag </" + std::string(name) + ">");
        if (d_[q] != '>') return malformed(q, "expected '>' in the end tag </" + std::string(name) + ">");
        const Span open = stack_[depth_ - 1];
        if (!same_span(span_of(name), open)) {
            return malformed(lt, "the end tag </" + std::string(name) + "> does not match the start tag <" +
                                     std::string(open.view()) + ">");
        }
        --depth_;
        p_ = q + 1;
        t = Token{Kind::end, span_of(name), {}, lt};
        return true;
    }

    // Character data up to the next tag: references decoded, CDATA sections and comments merged, line ends
    // normalized (XML 1.0 §2.11: CR LF and a lone CR become LF).
    void piece(std::string_view v) {   // a view into the document
        if (v.empty()) return;
        if (mode_ == 0) {
            view_ = v;
            mode_ = 1;
            return;
        }
        if (mode_ == 1) {
            buf_.assign(view_);
            mode_ = 2;
        }
        buf_.append(v);
    }

    void owned(std::string_view v) {   // decoded bytes that live elsewhere
        if (mode_ == 0) {
            buf_.clear();
        } else if (mode_ == 1) {
            buf_.assign(view_);
        }
        mode_ = 2;
        buf_.append(v);
    }

    void normalized(std::string_view v) {
        size_t cr;
        while ((cr = v.find('\r')) != npos) {
            piece(v.substr(0, cr));
            owned("\n");
            v.remove_prefix(cr + (cr + 1 < v.size() && v[cr + 1] == '\n' ? 2 : 1));
        }
        piece(v);
    }

    bool text(Token& t, bool& got) {
        const size_t first = p_;
        mode_ = 0;
        size_t run = p_;
        while (p_ < n_) {
            const char c = d_[p_];
            if (!kTextSpecial.v[static_cast<unsigned char>(c)]) {
                ++p_;
                continue;
            }
            if (c == '<') {
                if (p_ + 1 >= n_) return truncated("after '<'");
                const char c1 = d_[p_ + 1];
                if (c1 == '/' || name_start(c1)) break;
                piece(s_.substr(run, p_ - run));
                if (starts_with(s_, p_, "<!--")) {
                    if (!comment()) return false;
                } else if (starts_with(s_, p_, "<![CDATA[")) {   // XML 1.0 §2.7
                    const size_t end = s_.find("]]>", p_ + 9);
                    if (end == npos) return truncated("inside a CDATA section");
                    normalized(s_.substr(p_ + 9, end - p_ - 9));
                    p_ = end + 3;
                } else if (c1 == '?') {
                    if (!pi()) return false;
                } else if (n_ - p_ < 9 && (std::string_view("<![CDATA[").substr(0, n_ - p_) == s_.substr(p_) ||
                                           std::string_view("<!--").substr(0, n_ - p_) == s_.substr(p_))) {
                    return truncated("inside markup");
                } else if (c1 == '!') {
                    return malformed(p_, "markup declarations (<!...) are not allowed inside an element");
                } else {
                    return malformed(p_, "'<' in text must be written &lt;");
                }
                run = p_;
                continue;
            }
            if (c == '&') {
                piece(s_.substr(run, p_ - run));
                char buf[4];
                size_t len = 0;
                if (!reference(p_, buf, len)) return false;
                owned(std::string_view(buf, len));
                run = p_;
                continue;
            }
            if (c == ']') {   // XML 1.0 §2.4: "]]>" may not appear in character data
                if (starts_with(s_, p_, "]]>")) return malformed(p_, "']]>' is not allowed in text");
                ++p_;
                continue;
            }
            // '\r'
            piece(s_.substr(run, p_ - run));
            owned("\n");
            ++p_;
            if (p_ < n_ && d_[p_] == '\n') ++p_;
            run = p_;
        }
        piece(s_.substr(run, p_ - run));
        got = mode_ != 0;
        if (got) t = Token{Kind::text, {}, mode_ == 1 ? span_of(view_) : Span{buf_.data(), buf_.size()}, first};
        return true;
    }

    std::string_view s_;
    const char* d_;   // s_.data(): the hot loops index it directly
    size_t n_;
    size_t p_ = 0;
    size_t start_ = 0;
    std::string_view root_;
    const char* wrong_root_code_;
    size_t element_limit_;
    BadChar bad_;
    bool seen_root_ = false;
    bool seen_decl_ = false;
    bool pending_end_ = false;
    size_t pending_pos_ = 0;
    std::vector<Span> stack_;   // open elements: stack_[0, depth_)
    size_t depth_ = 0;
    int mode_ = 0;   // text being collected: 0 nothing, 1 view_, 2 buf_
    std::string_view view_;
    std::string buf_;
    std::optional<Error> error_;
};

// ------------------------------------------------------------------------------------------------- scalars

// Optional sign and decimal digits (the spec's int; i8 is the Apache extension for 64 bits).
bool parse_int(std::string_view text, bool wide, int64_t& out) {
    const std::string_view t = trim_xml_space(text);
    size_t i = 0;
    bool neg = false;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
    if (i >= t.size()) return false;
    const uint64_t limit = wide ? (neg ? uint64_t(1) << 63 : (uint64_t(1) << 63) - 1)
                                : (neg ? uint64_t(1) << 31 : (uint64_t(1) << 31) - 1);
    uint64_t acc = 0;
    for (; i < t.size(); ++i) {
        if (!is_digit(t[i])) return false;
        acc = acc * 10 + uint64_t(t[i] - '0');
        if (acc > limit) return false;
    }
    out = neg ? int64_t(0 - acc) : int64_t(acc);
    return true;
}

// The spec's double: sign, digits, '.', digits; an exponent is accepted too (Python and Java write one).
// No inf or nan: XML-RPC has no representation for them.
bool parse_double(std::string_view text, double& out) {
    const std::string_view t = trim_xml_space(text);
    size_t i = 0;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    size_t digits = 0;
    while (i < t.size() && is_digit(t[i])) ++i, ++digits;
    if (i < t.size() && t[i] == '.') {
        ++i;
        while (i < t.size() && is_digit(t[i])) ++i, ++digits;
    }
    if (digits == 0) return false;
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        size_t exp_digits = 0;
        while (i < t.size() && is_digit(t[i])) ++i, ++exp_digits;
        if (exp_digits == 0) return false;
    }
    if (i != t.size()) return false;
    const std::string copy(t);   // strtod needs a terminator; the grammar above is locale-independent
    out = std::strtod(copy.c_str(), nullptr);
    return std::isfinite(out);
}

bool take_digits(std::string_view t, size_t& i, size_t count, int& value) {
    if (t.size() - i < count) return false;
    value = 0;
    for (size_t k = 0; k < count; ++k) {
        if (!is_digit(t[i + k])) return false;
        value = value * 10 + (t[i + k] - '0');
    }
    i += count;
    return true;
}

// ISO 8601 as XML-RPC servers write it, checked loosely: "20260102T03:04:05" (the spec's form),
// "2026-01-02T03:04:05", with optional fraction and "Z" or "+hh:mm".
bool valid_datetime(std::string_view t) {
    size_t i = 0;
    int year, month, day, hour, minute, second;
    if (!take_digits(t, i, 4, year)) return false;
    const bool dashes = i < t.size() && t[i] == '-';
    if (dashes) ++i;
    if (!take_digits(t, i, 2, month)) return false;
    if (dashes && (i >= t.size() || t[i++] != '-')) return false;
    if (!take_digits(t, i, 2, day)) return false;
    if (i >= t.size() || t[i++] != 'T') return false;
    if (!take_digits(t, i, 2, hour)) return false;
    if (i < t.size() && t[i] == ':') ++i;
    if (!take_digits(t, i, 2, minute)) return false;
    if (i < t.size() && t[i] == ':') ++i;
    if (!take_digits(t, i, 2, second)) return false;
    if (i < t.size() && (t[i] == '.' || t[i] == ',')) {
        ++i;
        const size_t f = i;
        while (i < t.size() && is_digit(t[i])) ++i;
        if (i == f) return false;
    }
    if (i < t.size() && t[i] == 'Z') {
        ++i;
    } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
        ++i;
        int oh, om;
        if (!take_digits(t, i, 2, oh)) return false;
        if (i < t.size() && t[i] == ':') ++i;
        if (!take_digits(t, i, 2, om) || oh > 23 || om > 59) return false;
    }
    return i == t.size() && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 24 && minute <= 59 &&
           second <= 60;
}

// ------------------------------------------------------------------------------------------------- decoder

// XML-RPC structure over the lexer's tokens. Recursion happens only through parse_value, and stops at
// Limits::max_depth. Small members are marked `inline`: Emscripten's -Os adds -fno-inline-functions, which only
// inlines functions that ask for it.
class Decoder {
public:
    Decoder(std::string_view doc, std::string_view root, const char* wrong_root_code, const Limits& limits)
        : lx_(doc, root, wrong_root_code, size_t(limits.max_depth > 0 ? limits.max_depth : 1) * 4 + 16),
          max_depth_(limits.max_depth) {}

    std::optional<Error> error;

    bool response(Response& out) {
        if (!root_start() || !skip_space("methodResponse")) return false;
        if (is_start("params")) {
            consume();
            if (!skip_space("params")) return false;
            if (is_end("params")) {
                return invalid(tok_.pos, "<params> is empty: a methodResponse carries exactly one <param>");
            }
            if (!expect_start("param", "params") || !expect_start("value", "param") || !parse_value(out.value, 1) ||
                !expect_end("param") || !skip_space("params")) {
                return false;
            }
            if (is_start("param")) {
                return invalid(tok_.pos, "a second <param>: a methodResponse carries exactly one <param>");
            }
            if (!expect_end("params")) return false;
        } else if (is_start("fault")) {
            const size_t fault_pos = tok_.pos;
            consume();
            Value v;
            if (!expect_start("value", "fault") || !parse_value(v, 1) || !expect_end("fault")) return false;
            const Value* code = v.get("faultCode");
            const Value* text = v.get("faultString");
            if (!code || code->type != Value::Type::integer || !text || text->type != Value::Type::string) {
                return invalid(fault_pos,
                               "a <fault> must hold a struct with an int faultCode and a string faultString");
            }
            out.is_fault = true;
            out.fault.code = code->i;
            out.fault.string = text->s;
        } else if (is_end("methodResponse")) {
            return invalid(tok_.pos, "<methodResponse> has neither <params> nor <fault>");
        } else {
            return invalid(tok_.pos, "expected <params> or <fault> inside <methodResponse>, found " + describe());
        }
        return root_end("methodResponse");
    }

    bool call(Call& out) {
        if (!root_start() || !expect_start("methodName", "methodCall")) return false;
        Span name;
        size_t name_pos = tok_.pos;
        if (!read_text(span_of("methodName"sv), name, name_pos)) return false;
        // The spec: "identifier characters, upper and lower-case A-Z, the numeric characters, 0-9, underscore,
        // dot, colon and slash".
        const std::string_view method = trim_xml_space(name.view());
        if (method.empty() || method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                       "0123456789_.:/") != npos) {
            return invalid(name_pos, "\"" + excerpt(method) + "\" is not a valid methodName");
        }
        out.method = std::string(method);
        if (!skip_space("methodCall")) return false;
        if (is_start("params")) {
            consume();
            for (;;) {
                if (!skip_space("params")) return false;
                if (is_end("params")) {
                    consume();
                    break;
                }
                if (!expect_start("param", "params") || !expect_start("value", "param")) return false;
                if (!parse_value(out.params.emplace_back(), 1) || !expect_end("param")) return false;
            }
        }
        return root_end("methodCall");
    }

private:
    bool root_start() {
        if (!peek()) return false;
        consume();   // the lexer already checked the root element's name
        return true;
    }

    template <size_t N>
    bool root_end(const char (&root)[N]) {
        return expect_end(root) && peek();   // the lexer checks that only comments and whitespace follow
    }

    inline bool peek() {
        if (have_) return true;
        if (!lx_.next(tok_)) {
            error = lx_.error();
            return false;
        }
        have_ = true;
        return true;
    }

    inline void consume() { have_ = false; }

    template <size_t N>
    inline bool is_start(const char (&name)[N]) const {
        return tok_.kind == Kind::start && is_literal(tok_.name, name);
    }
    template <size_t N>
    inline bool is_end(const char (&name)[N]) const {
        return tok_.kind == Kind::end && is_literal(tok_.name, name);
    }

    std::string describe() const {
        switch (tok_.kind) {
            case Kind::start: return "<" + std::string(tok_.name.view()) + ">";
            case Kind::end: return "</" + std::string(tok_.name.view()) + ">";
            case Kind::text: return "text \"" + excerpt(trim_xml_space(tok_.text.view())) + "\"";
            case Kind::eof: break;
        }
        return "the end of the document";
    }

    // A structure error. Well-formedness is checked first: if the rest of the document is not XML (or is a depth
    // bomb), that is the more useful diagnosis (a truncated body often looks like a broken structure).
    bool invalid(size_t pos, const std::string& detail) {
        Token t;
        bool well_formed;
        while ((well_formed = lx_.next(t)) && t.kind != Kind::eof) {
        }
        if (!well_formed && (lx_.error().code == "xmlrpc.malformed" || lx_.error().code == "xmlrpc.too_deep")) {
            error = lx_.error();
            return false;
        }
        error = make_error("xmlrpc.invalid", located(lx_.doc(), pos, "invalid XML-RPC", detail), kHintInvalid);
        return false;
    }

    static inline bool blank(Span t) {
        for (size_t i = 0; i < t.n; ++i) {
            if (!is_xml_space(t.p[i])) return false;
        }
        return true;
    }

    // Whitespace between elements is ignored; other text there breaks the structure.
    inline bool skip_space(const char* where) {
        if (!peek()) return false;
        if (tok_.kind != Kind::text) return true;
        if (!blank(tok_.text)) {
            return invalid(tok_.pos, "unexpected text \"" + excerpt(trim_xml_space(tok_.text.view())) + "\" inside <" +
                                         std::string(where) + ">");
        }
        consume();
        return peek();
    }

    template <size_t N>
    inline bool expect_start(const char (&name)[N], const char* where) {
        if (!skip_space(where)) return false;
        if (!is_start(name)) {
            return invalid(tok_.pos, "expected <" + std::string(name) + "> inside <" + std::string(where) +
                                         ">, found " + describe());
        }
        consume();
        return true;
    }

    template <size_t N>
    inline bool expect_end(const char (&name)[N]) {
        if (!skip_space(name)) return false;
        if (!is_end(name)) return invalid(tok_.pos, "expected </" + std::string(name) + ">, found " + describe());
        consume();
        return true;
    }

    // The text content of a leaf element (after its start tag) up to its end tag; elements inside are an error.
    inline bool read_text(Span element, Span& text, size_t& pos) {
        text = Span{};
        if (!peek()) return false;
        if (tok_.kind == Kind::text) {
            text = tok_.text;
            pos = tok_.pos;
            consume();
            if (!peek()) return false;
        }
        if (tok_.kind != Kind::end || !same_span(tok_.name, element)) {
            return invalid(tok_.pos, "unexpected " + describe() + " inside <" + std::string(element.view()) + ">");
        }
        consume();
        return true;
    }

    // After <value>: a typed element, or bare text (a string, whitespace kept), or nothing (an empty string).
    // `out` is a fresh nil Value: it is filled in place (no temporaries to move).
    bool parse_value(Value& out, int depth) {
        if (depth > max_depth_) {
            error = make_error("xmlrpc.too_deep",
                               located(lx_.doc(), tok_.pos, "refused XML-RPC",
                                       "values nest deeper than " + std::to_string(max_depth_) + " levels"),
                               "No real answer nests arrays and structs this deep (a \"depth bomb\"). Check that the "
                               "URL points at the real endpoint; raise Limits::max_depth only for a trusted server.");
            return false;
        }
        if (!peek()) return false;
        if (is_end("value")) {
            consume();
            out.type = Value::Type::string;
            return true;
        }
        if (tok_.kind == Kind::text) {
            const Span text = tok_.text;   // stays valid: tags do not touch the lexer's text buffer
            const size_t text_pos = tok_.pos;
            consume();
            if (!peek()) return false;
            if (is_end("value")) {
                out.type = Value::Type::string;
                out.s.assign(text.p, text.n);
                consume();
                return true;
            }
            if (tok_.kind != Kind::start) return invalid(tok_.pos, "expected </value>, found " + describe());
            if (!blank(text)) {
                return invalid(text_pos, "text \"" + excerpt(trim_xml_space(text.view())) + "\" and the element " + describe() +
                                             " are mixed inside <value>");
            }
        }
        if (tok_.kind != Kind::start) {
            return invalid(tok_.pos, "expected a type element inside <value>, found " + describe());
        }
        const Span type = tok_.name;
        const size_t type_pos = tok_.pos;
        consume();
        if (!typed(type, type_pos, out, depth)) return false;
        return expect_end("value");
    }

    bool typed(Span type, size_t type_pos, Value& out, int depth) {
        if (is_literal(type, "struct")) return parse_struct(out, depth);
        if (is_literal(type, "array")) return parse_array(out, depth);
        // Apache XML-RPC's extensions come with a namespace prefix: <ex:nil/>, <ex:i8>.
        Span local = type;
        for (size_t i = 0; i < type.n; ++i) {
            if (type.p[i] == ':') local = Span{type.p + i + 1, type.n - i - 1};
        }
        Span text;
        size_t text_pos = type_pos;
        if (!read_text(type, text, text_pos)) return false;
        auto tag = [&] { return "<" + std::string(type.view()) + ">"; };   // errors only
        if (is_literal(type, "string")) {
            out.type = Value::Type::string;
            out.s.assign(text.p, text.n);
        } else if (is_literal(type, "int") || is_literal(type, "i4") || is_literal(local, "i8")) {
            const bool wide = is_literal(local, "i8");
            if (!parse_int(text.view(), wide, out.i)) {
                std::string why = "\"" + excerpt(trim_xml_space(text.view())) + "\" is not a valid " + tag();
                int64_t ignored = 0;
                if (!wide && parse_int(text.view(), true, ignored)) why += ": it is outside the 32-bit range (use <i8>)";
                return invalid(text_pos, why);
            }
            out.type = Value::Type::integer;
        } else if (is_literal(type, "boolean")) {
            const std::string_view t = trim_xml_space(text.view());
            if (t != "0"sv && t != "1"sv) {
                return invalid(text_pos, "\"" + excerpt(t) + "\" is not a valid <boolean> (0 or 1)");
            }
            out.type = Value::Type::boolean;
            out.b = t[0] == '1';
        } else if (is_literal(type, "double")) {
            if (!parse_double(text.view(), out.d)) {
                return invalid(text_pos, "\"" + excerpt(trim_xml_space(text.view())) + "\" is not a valid <double>");
            }
            out.type = Value::Type::double_;
        } else if (is_literal(type, "dateTime.iso8601")) {
            const std::string_view t = trim_xml_space(text.view());
            if (!valid_datetime(t)) {
                return invalid(text_pos,
                               "\"" + excerpt(t) + "\" is not a valid <dateTime.iso8601> (e.g. 20260102T03:04:05)");
            }
            out.type = Value::Type::datetime;
            out.s.assign(t.data(), t.size());
        } else if (is_literal(type, "base64")) {
            auto bytes = base64_decode(text.view());
            if (!bytes) return invalid(text_pos, "<base64> does not hold base64: " + bytes.error().message);
            out.type = Value::Type::base64;
            out.s = std::move(*bytes);
        } else if (is_literal(local, "nil")) {
            if (!blank(text)) return invalid(text_pos, "<nil/> must be empty");
        } else {
            return invalid(type_pos, "unknown type " + tag() + " inside <value>");
        }
        return true;
    }

    bool parse_struct(Value& out, int depth) {
        out.type = Value::Type::struct_;
        // Rows of a query answer all have the same members: size the vector like the previous struct's (capped,
        // so one huge struct cannot make every later one allocate as much).
        out.members.reserve(last_struct_size_ < 64 ? last_struct_size_ : 64);
        for (;;) {
            if (!skip_space("struct")) return false;
            if (is_end("struct")) {
                consume();
                last_struct_size_ = out.members.size();
                return true;
            }
            if (!is_start("member")) return invalid(tok_.pos, "expected <member> or </struct>, found " + describe());
            consume();
            Span name;
            size_t name_pos = tok_.pos;
            if (!expect_start("name", "member") || !read_text(span_of("name"sv), name, name_pos)) return false;
            // The name is copied at once (the next text token may reuse the lexer's buffer); the value is parsed
            // in place.
            Member& member = out.members.emplace_back(std::string(name.p, name.n), Value{});
            if (!expect_start("value", "member") || !parse_value(member.second, depth + 1) ||
                !expect_end("member")) {
                return false;
            }
        }
    }

    bool parse_array(Value& out, int depth) {
        out.type = Value::Type::array;
        if (!skip_space("array")) return false;
        if (is_end("array")) {   // <array/>: the spec wants <data>, but an empty array is the only reading
            consume();
            return true;
        }
        if (!expect_start("data", "array")) return false;
        for (;;) {
            if (!skip_space("data")) return false;
            if (is_end("data")) {
                consume();
                break;
            }
            if (!is_start("value")) return invalid(tok_.pos, "expected <value> or </data>, found " + describe());
            consume();
            if (!parse_value(out.array.emplace_back(), depth + 1)) return false;
        }
        return expect_end("array");
    }

    Lexer lx_;
    int max_depth_;
    Token tok_;
    bool have_ = false;
    size_t last_struct_size_ = 0;
};

// Size and emptiness first; a declared ISO-8859-1 document is transcoded to UTF-8 (every byte is one code point,
// so lines and columns are unchanged).
std::optional<Error> precheck(std::string_view body, const Limits& limits, std::string& transcoded,
                              std::string_view& doc) {
    if (body.size() > limits.max_bytes) {
        return make_error("xmlrpc.too_large",
                          "the body is " + std::to_string(body.size()) + " bytes, over the limit of " +
                              std::to_string(limits.max_bytes) + " bytes",
                          "Ask for fewer records per call (DataService.query's limit) and page through the results; "
                          "raise Limits::max_bytes only for a server you trust.");
    }
    std::string_view rest = body;
    if (starts_with(rest, 0, "\xEF\xBB\xBF")) rest.remove_prefix(3);
    if (all_space(rest)) {
        return make_error("xmlrpc.empty", body.empty() ? "the body is empty" : "the body is only whitespace",
                          kHintEmpty);
    }
    doc = body;
    if (starts_with(body, 0, "<?xml")) {
        const size_t end = body.find("?>");
        const std::string_view decl = body.substr(0, end == npos ? 0 : end);
        const size_t enc = decl.find("encoding");
        if (enc != npos) {
            const size_t quote = decl.find_first_of("\"'", enc);
            const size_t close = quote == npos ? npos : decl.find(decl[quote], quote + 1);
            if (close != npos) {
                const std::string_view name = decl.substr(quote + 1, close - quote - 1);
                if (iequals(name, "ISO-8859-1") || iequals(name, "latin1") ||
                    iequals(name, "Latin-1")) {
                    transcoded.reserve(body.size() + body.size() / 8);
                    for (char c : body) utf8_append(transcoded, static_cast<unsigned char>(c));
                    doc = transcoded;
                }
            }
        }
    }
    return std::nullopt;
}

// ------------------------------------------------------------------------------------------------- encoder

constexpr const char* kProlog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// XML 1.0 §2.4: '&' and '<' must be escaped, the rest for symmetry. A CR becomes &#13; (a raw one would be read
// back as LF, §2.11). Characters XML 1.0 cannot carry at all (§2.2, e.g. U+000B) and bytes that are not UTF-8
// are dropped: a document that contains them is not XML.
void put_escaped(std::string& out, std::string_view s) {
    size_t run = 0;
    size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x80 && c != '&' && c != '<' && c != '>' && c != '"' && c != '\'') {
            ++i;
            continue;
        }
        out.append(s.data() + run, i - run);
        size_t len = 1;
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            case '\t':
            case '\n': out += char(c); break;
            case '\r': out += "&#13;"; break;
            default:
                if (c >= 0x80) {
                    uint32_t cp = 0;
                    const size_t n = utf8_decode(s, i, cp);
                    if (n != 0) {
                        len = n;
                        if (is_xml_char(cp)) out.append(s.substr(i, n));
                    }
                }
                break;
        }
        i += len;
        run = i;
    }
    out.append(s.data() + run, s.size() - run);
}

// Round-trip precision, written without an exponent as the spec's grammar asks ("-12.214", "0.0000001"):
// the shortest of 15, 16 or 17 significant digits that reads back to the same double.
std::string format_double(double d) {
    char buf[48];
    for (int precision = 15; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*e", precision - 1, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    const std::string_view s(buf);
    const size_t e = s.find('e');
    std::string digits;
    for (char c : s.substr(0, e)) {
        if (is_digit(c)) digits += c;
    }
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    const int exponent = std::atoi(buf + e + 1);
    std::string out = s[0] == '-' ? "-" : "";
    const int count = int(digits.size());
    if (exponent >= 0) {
        if (count <= exponent + 1) {
            out += digits;
            out.append(size_t(exponent + 1 - count), '0');
            out += ".0";
        } else {
            out.append(digits, 0, size_t(exponent + 1));
            out += '.';
            out.append(digits, size_t(exponent + 1), npos);
        }
    } else {
        out += "0.";
        out.append(size_t(-exponent - 1), '0');
        out += digits;
    }
    return out;
}

void put_integer(std::string& out, int64_t i) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, i);
    out.append(digits, static_cast<size_t>(r.ptr - digits));
}

// About the length of put_value's text for v (exact for ASCII text without markup characters), so that the answer
// is written into one allocation instead of a dozen doublings of a large string.
size_t encoded_size(const Value& v) {
    constexpr size_t value_tags = 15;   // <value></value>
    switch (v.type) {
        case Value::Type::string: return value_tags + 17 + v.s.size();
        case Value::Type::datetime: return value_tags + 37 + v.s.size();
        case Value::Type::base64: return value_tags + 17 + (v.s.size() + 2) / 3 * 4;
        case Value::Type::array: {
            size_t n = value_tags + 27;
            for (const auto& item : v.array) n += encoded_size(item);
            return n;
        }
        case Value::Type::struct_: {
            size_t n = value_tags + 17;
            for (const auto& [name, member] : v.members) n += 33 + name.size() + encoded_size(member);
            return n;
        }
        default: return value_tags + 40;
    }
}

void put_int(std::string& out, int64_t i) {
    if (i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max()) {
        out += "<int>"sv;
        put_integer(out, i);
        out += "</int>"sv;
    } else {   // the spec's int is 32 bits; i8 is the widely read Apache extension
        out += "<i8>"sv;
        put_integer(out, i);
        out += "</i8>"sv;
    }
}

void put_string(std::string& out, std::string_view s) {
    out += "<string>"sv;
    put_escaped(out, s);
    out += "</string>"sv;
}

void put_datetime(std::string& out, std::string_view s) {
    out += "<dateTime.iso8601>"sv;
    put_escaped(out, s);
    out += "</dateTime.iso8601>"sv;
}

void put_value(std::string& out, const Value& v) {
    out += "<value>"sv;
    switch (v.type) {
        case Value::Type::nil: out += "<nil/>"sv; break;
        case Value::Type::integer: put_int(out, v.i); break;
        case Value::Type::boolean: out += v.b ? "<boolean>1</boolean>"sv : "<boolean>0</boolean>"sv; break;
        case Value::Type::string: put_string(out, v.s); break;
        case Value::Type::double_:
            if (std::isfinite(v.d)) {
                out += "<double>" + format_double(v.d) + "</double>";
            } else {   // XML-RPC has no inf or nan: sent as the string Java's Double.parseDouble reads back
                out += std::isnan(v.d) ? "<string>NaN</string>" : v.d > 0 ? "<string>Infinity</string>"
                                                                          : "<string>-Infinity</string>";
            }
            break;
        case Value::Type::datetime: put_datetime(out, v.s); break;
        case Value::Type::base64: out += "<base64>" + base64_encode(v.s) + "</base64>"; break;
        case Value::Type::array:
            out += "<array><data>"sv;
            for (const auto& item : v.array) put_value(out, item);
            out += "</data></array>"sv;
            break;
        case Value::Type::struct_:
            out += "<struct>"sv;
            for (const auto& [name, member] : v.members) {
                out += "<member><name>"sv;
                put_escaped(out, name);
                out += "</name>"sv;
                put_value(out, member);
                out += "</member>"sv;
            }
            out += "</struct>"sv;
            break;
    }
    out += "</value>"sv;
}

}  // namespace

// ------------------------------------------------------------------------------------------------- public API

std::string encode_call(std::string_view method, const Array& params) {
    std::string out;
    out.reserve(256);
    out += kProlog;
    out += "<methodCall><methodName>";
    put_escaped(out, method);
    out += "</methodName><params>";
    for (const auto& p : params) {
        out += "<param>";
        put_value(out, p);
        out += "</param>";
    }
    out += "</params></methodCall>\n";
    return out;
}

std::string encode_response(const Value& value) {
    std::string out;
    out.reserve(128 + encoded_size(value));
    out += kProlog;
    out += "<methodResponse><params><param>";
    put_value(out, value);
    out += "</param></params></methodResponse>\n";
    return out;
}

ArrayResponseWriter::ArrayResponseWriter() {
    out_ += kProlog;
    out_ += "<methodResponse><params><param><value><array><data>";
}

void ArrayResponseWriter::begin_struct() {
    out_ += "<value><struct>"sv;
    ++items_;
}

void ArrayResponseWriter::begin_member(std::string_view name) {
    out_ += "<member><name>"sv;
    put_escaped(out_, name);
    out_ += "</name><value>"sv;
}

void ArrayResponseWriter::int_member(std::string_view name, int64_t value) {
    begin_member(name);
    put_int(out_, value);
    out_ += "</value></member>"sv;
}

void ArrayResponseWriter::string_member(std::string_view name, std::string_view text) {
    begin_member(name);
    put_string(out_, text);
    out_ += "</value></member>"sv;
}

void ArrayResponseWriter::datetime_member(std::string_view name, std::string_view iso8601) {
    begin_member(name);
    put_datetime(out_, iso8601);
    out_ += "</value></member>"sv;
}

void ArrayResponseWriter::end_struct() { out_ += "</struct></value>"sv; }

std::string ArrayResponseWriter::finish() && {
    out_ += "</data></array></value></param></params></methodResponse>\n";
    return std::move(out_);
}

std::string encode_fault(int code, std::string_view message) {
    std::string out;
    out.reserve(256 + message.size());
    out += kProlog;
    out += "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>";
    out += std::to_string(code);
    out += "</int></value></member><member><name>faultString</name><value><string>";
    put_escaped(out, message);
    out += "</string></value></member></struct></value></fault></methodResponse>\n";
    return out;
}

Result<Response> decode_response(std::string_view body, const Limits& limits) {
    std::string transcoded;
    std::string_view doc;
    if (auto e = precheck(body, limits, transcoded, doc)) return *e;
    Decoder d(doc, "methodResponse", "xmlrpc.not_method_response", limits);
    Response r;
    if (!d.response(r)) return *d.error;
    return Result<Response>(std::move(r));   // C++17 would copy the whole tree on `return r;` (no P1825)
}

Result<Call> decode_call(std::string_view body, const Limits& limits) {
    std::string transcoded;
    std::string_view doc;
    if (auto e = precheck(body, limits, transcoded, doc)) return *e;
    Decoder d(doc, "methodCall", "xmlrpc.not_method_call", limits);
    Call c;
    if (!d.call(c)) return *d.error;
    return Result<Call>(std::move(c));
}

}  // namespace keyrelay::xmlrpc
