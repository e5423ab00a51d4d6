// MD5 written from RFC 1321, section 3: four rounds of sixteen steps over 64-byte blocks, the
// message padded with 0x80, zeros and its bit length (little-endian).
#include "dist/md5.hpp"

#include <bit>
#include <charconv>
#include <cstring>

namespace erl::detail::dist {
namespace {

// T[i] = floor(2^32 * |sin(i + 1)|), the table of RFC 1321, section 3.4.
constexpr std::uint32_t sine_table[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

// Left-rotation amounts per round, four per round repeated.
constexpr int shifts[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

std::uint32_t load_le32(const std::uint8_t* p) noexcept {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}

} // namespace

md5::md5() noexcept : state_{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476} {}

void md5::block(const std::uint8_t* p) noexcept {
    std::uint32_t x[16];
    for (int i = 0; i < 16; ++i)
        x[i] = load_le32(p + 4 * i);
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    for (int i = 0; i < 64; ++i) {
        int round = i / 16;
        std::uint32_t f;
        int k; // which word of the block this step mixes in
        switch (round) {
        case 0:
            f = (b & c) | (~b & d);
            k = i;
            break;
        case 1:
            f = (b & d) | (c & ~d);
            k = (5 * i + 1) % 16;
            break;
        case 2:
            f = b ^ c ^ d;
            k = (3 * i + 5) % 16;
            break;
        default:
            f = c ^ (b | ~d);
            k = (7 * i) % 16;
            break;
        }
        std::uint32_t sum = a + f + x[k] + sine_table[i];
        a = d;
        d = c;
        c = b;
        b = b + std::rotl(sum, shifts[round][i % 4]);
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
}

void md5::update(std::span<const std::uint8_t> bytes) noexcept {
    std::size_t have = std::size_t(length_ % 64);
    length_ += bytes.size();
    const std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    if (have) {
        std::size_t take = std::min(n, 64 - have);
        std::memcpy(buffer_.data() + have, p, take);
        have += take;
        p += take;
        n -= take;
        if (have < 64) return;
        block(buffer_.data());
    }
    for (; n >= 64; p += 64, n -= 64)
        block(p);
    if (n) std::memcpy(buffer_.data(), p, n);
}

void md5::update(std::string_view text) noexcept {
    update(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()),
                                         text.size()));
}

md5_digest md5::digest() noexcept {
    std::uint64_t bits = length_ * 8;
    std::uint8_t pad[72] = {0x80};
    std::size_t have = std::size_t(length_ % 64);
    std::size_t pad_len = have < 56 ? 56 - have : 120 - have;
    for (int i = 0; i < 8; ++i)
        pad[pad_len + std::size_t(i)] = std::uint8_t(bits >> (8 * i));
    update(std::span<const std::uint8_t>(pad, pad_len + 8));
    md5_digest out;
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 4; ++j)
            out[4 * i + j] = std::uint8_t(state_[i] >> (8 * j));
    return out;
}

md5_digest md5_of(std::string_view text) noexcept {
    md5 m;
    m.update(text);
    return m.digest();
}

std::string to_hex(const md5_digest& d) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (auto b : d) {
        s.push_back(digits[b >> 4]);
        s.push_back(digits[b & 15]);
    }
    return s;
}

md5_digest handshake_digest(std::string_view cookie, std::uint32_t challenge) noexcept {
    char text[10];
    auto end = std::to_chars(text, text + sizeof text, challenge).ptr;
    md5 m;
    m.update(cookie);
    m.update(std::string_view(text, std::size_t(end - text)));
    return m.digest();
}

} // namespace erl::detail::dist
