// The XML-RPC bridge: Keap's legacy XML-RPC calls (ContactService.*, DataService.* on table Contact) answered
// with Keap's REST v2 API. No I/O: the core plans each REST request, the caller sends it and hands the answer
// back, and the core turns the REST answers into the XML-RPC value (or fault) the old client expects.
//
//   Conversation c;
//   Step s = begin(request_body, c);
//   while (s.kind == Step::Kind::send) s = resume(c, send_somehow(s.request));
//   write(encode(s));
//
// Field and method tables: docs/xmlrpc-bridge.md (the same tables as contact_fields() and methods() below).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/xmlrpc.h"

namespace keyrelay::keap::bridge {

// An XML-RPC fault as Keap's XML-RPC server wrote them: faultCode 0 and a faultString that starts with a
// bracketed kind ("[RecordNotFound]Record was not found: Contact 7"), or Apache XML-RPC's own messages
// ("No such handler: X.y", "No method matching arguments: ...", "Failed to parse XML-RPC request: ...").
struct Fault {
    int code = 0;
    std::string string;
};

// One row of the field map: an XML-RPC Contact field and where it lives in a REST v2 contact.
struct FieldInfo {
    const char* name;       // XML-RPC name, "EmailAddress2"
    const char* xml_type;   // "int", "string", "dateTime.iso8601"
    const char* rest;       // the REST v2 path, "email_addresses[field=EMAIL2].email"
    const char* member;     // the top-level REST member, for ?fields= and update_mask ("email_addresses")
    const char* api;        // "v2" (every mapped field today)
    bool writable;          // accepted by add/update (false: Id, DateCreated, LastUpdated, Groups)
    bool queryable;         // accepted as a query/findByField condition (Id, Email, FirstName, LastName)
};
const std::vector<FieldInfo>& contact_fields();
const FieldInfo* find_field(std::string_view name);

// One row of the method table.
struct MethodInfo {
    const char* name;        // "ContactService.addWithDupCheck"
    const char* signature;   // "(key, struct data, string dupCheckType) -> int"
    const char* rest;        // "GET /crm/rest/v2/contacts?filter=email==…, then POST or PATCH"
};
const std::vector<MethodInfo>& methods();

// The REST call to use instead, for an XML-RPC method the bridge does not translate ("ContactService.merge"),
// or for a DataService table other than Contact ("table:Company"). Empty when nothing better than the REST
// reference is known.
std::string rest_alternative(std::string_view method_or_table);

struct Options {
    std::string base;        // prefix for every request path: "" (paths like "/crm/rest/v2/contacts"), or a full
                             // API base such as "https://api.infusionsoft.com"
    xmlrpc::Limits limits;   // the same limits as the XML-RPC codec: hostile XML is refused with a fault
    size_t max_names = 200;  // fields in a struct or names in a field list
    int max_pages = 100;     // REST pages the bridge follows for one call (page tokens are opaque: page N of an
                             // XML-RPC query is N hops along next_page_token)
};

struct Step {
    enum class Kind { send, answer, fault };
    Kind kind = Kind::fault;
    HttpRequest request;    // send: this request; pass its answer to resume()
    xmlrpc::Value value;    // answer (nil when `written` holds it)
    std::string written;    // answer of a list call (query, findByField, findByEmail): the whole methodResponse,
                            // written row by row as the REST pages were read; encode() returns it
    Fault fault;            // fault
};

// What a call is doing between steps. Plain data; copyable. Fields are internal to the bridge.
struct Conversation {
    std::string method;
    Options options;
    int stage = 0;
    int pages = 0;
    int64_t id = 0, tag = 0;
    int64_t limit = 0, page = 0;
    bool ascending = true;
    std::string filter;                  // v2 filter expression ("" = none)
    std::string id_prefix;               // Id condition with a trailing '%': matched here, over every page
    std::optional<int64_t> id_equals;    // Id condition without '%'
    struct Condition {
        std::string field;   // XML-RPC name
        std::string value;   // without the trailing '%'
        bool prefix = false;
    };
    std::vector<Condition> conditions;   // text conditions (also sent in `filter`); checked here after a GET by Id
    std::vector<std::string> select;     // XML-RPC fields to answer with
    xmlrpc::Value data;                  // the struct to write (add/update)
    std::string page_token;
    xmlrpc::ArrayResponseWriter rows;    // the answer so far, a struct per row
    int64_t seen = 0;                    // matching contacts counted so far (query paging, count)
};

// Decodes the methodCall in `body` and returns the first step: a request to send, or at once an answer
// (DataService.echo) or a fault (not XML-RPC, hostile XML, unknown method, wrong parameter types, a field the map
// does not know, a table other than Contact, ...).
Step begin(std::string_view body, Conversation& conversation, const Options& options = {});
Step begin(const xmlrpc::Call& call, Conversation& conversation, const Options& options = {});

// The answer to the request of the last `send` step. Returns the next step. Keap's REST errors become faults:
// 404 [RecordNotFound], 400 [InvalidParameter] with Keap's message, 429 [ThrottleExceeded], 401/403
// [InvalidKey]; a body that is not the expected JSON becomes [InvalidResponse].
Step resume(Conversation& conversation, const HttpResponse& answer);

// The XML-RPC document for a final step (answer or fault); for a send step, a fault saying so. The second form
// moves a written list answer out instead of copying it.
std::string encode(const Step& step);
std::string encode(Step&& step);

// The first parameter of a call when it is a string: where old clients put their API key (privateKey).
std::optional<std::string> private_key(const xmlrpc::Call& call);

// Every REST call a methodCall can become, for showing (the page's "Migrate an XML-RPC call"): the first request
// exactly as begin() plans it, then the ones that depend on answers, with `when` saying which answer leads there
// and "{id}" / "{next_page_token}" where a value comes from an earlier answer.
struct PlannedCall {
    HttpRequest request;
    std::string when;   // "" for the first call
};
struct Plan {
    bool ok = false;
    Fault fault;                       // when !ok
    std::vector<PlannedCall> calls;    // when ok (empty for DataService.echo: it needs no REST call)
};
Plan describe(std::string_view body, const Options& options = {});

}  // namespace keyrelay::keap::bridge
