// Internal helpers for the one error type of the I/O layer.
#pragma once

#include <erl/atom.hpp>
#include <erl/io_error.hpp>

#include <string_view>
#include <system_error>

namespace erl::detail {

// The Erlang reason for an error code: closed, timeout, econnrefused...
atom io_reason(std::error_code code);

[[noreturn]] void throw_io(std::error_code code, std::string_view operation);
[[noreturn]] void throw_errno(int err, std::string_view operation);
[[noreturn]] inline void throw_io(io_errc e, std::string_view operation) {
    throw_io(make_error_code(e), operation);
}

} // namespace erl::detail
