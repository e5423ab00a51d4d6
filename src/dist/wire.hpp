// Big-endian reading and writing for the distribution protocol's binary messages, and the one
// error type its decoders throw. Every read is bounds-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace erl::detail::dist {

using bytes_view = std::span<const std::uint8_t>;
using byte_buffer = std::vector<std::uint8_t>;

// Malformed or refused protocol input (EPMD replies, handshake messages, connected-phase
// packets). The connection that produced it cannot continue.
class protocol_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};
// A message that ended early: malformed if it is all there is, incomplete if more may come.
class truncated_input : public protocol_error {
  public:
    using protocol_error::protocol_error;
};

inline bytes_view as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_text(bytes_view b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Reads a message; `what` names it in errors ("PORT2_RESP: truncated ...").
class reader {
  public:
    reader(bytes_view bytes, const char* what) noexcept : bytes_(bytes), what_(what) {}

    std::size_t left() const noexcept { return bytes_.size() - pos_; }
    std::size_t offset() const noexcept { return pos_; }
    bool at_end() const noexcept { return pos_ == bytes_.size(); }

    std::uint8_t u8() { return std::uint8_t(take(1)[0]); }
    std::uint16_t u16() {
        auto p = take(2);
        return std::uint16_t(p[0] << 8 | p[1]);
    }
    std::uint32_t u32() {
        auto p = take(4);
        return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 |
               p[3];
    }
    std::uint64_t u64() {
        std::uint64_t hi = u32();
        return hi << 32 | u32();
    }
    bytes_view take(std::size_t n) {
        if (n > left()) truncated();
        auto b = bytes_.subspan(pos_, n);
        pos_ += n;
        return b;
    }
    std::string_view text(std::size_t n) { return as_text(take(n)); }
    bytes_view rest() noexcept {
        auto b = bytes_.subspan(pos_);
        pos_ = bytes_.size();
        return b;
    }
    [[noreturn]] void fail(std::string_view why) const;
    [[noreturn]] void truncated() const;

  private:
    bytes_view bytes_;
    std::size_t pos_ = 0;
    const char* what_;
};

inline void put8(byte_buffer& out, std::uint32_t v) {
    out.push_back(std::uint8_t(v));
}
inline void put16(byte_buffer& out, std::uint32_t v) {
    out.push_back(std::uint8_t(v >> 8));
    out.push_back(std::uint8_t(v));
}
inline void put32(byte_buffer& out, std::uint32_t v) {
    put16(out, v >> 16);
    put16(out, v);
}
inline void put64(byte_buffer& out, std::uint64_t v) {
    put32(out, std::uint32_t(v >> 32));
    put32(out, std::uint32_t(v));
}
inline void put_bytes(byte_buffer& out, bytes_view b) {
    out.insert(out.end(), b.begin(), b.end());
}
inline void put_text(byte_buffer& out, std::string_view s) {
    put_bytes(out, as_bytes(s));
}
// Patches a big-endian length at `at` (2 or 4 bytes) to the bytes written after it.
void patch_length(byte_buffer& out, std::size_t at, std::size_t width);

} // namespace erl::detail::dist
