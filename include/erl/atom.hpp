// erl::atom — an interned symbol, compared by value in O(1).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace erl {

// Atoms live in one process-wide table shared by every runtime: an atom is a value, like an
// integer, and may cross runtimes (and, later, nodes) freely. The table only grows, as in
// Erlang; names are limited to 255 characters (Erlang's limit).
class atom {
  public:
    static constexpr std::size_t max_length = 255;

    // The empty atom ''.
    constexpr atom() noexcept = default;
    // Interns `name`; throws std::length_error beyond max_length characters.
    explicit atom(std::string_view name);
    explicit atom(const char* name) : atom(std::string_view(name)) {}
    explicit atom(const std::string& name) : atom(std::string_view(name)) {}

    // The atom named `name` if it is already interned, without interning it (Erlang's
    // list_to_existing_atom): for names that come from the network.
    static std::optional<atom> existing(std::string_view name);

    // The atom's text. The view stays valid for the life of the program.
    std::string_view name() const noexcept;
    std::string str() const { return std::string(name()); }

    // The position in the atom table: stable for the life of the program, not across programs.
    std::uint32_t index() const noexcept { return index_; }

    friend bool operator==(atom a, atom b) noexcept { return a.index_ == b.index_; }
    // Erlang orders atoms by their text; so do we (not by the table index).
    friend std::strong_ordering operator<=>(atom a, atom b) noexcept;

    // Whether Erlang prints this atom without quotes (`ok`) or with them (`'hello world'`).
    bool needs_quotes() const noexcept;

    // Number of atoms interned so far in this program.
    static std::size_t table_size() noexcept;

  private:
    std::uint32_t index_ = 0;
};

inline namespace literals {
// `"ok"_a` interns an atom.
inline atom operator""_a(const char* s, std::size_t n) {
    return atom(std::string_view(s, n));
}
} // namespace literals

// Atoms the runtime itself uses, interned once at start-up.
namespace atoms {
extern const atom empty;
extern const atom ok;
extern const atom error;
extern const atom undefined;
extern const atom normal;
extern const atom kill;
extern const atom killed;
extern const atom shutdown;
extern const atom noproc;
extern const atom noconnection;
extern const atom timeout;
extern const atom exception;
extern const atom nonode_nohost;
extern const atom true_;
extern const atom false_;
} // namespace atoms

// Appends an atom as Erlang prints it (quotes and escapes only where needed).
void format_atom_to(std::string& out, std::string_view name);

namespace detail {
// Appends `s` between `quote`s with Erlang's escapes ('...' for atoms, "..." for strings).
void append_quoted(std::string& out, std::string_view s, char quote);
} // namespace detail

} // namespace erl

template <>
struct std::hash<erl::atom> {
    std::size_t operator()(erl::atom a) const noexcept {
        return std::hash<std::uint32_t>{}(a.index());
    }
};

template <>
struct fmt::formatter<erl::atom> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(erl::atom a, FormatContext& ctx) const -> decltype(ctx.out()) {
        std::string s;
        erl::format_atom_to(s, a.name());
        return fmt::formatter<std::string_view>::format(s, ctx);
    }
};
