#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "core/fixtures.h"
#include "keyrelay/keap.h"

namespace keap = keyrelay::keap;
namespace xmlrpc = keyrelay::xmlrpc;
using keyrelay::HttpRequest;
using keyrelay::HttpResponse;
using nlohmann::json;

namespace {

const char* kV1 = "https://api.infusionsoft.com/crm/rest/v1";
const char* kV2 = "https://api.infusionsoft.com/crm/rest/v2";
const char* kXmlRpc = "https://api.infusionsoft.com/crm/xmlrpc/v1";

HttpResponse response(int status, std::string body, std::string content_type = "application/json") {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (!content_type.empty()) r.headers.set("Content-Type", content_type);
    return r;
}

HttpResponse fixture(int status, const std::string& name, std::string content_type = "application/json") {
    return response(status, fixtures::read("keap/" + name), std::move(content_type));
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// The methodCall a request carries, decoded again.
xmlrpc::Call call_of(const HttpRequest& request) {
    auto call = xmlrpc::decode_call(request.body);
    REQUIRE(call.ok());
    return call.value();
}

}  // namespace

TEST_CASE("find contacts by email is a GET with the email percent-encoded and a limit", "[keap]") {
    HttpRequest r = keap::find_contacts_by_email(kV1, "ada+test@example.com", 1);
    CHECK(r.method == "GET");
    CHECK(r.url == "https://api.infusionsoft.com/crm/rest/v1/contacts?email=ada%2Btest%40example.com&limit=1");
    CHECK(r.headers.get("Accept") == "application/json");
    CHECK(r.body.empty());
}

TEST_CASE("the builders work against the relay's origin-relative proxy prefix", "[keap]") {
    HttpRequest r = keap::find_contacts_by_email("/proxy/keap/crm/rest/v1/", "paul@example.com");
    CHECK(r.url == "/proxy/keap/crm/rest/v1/contacts?email=paul%40example.com&limit=10");
}

TEST_CASE("get contact and userinfo are GETs on their paths", "[keap]") {
    CHECK(keap::get_contact(kV1, 101).url == "https://api.infusionsoft.com/crm/rest/v1/contacts/101");
    CHECK(keap::get_contact(kV1, 101).method == "GET");
    HttpRequest u = keap::userinfo(kV1);
    CHECK(u.method == "GET");
    CHECK(u.url == "https://api.infusionsoft.com/crm/rest/v1/oauth/connect/userinfo");
    CHECK(u.headers.get("Accept") == "application/json");
}

TEST_CASE("update contact name is a PATCH with given_name and family_name as JSON", "[keap]") {
    HttpRequest r = keap::update_contact_name(kV1, 4393, "Joe \"Jr\"", "Bobertson");
    CHECK(r.method == "PATCH");
    CHECK(r.url == "https://api.infusionsoft.com/crm/rest/v1/contacts/4393");
    CHECK(r.headers.get("Content-Type") == "application/json");
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body.size() == 2);
    CHECK(body["given_name"] == "Joe \"Jr\"");
    CHECK(body["family_name"] == "Bobertson");
}

TEST_CASE("a name with invalid UTF-8 still makes a request instead of throwing", "[keap]") {
    HttpRequest r = keap::update_contact_name(kV1, 1, std::string("Bad\xFF"), "Name");
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["given_name"] == "Bad\xEF\xBF\xBD");
}

TEST_CASE("create contact POSTs the email as EMAIL1", "[keap]") {
    HttpRequest r = keap::create_contact(kV1, "Ada", "Lovelace", "ada@example.com");
    CHECK(r.method == "POST");
    CHECK(r.url == "https://api.infusionsoft.com/crm/rest/v1/contacts");
    CHECK(r.headers.get("Content-Type") == "application/json");
    json body = json::parse(r.body, nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body["given_name"] == "Ada");
    CHECK(body["family_name"] == "Lovelace");
    CHECK(body["email_addresses"] == json::parse(R"([{"email":"ada@example.com","field":"EMAIL1"}])"));
}

TEST_CASE("v2 finds by email through an encoded filter expression", "[keap]") {
    HttpRequest r = keap::find_contacts_by_email_v2(kV2, "john@x.com", 5);
    CHECK(r.method == "GET");
    CHECK(r.url == "https://api.infusionsoft.com/crm/rest/v2/contacts?filter=email%3D%3Djohn%40x.com&page_size=5");
    CHECK(r.headers.get("Accept") == "application/json");
}

TEST_CASE("credentials go in Authorization Bearer or X-Keap-API-Key", "[keap]") {
    HttpRequest r = keap::get_contact(kV1, 1);
    keap::attach_bearer(r, "tok123");
    CHECK(r.headers.get("Authorization") == "Bearer tok123");
    keap::attach_bearer(r, "tok456");
    CHECK(r.headers.get("authorization") == "Bearer tok456");

    HttpRequest k = keap::get_contact(kV1, 1);
    keap::attach_api_key(k, "KeapAK-abc");
    CHECK(k.headers.get("X-Keap-API-Key") == "KeapAK-abc");
    CHECK_FALSE(k.headers.has("Authorization"));
}

TEST_CASE("a v1 contact list parses ids, names and every email", "[keap]") {
    auto contacts = keap::parse_contacts(fixture(200, "v1_contacts_one.json"));
    REQUIRE(contacts.ok());
    REQUIRE(contacts->size() == 1);
    const keap::Contact& c = contacts->front();
    CHECK(c.id == 5);
    CHECK(c.given_name == "Paul");
    CHECK(c.family_name == "Grover");
    CHECK(c.emails == std::vector<std::string>{"paul@example.com"});
}

TEST_CASE("missing or null names become empty strings", "[keap]") {
    auto contacts = keap::parse_contacts(fixture(200, "v1_contacts_no_names.json"));
    REQUIRE(contacts.ok());
    REQUIRE(contacts->size() == 2);
    CHECK((*contacts)[0].id == 4393);
    CHECK((*contacts)[0].given_name.empty());
    CHECK((*contacts)[0].family_name.empty());
    CHECK((*contacts)[0].emails == std::vector<std::string>{"ben.anderson@example.com", "ben@work.example.com"});
    CHECK((*contacts)[1].given_name == "Only");
    CHECK((*contacts)[1].emails.empty());
}

TEST_CASE("an empty contact list is a success with no contacts", "[keap]") {
    auto contacts = keap::parse_contacts(fixture(200, "v1_contacts_empty.json"));
    REQUIRE(contacts.ok());
    CHECK(contacts->empty());
}

TEST_CASE("a v2 contact list with string ids parses like v1", "[keap]") {
    auto contacts = keap::parse_contacts(fixture(200, "v2_contacts.json"));
    REQUIRE(contacts.ok());
    REQUIRE(contacts->size() == 1);
    CHECK(contacts->front().id == 101);
    CHECK(contacts->front().given_name == "Ada");
    CHECK(contacts->front().emails == std::vector<std::string>{"ada@example.com"});
}

TEST_CASE("a contact whose id is not a number is an unexpected shape", "[keap]") {
    auto contacts = keap::parse_contacts(response(200, R"({"contacts":[{"id":"abc"}]})"));
    REQUIRE_FALSE(contacts.ok());
    CHECK(contacts.error().code == "keap.unexpected_shape");
    auto other = keap::parse_contacts(response(200, R"({"users":[]})"));
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().code == "keap.unexpected_shape");
    CHECK(contains(other.error().hint, "/crm/rest/v1"));
}

TEST_CASE("a single contact parses from its object", "[keap]") {
    auto c = keap::parse_contact(fixture(200, "v1_contact.json"));
    REQUIRE(c.ok());
    CHECK(c->id == 101);
    CHECK(c->given_name == "Ada");
    CHECK(c->family_name == "Lovelace");
    CHECK(c->emails == std::vector<std::string>{"ada@example.com"});
}

TEST_CASE("userinfo parses Keap's fields whatever the id types", "[keap]") {
    auto u = keap::parse_userinfo(fixture(200, "userinfo.json"));
    REQUIRE(u.ok());
    CHECK(u->email == "admin@example.com");
    CHECK(u->given_name == "Ada");
    CHECK(u->family_name == "Admin");
    CHECK(u->global_user_id == "123456");
    CHECK(u->infusionsoft_id == 0);   // Keap sends the app name here, not a number
    CHECK(u->sub == "7");

    auto numeric = keap::parse_userinfo(
        response(200, R"({"email":"a@b.c","global_user_id":"g-1","infusionsoft_id":42,"sub":"s"})"));
    REQUIRE(numeric.ok());
    CHECK(numeric->global_user_id == "g-1");
    CHECK(numeric->infusionsoft_id == 42);

    auto bad = keap::parse_userinfo(response(200, R"(["not","an","object"])"));
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == "keap.unexpected_shape");
}

TEST_CASE("401 with an expired-token fault says keyrelay refreshes it", "[keap]") {
    auto name = GENERATE(std::string("error_401_expired.json"), std::string("error_401_invalid_token.json"));
    auto r = keap::parse_contacts(fixture(401, name));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.unauthorized");
    CHECK(contains(r.error().message, "Access Token"));
    CHECK(contains(r.error().hint, "access token expired or is unknown"));
    CHECK(contains(r.error().hint, "keyrelay refreshes it for you"));
    CHECK(contains(r.error().hint, "reconnect Keap"));
}

TEST_CASE("v1 and v2 error bodies carry Keap's message", "[keap]") {
    SECTION("v1 404") {
        auto r = keap::parse_contact(fixture(404, "v1_error_not_found.json"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.not_found");
        CHECK(contains(r.error().message, "Contact with id 999 not found"));
    }
    SECTION("v2 404") {
        auto r = keap::parse_contact(fixture(404, "v2_error_not_found.json"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.not_found");
        CHECK(contains(r.error().message, "Contact not found"));
        CHECK(contains(r.error().message, "NOT_FOUND"));
    }
    SECTION("v1 400") {
        auto r = keap::parse_contact(fixture(400, "v1_error_bad_request.json"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.http_error");
        CHECK(contains(r.error().message, "Unrecognized field"));
        CHECK(contains(r.error().hint, "snake_case"));
    }
    SECTION("403") {
        auto r = keap::parse_contacts(response(403, R"({"message":"Forbidden"})"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.forbidden");
    }
    SECTION("500") {
        auto r = keap::parse_contacts(response(500, R"({"message":"Internal error"})"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.http_error");
        CHECK(contains(r.error().hint, "Retry"));
    }
}

TEST_CASE("429 Quota Exceeded says when to retry from Keap's headers", "[keap]") {
    HttpResponse resp = fixture(429, "error_429_quota.json");
    resp.headers.set("x-keap-product-throttle-limit", "1500");
    resp.headers.set("x-keap-product-throttle-time-unit", "minute");
    resp.headers.set("x-keap-product-throttle-interval", "1");
    resp.headers.set("x-keap-product-throttle-available", "0");
    auto r = keap::parse_contacts(resp);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.rate_limited");
    CHECK(contains(r.error().message, "Quota Exceeded"));
    CHECK(contains(r.error().message, "Request Throttled"));
    CHECK(contains(r.error().hint, "retry in 60 seconds"));
}

TEST_CASE("403 CORS origin denied keeps the relay hint", "[keap]") {
    auto r = keap::parse_contacts(fixture(403, "error_403_cors.txt", "text/plain"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.forbidden");
    CHECK(contains(r.error().hint, "Never call Keap from the browser"));
}

TEST_CASE("an HTML page instead of JSON becomes keap.not_json with the diagnosis", "[keap]") {
    auto r = keap::parse_contacts(fixture(502, "html_502.html", "text/html"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.not_json");
    CHECK(contains(r.error().message, "\"502 Bad Gateway\""));
    CHECK(contains(r.error().hint, "Retry"));

    auto ok_status = keap::parse_contacts(fixture(200, "html_502.html", "text/html"));
    REQUIRE_FALSE(ok_status.ok());
    CHECK(ok_status.error().code == "keap.not_json");
}

TEST_CASE("an empty 200 body is keap.not_json explaining the empty body", "[keap]") {
    auto r = keap::parse_contacts(response(200, ""));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.not_json");
    CHECK(contains(r.error().message, "empty body"));
}

TEST_CASE("XML-RPC calls POST text/xml to the endpoint", "[keap]") {
    HttpRequest r = keap::xmlrpc_get_user_info(kXmlRpc);
    CHECK(r.method == "POST");
    CHECK(r.url == kXmlRpc);
    CHECK(r.headers.get("Content-Type") == "text/xml");
    CHECK(contains(r.body, "<methodName>DataService.getUserInfo</methodName>"));
}

TEST_CASE("DataService.getUserInfo takes no key parameter", "[keap]") {
    xmlrpc::Call c = call_of(keap::xmlrpc_get_user_info(kXmlRpc));
    CHECK(c.method == "DataService.getUserInfo");
    CHECK(c.params.empty());
}

TEST_CASE("ContactService.add sends the key and the fields struct", "[keap]") {
    xmlrpc::Struct fields{{"FirstName", xmlrpc::Value::string("Ada")},
                          {"LastName", xmlrpc::Value::string("Love & <lace>")},
                          {"Email", xmlrpc::Value::string("ada@example.com")}};
    HttpRequest r = keap::xmlrpc_contact_add(kXmlRpc, "", fields);
    CHECK(contains(r.body, "Love &amp; &lt;lace&gt;"));
    xmlrpc::Call c = call_of(r);
    CHECK(c.method == "ContactService.add");
    REQUIRE(c.params.size() == 2);
    CHECK(c.params[0] == xmlrpc::Value::string(""));
    CHECK(c.params[1] == xmlrpc::Value::struct_of(fields));
}

TEST_CASE("ContactService.update sends key, int id and struct", "[keap]") {
    xmlrpc::Struct fields{{"FirstName", xmlrpc::Value::string("Joe")}};
    xmlrpc::Call c = call_of(keap::xmlrpc_contact_update(kXmlRpc, "placeholder", 4393, fields));
    CHECK(c.method == "ContactService.update");
    REQUIRE(c.params.size() == 3);
    CHECK(c.params[0] == xmlrpc::Value::string("placeholder"));
    CHECK(c.params[1] == xmlrpc::Value::integer(4393));
    CHECK(c.params[2] == xmlrpc::Value::struct_of(fields));
}

TEST_CASE("DataService.findByField sends key, table, limit, page, field, value and fields", "[keap]") {
    xmlrpc::Call c = call_of(keap::xmlrpc_find_by_field(kXmlRpc, "k", "Contact", 10, 0, "Email", "ada@example.com",
                                                        {"Id", "FirstName", "LastName"}));
    CHECK(c.method == "DataService.findByField");
    REQUIRE(c.params.size() == 7);
    CHECK(c.params[0] == xmlrpc::Value::string("k"));
    CHECK(c.params[1] == xmlrpc::Value::string("Contact"));
    CHECK(c.params[2] == xmlrpc::Value::integer(10));
    CHECK(c.params[3] == xmlrpc::Value::integer(0));
    CHECK(c.params[4] == xmlrpc::Value::string("Email"));
    CHECK(c.params[5] == xmlrpc::Value::string("ada@example.com"));
    CHECK(c.params[6] == xmlrpc::Value::array_of({xmlrpc::Value::string("Id"), xmlrpc::Value::string("FirstName"),
                                                  xmlrpc::Value::string("LastName")}));
}

TEST_CASE("DataService.query sends key, table, limit, page, query struct and fields", "[keap]") {
    xmlrpc::Struct query{{"Email", xmlrpc::Value::string("%@example.com")}};
    xmlrpc::Call c = call_of(keap::xmlrpc_query(kXmlRpc, "", "Contact", 1000, 2, query, {"Id"}));
    CHECK(c.method == "DataService.query");
    REQUIRE(c.params.size() == 6);
    CHECK(c.params[1] == xmlrpc::Value::string("Contact"));
    CHECK(c.params[2] == xmlrpc::Value::integer(1000));
    CHECK(c.params[3] == xmlrpc::Value::integer(2));
    CHECK(c.params[4] == xmlrpc::Value::struct_of(query));
    CHECK(c.params[5] == xmlrpc::Value::array_of({xmlrpc::Value::string("Id")}));
}

TEST_CASE("an XML-RPC answer decodes into its value", "[keap]") {
    auto id = keap::parse_xmlrpc(fixture(200, "xmlrpc_contact_id.xml", "text/xml"));
    REQUIRE(id.ok());
    CHECK(*id == xmlrpc::Value::integer(4393));

    auto rows = keap::parse_xmlrpc(fixture(200, "xmlrpc_find_by_field.xml", "text/xml"));
    REQUIRE(rows.ok());
    REQUIRE(rows->type == xmlrpc::Value::Type::array);
    REQUIRE(rows->array.size() == 1);
    const xmlrpc::Value* first = rows->array[0].get("FirstName");
    REQUIRE(first != nullptr);
    CHECK(first->s == "Ada");
}

TEST_CASE("XML-RPC faults become keap.xmlrpc_fault with a hint per known fault", "[keap]") {
    SECTION("InvalidConfig: the legacy key is dead") {
        auto r = keap::parse_xmlrpc(fixture(200, "xmlrpc_fault_invalid_config.xml", "text/xml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.xmlrpc_fault");
        CHECK(r.error().message ==
              "[InvalidConfig]Invalid Configuration: for help setting up your API, please contact Support");
        CHECK(contains(r.error().hint, "31 Oct 2024"));
        CHECK(contains(r.error().hint, "X-Keap-API-Key"));
    }
    SECTION("FailedLoginAttempt: the key is invalid") {
        auto r = keap::parse_xmlrpc(fixture(200, "xmlrpc_fault_failed_login.xml", "text/xml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.xmlrpc_fault");
        CHECK(r.error().message == "[FailedLoginAttempt]Invalid username and/or password.");
        CHECK(contains(r.error().hint, "The key is invalid"));
    }
    SECTION("No such handler: method names are case-sensitive") {
        auto r = keap::parse_xmlrpc(fixture(200, "xmlrpc_fault_no_such_handler.xml", "text/xml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.xmlrpc_fault");
        CHECK(contains(r.error().hint, "case-sensitive"));
        CHECK(contains(r.error().hint, "ContactService.Update"));
        CHECK(contains(r.error().hint, "ContactService.update"));
    }
    SECTION("Premature end of file: Keap could not read the request") {
        auto r = keap::parse_xmlrpc(fixture(200, "xmlrpc_fault_premature_eof.xml", "text/xml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.xmlrpc_fault");
        CHECK(contains(r.error().hint, "Content-Type text/xml"));
    }
}

TEST_CASE("a body that is not XML-RPC gets the diagnosis as its error", "[keap]") {
    SECTION("a gateway JSON fault") {
        auto r = keap::parse_xmlrpc(fixture(429, "xmlrpc_gateway_fault.json"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.rate_limited");
    }
    SECTION("Keap's old Developer Inactive page") {
        auto r = keap::parse_xmlrpc(fixture(403, "developer_inactive.html", "text/html"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.legacy_key_dead");
        CHECK(contains(r.error().hint, "OAuth"));
    }
    SECTION("an HTML error page") {
        auto r = keap::parse_xmlrpc(fixture(502, "html_502.html", "text/html"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.html_page");
        CHECK(contains(r.error().message, "502 Bad Gateway"));
    }
    SECTION("an empty body") {
        auto r = keap::parse_xmlrpc(response(200, "", "text/xml"));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == "keap.empty_body");
    }
}

TEST_CASE("a 401 without a JSON body still says keyrelay refreshes the token", "[keap]") {
    auto r = keap::parse_contacts(response(401, "", ""));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.unauthorized");
    CHECK(contains(r.error().message, "empty body"));
    CHECK(contains(r.error().hint, "keyrelay refreshes it for you"));
}

TEST_CASE("a 429 HTML page is keap.rate_limited with Keap's limits", "[keap]") {
    auto r = keap::parse_contacts(response(429, "<html><title>Too Many Requests</title></html>", "text/html"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "keap.rate_limited");
    CHECK(contains(r.error().message, "Too Many Requests"));
    CHECK(contains(r.error().hint, "1,500 calls a minute"));
}
