#include "keyrelay/http.h"

#include <cstddef>

namespace keyrelay {
namespace {

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

constexpr char kHex[] = "0123456789ABCDEF";

void append_pct(std::string& out, unsigned char c) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 0x0F];
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64_with(std::string_view bytes, const char* alphabet, bool pad) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint32_t(uint8_t(bytes[i + 2]));
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    size_t rest = bytes.size() - i;
    if (rest == 1) {
        uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

Error bad_percent(std::string_view s, size_t at) {
    std::string shown(s.substr(at, 3));
    return make_error("http.bad_percent_encoding",
                      "'%' at position " + std::to_string(at) + " is not followed by two hex digits (\"" + shown +
                          "\").",
                      "A literal '%' must be sent as %25 (RFC 3986 §2.1); percent-encode values before putting them "
                      "in a URL or a form body.");
}

Error bad_url(std::string_view url, std::string message, std::string hint) {
    std::string shown(url.substr(0, 200));
    return make_error("http.bad_url", "Invalid URL \"" + shown + "\": " + std::move(message), std::move(hint));
}

}  // namespace

// ---------------------------------------------------------------- headers

Headers::Headers(std::initializer_list<std::pair<std::string, std::string>> init) {
    for (const auto& [name, value] : init) items_.emplace_back(name, value);
}

std::optional<std::string> Headers::get(std::string_view name) const {
    for (const auto& [n, v] : items_) {
        if (iequals(n, name)) return v;
    }
    return std::nullopt;
}

const std::string* Headers::find(std::string_view name) const {
    for (const auto& [n, v] : items_) {
        if (iequals(n, name)) return &v;
    }
    return nullptr;
}

bool Headers::has(std::string_view name) const {
    for (const auto& item : items_) {
        if (iequals(item.first, name)) return true;
    }
    return false;
}

void Headers::set(std::string name, std::string value) {
    // Keep the position of the first occurrence so that the order of fields stays stable.
    size_t first = items_.size();
    for (size_t i = 0; i < items_.size();) {
        if (iequals(items_[i].first, name)) {
            if (first == items_.size()) {
                first = i;
                ++i;
            } else {
                items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
            }
        } else {
            ++i;
        }
    }
    if (first == items_.size()) {
        items_.emplace_back(std::move(name), std::move(value));
    } else {
        items_[first] = {std::move(name), std::move(value)};
    }
}

void Headers::add(std::string name, std::string value) { items_.emplace_back(std::move(name), std::move(value)); }

void Headers::remove(std::string_view name) {
    for (size_t i = 0; i < items_.size();) {
        if (iequals(items_[i].first, name)) {
            items_.erase(items_.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            ++i;
        }
    }
}

// ---------------------------------------------------------------- percent / form encoding

std::string percent_encode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c)) {
            out += ch;
        } else {
            append_pct(out, c);
        }
    }
    return out;
}

Result<std::string> percent_decode(std::string_view s, bool plus_as_space) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return bad_percent(s, i);
            int hi = hex_value(s[i + 1]);
            int lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0) return bad_percent(s, i);
            out += static_cast<char>((hi << 4) | lo);
            i += 2;
        } else if (c == '+' && plus_as_space) {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::string form_urlencode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == ' ') {
            out += '+';
        } else if (is_unreserved(c)) {
            out += ch;
        } else {
            append_pct(out, c);
        }
    }
    return out;
}

std::string form_encode(const Params& params) {
    std::string out;
    for (const auto& [name, value] : params) {
        if (!out.empty()) out += '&';
        out += form_urlencode(name);
        out += '=';
        out += form_urlencode(value);
    }
    return out;
}

Result<Params> form_decode(std::string_view body) {
    // WHATWG URL §5.1: split on '&', skip empty sequences, split each at the first '=', '+' is a space.
    Params out;
    size_t pos = 0;
    while (pos <= body.size()) {
        size_t amp = body.find('&', pos);
        if (amp == std::string_view::npos) amp = body.size();
        std::string_view piece = body.substr(pos, amp - pos);
        pos = amp + 1;
        if (piece.empty()) continue;
        size_t eq = piece.find('=');
        std::string_view raw_name = piece.substr(0, eq);
        std::string_view raw_value = eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1);
        auto name = percent_decode(raw_name, true);
        if (!name) return name.error();
        auto value = percent_decode(raw_value, true);
        if (!value) return value.error();
        out.emplace_back(std::move(name).value(), std::move(value).value());
    }
    return out;
}

Result<Params> parse_query(std::string_view url_or_query) {
    std::string_view s = url_or_query;
    size_t hash = s.find('#');
    if (hash != std::string_view::npos) s = s.substr(0, hash);
    size_t q = s.find('?');
    if (q != std::string_view::npos) {
        s = s.substr(q + 1);
    } else if (s.find("://") != std::string_view::npos || (!s.empty() && s.front() == '/')) {
        s = {};   // a URL or a path without a query
    }
    return form_decode(s);
}

std::optional<std::string> param(const Params& params, std::string_view name) {
    for (const auto& [n, v] : params) {
        if (n == name) return v;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- base64

std::string base64_encode(std::string_view bytes) { return base64_with(bytes, kB64, true); }

std::string base64url_encode(std::string_view bytes) { return base64_with(bytes, kB64Url, false); }

Result<std::string> base64_decode(std::string_view text) {
    auto invalid = [](std::string message) {
        return make_error("base64.invalid", std::move(message),
                          "Expected RFC 4648 §4 base64 (A-Z a-z 0-9 + /, '=' padding). base64url text uses '-' and "
                          "'_' instead; check that the value was not truncated or URL-encoded twice.");
    };
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    size_t symbols = 0;
    size_t padding = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') continue;
        if (c == '=') {
            ++padding;
            continue;
        }
        if (padding > 0) return invalid("Data after '=' padding at position " + std::to_string(i) + ".");
        int v;
        if (c >= 'A' && c <= 'Z') {
            v = c - 'A';
        } else if (c >= 'a' && c <= 'z') {
            v = c - 'a' + 26;
        } else if (c >= '0' && c <= '9') {
            v = c - '0' + 52;
        } else if (c == '+') {
            v = 62;
        } else if (c == '/') {
            v = 63;
        } else {
            return invalid("Character '" + std::string(1, c) + "' at position " + std::to_string(i) +
                           " is not in the base64 alphabet.");
        }
        ++symbols;
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    size_t rem = symbols % 4;
    if (rem == 1) return invalid("The base64 text has a dangling symbol (length " + std::to_string(symbols) + ").");
    if (padding > 0 && (symbols + padding) % 4 != 0) {
        return invalid("Wrong '=' padding: " + std::to_string(padding) + " after " + std::to_string(symbols) +
                       " symbols.");
    }
    if (padding > 2) return invalid("Too much '=' padding.");
    return out;
}

// ---------------------------------------------------------------- URLs

Result<Url> parse_url(std::string_view url) {
    for (char ch : url) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7F) {
            return bad_url(url, "it contains a space or a control character.",
                           "Remove whitespace (often a trailing newline from a copied value) and percent-encode "
                           "spaces as %20.");
        }
    }
    size_t colon = url.find("://");
    if (colon == std::string_view::npos || colon == 0) {
        return bad_url(url, "it has no scheme.", "Use an absolute URL such as https://api.infusionsoft.com/crm/rest.");
    }
    Url out;
    out.scheme = to_lower(url.substr(0, colon));
    if (out.scheme != "http" && out.scheme != "https") {
        return bad_url(url, "the scheme \"" + out.scheme + "\" is not http or https.",
                       "Use an https:// URL (or http:// for a local sandbox).");
    }
    std::string_view rest = url.substr(colon + 3);
    size_t hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    std::string_view tail = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    if (authority.find('@') != std::string_view::npos) {
        return bad_url(url, "it carries user credentials before '@'.",
                       "Do not put credentials in a URL; send them in an Authorization header instead.");
    }
    std::string_view host;
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        // RFC 3986 §3.2.2: an IPv6 literal is enclosed in brackets.
        size_t close = authority.find(']');
        if (close == std::string_view::npos) {
            return bad_url(url, "the IPv6 address has no closing ']'.", "Write IPv6 hosts as https://[::1]:8443/.");
        }
        host = authority.substr(0, close + 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return bad_url(url, "unexpected text after the IPv6 address.", "Write IPv6 hosts as https://[::1]:8443/.");
            }
            port_text = after.substr(1);
            if (port_text.empty()) return bad_url(url, "the port after ':' is empty.", "Remove the ':' or add a port.");
        }
    } else {
        size_t pc = authority.find(':');
        host = authority.substr(0, pc);
        if (pc != std::string_view::npos) {
            port_text = authority.substr(pc + 1);
            if (port_text.empty()) return bad_url(url, "the port after ':' is empty.", "Remove the ':' or add a port.");
        }
    }
    if (host.empty()) {
        return bad_url(url, "it has no host.", "Write the host after the scheme, e.g. https://api.infusionsoft.com/.");
    }
    out.host = to_lower(host);
    if (!port_text.empty()) {
        int port = 0;
        for (char c : port_text) {
            if (c < '0' || c > '9' || port > 65535) {
                port = -1;
                break;
            }
            port = port * 10 + (c - '0');
        }
        if (port <= 0 || port > 65535) {
            return bad_url(url, "the port \"" + std::string(port_text) + "\" is not a number from 1 to 65535.",
                           "Check the port after the host.");
        }
        out.port = port;
    } else {
        out.port = out.scheme == "https" ? 443 : 80;
    }
    size_t q = tail.find('?');
    std::string_view path = tail.substr(0, q);
    out.path = path.empty() ? "/" : std::string(path);
    if (q != std::string_view::npos) out.query = std::string(tail.substr(q + 1));
    return out;
}

std::string join_url(std::string_view base, std::string_view path) {
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);
    std::string out;
    out.reserve(base.size() + path.size() + 1);
    out.append(base);
    if (path.empty()) return out.empty() ? std::string("/") : out;
    if (path.front() == '?' || path.front() == '/') {
        out += path;
    } else {
        out += '/';
        out += path;
    }
    return out;
}

}  // namespace keyrelay
