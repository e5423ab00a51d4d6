#include "dist/node_name.hpp"

#include <stdexcept>

#include <fmt/format.h>

namespace erl::detail::dist {

bool is_node_name(std::string_view full) noexcept {
    auto at = full.find('@');
    return at != std::string_view::npos && at > 0 && at + 1 < full.size() &&
           full.find('@', at + 1) == std::string_view::npos;
}

name_mode mode_of(const node_name& n) noexcept {
    return n.host.find_first_of(".:") != std::string::npos ? name_mode::long_names
                                                           : name_mode::short_names;
}

node_name parse_node_name(std::string_view full, name_mode mode) {
    auto bad = [&](std::string_view why) {
        throw std::invalid_argument(fmt::format("node name '{}': {}", full, why));
    };
    if (full.size() > 255) bad("longer than 255 bytes");
    for (unsigned char c : full)
        if (c < 0x20 || c == 0x7f) bad("control character");
    if (!is_node_name(full)) bad("not of the form alive@host");
    auto at = full.find('@');
    node_name n{std::string(full.substr(0, at)), std::string(full.substr(at + 1))};
    if (mode == name_mode::short_names && n.host.find('.') != std::string::npos)
        bad("a short-name node cannot use a fully qualified host (use long names)");
    if (mode == name_mode::long_names && mode_of(n) != name_mode::long_names)
        bad("a long-name node needs a fully qualified host or an IP address");
    return n;
}

} // namespace erl::detail::dist
