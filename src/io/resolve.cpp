#include "io/resolve.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include <fmt/format.h>

#include <erl/blocking.hpp>

#include "io/io_errors.hpp"

namespace erl::detail {

std::optional<numeric_address> parse_numeric(std::string_view text) {
    std::string s(text);
    numeric_address out;
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        out.bytes.resize(4);
        std::memcpy(out.bytes.data(), &v4, 4);
        return out;
    }
    if (auto pct = s.find('%'); pct != std::string::npos) {
        std::string zone = s.substr(pct + 1);
        s.resize(pct);
        if (zone.empty()) return std::nullopt;
        char* end = nullptr;
        unsigned long n = std::strtoul(zone.c_str(), &end, 10);
        out.scope_id = *end == '\0' ? std::uint32_t(n) : ::if_nametoindex(zone.c_str());
        if (out.scope_id == 0) return std::nullopt;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        out.bytes.resize(16);
        std::memcpy(out.bytes.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

std::vector<tcp::endpoint> resolve_host(std::string_view host, std::uint16_t port, bool passive,
                                        const char* operation) {
    if (host.empty()) host = passive ? "0.0.0.0" : "127.0.0.1";
    if (auto n = parse_numeric(host))
        return {tcp::endpoint::from_bytes(n->bytes, port, n->scope_id)};
    std::string name(host);
    struct lookup {
        int rc = 0;
        std::vector<tcp::endpoint> found;
    };
    // getaddrinfo may wait for DNS for seconds: off the scheduler, only this process waits.
    // Everything is captured by value (a killed caller does not wait for the job).
    lookup result = erl::blocking([name, port, passive] {
        lookup r;
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG | (passive ? AI_PASSIVE : 0);
        addrinfo* list = nullptr;
        r.rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list);
        if (r.rc != 0) {
            if (list) ::freeaddrinfo(list);
            return r;
        }
        for (addrinfo* a = list; a; a = a->ai_next) {
            if (a->ai_family == AF_INET) {
                auto* s = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
                r.found.push_back(tcp::endpoint::from_bytes(
                    {reinterpret_cast<const std::uint8_t*>(&s->sin_addr), 4}, port));
            } else if (a->ai_family == AF_INET6) {
                auto* s = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);
                r.found.push_back(tcp::endpoint::from_bytes(
                    {reinterpret_cast<const std::uint8_t*>(&s->sin6_addr), 16}, port,
                    s->sin6_scope_id));
            }
        }
        ::freeaddrinfo(list);
        return r;
    });
    if (result.rc != 0)
        throw_io(io_errc::bad_address, fmt::format("{}: cannot resolve {}: {}", operation, name,
                                                   ::gai_strerror(result.rc)));
    std::vector<tcp::endpoint> out = std::move(result.found);
    if (out.empty())
        throw_io(io_errc::bad_address, fmt::format("{}: no address for {}", operation, name));
    return out;
}

} // namespace erl::detail
