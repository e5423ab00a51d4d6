// erl::io_error — the one error type of erlcpp's I/O calls (erl::tcp), and erl::io_errc, the
// conditions that are not an errno.
#pragma once

#include <string>
#include <system_error>

#include <erl/atom.hpp>

namespace erl {

enum class io_errc {
    closed = 1, // the socket is closed (by us, or the peer closed it: Erlang's `closed`)
    timeout,    // the call's timeout passed (Erlang's `timeout`)
    not_owner,  // only the controlling process may do this (Erlang's `not_owner`)
    active,     // a passive read on a socket in active mode (Erlang answers `einval`)
    bad_address // a host or address that does not parse or resolve (Erlang's `nxdomain`/`einval`)
};

const std::error_category& io_category() noexcept;

} // namespace erl

template <>
struct std::is_error_code_enum<erl::io_errc> : std::true_type {};

namespace erl {

inline std::error_code make_error_code(io_errc e) noexcept {
    return {static_cast<int>(e), io_category()};
}

// Thrown by every erl::tcp call that fails. code() is either an io_errc or an errno value in
// std::generic_category(); reason() names it the way Erlang would ({error, Reason}).
class io_error : public std::system_error {
  public:
    io_error(std::error_code code, const std::string& what) : std::system_error(code, what) {}

    // closed, timeout, not_owner, einval, econnrefused, econnreset, eaddrinuse, ...
    atom reason() const;
    bool is_timeout() const noexcept { return code() == io_errc::timeout; }
    bool is_closed() const noexcept { return code() == io_errc::closed; }
};

} // namespace erl
