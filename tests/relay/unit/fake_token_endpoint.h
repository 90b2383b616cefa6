// A token endpoint for tests that ROTATES refresh tokens like Keap and Atlassian: a refresh token works once; using
// an old one is invalid_grant. Answers access tokens "at-N" and refresh tokens "rt-N" with expires_in 2.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "keyrelay/http.h"
#include "keyrelay/result.h"

namespace testutil {

using keyrelay::HttpRequest;
using keyrelay::HttpResponse;
using keyrelay::Result;

class RotatingTokenEndpoint {
public:
    std::atomic<int> refreshes{0};
    std::atomic<int> failures{0};
    std::atomic<int> delay_ms{20};
    std::atomic<int> status_override{0};   // answer this status instead (e.g. 500)
    bool omit_refresh_token = false;
    // Called with the refresh count after a rotation, before the answer is returned (e.g. to stall the caller).
    std::function<void(int)> after_rotation;

    explicit RotatingTokenEndpoint(std::string first_refresh_token) : valid_(std::move(first_refresh_token)) {}

    Result<HttpResponse> operator()(const std::string&, const HttpRequest& request) {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
        auto params = keyrelay::form_decode(request.body);
        std::string presented = params ? keyrelay::param(*params, "refresh_token").value_or("") : "";
        std::unique_lock<std::mutex> lock(mutex_);
        HttpResponse r;
        r.headers.set("Content-Type", "application/json");
        if (status_override.load() != 0) {
            ++failures;
            r.status = status_override.load();
            r.body = R"({"error":"server_error"})";
            return r;
        }
        if (presented != valid_ || revoked_) {
            ++failures;
            r.status = 400;
            r.body = R"({"error":"invalid_grant","error_description":"Invalid refresh token"})";
            return r;
        }
        int n = ++refreshes;
        valid_ = "rt-" + std::to_string(n);
        nlohmann::json body = {{"access_token", "at-" + std::to_string(n)}, {"token_type", "bearer"},
                               {"expires_in", 2}, {"scope", "full|ab123.infusionsoft.com"}};
        if (!omit_refresh_token) body["refresh_token"] = valid_;
        r.status = 200;
        r.body = body.dump();
        lock.unlock();
        if (after_rotation) after_rotation(n);
        return r;
    }
    void revoke() {
        std::lock_guard<std::mutex> lock(mutex_);
        revoked_ = true;
    }

private:
    std::mutex mutex_;
    std::string valid_;
    bool revoked_ = false;
};

}  // namespace testutil
