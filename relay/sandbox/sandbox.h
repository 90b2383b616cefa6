// keyrelay-sandbox: fake Keap and Jira servers that behave like the real ones where it matters for
// authentication and for the calls keyrelay makes, including the ways they fail. See INTERFACE.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keyrelay/result.h"

namespace keyrelay::sandbox {

struct Options {
    int port = 0;                 // 0 = the OS picks
    bool auto_approve = false;    // the authorize pages redirect with a code at once
    int64_t access_ttl = 0;       // seconds; 0 = provider default (Keap 86400, Jira 3600)
    int64_t refresh_ttl = 0;      // seconds; 0 = provider default (Keap 45 days, Jira 90 days)
    std::string data_file;        // {"keap_contacts":[...],"jira_users":[...]}; empty = built-in sample data
    std::vector<std::string> redirect_uris;   // registered for both providers, on top of the built-in ones
};

class Server {
public:
    explicit Server(Options options);
    ~Server();   // stops
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds 127.0.0.1, serves on a background thread, returns the port.
    // Errors: "sandbox.bad_data" (the --data file is unreadable or not the expected JSON),
    //         "sandbox.bind_failed" (the port is taken or not allowed), "sandbox.already_started".
    Result<int> start();
    void stop();
    std::string base_url() const;   // "http://127.0.0.1:<port>"

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyrelay::sandbox
