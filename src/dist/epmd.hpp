// EPMD (the Erlang port mapper) requests and replies, without sockets. Requests carry a u16
// length prefix; replies do not. Decoders check every length and throw protocol_error on
// malformed bytes; those whose reply may arrive in pieces return std::nullopt while it is
// incomplete.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dist/wire.hpp"

namespace erl::detail::dist::epmd {

inline constexpr std::uint16_t default_port = 4369;
// ERL_EPMD_PORT if set to a valid port number, else 4369 (as erl and epmd do).
std::uint16_t port_from_environment();

enum : std::uint8_t {
    alive2_x_resp = 118, // 'v'
    port2_resp = 119,    // 'w'
    alive2_req = 120,    // 'x'
    alive2_resp = 121,   // 'y'
    port_please2_req = 122,
    names_req = 110,
};
inline constexpr std::uint8_t node_type_normal = 77; // 'M'
inline constexpr std::uint8_t node_type_hidden = 72; // 'H'

// ALIVE2_REQ: register `name` (the alive part only) as listening on `port`. The connection
// must stay open while the node is registered: closing it unregisters.
struct alive2_request {
    std::uint16_t port = 0;
    std::string name;
    // Informational only (visibility comes from DFLAG_PUBLISHED); OTP 25 always sends 'M'.
    std::uint8_t node_type = node_type_normal;
    std::uint8_t protocol = 0; // TCP/IPv4
    std::uint16_t highest_version = 6;
    std::uint16_t lowest_version = 5; // what OTP 25 sends
    std::string extra;
};
// Throws std::invalid_argument for an empty or over-long name (EPMD takes at most 255 bytes).
byte_buffer encode_alive2_request(const alive2_request& r);

struct alive2_response {
    std::uint8_t result = 0;    // 0: registered; anything else: refused (e.g. name taken)
    std::uint32_t creation = 0; // this incarnation's creation (for pids, ports, refs)
    bool extended = true;       // ALIVE2_X_RESP (32-bit creation) rather than ALIVE2_RESP
};
// ALIVE2_X_RESP ('v', 6 bytes) or ALIVE2_RESP ('y', 4 bytes); `used` gets the bytes consumed.
std::optional<alive2_response> decode_alive2_response(bytes_view bytes, std::size_t& used);

// PORT_PLEASE2_REQ for the alive part of a node name.
byte_buffer encode_port_please2_request(std::string_view name);

struct port2_response {
    std::uint8_t result = 0; // non-zero: unknown name, and nothing else follows
    std::uint16_t port = 0;
    std::uint8_t node_type = 0;
    std::uint8_t protocol = 0;
    std::uint16_t highest_version = 0;
    std::uint16_t lowest_version = 0;
    std::string name;
    std::string extra;

    // Whether the node speaks distribution version 6 (OTP 23+), the only one we speak.
    bool speaks_version_6() const noexcept { return lowest_version <= 6 && highest_version >= 6; }
};
std::optional<port2_response> decode_port2_response(bytes_view bytes, std::size_t& used);

byte_buffer encode_names_request();

struct names_response {
    std::uint32_t epmd_port = 0;
    struct entry {
        std::string name;
        std::uint16_t port = 0;
        friend bool operator==(const entry&, const entry&) = default;
    };
    std::vector<entry> nodes;
};
// The whole reply (EPMD closes the connection after it): EPMD's port, then lines
// "name <Name> at port <Port>\n".
names_response decode_names_response(bytes_view bytes);

} // namespace erl::detail::dist::epmd
