#include "dist/wire.hpp"

#include <fmt/format.h>

namespace erl::detail::dist {

void reader::fail(std::string_view why) const {
    throw protocol_error(fmt::format("{}: {}", what_, why));
}

void reader::truncated() const {
    throw truncated_input(fmt::format("{}: truncated", what_));
}

void patch_length(byte_buffer& out, std::size_t at, std::size_t width) {
    std::size_t n = out.size() - at - width;
    for (std::size_t i = 0; i < width; ++i)
        out[at + i] = std::uint8_t(n >> (8 * (width - 1 - i)));
}

} // namespace erl::detail::dist
