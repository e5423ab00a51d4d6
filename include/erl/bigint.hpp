// erl::bigint — the arbitrary-precision integers of Erlang terms, as far as terms need them.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace erl {

// A sign and a magnitude of 32-bit limbs (least significant first, no leading zero limbs; zero
// has no limbs and is never negative). It carries integers that do not fit an int64 through
// the External Term Format, printing and parsing, and comparisons with floats; it does no
// arithmetic beyond that, which erlcpp does not need.
class bigint {
  public:
    bigint() noexcept = default;
    bigint(std::int64_t v); // NOLINT: every int64 is a bigint
    static bigint from_uint64(std::uint64_t v, bool negative = false);
    // ETF's SMALL_BIG/LARGE_BIG digits: magnitude bytes, least significant first.
    static bigint from_le_bytes(std::span<const std::uint8_t> bytes, bool negative);
    // A magnitude of 32-bit limbs, least significant first (leading zero limbs are dropped).
    static bigint from_limbs(std::span<const std::uint32_t> limbs, bool negative);
    // The integer part of a finite double (exact: doubles >= 2^53 are integers).
    static bigint from_double(double d);
    // Digits in `base` (2..36), optional leading '-' or '+'; '_' separators are not accepted
    // here (the term parser strips them). nullopt on any other character or no digit.
    static std::optional<bigint> parse(std::string_view text, unsigned base = 10);

    bool is_zero() const noexcept { return mag_.empty(); }
    bool negative() const noexcept { return neg_; }
    const std::vector<std::uint32_t>& limbs() const noexcept { return mag_; }
    // Number of bytes of the magnitude (ETF's digit count).
    std::size_t byte_size() const noexcept;
    std::vector<std::uint8_t> to_le_bytes() const;

    bool fits_int64() const noexcept;
    std::int64_t to_int64() const noexcept; // only meaningful when fits_int64()
    // Nearest double (inf beyond the double range), used only for display decisions.
    double to_double() const noexcept;

    std::string to_string(unsigned base = 10) const;

    friend bool operator==(const bigint&, const bigint&) noexcept = default;
    friend std::strong_ordering operator<=>(const bigint& a, const bigint& b) noexcept;
    // Exact comparison with a finite double (Erlang compares integers and floats by value).
    friend std::partial_ordering compare(const bigint& a, double d) noexcept;

  private:
    void trim() noexcept;
    bool neg_ = false;
    std::vector<std::uint32_t> mag_;
};

} // namespace erl
