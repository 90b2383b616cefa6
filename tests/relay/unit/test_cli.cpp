#include <catch2/catch.hpp>

#include <filesystem>

#include "cli.h"
#include "temp_dir.h"

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

TEST_CASE("an installed relay finds its page in <prefix>/share/keyrelay/web, a checkout's in web/ and build/wasm/",
          "[cli]") {
    relaytest::TempDir root;
    std::filesystem::create_directories(root / "usr/bin");
    std::filesystem::create_directories(root / "usr/share/keyrelay/web/wasm");

    PageDirs installed = default_page_dirs(root / "usr/bin/keyrelay");
    CHECK(installed.web_dir == root / "usr/share/keyrelay/web");
    CHECK(installed.wasm_dir.empty());   // the installed page has its own wasm/

    SECTION("a build tree's bin/ without share/keyrelay/web beside it is a checkout") {
        std::filesystem::create_directories(root / "build/native/bin");
        PageDirs checkout = default_page_dirs(root / "build/native/bin/keyrelay");
        std::string source = checkout.web_dir.substr(0, checkout.web_dir.size() - std::string("/web").size());
        CHECK(checkout.web_dir == source + "/web");
        CHECK(checkout.wasm_dir == source + "/build/wasm");
        CHECK(std::filesystem::exists(checkout.web_dir + "/index.html"));   // this checkout's page
    }
    SECTION("a program outside any bin/ is a checkout too") {
        PageDirs other = default_page_dirs(root / "keyrelay");
        CHECK(other.web_dir != installed.web_dir);
        CHECK(std::filesystem::exists(other.web_dir + "/index.html"));
    }
}
