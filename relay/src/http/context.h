// What one request carries through the relay's handlers: its id, when it started, the provider it concerns (the
// label of its log line and metrics) and the route's {name} segment. The guards make it; every handler gets it.
#pragma once

#include <chrono>
#include <string>

namespace keyrelay::relay {

struct RequestContext {
    std::string id;                                  // X-Request-Id of the answer
    std::chrono::steady_clock::time_point started;
    std::string provider = "relay";                  // "relay" for requests that concern no provider
    std::string param;                               // the {name} of the matched route ("keap" in /connect/keap)
    bool final_answer = false;                       // the error handler leaves the answer alone
};

}  // namespace keyrelay::relay
