#include "dist/epmd.hpp"

#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>

namespace erl::detail::dist::epmd {
namespace {

void check_name(std::string_view name) {
    if (name.empty()) throw std::invalid_argument("EPMD: empty node name");
    if (name.size() > 255) throw std::invalid_argument("EPMD: node name longer than 255 bytes");
    if (name.find('@') != std::string_view::npos)
        throw std::invalid_argument("EPMD: give the alive part of the name only (before '@')");
}

// Writes the u16 request length in front of what `body` appends.
template <typename Body>
byte_buffer request(Body&& body) {
    byte_buffer out{0, 0};
    body(out);
    if (out.size() - 2 > 0xFFFF) throw std::invalid_argument("EPMD: request too long");
    patch_length(out, 0, 2);
    return out;
}

bool parse_u16(std::string_view s, std::uint16_t& v) {
    if (s.empty() || s.size() > 5) return false;
    unsigned x = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
    if (ec != std::errc() || p != s.data() + s.size() || x > 0xFFFF) return false;
    v = std::uint16_t(x);
    return true;
}

} // namespace

std::uint16_t port_from_environment() {
    const char* v = std::getenv("ERL_EPMD_PORT");
    std::uint16_t p = 0;
    if (v && parse_u16(v, p) && p != 0) return p;
    return default_port;
}

byte_buffer encode_alive2_request(const alive2_request& r) {
    check_name(r.name);
    if (r.extra.size() > 0xFFFF) throw std::invalid_argument("EPMD: extra field too long");
    return request([&](byte_buffer& out) {
        put8(out, alive2_req);
        put16(out, r.port);
        put8(out, r.node_type);
        put8(out, r.protocol);
        put16(out, r.highest_version);
        put16(out, r.lowest_version);
        put16(out, std::uint32_t(r.name.size()));
        put_text(out, r.name);
        put16(out, std::uint32_t(r.extra.size()));
        put_text(out, r.extra);
    });
}

std::optional<alive2_response> decode_alive2_response(bytes_view bytes, std::size_t& used) {
    if (bytes.empty()) return std::nullopt;
    reader in(bytes, "EPMD ALIVE2 reply");
    std::uint8_t tag = in.u8();
    if (tag != alive2_x_resp && tag != alive2_resp)
        in.fail(fmt::format("unexpected tag {} (want 118 or 121)", tag));
    bool extended = tag == alive2_x_resp;
    if (in.left() < (extended ? 5u : 3u)) return std::nullopt;
    alive2_response r;
    r.extended = extended;
    r.result = in.u8();
    r.creation = extended ? in.u32() : in.u16();
    used = in.offset();
    return r;
}

byte_buffer encode_port_please2_request(std::string_view name) {
    check_name(name);
    return request([&](byte_buffer& out) {
        put8(out, port_please2_req);
        put_text(out, name);
    });
}

std::optional<port2_response> decode_port2_response(bytes_view bytes, std::size_t& used) {
    if (bytes.empty()) return std::nullopt;
    reader in(bytes, "EPMD PORT2_RESP");
    if (std::uint8_t tag = in.u8(); tag != port2_resp)
        in.fail(fmt::format("unexpected tag {} (want 119)", tag));
    try {
        port2_response r;
        r.result = in.u8();
        if (r.result != 0) {
            used = in.offset();
            return r;
        }
        r.port = in.u16();
        r.node_type = in.u8();
        r.protocol = in.u8();
        r.highest_version = in.u16();
        r.lowest_version = in.u16();
        r.name = std::string(in.text(in.u16()));
        r.extra = std::string(in.text(in.u16()));
        if (r.name.empty()) in.fail("empty node name");
        if (r.port == 0) in.fail("port 0");
        if (r.lowest_version > r.highest_version) in.fail("lowest version above highest");
        used = in.offset();
        return r;
    } catch (const truncated_input&) {
        return std::nullopt; // the rest may still be arriving
    }
}

byte_buffer encode_names_request() {
    return request([](byte_buffer& out) { put8(out, names_req); });
}

names_response decode_names_response(bytes_view bytes) {
    reader in(bytes, "EPMD NAMES reply");
    names_response r;
    r.epmd_port = in.u32();
    std::string_view text = as_text(in.rest());
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        auto nl = text.find('\n');
        if (nl == std::string_view::npos)
            throw protocol_error(fmt::format("EPMD NAMES reply: line {} unterminated", line_no));
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        // "name <Name> at port <Port>"; the name may itself contain spaces, so split at the end.
        constexpr std::string_view head = "name ", mid = " at port ";
        auto at = line.rfind(mid);
        names_response::entry e;
        if (!line.starts_with(head) || at == std::string_view::npos || at < head.size() + 1 ||
            !parse_u16(line.substr(at + mid.size()), e.port))
            throw protocol_error(fmt::format("EPMD NAMES reply: line {} malformed", line_no));
        e.name = std::string(line.substr(head.size(), at - head.size()));
        r.nodes.push_back(std::move(e));
    }
    return r;
}

} // namespace erl::detail::dist::epmd
