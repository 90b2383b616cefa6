// The answers every handler writes: the one JSON error shape (docs/api.md), JSON bodies, the HTML error page of a
// browser navigation, and the provider lookup that answers 404 provider.unknown.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "config.h"
#include "http/context.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

// Seconds since the epoch (session, state and token times).
int64_t unix_now();

// {"error":{code,message,hint}} with the status, Cache-Control: no-store.
void send_error(httplib::Response& res, int status, const Error& e);
void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message,
                const std::string& hint);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// The status of a store error ("store.*"): 503 while the store is unreachable or its refresh lock is stuck (with
// Retry-After from send_error), 409 for a write conflict, 500 for the rest (a damaged store, a wrong key).
int store_error_status(const Error& e);
// An HTML page saying what happened and linking back to the relay's page (connect, callback).
void send_page(httplib::Response& res, int status, const Error& e);
// send_page for a browser navigation (Accept: text/html), send_error otherwise.
void send_error_for(const httplib::Request& req, httplib::Response& res, int status, const Error& e);

// The provider named by the route ({name}), or nullptr after answering 404 provider.unknown (as a page when `page`
// and the client wants HTML). Sets ctx.provider.
const ProviderConfig* provider_or_404(const Config& config, RequestContext& ctx, const httplib::Request& req,
                                      httplib::Response& res, bool page);

}  // namespace keyrelay::relay
