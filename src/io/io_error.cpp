#include <erl/io_error.hpp>

#include <fmt/format.h>

#include <cctype>
#include <cstring>
#include <string>

#include "io/io_errors.hpp"

namespace erl {

namespace {
class io_category_impl final : public std::error_category {
  public:
    const char* name() const noexcept override { return "erl::io"; }
    std::string message(int value) const override {
        switch (static_cast<io_errc>(value)) {
        case io_errc::closed:
            return "socket closed";
        case io_errc::timeout:
            return "timed out";
        case io_errc::not_owner:
            return "not the controlling process";
        case io_errc::active:
            return "the socket is in active mode";
        case io_errc::bad_address:
            return "bad address";
        }
        return "unknown I/O error";
    }
};
} // namespace

const std::error_category& io_category() noexcept {
    static const io_category_impl category;
    return category;
}

atom io_error::reason() const {
    return detail::io_reason(code());
}

namespace detail {

atom io_reason(std::error_code code) {
    if (code.category() == io_category()) {
        switch (static_cast<io_errc>(code.value())) {
        case io_errc::closed:
            return atom("closed");
        case io_errc::timeout:
            return atom("timeout");
        case io_errc::not_owner:
            return atom("not_owner");
        case io_errc::active:
            return atom("einval");
        case io_errc::bad_address:
            return atom("nxdomain");
        }
        return atom("unknown");
    }
    // Erlang names an errno by its symbol in lower case: econnrefused, eaddrinuse, ...
    const char* name = ::strerrorname_np(code.value());
    if (!name) return atom("unknown");
    std::string lower(name);
    for (char& c : lower)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return atom(lower);
}

void throw_io(std::error_code code, std::string_view operation) {
    throw io_error(code, fmt::format("{} ({})", operation, io_reason(code).name()));
}

void throw_errno(int err, std::string_view operation) {
    throw_io(std::error_code(err, std::generic_category()), operation);
}

} // namespace detail
} // namespace erl
