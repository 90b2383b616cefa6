// The Contact fields the XML-RPC bridge maps, on both of the sandbox's Keap APIs over the same data: what REST v2
// writes, XML-RPC reads with its legacy names, and back; tags; v2 filters with '*'; the XML-RPC methods the bridge
// translates, with Keap's faults.
#include "keyrelay/xmlrpc.h"
#include "sandbox_fixture.h"

using namespace sbt;
namespace xr = keyrelay::xmlrpc;
using V = xr::Value;

namespace {

struct Keap {
    const Sandbox& sb;
    httplib::Headers key{{"X-Keap-API-Key", sb.config["keap"]["pat"].get<std::string>()}};

    xr::Response rpc(const std::string& method, const xr::Array& params) const {
        auto res = sb.post("/keap/crm/xmlrpc/v1", xr::encode_call(method, params), "text/xml", key);
        REQUIRE(res);
        REQUIRE(res->status == 200);
        auto decoded = xr::decode_response(res->body);
        INFO(res->body);
        REQUIRE(decoded.ok());
        return *decoded;
    }
    V ok(const std::string& method, const xr::Array& params) const {
        auto r = rpc(method, params);
        INFO(r.fault.string);
        REQUIRE_FALSE(r.is_fault);
        return r.value;
    }
    std::string fault(const std::string& method, const xr::Array& params) const {
        auto r = rpc(method, params);
        REQUIRE(r.is_fault);
        CHECK(r.fault.code == 0);
        return r.fault.string;
    }
    httplib::Result v2(const std::string& method, const std::string& path, const json& body = nullptr) const {
        auto c = sb.client();
        const std::string target = "/keap/crm/rest/v2" + path;
        if (method == "GET") return c.Get(target.c_str(), key);
        if (method == "PATCH") return c.Patch(target.c_str(), key, body.dump(), "application/json");
        return c.Post(target.c_str(), key, body.dump(), "application/json");
    }
};

V names(std::initializer_list<const char*> list) {
    xr::Array a;
    for (const char* n : list) a.push_back(V::string(n));
    return V::array_of(a);
}

}  // namespace

TEST_CASE("a contact created in REST v2 reads back through XML-RPC with the legacy names and types",
          "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    auto created = k.v2("POST", "/contacts",
                        json{{"given_name", "Grace"},
                             {"family_name", "Hopper"},
                             {"email_addresses", {{{"email", "grace@example.com"}, {"field", "EMAIL1"}},
                                                  {{"email", "g@navy.example"}, {"field", "EMAIL3"}}}},
                             {"phone_numbers", {{{"number", "555-0100"}, {"field", "PHONE2"}}}},
                             {"addresses", {{{"field", "BILLING"}, {"line1", "1 Main St"}, {"locality", "Arlington"},
                                             {"region", "VA"}, {"postal_code", "22201"}, {"country_code", "USA"}}}},
                             {"company", {{"company_name", "US Navy"}}},
                             {"job_title", "Rear Admiral"},
                             {"owner_id", "7"}});
    REQUIRE(created->status == 201);
    json c = body_of(created);
    REQUIRE(c["id"].is_string());
    const int64_t id = std::stoll(c["id"].get<std::string>());
    REQUIRE(k.v2("POST", "/tags/12/contacts:applyTags", json{{"contact_ids", {c["id"]}}})->status == 200);
    REQUIRE(k.v2("POST", "/tags/10/contacts:applyTags", json{{"contact_ids", {c["id"]}}})->status == 200);

    V row = k.ok("ContactService.load",
                 {V::string(""), V::integer(id),
                  names({"Id", "FirstName", "LastName", "Email", "EmailAddress2", "EmailAddress3", "Phone1", "Phone2",
                         "Company", "JobTitle", "StreetAddress1", "City", "State", "PostalCode", "Country",
                         "Groups", "OwnerID", "DateCreated"})});
    CHECK(row.get("Id")->i == id);
    CHECK(row.get("FirstName")->s == "Grace");
    CHECK(row.get("Email")->s == "grace@example.com");
    CHECK(row.get("EmailAddress2") == nullptr);   // no value: left out, as Keap's XML-RPC does
    CHECK(row.get("EmailAddress3")->s == "g@navy.example");
    CHECK(row.get("Phone1") == nullptr);
    CHECK(row.get("Phone2")->s == "555-0100");
    CHECK(row.get("Company")->s == "US Navy");
    CHECK(row.get("JobTitle")->s == "Rear Admiral");
    CHECK(row.get("StreetAddress1")->s == "1 Main St");
    CHECK(row.get("City")->s == "Arlington");
    CHECK(row.get("State")->s == "VA");
    CHECK(row.get("PostalCode")->s == "22201");
    CHECK(row.get("Country")->s == "USA");
    CHECK(row.get("Groups")->s == "10,12");
    CHECK(row.get("OwnerID")->type == V::Type::integer);
    CHECK(row.get("OwnerID")->i == 7);
    REQUIRE(row.get("DateCreated") != nullptr);
    CHECK(row.get("DateCreated")->type == V::Type::datetime);
    CHECK(row.get("DateCreated")->s.size() == 17);   // 20260102T03:04:05
}

TEST_CASE("XML-RPC writes show in REST v2, and update_mask replaces only the members it names",
          "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    V id = k.ok("ContactService.add", {V::string(""), V::struct_of({{"FirstName", V::string("Alan")},
                                                                   {"Email", V::string("alan@example.com")},
                                                                   {"EmailAddress2", V::string("a2@example.com")},
                                                                   {"City", V::string("Wilmslow")}})});
    json c = body_of(k.v2("GET", "/contacts/" + std::to_string(id.i) + "?fields=email_addresses,addresses"));
    CHECK(c == json{{"id", std::to_string(id.i)},
                    {"email_addresses", {{{"email", "alan@example.com"}, {"field", "EMAIL1"}},
                                         {{"email", "a2@example.com"}, {"field", "EMAIL2"}}}},
                    {"addresses", {{{"field", "BILLING"}, {"locality", "Wilmslow"}}}}});

    auto patched = k.v2("PATCH", "/contacts/" + std::to_string(id.i) + "?update_mask=family_name",
                        json{{"family_name", "Turing"}, {"given_name", "ignored: not in the mask"}});
    REQUIRE(patched->status == 200);
    V row = k.ok("DataService.load", {V::string(""), V::string("Contact"), V::integer(id.i),
                                      names({"FirstName", "LastName", "EmailAddress2"})});
    CHECK(row == V::struct_of({{"FirstName", V::string("Alan")}, {"LastName", V::string("Turing")},
                               {"EmailAddress2", V::string("a2@example.com")}}));
}

TEST_CASE("REST v2 filters take a trailing * and order_by id desc", "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    json page = body_of(k.v2("GET", "/contacts?filter=given_name%3D%3Dbe*&fields=given_name"));
    REQUIRE(page["contacts"].size() == 1);
    CHECK(page["contacts"][0] == json{{"id", "4393"}, {"given_name", "Ben"}});
    json desc = body_of(k.v2("GET", "/contacts?order_by=id%20desc&page_size=2&fields=id"));
    REQUIRE(desc["contacts"].size() == 2);
    CHECK(desc["contacts"][0]["id"] == "4393");
    CHECK(desc["contacts"][1]["id"] == "101");
    CHECK_FALSE(desc["next_page_token"].get<std::string>().empty());
    CHECK(k.v2("GET", "/contacts?order_by=email")->status == 400);
    CHECK(k.v2("GET", "/contacts?fields=birthday")->status == 400);
}

TEST_CASE("tags: unknown tag and unknown contact are 404s in REST v2 and [RecordNotFound] in XML-RPC",
          "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    auto no_tag = k.v2("POST", "/tags/999/contacts:applyTags", json{{"contact_ids", {"101"}}});
    CHECK(no_tag->status == 404);
    CHECK(body_of(no_tag)["message"] == "Tag not found: 999");
    auto no_contact = k.v2("POST", "/tags/12/contacts:applyTags", json{{"contact_ids", {"424242"}}});
    CHECK(no_contact->status == 404);
    CHECK(body_of(no_contact)["message"] == "Contact not found: 424242");

    CHECK(k.fault("ContactService.addToGroup", {V::string(""), V::integer(101), V::integer(999)}) ==
          "[RecordNotFound]Record was not found: ContactGroup 999");
    CHECK(k.fault("ContactService.addToGroup", {V::string(""), V::integer(424242), V::integer(12)}) ==
          "[RecordNotFound]Record was not found: Contact 424242");
    CHECK(k.ok("ContactService.addToGroup", {V::string(""), V::integer(101), V::integer(31)}).b);
    CHECK(k.ok("ContactService.addToGroup", {V::string(""), V::integer(101), V::integer(12)}).b);
    CHECK(k.ok("ContactService.load", {V::string(""), V::integer(101), names({"Groups"})}).get("Groups")->s == "12,31");
    CHECK(k.ok("ContactService.removeFromGroup", {V::string(""), V::integer(101), V::integer(31)}).b);
    CHECK(body_of(k.v2("GET", "/contacts/101?fields=tag_ids"))["tag_ids"] == json::array({12}));
}

TEST_CASE("addWithDupCheck updates the contact with that email, or adds one", "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    V same = k.ok("ContactService.addWithDupCheck",
                  {V::string(""), V::struct_of({{"Email", V::string("PAUL@example.com")}, {"JobTitle", V::string("CFO")}}),
                   V::string("Email")});
    CHECK(same.i == 5);
    CHECK(body_of(k.v2("GET", "/contacts/5?fields=job_title"))["job_title"] == "CFO");
    V fresh = k.ok("ContactService.addWithDupCheck",
                   {V::string(""), V::struct_of({{"Email", V::string("new@example.com")}}), V::string("Email")});
    CHECK(fresh.i > 4393);
    V found = k.ok("ContactService.findByEmail", {V::string(""), V::string("new@example.com"), names({"Id", "Email"})});
    CHECK(found == V::array_of({V::struct_of({{"Id", V::integer(fresh.i)}, {"Email", V::string("new@example.com")}})}));
    CHECK(k.ok("DataService.count", {V::string(""), V::string("Contact"), V::struct_of({{"Email", V::string("%")}})}).i == 4);
    CHECK(k.ok("DataService.count", {V::string(""), V::string("Contact"), V::struct_of({{"Id", V::string("10%")}})}).i == 1);
}

TEST_CASE("XML-RPC faults for fields, types and records, as Keap words them", "[keap][bridge-data]") {
    Sandbox sb;
    Keap k{sb};
    CHECK(k.fault("ContactService.load", {V::string(""), V::integer(101), names({"Id", "Birthday"})}) ==
          "[NoFieldFound]No field found: Contact.Birthday");
    CHECK(k.fault("ContactService.update", {V::string(""), V::integer(101),
                                            V::struct_of({{"given_name", V::string("x")}})}) ==
          "[NoFieldFound]No field found: Contact.given_name");
    CHECK(k.fault("ContactService.add", {V::string(""), V::struct_of({{"OwnerID", V::string("7")}})}) ==
          "[InvalidParameter]OwnerID must be an int");
    CHECK(k.fault("ContactService.add", {V::string(""), V::struct_of({{"Groups", V::string("1")}})}) ==
          "[InvalidParameter]Contact.Groups cannot be written");
    CHECK(k.fault("DataService.load", {V::string(""), V::string("Contact"), V::integer(424242), names({"Id"})}) ==
          "[RecordNotFound]Record was not found: Contact 424242");
    CHECK(k.fault("DataService.query", {V::string(""), V::string("Contact"), V::integer(10), V::integer(0),
                                        V::struct_of({{"Nickname", V::string("x")}}), names({"Id"})}) ==
          "[NoFieldFound]No field found: Contact.Nickname");
    CHECK(k.ok("DataService.echo", {V::string("hello")}).s == "hello");
}
