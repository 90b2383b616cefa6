// Keap's XML-RPC endpoint on the same data as REST, with Keap's (Apache XML-RPC's) fault strings.
#include "keyrelay/xmlrpc.h"
#include "sandbox_fixture.h"

using namespace sbt;
namespace xr = keyrelay::xmlrpc;
using V = xr::Value;

namespace {

const char* kInvalidConfig = "[InvalidConfig]Invalid Configuration: for help setting up your API, please contact Support";

xr::Array fields(std::initializer_list<const char*> names) {
    xr::Array a;
    for (const char* n : names) a.push_back(V::string(n));
    return a;
}

struct Rpc {
    const Sandbox& sb;
    httplib::Headers auth;

    httplib::Result raw(const std::string& body, const std::string& path = "/keap/crm/xmlrpc/v1") const {
        return sb.post(path, body, "text/xml", auth);
    }
    xr::Response call(const std::string& method, const xr::Array& params) const {
        auto res = raw(xr::encode_call(method, params));
        REQUIRE(res);
        REQUIRE(res->status == 200);
        CHECK(res->get_header_value("Content-Type").find("text/xml") == 0);
        auto decoded = xr::decode_response(res->body);
        INFO(res->body);
        REQUIRE(decoded.ok());
        return *decoded;
    }
    V ok(const std::string& method, const xr::Array& params) const {
        auto r = call(method, params);
        INFO(r.fault.string);
        REQUIRE_FALSE(r.is_fault);
        return r.value;
    }
    xr::Fault fault(const std::string& method, const xr::Array& params) const {
        auto r = call(method, params);
        REQUIRE(r.is_fault);
        return r.fault;
    }
};

Rpc with_pat(const Sandbox& sb) { return Rpc{sb, {{"X-Keap-API-Key", sb.config["keap"]["pat"].get<std::string>()}}}; }

}  // namespace

TEST_CASE("ContactService.add and update change the contacts REST sees", "[keap][xmlrpc]") {
    Sandbox sb;
    Rpc rpc = with_pat(sb);
    V id = rpc.ok("ContactService.add", {V::string(""), V::struct_of({{"FirstName", V::string("Alan")},
                                                                       {"LastName", V::string("Turing")},
                                                                       {"Email", V::string("alan@example.com")}})});
    REQUIRE(id.type == V::Type::integer);
    const auto key = httplib::Headers{{"X-Keap-API-Key", sb.config["keap"]["pat"].get<std::string>()}};
    json found = body_of(sb.get("/keap/crm/rest/v1/contacts?email=alan%40example.com", key));
    REQUIRE(found["count"] == 1);
    CHECK(found["contacts"][0]["id"] == id.i);

    V same = rpc.ok("ContactService.update", {V::string(""), V::integer(id.i),
                                              V::struct_of({{"FirstName", V::string("Alan M.")}})});
    CHECK(same.i == id.i);
    CHECK(body_of(sb.get("/keap/crm/rest/v1/contacts/" + std::to_string(id.i), key))["given_name"] == "Alan M.");

    xr::Fault missing = rpc.fault("ContactService.update", {V::string(""), V::integer(424242), V::struct_of({})});
    CHECK(missing.string.rfind("[RecordNotFound]", 0) == 0);
}

TEST_CASE("DataService.findByField matches exact values and % wildcards, with PascalCase fields",
          "[keap][xmlrpc]") {
    Sandbox sb;
    Rpc rpc = with_pat(sb);
    V rows = rpc.ok("DataService.findByField", {V::string(""), V::string("Contact"), V::integer(10), V::integer(0),
                                                V::string("Email"), V::string("Ada@Example.com"),
                                                V::array_of(fields({"Id", "FirstName", "LastName", "Email"}))});
    REQUIRE(rows.array.size() == 1);
    const V& ada = rows.array[0];
    CHECK(ada.get("Id")->i == 101);
    CHECK(ada.get("FirstName")->s == "Ada");
    CHECK(ada.get("LastName")->s == "Lovelace");
    CHECK(ada.get("Email")->s == "ada@example.com");

    V wild = rpc.ok("DataService.findByField", {V::string(""), V::string("Contact"), V::integer(10), V::integer(0),
                                                V::string("Email"), V::string("%@example.com"),
                                                V::array_of(fields({"Id"}))});
    CHECK(wild.array.size() == 3);
    CHECK(wild.array[0].members.size() == 1);

    V none = rpc.ok("DataService.findByField", {V::string(""), V::string("Contact"), V::integer(10), V::integer(0),
                                                V::string("Email"), V::string("nobody@example.com"),
                                                V::array_of(fields({"Id"}))});
    CHECK(none.array.empty());

    xr::Fault table = rpc.fault("DataService.findByField",
                                {V::string(""), V::string("Invoice"), V::integer(10), V::integer(0),
                                 V::string("Id"), V::string("1"), V::array_of(fields({"Id"}))});
    CHECK(table.string.rfind("[InvalidParameter]", 0) == 0);
}

TEST_CASE("DataService.query combines conditions and honours limit, page and order", "[keap][xmlrpc]") {
    Sandbox sb;
    Rpc rpc = with_pat(sb);
    auto query = [&](const xr::Struct& q, int limit, int page, const char* order, bool asc) {
        return rpc.ok("DataService.query", {V::string(""), V::string("Contact"), V::integer(limit), V::integer(page),
                                            V::struct_of(q), V::array_of(fields({"Id", "FirstName"})),
                                            V::string(order), V::boolean(asc)});
    };
    V both = query({{"FirstName", V::string("Ben")}, {"Email", V::string("%anderson%")}}, 10, 0, "Id", true);
    REQUIRE(both.array.size() == 1);
    CHECK(both.array[0].get("Id")->i == 4393);
    V desc = query({{"Email", V::string("%")}}, 2, 0, "Id", false);
    REQUIRE(desc.array.size() == 2);
    CHECK(desc.array[0].get("Id")->i == 4393);
    CHECK(desc.array[1].get("Id")->i == 101);
    V page1 = query({{"Email", V::string("%")}}, 2, 1, "Id", false);
    REQUIRE(page1.array.size() == 1);
    CHECK(page1.array[0].get("Id")->i == 5);
    // The six-parameter form (no order) works too.
    V short_form = rpc.ok("DataService.query", {V::string(""), V::string("Contact"), V::integer(5), V::integer(0),
                                                V::struct_of({{"Id", V::integer(5)}}), V::array_of(fields({"Id"}))});
    CHECK(short_form.array.size() == 1);
}

TEST_CASE("DataService.getUserInfo takes no key parameter", "[keap][xmlrpc]") {
    Sandbox sb;
    Rpc rpc = with_pat(sb);
    V info = rpc.ok("DataService.getUserInfo", {});
    CHECK(info.get("Email")->s == "admin@example.com");
    CHECK(info.get("DisplayName")->s == "Sandbox Admin");
    xr::Fault f = rpc.fault("DataService.getUserInfo", {V::string("a key")});
    CHECK(f.code == 0);
    CHECK(f.string == "No method matching arguments: java.lang.String");
}

TEST_CASE("a bad API key gets Keap's InvalidConfig fault", "[keap][xmlrpc]") {
    Sandbox sb;
    SECTION("in the X-Keap-API-Key header") {
        Rpc rpc{sb, {{"X-Keap-API-Key", "KeapAK-wrong"}}};
        CHECK(rpc.fault("DataService.getUserInfo", {}).string == kInvalidConfig);
    }
    SECTION("as the legacy first parameter, without headers") {
        Rpc rpc{sb, {}};
        xr::Fault f = rpc.fault("ContactService.add", {V::string("legacy-encrypted-key"), V::struct_of({})});
        CHECK(f.code == 0);
        CHECK(f.string == kInvalidConfig);
        CHECK(rpc.fault("DataService.getUserInfo", {}).string == kInvalidConfig);
    }
    SECTION("a valid key as the first parameter still works") {
        Rpc rpc{sb, {}};
        V id = rpc.ok("ContactService.add", {V::string(sb.config["keap"]["api_key"].get<std::string>()),
                                             V::struct_of({{"Email", V::string("k@example.com")}})});
        CHECK(id.i > 0);
    }
}

TEST_CASE("an unknown method gets No such handler", "[keap][xmlrpc]") {
    Sandbox sb;
    xr::Fault f = with_pat(sb).fault("ContactService.merge", {V::string(""), V::integer(5), V::integer(101)});
    CHECK(f.code == 0);
    CHECK(f.string == "No such handler: ContactService.merge");
    // Unknown handlers are reported before the key is looked at, as Apache XML-RPC does.
    CHECK(Rpc{sb, {}}.fault("Nope.nothing", {}).string == "No such handler: Nope.nothing");
}

TEST_CASE("an empty or malformed request gets a parse fault with faultCode 0", "[keap][xmlrpc]") {
    Sandbox sb;
    Rpc rpc = with_pat(sb);
    auto decode = [&](const std::string& body) {
        auto res = rpc.raw(body);
        REQUIRE(res->status == 200);
        auto r = xr::decode_response(res->body);
        REQUIRE(r.ok());
        REQUIRE(r->is_fault);
        CHECK(r->fault.code == 0);
        return r->fault.string;
    };
    CHECK(decode("") == "Failed to parse XML-RPC request: Premature end of file.");
    CHECK(decode("<?xml version=\"1.0\"?><methodCall><methodName>DataService.getUserInfo</methodName>")
              .rfind("Failed to parse XML-RPC request: ", 0) == 0);
    CHECK(decode("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><methodCall/>")
              .find("DOCTYPE is disallowed") != std::string::npos);
}

TEST_CASE("arguments of the wrong types get No method matching arguments", "[keap][xmlrpc]") {
    Sandbox sb;
    xr::Fault f = with_pat(sb).fault("ContactService.update",
                                     {V::string(""), V::string("101"), V::struct_of({})});
    CHECK(f.string == "No method matching arguments: java.lang.String, java.lang.String, java.util.HashMap");
}

TEST_CASE("OAuth tokens work as Bearer and as ?access_token=, bad ones get the gateway's JSON 401", "[keap][xmlrpc]") {
    Sandbox sb;
    const std::string t = sb.keap_tokens()["access_token"].get<std::string>();
    Rpc bearer_rpc{sb, bearer(t)};
    CHECK(bearer_rpc.ok("DataService.getUserInfo", {}).get("Email")->s == "admin@example.com");

    Rpc plain{sb, {}};
    auto res = plain.raw(xr::encode_call("DataService.getUserInfo", {}), "/keap/crm/xmlrpc/v1?access_token=" + t);
    REQUIRE(res->status == 200);
    CHECK(res->has_header("x-keap-product-throttle-limit"));

    Rpc wrong{sb, bearer("expired-or-unknown")};
    auto denied = wrong.raw(xr::encode_call("DataService.getUserInfo", {}));
    CHECK(denied->status == 401);
    CHECK(body_of(denied)["fault"]["faultstring"] == "Invalid Access Token");
    // What a client parsing it as XML-RPC sees: the root element is not methodResponse.
    CHECK_FALSE(xr::decode_response(denied->body).ok());
}
