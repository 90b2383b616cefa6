#include <catch2/catch.hpp>

#include "cli.h"

using namespace keyrelay::relay;

TEST_CASE("serve flags are parsed with separate or inline values", "[cli]") {
    auto a = parse_cli({"serve", "--sandbox", "http://127.0.0.1:9000", "--port=0", "--data-dir", "/tmp/x"});
    REQUIRE(a.ok());
    CHECK(a->command == "serve");
    CHECK(a->flags.at("--sandbox") == "http://127.0.0.1:9000");
    CHECK(a->flags.at("--port") == "0");
    CHECK(a->flags.at("--data-dir") == "/tmp/x");
    CHECK_FALSE(a->help);
}

TEST_CASE("unknown commands and flags are errors the caller turns into exit status 2", "[cli]") {
    auto cmd = parse_cli({"serv"});
    REQUIRE_FALSE(cmd.ok());
    CHECK(cmd.error().code == "cli.unknown_command");
    auto flag = parse_cli({"serve", "--sandbox", "http://x", "--prot", "1"});
    REQUIRE_FALSE(flag.ok());
    CHECK(flag.error().code == "cli.unknown_flag");
    CHECK(flag.error().message.find("--prot") != std::string::npos);
    auto other = parse_cli({"hash-password", "--port", "1"});   // a flag of another command
    REQUIRE_FALSE(other.ok());
    CHECK(other.error().code == "cli.unknown_flag");
    auto missing = parse_cli({"serve", "--port"});
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == "cli.missing_value");
}

TEST_CASE("every command has its own --help", "[cli]") {
    for (const char* c : {"serve", "doctor", "hash-password", "rotate-key"}) {
        auto a = parse_cli({c, "--help"});
        REQUIRE(a.ok());
        CHECK(a->help);
        CHECK(usage(c).find(std::string("keyrelay ") + c) != std::string::npos);
    }
    auto top = parse_cli({"--help"});
    REQUIRE(top.ok());
    CHECK(top->command == "help");
    CHECK(parse_cli({})->command == "help");
    CHECK(parse_cli({"--version"})->command == "version");
}

TEST_CASE("doctor takes --offline as a switch without a value", "[cli]") {
    auto a = parse_cli({"doctor", "--config", "k.json", "--offline"});
    REQUIRE(a.ok());
    CHECK(a->flags.count("--offline") == 1);
    CHECK(a->flags.at("--config") == "k.json");
}

TEST_CASE("serve needs --sandbox or --config", "[cli]") {
    CliArgs a;
    a.command = "serve";
    auto c = build_config(a, [](const std::string&) { return std::optional<std::string>(); });
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == "cli.missing_config");
}
