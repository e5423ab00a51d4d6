// erl::etf — Erlang's External Term Format: term_to_binary / binary_to_term for erl::term.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <erl/term.hpp>

namespace erl {

// Malformed or refused ETF input. Decoding reports every failure with this one exception type
// (never a crash, an over-read or a partial term): `offset()` is the byte offset in the input
// where the problem was found (inside a compressed term: the offset in the inflated data, and
// the message says so), `reason()` the description without the offset.
class etf_error : public std::runtime_error {
  public:
    etf_error(std::size_t offset, std::string reason);
    std::size_t offset() const noexcept { return offset_; }
    const std::string& reason() const noexcept { return reason_; }

  private:
    std::size_t offset_;
    std::string reason_;
};

namespace etf {

inline constexpr std::uint8_t version_magic = 131;

struct decode_options {
    // Nesting limit (tuples, lists, maps, local funs' environments). The decoder
    // itself uses no recursion; the limit protects code that walks the term recursively
    // (printing, comparison, encoding) from a stack overflow, e.g. on a small fiber stack.
    std::size_t max_depth = 512;
    // Refuse compressed terms declaring more than this many inflated bytes.
    std::size_t max_inflated_size = std::size_t(64) << 20;
    // Refuse integers of more digit bytes than this (printing is quadratic in the size).
    std::size_t max_bignum_bytes = 16384;
    // Atoms from the network are interned in the process-wide atom table only while the table
    // holds fewer atoms than this; beyond, they stay atom text inside the term (equal to and
    // ordered like the interned atom, just slower). Unknown atoms thus can never exhaust the
    // table (the classic way to kill a BEAM node). 0 keeps every decoded atom out of the table.
    std::size_t atom_table_limit = std::size_t(1) << 20;
};

struct encode_options {
    // -1: no compression. 0..9: zlib level of term_to_binary(T, [{compressed, Level}]); as in
    // Erlang, the uncompressed form is kept when compression does not make it smaller.
    int compression = -1;
};

// 131 followed by the term.
std::vector<std::uint8_t> encode(const term& t, const encode_options& opts = {});
// Appends the term without the version byte (Tag, Data), as inside distribution messages.
void encode_body(std::vector<std::uint8_t>& out, const term& t);

// Exactly one term with its 131 byte (possibly compressed); trailing bytes are an error.
term decode(std::span<const std::uint8_t> bytes, const decode_options& opts = {});
// One term without the version byte, starting at `offset`, which is advanced past it (for
// distribution messages that carry several terms back to back).
term decode_body(std::span<const std::uint8_t> bytes, std::size_t& offset,
                 const decode_options& opts = {});

} // namespace etf
} // namespace erl
