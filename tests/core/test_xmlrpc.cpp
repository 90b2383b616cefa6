#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "core/fixtures.h"
#include "keyrelay/xmlrpc.h"

using keyrelay::xmlrpc::Array;
using keyrelay::xmlrpc::Limits;
using keyrelay::xmlrpc::Struct;
using keyrelay::xmlrpc::Value;
namespace xmlrpc = keyrelay::xmlrpc;

namespace Catch {
template <>
struct StringMaker<Value> {
    static std::string convert(const Value& v) { return xmlrpc::encode_response(v); }
};
}  // namespace Catch

namespace {

std::string fixture(const std::string& name) { return fixtures::read("xmlrpc/" + name); }

// A methodResponse whose single value is `inner` (the content of <value>...</value>).
std::string response_with(const std::string& inner) {
    return "<?xml version=\"1.0\"?>\n<methodResponse><params><param><value>" + inner +
           "</value></param></params></methodResponse>\n";
}

Value nested_arrays(int levels) {
    Value v = Value::integer(1);
    for (int i = 1; i < levels; ++i) v = Value::array_of({v});
    return v;
}

std::string error_code(std::string_view body, const Limits& limits = {}) {
    auto r = xmlrpc::decode_response(body, limits);
    return r ? std::string("ok") : r.error().code;
}

std::string error_message(std::string_view body, const Limits& limits = {}) {
    auto r = xmlrpc::decode_response(body, limits);
    return r ? std::string("ok") : r.error().message;
}

}  // namespace

// ------------------------------------------------------------------------------------------------- round trips

TEST_CASE("every kind of value survives encode_response and decode_response unchanged", "[xmlrpc]") {
    const std::string binary("\x00\x01\xff\xfe binary\r\n", 13);
    const Value v = GENERATE_COPY(values<Value>({
        Value::nil(),
        Value::integer(0),
        Value::integer(-1),
        Value::integer(std::numeric_limits<int32_t>::max()),
        Value::integer(std::numeric_limits<int32_t>::min()),
        Value::integer(int64_t(std::numeric_limits<int32_t>::max()) + 1),
        Value::integer(std::numeric_limits<int64_t>::max()),
        Value::integer(std::numeric_limits<int64_t>::min()),
        Value::boolean(true),
        Value::boolean(false),
        Value::string(""),
        Value::string("   "),
        Value::string("plain"),
        Value::string("<tag> & \"quotes\" 'apostrophes' ]]> <![CDATA[x]]>"),
        Value::string("line one\nline two\r\nCR alone\r tab\t"),
        Value::string("Jos\xc3\xa9 Mu\xc3\xb1oz \xe2\x82\xac \xf0\x9f\x98\x80"),
        Value::double_(0.0),
        Value::double_(-0.0),
        Value::double_(0.1),
        Value::double_(-12.214),
        Value::double_(1.0 / 3.0),
        Value::double_(0.1 + 0.2),
        Value::double_(1e300),
        Value::double_(-1.7976931348623157e308),
        Value::double_(5e-324),
        Value::double_(123456789012345680.0),
        Value::datetime("20260102T03:04:05"),
        Value::datetime("2026-01-02T03:04:05Z"),
        Value::base64(""),
        Value::base64(binary),
        Value::array_of({}),
        Value::array_of({Value::integer(1), Value::string("two"), Value::nil(), Value::array_of({Value::boolean(true)})}),
        Value::struct_of({}),
        Value::struct_of({{"FirstName", Value::string("Ada")},
                          {"Id", Value::integer(101)},
                          {"a & <b>", Value::struct_of({{"", Value::double_(2.5)}})},
                          {"Id", Value::integer(102)}}),
        nested_arrays(64),
    }));
    const std::string xml = xmlrpc::encode_response(v);
    auto decoded = xmlrpc::decode_response(xml);
    REQUIRE(decoded.ok());
    CHECK_FALSE(decoded->is_fault);
    CHECK(decoded->value == v);
    if (v.type == Value::Type::double_) CHECK(std::signbit(decoded->value.d) == std::signbit(v.d));

    auto call = xmlrpc::decode_call(xmlrpc::encode_call("DataService.query", {Value::string("key"), v}));
    REQUIRE(call.ok());
    CHECK(call->method == "DataService.query");
    REQUIRE(call->params.size() == 2);
    CHECK(call->params[1] == v);
}

TEST_CASE("integers are written as <int> inside the 32-bit range and as <i8> outside it", "[xmlrpc]") {
    auto [value, element] = GENERATE(table<int64_t, std::string>({
        {0, "<int>0</int>"},
        {2147483647, "<int>2147483647</int>"},
        {-2147483648LL, "<int>-2147483648</int>"},
        {2147483648LL, "<i8>2147483648</i8>"},
        {-2147483649LL, "<i8>-2147483649</i8>"},
        {std::numeric_limits<int64_t>::min(), "<i8>-9223372036854775808</i8>"},
    }));
    CHECK(xmlrpc::encode_response(Value::integer(value)).find("<value>" + element + "</value>") != std::string::npos);
}

TEST_CASE("doubles are written in plain decimal notation with round-trip precision", "[xmlrpc]") {
    auto [value, text] = GENERATE(table<double, std::string>({
        {0.0, "0.0"},
        {-0.0, "-0.0"},
        {3.0, "3.0"},
        {0.1, "0.1"},
        {-12.214, "-12.214"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e20, "100000000000000000000.0"},
        {1e-7, "0.0000001"},
        {123.456e-2, "1.23456"},
    }));
    CHECK(xmlrpc::encode_response(Value::double_(value)).find("<double>" + text + "</double>") != std::string::npos);
}

TEST_CASE("NaN and infinities, which XML-RPC cannot carry, are sent as strings", "[xmlrpc]") {
    auto [value, text] = GENERATE(table<double, std::string>({
        {std::numeric_limits<double>::quiet_NaN(), "NaN"},
        {std::numeric_limits<double>::infinity(), "Infinity"},
        {-std::numeric_limits<double>::infinity(), "-Infinity"},
    }));
    auto decoded = xmlrpc::decode_response(xmlrpc::encode_response(Value::double_(value)));
    REQUIRE(decoded.ok());
    CHECK(decoded->value == Value::string(text));
}

// ------------------------------------------------------------------------------------------------- encoder

TEST_CASE("encode_call writes a methodCall document with escaped names and values", "[xmlrpc]") {
    SECTION("DataService.getUserInfo takes no parameters") {
        CHECK(xmlrpc::encode_call("DataService.getUserInfo", {}) ==
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall><methodName>DataService.getUserInfo"
              "</methodName><params></params></methodCall>\n");
    }
    SECTION("ContactService.update with a key, an id and a struct") {
        CHECK(xmlrpc::encode_call("ContactService.update",
                                  {Value::string("key"), Value::integer(4393),
                                   Value::struct_of({{"FirstName", Value::string("Ben & Jerry <3")}})}) ==
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall><methodName>ContactService.update</methodName>"
              "<params><param><value><string>key</string></value></param><param><value><int>4393</int></value>"
              "</param><param><value><struct><member><name>FirstName</name><value><string>Ben &amp; Jerry &lt;3"
              "</string></value></member></struct></value></param></params></methodCall>\n");
    }
}

TEST_CASE("the encoder escapes markup and drops characters that XML 1.0 cannot carry", "[xmlrpc]") {
    auto [input, written, read_back] = GENERATE(table<std::string, std::string, std::string>({
        {"a<b>&\"c'", "a&lt;b&gt;&amp;&quot;c&apos;", "a<b>&\"c'"},
        {"vertical\x0btab", "verticaltab", "verticaltab"},
        {std::string("nul\0byte", 8), "nulbyte", "nulbyte"},
        {"esc\x1b[0m", "esc[0m", "esc[0m"},
        {"cr\rlf", "cr&#13;lf", "cr\rlf"},
        {"latin1 caf\xe9!", "latin1 caf!", "latin1 caf!"},
        {"noncharacter \xef\xbf\xbe.", "noncharacter .", "noncharacter ."},
        {"surrogate \xed\xa0\x80.", "surrogate .", "surrogate ."},
        {"kept \x7f \xc2\x85 \xe2\x80\xa8", "kept \x7f \xc2\x85 \xe2\x80\xa8", "kept \x7f \xc2\x85 \xe2\x80\xa8"},
    }));
    const std::string xml = xmlrpc::encode_response(Value::string(input));
    CHECK(xml.find("<string>" + written + "</string>") != std::string::npos);
    auto decoded = xmlrpc::decode_response(xml);
    REQUIRE(decoded.ok());
    CHECK(decoded->value.s == read_back);
}

TEST_CASE("encode_fault writes a fault that decodes back to its code and string", "[xmlrpc]") {
    const std::string xml = xmlrpc::encode_fault(2, "[FailedLoginAttempt]Invalid <username> & password.");
    CHECK(xml.find("<fault><value><struct><member><name>faultCode</name><value><int>2</int></value></member>") !=
          std::string::npos);
    auto decoded = xmlrpc::decode_response(xml);
    REQUIRE(decoded.ok());
    CHECK(decoded->is_fault);
    CHECK(decoded->fault.code == 2);
    CHECK(decoded->fault.string == "[FailedLoginAttempt]Invalid <username> & password.");
}

// ------------------------------------------------------------------------------------------------- decoding values

TEST_CASE("every XML-RPC type is decoded from the forms servers write", "[xmlrpc]") {
    auto [inner, expected] = GENERATE(table<std::string, Value>({
        {"<int>42</int>", Value::integer(42)},
        {"<i4>-7</i4>", Value::integer(-7)},
        {"<int>+12</int>", Value::integer(12)},
        {"<int> 42 </int>", Value::integer(42)},
        {"<i8>9007199254740993</i8>", Value::integer(9007199254740993LL)},
        {"<ex:i8>-9223372036854775808</ex:i8>", Value::integer(std::numeric_limits<int64_t>::min())},
        {"<boolean>1</boolean>", Value::boolean(true)},
        {"<boolean>0</boolean>", Value::boolean(false)},
        {"<string>a &lt; b &amp;&amp; c &gt; d &quot;&apos;</string>", Value::string("a < b && c > d \"'")},
        {"<string/>", Value::string("")},
        {"<string></string>", Value::string("")},
        {"bare text", Value::string("bare text")},
        {"  spaces kept  ", Value::string("  spaces kept  ")},
        {"   ", Value::string("   ")},
        {"", Value::string("")},
        {"  <string> inner spaces </string>  ", Value::string(" inner spaces ")},
        {"<string>&#65;&#x42;&#x1F600;&#233;</string>", Value::string("AB\xf0\x9f\x98\x80\xc3\xa9")},
        {"<string><![CDATA[<b>&amp;</b>]]> tail</string>", Value::string("<b>&amp;</b> tail")},
        {"<string>before<!-- a comment -->after</string>", Value::string("beforeafter")},
        {"<string>crlf\r\nlone cr\rend</string>", Value::string("crlf\nlone cr\nend")},
        {"<string>a]b]]c</string>", Value::string("a]b]]c")},
        {"<double>-12.214</double>", Value::double_(-12.214)},
        {"<double>1e3</double>", Value::double_(1000.0)},
        {"<double>.5</double>", Value::double_(0.5)},
        {"<double>7.</double>", Value::double_(7.0)},
        {"<dateTime.iso8601>20260102T03:04:05</dateTime.iso8601>", Value::datetime("20260102T03:04:05")},
        {"<dateTime.iso8601>2026-01-02T03:04:05.123-05:00</dateTime.iso8601>",
         Value::datetime("2026-01-02T03:04:05.123-05:00")},
        {"<base64>aGVs\n  bG8=</base64>", Value::base64("hello")},
        {"<base64></base64>", Value::base64("")},
        {"<nil/>", Value::nil()},
        {"<ex:nil/>", Value::nil()},
        {"<nil></nil>", Value::nil()},
        {"<array><data/></array>", Value::array_of({})},
        {"<array></array>", Value::array_of({})},
        {"<array>\n <data>\n  <value><i4>1</i4></value>\n  <value>two</value>\n  <value/>\n </data>\n</array>",
         Value::array_of({Value::integer(1), Value::string("two"), Value::string("")})},
        {"<struct/>", Value::struct_of({})},
        {"<struct><member><name>a b</name><value><boolean>1</boolean></value></member>"
         "<member><name></name><value/></member></struct>",
         Value::struct_of({{"a b", Value::boolean(true)}, {"", Value::string("")}})},
    }));
    auto decoded = xmlrpc::decode_response(response_with(inner));
    INFO(inner);
    REQUIRE(decoded.ok());
    CHECK(decoded->value == expected);
}

TEST_CASE("<value/> and <value></value> are empty strings", "[xmlrpc]") {
    const std::string body = GENERATE(
        std::string("<methodResponse><params><param><value/></param></params></methodResponse>"),
        std::string("<methodResponse><params><param><value></value></param></params></methodResponse>"));
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE(decoded.ok());
    CHECK(decoded->value == Value::string(""));
}

TEST_CASE("values that break the XML-RPC rules are invalid and the message says why", "[xmlrpc]") {
    auto [inner, why] = GENERATE(table<std::string, std::string>({
        {"<int>2147483648</int>", "\"2147483648\" is not a valid <int>: it is outside the 32-bit range (use <i8>)"},
        {"<i4>-2147483649</i4>", "is outside the 32-bit range"},
        {"<i8>9223372036854775808</i8>", "\"9223372036854775808\" is not a valid <i8>"},
        {"<int>abc</int>", "\"abc\" is not a valid <int>"},
        {"<int></int>", "\"\" is not a valid <int>"},
        {"<int>1.5</int>", "\"1.5\" is not a valid <int>"},
        {"<boolean>true</boolean>", "\"true\" is not a valid <boolean> (0 or 1)"},
        {"<boolean>2</boolean>", "is not a valid <boolean>"},
        {"<double>inf</double>", "\"inf\" is not a valid <double>"},
        {"<double>nan</double>", "is not a valid <double>"},
        {"<double>1e400</double>", "is not a valid <double>"},
        {"<double>.</double>", "is not a valid <double>"},
        {"<double>0x10</double>", "is not a valid <double>"},
        {"<dateTime.iso8601>yesterday</dateTime.iso8601>", "\"yesterday\" is not a valid <dateTime.iso8601>"},
        {"<dateTime.iso8601>20261302T03:04:05</dateTime.iso8601>", "is not a valid <dateTime.iso8601>"},
        {"<base64>!!!!</base64>", "<base64> does not hold base64"},
        {"<float>1.5</float>", "unknown type <float> inside <value>"},
        {"<nil>x</nil>", "<nil/> must be empty"},
        {"text<int>1</int>", "text \"text\" and the element <int> are mixed inside <value>"},
        {"<int>1</int><int>2</int>", "expected </value>, found <int>"},
        {"<string><b>bold</b></string>", "unexpected <b> inside <string>"},
        {"<struct><member><value>1</value></member></struct>", "expected <name> inside <member>, found <value>"},
        {"<struct><member><name>a</name></member></struct>", "expected <value> inside <member>, found </member>"},
        {"<struct>loose</struct>", "unexpected text \"loose\" inside <struct>"},
        {"<struct><value/></struct>", "expected <member> or </struct>, found <value>"},
        {"<array><value>1</value></array>", "expected <data> inside <array>, found <value>"},
        {"<array><data><int>1</int></data></array>", "expected <value> or </data>, found <int>"},
    }));
    INFO(inner);
    auto decoded = xmlrpc::decode_response(response_with(inner));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.invalid");
    CHECK_THAT(decoded.error().message, Catch::Contains("invalid XML-RPC at line 2, column "));
    CHECK_THAT(decoded.error().message, Catch::Contains(why));
    CHECK_FALSE(decoded.error().hint.empty());
}

TEST_CASE("a methodResponse must carry exactly one param or one fault", "[xmlrpc]") {
    auto [body, why] = GENERATE(table<std::string, std::string>({
        {"<methodResponse></methodResponse>", "<methodResponse> has neither <params> nor <fault>"},
        {"<methodResponse/>", "<methodResponse> has neither <params> nor <fault>"},
        {"<methodResponse><params></params></methodResponse>", "<params> is empty"},
        {"<methodResponse><params><param><value>1</value></param><param><value>2</value></param></params>"
         "</methodResponse>",
         "a second <param>"},
        {"<methodResponse><params><param><value>1</value></param></params><fault><value><struct/></value></fault>"
         "</methodResponse>",
         "expected </methodResponse>, found <fault>"},
        {"<methodResponse><result>1</result></methodResponse>",
         "expected <params> or <fault> inside <methodResponse>, found <result>"},
        {"<methodResponse><params><param></param></params></methodResponse>",
         "expected <value> inside <param>, found </param>"},
        {"<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member>"
         "</struct></value></fault></methodResponse>",
         "a <fault> must hold a struct with an int faultCode and a string faultString"},
        {"<methodResponse><fault><value><struct><member><name>faultCode</name><value>4</value></member>"
         "<member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>",
         "a <fault> must hold a struct with an int faultCode"},
        {"<methodResponse><fault><value><string>oops</string></value></fault></methodResponse>",
         "a <fault> must hold a struct"},
    }));
    INFO(body);
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.invalid");
    CHECK_THAT(decoded.error().message, Catch::Contains(why));
}

TEST_CASE("a structure error in a document that is also not well-formed is reported as malformed", "[xmlrpc]") {
    // The unknown <foo> comes first, but the body is cut off: the truncation is the real story.
    const std::string body = "<methodResponse><params><param><value><foo>1</foo></value></param></par";
    CHECK(error_code(body) == "xmlrpc.malformed");
    CHECK_THAT(error_message(body), Catch::Contains("(truncated?)"));
}

// ------------------------------------------------------------------------------------------------- Keap bodies

TEST_CASE("Keap's faults come back as faults with their code and string, not as errors", "[xmlrpc][keap]") {
    auto [file, code, text] = GENERATE(table<std::string, int64_t, std::string>({
        {"fault_invalid_config.xml", 8,
         "[InvalidConfig]Invalid Configuration: for help setting up your API, please contact Support"},
        {"fault_failed_login.xml", 2, "[FailedLoginAttempt]Invalid username and/or password."},
        {"fault_no_such_handler.xml", 0, "No such handler: ContactService.Update"},
        {"fault_premature_eof.xml", 0, "Failed to parse XML-RPC request: Premature end of file."},
    }));
    auto decoded = xmlrpc::decode_response(fixture(file));
    REQUIRE(decoded.ok());
    CHECK(decoded->is_fault);
    CHECK(decoded->fault.code == code);
    CHECK(decoded->fault.string == text);
}

TEST_CASE("a DataService.query response decodes into one struct per contact", "[xmlrpc][keap]") {
    auto decoded = xmlrpc::decode_response(fixture("query_contacts.xml"));
    REQUIRE(decoded.ok());
    REQUIRE_FALSE(decoded->is_fault);
    const Value& rows = decoded->value;
    REQUIRE(rows.type == Value::Type::array);
    REQUIRE(rows.array.size() == 4);

    const Value& ada = rows.array[0];
    CHECK(ada.get("Id")->i == 101);
    CHECK(ada.get("FirstName")->s == "Ada");
    CHECK(ada.get("Email")->s == "ada@example.com");
    CHECK(ada.get("Company")->s == "Lovelace & Babbage");
    CHECK(*ada.get("DateCreated") == Value::datetime("20240115T09:30:00"));
    CHECK(ada.get("Groups")->s == "91,93");
    REQUIRE(ada.members.size() == 7);
    CHECK(ada.members[0].first == "Id");   // document order kept

    const Value& ben = rows.array[1];
    CHECK(ben.get("Id")->i == 4393);
    CHECK(ben.get("Company")->s == "<Anderson> & Sons");
    CHECK(*ben.get("Groups") == Value::string(""));

    const Value& paul = rows.array[2];
    CHECK(paul.get("LastName")->s == "Grover");
    CHECK(paul.get("Company") == nullptr);

    const Value& jose = rows.array[3];
    CHECK(jose.get("FirstName")->s == "Jos\xc3\xa9");
    CHECK(jose.get("LastName")->s == "Mu\xc3\xb1oz");
    CHECK(jose.get("Id")->type == Value::Type::integer);
    CHECK(jose.get("Missing") == nullptr);
    CHECK(Value::string("not a struct").get("Id") == nullptr);
}

TEST_CASE("a DataService.getUserInfo response decodes into the user's struct", "[xmlrpc][keap]") {
    auto decoded = xmlrpc::decode_response(fixture("get_user_info.xml"));
    REQUIRE(decoded.ok());
    const Value& info = decoded->value;
    CHECK(info.get("globalUserId")->i == 412345);
    CHECK(info.get("localUserId")->i == 1);
    CHECK(info.get("appAlias")->s == "ab123");
    CHECK(info.get("appUrl")->s == "https://ab123.infusionsoft.com");
    CHECK(info.get("displayName")->s == "Demo Admin");
    CHECK(info.get("casUsername")->s == "admin@example.com");
}

TEST_CASE("a 1,000-contact query response decodes completely", "[xmlrpc][keap]") {
    Array rows;
    for (int i = 0; i < 1000; ++i) {
        rows.push_back(Value::struct_of({{"Id", Value::integer(i)},
                                         {"FirstName", Value::string("First" + std::to_string(i))},
                                         {"LastName", Value::string("O'Last & Co <" + std::to_string(i) + ">")},
                                         {"Email", Value::string("c" + std::to_string(i) + "@example.com")},
                                         {"DateCreated", Value::datetime("20260102T03:04:05")}}));
    }
    const Value all = Value::array_of(rows);
    auto decoded = xmlrpc::decode_response(xmlrpc::encode_response(all));
    REQUIRE(decoded.ok());
    CHECK(decoded->value == all);
}

TEST_CASE("an ISO-8859-1 document from an old server is read as that encoding", "[xmlrpc]") {
    auto decoded = xmlrpc::decode_response(fixture("latin1_response.xml"));
    REQUIRE(decoded.ok());
    CHECK(decoded->value.s == "Caf\xc3\xa9 M\xc3\xbcller");
}

TEST_CASE("namespace declarations and Apache's ex: extension types are accepted", "[xmlrpc]") {
    auto decoded = xmlrpc::decode_response(
        "<?xml version='1.0' encoding='utf-8' standalone='yes'?>\n"
        "<methodResponse xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\">"
        "<params><param><value><array><data><value><ex:nil/></value><value><ex:i8>5000000000</ex:i8></value>"
        "</data></array></value></param></params></methodResponse>");
    REQUIRE(decoded.ok());
    CHECK(decoded->value == Value::array_of({Value::nil(), Value::integer(5000000000LL)}));
}

// ------------------------------------------------------------------------------------------------- not XML-RPC

TEST_CASE("an HTML error page is reported as not a methodResponse, naming <html>", "[xmlrpc]") {
    const std::string file = GENERATE(as<std::string>{}, "bad_gateway_502.html", "service_unavailable_503.html");
    auto decoded = xmlrpc::decode_response(fixture(file));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.not_method_response");
    CHECK_THAT(decoded.error().message, Catch::Contains("the root element is <html>, not <methodResponse>"));
    CHECK_THAT(decoded.error().hint, Catch::Contains("HTML page"));
}

TEST_CASE("the old gateway's <h1>Developer Inactive</h1> is reported as not a methodResponse", "[xmlrpc][keap]") {
    const std::string file = GENERATE(as<std::string>{}, "developer_inactive.html", "developer_over_qps.html");
    auto decoded = xmlrpc::decode_response(fixture(file));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.not_method_response");
    CHECK(decoded.error().message == "the root element is <h1>, not <methodResponse>");
    CHECK_THAT(decoded.error().hint, Catch::Contains("Developer Inactive"));
}

TEST_CASE("the root element decides even when the rest is broken or not UTF-8", "[xmlrpc]") {
    auto [body, root] = GENERATE(table<std::string, std::string>({
        {"<html><body>caf\xe9 \x01 <br></body>", "<html>"},
        {"<HTML", "<HTML>"},
        {"<?xml version=\"1.0\"?>\n<!-- a SOAP answer -->\n<soap:Envelope xmlns:soap=x>", "<soap:Envelope>"},
        {"<methodCall><methodName>x</methodName></methodCall>", "<methodCall>"},
        {"<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \"x.dtd\">\n<html>", "<html>"},
    }));
    INFO(body);
    CHECK(error_code(body) == "xmlrpc.not_method_response");
    CHECK_THAT(error_message(body), Catch::Contains("the root element is " + root + ", not <methodResponse>"));
}

TEST_CASE("gateway JSON where XML was expected is malformed, and the message says it looks like JSON", "[xmlrpc]") {
    const std::string file = GENERATE(as<std::string>{}, "gateway_fault.json", "gateway_rate_limit.json");
    auto decoded = xmlrpc::decode_response(fixture(file));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    CHECK(decoded.error().message ==
          "malformed XML at line 1, column 1: the body starts with '{' and looks like JSON, not XML");
    CHECK_THAT(decoded.error().hint, Catch::Contains("faultstring"));
}

TEST_CASE("plain text where XML was expected is malformed and quoted", "[xmlrpc]") {
    CHECK(error_message("\n  Developer Inactive") ==
          "malformed XML at line 2, column 3: the body is not XML: it starts with text (\"Developer Inactive\") "
          "instead of '<'");
}

TEST_CASE("an empty or whitespace-only body is reported as empty", "[xmlrpc]") {
    const std::string body = GENERATE(as<std::string>{}, "", " ", "\r\n\t \n", "\xEF\xBB\xBF\n");
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.empty");
    CHECK_FALSE(decoded.error().hint.empty());
    CHECK(xmlrpc::decode_call(body).error().code == "xmlrpc.empty");
}

// ------------------------------------------------------------------------------------------------- truncation

TEST_CASE("a truncated response is malformed and the message says the document ended early", "[xmlrpc]") {
    const std::string body = fixture("truncated_query.xml");
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    CHECK(decoded.error().message ==
          "malformed XML at line 21, column 64: unexpected end of document inside <value> (truncated?)");
    CHECK_THAT(decoded.error().hint, Catch::Contains("cut off"));
}

TEST_CASE("every prefix of a valid response is refused as truncated", "[xmlrpc]") {
    const std::string full = fixture("query_contacts.xml");
    const size_t complete = full.find("</methodResponse>") + std::string("</methodResponse>").size();
    for (size_t len = 1; len < complete; ++len) {
        auto decoded = xmlrpc::decode_response(std::string_view(full).substr(0, len));
        if (decoded.ok() || decoded.error().code != "xmlrpc.malformed" ||
            decoded.error().message.find("unexpected end of document") == std::string::npos ||
            decoded.error().message.find("(truncated?)") == std::string::npos) {
            INFO("prefix length " << len << ": " << (decoded.ok() ? "ok" : decoded.error().message));
            FAIL("a truncated body was not reported as truncated");
        }
    }
    CHECK(xmlrpc::decode_response(std::string_view(full).substr(0, complete)).ok());
}

TEST_CASE("a body cut in the middle of a UTF-8 character is reported as truncated", "[xmlrpc]") {
    CHECK(error_message("<methodResponse><params><param><value>Jos\xc3") ==
          "malformed XML at line 1, column 42: unexpected end of document in the middle of a UTF-8 character "
          "(truncated?)");
}

// ------------------------------------------------------------------------------------------------- bad characters

TEST_CASE("a vertical tab inside a string is malformed at its exact line and column", "[xmlrpc][keap]") {
    auto decoded = xmlrpc::decode_response(fixture("bad_char_vertical_tab.xml"));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    // Line 3 is `<member><name>José</name><value>Call\x0Bback`: the é counts as one column.
    CHECK(decoded.error().message ==
          "malformed XML at line 3, column 37: character U+000B is not allowed in XML");
    CHECK_THAT(decoded.error().hint, Catch::Contains("#339"));
}

TEST_CASE("characters XML 1.0 forbids and bytes that are not UTF-8 are malformed with line and column", "[xmlrpc]") {
    auto [body, message] = GENERATE(table<std::string, std::string>({
        {response_with("<string>a\x01</string>"), "line 2, column 48: character U+0001 is not allowed in XML"},
        {response_with(std::string("<string>\0</string>", 18)), "line 2, column 47: character U+0000 is not allowed in XML"},
        {response_with("<string>\x1f</string>"), "line 2, column 47: character U+001F is not allowed in XML"},
        {response_with("<string>\xef\xbf\xbf</string>"), "line 2, column 47: character U+FFFF is not allowed in XML"},
        {response_with("<string>caf\xe9</string>"), "line 2, column 50: byte 0xE9 is not valid UTF-8"},
        {response_with("<string>\xed\xa0\x80</string>"), "line 2, column 47: byte 0xED is not valid UTF-8"},
        {response_with("<string>\xc0\xaf</string>"), "line 2, column 47: byte 0xC0 is not valid UTF-8"},
        {"<methodResponse>\r\n<params>\r\n\x0b", "line 3, column 1: character U+000B"},
        {"<methodResponse>\r<params>\r\x0b", "line 3, column 1: character U+000B"},
        {"<?xml version=\"1.0\"?>\x0c<methodResponse>", "line 1, column 22: character U+000C"},
        {"<!-- \x02 --><methodResponse>", "line 1, column 6: character U+0002"},
    }));
    INFO(body);
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    CHECK_THAT(decoded.error().message, Catch::StartsWith("malformed XML at " + message));
}

// ------------------------------------------------------------------------------------------------- hostile input

TEST_CASE("DOCTYPE and entity declarations are refused, never expanded", "[xmlrpc][security]") {
    SECTION("billion laughs") {
        auto decoded = xmlrpc::decode_response(fixture("billion_laughs.xml"));
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.error().code == "xmlrpc.doctype_refused");
        CHECK_THAT(decoded.error().message, Catch::Contains("line 2, column 1"));
        CHECK_THAT(decoded.error().hint, Catch::Contains("XXE"));
    }
    SECTION("an external entity pointing at /etc/passwd") {
        auto decoded = xmlrpc::decode_response(fixture("xxe.xml"));
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.error().code == "xmlrpc.doctype_refused");
        CHECK(decoded.error().message.find("passwd") == std::string::npos);
    }
    SECTION("an entity declaration without a DOCTYPE") {
        CHECK(error_code("<!ENTITY x \"y\"><methodResponse/>") == "xmlrpc.doctype_refused");
    }
    SECTION("a DOCTYPE in a methodCall") {
        auto call = xmlrpc::decode_call("<!DOCTYPE methodCall [<!ENTITY a \"b\">]><methodCall/>");
        REQUIRE_FALSE(call.ok());
        CHECK(call.error().code == "xmlrpc.doctype_refused");
    }
    SECTION("a DOCTYPE naming another root is reported as that root") {
        CHECK(error_code("<!DOCTYPE html>\n<html><body>hi</body></html>") == "xmlrpc.not_method_response");
        CHECK(error_message("<!doctype html>") ==
              "the document declares <!DOCTYPE html>: the root element is <html>, not <methodResponse>");
    }
    SECTION("markup declarations inside an element") {
        CHECK(error_code(response_with("<string><!ENTITY x \"y\"></string>")) == "xmlrpc.malformed");
    }
}

TEST_CASE("only the five predefined entities and valid character references exist", "[xmlrpc]") {
    auto [inner, message] = GENERATE(table<std::string, std::string>({
        {"<string>&nbsp;</string>", "column 47: undefined entity &nbsp;"},
        {"<string>&xxe;</string>", "undefined entity &xxe;"},
        {"<string>AT&T</string>", "column 49: a bare '&' must be written &amp;"},
        {"<string>a & b</string>", "a bare '&' must be written &amp;"},
        {"<string>&#0;</string>", "character reference &#0; is not a valid XML character (U+0000)"},
        {"<string>&#x0B;</string>", "character reference &#x0B; is not a valid XML character (U+000B)"},
        {"<string>&#xD800;</string>", "is not a valid XML character (U+D800)"},
        {"<string>&#xFFFE;</string>", "is not a valid XML character (U+FFFE)"},
        {"<string>&#x110000;</string>", "character reference &#x110000; is not a valid XML character"},
        {"<string>&#99999999999999999999;</string>", "is not a valid XML character"},
        {"<string>&#X41;</string>", "malformed character reference"},
        {"<string>&#;</string>", "malformed character reference"},
        {"<string>&#x41</string>", "malformed character reference"},
    }));
    INFO(inner);
    auto decoded = xmlrpc::decode_response(response_with(inner));
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    CHECK_THAT(decoded.error().message, Catch::Contains(message));
}

TEST_CASE("values nested deeper than the limit are refused before they exhaust the stack", "[xmlrpc][security]") {
    SECTION("exactly at the limit is accepted, one more level is refused") {
        Limits limits;
        limits.max_depth = 3;
        CHECK(xmlrpc::decode_response(xmlrpc::encode_response(nested_arrays(3)), limits).ok());
        CHECK(error_code(xmlrpc::encode_response(nested_arrays(4)), limits) == "xmlrpc.too_deep");
        Value structs = Value::integer(1);
        for (int i = 0; i < 3; ++i) structs = Value::struct_of({{"k", structs}});
        CHECK(error_code(xmlrpc::encode_response(structs), limits) == "xmlrpc.too_deep");
    }
    SECTION("a depth bomb of 100,000 nested arrays") {
        std::string bomb = "<methodResponse><params><param>";
        for (int i = 0; i < 100000; ++i) bomb += "<value><array><data>";
        auto decoded = xmlrpc::decode_response(bomb);
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.error().code == "xmlrpc.too_deep");
        CHECK_THAT(decoded.error().message, Catch::Contains("deeper than 64 levels"));
    }
    SECTION("a depth bomb of elements that are not XML-RPC") {
        std::string bomb = "<methodResponse>";
        for (int i = 0; i < 100000; ++i) bomb += "<a>";
        CHECK(error_code(bomb) == "xmlrpc.too_deep");
    }
}

TEST_CASE("a body over the size limit is refused before it is parsed", "[xmlrpc][security]") {
    const std::string body = xmlrpc::encode_response(Value::string(std::string(200, 'x')));
    Limits limits;
    limits.max_bytes = body.size();
    CHECK(xmlrpc::decode_response(body, limits).ok());
    limits.max_bytes = body.size() - 1;
    auto decoded = xmlrpc::decode_response(body, limits);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.too_large");
    CHECK(decoded.error().message == "the body is " + std::to_string(body.size()) + " bytes, over the limit of " +
                                         std::to_string(body.size() - 1) + " bytes");
    CHECK(xmlrpc::decode_call(body, limits).error().code == "xmlrpc.too_large");
}

// ------------------------------------------------------------------------------------------------- well-formedness

TEST_CASE("documents that break XML 1.0 are malformed with line and column", "[xmlrpc]") {
    auto [body, message] = GENERATE(table<std::string, std::string>({
        {"<methodResponse>\n<params></param>", "line 2, column 9: the end tag </param> does not match the start tag <params>"},
        {"<methodResponse/><methodResponse/>", "column 18: content after the end of the root element </methodResponse>"},
        {"<methodResponse/>trailing", "column 18: text after the end of the root element </methodResponse>"},
        {"\n<?xml version=\"1.0\"?><methodResponse/>",
         "line 2, column 1: the XML declaration <?xml ...?> must be the very first thing in the document"},
        {"<?xml encoding=\"UTF-8\"?><methodResponse/>", "unexpected \"encoding\" in the XML declaration"},
        {"<?xml version=\"2.0\"?><methodResponse/>", "unsupported XML version \"2.0\""},
        {"<?xml version=\"1.0\" encoding=\"UTF-16\"?><methodResponse/>",
         "the document declares encoding \"UTF-16\"; only UTF-8 (and ISO-8859-1) is supported"},
        {"<methodResponse a=\"1\" a=\"2\"/>", "column 23: attribute a appears twice inside the start tag <methodResponse>"},
        {"<methodResponse a=1/>", "attribute values must be quoted inside the start tag <methodResponse>"},
        {"<methodResponse a=\"<\"/>", "'<' is not allowed in an attribute value"},
        {"<methodResponse a=\"&bogus;\"/>", "undefined entity &bogus;"},
        {"<methodResponse a=\"1\"b=\"2\"/>", "expected whitespace, '>' or '/>' inside the start tag <methodResponse>"},
        {"<methodResponse/ >", "expected '>' after '/' inside the start tag <methodResponse>"},
        {"<methodResponse><!-- a -- b --></methodResponse>", "column 24: '--' is not allowed inside a comment"},
        {response_with("<string>a ]]> b</string>"), "']]>' is not allowed in text"},
        {response_with("<string>1 < 2</string>"), "'<' in text must be written &lt;"},
        {"<methodResponse></ methodResponse>", "'</' is not followed by an element name"},
        {"<methodResponse></methodResponse x>", "expected '>' in the end tag </methodResponse>"},
        {"< methodResponse/>", "'<' is not followed by an element name"},
        {"<?xml version=\"1.0\"?><?xml version=\"1.0\"?><methodResponse/>", "must be the very first thing"},
        {"<methodResponse><?xml version=\"1.0\"?></methodResponse>", "must be the very first thing"},
        {"<?>", "a processing instruction needs a target name"},
    }));
    INFO(body);
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code == "xmlrpc.malformed");
    CHECK_THAT(decoded.error().message, Catch::StartsWith("malformed XML at line "));
    CHECK_THAT(decoded.error().message, Catch::Contains(message));
}

TEST_CASE("comments, processing instructions, a byte order mark and CRLF line ends are accepted", "[xmlrpc]") {
    const std::string body =
        "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<!-- served by keyrelay -->\r\n"
        "<?xml-stylesheet href=\"x.css\"?>\r\n<methodResponse>\r\n  <params><!-- one -->\r\n    <param>\r\n"
        "      <value><int>7</int></value>\r\n    </param>\r\n  </params>\r\n</methodResponse>\r\n<!-- end -->\r\n";
    auto decoded = xmlrpc::decode_response(body);
    REQUIRE(decoded.ok());
    CHECK(decoded->value == Value::integer(7));
}

// ------------------------------------------------------------------------------------------------- methodCall

TEST_CASE("decode_call reads a ContactService.add call", "[xmlrpc][sandbox]") {
    auto call = xmlrpc::decode_call(fixture("contact_add_call.xml"));
    REQUIRE(call.ok());
    CHECK(call->method == "ContactService.add");
    REQUIRE(call->params.size() == 2);
    CHECK(call->params[0] == Value::string("placeholder"));
    CHECK(call->params[1] == Value::struct_of({{"FirstName", Value::string("Grace")},
                                                {"LastName", Value::string("Hopper")},
                                                {"Email", Value::string("grace@example.com")}}));
}

TEST_CASE("decode_call accepts a call without params, as DataService.getUserInfo is sent", "[xmlrpc][sandbox]") {
    const std::string body = GENERATE(
        as<std::string>{}, "<methodCall><methodName>DataService.getUserInfo</methodName></methodCall>",
        "<methodCall><methodName> DataService.getUserInfo </methodName><params/></methodCall>",
        xmlrpc::encode_call("DataService.getUserInfo", {}));
    auto call = xmlrpc::decode_call(body);
    REQUIRE(call.ok());
    CHECK(call->method == "DataService.getUserInfo");
    CHECK(call->params.empty());
}

TEST_CASE("decode_call refuses bodies that are not a methodCall", "[xmlrpc][sandbox]") {
    auto [body, code, message] = GENERATE(table<std::string, std::string, std::string>({
        {"<methodResponse><params/></methodResponse>", "xmlrpc.not_method_call",
         "the root element is <methodResponse>, not <methodCall>"},
        {"<html><body>", "xmlrpc.not_method_call", "the root element is <html>, not <methodCall>"},
        {"<methodCall><params/></methodCall>", "xmlrpc.invalid", "expected <methodName> inside <methodCall>, found <params>"},
        {"<methodCall><methodName></methodName></methodCall>", "xmlrpc.invalid", "\"\" is not a valid methodName"},
        {"<methodCall><methodName>rm -rf</methodName></methodCall>", "xmlrpc.invalid",
         "\"rm -rf\" is not a valid methodName"},
        {"<methodCall><methodName>a</methodName><params><value>1</value></params></methodCall>", "xmlrpc.invalid",
         "expected <param> inside <params>, found <value>"},
        {"<methodCall><methodName>a</methodName><params><param><value>1", "xmlrpc.malformed", "(truncated?)"},
        {"{\"method\":\"x\"}", "xmlrpc.malformed", "looks like JSON"},
    }));
    INFO(body);
    auto call = xmlrpc::decode_call(body);
    REQUIRE_FALSE(call.ok());
    CHECK(call.error().code == code);
    CHECK_THAT(call.error().message, Catch::Contains(message));
}
