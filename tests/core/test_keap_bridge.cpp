#include <catch2/catch.hpp>

#include <string>

#include "keyrelay/keap_bridge.h"

namespace bridge = keyrelay::keap::bridge;
namespace xmlrpc = keyrelay::xmlrpc;
using bridge::Step;
using keyrelay::HttpResponse;

namespace {

std::string call(const std::string& method, const std::string& params) {
    return "<?xml version=\"1.0\"?><methodCall><methodName>" + method + "</methodName><params>" + params +
           "</params></methodCall>";
}
std::string p(const std::string& value) { return "<param><value>" + value + "</value></param>"; }
std::string str(const std::string& s) { return p("<string>" + s + "</string>"); }
std::string i4(int64_t v) { return p("<i4>" + std::to_string(v) + "</i4>"); }
std::string names(std::initializer_list<const char*> list) {
    std::string out = "<array><data>";
    for (const char* n : list) out += "<value><string>" + std::string(n) + "</string></value>";
    return p(out + "</data></array>");
}
const std::string kKey = str("relay-api-key");

HttpResponse rest(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = std::move(body);
    return r;
}

const char* kProlog = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
std::string response_xml(const std::string& value) {
    return kProlog + std::string("<methodResponse><params><param><value>") + value +
           "</value></param></params></methodResponse>\n";
}

}  // namespace

TEST_CASE("DataService.echo is answered by the bridge without a REST call", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.echo", str("hello &amp; bye")), c);
    REQUIRE(s.kind == Step::Kind::answer);
    CHECK(bridge::encode(s) == response_xml("<string>hello &amp; bye</string>"));
}

TEST_CASE("ContactService.load becomes a GET with the REST members of the fields asked for", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(
        call("ContactService.load", kKey + i4(4393) + names({"Id", "FirstName", "Email", "DateCreated", "Groups",
                                                            "Phone1", "City"})),
        c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.method == "GET");
    CHECK(s.request.url ==
          "/crm/rest/v2/contacts/4393?fields=id%2Cgiven_name%2Cemail_addresses%2Cphone_numbers%2Caddresses%2C"
          "create_time%2Ctag_ids");
    CHECK(s.request.headers.get("Accept") == "application/json");
    CHECK(s.request.body.empty());

    SECTION("the REST contact becomes the legacy struct: Id int, DateCreated dateTime, Groups comma-separated") {
        Step done = bridge::resume(
            c, rest(200, R"({"id":"4393","given_name":"Ben","email_addresses":[
                {"email":"ben.b@example.com","field":"EMAIL2"},{"email":"ben.anderson@example.com","field":"EMAIL1"}],
                "phone_numbers":[],"addresses":[{"field":"BILLING","locality":"Leeds","line1":""}],
                "create_time":"2026-01-02T03:04:05Z","tag_ids":[12,"3"]})"));
        REQUIRE(done.kind == Step::Kind::answer);
        // Phone1 has no value: left out, as Keap's XML-RPC did.
        CHECK(bridge::encode(done) ==
              response_xml("<struct><member><name>Id</name><value><int>4393</int></value></member>"
                           "<member><name>FirstName</name><value><string>Ben</string></value></member>"
                           "<member><name>Email</name><value><string>ben.anderson@example.com</string></value>"
                           "</member><member><name>DateCreated</name><value><dateTime.iso8601>20260102T03:04:05"
                           "</dateTime.iso8601></value></member><member><name>Groups</name><value><string>3,12"
                           "</string></value></member><member><name>City</name><value><string>Leeds</string>"
                           "</value></member></struct>"));
    }
    SECTION("a 404 is Keap's [RecordNotFound] fault") {
        Step done = bridge::resume(c, rest(404, R"({"code":404,"message":"Contact not found: 4393",
                                                    "status":"NOT_FOUND","details":[]})"));
        REQUIRE(done.kind == Step::Kind::fault);
        CHECK(done.fault.code == 0);
        CHECK(done.fault.string == "[RecordNotFound]Record was not found: Contact 4393");
        CHECK(bridge::encode(done) ==
              std::string(kProlog) +
                  "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>0</int></value>"
                  "</member><member><name>faultString</name><value><string>[RecordNotFound]Record was not found: "
                  "Contact 4393</string></value></member></struct></value></fault></methodResponse>\n");
    }
    SECTION("a 429 is [ThrottleExceeded] with Keap's message and the wait") {
        HttpResponse r = rest(429, R"({"code":"429","message":"Quota Exceeded","status":"Request Throttled"})");
        r.headers.set("Retry-After", "3");
        Step done = bridge::resume(c, r);
        REQUIRE(done.kind == Step::Kind::fault);
        CHECK(done.fault.string ==
              "[ThrottleExceeded]Keap's API rate limit was reached (HTTP 429 Quota Exceeded); retry after 3 s");
    }
    SECTION("an HTML page instead of JSON is a fault, not a crash") {
        HttpResponse r = rest(200, "<html><body>Service Unavailable</body></html>");
        Step done = bridge::resume(c, r);
        REQUIRE(done.kind == Step::Kind::fault);
        CHECK(done.fault.string == "[InvalidResponse]Keap answered HTTP 200 with a body that is not the expected JSON");
    }
}

TEST_CASE("ContactService.add is one POST of the REST body", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("ContactService.add",
                                kKey + p("<struct><member><name>FirstName</name><value>Ada</value></member>"
                                         "<member><name>Email</name><value>ada@example.com</value></member>"
                                         "<member><name>Phone2</name><value>+44 1</value></member>"
                                         "<member><name>Company</name><value>Engines Ltd</value></member>"
                                         "<member><name>State</name><value>LDN</value></member>"
                                         "<member><name>OwnerID</name><value><int>7</int></value></member>"
                                         "</struct>")),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.method == "POST");
    CHECK(s.request.url == "/crm/rest/v2/contacts");
    CHECK(s.request.headers.get("Content-Type") == "application/json");
    CHECK(s.request.body ==
          R"({"addresses":[{"field":"BILLING","region":"LDN"}],"company":{"company_name":"Engines Ltd"},)"
          R"("email_addresses":[{"email":"ada@example.com","field":"EMAIL1"}],"given_name":"Ada","owner_id":"7",)"
          R"("phone_numbers":[{"field":"PHONE2","number":"+44 1"}]})");
    Step done = bridge::resume(c, rest(201, R"({"id":"120","given_name":"Ada"})"));
    REQUIRE(done.kind == Step::Kind::answer);
    CHECK(bridge::encode(done) == response_xml("<int>120</int>"));
}

TEST_CASE("addWithDupCheck searches by email, then updates the match or creates", "[bridge]") {
    const std::string xml = call("ContactService.addWithDupCheck",
                                 kKey + p("<struct><member><name>LastName</name><value>Anderson</value></member>"
                                          "<member><name>Email</name><value>ben.anderson@example.com</value>"
                                          "</member></struct>") +
                                     str("Email"));
    bridge::Conversation c;
    Step s = bridge::begin(xml, c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.method == "GET");
    CHECK(s.request.url ==
          "/crm/rest/v2/contacts?filter=email%3D%3Dben.anderson%40example.com&fields=id%2Cemail_addresses&"
          "page_size=1");

    SECTION("no match: POST") {
        Step next = bridge::resume(c, rest(200, R"({"contacts":[],"next_page_token":""})"));
        REQUIRE(next.kind == Step::Kind::send);
        CHECK(next.request.method == "POST");
        CHECK(next.request.url == "/crm/rest/v2/contacts");
        CHECK(next.request.body ==
              R"({"email_addresses":[{"email":"ben.anderson@example.com","field":"EMAIL1"}],"family_name":"Anderson"})");
        Step done = bridge::resume(c, rest(201, R"({"id":"4400"})"));
        CHECK(bridge::encode(done) == response_xml("<int>4400</int>"));
    }
    SECTION("a match: PATCH that keeps the contact's other email addresses") {
        Step next = bridge::resume(
            c, rest(200, R"({"contacts":[{"id":"4393","email_addresses":[{"email":"ben.anderson@example.com",
                             "field":"EMAIL1"},{"email":"ben@work.example","field":"EMAIL2"}]}],"next_page_token":""})"));
        REQUIRE(next.kind == Step::Kind::send);
        CHECK(next.request.method == "PATCH");
        CHECK(next.request.url == "/crm/rest/v2/contacts/4393?update_mask=family_name%2Cemail_addresses");
        CHECK(next.request.body ==
              R"({"email_addresses":[{"email":"ben.anderson@example.com","field":"EMAIL1"},)"
              R"({"email":"ben@work.example","field":"EMAIL2"}],"family_name":"Anderson"})");
        Step done = bridge::resume(c, rest(200, R"({"id":"4393"})"));
        CHECK(bridge::encode(done) == response_xml("<int>4393</int>"));
    }
}

TEST_CASE("update reads the current lists first when an email, phone or address changes", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(
        call("ContactService.update",
             kKey + i4(5) + p("<struct><member><name>EmailAddress2</name><value></value></member>"
                              "<member><name>JobTitle</name><value>CTO</value></member></struct>")),
        c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.url == "/crm/rest/v2/contacts/5?fields=id%2Cemail_addresses");
    Step patch = bridge::resume(c, rest(200, R"({"id":"5","email_addresses":[{"email":"paul@example.com",
        "field":"EMAIL1"},{"email":"old@example.com","field":"EMAIL2"}]})"));
    REQUIRE(patch.kind == Step::Kind::send);
    CHECK(patch.request.method == "PATCH");
    CHECK(patch.request.url == "/crm/rest/v2/contacts/5?update_mask=email_addresses%2Cjob_title");
    // An empty value clears the field: the EMAIL2 entry goes, EMAIL1 stays.
    CHECK(patch.request.body ==
          R"({"email_addresses":[{"email":"paul@example.com","field":"EMAIL1"}],"job_title":"CTO"})");
    Step done = bridge::resume(c, rest(200, R"({"id":"5"})"));
    CHECK(bridge::encode(done) == response_xml("<int>5</int>"));
}

TEST_CASE("update without list fields is a single PATCH; a missing contact is [RecordNotFound]", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.update",
                                kKey + str("Contact") + i4(99) +
                                    p("<struct><member><name>FirstName</name><value>Zed</value></member></struct>")),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.method == "PATCH");
    CHECK(s.request.url == "/crm/rest/v2/contacts/99?update_mask=given_name");
    CHECK(s.request.body == R"({"given_name":"Zed"})");
    Step done = bridge::resume(c, rest(404, R"({"code":404,"message":"Contact not found: 99","status":"NOT_FOUND"})"));
    CHECK(done.fault.string == "[RecordNotFound]Record was not found: Contact 99");
}

TEST_CASE("addToGroup and removeFromGroup apply and remove the tag in REST v2", "[bridge]") {
    const bool apply = GENERATE(true, false);
    bridge::Conversation c;
    Step s = bridge::begin(call(apply ? "ContactService.addToGroup" : "ContactService.removeFromGroup",
                                kKey + i4(101) + i4(12)),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.method == "POST");
    CHECK(s.request.url == (apply ? "/crm/rest/v2/tags/12/contacts:applyTags" : "/crm/rest/v2/tags/12/contacts:removeTags"));
    CHECK(s.request.body == R"({"contact_ids":["101"]})");
    SECTION("done: true") {
        CHECK(bridge::encode(bridge::resume(c, rest(200, "{}"))) == response_xml("<boolean>1</boolean>"));
    }
    SECTION("an unknown tag names the ContactGroup") {
        Step done = bridge::resume(c, rest(404, R"({"code":404,"message":"Tag not found: 12","status":"NOT_FOUND"})"));
        CHECK(done.fault.string == "[RecordNotFound]Record was not found: ContactGroup 12");
    }
}

TEST_CASE("DataService.query with a trailing % becomes a REST v2 wildcard filter", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.query",
                                kKey + str("Contact") + i4(2) + i4(0) +
                                    p("<struct><member><name>FirstName</name><value>ad%</value></member>"
                                      "<member><name>Email</name><value>ada@example.com</value></member></struct>") +
                                    names({"Id", "LastName"})),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.url ==
          "/crm/rest/v2/contacts?filter=given_name%3D%3Dad%2A%3Bemail%3D%3Dada%40example.com&"
          "fields=id%2Cfamily_name&page_size=2");
    Step done = bridge::resume(c, rest(200, R"({"contacts":[{"id":"101","family_name":"Lovelace"},{"id":"140"}],
                                              "next_page_token":"b2Zmc2V0OjI="})"));
    REQUIRE(done.kind == Step::Kind::answer);
    CHECK(bridge::encode(done) ==
          response_xml("<array><data><value><struct><member><name>Id</name><value><int>101</int></value></member>"
                       "<member><name>LastName</name><value><string>Lovelace</string></value></member></struct>"
                       "</value><value><struct><member><name>Id</name><value><int>140</int></value></member>"
                       "</struct></value></data></array>"));
}

TEST_CASE("page N of a query is N hops along Keap's opaque next_page_token", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.query", kKey + str("Contact") + i4(1) + i4(2) +
                                                         p("<struct><member><name>Id</name><value>%</value></member>"
                                                           "</struct>") +
                                                         names({"Id"}) + str("Id") + p("<boolean>0</boolean>")),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.url == "/crm/rest/v2/contacts?fields=id&order_by=id%20desc&page_size=1");
    Step hop1 = bridge::resume(c, rest(200, R"({"contacts":[{"id":"9"}],"next_page_token":"T1"})"));
    REQUIRE(hop1.kind == Step::Kind::send);
    CHECK(hop1.request.url == "/crm/rest/v2/contacts?fields=id&order_by=id%20desc&page_size=1&page_token=T1");
    Step hop2 = bridge::resume(c, rest(200, R"({"contacts":[{"id":"8"}],"next_page_token":"T2"})"));
    REQUIRE(hop2.kind == Step::Kind::send);
    CHECK(hop2.request.url == "/crm/rest/v2/contacts?fields=id&order_by=id%20desc&page_size=1&page_token=T2");
    Step done = bridge::resume(c, rest(200, R"({"contacts":[{"id":"7"}],"next_page_token":"T3"})"));
    CHECK(bridge::encode(done) ==
          response_xml("<array><data><value><struct><member><name>Id</name><value><int>7</int></value></member>"
                       "</struct></value></data></array>"));
}

TEST_CASE("findByField on Id is a GET of that contact; a 404 is an empty page", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.findByField", kKey + str("Contact") + i4(10) + i4(0) + str("Id") +
                                                               str("101") + names({"Email"})),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.url == "/crm/rest/v2/contacts/101?fields=id%2Cemail_addresses");
    Step done = bridge::resume(c, rest(404, R"({"code":404,"message":"Contact not found: 101"})"));
    CHECK(bridge::encode(done) == response_xml("<array><data></data></array>"));
}

TEST_CASE("an Id prefix is matched by the bridge over every REST page", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.count", kKey + str("Contact") +
                                                         p("<struct><member><name>Id</name><value>10%</value>"
                                                           "</member></struct>")),
                           c);
    REQUIRE(s.kind == Step::Kind::send);
    CHECK(s.request.url == "/crm/rest/v2/contacts?fields=id&page_size=1000");
    Step next = bridge::resume(c, rest(200, R"({"contacts":[{"id":"5"},{"id":"101"},{"id":"10"}],"next_page_token":"N"})"));
    REQUIRE(next.kind == Step::Kind::send);
    CHECK(next.request.url == "/crm/rest/v2/contacts?fields=id&page_size=1000&page_token=N");
    Step done = bridge::resume(c, rest(200, R"({"contacts":[{"id":"4393"},{"id":"1000"}],"next_page_token":""})"));
    CHECK(bridge::encode(done) == response_xml("<int>3</int>"));
}

TEST_CASE("DataService.count adds up every page of the filtered list", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("DataService.count", kKey + str("Contact") +
                                                         p("<struct><member><name>LastName</name><value>Lovelace"
                                                           "</value></member></struct>")),
                           c);
    CHECK(s.request.url == "/crm/rest/v2/contacts?filter=family_name%3D%3DLovelace&fields=id&page_size=1000");
    Step done = bridge::resume(c, rest(200, R"({"contacts":[{"id":"1"},{"id":"2"}]})"));
    CHECK(bridge::encode(done) == response_xml("<int>2</int>"));
}

TEST_CASE("findByEmail returns every match with the fields asked for", "[bridge]") {
    bridge::Conversation c;
    Step s = bridge::begin(call("ContactService.findByEmail", kKey + str("paul@example.com") +
                                                                  names({"Id", "FirstName", "LastName"})),
                           c);
    CHECK(s.request.url ==
          "/crm/rest/v2/contacts?filter=email%3D%3Dpaul%40example.com&fields=id%2Cgiven_name%2Cfamily_name&"
          "page_size=1000");
    Step done = bridge::resume(c, rest(200, R"({"contacts":[{"id":"5","given_name":"Paul","family_name":"Grover"}]})"));
    CHECK(bridge::encode(done) ==
          response_xml("<array><data><value><struct><member><name>Id</name><value><int>5</int></value></member>"
                       "<member><name>FirstName</name><value><string>Paul</string></value></member><member><name>"
                       "LastName</name><value><string>Grover</string></value></member></struct></value></data>"
                       "</array>"));
}

TEST_CASE("what the bridge cannot translate is a fault that says what to use instead", "[bridge]") {
    struct Row {
        std::string xml;
        std::string fault;
    };
    const Row row = GENERATE(values<Row>({
        {call("ContactService.merge", kKey + i4(1) + i4(2)),
         "No such handler: ContactService.merge (the keyrelay bridge does not translate it; use "
         "/crm/rest/v2/contacts)"},
        {call("Nonsense.method", ""),
         "No such handler: Nonsense.method (the keyrelay bridge does not translate it; see "
         "https://developer.keap.com/docs/restv2/)"},
        {call("ContactService.load", kKey + str("4393") + names({"Id"})),
         "No method matching arguments: java.lang.String, java.lang.String, [Ljava.lang.Object;"},
        {call("ContactService.load", kKey + i4(1) + names({"Id", "Birthday"})),
         "[NoFieldFound]No field found: Contact.Birthday (the keyrelay bridge maps the Contact fields listed in "
         "docs/xmlrpc-bridge.md; for others use GET or PATCH /crm/rest/v2/contacts/{id} with REST field names)"},
        {call("ContactService.update", kKey + i4(1) +
                                           p("<struct><member><name>given_name</name><value>x</value></member>"
                                             "</struct>")),
         "[NoFieldFound]No field found: Contact.given_name (the keyrelay bridge maps the Contact fields listed in "
         "docs/xmlrpc-bridge.md; for others use GET or PATCH /crm/rest/v2/contacts/{id} with REST field names)"},
        {call("ContactService.add", kKey + p("<struct><member><name>FirstName</name><value><int>3</int></value>"
                                             "</member></struct>")),
         "[InvalidParameter]FirstName must be a string"},
        {call("ContactService.add", kKey + p("<struct><member><name>Groups</name><value>1,2</value></member>"
                                             "</struct>")),
         "[InvalidParameter]Contact.Groups cannot be written; use ContactService.addToGroup / removeFromGroup "
         "(POST /crm/rest/v2/tags/{tag_id}/contacts:applyTags)"},
        {call("DataService.query", kKey + str("Company") + i4(10) + i4(0) + p("<struct></struct>") + names({"Id"})),
         "[InvalidParameter]Invalid table name: Company (the keyrelay bridge translates the Contact table only; use "
         "/crm/rest/v2/companies)"},
        {call("DataService.query", kKey + str("Contact") + i4(10) + i4(0) +
                                       p("<struct><member><name>City</name><value>Leeds</value></member></struct>") +
                                       names({"Id"})),
         "[InvalidParameter]The keyrelay bridge queries Contact by Id, Email, FirstName and LastName only, not by "
         "City; use GET /crm/rest/v2/contacts?filter=… (https://developer.keap.com/docs/restv2/)"},
        {call("DataService.query", kKey + str("Contact") + i4(10) + i4(0) +
                                       p("<struct><member><name>Email</name><value>%@example.com</value></member>"
                                         "</struct>") +
                                       names({"Id"})),
         "[InvalidParameter]The keyrelay bridge translates equality and one trailing % only (Email = "
         "\"%@example.com\"); use GET /crm/rest/v2/contacts?filter=… (https://developer.keap.com/docs/restv2/)"},
        {call("DataService.query", kKey + str("Contact") + i4(0) + i4(0) + p("<struct></struct>") + names({"Id"})),
         "[InvalidParameter]limit must be between 1 and 1000"},
        {call("ContactService.addWithDupCheck", kKey + p("<struct></struct>") + str("EmailAndName")),
         "[InvalidParameter]The keyrelay bridge translates dupCheckType Email only, not \"EmailAndName\"; use PUT "
         "/crm/rest/v1/contacts with duplicate_option (Email, EmailAndName or EmailAndNameAndCompany)"},
        {"", "Failed to parse XML-RPC request: Premature end of file."},
        {"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaa\">]><methodCall><methodName>&a;</methodName>"
         "</methodCall>",
         "Failed to parse XML-RPC request: DOCTYPE is disallowed when the feature "
         "\"http://apache.org/xml/features/disallow-doctype-decl\" set to true."},
    }));
    bridge::Conversation c;
    Step s = bridge::begin(row.xml, c);
    REQUIRE(s.kind == Step::Kind::fault);
    CHECK(s.fault.code == 0);
    CHECK(s.fault.string == row.fault);
}

TEST_CASE("a huge field list is refused before anything is sent", "[bridge]") {
    std::string many = "<array><data>";
    for (int i = 0; i < 5000; ++i) many += "<value><string>Id</string></value>";
    many += "</data></array>";
    bridge::Conversation c;
    Step s = bridge::begin(call("ContactService.load", kKey + i4(1) + p(many)), c);
    REQUIRE(s.kind == Step::Kind::fault);
    CHECK(s.fault.string == "[InvalidParameter]Too many fields: 5000 (the keyrelay bridge takes at most 200)");
}

TEST_CASE("private_key is the first string parameter, where old clients put their API key", "[bridge]") {
    auto parsed = xmlrpc::decode_call(call("ContactService.load", kKey + i4(1) + names({"Id"})));
    REQUIRE(parsed.ok());
    CHECK(bridge::private_key(*parsed) == "relay-api-key");
    auto none = xmlrpc::decode_call(call("ContactService.load", i4(1)));
    REQUIRE(none.ok());
    CHECK_FALSE(bridge::private_key(*none).has_value());
}

TEST_CASE("describe shows every REST call a call can become, with the condition for each", "[bridge]") {
    bridge::Plan plan = bridge::describe(call(
        "ContactService.addWithDupCheck",
        kKey + p("<struct><member><name>Email</name><value>a@b.example</value></member></struct>") + str("Email")));
    REQUIRE(plan.ok);
    REQUIRE(plan.calls.size() == 3);
    CHECK(plan.calls[0].when.empty());
    CHECK(plan.calls[0].request.url ==
          "/crm/rest/v2/contacts?filter=email%3D%3Da%40b.example&fields=id%2Cemail_addresses&page_size=1");
    CHECK(plan.calls[1].when == "when no contact has that email");
    CHECK(plan.calls[1].request.method == "POST");
    CHECK(plan.calls[2].when == "when contact {id} has that email");
    CHECK(plan.calls[2].request.method == "PATCH");
    CHECK(plan.calls[2].request.url == "/crm/rest/v2/contacts/{id}?update_mask=email_addresses");

    SECTION("a count over pages repeats its request along next_page_token; a count by Id is one GET") {
        bridge::Plan pages = bridge::describe(call("DataService.count", kKey + str("Contact") +
                                                   p("<struct><member><name>LastName</name><value>Ng</value>"
                                                     "</member></struct>")));
        REQUIRE(pages.calls.size() == 2);
        CHECK(pages.calls[1].request.url ==
              "/crm/rest/v2/contacts?filter=family_name%3D%3DNg&fields=id&page_size=1000&page_token={next_page_token}");
        bridge::Plan one = bridge::describe(call("DataService.count", kKey + str("Contact") +
                                                 p("<struct><member><name>Id</name><value><int>5</int></value>"
                                                   "</member></struct>")));
        REQUIRE(one.calls.size() == 1);
        CHECK(one.calls[0].request.url == "/crm/rest/v2/contacts/5?fields=id");
    }

    bridge::Plan bad = bridge::describe(call("ContactService.load", kKey + str("x") + names({"Id"})));
    CHECK_FALSE(bad.ok);
    CHECK(bad.fault.string.rfind("No method matching arguments", 0) == 0);
}

TEST_CASE("the field map covers the legacy Contact fields old integrations use", "[bridge]") {
    for (const char* name : {"Id", "FirstName", "LastName", "Email", "EmailAddress2", "EmailAddress3", "Phone1",
                             "Phone2", "Company", "JobTitle", "StreetAddress1", "City", "State", "PostalCode",
                             "Country", "DateCreated", "LastUpdated", "Groups", "OwnerID"}) {
        INFO(name);
        const bridge::FieldInfo* f = bridge::find_field(name);
        REQUIRE(f != nullptr);
        CHECK(std::string(f->api) == "v2");
    }
    CHECK(bridge::find_field("email") == nullptr);   // names are case-sensitive, as in Keap's XML-RPC
}

TEST_CASE("a contact in a list page maps as the same contact loaded alone, odd members included", "[bridge]") {
    // A list page is read as it streams, a single contact from its parsed JSON: both must give the same struct.
    const std::string all_fields = names({"Id", "FirstName", "LastName", "Email", "EmailAddress2", "Phone1",
                                          "Company", "JobTitle", "City", "Country", "DateCreated", "LastUpdated",
                                          "Groups", "OwnerID"});
    const std::string contact = GENERATE(as<std::string>{},
        R"({"id":"4393","given_name":"Ben","family_name":"Anderson","job_title":"CTO","owner_id":"7",)"
        R"("email_addresses":[{"email":"b@x.com","field":"EMAIL1"},{"email":"b2@x.com","field":"EMAIL2"}],)"
        R"("phone_numbers":[{"number":"555","field":"PHONE1"}],"company":{"company_name":"Acme","id":"3"},)"
        R"("addresses":[{"field":"SHIPPING","locality":"Nowhere"},{"field":"BILLING","locality":"Springfield",)"
        R"("country_code":"USA"}],"create_time":"2026-01-02T03:04:05Z","update_time":"2026-02-03T04:05:06.000+0000",)"
        R"("tag_ids":[12,"3",null,4.5],"custom_fields":[{"id":1,"content":{"nested":[1,2,{"deep":true}]}}]})",
        // wrong types count as absent; a repeated member: the last one wins
        R"({"id":4393,"given_name":17,"family_name":null,"email_addresses":{"email":"x"},"company":"Acme",)"
        R"("phone_numbers":[5,{"field":"PHONE1","number":6},{"field":"PHONE1","number":"second"}],)"
        R"("job_title":"first","job_title":"second","tag_ids":"12","create_time":"not a time"})",
        R"({"id":"4393","email_addresses":[{"email":"a@x.com","field":"EMAIL1","email":"b@x.com"}],)"
        R"("email_addresses":[{"field":"EMAIL1","email":"last@x.com"}],"owner_id":0,"tag_ids":[]})");
    bridge::Conversation loaded;
    Step s = bridge::begin(call("ContactService.load", kKey + i4(4393) + all_fields), loaded);
    REQUIRE(s.kind == Step::Kind::send);
    const Step alone = bridge::resume(loaded, rest(200, contact));
    REQUIRE(alone.kind == Step::Kind::answer);

    bridge::Conversation listed;
    s = bridge::begin(call("DataService.query", kKey + str("Contact") + i4(10) + i4(0) +
                                                    p("<struct><member><name>Email</name><value><string>%</string>"
                                                      "</value></member></struct>") + all_fields),
                      listed);
    REQUIRE(s.kind == Step::Kind::send);
    const Step page = bridge::resume(listed, rest(200, R"({"next_page_token":"","contacts":[)" + contact +
                                                           R"(,"not a contact"]})"));
    REQUIRE(page.kind == Step::Kind::answer);
    CHECK(bridge::encode(page) ==
          xmlrpc::encode_response(xmlrpc::Value::array_of({alone.value, xmlrpc::Value::struct_of({})})));
}

TEST_CASE("a list page that is not the expected JSON is [InvalidResponse]", "[bridge]") {
    const std::string body = GENERATE(as<std::string>{}, "", "[]", "{\"contacts\":{}}", "{\"contacts\":[{]}",
                                      "{\"contacts\":[],\"contacts\":7}", "<html>502</html>", "{\"items\":[]}",
                                      // two lists: the first one's rows would already be written
                                      "{\"contacts\":[{\"id\":\"1\"}],\"contacts\":[]}");
    bridge::Conversation c;
    Step s = bridge::begin(call("ContactService.findByEmail", kKey + str("ada@example.com") + names({"Id"})), c);
    REQUIRE(s.kind == Step::Kind::send);
    s = bridge::resume(c, rest(200, body));
    REQUIRE(s.kind == Step::Kind::fault);
    CHECK(s.fault.string == "[InvalidResponse]Keap answered HTTP 200 with a body that is not the expected JSON");
}
