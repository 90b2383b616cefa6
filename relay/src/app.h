// The relay (docs/api.md): page sessions, the OAuth code flow run server-side, connection status, the
// allowlisted proxy, CORS, health, metrics and the page's static files. A thin adapter: requests and responses to
// providers are built and parsed by the core (oauth2, proxy, keap, jira, diagnose); policy is data (config.h).
#pragma once

#include <memory>
#include <string>

#include "config.h"
#include "keyrelay/result.h"

namespace keyrelay::relay {

class Relay {
public:
    explicit Relay(Config config);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Opens the store (key from KEYRELAY_STORE_KEY or a generated 0600 key file), prepares users and routes.
    // Errors: "store.*", "tls.bad_files", "config.*".
    Result<Unit> init();
    // Binds config.bind:config.port (0 = any free port). Returns the port. Errors: "server.bind_failed".
    Result<int> bind();
    // Serves until stop(); also runs the keep-alive refresh thread. Returns false when the server failed.
    bool run();
    // Thread-safe; safe to call from a signal-handling thread.
    void stop();

    // "http://127.0.0.1:<port>" (or the public URL when configured).
    std::string url() const;

    struct Impl;

private:
    Config config_;
    int port_ = 0;
    std::unique_ptr<Impl> impl_;
};

}  // namespace keyrelay::relay
