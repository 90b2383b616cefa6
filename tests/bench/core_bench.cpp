// keyrelay_bench_core: throughput of the core's decoders on the bytes scripts/bench generates, for the side-by-side
// table with the same decoders compiled to Wasm (core_node.cjs) and with Python's xmlrpc.client (core_python.py).
//
//   keyrelay_bench_core xmlrpc   FILE SECONDS   xmlrpc::decode_response on a DataService.query methodResponse
//   keyrelay_bench_core contacts FILE SECONDS   keap::parse_contacts on a REST v1 {"contacts":[...]} answer
//
// Prints one JSON object. Method (the same in all three languages): 3 warm-up decodes, then 7 batches of about
// SECONDS/7 each; a batch's throughput is bytes*iterations/elapsed; the figure reported is the median batch
// (MB = 10^6 bytes). Every decode's result is checked (item count), so nothing can be optimized away, and a decoder
// that fails makes the program exit 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "keyrelay/http.h"
#include "keyrelay/keap.h"
#include "keyrelay/xmlrpc.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kWarmup = 3;
constexpr int kBatches = 7;

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

struct Figures {
    double median_mb_s = 0;
    double min_mb_s = 0;
    double max_mb_s = 0;
    long iterations = 0;
    double seconds = 0;
};

// decode() returns the number of items decoded, or -1 on failure.
bool measure(size_t bytes, double seconds, size_t expect, const std::function<long()>& decode, Figures& f,
             std::string& why) {
    for (int i = 0; i < kWarmup; ++i) {
        long n = decode();
        if (n != static_cast<long>(expect)) {
            why = "decoded " + std::to_string(n) + " items, expected " + std::to_string(expect);
            return false;
        }
    }
    const double batch_s = seconds / kBatches;
    std::vector<double> rates;
    auto all_start = Clock::now();
    for (int b = 0; b < kBatches; ++b) {
        long iters = 0;
        auto start = Clock::now();
        double elapsed = 0;
        do {
            long n = decode();
            if (n != static_cast<long>(expect)) {
                why = "decoded " + std::to_string(n) + " items, expected " + std::to_string(expect);
                return false;
            }
            ++iters;
            elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        } while (elapsed < batch_s);
        f.iterations += iters;
        rates.push_back(static_cast<double>(bytes) * static_cast<double>(iters) / elapsed / 1e6);
    }
    f.seconds = std::chrono::duration<double>(Clock::now() - all_start).count();
    std::sort(rates.begin(), rates.end());
    f.median_mb_s = rates[rates.size() / 2];
    f.min_mb_s = rates.front();
    f.max_mb_s = rates.back();
    return true;
}

int usage() {
    std::fprintf(stderr,
                 "usage: keyrelay_bench_core xmlrpc FILE SECONDS [EXPECTED_ITEMS]\n"
                 "       keyrelay_bench_core contacts FILE SECONDS [EXPECTED_ITEMS]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) return usage();
    const std::string what = argv[1];
    const std::string path = argv[2];
    const double seconds = std::atof(argv[3]);
    const size_t expect = argc > 4 ? static_cast<size_t>(std::atol(argv[4])) : 1000;
    if (seconds <= 0 || (what != "xmlrpc" && what != "contacts")) return usage();

    std::string body;
    if (!read_file(path, body)) {
        std::fprintf(stderr, "keyrelay_bench_core: cannot read %s\n", path.c_str());
        return 1;
    }

    std::function<long()> decode;
    std::string name;
    keyrelay::HttpResponse response;
    if (what == "xmlrpc") {
        name = "xmlrpc.decode_response";
        decode = [&body]() -> long {
            auto r = keyrelay::xmlrpc::decode_response(body);
            if (!r || r->is_fault || r->value.type != keyrelay::xmlrpc::Value::Type::array) return -1;
            return static_cast<long>(r->value.array.size());
        };
    } else {
        name = "keap.parse_contacts";
        response.status = 200;
        response.headers.set("Content-Type", "application/json;charset=UTF-8");
        response.body = body;
        decode = [&response]() -> long {
            auto r = keyrelay::keap::parse_contacts(response);
            if (!r) return -1;
            return static_cast<long>(r->size());
        };
    }

    Figures f;
    std::string why;
    if (!measure(body.size(), seconds, expect, decode, f, why)) {
        std::fprintf(stderr, "keyrelay_bench_core: %s on %s: %s\n", name.c_str(), path.c_str(), why.c_str());
        return 1;
    }
    std::printf("{\"runtime\":\"native\",\"function\":\"%s\",\"bytes\":%zu,\"items\":%zu,\"iterations\":%ld,"
                "\"seconds\":%.3f,\"mb_per_s\":%.2f,\"mb_per_s_min\":%.2f,\"mb_per_s_max\":%.2f}\n",
                name.c_str(), body.size(), expect, f.iterations, f.seconds, f.median_mb_s, f.min_mb_s, f.max_mb_s);
    return 0;
}
