// The XML-RPC bridge's own cost per call, without Keap (scripts/bench, section bridge): a DataService.query for a
// page of 1,000 contacts, from the methodCall text to the methodResponse text — decode the call, plan the REST
// request, map the 1,000-contact REST v2 answer to XML-RPC structs, encode the answer. The REST page holds what
// Keap sends for the plan's ?fields= (the members of the 8 returnFields asked, as the sandbox answers them); every
// call's answer is checked (1,000 structs, row 500's Id, Email and Groups).
// Side by side, on the same page and interleaved with the calls: the JSON library's own floor, nlohmann/json's SAX
// parser reading the page into a handler that keeps nothing. No bridge can read the page faster than that on this
// stack, so the ratio of the two is what the bridge's own code adds. And a one-contact call (findByEmail), the
// common case. Prints one JSON line:
//   {"calls":N,"contacts":1000,"return_fields":"Id,...","request_bytes":...,"rest_bytes":...,"response_bytes":...,
//    "p50_us":...,"p99_us":...,"max_us":...,"rest_mb_per_s":...,"p50_cpu_us":...,"p99_cpu_us":...,
//    "p50_plan_us":...,"p50_map_us":...,"p50_encode_us":...,"json_read_p50_cpu_us":...,"json_read_p99_cpu_us":...,
//    "bridge_over_json_read":...,"one_contact_p50_us":...,"one_contact_p99_us":...}
//   (p50/p99/max: wall time of a whole call, freeing its answer included; cpu: the same in this thread's CPU time,
//    which other processes on the cores do not inflate; plan: decode + plan; map: the REST JSON read and mapped;
//    encode: the XML written; rest_mb_per_s: REST bytes per second of a whole call at p50; json_read: the library's
//    floor above, in CPU time; bridge_over_json_read: p50 CPU of a call over p50 CPU of that read)
//   keyrelay_bench_bridge [calls]   (default 300)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "keyrelay/keap_bridge.h"
#include "keyrelay/xmlrpc.h"

namespace bridge = keyrelay::keap::bridge;

namespace {

const char* const kReturnFields[] = {"Id", "FirstName", "LastName", "Email", "Phone1", "City", "DateCreated", "Groups"};

std::string query_call() {
    std::string fields;
    for (const char* f : kReturnFields) {
        fields += std::string("<value><string>") + f + "</string></value>";
    }
    return "<?xml version=\"1.0\"?><methodCall><methodName>DataService.query</methodName><params>"
           "<param><value><string>relay-api-key</string></value></param>"
           "<param><value><string>Contact</string></value></param>"
           "<param><value><int>1000</int></value></param><param><value><int>0</int></value></param>"
           "<param><value><struct><member><name>Email</name><value><string>%</string></value></member></struct>"
           "</value></param><param><value><array><data>" + fields + "</data></array></value></param>"
           "</params></methodCall>";
}

// A REST v2 page as Keap writes it: ids as strings, list members with their "field" tags.
std::string rest_page(int n) {
    std::string body = "{\"contacts\":[";
    for (int i = 0; i < n; ++i) {
        const std::string id = std::to_string(1000 + i);
        body += (i ? "," : "");
        body += "{\"id\":\"" + id + "\",\"given_name\":\"Given" + id + "\",\"family_name\":\"Family" + id +
                "\",\"email_addresses\":[{\"email\":\"person" + id + "@example.com\",\"field\":\"EMAIL1\"}]," +
                "\"phone_numbers\":[{\"number\":\"+1 555 01" + id + "\",\"field\":\"PHONE1\"}]," +
                "\"addresses\":[{\"field\":\"BILLING\",\"locality\":\"Springfield\",\"region\":\"IL\"}]," +
                "\"create_time\":\"2026-01-02T03:04:05Z\",\"tag_ids\":[12,3]}";
    }
    return body + "],\"next_page_token\":\"\"}";
}

// A SAX handler that accepts every event and keeps nothing: the cost of reading the page is the parser's alone.
struct ReadOnly : nlohmann::json_sax<nlohmann::json> {
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return true; }
    bool key(string_t&) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception&) override { return false; }
};

std::string find_by_email_call() {
    return "<?xml version=\"1.0\"?><methodCall><methodName>ContactService.findByEmail</methodName><params>"
           "<param><value><string>relay-api-key</string></value></param>"
           "<param><value><string>person1000@example.com</string></value></param>"
           "<param><value><array><data><value><string>Id</string></value><value><string>FirstName</string></value>"
           "<value><string>Email</string></value></data></array></value></param></params></methodCall>";
}

// Row `index` of the answer is contact 1000+index, as rest_page wrote it.
bool row_is_right(const keyrelay::xmlrpc::Value& answer, size_t index) {
    if (answer.array.size() != 1000) return false;
    const auto& row = answer.array[index];
    const std::string id = std::to_string(1000 + index);
    const auto* v_id = row.get("Id");
    const auto* v_email = row.get("Email");
    const auto* v_groups = row.get("Groups");
    return row.members.size() == 8 && v_id && v_id->i == 1000 + static_cast<int64_t>(index) && v_email &&
           v_email->s == "person" + id + "@example.com" && v_groups && v_groups->s == "3,12";
}

}  // namespace

int main(int argc, char** argv) {
    const int calls = argc > 1 ? std::max(10, std::atoi(argv[1])) : 300;
    const std::string call = query_call();
    keyrelay::HttpResponse answer;
    answer.status = 200;
    answer.headers.set("Content-Type", "application/json");
    answer.body = rest_page(1000);

    keyrelay::HttpResponse one_answer = answer;
    one_answer.body = rest_page(1);
    const std::string one_call = find_by_email_call();

    std::vector<double> us, cpu_us, plan_us, map_us, encode_us, read_cpu_us, one_us;
    size_t bytes = 0;
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) { return std::chrono::duration<double, std::micro>(clock::now() - t).count(); };
    // CPU time of this thread: what a call costs when other processes share the cores (wall time includes waiting).
    auto cpu_now = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
    };
    for (int i = 0; i < calls + 10; ++i) {
        const double cpu_start = cpu_now();
        const auto start = clock::now();
        bridge::Conversation c;
        bridge::Step s = bridge::begin(call, c);
        const double planned = since(start);
        if (s.kind != bridge::Step::Kind::send) {
            std::fprintf(stderr, "the query was not planned: %s\n", s.fault.string.c_str());
            return 1;
        }
        const auto mapping = clock::now();
        s = bridge::resume(c, answer);
        const double mapped = since(mapping);
        const auto encoding = clock::now();
        std::string xml = bridge::encode(std::move(s));
        const double encoded = since(encoding);
        double t = since(start);
        double cpu = cpu_now() - cpu_start;
        const auto decoded = keyrelay::xmlrpc::decode_response(xml);
        if (s.kind != bridge::Step::Kind::answer || !decoded.ok() || decoded->is_fault ||
            !row_is_right(decoded->value, 500) ||
            xml.find("<name>Email</name><value><string>person1500@example.com</string></value>") == std::string::npos) {
            std::fprintf(stderr, "the page did not map to 1,000 structs with the contacts' fields\n");
            return 1;
        }
        bytes = xml.size();
        // Freeing the answer is part of the call's cost too (the check above is not).
        const double cpu_freeing = cpu_now();
        const auto freeing = clock::now();
        s = bridge::Step{};
        c = bridge::Conversation{};
        std::string().swap(xml);
        t += since(freeing);
        cpu += cpu_now() - cpu_freeing;
        // The library's floor on the same page, then the one-contact call.
        ReadOnly read_only;
        const double cpu_reading = cpu_now();
        if (!nlohmann::json::sax_parse(answer.body.data(), answer.body.data() + answer.body.size(), &read_only)) {
            std::fprintf(stderr, "the page is not JSON\n");
            return 1;
        }
        const double read_cpu = cpu_now() - cpu_reading;
        const auto one_start = clock::now();
        std::string one_xml;
        {
            bridge::Conversation one;
            bridge::Step step = bridge::begin(one_call, one);
            if (step.kind == bridge::Step::Kind::send) step = bridge::resume(one, one_answer);
            one_xml = bridge::encode(std::move(step));
        }
        const double one_t = since(one_start);
        const auto one_decoded = keyrelay::xmlrpc::decode_response(one_xml);
        if (!one_decoded.ok() || one_decoded->is_fault || one_decoded->value.array.size() != 1 ||
            one_xml.find("<string>person1000@example.com</string>") == std::string::npos) {
            std::fprintf(stderr, "findByEmail did not answer the one contact\n");
            return 1;
        }
        if (i >= 10) {   // the first calls warm the allocator and caches
            read_cpu_us.push_back(read_cpu);
            one_us.push_back(one_t);
            us.push_back(t);
            cpu_us.push_back(cpu);
            plan_us.push_back(planned);
            map_us.push_back(mapped);
            encode_us.push_back(encoded);
        }
    }
    auto pct = [](std::vector<double> v, double p) {
        std::sort(v.begin(), v.end());
        return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
    };
    std::string return_fields;
    for (const char* f : kReturnFields) return_fields += (return_fields.empty() ? "" : ",") + std::string(f);
    const double p50 = pct(us, 0.50);
    std::printf("{\"calls\":%d,\"contacts\":1000,\"return_fields\":\"%s\",\"request_bytes\":%zu,"
                "\"rest_bytes\":%zu,\"response_bytes\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,"
                "\"rest_mb_per_s\":%.1f,\"p50_cpu_us\":%.1f,\"p99_cpu_us\":%.1f,\"p50_plan_us\":%.1f,"
                "\"p50_map_us\":%.1f,\"p50_encode_us\":%.1f,\"json_read_p50_cpu_us\":%.1f,"
                "\"json_read_p99_cpu_us\":%.1f,\"bridge_over_json_read\":%.2f,\"one_contact_p50_us\":%.1f,"
                "\"one_contact_p99_us\":%.1f}\n",
                calls, return_fields.c_str(), call.size(), answer.body.size(), bytes, p50, pct(us, 0.99),
                pct(us, 1.0), answer.body.size() / p50, pct(cpu_us, 0.5), pct(cpu_us, 0.99), pct(plan_us, 0.5),
                pct(map_us, 0.5), pct(encode_us, 0.5), pct(read_cpu_us, 0.5), pct(read_cpu_us, 0.99),
                pct(cpu_us, 0.5) / pct(read_cpu_us, 0.5), pct(one_us, 0.5), pct(one_us, 0.99));
    return 0;
}
