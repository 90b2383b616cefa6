// scripts/dev-cert, run for real with the openssl CLI into a temporary directory.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "temp_dir.h"

using testutil::TempDir;

namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

// Runs a shell command with stdout+stderr to `log`; returns its exit status.
int run(const std::string& command, const std::string& log) {
    int status = std::system((command + " >" + quoted(log) + " 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int dev_cert(const std::string& dir, const std::string& log) {
    return run(std::string("bash ") + quoted(KEYRELAY_DEV_CERT_SCRIPT) + " " + quoted(dir), log);
}

}  // namespace

TEST_CASE("dev-cert makes a CA and a localhost certificate that verifies against it", "[dev-cert]") {
    TempDir tmp;
    std::string out = tmp / "certs";
    std::string log = tmp / "log";
    REQUIRE(dev_cert(out, log) == 0);
    std::string printed = testutil::read_file(log);
    CAPTURE(printed);

    CHECK(testutil::list_dir(out) == std::set<std::string>{"ca.pem", "ca.key", "cert.pem", "key.pem"});
    CHECK(testutil::mode_of(out + "/ca.key") == 0600);
    CHECK(testutil::mode_of(out + "/key.pem") == 0600);

    CHECK(run("openssl verify -CAfile " + quoted(out + "/ca.pem") + " " + quoted(out + "/cert.pem"), tmp / "v") == 0);
    CHECK(run("openssl x509 -in " + quoted(out + "/cert.pem") + " -noout -ext subjectAltName", tmp / "san") == 0);
    std::string san = testutil::read_file(tmp / "san");
    CHECK(san.find("DNS:localhost") != std::string::npos);
    CHECK(san.find("IP Address:127.0.0.1") != std::string::npos);

    CHECK(printed.find("--tls-cert " + out + "/cert.pem --tls-key " + out + "/key.pem") != std::string::npos);
    CHECK(printed.find("/usr/local/share/ca-certificates/") != std::string::npos);
    CHECK(printed.find("update-ca-certificates") != std::string::npos);
    CHECK(printed.find("Firefox") != std::string::npos);
    CHECK(printed.find("Chrome") != std::string::npos);
}

TEST_CASE("dev-cert run twice reuses the CA and keeps a valid certificate", "[dev-cert]") {
    TempDir tmp;
    std::string out = tmp / "certs";
    REQUIRE(dev_cert(out, tmp / "log1") == 0);
    std::string ca = testutil::read_file(out + "/ca.pem");
    std::string ca_key = testutil::read_file(out + "/ca.key");
    std::string cert = testutil::read_file(out + "/cert.pem");

    REQUIRE(dev_cert(out, tmp / "log2") == 0);
    CHECK(testutil::read_file(out + "/ca.pem") == ca);
    CHECK(testutil::read_file(out + "/ca.key") == ca_key);
    CHECK(testutil::read_file(out + "/cert.pem") == cert);
    CHECK(testutil::read_file(tmp / "log2").find("reusing the CA") != std::string::npos);

    SECTION("a missing certificate is issued again by the same CA") {
        REQUIRE(std::remove((out + "/cert.pem").c_str()) == 0);
        REQUIRE(dev_cert(out, tmp / "log3") == 0);
        CHECK(testutil::read_file(out + "/ca.pem") == ca);
        CHECK(testutil::read_file(out + "/cert.pem") != cert);
        CHECK(run("openssl verify -CAfile " + quoted(out + "/ca.pem") + " " + quoted(out + "/cert.pem"), tmp / "v") ==
              0);
    }
    CHECK(testutil::list_dir(out).size() == 4);   // no temp files left behind
}

TEST_CASE("the dev-cert CA cannot vouch for any host but localhost", "[dev-cert]") {
    // RFC 5280 §4.2.1.10 name constraints: trusting this CA must not let a leaked ca.key impersonate real sites.
    TempDir tmp;
    std::string out = tmp / "certs";
    REQUIRE(dev_cert(out, tmp / "log") == 0);
    testutil::write_file(tmp / "evil.sh",
                         "set -e\n"
                         "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out evil.key\n"
                         "openssl req -new -key evil.key -subj /CN=example.com -out evil.csr\n"
                         "echo subjectAltName=DNS:example.com > evil.cnf\n"
                         "openssl x509 -req -in evil.csr -CA certs/ca.pem -CAkey certs/ca.key -set_serial 7 "
                         "-days 30 -extfile evil.cnf -out evil.pem\n");
    REQUIRE(run("cd " + quoted(tmp.path()) + " && bash evil.sh", tmp / "evil.log") == 0);
    CHECK(run("openssl verify -CAfile " + quoted(out + "/ca.pem") + " " + quoted(tmp / "evil.pem"), tmp / "v") != 0);
    CHECK(testutil::read_file(tmp / "v").find("permitted subtree violation") != std::string::npos);
}
