// Redaction of echoed secrets (see redact.h). A secret is matched character by character, each character of the
// text decoded from whichever escape it is written in, so one matcher finds the raw, percent-, form-, JSON- and
// HTML-escaped forms and their mixtures; base64 forms are extra needles fed to the same matcher.
#include "keyrelay/redact.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "keyrelay/ascii.h"
#include "keyrelay/text.h"

#include "json_util.h"

namespace keyrelay {
namespace {

// One way the text may spell the next character(s) of a secret: the bytes it stands for and its length in the text.
struct Token {
    char byte[4] = {};
    size_t bytes = 0;    // decoded length (UTF-8 for a \u escape or a character reference above U+007F)
    size_t length = 0;   // encoded length in the text
};

void set_code_point(Token& t, uint32_t cp) {
    std::string utf8;
    utf8_append(utf8, cp);
    t.bytes = std::min<size_t>(utf8.size(), 4);
    for (size_t k = 0; k < t.bytes; ++k) t.byte[k] = utf8[k];
}

int hex4(std::string_view s, size_t at) {
    if (at + 4 > s.size()) return -1;
    int v = 0;
    for (size_t k = 0; k < 4; ++k) {
        int h = hex_value(s[at + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

// The escaped spelling that starts at text[j], if text[j] introduces one: %XX (RFC 3986 §2.1), a JSON escape
// (RFC 8259 §7), an HTML character reference (named for the five XML ones, or numeric). length 0 when none.
Token escape_at(std::string_view text, size_t j) {
    Token t;
    const char c = text[j];
    if (c == '%') {
        if (j + 2 < text.size() && hex_value(text[j + 1]) >= 0 && hex_value(text[j + 2]) >= 0) {
            t.byte[0] = char(hex_value(text[j + 1]) * 16 + hex_value(text[j + 2]));
            t.bytes = 1;
            t.length = 3;
        }
    } else if (c == '\\') {
        if (j + 1 >= text.size()) return t;
        const char e = text[j + 1];
        static constexpr std::pair<char, char> kShort[] = {{'"', '"'},  {'\\', '\\'}, {'/', '/'},  {'b', '\b'},
                                                           {'f', '\f'}, {'n', '\n'},  {'r', '\r'}, {'t', '\t'}};
        for (const auto& [letter, byte] : kShort) {
            if (e == letter) {
                t.byte[0] = byte;
                t.bytes = 1;
                t.length = 2;
                return t;
            }
        }
        if (e == 'u') {
            int cp = hex4(text, j + 2);
            if (cp < 0) return t;
            // A surrogate pair (RFC 8259 §7) stands for one code point above U+FFFF.
            if (cp >= 0xD800 && cp <= 0xDBFF && text.size() >= j + 12 && text.substr(j + 6, 2) == "\\u") {
                int low = hex4(text, j + 8);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    set_code_point(t, 0x10000 + ((uint32_t(cp) - 0xD800) << 10) + (uint32_t(low) - 0xDC00));
                    t.length = 12;
                    return t;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) return t;
            set_code_point(t, uint32_t(cp));
            t.length = 6;
        }
    } else if (c == '&') {
        // The longest reference read here is "&#x10FFFF;": look no further than that for the ';'.
        size_t semi = text.substr(0, std::min(text.size(), j + 11)).find(';', j + 1);
        if (semi == std::string_view::npos) return t;
        std::string_view name = text.substr(j + 1, semi - j - 1);
        static constexpr std::pair<std::string_view, char> kNamed[] = {
            {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
        for (const auto& [n, byte] : kNamed) {
            if (name == n) {
                t.byte[0] = byte;
                t.bytes = 1;
                t.length = semi - j + 1;
                return t;
            }
        }
        if (name.size() < 2 || name[0] != '#') return t;
        uint32_t cp = 0;
        bool hex = name[1] == 'x' || name[1] == 'X';
        std::string_view digits = name.substr(hex ? 2 : 1);
        if (digits.empty() || digits.size() > 7) return t;
        for (char d : digits) {
            int v = hex ? hex_value(d) : (d >= '0' && d <= '9' ? d - '0' : -1);
            if (v < 0) return t;
            cp = cp * (hex ? 16 : 10) + uint32_t(v);
        }
        if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return t;
        set_code_point(t, cp);
        t.length = semi - j + 1;
    } else if (c == '+') {
        // application/x-www-form-urlencoded: '+' is a space (a raw '+' is matched as itself too).
        t.byte[0] = ' ';
        t.bytes = 1;
        t.length = 1;
    }
    return t;
}

bool introduces_escape(char c) { return c == '%' || c == '\\' || c == '&' || c == '+'; }

// The end of a match of `needle` starting at text[start], or npos. Depth-first over the ways each position can be
// read (itself, or the escape it starts); a step budget keeps a hostile text from making this exponential: a secret
// that would need more steps than that is not found at this position.
size_t match_at(std::string_view text, size_t start, std::string_view needle) {
    struct State {
        size_t i, j;
    };
    std::array<State, 64> small;   // not zeroed: only [0, top) is read
    std::vector<State> large;
    size_t budget = 64 * needle.size() + 64;
    // An explicit stack: the recursion would be needle.size() deep.
    std::vector<State>* stack = nullptr;
    size_t top = 0;
    auto push = [&](State s) {
        if (stack == nullptr && top < small.size()) {
            small[top++] = s;
            return;
        }
        if (stack == nullptr) {
            large.assign(small.begin(), small.begin() + top);
            stack = &large;
        }
        stack->push_back(s);
    };
    auto pop = [&](State& s) {
        if (stack != nullptr) {
            if (stack->empty()) return false;
            s = stack->back();
            stack->pop_back();
            return true;
        }
        if (top == 0) return false;
        s = small[--top];
        return true;
    };
    push({0, start});
    State s{};
    while (pop(s)) {
        if (budget-- == 0) return std::string_view::npos;
        if (s.i == needle.size()) return s.j;
        if (s.j >= text.size()) continue;
        const char c = text[s.j];
        if (introduces_escape(c)) {
            Token t = escape_at(text, s.j);
            if (t.length > 0 && s.i + t.bytes <= needle.size() &&
                std::equal(t.byte, t.byte + t.bytes, needle.begin() + long(s.i))) {
                push({s.i + t.bytes, s.j + t.length});
            }
        }
        if (c == needle[s.i]) push({s.i + 1, s.j + 1});
    }
    return std::string_view::npos;
}

bool is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '-' || c == '_';
}

std::string to_base64url_alphabet(std::string s) {
    for (char& c : s) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    return s;
}

// The base64 characters that depend only on `bytes` when they sit at offset k (0, 1 or 2) of a 3-byte group inside
// a longer base64 text (RFC 4648 §4): ceil(4k/3) characters in, up to floor(4(k + n)/3).
std::string base64_core(std::string_view bytes, size_t k) {
    std::string padded(k, '\0');
    padded += bytes;
    std::string b64 = base64_encode(padded);
    size_t from = (4 * k + 2) / 3;
    size_t to = (4 * padded.size()) / 3;
    if (to <= from || to > b64.size()) return {};
    return b64.substr(from, to - from);
}

const char* const kSecretFields[] = {"client_secret", "refresh_token", "access_token", "code", "code_verifier",
                                     "password", "assertion", "client_assertion"};

bool is_secret_field(std::string_view name) {
    for (const char* f : kSecretFields) {
        if (name == f) return true;
    }
    return false;
}

}  // namespace

Redactor::Redactor(const std::vector<std::string>& secrets) {
    for (const std::string& s : secrets) add(s);
}

void Redactor::add_needle(std::string needle, bool base64) {
    for (const Needle& n : needles_) {
        if (n.text == needle) return;
    }
    const auto index = uint32_t(needles_.size());
    by_first_[static_cast<unsigned char>(needle[0])].push_back(index);
    for (char e : {'%', '\\', '&', '+'}) {
        if (e != needle[0]) by_first_[static_cast<unsigned char>(e)].push_back(index);
    }
    needles_.push_back({std::move(needle), base64});
}

void Redactor::add(std::string_view secret) {
    if (secret.size() < kMinSecretLength) return;
    if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
    secrets_.emplace_back(secret);
    add_needle(std::string(secret), false);
    // RFC 6749 §2.3.1: a Basic credential base64-encodes the form-encoded secret.
    std::vector<std::string> variants = {std::string(secret)};
    if (std::string f = form_urlencode(secret); f != secret) variants.push_back(std::move(f));
    for (const std::string& v : variants) {
        for (size_t k = 0; k < 3; ++k) {
            std::string core = base64_core(v, k);
            if (core.size() < kMinSecretLength) continue;
            add_needle(to_base64url_alphabet(core), true);
            add_needle(std::move(core), true);
        }
    }
}

void Redactor::add_request(const HttpRequest& sent) {
    for (const std::string& s : secrets_of(sent)) add(s);
}

std::string Redactor::redact(std::string_view text) const {
    std::string out(text);
    redact_in_place(out);
    return out;
}

bool Redactor::redact_in_place(std::string& text) const {
    if (secrets_.empty() || text.empty()) return false;

    std::vector<std::pair<size_t, size_t>> spans;
    const std::string_view view(text);
    for (size_t j = 0; j < view.size(); ++j) {
        for (uint32_t n : by_first_[static_cast<unsigned char>(view[j])]) {
            size_t end = match_at(view, j, needles_[n].text);
            if (end == std::string_view::npos) continue;
            size_t from = j;
            if (needles_[n].base64) {
                // The whole base64 run: the characters beside the match also carry bits of the secret.
                while (from > 0 && is_base64_char(view[from - 1])) --from;
                while (end < view.size() && (is_base64_char(view[end]) || view[end] == '=')) ++end;
            }
            spans.emplace_back(from, end);
        }
    }
    if (spans.empty()) return false;
    std::sort(spans.begin(), spans.end());
    std::string out;
    out.reserve(text.size());
    size_t at = 0;
    for (size_t k = 0; k < spans.size();) {
        size_t from = spans[k].first, to = spans[k].second;
        for (++k; k < spans.size() && spans[k].first <= to; ++k) to = std::max(to, spans[k].second);
        if (from < at) from = at;
        out.append(view.substr(at, from - at));
        out.append(kRedacted);
        at = std::max(at, to);
    }
    out.append(view.substr(at));
    text = std::move(out);
    return true;
}

bool Redactor::redact_headers(Headers& headers) const {
    if (secrets_.empty()) return false;
    bool changed = false;
    Headers out;
    out.reserve(headers.items().size());
    for (const auto& [name, value] : headers.items()) {
        std::string v = value;
        changed = redact_in_place(v) || changed;
        out.add(name, std::move(v));
    }
    if (changed) headers = std::move(out);
    return changed;
}

bool Redactor::redact_response(HttpResponse& response) const {
    bool body = redact_in_place(response.body);
    bool headers = redact_headers(response.headers);
    return body || headers;
}

bool Redactor::redact_error(Error& error) const {
    bool message = redact_in_place(error.message);
    bool hint = redact_in_place(error.hint);
    return message || hint;
}

std::vector<std::string> secrets_of(const HttpRequest& sent) {
    std::vector<std::string> out;
    auto keep = [&out](std::string s) {
        if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
    };
    if (const std::string* auth = sent.headers.find("Authorization")) {
        std::string_view v = trim(*auth);
        size_t space = v.find(' ');
        std::string_view scheme = space == std::string_view::npos ? std::string_view() : v.substr(0, space);
        std::string_view credential = space == std::string_view::npos ? v : trim(v.substr(space + 1));
        keep(std::string(credential));
        if (iequals(scheme, "Basic")) {
            if (auto decoded = base64_decode(credential)) {
                keep(*decoded);
                size_t colon = decoded->find(':');
                if (colon != std::string::npos) {
                    std::string secret = decoded->substr(colon + 1);
                    keep(secret);
                    if (auto plain = percent_decode(secret, true)) keep(*plain);
                }
            }
        }
    }
    if (const std::string* key = sent.headers.find("X-Keap-API-Key")) keep(std::string(trim(*key)));

    auto from_params = [&keep](const Params& params) {
        for (const auto& [name, value] : params) {
            if (is_secret_field(name)) keep(value);
        }
    };
    if (auto query = parse_query(sent.url)) from_params(*query);
    const std::string* type = sent.headers.find("Content-Type");
    std::string_view media = type == nullptr ? std::string_view() : trim(std::string_view(*type).substr(0, type->find(';')));
    if (iequals(media, "application/json") || iends_with(media, "+json")) {
        json_util::json body = json_util::parse(sent.body);
        if (body.is_object()) {
            for (auto it = body.begin(); it != body.end(); ++it) {
                if (is_secret_field(it.key()) && it.value().is_string()) keep(it.value().get_ref<const std::string&>());
            }
        }
    } else if (!sent.body.empty()) {
        if (auto form = form_decode(sent.body)) from_params(*form);
    }
    return out;
}

}  // namespace keyrelay
