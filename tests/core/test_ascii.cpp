#include <catch2/catch.hpp>

#include "keyrelay/ascii.h"

using namespace keyrelay;

TEST_CASE("ASCII case folding leaves every other byte alone", "[ascii]") {
    CHECK(to_lower("Content-TYPE: \xC3\x84") == "content-type: \xC3\x84");
    CHECK(to_upper("x-keap-\xC3\xA4") == "X-KEAP-\xC3\xA4");
    CHECK(iequals("Retry-After", "retry-after"));
    CHECK_FALSE(iequals("Retry-After", "Retry-Afte"));
    CHECK_FALSE(iequals("\xC3\x84", "\xC3\xA4"));   // Ä and ä are not ASCII
    CHECK(istarts_with("X-Forwarded-For", "x-forwarded-"));
    CHECK_FALSE(istarts_with("X-F", "x-forwarded-"));
    CHECK(iends_with("application/problem+JSON", "+json"));
    CHECK(ifind("<HTML><Title>", "<title>") == 6);
    CHECK(ifind("abc", "") == 0);
    CHECK(ifind("abc", "d") == std::string_view::npos);
    CHECK(icontains("Developer Over QPS", "over qps"));
}

TEST_CASE("trimming: any ASCII space, or only HTTP's optional whitespace", "[ascii]") {
    CHECK(trim(" \t\r\n\v\fvalue \r\n") == "value");
    CHECK(trim_ows(" \tvalue\r\n") == "value\r\n");
    CHECK(trim_end(" key\r\n") == " key");
    CHECK(trim("") == "");
    CHECK(trim("   ") == "");
    CHECK(hex_value('f') == 15);
    CHECK(hex_value('F') == 15);
    CHECK(hex_value('g') == -1);
}
