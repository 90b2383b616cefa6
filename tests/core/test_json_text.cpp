#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>

#include "keyrelay/text.h"

using keyrelay::is_json_text;

TEST_CASE("is_json_text accepts JSON texts of every kind", "[json_text]") {
    const std::string text = GENERATE(as<std::string>{},
        "{}", "[]", "0", "-0", "1.5e+10", "-12.0E-3", "true", "false", "null", "\"\"", " \t\r\n{ } \n",
        R"({"contacts":[{"id":101,"email_addresses":[{"email":"ada@example.com"}],"company":null}],"count":1})",
        R"(["\"\\\/\b\f\n\r\t", "\u00e9", "\ud83d\ude00", "\u0000"])", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "\xEF\xBB\xBF{\"bom\":1}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]", "1e-400", "18446744073709551616",
        "-9223372036854775809", "1.7976931348623157e308");
    CAPTURE(text);
    CHECK(is_json_text(text));
    CHECK(nlohmann::json::accept(text));
}

TEST_CASE("is_json_text refuses what is not one JSON text, as nlohmann::json::accept does", "[json_text]") {
    const std::string text = GENERATE(as<std::string>{},
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "1e", "+1",
        "tru", "nul", "True", "'x'", "\"unterminated", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"tab\there\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
        "{} {}", "[]]", "<html>", "{\"fault\":{}}x", "NaN", "[1,,2]", "\xEF\xBB{}", "2428E422", "-1e400",
        "[1" + std::string(400, '0') + "]");
    CAPTURE(text);
    CHECK_FALSE(is_json_text(text));
    CHECK_FALSE(nlohmann::json::accept(text));
}

TEST_CASE("is_json_text refuses a NUL byte after a value, which nlohmann::json::accept takes for the end", "[json_text]") {
    const std::string text("{\"a\":1}\0{garbage", 16);
    CHECK_FALSE(is_json_text(text));
    CHECK(nlohmann::json::accept(text));
}

TEST_CASE("is_json_text handles nesting far deeper than any API answer without recursion", "[json_text]") {
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK(is_json_text(deep));
    CHECK_FALSE(is_json_text(std::string(100000, '[') + std::string(99999, ']')));
}
