// erl::exit_reason — why a process ended, as exit signals and DOWN messages carry it.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <erl/atom.hpp>

namespace erl {

// Erlang's exit reasons are terms. The ones the runtime and OTP behaviours act on are an atom
// (`normal`, `kill`, `killed`, `shutdown`, `noproc`, `noconnection`, or any atom of the user's)
// or a pair of a tag and a detail (`{shutdown, Detail}`, `{Tag, Detail}`); an uncaught C++
// exception becomes `{exception, Type, What}` and keeps the std::exception_ptr so that a
// supervisor or test can rethrow it. Copies are cheap (the detail is shared).
class exit_reason {
  public:
    exit_reason() noexcept : tag_(atoms::normal) {} // normal
    exit_reason(atom tag) noexcept : tag_(tag) {}   // NOLINT: an atom is a reason
    // {Tag, Detail}: e.g. exit_reason(atoms::shutdown, "restart")
    exit_reason(atom tag, std::string detail);

    static exit_reason normal() noexcept { return exit_reason(atoms::normal); }
    static exit_reason kill() noexcept { return exit_reason(atoms::kill); }
    static exit_reason killed() noexcept { return exit_reason(atoms::killed); }
    static exit_reason shutdown() noexcept { return exit_reason(atoms::shutdown); }
    static exit_reason shutdown(std::string detail) {
        return exit_reason(atoms::shutdown, std::move(detail));
    }
    static exit_reason noproc() noexcept { return exit_reason(atoms::noproc); }
    static exit_reason noconnection() noexcept { return exit_reason(atoms::noconnection); }
    // {exception, Type, What} from an exception in flight (type demangled, what() if any).
    static exit_reason from_exception(std::exception_ptr e);

    atom tag() const noexcept { return tag_; }
    bool has_detail() const noexcept { return detail_ != nullptr; }
    // The detail of {Tag, Detail}, or what() of an exception; empty when there is none.
    std::string_view detail() const noexcept;
    // For exception reasons: the demangled type name; empty otherwise.
    std::string_view exception_type() const noexcept;
    // For exception reasons: the exception itself (rethrowable); null otherwise.
    std::exception_ptr exception() const noexcept;

    bool is_normal() const noexcept { return tag_ == atoms::normal && !detail_; }
    // shutdown or {shutdown, _}: what OTP treats as an orderly stop.
    bool is_shutdown() const noexcept { return tag_ == atoms::shutdown; }
    bool is_exception() const noexcept { return tag_ == atoms::exception && detail_; }

    // Equal when tag, detail and exception type are equal (the exception objects are not
    // compared, as two crashes with the same description are the same reason to a reader).
    friend bool operator==(const exit_reason& a, const exit_reason& b) noexcept;

    // Erlang syntax: normal, {shutdown,"restart"}, {exception,'std::runtime_error',"boom"}.
    std::string to_string() const;

  private:
    struct payload;
    atom tag_;
    std::shared_ptr<const payload> detail_;
};

} // namespace erl

template <>
struct fmt::formatter<erl::exit_reason> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::exit_reason& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::formatter<std::string_view>::format(r.to_string(), ctx);
    }
};
