// Keap (formerly Infusionsoft) requests and responses: REST v1/v2 and XML-RPC.
// Every builder takes a base URL so the same code targets api.infusionsoft.com, the sandbox, or the relay's
// "/proxy/keap" prefix. Credentials are attached separately (attach_bearer / attach_api_key).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/result.h"
#include "keyrelay/xmlrpc.h"

namespace keyrelay::keap {

struct Contact {
    int64_t id = 0;
    std::string given_name;
    std::string family_name;
    std::vector<std::string> emails;
};

struct UserInfo {
    std::string email;
    std::string given_name;
    std::string family_name;
    std::string global_user_id;
    int64_t infusionsoft_id = 0;
    std::string sub;
};

// Credentials: OAuth access token, or a Personal Access Token / Service Account Key.
void attach_bearer(HttpRequest& request, std::string_view access_token);
void attach_api_key(HttpRequest& request, std::string_view key);   // X-Keap-API-Key

// REST v1; base is e.g. "https://api.infusionsoft.com/crm/rest/v1" or "/proxy/keap/crm/rest/v1".
HttpRequest find_contacts_by_email(std::string_view base, std::string_view email, int limit = 10);
HttpRequest get_contact(std::string_view base, int64_t id);
HttpRequest update_contact_name(std::string_view base, int64_t id, std::string_view given, std::string_view family);
HttpRequest create_contact(std::string_view base, std::string_view given, std::string_view family,
                           std::string_view email);
// base is the v1 base; userinfo lives at <v1>/oauth/connect/userinfo.
HttpRequest userinfo(std::string_view base);

// REST v2; base e.g. "https://api.infusionsoft.com/crm/rest/v2". GET /contacts?filter=email%3D%3D<email>
HttpRequest find_contacts_by_email_v2(std::string_view base, std::string_view email, int page_size = 10);

// Parse {"contacts":[...]} (v1 and v2) / a single contact object. Non-2xx answers become errors with
// Keap's message: "keap.unauthorized" (401), "keap.forbidden" (403), "keap.not_found" (404),
// "keap.rate_limited" (429), "keap.http_error" (other), "keap.not_json", "keap.unexpected_shape".
Result<std::vector<Contact>> parse_contacts(const HttpResponse& response);
Result<Contact> parse_contact(const HttpResponse& response);
Result<UserInfo> parse_userinfo(const HttpResponse& response);

// XML-RPC (endpoint e.g. "https://api.infusionsoft.com/crm/xmlrpc/v1"). With OAuth or X-Keap-API-Key the first
// `key` parameter is a placeholder; pass whatever the caller has (an empty string works).
HttpRequest xmlrpc_contact_add(std::string_view endpoint, std::string_view key, const xmlrpc::Struct& fields);
HttpRequest xmlrpc_contact_update(std::string_view endpoint, std::string_view key, int64_t id,
                                  const xmlrpc::Struct& fields);
HttpRequest xmlrpc_find_by_field(std::string_view endpoint, std::string_view key, std::string_view table,
                                 int limit, int page, std::string_view field, std::string_view value,
                                 const std::vector<std::string>& return_fields);
HttpRequest xmlrpc_query(std::string_view endpoint, std::string_view key, std::string_view table, int limit,
                         int page, const xmlrpc::Struct& query, const std::vector<std::string>& return_fields);
// DataService.getUserInfo takes NO key parameter.
HttpRequest xmlrpc_get_user_info(std::string_view endpoint);

// Decodes an XML-RPC answer: a fault becomes "keap.xmlrpc_fault" whose message is Keap's faultString and whose hint
// explains it (InvalidConfig, FailedLoginAttempt, No such handler, ...). A body that is not XML-RPC at all gets the
// diagnosis of diagnose(..., Expect::xmlrpc) as its error, with code "keap." + the diagnosis code
// (e.g. "keap.html_page", "keap.legacy_key_dead", "keap.rate_limited", "keap.truncated_xml").
Result<xmlrpc::Value> parse_xmlrpc(const HttpResponse& response);

}  // namespace keyrelay::keap
