// FIPS 180-4 SHA-256, for PKCE S256 (RFC 7636 §4.2). Hand-written because the core also runs in
// WebAssembly, where OpenSSL is not available; the relay uses OpenSSL for everything else.
#pragma once

#include <string>
#include <string_view>

namespace keyrelay {

// Returns the 32-byte binary digest.
std::string sha256(std::string_view data);

}  // namespace keyrelay
