// Golden fixtures under tests/fixtures/: real-shaped bodies (docs/reference/keap.md, docs/reference/jira.md).
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fixtures {

inline std::string read(const std::string& name) {
    std::ifstream in(std::string(KEYRELAY_FIXTURES_DIR) + "/" + name, std::ios::binary);
    if (!in) throw std::runtime_error("missing fixture: " + name);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace fixtures
