// Internal helpers shared by the term sources (not installed API surface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <erl/term.hpp>

namespace erl::detail {

// Number of code points of valid UTF-8, or SIZE_MAX when the text is not valid UTF-8.
std::size_t utf8_length(std::string_view s) noexcept;
// Appends the UTF-8 encoding of a code point (callers check validity first).
void append_utf8(std::string& out, std::uint32_t cp);
// An atom term: interned if `intern` and short enough for the atom table, else atom text.
term atom_term(std::string_view name, bool intern);
// Whether a code point may appear in an Erlang string printed as "..." by us.
bool printable_char(std::int64_t c) noexcept;
// Appends Erlang's escape for a character inside "..." or '...'.
void append_escaped_char(std::string& out, std::uint32_t c, char quote);

} // namespace erl::detail
