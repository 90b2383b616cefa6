// Keap (formerly Infusionsoft): REST v1/v2 request builders and parsers, XML-RPC calls.
// Shapes: docs/reference/keap.md (developer.keap.com, infusionsoft/keap-sdk swagger, infusionsoft-php).
#include "keyrelay/keap.h"

#include <string>
#include <utility>

#include "keyrelay/diagnose.h"

#include "explain.h"
#include "json_util.h"

namespace keyrelay::keap {
namespace {

using json_util::json;

HttpRequest rest(std::string method, std::string url) {
    HttpRequest r;
    r.method = std::move(method);
    r.url = std::move(url);
    r.headers.set("Accept", "application/json");
    return r;
}

HttpRequest rest_json(std::string method, std::string url, const json& body) {
    HttpRequest r = rest(std::move(method), std::move(url));
    r.headers.set("Content-Type", "application/json");
    r.body = json_util::dump(body);
    return r;
}

HttpRequest xmlrpc_post(std::string_view endpoint, std::string_view method, const xmlrpc::Array& params) {
    HttpRequest r;
    r.method = "POST";
    r.url = std::string(endpoint);
    r.headers.set("Content-Type", "text/xml");
    r.headers.set("Accept", "text/xml");
    r.body = xmlrpc::encode_call(method, params);
    return r;
}

bool is_success(int status) { return status >= 200 && status < 300; }

constexpr const char* kUnauthorizedHint =
    "The access token expired or is unknown — keyrelay refreshes it for you; if this persists, reconnect Keap. With "
    "a Personal Access Token or Service Account Key, check the X-Keap-API-Key header's value.";

constexpr const char* kLimits =
    " Keap allows an OAuth app 1,500 calls a minute and 150,000 a day; a Personal Access Token or Service Account "
    "Key 10 a second, 240 a minute and 30,000 a day.";

Error from_diagnosis(std::string code, const Diagnosis& d) {
    return make_error(std::move(code), d.summary, d.hint);
}

// A non-2xx answer from Keap's REST API, or a 2xx whose body is not JSON.
// Keap v1 errors are {"message": ...}; v2 {"code","message","status","details"}; the gateway sends
// {"fault":{"faultstring", "detail":{"errorcode"}}}; 429 {"code":"429","message":"Quota Exceeded",...}.
Error rest_error(const HttpResponse& response) {
    json body = json_util::parse(explain::trim_body(response.body));
    const int status = response.status;
    const std::string status_line = explain::status_line(status);

    // Not JSON at all (an HTML page, plain text, nothing): the diagnosis explains what came instead.
    if (body.is_discarded()) {
        Diagnosis d = diagnose(response, Expect::json);
        if (status == 401 && d.code != "legacy_key_dead") {
            return make_error("keap.unauthorized", d.summary, kUnauthorizedHint);
        }
        if (status == 403) return from_diagnosis("keap.forbidden", d);
        if (status == 404) return from_diagnosis("keap.not_found", d);
        if (status == 429 || d.code == "rate_limited") {
            return make_error("keap.rate_limited", d.summary, d.hint + kLimits);
        }
        if (!is_success(status) && explain::trim_body(response.body).empty()) return from_diagnosis("keap.http_error", d);
        return from_diagnosis("keap.not_json", d);
    }

    std::string message;
    std::string errorcode;
    if (const json* fault = json_util::get_object(body, "fault")) {
        message = json_util::string_or(*fault, "faultstring");
        if (const json* detail = json_util::get_object(*fault, "detail")) {
            errorcode = json_util::string_or(*detail, "errorcode");
        }
    }
    if (message.empty()) message = json_util::string_or(body, "message");
    if (message.empty()) message = json_util::string_or(body, "error_description");
    if (message.empty()) message = json_util::string_or(body, "error");
    // v2 adds a status word ("Request Throttled", "NOT_FOUND") that reads well beside the message.
    std::string v2_status = json_util::string_or(body, "status");
    std::string said = message.empty() ? std::string(" with no message")
                                       : ": \"" + explain::one_line(message) + "\"" +
                                             (v2_status.empty() ? std::string() : " (" + v2_status + ")");
    std::string text = "Keap answered " + status_line + said + ".";

    if (status == 401) {
        return make_error("keap.unauthorized", text, kUnauthorizedHint);
    }
    if (status == 403) {
        Diagnosis d = diagnose(response, Expect::json);
        if (d.code == "cors_origin_denied") return make_error("keap.forbidden", text, d.hint);
        return make_error("keap.forbidden", text,
                          "The credentials are valid but may not do this: the connected Keap user's role lacks the "
                          "permission, or a Personal Access Token acts with its user's rights only (a Service "
                          "Account Key has admin rights).");
    }
    if (status == 404) {
        return make_error("keap.not_found", text,
                          "No such contact or path: check the id, and that the base URL ends with /crm/rest/v1 "
                          "(or /v2 for the v2 calls).");
    }
    if (status == 429 || icontains(errorcode, "ratelimit") || icontains(errorcode, "quota")) {
        explain::RateLimit rl = explain::rate_limit(response, std::nullopt);
        return make_error("keap.rate_limited", text, rl.when + kLimits);
    }
    if (!errorcode.empty()) {
        Diagnosis d = diagnose(response, Expect::json);
        return make_error("keap.http_error", text, d.hint);
    }
    if (is_success(status)) {
        return make_error("keap.unexpected_shape", text,
                          "Keap answered with success but not with the expected object: check the base URL.");
    }
    if (status == 400) {
        return make_error("keap.http_error", text,
                          "Keap refused the request as invalid; its message names the field. REST v1 field names are "
                          "snake_case (given_name, family_name, email_addresses[].field EMAIL1..EMAIL3).");
    }
    return make_error("keap.http_error", text, diagnose(response, Expect::json).hint);
}

Error unexpected_shape(const HttpResponse& response, std::string what) {
    return make_error("keap.unexpected_shape",
                      "Keap answered " + explain::status_line(response.status) + " with JSON that is not " + what +
                          ": " + explain::one_line(response.body, 160),
                      "The URL most likely points at another endpoint: check that the base ends with /crm/rest/v1 "
                      "(or /crm/rest/v2 for the v2 calls).");
}

// A contact object (v1 and v2 share these fields; v2 may send the id as a string).
std::optional<Contact> contact_from(const json& c) {
    if (!c.is_object()) return std::nullopt;
    auto id = json_util::get_int64(c, "id");
    if (!id) return std::nullopt;
    Contact out;
    out.id = *id;
    out.given_name = json_util::string_or(c, "given_name");
    out.family_name = json_util::string_or(c, "family_name");
    if (const json* emails = json_util::get_array(c, "email_addresses")) {
        for (const auto& e : *emails) {
            if (auto s = json_util::get_string(e, "email"); s && !s->empty()) out.emails.push_back(*s);
        }
    }
    return out;
}

// Parses a successful REST body into JSON, or explains why it is not.
Result<json> rest_body(const HttpResponse& response) {
    if (!is_success(response.status)) return rest_error(response);
    json body = json_util::parse(explain::trim_body(response.body));
    if (body.is_discarded()) return rest_error(response);
    return body;
}

}  // namespace

void attach_bearer(HttpRequest& request, std::string_view access_token) {
    request.headers.set("Authorization", "Bearer " + std::string(access_token));
}

// Keap's Personal Access Tokens and Service Account Keys go in this header for REST and XML-RPC alike.
void attach_api_key(HttpRequest& request, std::string_view key) {
    request.headers.set("X-Keap-API-Key", std::string(key));
}

HttpRequest find_contacts_by_email(std::string_view base, std::string_view email, int limit) {
    return rest("GET", join_url(base, "/contacts?email=" + percent_encode(email) + "&limit=" + std::to_string(limit)));
}

HttpRequest get_contact(std::string_view base, int64_t id) {
    return rest("GET", join_url(base, "/contacts/" + std::to_string(id)));
}

HttpRequest update_contact_name(std::string_view base, int64_t id, std::string_view given, std::string_view family) {
    json body = json::object();
    body["given_name"] = std::string(given);
    body["family_name"] = std::string(family);
    return rest_json("PATCH", join_url(base, "/contacts/" + std::to_string(id)), body);
}

HttpRequest create_contact(std::string_view base, std::string_view given, std::string_view family,
                           std::string_view email) {
    json address = json::object();
    address["email"] = std::string(email);
    address["field"] = "EMAIL1";
    json body = json::object();
    body["given_name"] = std::string(given);
    body["family_name"] = std::string(family);
    body["email_addresses"] = json::array({address});
    return rest_json("POST", join_url(base, "/contacts"), body);
}

HttpRequest userinfo(std::string_view base) { return rest("GET", join_url(base, "/oauth/connect/userinfo")); }

// v2 filters with a small expression language: "email==<address>", itself percent-encoded as a query value.
HttpRequest find_contacts_by_email_v2(std::string_view base, std::string_view email, int page_size) {
    return rest("GET", join_url(base, "/contacts?filter=" + percent_encode("email==" + std::string(email)) +
                                          "&page_size=" + std::to_string(page_size)));
}

Result<std::vector<Contact>> parse_contacts(const HttpResponse& response) {
    auto body = rest_body(response);
    if (!body) return body.error();
    const json* list = json_util::get_array(*body, "contacts");
    if (list == nullptr) return unexpected_shape(response, "a contact list ({\"contacts\":[...]})");
    std::vector<Contact> out;
    out.reserve(list->size());
    for (const auto& c : *list) {
        auto contact = contact_from(c);
        if (!contact) return unexpected_shape(response, "a contact list whose every contact has an id");
        out.push_back(std::move(*contact));
    }
    return out;
}

Result<Contact> parse_contact(const HttpResponse& response) {
    auto body = rest_body(response);
    if (!body) return body.error();
    auto contact = contact_from(*body);
    if (!contact) return unexpected_shape(response, "a contact (an object with an id)");
    return std::move(*contact);
}

Result<UserInfo> parse_userinfo(const HttpResponse& response) {
    auto body = rest_body(response);
    if (!body) return body.error();
    if (!body->is_object() || !json_util::get_string(*body, "email")) {
        return unexpected_shape(response, "the user info (an object with an email)");
    }
    UserInfo out;
    out.email = json_util::string_or(*body, "email");
    out.given_name = json_util::string_or(*body, "given_name");
    out.family_name = json_util::string_or(*body, "family_name");
    out.global_user_id = json_util::get_text(*body, "global_user_id").value_or("");
    out.infusionsoft_id = json_util::get_int64(*body, "infusionsoft_id").value_or(0);
    out.sub = json_util::get_text(*body, "sub").value_or("");
    return out;
}

HttpRequest xmlrpc_contact_add(std::string_view endpoint, std::string_view key, const xmlrpc::Struct& fields) {
    return xmlrpc_post(endpoint, "ContactService.add",
                       {xmlrpc::Value::string(std::string(key)), xmlrpc::Value::struct_of(fields)});
}

HttpRequest xmlrpc_contact_update(std::string_view endpoint, std::string_view key, int64_t id,
                                  const xmlrpc::Struct& fields) {
    return xmlrpc_post(endpoint, "ContactService.update",
                       {xmlrpc::Value::string(std::string(key)), xmlrpc::Value::integer(id),
                        xmlrpc::Value::struct_of(fields)});
}

namespace {
xmlrpc::Value string_array(const std::vector<std::string>& items) {
    xmlrpc::Array out;
    out.reserve(items.size());
    for (const auto& s : items) out.push_back(xmlrpc::Value::string(s));
    return xmlrpc::Value::array_of(std::move(out));
}
}  // namespace

HttpRequest xmlrpc_find_by_field(std::string_view endpoint, std::string_view key, std::string_view table,
                                 int limit, int page, std::string_view field, std::string_view value,
                                 const std::vector<std::string>& return_fields) {
    return xmlrpc_post(endpoint, "DataService.findByField",
                       {xmlrpc::Value::string(std::string(key)), xmlrpc::Value::string(std::string(table)),
                        xmlrpc::Value::integer(limit), xmlrpc::Value::integer(page),
                        xmlrpc::Value::string(std::string(field)), xmlrpc::Value::string(std::string(value)),
                        string_array(return_fields)});
}

HttpRequest xmlrpc_query(std::string_view endpoint, std::string_view key, std::string_view table, int limit,
                         int page, const xmlrpc::Struct& query, const std::vector<std::string>& return_fields) {
    return xmlrpc_post(endpoint, "DataService.query",
                       {xmlrpc::Value::string(std::string(key)), xmlrpc::Value::string(std::string(table)),
                        xmlrpc::Value::integer(limit), xmlrpc::Value::integer(page), xmlrpc::Value::struct_of(query),
                        string_array(return_fields)});
}

HttpRequest xmlrpc_get_user_info(std::string_view endpoint) {
    return xmlrpc_post(endpoint, "DataService.getUserInfo", {});
}

Result<xmlrpc::Value> parse_xmlrpc(const HttpResponse& response) {
    auto decoded = xmlrpc::decode_response(response.body);
    if (decoded.ok()) {
        xmlrpc::Response& r = decoded.value();
        if (r.is_fault) {
            return make_error("keap.xmlrpc_fault", r.fault.string, explain::xmlrpc_fault_hint(r.fault.string));
        }
        return std::move(r.value);
    }
    Diagnosis d = diagnose(response, Expect::xmlrpc);
    if (d.code == "ok" || d.code.empty()) return decoded.error();
    return from_diagnosis("keap." + d.code, d);
}

}  // namespace keyrelay::keap
