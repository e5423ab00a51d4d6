// Addresses for erl::tcp: numeric parsing and name resolution. Internal.
#pragma once

#include <erl/tcp.hpp>

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace erl::detail {

struct numeric_address {
    std::vector<std::uint8_t> bytes; // 4 or 16
    std::uint32_t scope_id = 0;
};
// "127.0.0.1", "::1", "fe80::1%eth0" (or "%2"); nullopt when not numeric.
std::optional<numeric_address> parse_numeric(std::string_view text);

struct endpoint_storage {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

// The endpoints `host` names, in the order to try them. Numeric addresses need no lookup; ""
// means any address (0.0.0.0) when `passive`, else the loopback. Names are resolved with
// getaddrinfo off the scheduler (erl::blocking) when called in a process.
std::vector<tcp::endpoint> resolve_host(std::string_view host, std::uint16_t port, bool passive,
                                        const char* operation);

} // namespace erl::detail
