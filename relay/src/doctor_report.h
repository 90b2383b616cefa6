// `keyrelay doctor`'s report: one line per check ("[ OK ]", "[INFO]", "[WARN]", "[FAIL]"), and for a warning or a
// failure what to do on the next line ("       -> ..."). Never a secret: checks name settings, not their values.
#pragma once

#include <iostream>
#include <ostream>
#include <string>

#include "config.h"

namespace keyrelay::relay {

class DoctorReport {
public:
    explicit DoctorReport(std::ostream& out = std::cout) : out_(out) {}
    int failures = 0;
    int warnings = 0;
    void ok(const std::string& what) { out_ << "[ OK ] " << what << "\n"; }
    void info(const std::string& what) { out_ << "[INFO] " << what << "\n"; }
    void warn(const std::string& what, const std::string& hint) {
        ++warnings;
        out_ << "[WARN] " << what << "\n";
        if (!hint.empty()) out_ << "       -> " << hint << "\n";
    }
    void fail(const std::string& what, const std::string& hint) {
        ++failures;
        out_ << "[FAIL] " << what << "\n";
        if (!hint.empty()) out_ << "       -> " << hint << "\n";
    }

private:
    std::ostream& out_;
};

// The checks of a shared Redis (config.redis_url; nothing when it is empty): reachable and AUTH accepted, the
// server version, persistence, and an eviction policy that cannot drop connections (doctor_redis.cpp).
void check_redis(const Config& config, DoctorReport& r);

}  // namespace keyrelay::relay
