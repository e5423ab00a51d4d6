#include "dist/framing.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace erl::detail::dist {
namespace {

constexpr std::uint8_t pass_through = 112; // 'p'
constexpr std::uint8_t dist_header = 68, dist_frag_header = 69, dist_frag_cont = 70;

} // namespace

void packet_reader::feed(bytes_view bytes) {
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ > buf_.size() / 2)) {
        buf_.erase(buf_.begin(), buf_.begin() + std::ptrdiff_t(pos_));
        pos_ = 0;
    }
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

std::optional<bytes_view> packet_reader::next() {
    std::size_t avail = buf_.size() - pos_;
    if (avail < 4) return std::nullopt;
    const std::uint8_t* p = buf_.data() + pos_;
    std::size_t len =
        std::size_t(p[0]) << 24 | std::size_t(p[1]) << 16 | std::size_t(p[2]) << 8 | p[3];
    if (len > max_)
        throw protocol_error(
            fmt::format("distribution packet of {} bytes exceeds the limit of {}", len, max_));
    if (avail - 4 < len) return std::nullopt;
    pos_ += 4 + len;
    return bytes_view(p + 4, len);
}

incoming decode_packet(bytes_view body, const connection_nodes& nodes,
                       const etf::decode_options& opts) {
    if (body.empty()) throw protocol_error("empty packet body (ticks have no body at all)");
    if (body[0] != pass_through) {
        if (body[0] == etf::version_magic && body.size() > 1 &&
            (body[1] == dist_header || body[1] == dist_frag_header || body[1] == dist_frag_cont))
            throw protocol_error("dist-header packet, but neither DIST_HDR_ATOM_CACHE nor "
                                 "FRAGMENTS was negotiated");
        throw protocol_error(fmt::format("packet type {} (want 112, pass-through)", body[0]));
    }
    std::size_t off = 1;
    auto one_term = [&](const char* what) {
        if (off >= body.size() || body[off] != etf::version_magic)
            throw protocol_error(fmt::format("packet: {} does not start with 131", what));
        ++off;
        try {
            return etf::decode_body(body, off, opts);
        } catch (const etf_error& e) {
            throw protocol_error(fmt::format("packet: {}: {}", what, e.what()));
        }
    };
    term control = one_term("control message");
    std::optional<term> payload;
    if (off < body.size()) payload = one_term("payload");
    if (off != body.size())
        throw protocol_error(fmt::format("packet: {} bytes after the payload", body.size() - off));
    return parse_control(control, std::move(payload), nodes);
}

byte_buffer encode_packet(const outgoing& o) {
    byte_buffer out{0, 0, 0, 0, pass_through, etf::version_magic};
    etf::encode_body(out, o.control);
    if (o.payload) {
        out.push_back(etf::version_magic);
        etf::encode_body(out, *o.payload);
    }
    if (out.size() - 4 > 0xFFFF'FFFFull)
        throw std::length_error("distribution packet larger than 4 GiB");
    patch_length(out, 0, 4);
    return out;
}

byte_buffer encode_packet(const control_message& m, std::uint64_t negotiated_flags,
                          std::optional<term> message) {
    return encode_packet(make_control(m, negotiated_flags, std::move(message)));
}

byte_buffer tick_packet() {
    return byte_buffer(4, 0);
}

} // namespace erl::detail::dist
