// Node names (`alive@host`) and the short/long name rules of OTP's inet_tcp_dist.
#pragma once

#include <string>
#include <string_view>

namespace erl::detail::dist {

// -sname nodes (hosts without dots) or -name nodes (fully qualified hosts or IP addresses).
// A node of one mode cannot talk to nodes of the other: OTP refuses to dial them.
enum class name_mode { short_names, long_names };

struct node_name {
    std::string alive; // the part before '@': what EPMD registers
    std::string host;

    std::string full() const { return alive + '@' + host; }
    friend bool operator==(const node_name&, const node_name&) = default;
};

// Splits and checks a full node name: exactly one '@', non-empty parts, at most 255 bytes (an
// atom), no control characters; with short names the host has no '.', with long names it has one
// or is an IPv6 address. Throws std::invalid_argument saying what is wrong.
node_name parse_node_name(std::string_view full, name_mode mode);
// The mode-free check the handshake applies to a peer's name (OTP's dist_util:is_node_name/1):
// exactly one '@' with something on both sides.
bool is_node_name(std::string_view full) noexcept;
// The mode a name belongs to (a dot or ':' in the host: long).
name_mode mode_of(const node_name& n) noexcept;

} // namespace erl::detail::dist
