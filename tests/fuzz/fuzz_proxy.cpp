// The relay's proxy guard: validate_path on whatever a caller puts after /proxy/{provider}/, then allowed().
// Properties of an accepted path (RFC 3986 §3.3, §5.2.4):
//  - it starts with '/', has no empty segment, and no segment that decodes to "." or ".." (also "..;x");
//  - its path has no encoded '/' or '\' (%2F %5C) and no '\'; decoded once, it holds no further escape
//    (double encoding, "%252F" or "%25%32%46", would let a second decoder see a '/');
//  - nothing in it is a control character, a space or '#' (no CR/LF request splitting);
//  - it re-validates to itself (normalizing twice changes nothing).
// allowed(): the relay's real Keap and Jira rules, plus rules built from the path itself, which must match it.
#include <vector>

#include "fuzz_common.h"
#include "keyrelay/proxy.h"

using namespace keyrelay;
using proxy::Rule;

namespace {

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::vector<std::string_view> segments_of(std::string_view path) {
    std::vector<std::string_view> out;
    path.remove_prefix(1);
    for (;;) {
        const size_t slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) return out;
        path.remove_prefix(slash + 1);
    }
}

void check_segment(std::string_view seg, const std::string& out) {
    FUZZ_CHECK(!seg.empty(), "an empty segment in " + out);
    std::string decoded;
    for (size_t i = 0; i < seg.size(); ++i) {
        FUZZ_CHECK(seg[i] != '\\', "a backslash in " + out);
        if (seg[i] != '%') {
            decoded += seg[i];
            continue;
        }
        FUZZ_CHECK(i + 2 < seg.size() && hex(seg[i + 1]) >= 0 && hex(seg[i + 2]) >= 0, "a bad escape in " + out);
        const char byte = char(hex(seg[i + 1]) * 16 + hex(seg[i + 2]));
        FUZZ_CHECK(byte != '/' && byte != '\\', "an encoded '/' or '\\' in " + out);
        FUZZ_CHECK(!fuzz::has_control(std::string_view(&byte, 1)), "an encoded control character in the path " + out);
        decoded += byte;
        i += 2;
    }
    // Decoded once, the segment holds no escape a second decoding would turn into something else.
    for (size_t i = 0; i + 2 < decoded.size(); ++i) {
        FUZZ_CHECK(decoded[i] != '%' || hex(decoded[i + 1]) < 0 || hex(decoded[i + 2]) < 0,
                   "double encoding survives in " + out);
    }
    const std::string bare = decoded.substr(0, decoded.find(';'));
    FUZZ_CHECK(bare != "." && bare != "..", "a dot-segment in " + out);
}

const std::vector<Rule>& relay_rules() {
    static const std::vector<Rule> rules = {
        {"GET", "/crm/rest/v1/contacts"},        {"POST", "/crm/rest/v1/contacts"},
        {"GET", "/crm/rest/v1/contacts/*"},      {"PATCH", "/crm/rest/v1/contacts/*"},
        {"GET", "/crm/rest/v1/oauth/connect/userinfo"},
        {"GET", "/crm/rest/v2/contacts"},        {"GET", "/crm/rest/v2/contacts/*"},
        {"PATCH", "/crm/rest/v2/contacts/*"},    {"POST", "/crm/xmlrpc/v1"},
        {"*", "/crm/xmlrpc/**"},                 {"GET", "/rest/api/3/user/search"},
        {"GET", "/rest/api/3/myself"},           {"GET", "/rest/api/2/user/search"},
    };
    return rules;
}

void check_allowed(const std::string& out) {
    const std::string path = out.substr(0, out.find('?'));
    for (const char* method : {"GET", "POST", "PATCH", "DELETE", "get"}) {
        const bool ok = proxy::allowed(relay_rules(), method, out);
        FUZZ_CHECK(ok == proxy::allowed(relay_rules(), method, path), "the query changed the allowlist decision");
        if (ok) {
            FUZZ_CHECK(path.rfind("/crm/", 0) == 0 || path.rfind("/rest/api/", 0) == 0,
                       "allowed outside the API prefixes: " + out);
        }
    }
    // Rules derived from the path: the exact pattern, one '*' per segment, "/**" and a proper prefix.
    // A literal "**" segment in the path would be read as the wildcard once the path is made a pattern.
    const auto segs = segments_of(path);
    for (auto seg : segs) {
        if (seg == "**") return;
    }
    std::string stars;
    for (size_t i = 0; i < segs.size(); ++i) stars += "/*";
    FUZZ_CHECK(proxy::allowed({{"GET", path}}, "GET", out), "an exact rule does not match " + out);
    FUZZ_CHECK(proxy::allowed({{"*", stars}}, "DELETE", out), "a '*' rule does not match " + out);
    FUZZ_CHECK(proxy::allowed({{"*", "/**"}}, "PUT", out), "\"/**\" does not match " + out);
    FUZZ_CHECK(!proxy::allowed({{"POST", path}}, "GET", out), "a POST rule allowed GET " + out);
    FUZZ_CHECK(!proxy::allowed({{"GET", path + "/x"}}, "GET", out), "a longer rule matched " + out);
    if (segs.size() > 1) {
        const std::string parent = path.substr(0, path.rfind('/'));
        FUZZ_CHECK(!proxy::allowed({{"GET", parent}}, "GET", out), "a parent rule matched " + out);
        FUZZ_CHECK(proxy::allowed({{"GET", parent + "/**"}}, "GET", out), "parent/** does not match " + out);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view raw = fuzz::text(data, size);
    auto v = proxy::validate_path(raw);
    if (!v) {
        fuzz::check_error(v.error(), "validate_path");
        FUZZ_CHECK(v.error().code == "proxy.bad_path", "validate_path: " + v.error().code);
        FUZZ_CHECK(!fuzz::has_control(v.error().message), "a control character in the error message (log injection)");
        return 0;
    }
    const std::string& out = *v;
    FUZZ_CHECK(!out.empty() && out.front() == '/', "does not start with '/': " + out);
    FUZZ_CHECK(!fuzz::has_control(out), "a control character in " + out);
    FUZZ_CHECK(out.find_first_of(" #") == std::string::npos, "a space or '#' in " + out);
    const std::string path = out.substr(0, out.find('?'));
    for (auto seg : segments_of(path)) check_segment(seg, out);
    auto again = proxy::validate_path(out);
    FUZZ_CHECK(again && *again == out, "validate_path is not idempotent on " + out);
    check_allowed(out);
    return 0;
}
