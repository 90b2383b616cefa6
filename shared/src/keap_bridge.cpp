// The XML-RPC bridge's methods: each XML-RPC call becomes a short conversation of REST v2 requests.
// XML-RPC signatures: Keap's XML-RPC reference (developer.infusionsoft.com/docs/xml-rpc/); REST v2: Keap's OpenAPI
// document (github.com/infusionsoft/keap-sdk, sdks/v2/swagger.yml). Tables and differences: docs/xmlrpc-bridge.md.
#include "keyrelay/keap_bridge.h"

#include <limits>
#include <utility>

#include "json_util.h"
#include "keap_bridge_fields.h"

namespace keyrelay::keap::bridge {
namespace {

using json = nlohmann::json;
using xmlrpc::Value;
using T = Value::Type;

constexpr const char* kContacts = "/crm/rest/v2/contacts";
constexpr const char* kReference = "https://developer.keap.com/docs/restv2/";
constexpr int64_t kMaxPageSize = 1000;   // Keap REST v2: page_size 0-1000; XML-RPC: limit at most 1000

// ---------------------------------------------------------------------------------------------------------------
// Steps

Step answer(Value v) {
    Step s;
    s.kind = Step::Kind::answer;
    s.value = std::move(v);
    return s;
}

Step fault(std::string text) {
    Step s;
    s.kind = Step::Kind::fault;
    s.fault = Fault{0, std::move(text)};
    return s;
}

Step fault(Fault f) {
    Step s;
    s.kind = Step::Kind::fault;
    s.fault = std::move(f);
    return s;
}

Step send(const Conversation& c, const char* method, std::string path, const json* body = nullptr) {
    Step s;
    s.kind = Step::Kind::send;
    s.request.method = method;
    s.request.url = c.options.base + path;
    s.request.headers.set("Accept", "application/json");
    if (body != nullptr) {
        s.request.headers.set("Content-Type", "application/json");
        s.request.body = json_util::dump(*body);
    }
    return s;
}

std::string contact_path(int64_t id) { return std::string(kContacts) + "/" + std::to_string(id); }

std::string with_query(std::string path, const Params& params) {
    char sep = '?';
    for (const auto& [k, v] : params) {
        path += sep;
        path += k + "=" + percent_encode(v);
        sep = '&';
    }
    return path;
}

// ---------------------------------------------------------------------------------------------------------------
// Apache XML-RPC's own faults, as Keap's server (Apache XML-RPC on Java) wrote them.

const char* java_type(const Value& v) {
    switch (v.type) {
        case T::nil: return "null";
        case T::integer: return "java.lang.Integer";
        case T::boolean: return "java.lang.Boolean";
        case T::string: return "java.lang.String";
        case T::double_: return "java.lang.Double";
        case T::datetime: return "java.util.Date";
        case T::base64: return "[B";
        case T::array: return "[Ljava.lang.Object;";
        case T::struct_: return "java.util.HashMap";
    }
    return "java.lang.Object";
}

Step no_matching_method(const xmlrpc::Array& params) {
    std::string types;
    for (const auto& p : params) types += std::string(types.empty() ? "" : ", ") + java_type(p);
    return fault("No method matching arguments: " + types);
}

Step parse_failure(const Error& e) {
    if (e.code == "xmlrpc.empty") return fault("Failed to parse XML-RPC request: Premature end of file.");
    if (e.code == "xmlrpc.doctype_refused" || e.message.find("DOCTYPE") != std::string::npos) {
        return fault("Failed to parse XML-RPC request: DOCTYPE is disallowed when the feature "
                     "\"http://apache.org/xml/features/disallow-doctype-decl\" set to true.");
    }
    return fault("Failed to parse XML-RPC request: " + e.message);
}

bool types_are(const xmlrpc::Array& params, std::initializer_list<T> types) {
    if (params.size() != types.size()) return false;
    size_t i = 0;
    for (auto t : types) {
        if (params[i++].type != t) return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Checks shared by several methods

std::optional<Fault> check_table(const std::string& table) {
    if (table == "Contact") return std::nullopt;
    std::string alt = rest_alternative("table:" + table);
    return Fault{0, "[InvalidParameter]Invalid table name: " + table +
                        " (the keyrelay bridge translates the Contact table only; " +
                        (alt.empty() ? std::string("see ") + kReference : "use " + alt) + ")"};
}

// The names of a field list (String[] in Keap's signatures).
std::optional<Fault> names_of(const Value& list, size_t max, std::vector<std::string>& out) {
    if (list.array.size() > max) {
        return Fault{0, "[InvalidParameter]Too many fields: " + std::to_string(list.array.size()) +
                            " (the keyrelay bridge takes at most " + std::to_string(max) + ")"};
    }
    for (const auto& v : list.array) {
        if (v.type != T::string) return Fault{0, "[InvalidParameter]Field names must be strings"};
        out.push_back(v.s);
    }
    return fields::check_names(out);
}

std::optional<Fault> check_paging(int64_t limit, int64_t page, const Options& o) {
    if (limit < 1 || limit > kMaxPageSize) return Fault{0, "[InvalidParameter]limit must be between 1 and 1000"};
    if (page < 0) return Fault{0, "[InvalidParameter]page must not be negative"};
    if (page >= o.max_pages) {
        return Fault{0, "[InvalidParameter]page " + std::to_string(page) + " is beyond the " +
                            std::to_string(o.max_pages) +
                            " pages the keyrelay bridge follows (Keap REST pages by opaque tokens); use GET "
                            "/crm/rest/v2/contacts with page_token"};
    }
    return std::nullopt;
}

// A REST v2 filter value cannot hold the filter's own separators.
bool filterable(const std::string& s) {
    return s.find_first_of(";*,") == std::string::npos;
}

const char* filter_member(std::string_view field) {
    if (field == "Email") return "email";
    if (field == "FirstName") return "given_name";
    if (field == "LastName") return "family_name";
    return nullptr;
}

// Turns query conditions into the conversation's filter / Id match. Returns a fault for what cannot be translated.
std::optional<Fault> set_conditions(Conversation& c, const xmlrpc::Struct& conditions, size_t max) {
    if (conditions.size() > max) {
        return Fault{0, "[InvalidParameter]Too many conditions: " + std::to_string(conditions.size())};
    }
    std::vector<std::string> names;
    for (const auto& m : conditions) names.push_back(m.first);
    if (auto f = fields::check_names(names)) return f;
    std::string filter;
    for (const auto& [name, v] : conditions) {
        const FieldInfo* f = find_field(name);
        if (!f->queryable) {
            return Fault{0, "[InvalidParameter]The keyrelay bridge queries Contact by Id, Email, FirstName and "
                            "LastName only, not by " + name + "; use GET /crm/rest/v2/contacts?filter=… (" +
                            kReference + ")"};
        }
        if (name == "Id") {
            if (v.type == T::integer) {
                c.id_equals = v.i;
                continue;
            }
            if (v.type != T::string) return Fault{0, "[InvalidParameter]Id must be an int or a string"};
            if (v.s == "%") continue;
            std::string digits = v.s;
            bool prefix = !digits.empty() && digits.back() == '%';
            if (prefix) digits.pop_back();
            auto id = json_util::parse_int64(digits);
            if (!id || *id < 0 || digits.empty() || digits[0] == '+' || digits[0] == '-') {
                return Fault{0, "[InvalidParameter]Id must be a number, or digits followed by %"};
            }
            if (prefix) {
                c.id_prefix = digits;
            } else {
                c.id_equals = *id;
            }
            continue;
        }
        if (v.type != T::string) return Fault{0, "[InvalidParameter]" + name + " must be a string"};
        if (v.s == "%") continue;
        std::string value = v.s;
        bool prefix = !value.empty() && value.back() == '%';
        if (prefix) value.pop_back();
        if (value.find('%') != std::string::npos || !filterable(value)) {
            return Fault{0, "[InvalidParameter]The keyrelay bridge translates equality and one trailing % only (" +
                            name + " = \"" + v.s + "\"); use GET /crm/rest/v2/contacts?filter=… (" + kReference +
                            ")"};
        }
        // Keap REST v2 filters: "member==value", '*' as the wildcard, conditions joined by ';'.
        filter += (filter.empty() ? "" : ";") + std::string(filter_member(name)) + "==" + value + (prefix ? "*" : "");
        c.conditions.push_back({name, value, prefix});
    }
    c.filter = filter;
    return std::nullopt;
}

// The list request of a query-like conversation: the current page token, the page size for its mode.
Step list_request(Conversation& c) {
    Params q;
    if (!c.filter.empty()) q.emplace_back("filter", c.filter);
    std::vector<std::string> wanted = c.select;
    q.emplace_back("fields", fields::members_for(wanted));
    if (!c.ascending) q.emplace_back("order_by", "id desc");
    const bool whole = c.method == "DataService.count" || c.method == "ContactService.findByEmail" ||
                       !c.id_prefix.empty();
    q.emplace_back("page_size", std::to_string(whole ? kMaxPageSize : c.limit));
    if (!c.page_token.empty()) q.emplace_back("page_token", c.page_token);
    c.pages++;
    return send(c, "GET", with_query(kContacts, q));
}

Step by_id_request(Conversation& c) {
    std::vector<std::string> wanted = c.select;
    for (const auto& cond : c.conditions) wanted.push_back(cond.field);
    return send(c, "GET", with_query(contact_path(*c.id_equals), {{"fields", fields::members_for(wanted)}}));
}

Step start_listing(Conversation& c) {
    if (c.id_equals) return by_id_request(c);
    return list_request(c);
}

Step patch(Conversation& c, const json& current) {
    std::string mask;
    json body = fields::body(c.data, current, &mask);
    c.stage = 2;
    return send(c, "PATCH", with_query(contact_path(c.id), {{"update_mask", mask}}), &body);
}

Step create(Conversation& c) {
    json body = fields::body(c.data, json::object(), nullptr);
    c.stage = 3;
    return send(c, "POST", kContacts, &body);
}

Step start_update(Conversation& c) {
    if (fields::needs_current(c.data)) {
        c.stage = 1;
        return send(c, "GET", with_query(contact_path(c.id), {{"fields", fields::list_members(c.data)}}));
    }
    return patch(c, json::object());
}

Step start_tag(Conversation& c, bool apply) {
    json body = {{"contact_ids", json::array({std::to_string(c.id)})}};
    c.stage = 5;
    return send(c, "POST",
                "/crm/rest/v2/tags/" + std::to_string(c.tag) + (apply ? "/contacts:applyTags" : "/contacts:removeTags"),
                &body);
}

// ---------------------------------------------------------------------------------------------------------------
// begin: one branch per method

Step plan(Conversation& c, const xmlrpc::Call& call) {
    const auto& p = call.params;
    const std::string& m = call.method;
    const size_t max = c.options.max_names;

    if (m == "DataService.echo") {
        // Keap's signature is echo(text); a key in front of the text is accepted too.
        if (types_are(p, {T::string})) return answer(p[0]);
        if (types_are(p, {T::string, T::string})) return answer(p[1]);
        return no_matching_method(p);
    }
    if (m == "ContactService.add" || m == "DataService.add") {
        const bool ds = m == "DataService.add";
        if (ds ? !types_are(p, {T::string, T::string, T::struct_}) : !types_are(p, {T::string, T::struct_})) {
            return no_matching_method(p);
        }
        if (ds) {
            if (auto f = check_table(p[1].s)) return fault(*f);
        }
        c.data = p[ds ? 2 : 1];
        if (auto f = fields::check_data(c.data, max)) return fault(*f);
        return create(c);
    }
    if (m == "ContactService.update" || m == "DataService.update") {
        const bool ds = m == "DataService.update";
        if (ds ? !types_are(p, {T::string, T::string, T::integer, T::struct_})
               : !types_are(p, {T::string, T::integer, T::struct_})) {
            return no_matching_method(p);
        }
        if (ds) {
            if (auto f = check_table(p[1].s)) return fault(*f);
        }
        c.id = p[ds ? 2 : 1].i;
        c.data = p[ds ? 3 : 2];
        if (auto f = fields::check_data(c.data, max)) return fault(*f);
        return start_update(c);
    }
    if (m == "ContactService.addWithDupCheck") {
        if (!types_are(p, {T::string, T::struct_, T::string})) return no_matching_method(p);
        if (p[2].s != "Email") {
            return fault("[InvalidParameter]The keyrelay bridge translates dupCheckType Email only, not \"" + p[2].s +
                         "\"; use PUT /crm/rest/v1/contacts with duplicate_option (Email, EmailAndName or "
                         "EmailAndNameAndCompany)");
        }
        c.data = p[1];
        if (auto f = fields::check_data(c.data, max)) return fault(*f);
        const Value* email = c.data.get("Email");
        if (email == nullptr || email->s.empty()) return create(c);
        if (!filterable(email->s)) {
            return fault("[InvalidParameter]An Email with ';', ',' or '*' cannot be searched through Keap REST "
                         "filters; use PUT /crm/rest/v1/contacts with duplicate_option Email");
        }
        std::string fields_param = fields::list_members(c.data);
        c.stage = 4;
        return send(c, "GET", with_query(kContacts, {{"filter", "email==" + email->s},
                                                     {"fields", fields_param},
                                                     {"page_size", "1"}}));
    }
    if (m == "ContactService.load" || m == "DataService.load") {
        const bool ds = m == "DataService.load";
        if (ds ? !types_are(p, {T::string, T::string, T::integer, T::array})
               : !types_are(p, {T::string, T::integer, T::array})) {
            return no_matching_method(p);
        }
        if (ds) {
            if (auto f = check_table(p[1].s)) return fault(*f);
        }
        c.id = p[ds ? 2 : 1].i;
        if (auto f = names_of(p[ds ? 3 : 2], max, c.select)) return fault(*f);
        c.stage = 6;
        return send(c, "GET", with_query(contact_path(c.id), {{"fields", fields::members_for(c.select)}}));
    }
    if (m == "ContactService.findByEmail") {
        if (!types_are(p, {T::string, T::string, T::array})) return no_matching_method(p);
        if (auto f = names_of(p[2], max, c.select)) return fault(*f);
        if (!filterable(p[1].s) || p[1].s.find('%') != std::string::npos) {
            return fault("[InvalidParameter]An email with ';', ',', '*' or '%' cannot be searched through Keap "
                         "REST filters; use GET /crm/rest/v2/contacts?filter=email==…");
        }
        c.filter = "email==" + p[1].s;
        c.stage = 7;
        return list_request(c);
    }
    if (m == "ContactService.addToGroup" || m == "ContactService.removeFromGroup") {
        if (!types_are(p, {T::string, T::integer, T::integer})) return no_matching_method(p);
        c.id = p[1].i;
        c.tag = p[2].i;
        return start_tag(c, m == "ContactService.addToGroup");
    }
    const bool find = m == "DataService.findByField";
    if (find || m == "DataService.query") {
        const bool ok = find ? (types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::string,
                                              T::array}) ||
                                types_are(p, {T::string, T::string, T::integer, T::integer, T::string, T::integer,
                                              T::array}))
                             : (types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array}) ||
                                types_are(p, {T::string, T::string, T::integer, T::integer, T::struct_, T::array,
                                              T::string, T::boolean}));
        if (!ok) return no_matching_method(p);
        if (auto f = check_table(p[1].s)) return fault(*f);
        xmlrpc::Struct conditions = find ? xmlrpc::Struct{{p[4].s, p[5]}} : p[4].members;
        if (auto f = set_conditions(c, conditions, max)) return fault(*f);
        if (auto f = names_of(find ? p[6] : p[5], max, c.select)) return fault(*f);
        if (auto f = check_paging(p[2].i, p[3].i, c.options)) return fault(*f);
        c.limit = p[2].i;
        c.page = p[3].i;
        if (p.size() == 8) {
            if (p[6].s != "Id") {
                return fault("[InvalidParameter]The keyrelay bridge orders by Id only, not by " + p[6].s +
                             "; use GET /crm/rest/v2/contacts?order_by=…");
            }
            c.ascending = p[7].b;
        }
        c.stage = 8;
        return start_listing(c);
    }
    if (m == "DataService.count") {
        if (!types_are(p, {T::string, T::string, T::struct_})) return no_matching_method(p);
        if (auto f = check_table(p[1].s)) return fault(*f);
        if (auto f = set_conditions(c, p[2].members, max)) return fault(*f);
        c.stage = 9;
        return start_listing(c);
    }
    std::string alt = rest_alternative(m);
    return fault("No such handler: " + m + " (the keyrelay bridge does not translate it; " +
                 (alt.empty() ? std::string("see ") + kReference : "use " + alt) + ")");
}

// ---------------------------------------------------------------------------------------------------------------
// resume: REST answers

std::string keap_message(const json& body) {
    if (auto m = json_util::get_string(body, "message")) return *m;
    if (const json* f = json_util::get_object(body, "fault")) return json_util::string_or(*f, "faultstring");
    return {};
}

// A non-2xx answer, as the fault Keap's XML-RPC API gave for the same situation.
Step rest_fault(const Conversation& c, const HttpResponse& a) {
    const json body = json_util::parse(a.body);
    const std::string msg = body.is_discarded() ? std::string() : keap_message(body);
    const std::string status = std::to_string(a.status);
    if (a.status == 404) {
        if (c.stage == 5 && (msg.rfind("Tag", 0) == 0 || msg.rfind("tag", 0) == 0)) {
            return fault("[RecordNotFound]Record was not found: ContactGroup " + std::to_string(c.tag));
        }
        return fault("[RecordNotFound]Record was not found: Contact " + std::to_string(c.id));
    }
    if (a.status == 429) {
        std::string retry = a.headers.get("Retry-After").value_or("");
        return fault("[ThrottleExceeded]Keap's API rate limit was reached (HTTP 429" +
                     (msg.empty() ? std::string() : " " + msg) + "); " +
                     (retry.empty() ? std::string("wait and retry, backing off") : "retry after " + retry + " s"));
    }
    if (a.status == 401 || a.status == 403) {
        return fault("[InvalidKey]Keap refused the relay's credentials for this account (HTTP " + status +
                     (msg.empty() ? std::string() : ": " + msg) + "); connect Keap on the relay again");
    }
    if (a.status == 400 || a.status == 422) {
        return fault("[InvalidParameter]" + (msg.empty() ? "Keap refused the request (HTTP " + status + ")" : msg));
    }
    return fault("[InvalidResponse]Keap answered HTTP " + status + (msg.empty() ? std::string() : ": " + msg));
}

Step not_json(const HttpResponse& a) {
    return fault("[InvalidResponse]Keap answered HTTP " + std::to_string(a.status) +
                 " with a body that is not the expected JSON");
}

bool condition_holds(const Conversation& c, const RestContact& contact) {
    for (const auto& cond : c.conditions) {
        auto v = fields::read(*find_field(cond.field), contact);
        const std::string have = v ? v->s : std::string();
        if (!fields::text_matches(have, cond.value, cond.prefix)) return false;
    }
    return true;
}

Step listing_answer(Conversation& c) {
    if (c.method == "DataService.count") return answer(Value::integer(c.seen));
    Step s;
    s.kind = Step::Kind::answer;
    s.written = std::exchange(c.rows, xmlrpc::ArrayResponseWriter{}).finish();
    return s;
}

Step next_page(Conversation& c, const std::string& token) {
    if (token.empty()) return listing_answer(c);
    if (c.pages >= c.options.max_pages) {
        return fault("[InvalidParameter]The answer spans more than " + std::to_string(c.options.max_pages) +
                     " REST pages, the most the keyrelay bridge follows for one call; use GET "
                     "/crm/rest/v2/contacts with page_token");
    }
    c.page_token = token;
    return list_request(c);
}

// A GET of one contact by id (a query on Id without '%').
Step on_contact_by_id(Conversation& c, const HttpResponse& a, const json& body) {
    if (a.status == 404) return listing_answer(c);
    if (!body.is_object()) return not_json(a);
    const RestContact contact = rest_contact(body);
    if (condition_holds(c, contact)) {
        c.seen = 1;
        if (c.method != "DataService.count" && c.page == 0) {
            fields::write_row(c.rows, contact, fields::selection(c.select));
        }
    }
    return listing_answer(c);
}

// A list page, read as it streams (read_contact_page: no DOM, and no contact kept past its row).
Step on_listing(Conversation& c, const HttpResponse& a) {
    const bool count = c.method == "DataService.count";
    const bool all = c.method == "ContactService.findByEmail";
    const bool prefix = !c.id_prefix.empty();
    // Page N of a query (without an Id prefix) is N hops along next_page_token: only that page's rows are written.
    const bool hop = !prefix && !all && !count && c.pages - 1 < c.page;
    const std::vector<const FieldInfo*> selected = fields::selection(c.select);
    // The rows' XML is about twice the JSON they come from (tags for every member): one allocation, not a dozen
    // regrowths of a string that ends up hundreds of KB long.
    if (!count && !hop) c.rows.reserve(2 * a.body.size());
    const auto token = read_contact_page(a.body, [&](const RestContact& contact) {
        if (prefix) {
            // Keap REST cannot filter ids by prefix: every page is read, ids are matched here.
            const std::string text = contact.id ? std::to_string(*contact.id) : std::string();
            if (text.compare(0, c.id_prefix.size(), c.id_prefix) != 0) return;
            const int64_t index = c.seen++;
            if (!count && index >= c.page * c.limit && index < (c.page + 1) * c.limit) {
                fields::write_row(c.rows, contact, selected);
            }
        } else if (count) {
            ++c.seen;
        } else if (!hop) {
            fields::write_row(c.rows, contact, selected);
        }
    });
    if (!token) return not_json(a);
    if (prefix && !count && static_cast<int64_t>(c.rows.items()) >= c.limit) return listing_answer(c);
    if (prefix || count || all || hop) return next_page(c, *token);
    return listing_answer(c);
}

}  // namespace

Step begin(const xmlrpc::Call& call, Conversation& c, const Options& options) {
    c = Conversation{};
    c.method = call.method;
    c.options = options;
    return plan(c, call);
}

Step begin(std::string_view body, Conversation& c, const Options& options) {
    auto call = xmlrpc::decode_call(body, options.limits);
    if (!call) {
        c = Conversation{};
        c.options = options;
        return parse_failure(call.error());
    }
    return begin(*call, c, options);
}

Step resume(Conversation& c, const HttpResponse& a) {
    const bool listing = c.stage == 7 || c.stage == 8 || c.stage == 9;
    const bool ok = a.status >= 200 && a.status < 300;
    if (!ok && !(listing && c.id_equals && a.status == 404)) return rest_fault(c, a);
    if (listing && !c.id_equals) return on_listing(c, a);
    const json body = a.body.empty() ? json::object() : json_util::parse(a.body);
    if (body.is_discarded()) return not_json(a);
    switch (c.stage) {
        case 1:   // the current lists, then the PATCH that keeps what the call does not name
            if (!body.is_object()) return not_json(a);
            return patch(c, body);
        case 2:   // PATCH done
            return answer(Value::integer(c.id));
        case 3: {   // POST done: the new contact's id
            auto id = json_util::get_int64(body, "id");
            if (!id) return not_json(a);
            return answer(Value::integer(*id));
        }
        case 4: {   // addWithDupCheck: the first contact with that email is updated, or a new one is created
            const json* list = json_util::get_array(body, "contacts");
            if (list == nullptr) return not_json(a);
            if (list->empty()) return create(c);
            auto id = json_util::get_int64((*list)[0], "id");
            if (!id) return not_json(a);
            c.id = *id;
            return patch(c, (*list)[0]);
        }
        case 5:   // tag applied or removed
            return answer(Value::boolean(true));
        case 6:   // load
            if (!body.is_object()) return not_json(a);
            return answer(fields::row(rest_contact(body), fields::selection(c.select)));
        case 7:
        case 8:
        case 9:
            return on_contact_by_id(c, a, body);
        default:
            return fault("[InvalidState]The keyrelay bridge got an answer it did not ask for");
    }
}

std::string encode(const Step& step) {
    switch (step.kind) {
        case Step::Kind::answer: return step.written.empty() ? xmlrpc::encode_response(step.value) : step.written;
        case Step::Kind::fault: return xmlrpc::encode_fault(step.fault.code, step.fault.string);
        case Step::Kind::send: break;
    }
    return xmlrpc::encode_fault(0, "[InvalidState]The keyrelay bridge has a request still to send");
}

std::string encode(Step&& step) {
    if (step.kind == Step::Kind::answer && !step.written.empty()) return std::move(step.written);
    return encode(static_cast<const Step&>(step));
}

std::optional<std::string> private_key(const xmlrpc::Call& call) {
    if (call.params.empty() || call.params[0].type != T::string) return std::nullopt;
    return call.params[0].s;
}

const std::vector<MethodInfo>& methods() {
    static const std::vector<MethodInfo> table = {
        {"DataService.echo", "(string text) -> string", "none: answered by the bridge"},
        {"ContactService.add", "(key, struct data) -> int", "POST /crm/rest/v2/contacts"},
        {"ContactService.addWithDupCheck", "(key, struct data, \"Email\") -> int",
         "GET /crm/rest/v2/contacts?filter=email==…&page_size=1, then PATCH /crm/rest/v2/contacts/{id} or POST "
         "/crm/rest/v2/contacts"},
        {"ContactService.update", "(key, int id, struct data) -> int",
         "PATCH /crm/rest/v2/contacts/{id}?update_mask=… (after GET /crm/rest/v2/contacts/{id} when an email, phone "
         "or address changes)"},
        {"ContactService.load", "(key, int id, string[] fields) -> struct", "GET /crm/rest/v2/contacts/{id}?fields=…"},
        {"ContactService.findByEmail", "(key, string email, string[] fields) -> struct[]",
         "GET /crm/rest/v2/contacts?filter=email==…"},
        {"ContactService.addToGroup", "(key, int contactId, int tagId) -> boolean",
         "POST /crm/rest/v2/tags/{tagId}/contacts:applyTags"},
        {"ContactService.removeFromGroup", "(key, int contactId, int tagId) -> boolean",
         "POST /crm/rest/v2/tags/{tagId}/contacts:removeTags"},
        {"DataService.findByField", "(key, \"Contact\", int limit, int page, string field, value, string[] fields) "
                                    "-> struct[]",
         "GET /crm/rest/v2/contacts?filter=…&page_size=limit (page N: N hops along next_page_token); Id: GET "
         "/crm/rest/v2/contacts/{id}"},
        {"DataService.query", "(key, \"Contact\", int limit, int page, struct query, string[] fields[, \"Id\", "
                              "boolean ascending]) -> struct[]",
         "as findByField, conditions joined with ';'"},
        {"DataService.count", "(key, \"Contact\", struct query) -> int",
         "GET /crm/rest/v2/contacts?filter=…&page_size=1000, every page"},
        {"DataService.load", "(key, \"Contact\", int id, string[] fields) -> struct", "as ContactService.load"},
        {"DataService.update", "(key, \"Contact\", int id, struct data) -> int", "as ContactService.update"},
        {"DataService.add", "(key, \"Contact\", struct data) -> int", "as ContactService.add"},
    };
    return table;
}

std::string rest_alternative(std::string_view what) {
    struct Row {
        const char* key;
        const char* rest;
    };
    // Tables of DataService, then services by name prefix. Endpoints: Keap's REST v2 reference (kReference).
    static const Row tables[] = {
        {"table:Company", "/crm/rest/v2/companies"},
        {"table:ContactGroup", "/crm/rest/v2/tags"},
        {"table:ContactGroupAssign", "GET /crm/rest/v2/tags/{tag_id}/contacts"},
        {"table:ContactGroupCategory", "/crm/rest/v2/tags/categories"},
        {"table:ContactAction", "/crm/rest/v2/contacts/{contact_id}/notes"},
        {"table:Lead", "/crm/rest/v2/opportunities"},
        {"table:Job", "/crm/rest/v2/orders"},
        {"table:Invoice", "/crm/rest/v2/orders"},
        {"table:Product", "/crm/rest/v2/products"},
        {"table:RecurringOrder", "/crm/rest/v2/subscriptions"},
        {"table:Affiliate", "/crm/rest/v2/affiliates"},
        {"table:User", "/crm/rest/v2/users"},
        {"table:FileBox", "/crm/rest/v2/files"},
        {"table:Campaign", "/crm/rest/v2/campaigns"},
    };
    static const Row services[] = {
        {"DataService.getUserInfo", "GET /crm/rest/v1/oauth/connect/userinfo"},
        {"ContactService.", "/crm/rest/v2/contacts"},
        {"APIEmailService.", "/crm/rest/v2/emails"},
        {"EmailService.", "/crm/rest/v2/emails"},
        {"FunnelService.", "/crm/rest/v2/campaigns"},
        {"CampaignService.", "/crm/rest/v2/campaigns"},
        {"InvoiceService.", "/crm/rest/v2/orders"},
        {"OrderService.", "/crm/rest/v2/orders"},
        {"ProductService.", "/crm/rest/v2/products"},
        {"FileService.", "/crm/rest/v2/files"},
        {"APIAffiliateService.", "/crm/rest/v2/affiliates"},
        {"AffiliateService.", "/crm/rest/v2/affiliates"},
        {"SearchService.", "GET /crm/rest/v2/contacts?filter=…"},
    };
    for (const auto& r : tables) {
        if (what == r.key) return r.rest;
    }
    for (const auto& r : services) {
        if (what.rfind(r.key, 0) == 0) return r.rest;
    }
    return {};
}

Plan describe(std::string_view body, const Options& options) {
    Plan plan;
    Conversation c;
    Step s = begin(body, c, options);
    if (s.kind == Step::Kind::fault) {
        plan.fault = s.fault;
        return plan;
    }
    plan.ok = true;
    if (s.kind == Step::Kind::answer) return plan;
    plan.calls.push_back({s.request, ""});
    // The calls after the first depend on Keap's answers: run the same code on stand-in answers. The stand-in id
    // and page token are written back as "{id}" and "{next_page_token}".
    const std::string sentinel_id = std::to_string(std::numeric_limits<int64_t>::max() - 7);
    auto shown = [&](HttpRequest r) {
        for (const std::string& from : {sentinel_id}) {
            for (size_t at; (at = r.url.find(from)) != std::string::npos;) r.url.replace(at, from.size(), "{id}");
        }
        return r;
    };
    auto after = [&](const Conversation& from, int status, const std::string& answer_body) {
        Conversation copy = from;
        HttpResponse a;
        a.status = status;
        a.body = answer_body;
        return std::make_pair(resume(copy, a), copy);
    };
    if (c.stage == 1) {
        auto [next, rest] = after(c, 200, "{\"id\":\"" + std::to_string(c.id) + "\"}");
        if (next.kind == Step::Kind::send) plan.calls.push_back({next.request, "when the contact exists"});
    } else if (c.stage == 4) {
        auto [created, r1] = after(c, 200, "{\"contacts\":[]}");
        if (created.kind == Step::Kind::send) {
            plan.calls.push_back({created.request, "when no contact has that email"});
        }
        auto [updated, r2] = after(c, 200, "{\"contacts\":[{\"id\":\"" + sentinel_id + "\"}]}");
        if (updated.kind == Step::Kind::send) {
            plan.calls.push_back({shown(updated.request), "when contact {id} has that email"});
        }
    } else if (c.stage == 8 && c.page > 0 && c.id_prefix.empty() && !c.id_equals) {
        auto [next, r] = after(c, 200, "{\"contacts\":[],\"next_page_token\":\"NEXT\"}");
        if (next.kind == Step::Kind::send) {
            std::string url = next.request.url;
            auto at = url.find("page_token=NEXT");
            if (at != std::string::npos) url.replace(at, 15, "page_token={next_page_token}");
            next.request.url = url;
            plan.calls.push_back({next.request, "then along next_page_token, " + std::to_string(c.page) +
                                                    " time(s) in all: page " + std::to_string(c.page) +
                                                    " is the last of them"});
        }
    } else if (!c.id_equals && (c.stage == 7 || c.stage == 9 || !c.id_prefix.empty())) {
        HttpRequest again = s.request;
        again.url += "&page_token={next_page_token}";
        plan.calls.push_back({again, "then again along next_page_token, while Keap gives one"});
    }
    return plan;
}

}  // namespace keyrelay::keap::bridge
