#include <erl/bigint.hpp>

#include <algorithm>
#include <cmath>

namespace erl {

bigint::bigint(std::int64_t v) {
    neg_ = v < 0;
    // Negate in unsigned arithmetic so INT64_MIN does not overflow.
    std::uint64_t m = neg_ ? ~std::uint64_t(v) + 1 : std::uint64_t(v);
    while (m) {
        mag_.push_back(std::uint32_t(m));
        m >>= 32;
    }
}

bigint bigint::from_uint64(std::uint64_t v, bool negative) {
    bigint b;
    while (v) {
        b.mag_.push_back(std::uint32_t(v));
        v >>= 32;
    }
    b.neg_ = negative && !b.mag_.empty();
    return b;
}

bigint bigint::from_le_bytes(std::span<const std::uint8_t> bytes, bool negative) {
    bigint b;
    b.mag_.assign((bytes.size() + 3) / 4, 0);
    for (std::size_t i = 0; i < bytes.size(); ++i)
        b.mag_[i / 4] |= std::uint32_t(bytes[i]) << (8 * (i % 4));
    b.neg_ = negative;
    b.trim();
    return b;
}

bigint bigint::from_limbs(std::span<const std::uint32_t> limbs, bool negative) {
    bigint b;
    b.mag_.assign(limbs.begin(), limbs.end());
    b.neg_ = negative;
    b.trim();
    return b;
}

bigint bigint::from_double(double d) {
    d = std::trunc(d);
    bigint b;
    if (!std::isfinite(d) || d == 0) return b;
    bool neg = d < 0;
    int exp = 0;
    // d = m * 2^exp with m an integer below 2^53.
    double frac = std::frexp(std::fabs(d), &exp);
    auto m = std::uint64_t(std::ldexp(frac, 53));
    exp -= 53;
    if (exp < 0) {
        m >>= -exp;
        exp = 0;
    }
    b = from_uint64(m);
    // Shift left by exp bits.
    std::size_t words = std::size_t(exp) / 32, bits = std::size_t(exp) % 32;
    if (bits) {
        std::uint32_t carry = 0;
        for (auto& l : b.mag_) {
            std::uint32_t next = l >> (32 - bits);
            l = (l << bits) | carry;
            carry = next;
        }
        if (carry) b.mag_.push_back(carry);
    }
    b.mag_.insert(b.mag_.begin(), words, 0);
    b.neg_ = neg;
    b.trim();
    return b;
}

std::optional<bigint> bigint::parse(std::string_view text, unsigned base) {
    if (base < 2 || base > 36) return std::nullopt;
    bool neg = false;
    if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
        neg = text[0] == '-';
        text.remove_prefix(1);
    }
    if (text.empty()) return std::nullopt;
    // Consume digits in chunks whose value fits 32 bits: mag = mag * base^k + chunk.
    unsigned chunk_len = 0;
    for (std::uint64_t p = base; p * base <= 0xFFFFFFFFull; p *= base)
        ++chunk_len;
    ++chunk_len;
    bigint b;
    std::size_t i = 0;
    while (i < text.size()) {
        std::uint64_t mul = 1, chunk = 0;
        for (unsigned k = 0; k < chunk_len && i < text.size(); ++k, ++i) {
            char c = text[i];
            unsigned d;
            if (c >= '0' && c <= '9')
                d = unsigned(c - '0');
            else if (c >= 'a' && c <= 'z')
                d = unsigned(c - 'a') + 10;
            else if (c >= 'A' && c <= 'Z')
                d = unsigned(c - 'A') + 10;
            else
                return std::nullopt;
            if (d >= base) return std::nullopt;
            chunk = chunk * base + d;
            mul *= base;
        }
        std::uint64_t carry = chunk;
        for (auto& l : b.mag_) {
            std::uint64_t v = std::uint64_t(l) * mul + carry;
            l = std::uint32_t(v);
            carry = v >> 32;
        }
        if (carry) b.mag_.push_back(std::uint32_t(carry));
    }
    b.neg_ = neg;
    b.trim();
    return b;
}

void bigint::trim() noexcept {
    while (!mag_.empty() && mag_.back() == 0)
        mag_.pop_back();
    if (mag_.empty()) neg_ = false;
}

std::size_t bigint::byte_size() const noexcept {
    if (mag_.empty()) return 0;
    std::uint32_t top = mag_.back();
    std::size_t n = (mag_.size() - 1) * 4;
    while (top) {
        ++n;
        top >>= 8;
    }
    return n;
}

std::vector<std::uint8_t> bigint::to_le_bytes() const {
    std::vector<std::uint8_t> out(byte_size());
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = std::uint8_t(mag_[i / 4] >> (8 * (i % 4)));
    return out;
}

bool bigint::fits_int64() const noexcept {
    if (mag_.size() <= 1) return true;
    if (mag_.size() > 2) return false;
    std::uint64_t m = (std::uint64_t(mag_[1]) << 32) | mag_[0];
    return neg_ ? m <= (std::uint64_t(1) << 63) : m < (std::uint64_t(1) << 63);
}

std::int64_t bigint::to_int64() const noexcept {
    std::uint64_t m = 0;
    if (!mag_.empty()) m = mag_[0];
    if (mag_.size() > 1) m |= std::uint64_t(mag_[1]) << 32;
    return neg_ ? std::int64_t(~m + 1) : std::int64_t(m);
}

double bigint::to_double() const noexcept {
    double d = 0;
    for (auto it = mag_.rbegin(); it != mag_.rend(); ++it)
        d = d * 4294967296.0 + *it;
    return neg_ ? -d : d;
}

std::string bigint::to_string(unsigned base) const {
    if (base < 2 || base > 36) base = 10;
    if (mag_.empty()) return "0";
    static constexpr char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // Divide by the largest power of base fitting 32 bits, collecting chunks of digits.
    std::uint32_t div = base;
    unsigned chunk_len = 1;
    while (std::uint64_t(div) * base <= 0xFFFFFFFFull) {
        div *= base;
        ++chunk_len;
    }
    std::vector<std::uint32_t> m = mag_;
    std::string rev;
    while (!m.empty()) {
        std::uint64_t rem = 0;
        for (auto it = m.rbegin(); it != m.rend(); ++it) {
            std::uint64_t cur = (rem << 32) | *it;
            *it = std::uint32_t(cur / div);
            rem = cur % div;
        }
        while (!m.empty() && m.back() == 0)
            m.pop_back();
        for (unsigned k = 0; k < chunk_len; ++k) {
            rev.push_back(digits[rem % base]);
            rem /= base;
            if (m.empty() && rem == 0) break;
        }
    }
    while (rev.size() > 1 && rev.back() == '0')
        rev.pop_back();
    if (neg_) rev.push_back('-');
    return {rev.rbegin(), rev.rend()};
}

static std::strong_ordering compare_magnitude(const std::vector<std::uint32_t>& a,
                                              const std::vector<std::uint32_t>& b) noexcept {
    if (a.size() != b.size()) return a.size() <=> b.size();
    for (std::size_t i = a.size(); i-- > 0;)
        if (a[i] != b[i]) return a[i] <=> b[i];
    return std::strong_ordering::equal;
}

std::strong_ordering operator<=>(const bigint& a, const bigint& b) noexcept {
    if (a.neg_ != b.neg_)
        return a.neg_ ? std::strong_ordering::less : std::strong_ordering::greater;
    auto c = compare_magnitude(a.mag_, b.mag_);
    return a.neg_ ? 0 <=> c : c;
}

std::partial_ordering compare(const bigint& a, double d) noexcept {
    if (std::isnan(d)) return std::partial_ordering::unordered;
    if (std::isinf(d)) return d > 0 ? std::partial_ordering::less : std::partial_ordering::greater;
    bigint t = bigint::from_double(d);
    auto c = a <=> t;
    if (c != 0) return c;
    // Equal integer parts: the fraction of d decides.
    double frac = d - std::trunc(d);
    if (frac > 0) return std::partial_ordering::less;
    if (frac < 0) return std::partial_ordering::greater;
    return std::partial_ordering::equivalent;
}

} // namespace erl
