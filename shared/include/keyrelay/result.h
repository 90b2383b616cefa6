// Errors are values: every fallible core function returns Result<T>.
// Nothing in the core throws across its API.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace keyrelay {

// A failure, for a program (code) and for a person (message, hint).
//  code:    stable dotted identifier, e.g. "oauth.invalid_grant", "xmlrpc.not_method_response".
//  message: what happened, in one sentence.
//  hint:    what most likely went wrong and what to do about it.
struct Error {
    std::string code;
    std::string message;
    std::string hint;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return std::get<0>(v_); }
    const T& operator*() const& { return std::get<0>(v_); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// For operations that succeed with nothing to return.
struct Unit {};

inline Error make_error(std::string code, std::string message, std::string hint = {}) {
    return Error{std::move(code), std::move(message), std::move(hint)};
}

}  // namespace keyrelay
