// MD5 (RFC 1321), for the distribution handshake's challenge digests. Not for anything that needs
// a secure hash: the Erlang handshake uses MD5 and so must we.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace erl::detail::dist {

using md5_digest = std::array<std::uint8_t, 16>;

// Incremental MD5: update() any number of times, then digest() once.
class md5 {
  public:
    md5() noexcept;
    void update(std::span<const std::uint8_t> bytes) noexcept;
    void update(std::string_view text) noexcept;
    md5_digest digest() noexcept; // the object is spent afterwards

  private:
    void block(const std::uint8_t* p) noexcept;

    std::array<std::uint32_t, 4> state_;
    std::uint64_t length_ = 0; // bytes so far
    std::array<std::uint8_t, 64> buffer_{};
};

md5_digest md5_of(std::string_view text) noexcept;
std::string to_hex(const md5_digest& d);

// The handshake digest: MD5 of the cookie followed by the challenge in decimal, as
// dist_util:gen_digest/2 computes it.
md5_digest handshake_digest(std::string_view cookie, std::uint32_t challenge) noexcept;

} // namespace erl::detail::dist
