// Internal helpers shared by the term sources (not installed API surface).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <erl/term.hpp>

namespace erl::detail {

// Number of code points of valid UTF-8, or SIZE_MAX when the text is not valid UTF-8.
std::size_t utf8_length(std::string_view s) noexcept;
// Appends the UTF-8 encoding of a code point (callers check validity first).
void append_utf8(std::string& out, std::uint32_t cp);
// Two words that, with its size, identify a name of up to 16 bytes exactly (for longer names,
// they cover its first and last 8 bytes); read without going beyond the name.
inline void atom_words(std::string_view s, std::uint64_t& w1, std::uint64_t& w2) noexcept {
    const char* p = s.data();
    std::size_t n = s.size();
    if (n >= 8) {
        std::memcpy(&w1, p, 8);
        std::memcpy(&w2, p + n - 8, 8);
    } else if (n >= 4) {
        std::uint32_t x, y;
        std::memcpy(&x, p, 4);
        std::memcpy(&y, p + n - 4, 4);
        w1 = x;
        w2 = y;
    } else if (n > 0) {
        w1 = std::uint64_t(static_cast<unsigned char>(p[0])) |
             std::uint64_t(static_cast<unsigned char>(p[n / 2])) << 8 |
             std::uint64_t(static_cast<unsigned char>(p[n - 1])) << 16;
        w2 = 0;
    } else {
        w1 = w2 = 0;
    }
}
// Inputs up to this many bytes are decoded into one arena (docs/terms.md, "Memory of decoded
// terms"); larger ones into one block per payload. Returns the previous limit. For tests and
// the fuzzer, which exercise both ways.
std::size_t set_decode_arena_limit(std::size_t max_input) noexcept;
// An atom term: interned if `intern` and short enough for the atom table, else atom text.
term atom_term(std::string_view name, bool intern);
// Whether a code point may appear in an Erlang string printed as "..." by us.
bool printable_char(std::int64_t c) noexcept;
// Appends Erlang's escape for a character inside "..." or '...'.
void append_escaped_char(std::string& out, std::uint32_t c, char quote);

} // namespace erl::detail
